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

    __slots__ = ("span", "span_token", "previous", "model_token", "actions", "retries")

    def __init__(self, span: SpanRecord) -> None:
        self.span = span
        self.span_token: contextvars.Token[SpanRecord | None] | None = None
        self.previous: SpanRecord | None = None
        self.model_token: contextvars.Token[ActiveModelRun | None] | None = None
        self.actions: list[dict[str, Any]] | None = None
        self.retries: list[str] | None = None


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

    One handler may serve many concurrent runs (``batch``, ``abatch``, threads): open runs live in a locked map
    keyed by ``run_id`` and are removed when they end.

    >>> handler = LLMObsCallbackHandler()                                       # doctest: +SKIP
    >>> chain.invoke({"topic": "owls"}, config={"callbacks": [handler]})      # doctest: +SKIP
    """

    run_inline = True  # called in the caller's context, also in async runs (see docs/integrations_langchain.md)
    raise_error = False

    def __init__(self) -> None:
        super().__init__()
        self._runs: dict[UUID, _Run] = {}
        self._lock = threading.Lock()
        self._enabled = True

    # -- which events LangChain sends us ---------------------------------------------------------------------------
    @property
    def ignore_llm(self) -> bool:
        """Skip LLM events while disabled."""
        return not self._enabled

    @property
    def ignore_chat_model(self) -> bool:
        """Skip chat model events while disabled."""
        return not self._enabled

    @property
    def ignore_chain(self) -> bool:
        """Skip chain events while disabled."""
        return not self._enabled

    @property
    def ignore_agent(self) -> bool:
        """Skip agent and tool events while disabled."""
        return not self._enabled

    @property
    def ignore_retriever(self) -> bool:
        """Skip retriever events while disabled."""
        return not self._enabled

    @property
    def ignore_retry(self) -> bool:
        """Skip retry events while disabled."""
        return not self._enabled

    @property
    def ignore_custom_event(self) -> bool:
        """Custom events are not recorded."""
        return True

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
            kind = "agent" if "agent" in name.lower() else "chain"
            meta = _run_metadata(tags, metadata, parent_run_id)
            run_type = kwargs.get("run_type")
            if run_type:
                meta["run_type"] = run_type
            if inputs == _DEFERRED_INPUT:
                inputs = None  # a streamed run learns its input only at the end (see on_chain_end)
            self._start(run_id, parent_run_id, name, kind, _plain(inputs), meta)
        except Exception:  # noqa: BLE001 - boundary: never raise into LangChain
            _failed("on_chain_start")

    def on_chain_end(self, outputs: Any, *, run_id: UUID, parent_run_id: UUID | None = None,
                     **kwargs: Any) -> None:
        """End the chain span with its outputs (and its final inputs, which streamed runs only know now)."""
        try:
            inputs = kwargs.get("inputs")
            final_input = _plain(inputs) if inputs is not None and inputs != _DEFERRED_INPUT else None
            self._end(run_id, _plain(outputs), input_=final_input)
        except Exception:  # noqa: BLE001 - boundary: never raise into LangChain
            _failed("on_chain_end")

    def on_chain_error(self, error: BaseException, *, run_id: UUID, parent_run_id: UUID | None = None,
                       **kwargs: Any) -> None:
        """End the chain span as failed (a stream left early is not a failure)."""
        try:
            self._end(run_id, error=error)
        except Exception:  # noqa: BLE001 - boundary: never raise into LangChain
            _failed("on_chain_error")

    def on_agent_action(self, action: Any, *, run_id: UUID, parent_run_id: UUID | None = None,
                        **kwargs: Any) -> None:
        """Mark the run as an ``agent`` and note the tool it chose."""
        try:
            run = self._runs.get(run_id)
            if run is None:
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
            if run is None:
                return
            run.span.kind = "agent"
            run.span.update(metadata={"agent_finish": _plain(getattr(finish, "return_values", None))})
        except Exception:  # noqa: BLE001 - boundary: never raise into LangChain
            _failed("on_agent_finish")

    def on_retry(self, retry_state: Any, *, run_id: UUID, parent_run_id: UUID | None = None,
                 **kwargs: Any) -> None:
        """Count a retry of the run and keep the error that caused it."""
        try:
            run = self._runs.get(run_id)
            if run is None:
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
            batch = [[_message(m) for m in group] for group in messages or ()]
            self._start_model(run_id, parent_run_id, _run_name(serialized, kwargs, "chat_model"),
                              batch[0] if len(batch) == 1 else batch, tags, metadata, kwargs)
        except Exception:  # noqa: BLE001 - boundary: never raise into LangChain
            _failed("on_chat_model_start")

    def on_llm_start(self, serialized: dict[str, Any] | None, prompts: list[str], *, run_id: UUID,
                     parent_run_id: UUID | None = None, tags: list[str] | None = None,
                     metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        """Open a ``generation`` span for a text-completion LLM call."""
        try:
            prompts = [_plain(p) for p in prompts or ()]
            self._start_model(run_id, parent_run_id, _run_name(serialized, kwargs, "llm"),
                              prompts[0] if len(prompts) == 1 else prompts, tags, metadata, kwargs)
        except Exception:  # noqa: BLE001 - boundary: never raise into LangChain
            _failed("on_llm_start")

    def on_llm_new_token(self, token: Any, *, chunk: Any = None, run_id: UUID, parent_run_id: UUID | None = None,
                         **kwargs: Any) -> None:
        """Stamp the time to first token on the first token (or tool-call chunk) of a streamed call."""
        try:
            run = self._runs.get(run_id)
            if run is None or run.span.time_to_first_token_ms is not None or isinstance(run.span, NoopSpan):
                return
            if token or getattr(getattr(chunk, "message", None), "tool_call_chunks", None):
                run.span.time_to_first_token_ms = (perf_ns() - run.span.perf_start) / 1e6
        except Exception:  # noqa: BLE001 - boundary: never raise into LangChain
            _failed("on_llm_new_token")

    def on_llm_end(self, response: Any, *, run_id: UUID, parent_run_id: UUID | None = None,
                   **kwargs: Any) -> None:
        """End the generation span with the output message, model name, finish reason and usage."""
        try:
            run = self._runs.get(run_id)
            if run is None:
                return
            output, fields = _llm_outcome(response, run.span)
            self._end(run_id, output, **fields)
        except Exception:  # noqa: BLE001 - boundary: never raise into LangChain
            _failed("on_llm_end")

    def on_llm_error(self, error: BaseException, *, run_id: UUID, parent_run_id: UUID | None = None,
                     **kwargs: Any) -> None:
        """End the generation span as failed, keeping any partial output LangChain passes along."""
        try:
            run = self._runs.get(run_id)
            if run is None:
                return
            partial = kwargs.get("response")
            if partial is not None and isinstance(error, GeneratorExit):
                output, fields = _llm_outcome(partial, run.span)
                self._end(run_id, output, error=error, **fields)
            else:
                self._end(run_id, error=error)
        except Exception:  # noqa: BLE001 - boundary: never raise into LangChain
            _failed("on_llm_error")

    # -- tools and retrievers --------------------------------------------------------------------------------------
    def on_tool_start(self, serialized: dict[str, Any] | None, input_str: str, *, run_id: UUID,
                      parent_run_id: UUID | None = None, tags: list[str] | None = None,
                      metadata: dict[str, Any] | None = None, inputs: dict[str, Any] | None = None,
                      **kwargs: Any) -> None:
        """Open a ``tool`` span; in sync runs it is made current, so spans opened inside the tool nest under it."""
        try:
            meta = _run_metadata(tags, metadata, parent_run_id)
            tool_call_id = kwargs.get("tool_call_id")
            if tool_call_id:
                meta["tool_call_id"] = tool_call_id
            self._start(run_id, parent_run_id, _run_name(serialized, kwargs, "tool"), "tool",
                        _plain(inputs if inputs is not None else input_str), meta, make_current=True)
        except Exception:  # noqa: BLE001 - boundary: never raise into LangChain
            _failed("on_tool_start")

    def on_tool_end(self, output: Any, *, run_id: UUID, parent_run_id: UUID | None = None,
                    **kwargs: Any) -> None:
        """End the tool span with what the tool returned."""
        try:
            self._end(run_id, _plain(output))
        except Exception:  # noqa: BLE001 - boundary: never raise into LangChain
            _failed("on_tool_end")

    def on_tool_error(self, error: BaseException, *, run_id: UUID, parent_run_id: UUID | None = None,
                      **kwargs: Any) -> None:
        """End the tool span as failed."""
        try:
            self._end(run_id, error=error)
        except Exception:  # noqa: BLE001 - boundary: never raise into LangChain
            _failed("on_tool_error")

    def on_retriever_start(self, serialized: dict[str, Any] | None, query: str, *, run_id: UUID,
                           parent_run_id: UUID | None = None, tags: list[str] | None = None,
                           metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        """Open a ``retriever`` span for the query (made current in sync runs)."""
        try:
            self._start(run_id, parent_run_id, _run_name(serialized, kwargs, "retriever"), "retriever", _plain(query),
                        _run_metadata(tags, metadata, parent_run_id), make_current=True)
        except Exception:  # noqa: BLE001 - boundary: never raise into LangChain
            _failed("on_retriever_start")

    def on_retriever_end(self, documents: Sequence[Any], *, run_id: UUID, parent_run_id: UUID | None = None,
                         **kwargs: Any) -> None:
        """End the retriever span with the documents found."""
        try:
            docs = list(documents or ())
            self._end(run_id, _plain(docs), metadata={"documents": len(docs)})
        except Exception:  # noqa: BLE001 - boundary: never raise into LangChain
            _failed("on_retriever_end")

    def on_retriever_error(self, error: BaseException, *, run_id: UUID, parent_run_id: UUID | None = None,
                           **kwargs: Any) -> None:
        """End the retriever span as failed."""
        try:
            self._end(run_id, error=error)
        except Exception:  # noqa: BLE001 - boundary: never raise into LangChain
            _failed("on_retriever_error")

    # -- run bookkeeping -------------------------------------------------------------------------------------------
    def _start_model(self, run_id: UUID, parent_run_id: UUID | None, name: str, input_: Any,
                     tags: list[str] | None, metadata: dict[str, Any] | None, kwargs: dict[str, Any]) -> None:
        params = kwargs.get("invocation_params") or {}
        md = metadata or {}
        request_model = params.get("model") or params.get("model_name") or md.get("ls_model_name")
        model_parameters = {k: _plain(v) for k, v in params.items() if k not in _PARAM_SKIP and v is not None}
        for ls_key, key in _LS_PARAMS.items():
            if key not in model_parameters and md.get(ls_key) is not None:
                model_parameters[key] = md[ls_key]
        meta = _run_metadata(tags, metadata, parent_run_id)
        meta["model_parameters"] = model_parameters
        if request_model is not None:
            meta["request_model"] = str(request_model)
        provider = md.get("ls_provider") or params.get("_type")
        run = self._start(run_id, parent_run_id, name, "generation", input_, meta,
                          model_name=str(request_model) if request_model is not None else None,
                          provider=str(provider) if provider is not None else None)
        if run is not None and (kwargs.get("batch_size") or 1) == 1:
            # One prompt per model call: the OpenAI integration may enrich this span (see ActiveModelRun).
            run.model_token = active_model_run.set(ActiveModelRun(run.span))

    def _start(self, run_id: UUID, parent_run_id: UUID | None, name: str, kind: str, input_: Any,
               metadata: dict[str, Any], *, make_current: bool = False, model_name: str | None = None,
               provider: str | None = None) -> _Run | None:
        if not rt.enabled:
            return None
        parent = None
        if parent_run_id is not None:
            parent_run = self._runs.get(parent_run_id)
            if parent_run is not None:
                parent = parent_run.span
        span = start_span(name, kind, source=SOURCE, parent=parent)
        run = _Run(span)
        if span.__class__ is not NoopSpan:
            # Values made by _plain are fresh JSON-safe copies: stored as they are rather than snapshotted again.
            if input_ is not None and rt.capture_input:
                span.input = input_
            if metadata:
                span.metadata = metadata
            if model_name is not None:
                span.model_name = model_name
            if provider is not None:
                span.provider = provider
            if make_current and not _loop_running():
                run.previous = current_span.get()
                run.span_token = current_span.set(span)
        with self._lock:
            self._runs[run_id] = run
        return run

    def _end(self, run_id: UUID, output: Any = None, *, error: BaseException | None = None,
             input_: Any = None, metadata: dict[str, Any] | None = None, **fields: Any) -> None:
        with self._lock:
            run = self._runs.pop(run_id, None)
        if run is None:
            return
        if run.model_token is not None or run.span_token is not None:
            _restore(run)
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
        if span.__class__ is not NoopSpan and not span.ended:
            # Values made by _plain are fresh JSON-safe copies: stored as they are.
            if meta:
                span.metadata = {**span.metadata, **meta} if span.metadata else meta
            if input_ is not None and rt.capture_input:
                span.input = input_
            if output is not None and error is None and rt.capture_output:
                span.output = output
        if fields:
            end_span(span, error=error, **fields)
        else:
            end_span(span, error=error)


if TYPE_CHECKING:
    from langchain_core.callbacks.base import BaseCallbackHandler

    class LLMObsCallbackHandler(_HandlerMixin, BaseCallbackHandler):
        """What ``_handler_class()`` builds at run time, spelled out for type checkers."""


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
    if isinstance(serialized, Mapping):
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
    return plain(value, _special)


def _special(value: Any) -> Any:
    """LangChain objects as plain values, for ``plain``; NOT_SPECIAL for anything else."""
    if isinstance(value, _LC.BaseMessage):
        return _message(value)
    if isinstance(value, _LC.Document):
        return compact({"id": value.id, "page_content": _plain(value.page_content),
                        "metadata": _plain(value.metadata) if value.metadata else None})
    if isinstance(value, _LC.StringPromptValue):
        return _plain(value.text)
    if isinstance(value, _LC.PromptValue):
        return [_message(m) for m in value.to_messages()]
    return NOT_SPECIAL


_ROLES = {"human": "user", "ai": "assistant", "AIMessageChunk": "assistant", "system": "system", "tool": "tool",
          "function": "function"}


def _message(message: Any) -> Any:
    """A LangChain message as a plain OpenAI-style dict (role, content, tool calls, name, tool_call_id)."""
    if not isinstance(message, _LC.BaseMessage):
        return _plain(message_dict(message))
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


def _llm_outcome(response: Any, span: SpanRecord) -> tuple[Any, dict[str, Any]]:
    """The output and span fields of an LLMResult, reading every place providers put model and usage."""
    outputs: list[Any] = []
    usage: Usage | None = None
    model = finish = response_id = None
    for batch in getattr(response, "generations", None) or ():
        for generation in batch or ():
            message = getattr(generation, "message", None)
            info = getattr(generation, "generation_info", None) or {}
            if message is not None:
                outputs.append(_message(message))
                if usage is None:
                    usage = usage_from(getattr(message, "usage_metadata", None))
                meta = getattr(message, "response_metadata", None) or {}
                model = model or meta.get("model_name") or meta.get("model") or meta.get("model_id")
                finish = finish or meta.get("finish_reason") or meta.get("stop_reason") or meta.get("done_reason")
                response_id = response_id or meta.get("id")
                if usage is None:
                    usage = usage_from(meta.get("token_usage") or meta.get("usage"))
            else:
                outputs.append(_plain(getattr(generation, "text", None)))
            if isinstance(info, Mapping):
                model = model or info.get("model_name") or info.get("model")
                finish = finish or info.get("finish_reason") or info.get("stop_reason")
                if usage is None:
                    usage = usage_from(info.get("token_usage") or info.get("usage"))
    llm_output = getattr(response, "llm_output", None) or {}
    if isinstance(llm_output, Mapping):
        if usage is None:
            usage = usage_from(llm_output.get("token_usage") or llm_output.get("usage"))
        model = model or llm_output.get("model_name") or llm_output.get("model")
        response_id = response_id or llm_output.get("id")
    fields: dict[str, Any] = {}
    meta_out: dict[str, Any] = {}
    if model:
        fields["model_name"] = str(model)
    span_meta = getattr(span, "metadata", None) or {}
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
        _Global.handler._enabled = True
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
            _Global.handler._enabled = False


def is_instrumented() -> bool:
    """True while ``instrument()`` is in effect."""
    return _Global.handler is not None and _Global.handler._enabled
