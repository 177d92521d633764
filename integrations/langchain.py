"""LangChain integration: a callback handler that turns LangChain runs into llmobs spans.

    from llmobs.integrations.langchain import LLMObsCallbackHandler, instrument
    chain.invoke(x, config={"callbacks": [LLMObsCallbackHandler()]})   # one call
    instrument()                                                       # or every run in the process

Runs map to spans by ``run_id``/``parent_run_id``: chains -> ``chain`` (``agent`` when the run is an agent), chat
models and LLMs -> ``generation``, tools -> ``tool``, retrievers -> ``retriever``. A root run nests under the
current llmobs span (e.g. an ``@observe`` function). While a model runs, its span is published in
``active_model_run`` so that the OpenAI integration enriches it instead of recording the same call twice. In sync
runs, tool and retriever spans are also made current, so ``@observe`` functions called inside a tool nest under it;
chain and model spans never are (langchain-core may end them in another context, see docs/integrations_langchain.md).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from uuid import UUID

from llmobs._state import rt
from llmobs.context import SpanRecord, current_span, perf_ns
from llmobs.integrations._common import (
    USAGE_ESTIMATED,
    USAGE_REPORTED,
    NOT_SPECIAL,
    ActiveModelRun,
    Usage,
    active_model_run,
    compact,
    message_dict,
    plain,
    reader,
    tool_call_dict,
    usage_fields,
    usage_from,
)
from llmobs.tracing import NoopSpan, end_span, start_span

__all__ = ["LLMObsCallbackHandler", "instrument", "is_instrumented", "uninstrument"]

log = logging.getLogger("llmobs")
SOURCE = "langchain"
MAX_ITEMS = 200  # agent actions kept per run
_PARAM_SKIP = frozenset({"_type", "model", "model_name", "stream", "streaming", "api_key", "openai_api_key",
                         "base_url", "openai_api_base", "http_client", "http_async_client", "default_headers"})
_DEFERRED_INPUT = {"input": ""}
_LS_PARAMS = {"ls_temperature": "temperature", "ls_max_tokens": "max_tokens", "ls_stop": "stop"}


class _Run:
    """One LangChain run while it is open: its span and what must be restored when it ends."""

    __slots__ = ("span", "recorded", "span_token", "previous", "model_token", "actions", "retries")

    def __init__(self, span: SpanRecord) -> None:
        self.span = span
        self.recorded = span.__class__ is not NoopSpan  # False: llmobs is off for this trace, nothing to build
        self.span_token: contextvars.Token[SpanRecord | None] | None = None
        self.previous: SpanRecord | None = None
        self.model_token: contextvars.Token[ActiveModelRun | None] | None = None
        self.actions: list[dict[str, Any]] | None = None
        self.retries: list[str] | None = None


_IGNORE_FLAGS = ("ignore_llm", "ignore_chat_model", "ignore_chain", "ignore_agent", "ignore_retriever", "ignore_retry")


def _failed(callback: str) -> None:
    """Log an error inside llmobs's handling of a LangChain callback (the boundary: it never reaches LangChain)."""
    log.exception("llmobs: LangChain callback %s failed", callback)


class _LC:
    """langchain-core, imported when the handler class is first needed (importing this module does not import it)."""

    handler_class: Any = None
    BaseMessage: Any = None
    Document: Any = None
    PromptValue: Any = None
    StringPromptValue: Any = None


def _handler_class() -> Any:
    """Build ``LLMObsCallbackHandler`` (the mixin below on langchain-core's ``BaseCallbackHandler``) once."""
    if _LC.handler_class is None:
        try:
            from langchain_core.callbacks.base import BaseCallbackHandler
            from langchain_core.documents import Document
            from langchain_core.messages import BaseMessage
            from langchain_core.prompt_values import PromptValue, StringPromptValue
        except ImportError as exc:
            raise ImportError(
                "llmobs.integrations.langchain needs langchain-core: pip install 'llmobs[langchain]'") from exc
        _LC.BaseMessage, _LC.Document = BaseMessage, Document
        _LC.PromptValue, _LC.StringPromptValue = PromptValue, StringPromptValue
        _LC.handler_class = type("LLMObsCallbackHandler", (_HandlerMixin, BaseCallbackHandler), {
            "__module__": __name__, "__qualname__": "LLMObsCallbackHandler", "__doc__": _HandlerMixin.__doc__})
    return _LC.handler_class


def __getattr__(name: str) -> Any:
    """``LLMObsCallbackHandler`` is created on first access, which is when langchain-core gets imported."""
    if name == "LLMObsCallbackHandler":
        return _handler_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _HandlerMixin:
    """Records LangChain runs (chains, chat models, LLMs, tools, retrievers, agents) as llmobs spans.

    One handler may serve many concurrent runs (``batch``, ``abatch``, threads): open runs live in a map keyed by
    ``run_id`` (each step is one atomic get, set or pop of a run's own key) and are removed when they end.

    >>> handler = LLMObsCallbackHandler()                                       # doctest: +SKIP
    >>> chain.invoke({"topic": "owls"}, config={"callbacks": [handler]})      # doctest: +SKIP
    """

    run_inline = True  # called in the caller's context, also in async runs (see docs/integrations_langchain.md)
    raise_error = False

    # Which events LangChain sends us. Plain attributes rather than properties: langchain-core reads one per event.
    # All True while the handler is disabled (``uninstrument()``); custom events are never recorded.
    ignore_llm = ignore_chat_model = ignore_chain = ignore_agent = ignore_retriever = ignore_retry = False
    ignore_custom_event = True

    def __init__(self) -> None:
        super().__init__()
        self._runs: dict[UUID, _Run] = {}  # one get/set/pop per step: atomic, no lock needed
        self._enabled = True

    def _set_enabled(self, enabled: bool) -> None:
        """Receive every event we record (True) or none at all (False)."""
        self._enabled = enabled
        for flag in _IGNORE_FLAGS:
            setattr(self, flag, not enabled)

    @property
    def open_runs(self) -> int:
        """How many runs are open right now (0 once every run ended)."""
        return len(self._runs)

    # -- chains and agents -----------------------------------------------------------------------------------------
    def on_chain_start(self, serialized: dict[str, Any] | None, inputs: Any, *, run_id: UUID,
                       parent_run_id: UUID | None = None, tags: list[str] | None = None,
                       metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        """Open a ``chain`` span (``agent`` when the run is named like one)."""
        try:
            name = _run_name(serialized, kwargs, "chain")
            span = self._open(run_id, parent_run_id, name, "agent" if "agent" in name.lower() else "chain")
            if span is None:
                return
            meta = _run_metadata(tags, metadata, parent_run_id)
            run_type = kwargs.get("run_type")
            if run_type:
                meta["run_type"] = run_type
            if meta:
                span.metadata = meta
            if inputs is not None and rt.capture_input and not _deferred(inputs):
                # (a streamed run learns its input only at the end, see on_chain_end)
                _set_input(span, _plain(inputs))
        except Exception:  # noqa: BLE001 - boundary: never raise into LangChain
            _failed("on_chain_start")

    def on_chain_end(self, outputs: Any, *, run_id: UUID, parent_run_id: UUID | None = None,
                     **kwargs: Any) -> None:
        """End the chain span with its outputs (and its final inputs, which streamed runs only know now)."""
        try:
            run = self._close(run_id)
            if run is None:
                return
            output = final_input = None
            if run.recorded:
                inputs = kwargs.get("inputs")
                if inputs is not None and rt.capture_input and not _deferred(inputs):
                    final_input = _plain(inputs)
                if rt.capture_output:
                    output = _plain(outputs)
            _finish(run, output, input_=final_input)
        except Exception:  # noqa: BLE001 - boundary: never raise into LangChain
            _failed("on_chain_end")

    def on_chain_error(self, error: BaseException, *, run_id: UUID, parent_run_id: UUID | None = None,
                       **kwargs: Any) -> None:
        """End the chain span as failed (a stream left early is not a failure)."""
        try:
            run = self._close(run_id)
            if run is not None:
                _finish(run, error=error)
        except Exception:  # noqa: BLE001 - boundary: never raise into LangChain
            _failed("on_chain_error")

    def on_agent_action(self, action: Any, *, run_id: UUID, parent_run_id: UUID | None = None,
                        **kwargs: Any) -> None:
        """Mark the run as an ``agent`` and note the tool it chose."""
        try:
            run = self._runs.get(run_id)
            if run is None or not run.recorded:
                return
            run.span.kind = "agent"
            if run.actions is None:
                run.actions = []
            if len(run.actions) < MAX_ITEMS:
                run.actions.append(compact({"tool": getattr(action, "tool", None),
                                            "tool_input": _plain(getattr(action, "tool_input", None)),
                                            "log": _plain(getattr(action, "log", None))}))
        except Exception:  # noqa: BLE001 - boundary: never raise into LangChain
            _failed("on_agent_action")

    def on_agent_finish(self, finish: Any, *, run_id: UUID, parent_run_id: UUID | None = None,
                        **kwargs: Any) -> None:
        """Mark the run as an ``agent`` and note its final answer."""
        try:
            run = self._runs.get(run_id)
            if run is None or not run.recorded:
                return
            run.span.kind = "agent"
            _add_metadata(run.span, {"agent_finish": _plain(getattr(finish, "return_values", None))})
        except Exception:  # noqa: BLE001 - boundary: never raise into LangChain
            _failed("on_agent_finish")

    def on_retry(self, retry_state: Any, *, run_id: UUID, parent_run_id: UUID | None = None,
                 **kwargs: Any) -> None:
        """Count a retry of the run and keep the error that caused it."""
        try:
            run = self._runs.get(run_id)
            if run is None or not run.recorded:
                return
            if run.retries is None:
                run.retries = []
            outcome = getattr(retry_state, "outcome", None)
            error = None
            if outcome is not None and getattr(outcome, "failed", False):
                error = outcome.exception()
            run.retries.append(_plain(f"{type(error).__name__}: {error}" if error is not None else "retry"))
        except Exception:  # noqa: BLE001 - boundary: never raise into LangChain
            _failed("on_retry")

    # -- models ----------------------------------------------------------------------------------------------------
    def on_chat_model_start(self, serialized: dict[str, Any] | None, messages: list[list[Any]], *,
                            run_id: UUID, parent_run_id: UUID | None = None, tags: list[str] | None = None,
                            metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        """Open a ``generation`` span for a chat model call, with the messages it was given."""
        try:
            span = self._open_model(run_id, parent_run_id, _run_name(serialized, kwargs, "chat_model"), tags,
                                    metadata, kwargs)
            if span is not None and rt.capture_input:
                batch = [[_message(m) for m in group] for group in messages or ()]
                span.input = batch[0] if len(batch) == 1 else batch
        except Exception:  # noqa: BLE001 - boundary: never raise into LangChain
            _failed("on_chat_model_start")

    def on_llm_start(self, serialized: dict[str, Any] | None, prompts: list[str], *, run_id: UUID,
                     parent_run_id: UUID | None = None, tags: list[str] | None = None,
                     metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        """Open a ``generation`` span for a text-completion LLM call."""
        try:
            span = self._open_model(run_id, parent_run_id, _run_name(serialized, kwargs, "llm"), tags, metadata,
                                    kwargs)
            if span is not None and rt.capture_input:
                texts = [_plain(p) for p in prompts or ()]
                span.input = texts[0] if len(texts) == 1 else texts
        except Exception:  # noqa: BLE001 - boundary: never raise into LangChain
            _failed("on_llm_start")

    def on_llm_new_token(self, token: Any, *, chunk: Any = None, run_id: UUID, parent_run_id: UUID | None = None,
                         **kwargs: Any) -> None:
        """Stamp the time to first token on the first token (or tool-call chunk) of a streamed call."""
        try:
            run = self._runs.get(run_id)
            if run is None or not run.recorded or run.span.time_to_first_token_ms is not None:
                return
            if token or getattr(getattr(chunk, "message", None), "tool_call_chunks", None):
                run.span.time_to_first_token_ms = (perf_ns() - run.span.perf_start) / 1e6
        except Exception:  # noqa: BLE001 - boundary: never raise into LangChain
            _failed("on_llm_new_token")

    def on_llm_end(self, response: Any, *, run_id: UUID, parent_run_id: UUID | None = None,
                   **kwargs: Any) -> None:
        """End the generation span with the output message, model name, finish reason and usage."""
        try:
            run = self._close(run_id)
            if run is None:
                return
            if run.recorded:
                output, fields = _llm_outcome(response, run.span)
                _finish(run, output, fields=fields)
            else:
                _finish(run)
        except Exception:  # noqa: BLE001 - boundary: never raise into LangChain
            _failed("on_llm_end")

    def on_llm_error(self, error: BaseException, *, run_id: UUID, parent_run_id: UUID | None = None,
                     **kwargs: Any) -> None:
        """End the generation span as failed, keeping any partial output LangChain passes along."""
        try:
            run = self._close(run_id)
            if run is None:
                return
            partial = kwargs.get("response")
            if partial is not None and isinstance(error, GeneratorExit) and run.recorded:
                output, fields = _llm_outcome(partial, run.span)
                _finish(run, output, error=error, fields=fields)
            else:
                _finish(run, error=error)
        except Exception:  # noqa: BLE001 - boundary: never raise into LangChain
            _failed("on_llm_error")

    # -- tools and retrievers --------------------------------------------------------------------------------------
    def on_tool_start(self, serialized: dict[str, Any] | None, input_str: str, *, run_id: UUID,
                      parent_run_id: UUID | None = None, tags: list[str] | None = None,
                      metadata: dict[str, Any] | None = None, inputs: dict[str, Any] | None = None,
                      **kwargs: Any) -> None:
        """Open a ``tool`` span; in sync runs it is made current, so spans opened inside the tool nest under it."""
        try:
            span = self._open(run_id, parent_run_id, _run_name(serialized, kwargs, "tool"), "tool",
                              make_current=True)
            if span is None:
                return
            meta = _run_metadata(tags, metadata, parent_run_id)
            tool_call_id = kwargs.get("tool_call_id")
            if tool_call_id:
                meta["tool_call_id"] = tool_call_id
            if meta:
                span.metadata = meta
            if rt.capture_input:
                _set_input(span, _plain(inputs if inputs is not None else input_str))
        except Exception:  # noqa: BLE001 - boundary: never raise into LangChain
            _failed("on_tool_start")

    def on_tool_end(self, output: Any, *, run_id: UUID, parent_run_id: UUID | None = None,
                    **kwargs: Any) -> None:
        """End the tool span with what the tool returned."""
        try:
            run = self._close(run_id)
            if run is not None:
                _finish(run, _plain(output) if run.recorded and rt.capture_output else None)
        except Exception:  # noqa: BLE001 - boundary: never raise into LangChain
            _failed("on_tool_end")

    def on_tool_error(self, error: BaseException, *, run_id: UUID, parent_run_id: UUID | None = None,
                      **kwargs: Any) -> None:
        """End the tool span as failed."""
        try:
            run = self._close(run_id)
            if run is not None:
                _finish(run, error=error)
        except Exception:  # noqa: BLE001 - boundary: never raise into LangChain
            _failed("on_tool_error")

    def on_retriever_start(self, serialized: dict[str, Any] | None, query: str, *, run_id: UUID,
                           parent_run_id: UUID | None = None, tags: list[str] | None = None,
                           metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        """Open a ``retriever`` span for the query (made current in sync runs)."""
        try:
            span = self._open(run_id, parent_run_id, _run_name(serialized, kwargs, "retriever"), "retriever",
                              make_current=True)
            if span is None:
                return
            meta = _run_metadata(tags, metadata, parent_run_id)
            if meta:
                span.metadata = meta
            if rt.capture_input:
                _set_input(span, _plain(query))
        except Exception:  # noqa: BLE001 - boundary: never raise into LangChain
            _failed("on_retriever_start")

    def on_retriever_end(self, documents: Sequence[Any], *, run_id: UUID, parent_run_id: UUID | None = None,
                         **kwargs: Any) -> None:
        """End the retriever span with the documents found."""
        try:
            run = self._close(run_id)
            if run is None:
                return
            if run.recorded:
                docs = list(documents or ())
                _finish(run, _plain(docs) if rt.capture_output else None, metadata={"documents": len(docs)})
            else:
                _finish(run)
        except Exception:  # noqa: BLE001 - boundary: never raise into LangChain
            _failed("on_retriever_end")

    def on_retriever_error(self, error: BaseException, *, run_id: UUID, parent_run_id: UUID | None = None,
                           **kwargs: Any) -> None:
        """End the retriever span as failed."""
        try:
            run = self._close(run_id)
            if run is not None:
                _finish(run, error=error)
        except Exception:  # noqa: BLE001 - boundary: never raise into LangChain
            _failed("on_retriever_error")

    # -- run bookkeeping -------------------------------------------------------------------------------------------
    def _open(self, run_id: UUID, parent_run_id: UUID | None, name: str, kind: str, *, make_current: bool = False,
              model_run: bool = False) -> SpanRecord | None:
        """Open the run's span and register the run; the span is returned only when it is recorded (None when
        llmobs is off or the trace is not sampled: then the caller has nothing to build)."""
        if not rt.enabled:
            return None
        parent_run = self._runs.get(parent_run_id) if parent_run_id is not None else None
        if parent_run is None:
            span = start_span(name, kind, source=SOURCE)  # a root: under the current llmobs span, sampled there
        else:  # under the parent run; an unsampled parent's no-op span comes back as it is
            span = start_span(name, kind, source=SOURCE, parent=parent_run.span)
        run = _Run(span)
        if make_current and run.recorded and not _loop_running():
            run.previous = current_span.get()
            run.span_token = current_span.set(span)
        if model_run:
            # One prompt per model call: the OpenAI integration may enrich this span (see ActiveModelRun).
            run.model_token = active_model_run.set(ActiveModelRun(span))
        self._runs[run_id] = run
        return span if run.recorded else None

    def _open_model(self, run_id: UUID, parent_run_id: UUID | None, name: str, tags: list[str] | None,
                    metadata: dict[str, Any] | None, kwargs: dict[str, Any]) -> SpanRecord | None:
        span = self._open(run_id, parent_run_id, name, "generation",
                          model_run=(kwargs.get("batch_size") or 1) == 1)
        if span is None:
            return None
        params = kwargs.get("invocation_params") or {}
        md = metadata or {}
        request_model = params.get("model") or params.get("model_name") or md.get("ls_model_name")
        model_parameters: dict[str, Any] = {}
        limit = rt.max_field_chars
        for key, value in params.items():
            if value is None or key in _PARAM_SKIP:
                continue
            kind = type(value)
            model_parameters[key] = value if kind in _SCALARS or kind is str and len(value) <= limit \
                else _plain(value)
        for ls_key, key in _LS_PARAMS.items():
            if key not in model_parameters and md.get(ls_key) is not None:
                model_parameters[key] = md[ls_key]
        meta = _run_metadata(tags, metadata, parent_run_id)
        meta["model_parameters"] = model_parameters
        if request_model is not None:
            meta["request_model"] = span.model_name = str(request_model)
        span.metadata = meta
        provider = md.get("ls_provider") or params.get("_type")
        if provider is not None:
            span.provider = str(provider)
        return span

    def _close(self, run_id: UUID) -> _Run | None:
        """Take the run out of the map and restore what its start changed; None for a run we do not know."""
        run = self._runs.pop(run_id, None)
        if run is not None and (run.model_token is not None or run.span_token is not None):
            _restore(run)
        return run


if TYPE_CHECKING:
    from langchain_core.callbacks.base import BaseCallbackHandler

    class LLMObsCallbackHandler(_HandlerMixin, BaseCallbackHandler):
        """What ``_handler_class()`` builds at run time, spelled out for type checkers."""


def _finish(run: _Run, output: Any = None, *, error: BaseException | None = None, input_: Any = None,
            metadata: dict[str, Any] | None = None, fields: dict[str, Any] | None = None) -> None:
    """End the run's span. ``output``, ``input_``, ``metadata`` and ``fields`` (span attributes, ``metadata`` merged
    last) are fresh JSON-safe values made by this module, so they are set as they are, not validated or copied again.
    """
    span = run.span
    meta = metadata
    if run.actions or run.retries or isinstance(error, GeneratorExit):
        meta = dict(metadata or {})
        if run.actions:
            meta["agent_actions"] = run.actions
        if run.retries:
            meta["retries"] = len(run.retries)
            meta["retry_errors"] = run.retries[-10:]
        if isinstance(error, GeneratorExit):
            meta["stream_closed_early"] = True
            error = None
    if run.recorded and not span.ended:
        if meta:
            _add_metadata(span, meta)
        if input_ is not None and rt.capture_input:
            span.input = input_
        if output is not None and error is None and rt.capture_output:
            span.output = output
        if fields:
            for key, value in fields.items():
                if key == "metadata":
                    _add_metadata(span, value)
                else:
                    setattr(span, key, value)
    end_span(span, error=error)


def _add_metadata(span: SpanRecord, meta: dict[str, Any]) -> None:
    """Merge plain ``meta`` into the span's metadata (later keys win), as ``span.update(metadata=...)`` would. The
    span's metadata dict is always one this module (or the OpenAI hand-off) made for it, so it is updated in place."""
    if span.metadata:
        span.metadata.update(meta)
    else:
        span.metadata = meta


def _set_input(span: SpanRecord, value: Any) -> None:
    if value is not None:
        span.input = value


def _deferred(inputs: Any) -> bool:
    """True for the placeholder input of a streamed run (its real input comes with the end event)."""
    return isinstance(inputs, dict) and inputs == _DEFERRED_INPUT


def _loop_running() -> bool:
    """True inside a running event loop: there langchain-core ends runs in a copied context (``shielded``
    callbacks), so a span made current at the start could not be taken back in the caller's context."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _restore(run: _Run) -> None:
    """Put back the current span and the active model run as they were before this run started."""
    if run.model_token is not None:
        try:
            active_model_run.reset(run.model_token)
        except ValueError:  # ended in another context (async on_llm_end); the stale run is ended, so inert
            pass
    if run.span_token is not None:
        try:
            current_span.reset(run.span_token)
        except ValueError:  # ended in another context: restore what that context can see
            if current_span.get() is run.span:
                current_span.set(run.previous)


# --- reading LangChain values ---------------------------------------------------------------------------------------

def _run_name(serialized: Mapping[str, Any] | None, kwargs: Mapping[str, Any], default: str) -> str:
    name = kwargs.get("name")
    if isinstance(name, str) and name:
        return name
    if serialized is not None and (type(serialized) is dict or isinstance(serialized, Mapping)):
        name = serialized.get("name")
        if isinstance(name, str) and name:
            return name
        ident = serialized.get("id")
        if isinstance(ident, (list, tuple)) and ident:
            return str(ident[-1])
    return default


def _run_metadata(tags: list[str] | None, metadata: Mapping[str, Any] | None,
                  parent_run_id: UUID | None) -> dict[str, Any]:
    """Tags of every run; the user's LangChain metadata (not the ``ls_*`` keys) on root runs only."""
    meta: dict[str, Any] = {}
    if tags:
        meta["tags"] = list(tags)
    if parent_run_id is None and metadata:
        user = {k: v for k, v in metadata.items() if not k.startswith("ls_") and k != "lc_versions"}
        if user:
            meta["langchain_metadata"] = _plain(user)
    return meta


def _plain(value: Any) -> Any:
    """A JSON-safe copy of a LangChain value: messages as role/content dicts, documents, prompt values as messages."""
    convert = _CONVERTERS.get(value.__class__)  # a LangChain class seen before: straight to its converter
    return plain(value, _special) if convert is None else convert(value)


def _special(value: Any) -> Any:
    """LangChain objects as plain values, for ``plain``; NOT_SPECIAL for anything else."""
    convert = _CONVERTERS.get(value.__class__, _UNKNOWN)
    if convert is _UNKNOWN:
        convert = _converter(value)
    return NOT_SPECIAL if convert is None else convert(value)


def _converter(value: Any) -> Any:
    """Which of the functions below turns ``value`` into plain values (None: none does); remembered per class."""
    if isinstance(value, _LC.BaseMessage):
        convert: Any = _lc_message
    elif isinstance(value, _LC.Document):
        convert = _document
    elif isinstance(value, _LC.StringPromptValue):
        convert = _string_prompt
    elif isinstance(value, _LC.PromptValue):
        convert = _prompt_messages
    else:
        convert = None
    if len(_CONVERTERS) < _MAX_CONVERTERS:  # bounded: classes made on the fly must not grow it forever
        _CONVERTERS[value.__class__] = convert
    return convert


def _document(value: Any) -> Any:
    return compact({"id": value.id, "page_content": _plain(value.page_content),
                    "metadata": _plain(value.metadata) if value.metadata else None})


def _string_prompt(value: Any) -> Any:
    return _plain(value.text)


def _prompt_messages(value: Any) -> Any:
    return [_message(m) for m in value.to_messages()]


_ROLES = {"human": "user", "ai": "assistant", "AIMessageChunk": "assistant", "system": "system", "tool": "tool",
          "function": "function"}


def _message(message: Any) -> Any:
    """A LangChain message as a plain OpenAI-style dict (role, content, tool calls, name, tool_call_id)."""
    convert = _CONVERTERS.get(message.__class__, _UNKNOWN)
    if convert is _UNKNOWN:
        convert = _converter(message)
    if convert is _lc_message:
        return _lc_message(message)
    return _plain(message_dict(message))


def _lc_message(message: Any) -> dict[str, Any]:
    fields = message.__dict__  # pydantic keeps fields here; getattr of an absent field is slow on pydantic models
    kind = fields.get("type")
    content = fields.get("content")
    out: dict[str, Any] = {"role": fields.get("role") if kind == "chat" else _ROLES.get(kind, kind),
                           "content": content if type(content) is str and len(content) <= rt.max_field_chars
                           else _plain(content)}
    calls = fields.get("tool_calls")
    if calls:
        out["tool_calls"] = _plain([tool_call_dict(c) for c in calls])
    name = fields.get("name")
    if name is not None:
        out["name"] = _plain(name)
    tool_call_id = fields.get("tool_call_id")
    if tool_call_id is not None:
        out["tool_call_id"] = _plain(tool_call_id)
    return out


_UNKNOWN = object()
_MAX_CONVERTERS = 512
_CONVERTERS: dict[type, Any] = {}
_SCALARS = frozenset({int, float, bool})


def _llm_outcome(response: Any, span: SpanRecord) -> tuple[Any, dict[str, Any]]:
    """The output and span fields of an LLMResult, reading every place providers put model and usage."""
    outputs: list[Any] = []
    usage: Usage | None = None
    model = finish = response_id = None
    get = reader(response)  # LangChain's results and messages are pydantic models: their fields, no getattr
    for batch in get("generations") or ():
        for generation in batch or ():
            get_generation = reader(generation)
            message = get_generation("message")
            info = get_generation("generation_info") or {}
            if message is not None:
                outputs.append(_message(message))
                get_message = reader(message)
                if usage is None:
                    usage = _usage(get_message("usage_metadata"))
                meta = get_message("response_metadata") or {}
                if meta:
                    model = model or meta.get("model_name") or meta.get("model") or meta.get("model_id")
                    finish = finish or meta.get("finish_reason") or meta.get("stop_reason") \
                        or meta.get("done_reason")
                    response_id = response_id or meta.get("id")
                    if usage is None:
                        usage = _usage(meta.get("token_usage") or meta.get("usage"))
            else:
                outputs.append(_plain(get_generation("text")))
            if info and (type(info) is dict or isinstance(info, Mapping)):
                model = model or info.get("model_name") or info.get("model")
                finish = finish or info.get("finish_reason") or info.get("stop_reason")
                if usage is None:
                    usage = _usage(info.get("token_usage") or info.get("usage"))
    llm_output = get("llm_output")
    if llm_output and (type(llm_output) is dict or isinstance(llm_output, Mapping)):
        if usage is None:
            usage = _usage(llm_output.get("token_usage") or llm_output.get("usage"))
        model = model or llm_output.get("model_name") or llm_output.get("model")
        response_id = response_id or llm_output.get("id")
    fields: dict[str, Any] = {}
    meta_out: dict[str, Any] = {}
    if model:
        fields["model_name"] = str(model)
    span_meta = span.metadata or {}
    if usage is not None and (span.prompt_tokens is None or span_meta.get("usage_source") == USAGE_ESTIMATED):
        usage_part = usage_fields(usage, USAGE_REPORTED)
        meta_out.update(usage_part.pop("metadata"))
        fields.update(usage_part)
    if finish is not None:
        meta_out["finish_reason"] = _plain(finish)
    if response_id is not None and "response_id" not in span_meta:
        meta_out["response_id"] = _plain(response_id)
    if meta_out:
        fields["metadata"] = meta_out
    return (outputs[0] if len(outputs) == 1 else outputs or None), fields


def _usage(block: Any) -> Usage | None:
    return None if block is None else usage_from(block)


# --- every run, without passing callbacks --------------------------------------------------------------------------

class _Global:
    """The process-wide handler that ``instrument()`` attaches through langchain-core's configure hook."""

    handler: LLMObsCallbackHandler | None = None
    hooked = False
    lock = threading.Lock()


def instrument() -> LLMObsCallbackHandler:
    """Attach one handler to every LangChain run in the process (no ``callbacks=`` needed); returns it.

    Uses ``register_configure_hook`` with a context variable whose default is the handler, so runs in any thread or
    task see it. A run that already has an ``LLMObsCallbackHandler`` in its callbacks is not given a second one.

    >>> from llmobs.integrations.langchain import instrument
    >>> instrument()                                                  # doctest: +SKIP
    """
    handler_class = _handler_class()
    from langchain_core.tracers.context import register_configure_hook

    with _Global.lock:
        if _Global.handler is None:
            _Global.handler = handler_class()
        _Global.handler._set_enabled(True)
        if not _Global.hooked:
            var: contextvars.ContextVar[LLMObsCallbackHandler | None] = contextvars.ContextVar(
                "llmobs_langchain_handler", default=_Global.handler)
            register_configure_hook(var, inheritable=True, handle_class=handler_class)
            _Global.hooked = True
        return _Global.handler


def uninstrument() -> None:
    """Stop recording runs that did not pass a handler themselves (the hook stays, its handler ignores events).

    >>> uninstrument()                                                # doctest: +SKIP
    """
    with _Global.lock:
        if _Global.handler is not None:
            _Global.handler._set_enabled(False)


def is_instrumented() -> bool:
    """True while ``instrument()`` is in effect."""
    return _Global.handler is not None and _Global.handler._enabled
