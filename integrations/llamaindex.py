"""LlamaIndex integration: the spans and events of ``llama_index.core.instrumentation`` become llmobs spans.

``instrument()`` adds one span handler and one event handler to LlamaIndex's root dispatcher. Query engines, chat
engines and synthesizers become ``chain`` spans, retrievers ``retriever``, LLM chat/complete calls ``generation``
(model, messages, output, tokens), embeddings ``embedding``, tools ``tool`` and agents ``agent``. A LlamaIndex call
made inside an ``@llmobs.observe`` function nests under it; while a LlamaIndex span is open its llmobs span is the
current span, so ``@observe`` functions it calls (a custom tool, say) nest under it.

>>> from llmobs.integrations import llamaindex
>>> llamaindex.instrument()                                   # doctest: +SKIP
>>> index.as_query_engine().query("What is llmobs?")          # doctest: +SKIP
"""

from __future__ import annotations

import contextvars
import inspect
import json
import logging
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import llmobs
from llmobs.context import SpanRecord, current_span, perf_ns

__all__ = ["instrument", "uninstrument"]

log = logging.getLogger("llmobs")
INSTALL_HINT = "pip install 'llmobs[llamaindex]'"
SOURCE = "llamaindex"
MAX_ITEMS = 50  # list elements kept when converting LlamaIndex values for input/output
MAX_NODE_CHARS = 1000  # text kept per retrieved node
MAX_STREAM_CHARS = 200_000  # streamed text kept for a span's output (the snapshot truncates further)
MAX_STREAM_PIECES = 100_000  # streamed deltas kept per LLM call
_UUID_SUFFIX = 37  # "-" + a uuid4: how LlamaIndex ends every span id
_LLM_CALLS = frozenset({"chat", "achat", "stream_chat", "astream_chat",
                        "complete", "acomplete", "stream_complete", "astream_complete"})
_PROVIDERS = {"azure_openai": "azure", "gemini": "google", "google_genai": "google", "vertex": "google",
              "mistralai": "mistral", "bedrock": "aws", "bedrock_converse": "aws", "togetherai": "together"}
_START_EVENT_TAG = "llamaindex.start_event"
_STEP_INPUT_TAG = "llamaindex.step.input_summary"

_lock = threading.Lock()
_installed: _Installation | None = None
_types: _Types | None = None


# -- public API ------------------------------------------------------------------------------------------------------
def instrument() -> None:
    """Record LlamaIndex work as llmobs spans (source ``llamaindex``); calling it again changes nothing.

    Raises ImportError naming the extra to install when llama-index-core is missing.

    >>> from llmobs.integrations import llamaindex
    >>> llamaindex.instrument()                                   # doctest: +SKIP
    """
    global _installed, _types
    dispatcher = _root_dispatcher()
    with _lock:
        if _installed is not None and _installed.attached_to(dispatcher):
            return
        if _installed is not None:
            _installed.detach()
        if _types is None:
            _types = _Types.load()
        span_cls, event_cls = _handler_classes()
        tracker = _Tracker()
        span_handler, event_handler = span_cls(), event_cls()
        span_handler._tracker = tracker
        event_handler._tracker = tracker
        dispatcher.add_span_handler(span_handler)
        dispatcher.add_event_handler(event_handler)
        _installed = _Installation(dispatcher, span_handler, event_handler, tracker)


def uninstrument() -> None:
    """Stop recording LlamaIndex work: remove both handlers; spans still open are ended. Safe to call twice.

    >>> from llmobs.integrations import llamaindex
    >>> llamaindex.uninstrument()
    """
    global _installed
    with _lock:
        if _installed is not None:
            _installed.detach()
            _installed = None


# -- LlamaIndex glue -------------------------------------------------------------------------------------------------
def _root_dispatcher() -> Any:
    """LlamaIndex's root dispatcher; ImportError with the install command when llama-index-core is absent."""
    try:
        from llama_index.core.instrumentation import get_dispatcher
    except ImportError as exc:
        raise ImportError("llmobs.integrations.llamaindex needs llama-index-core; install it with: "
                          f"{INSTALL_HINT}") from exc
    return get_dispatcher()


@dataclass
class _Installation:
    """The handlers instrument() attached, so uninstrument() removes exactly those."""

    dispatcher: Any
    span_handler: Any
    event_handler: Any
    tracker: _Tracker

    def attached_to(self, dispatcher: Any) -> bool:
        """Whether our span handler is still registered on ``dispatcher``."""
        return self.dispatcher is dispatcher and any(h is self.span_handler for h in dispatcher.span_handlers)

    def detach(self) -> None:
        """Remove both handlers (new lists, so a dispatcher iterating in another thread is unaffected)."""
        d = self.dispatcher
        d.span_handlers = [h for h in d.span_handlers if h is not self.span_handler]
        d.event_handlers = [h for h in d.event_handlers if h is not self.event_handler]
        self.tracker.end_all("uninstrumented while open")


_handler_cache: tuple[type, type] | None = None


def _handler_classes() -> tuple[type, type]:
    """The two handler classes, defined on first use because their bases come from llama-index."""
    global _handler_cache
    if _handler_cache is not None:
        return _handler_cache
    from llama_index.core.instrumentation.event_handlers import BaseEventHandler
    from llama_index.core.instrumentation.span import BaseSpan
    from llama_index.core.instrumentation.span_handlers import BaseSpanHandler
    from pydantic import PrivateAttr

    class LlmobsSpanHandler(BaseSpanHandler[BaseSpan]):
        """Opens an llmobs span when a LlamaIndex span enters and ends it on exit or drop."""

        _tracker: Any = PrivateAttr(default=None)

        @classmethod
        def class_name(cls) -> str:
            """Name LlamaIndex shows for this handler."""
            return "LlmobsSpanHandler"

        def span_enter(self, id_: str, bound_args: inspect.BoundArguments, instance: Any | None = None,
                       parent_id: str | None = None, tags: dict[str, Any] | None = None, **kwargs: Any) -> None:
            """Open the llmobs span (runs in the context of the work, so it becomes the current span)."""
            _guard("span enter", self._tracker.enter, id_, bound_args, instance, parent_id, tags)

        def span_exit(self, id_: str, bound_args: inspect.BoundArguments, instance: Any | None = None,
                      result: Any | None = None, **kwargs: Any) -> None:
            """End the llmobs span with the result (streams end later, when they are consumed)."""
            _guard("span exit", self._tracker.exit, id_, result)

        def span_drop(self, id_: str, bound_args: inspect.BoundArguments, instance: Any | None = None,
                      err: BaseException | None = None, **kwargs: Any) -> None:
            """End the llmobs span as failed with ``err``."""
            _guard("span drop", self._tracker.drop, id_, err)

        def new_span(self, *args: Any, **kwargs: Any) -> None:
            """Unused: span_enter is overridden."""
            return None

        def prepare_to_exit_span(self, *args: Any, **kwargs: Any) -> None:
            """Unused: span_exit is overridden."""
            return None

        def prepare_to_drop_span(self, *args: Any, **kwargs: Any) -> None:
            """Unused: span_drop is overridden."""
            return None

        def close(self) -> None:
            """Dispatcher shutdown: end whatever is still open."""
            _guard("close", self._tracker.end_all, "dispatcher shutdown")

    class LlmobsEventHandler(BaseEventHandler):
        """Adds LLM and embedding details (model, messages, usage, streamed chunks) to the open llmobs spans."""

        _tracker: Any = PrivateAttr(default=None)

        @classmethod
        def class_name(cls) -> str:
            """Name LlamaIndex shows for this handler."""
            return "LlmobsEventHandler"

        def handle(self, event: Any, **kwargs: Any) -> None:
            """Route one event to the span it belongs to."""
            _guard("event", self._tracker.on_event, event)

    _handler_cache = (LlmobsSpanHandler, LlmobsEventHandler)
    return _handler_cache


def _guard(what: str, fn: Callable[..., Any], *args: Any) -> None:
    """Run a handler step; any failure is logged on the llmobs logger and never reaches LlamaIndex or the user."""
    try:
        fn(*args)
    except Exception:  # noqa: BLE001 - boundary with the user's program
        log.exception("llmobs: LlamaIndex %s failed", what)


def _classes(module: str, *names: str) -> tuple[type, ...]:
    """The named classes of ``module`` that exist in the installed llama-index (names move between versions)."""
    try:
        mod = __import__(module, fromlist=list(names))
    except Exception:  # noqa: BLE001 - an optional part of llama-index
        return ()
    return tuple(c for c in (getattr(mod, n, None) for n in names) if isinstance(c, type))


@dataclass(frozen=True)
class _Types:
    """LlamaIndex classes used to classify spans and shape values, imported once."""

    llm: tuple[type, ...]
    embedding: tuple[type, ...]
    retriever: tuple[type, ...]
    engine: tuple[type, ...]
    tool: tuple[type, ...]
    agent: tuple[type, ...]
    workflow: tuple[type, ...]
    postprocessor: tuple[type, ...]
    query_bundle: tuple[type, ...]
    node_with_score: tuple[type, ...]
    node: tuple[type, ...]
    chat_message: tuple[type, ...]
    chat_response: tuple[type, ...]
    completion_response: tuple[type, ...]
    response: tuple[type, ...]
    streaming: tuple[type, ...]
    streaming_chat: tuple[type, ...]
    agent_chat_response: tuple[type, ...]
    tool_output: tuple[type, ...]
    prompt: tuple[type, ...]
    stop_event: tuple[type, ...]
    agent_output: tuple[type, ...]
    event: tuple[type, ...]

    @classmethod
    def load(cls) -> _Types:
        """Import the classes from llama-index-core (and the workflows package it depends on)."""
        core = "llama_index.core"
        return cls(
            llm=_classes(f"{core}.base.llms.base", "BaseLLM"),
            embedding=_classes(f"{core}.base.embeddings.base", "BaseEmbedding")
            + _classes(f"{core}.base.embeddings.base_sparse", "BaseSparseEmbedding"),
            retriever=_classes(f"{core}.base.base_retriever", "BaseRetriever"),
            engine=_classes(f"{core}.base.base_query_engine", "BaseQueryEngine")
            + _classes(f"{core}.chat_engine.types", "BaseChatEngine")
            + _classes(f"{core}.response_synthesizers.base", "BaseSynthesizer"),
            tool=_classes(f"{core}.tools.types", "BaseTool"),
            agent=_classes(f"{core}.agent.workflow", "BaseWorkflowAgent", "AgentWorkflow"),
            workflow=_classes("workflows", "Workflow"),
            postprocessor=_classes(f"{core}.postprocessor.types", "BaseNodePostprocessor"),
            query_bundle=_classes(f"{core}.schema", "QueryBundle"),
            node_with_score=_classes(f"{core}.schema", "NodeWithScore"),
            node=_classes(f"{core}.schema", "BaseNode"),
            chat_message=_classes(f"{core}.base.llms.types", "ChatMessage"),
            chat_response=_classes(f"{core}.base.llms.types", "ChatResponse"),
            completion_response=_classes(f"{core}.base.llms.types", "CompletionResponse"),
            response=_classes(f"{core}.base.response.schema", "Response", "PydanticResponse"),
            streaming=_classes(f"{core}.base.response.schema", "StreamingResponse", "AsyncStreamingResponse"),
            streaming_chat=_classes(f"{core}.chat_engine.types", "StreamingAgentChatResponse"),
            agent_chat_response=_classes(f"{core}.chat_engine.types", "AgentChatResponse"),
            tool_output=_classes(f"{core}.tools.types", "ToolOutput"),
            prompt=_classes(f"{core}.prompts.base", "BasePromptTemplate"),
            stop_event=_classes("workflows.events", "StopEvent"),
            agent_output=_classes(f"{core}.agent.workflow.workflow_events", "AgentOutput"),
            event=_classes("workflows.events", "Event"),
        )


def _t() -> _Types:
    """The loaded class table (instrument() loads it before any handler can run)."""
    assert _types is not None
    return _types


# -- span bookkeeping ------------------------------------------------------------------------------------------------
class _Entry:
    """One LlamaIndex span we record, with what the events add to it until it ends."""

    __slots__ = ("li_id", "record", "token", "owner", "kind", "is_workflow", "exited", "ended", "aliases",
                 "model", "input_text", "own_start", "response", "streamed", "first_token", "finalizer", "deltas",
                 "run", "run_token", "chunks", "chunk_count", "chunk_tokens", "dimensions")

    def __init__(self, li_id: str, record: SpanRecord, owner: int, kind: str) -> None:
        self.li_id = li_id
        self.record = record
        self.token: contextvars.Token[SpanRecord | None] | None = None
        self.owner = owner
        self.kind = kind
        self.is_workflow = False
        self.exited = False
        self.ended = False
        self.aliases: list[str] = []
        self.model: str | None = None
        self.input_text: str | None = None
        self.own_start = False
        self.response: Any = None
        self.streamed = False
        self.first_token = False
        self.finalizer: weakref.finalize | None = None
        self.deltas: list[str] = []
        self.run: Any = None  # the hand-off object that lets the OpenAI integration fill this span
        self.run_token: contextvars.Token[Any] | None = None
        self.chunks: list[str] = []
        self.chunk_count = 0
        self.chunk_tokens = 0
        self.dimensions: int | None = None


class _Tracker:
    """Maps LlamaIndex span ids to llmobs spans; all of the integration's state lives here."""

    def __init__(self) -> None:
        self._spans: dict[str, _Entry] = {}
        # Spans folded into a recorded ancestor (or, mapping to None, spans we do not record at all).
        self._aliases: dict[str, _Entry | None] = {}
        self._kinds: dict[tuple[type, str], str | None] = {}
        self._lock = threading.Lock()
        self._followers: weakref.WeakKeyDictionary[Any, _Follower] = weakref.WeakKeyDictionary()

    # -- span handler --------------------------------------------------------------------------------------------
    def enter(self, li_id: str, bound_args: Any, instance: Any, parent_id: str | None,
              tags: dict[str, Any] | None) -> None:
        """Open an llmobs span for a LlamaIndex span we record, or note which recorded span it belongs to."""
        parent = self._resolve(parent_id)
        name = _name_of(li_id)
        kind = self._classify(instance, name.rpartition(".")[2], parent)
        if kind is None or _folds(parent, instance, kind):
            self._aliases[li_id] = parent
            return
        record = llmobs.start_span(_span_name(name, instance, kind), kind, source=SOURCE,
                                   parent=_parent_record(parent))
        entry = _Entry(li_id, record, id(instance) if instance is not None else 0, kind)
        entry.is_workflow = instance is not None and isinstance(instance, _t().workflow)
        self._spans[li_id] = entry
        entry.token = current_span.set(record)
        if record.trace.sampled:
            if kind == "generation":
                _offer_model_run(entry)
            _guard("span describe", _describe, entry, instance, bound_args, tags)

    def exit(self, li_id: str, result: Any) -> None:
        """End the span with ``result``; a streamed result keeps it open until the stream ends."""
        entry = self._spans.get(li_id)
        if entry is None:
            self._exit_alias(li_id, result)
            return
        _restore(entry)
        entry.exited = True
        if not entry.record.trace.sampled:
            self._claim(entry)
            return
        if entry.kind == "generation" and _is_stream(result):
            self._await_stream(entry, result)
            return
        if not self._claim(entry):
            return
        if _follow_streaming_response(self, entry, result):
            return
        if entry.kind == "generation":
            _end_generation(entry, result)
        elif entry.kind == "embedding":
            _end_embedding(entry, result)
        else:
            _end_plain(entry, result)

    def drop(self, li_id: str, err: BaseException | None) -> None:
        """End the span as failed (the dispatcher re-raises ``err`` to the caller itself)."""
        entry = self._spans.get(li_id)
        if entry is None:
            self._aliases.pop(li_id, None)
            return
        _restore(entry)
        entry.exited = True
        if self._claim(entry):
            llmobs.end_span(entry.record, error=err if err is not None else RuntimeError("LlamaIndex span dropped"))

    def _exit_alias(self, li_id: str, result: Any) -> None:
        """Forget a folded span, unless it returned a stream whose events will still name it."""
        owner = self._aliases.get(li_id)
        if owner is not None and _is_stream(result) and not owner.ended:
            owner.aliases.append(li_id)
        else:
            self._aliases.pop(li_id, None)

    def _await_stream(self, entry: _Entry, stream: Any) -> None:
        """A generation returned a generator: it ends on the end event, or when the stream is dropped unread."""
        entry.streamed = True
        try:
            entry.finalizer = weakref.finalize(stream, self.abandon, entry)
            entry.finalizer.atexit = False
        except TypeError:  # an iterator that cannot be weakly referenced: rely on the end event
            entry.finalizer = None

    def abandon(self, entry: _Entry) -> None:
        """The stream was garbage-collected before it ended: record what arrived so far."""
        _guard("stream abandon", self.end_generation, entry, None, "abandoned")

    def end_generation(self, entry: _Entry, error: BaseException | None = None, note: str | None = None) -> None:
        """End a streamed generation (end event, exception event or abandonment), once."""
        if self._claim(entry) and entry.record.trace.sampled:
            _end_generation(entry, None, error=error, note=note)

    def _claim(self, entry: _Entry) -> bool:
        """Mark ``entry`` ended and forget its ids; False when someone ended it already."""
        with self._lock:
            if entry.ended:
                return False
            entry.ended = True
            if self._spans.get(entry.li_id) is entry:
                del self._spans[entry.li_id]
            for alias in entry.aliases:
                self._aliases.pop(alias, None)
        if entry.finalizer is not None:
            entry.finalizer.detach()
        return True

    def end_all(self, reason: str) -> None:
        """End every span still open (uninstrument, dispatcher shutdown), marking it incomplete."""
        with self._lock:
            entries = list(self._spans.values())
        for entry in entries:
            if self._claim(entry) and entry.record.trace.sampled:
                llmobs.end_span(entry.record, metadata={"incomplete": reason})
        for follower in list(self._followers.values()):
            follower.finish(None, reason)
        self._aliases.clear()

    def _resolve(self, li_id: str | None) -> _Entry | None:
        """The recorded span a LlamaIndex span id stands for (itself, or the span it was folded into)."""
        if not li_id:
            return None
        entry = self._spans.get(li_id)
        return entry if entry is not None else self._aliases.get(li_id)

    def _classify(self, instance: Any, method: str, parent: _Entry | None) -> str | None:
        """The llmobs kind for a span of ``instance.method``, or None for LlamaIndex internals we do not record."""
        if instance is None:
            # Workflow steps are plain functions: record them as steps of the run they belong to.
            return "chain" if parent is not None and parent.is_workflow else None
        key = (type(instance), method)
        if key not in self._kinds:
            self._kinds[key] = _kind_of(instance, method)
        return self._kinds[key]

    # -- event handler ------------------------------------------------------------------------------------------
    def on_event(self, event: Any) -> None:
        """Add an event's details to the span it was emitted in."""
        handler = _EVENT_HANDLERS.get(type(event).__name__)
        if handler is None:
            return
        span_id = getattr(event, "span_id", None)
        if not span_id:
            return
        entry = self._spans.get(span_id)
        own = entry is not None
        if entry is None:
            entry = self._aliases.get(span_id)
        if entry is None or entry.ended or not entry.record.trace.sampled:
            return
        handler(self, entry, event, own)

    def register_follower(self, stream: Any, follower: _Follower) -> None:
        """Remember that ``stream`` is our wrapper, so outer spans returning it wait on the same follower."""
        self._followers[stream] = follower

    def follower_of(self, stream: Any) -> _Follower | None:
        """The follower already wrapping ``stream`` (an outer span returning the same streaming response)."""
        try:
            return self._followers.get(stream)
        except TypeError:
            return None


def _name_of(li_id: str) -> str:
    """``Class.method`` from a LlamaIndex span id (``Class.method-<uuid4>``)."""
    if len(li_id) > _UUID_SUFFIX and li_id[-_UUID_SUFFIX] == "-":
        return li_id[:-_UUID_SUFFIX]
    return li_id.split("-", 1)[0]


def _kind_of(instance: Any, method: str) -> str | None:
    """Kind by the component family of ``instance``; None for components outside the families we record."""
    t = _t()
    if isinstance(instance, t.llm):
        if method.lstrip("_") in _LLM_CALLS:
            return "generation"
        return None if method.startswith("_") else "chain"
    if isinstance(instance, t.embedding):
        return "embedding"
    if isinstance(instance, t.retriever):
        return "retriever"
    if isinstance(instance, t.engine):
        return "chain"
    if isinstance(instance, t.tool):
        return "tool"
    if isinstance(instance, t.agent):
        return "agent" if method == "run" else "chain"
    if isinstance(instance, t.workflow):
        return "chain"
    if isinstance(instance, t.postprocessor):
        return "span"
    return None


def _folds(parent: _Entry | None, instance: Any, kind: str) -> bool:
    """A call on the same object and of the same kind as its parent (``query`` -> ``_query``) is part of it."""
    return (parent is not None and instance is not None and parent.owner == id(instance)
            and parent.kind == kind and not parent.is_workflow)


def _parent_record(parent: _Entry | None) -> SpanRecord | None:
    """The LlamaIndex parent's span, unless a span opened inside it (an ``@observe`` function) is current."""
    current = current_span.get()
    if parent is None:
        return current
    record = parent.record
    if (current is not None and current is not record and current.trace is record.trace and not current.ended
            and current.perf_start >= record.perf_start):
        return current
    return record


def _restore(entry: _Entry) -> None:
    """Make the span that was current before ``entry`` current again (only possible in the context that set it)."""
    token, entry.token = entry.token, None
    run_token, entry.run_token = entry.run_token, None
    if run_token is not None and _model_run is not None:
        _reset(_model_run[1], run_token)
    if token is not None:
        _reset(current_span, token)


def _reset(var: contextvars.ContextVar[Any], token: contextvars.Token[Any]) -> None:
    """Reset ``var``; a no-op when exiting from another context (a future's callback never saw the set)."""
    try:
        var.reset(token)
    except ValueError:
        pass


def _load_model_run() -> tuple[Any, Any] | None:
    """(ActiveModelRun, active_model_run) from the shared integration helpers, or None when they are absent."""
    try:
        from llmobs.integrations._common import ActiveModelRun, active_model_run
    except Exception:  # noqa: BLE001 - the other integrations are optional
        return None
    return ActiveModelRun, active_model_run


_model_run = _load_model_run()


def _offer_model_run(entry: _Entry) -> None:
    """While an LLM call's span is open, let the OpenAI client integration fill it instead of adding a second span."""
    if _model_run is None:
        return
    run_cls, var = _model_run
    entry.run = run_cls(entry.record)
    entry.run_token = var.set(entry.run)


def _enriched(entry: _Entry) -> bool:
    """Whether a lower-level integration (OpenAI) already recorded this call's model, tokens and usage."""
    return bool(getattr(entry.run, "enriched", False))


def _span_name(name: str, instance: Any, kind: str) -> str:
    """Tools are named by their tool name; everything else ``Class.method`` as LlamaIndex names it."""
    if kind == "tool":
        tool_name = getattr(getattr(instance, "metadata", None), "name", None)
        if isinstance(tool_name, str) and tool_name:
            return tool_name
    return name


# -- span content ----------------------------------------------------------------------------------------------------
def _describe(entry: _Entry, instance: Any, bound_args: Any, tags: dict[str, Any] | None) -> None:
    """Record the input, and for model calls the model and provider, when the span opens."""
    args = _arguments(bound_args)
    record = entry.record
    if entry.kind in ("generation", "embedding"):
        entry.model = _model_of(instance)
        record.update(model_name=entry.model, provider=_provider_of(instance))
    if entry.kind == "generation" and _set_llm_input(entry, args.get("messages"), args.get("prompt")):
        return
    summary = _workflow_summary(entry, instance, tags)
    if summary is not None:
        record.update(input=summary)
    elif entry.kind == "tool":
        record.update(input={k: _plain(v) for k, v in args.items()})
    else:
        record.update(input=_plain_args(args))
    if entry.kind == "tool":
        description = getattr(getattr(instance, "metadata", None), "description", None)
        record.update(metadata={"tool_class": type(instance).__name__, "description": description})
    elif entry.kind == "agent":
        record.update(metadata={"agent_name": getattr(instance, "name", None)})


def _set_llm_input(entry: _Entry, messages: Any, prompt: Any) -> bool:
    """Record an LLM call's messages or prompt (and keep their text for estimates); False when it has neither."""
    if isinstance(messages, (list, tuple)):
        entry.input_text = _messages_text(messages)
        entry.record.update(input=[_message(m) for m in messages[:MAX_ITEMS]])
        return True
    if isinstance(prompt, str):
        entry.input_text = prompt
        entry.record.update(input=prompt)
        return True
    return False


def _workflow_summary(entry: _Entry, instance: Any, tags: dict[str, Any] | None) -> str | None:
    """The start-event summary LlamaIndex puts in instrument tags for workflow runs and steps, if any."""
    if instance is not None and not entry.is_workflow:
        return None
    if not tags:
        try:
            from llama_index.core.instrumentation.dispatcher import active_instrument_tags

            tags = active_instrument_tags.get()
        except Exception:  # noqa: BLE001 - older layouts
            return None
    value = (tags or {}).get(_START_EVENT_TAG if instance is not None else _STEP_INPUT_TAG)
    return value if isinstance(value, str) else None


def _arguments(bound_args: Any) -> dict[str, Any]:
    """The call's arguments by name, without ``self``; ``**kwargs`` merged in, ``*args`` kept when not empty."""
    try:
        arguments = dict(bound_args.arguments)
        params = bound_args.signature.parameters
    except Exception:  # noqa: BLE001 - not a BoundArguments
        return {}
    out: dict[str, Any] = {}
    for key, value in arguments.items():
        param = params.get(key)
        kind = getattr(param, "kind", None)
        if key in ("self", "cls"):
            continue
        if kind is inspect.Parameter.VAR_KEYWORD and isinstance(value, dict):
            out.update(value)
        elif kind is inspect.Parameter.VAR_POSITIONAL:
            if value:
                out[key] = list(value)
        else:
            out[key] = value
    return out


def _plain_args(args: dict[str, Any]) -> Any:
    """Arguments as recorded input: None values dropped, a single argument recorded as its value."""
    kept = {k: v for k, v in args.items() if v is not None}
    if not kept:
        return None
    if len(kept) == 1:
        return _plain(next(iter(kept.values())))
    return {k: _plain(v) for k, v in kept.items()}


def _plain(value: Any, depth: int = 0) -> Any:
    """A LlamaIndex value in a readable JSON-friendly shape (query text, compact nodes, messages, response text).

    Anything unknown is returned as is; llmobs' snapshot makes it safe.
    """
    if value is None or isinstance(value, (str, int, float, bool)) or depth > 6:
        return value
    t = _t()
    if isinstance(value, t.query_bundle):
        return getattr(value, "query_str", None)
    if isinstance(value, t.node_with_score):
        return _node(getattr(value, "node", None), getattr(value, "score", None))
    if isinstance(value, t.node):
        return _node(value, None)
    if isinstance(value, t.chat_message):
        return _message(value)
    if isinstance(value, t.chat_response):
        return _message(getattr(value, "message", None))
    if isinstance(value, t.completion_response):
        return getattr(value, "text", None)
    if isinstance(value, t.response + t.agent_chat_response):
        return _plain(getattr(value, "response", None), depth + 1)
    if isinstance(value, t.streaming):
        return {"streaming": True, "response": getattr(value, "response_txt", None)}
    if isinstance(value, t.streaming_chat):
        return {"streaming": True, "response": getattr(value, "response", None) or None}
    if isinstance(value, t.tool_output):
        return getattr(value, "content", None)
    if isinstance(value, t.prompt):
        template = getattr(value, "template", None) or getattr(getattr(value, "default_template", None),
                                                                "template", None)
        return template if isinstance(template, str) else type(value).__name__
    if isinstance(value, t.agent_output):
        return _agent_output(value)
    if isinstance(value, t.stop_event):
        return _plain(getattr(value, "result", None), depth + 1)
    if isinstance(value, t.event):
        return _workflow_event(value, depth)
    if isinstance(value, dict):
        return {str(k): _plain(v, depth + 1) for k, v in list(value.items())[:MAX_ITEMS]}
    if isinstance(value, (list, tuple)):
        return _plain_list(value, depth)
    return value


def _workflow_event(event: Any, depth: int) -> dict[str, Any]:
    """A workflow event as its type and fields (declared ones and the free-form ``_data``)."""
    out: dict[str, Any] = {"event": type(event).__name__}
    for name in list(getattr(type(event), "model_fields", {}))[:MAX_ITEMS]:
        out[name] = _plain(getattr(event, name, None), depth + 1)
    data = getattr(event, "_data", None)
    if isinstance(data, dict):
        for key, value in list(data.items())[:MAX_ITEMS]:
            out.setdefault(str(key), _plain(value, depth + 1))
    return out


def _plain_list(value: list[Any] | tuple[Any, ...], depth: int) -> Any:
    """A list, except embedding vectors, which become their sizes."""
    if value and isinstance(value[0], float):
        return {"dimensions": len(value)}
    if value and isinstance(value[0], (list, tuple)) and value[0] and isinstance(value[0][0], float):
        return {"embeddings": len(value), "dimensions": len(value[0])}
    return [_plain(v, depth + 1) for v in value[:MAX_ITEMS]]


def _node(node: Any, score: Any) -> dict[str, Any]:
    """A retrieved node as id, score and the start of its text."""
    text = None
    try:
        text = node.get_content()
    except Exception:  # noqa: BLE001 - a node type without text
        text = getattr(node, "text", None)
    if isinstance(text, str) and len(text) > MAX_NODE_CHARS:
        text = text[:MAX_NODE_CHARS] + "…"
    return {"id": getattr(node, "node_id", None), "score": score, "text": text}


def _message(message: Any) -> dict[str, Any]:
    """A chat message as role, content and any tool calls."""
    role = getattr(message, "role", None)
    out: dict[str, Any] = {"role": getattr(role, "value", role), "content": _content(message)}
    calls = _tool_calls(message)
    if calls:
        out["tool_calls"] = calls
    return out


def _content(message: Any) -> str | None:
    """A message's text (LlamaIndex joins its text blocks); None when it has none or cannot say."""
    try:
        content = message.content
    except Exception:  # noqa: BLE001 - exotic blocks
        return None
    return content if isinstance(content, str) else None


def _tool_calls(message: Any) -> list[Any]:
    """Tool calls a message carries, as tool-call blocks or as the provider's ``tool_calls`` kwarg."""
    calls: list[Any] = []
    for block in getattr(message, "blocks", None) or []:
        if getattr(block, "block_type", None) == "tool_call":
            calls.append({"name": getattr(block, "tool_name", None), "arguments": getattr(block, "tool_kwargs", None)})
    extra = getattr(message, "additional_kwargs", None)
    if not calls and isinstance(extra, dict) and extra.get("tool_calls"):
        calls = list(extra["tool_calls"])[:MAX_ITEMS]
    return calls


def _agent_output(value: Any) -> dict[str, Any]:
    """An agent's answer and the tools it called."""
    calls = [getattr(c, "tool_name", None) for c in (getattr(value, "tool_calls", None) or [])]
    return {"response": _content(getattr(value, "response", None)), "tool_calls": calls}


def _messages_text(messages: Any) -> str:
    """The text of a message list, for estimating prompt tokens."""
    parts = []
    for m in messages:
        content = _content(m)
        if content:
            parts.append(content)
        calls = _tool_calls(m)
        if calls:
            parts.append(_json(calls))
    return "\n".join(parts)


def _json(value: Any) -> str:
    """Compact JSON text of anything (unknown objects via str)."""
    try:
        return json.dumps(value, default=str, ensure_ascii=False)
    except Exception:  # noqa: BLE001
        return str(value)


def _model_of(instance: Any) -> str | None:
    """The model name an LLM or embedding reports; None for LlamaIndex's ``unknown`` placeholder."""
    candidates = [getattr(instance, "model", None), getattr(instance, "model_name", None)]
    try:
        candidates.append(getattr(instance.metadata, "model_name", None))
    except Exception:  # noqa: BLE001 - metadata is a property some LLMs compute
        pass
    for name in candidates:
        if isinstance(name, str) and name and name != "unknown":
            return name
    return None


def _provider_of(instance: Any) -> str | None:
    """The provider from the integration package (``llama_index.llms.openai`` -> ``openai``)."""
    parts = type(instance).__module__.split(".")
    if len(parts) > 2 and parts[0] == "llama_index" and parts[1] in ("llms", "embeddings"):
        return _PROVIDERS.get(parts[2], parts[2])
    return None


def _is_stream(value: Any) -> bool:
    """A generator or async generator (what LLM stream methods return)."""
    return inspect.isgenerator(value) or inspect.isasyncgen(value)


# -- ending spans ----------------------------------------------------------------------------------------------------
def _end_plain(entry: _Entry, result: Any) -> None:
    """End a chain, retriever, tool or agent span with its result; a tool that reports an error fails the span."""
    fields: dict[str, Any] = {}
    t = _t()
    if isinstance(result, t.tool_output) and getattr(result, "is_error", False):
        exc = getattr(result, "exception", None)
        fields = {"status": "error", "error_type": type(exc).__qualname__ if exc is not None else "ToolError",
                  "error_message": str(exc) if exc is not None else getattr(result, "content", None)}
    llmobs.end_span(entry.record, _plain(result), **fields)


def _end_generation(entry: _Entry, result: Any, error: BaseException | None = None, note: str | None = None) -> None:
    """End an LLM call: output, tokens (reported, else estimated and flagged) and stream notes."""
    t = _t()
    response = result if isinstance(result, t.chat_response + t.completion_response) else entry.response
    metadata: dict[str, Any] = {}
    if entry.streamed:
        metadata["streamed"] = True
    if note is not None:
        metadata["stream_incomplete"] = note
    streamed_text = "".join(entry.deltas) if entry.deltas else None
    fields: dict[str, Any] = {}
    if error is None and not _enriched(entry):
        fields = _token_fields(entry, response, streamed_text, metadata)
    if metadata:
        fields["metadata"] = metadata
    llmobs.end_span(entry.record, _generation_output(response, streamed_text), error=error, **fields)


def _generation_output(response: Any, streamed_text: str | None) -> Any:
    """The response as recorded; for a stream the text is what the reader received (the joined deltas)."""
    output = _plain(response) if response is not None else None
    if streamed_text:
        if isinstance(output, dict):
            output["content"] = streamed_text
        else:
            output = streamed_text
    return output


def _end_embedding(entry: _Entry, result: Any) -> None:
    """End an embedding call: the embedded texts, their count and size, and estimated tokens."""
    if not entry.chunk_count:  # no embedding events (a custom class that bypasses them): the result is all we know
        llmobs.end_span(entry.record, _plain(result))
        return
    llmobs.end_span(entry.record, {"embeddings": entry.chunk_count, "dimensions": entry.dimensions},
                    input=entry.chunks if len(entry.chunks) != 1 else entry.chunks[0],
                    prompt_tokens=entry.chunk_tokens, total_tokens=entry.chunk_tokens,
                    metadata={"usage_source": "estimated", "embedding_count": entry.chunk_count,
                              "dimensions": entry.dimensions})


def _token_fields(entry: _Entry, response: Any, streamed_text: str | None,
                  metadata: dict[str, Any]) -> dict[str, Any]:
    """Token counts from the provider's usage; what it does not report is estimated and flagged as such."""
    prompt, completion, total, details = _reported_usage(response)
    source = "reported"
    if prompt is None and entry.input_text is not None:
        prompt, source = _estimate(entry.input_text, entry.model), "estimated"
    if completion is None and (response is not None or streamed_text):
        text = _completion_text(response, streamed_text)
        if text is not None:
            completion, source = _estimate(text, entry.model), "estimated"
    if prompt is None and completion is None:
        return {}
    if total is None or source == "estimated":
        total = (prompt or 0) + (completion or 0)
    metadata["usage_source"] = source
    if details:
        metadata["usage_details"] = details
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total}


def _estimate(text: str, model: str | None) -> int | None:
    """Offline token count of ``text``; None if the estimator itself fails."""
    try:
        from llmobs.pricing import estimate_tokens

        return estimate_tokens(text, model)
    except Exception:  # noqa: BLE001 - never cost the span
        log.debug("llmobs: token estimate failed", exc_info=True)
        return None


def _completion_text(response: Any, streamed_text: str | None = None) -> str | None:
    """What the model produced, as text: message content (or streamed text) plus tool calls, or completion text."""
    message = getattr(response, "message", None)
    if message is not None:
        content = streamed_text or _content(message) or ""
        calls = _tool_calls(message)
        return content + (_json(calls) if calls else "")
    text = streamed_text or getattr(response, "text", None)
    return text if isinstance(text, str) else None


def _reported_usage(response: Any) -> tuple[int | None, int | None, int | None, dict[str, int]]:
    """(prompt, completion, total, details) from the response's raw usage in the shapes providers use."""
    if response is None:
        return None, None, None, {}
    try:
        raw = getattr(response, "raw", None)
        usage = _get(raw, "usage")
        if usage is not None:
            return _usage_fields(usage)
        gemini = _get(raw, "usage_metadata")
        if gemini is not None:
            details = _details(cached_tokens=_get(gemini, "cached_content_token_count"),
                               reasoning_tokens=_get(gemini, "thoughts_token_count"))
            return (_int(_get(gemini, "prompt_token_count")), _int(_get(gemini, "candidates_token_count")),
                    _int(_get(gemini, "total_token_count")), details)
        if _get(raw, "prompt_eval_count") is not None or _get(raw, "eval_count") is not None:  # Ollama
            return _int(_get(raw, "prompt_eval_count")), _int(_get(raw, "eval_count")), None, {}
        extra = getattr(response, "additional_kwargs", None)
        if isinstance(extra, dict) and ("prompt_tokens" in extra or "completion_tokens" in extra):
            return _usage_fields(extra)
    except Exception:  # noqa: BLE001 - an unexpected usage shape is recorded as "not reported"
        log.debug("llmobs: could not read LlamaIndex usage", exc_info=True)
    return None, None, None, {}


def _usage_fields(usage: Any) -> tuple[int | None, int | None, int | None, dict[str, int]]:
    """OpenAI chat/responses and Anthropic usage objects or dicts."""
    if _get(usage, "prompt_tokens") is not None or _get(usage, "completion_tokens") is not None:
        details = _details(cached_tokens=_get(_get(usage, "prompt_tokens_details"), "cached_tokens"),
                           reasoning_tokens=_get(_get(usage, "completion_tokens_details"), "reasoning_tokens"))
        return (_int(_get(usage, "prompt_tokens")), _int(_get(usage, "completion_tokens")),
                _int(_get(usage, "total_tokens")), details)
    prompt, completion = _int(_get(usage, "input_tokens")), _int(_get(usage, "output_tokens"))
    cache_read = _int(_get(usage, "cache_read_input_tokens"))
    cache_write = _int(_get(usage, "cache_creation_input_tokens"))
    if cache_read is not None or cache_write is not None:
        # Anthropic counts cache reads and writes apart from input_tokens; llmobs counts them as prompt tokens.
        prompt = (prompt or 0) + (cache_read or 0) + (cache_write or 0)
        return prompt, completion, None, _details(cached_tokens=cache_read, cache_creation_tokens=cache_write)
    details = _details(cached_tokens=_get(_get(usage, "input_tokens_details"), "cached_tokens"),
                       reasoning_tokens=_get(_get(usage, "output_tokens_details"), "reasoning_tokens"))
    return prompt, completion, _int(_get(usage, "total_tokens")), details


def _details(**counts: Any) -> dict[str, int]:
    """The non-zero detail counts (cached, reasoning, cache-creation tokens)."""
    return {k: n for k, v in counts.items() if (n := _int(v))}


def _get(obj: Any, key: str) -> Any:
    """``obj[key]`` for mappings, ``obj.key`` otherwise; None when absent."""
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(key)
    return getattr(obj, key, None)


def _int(value: Any) -> int | None:
    """A non-negative int count, or None for anything else (strings, bools, negatives)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return int(value)


# -- events ----------------------------------------------------------------------------------------------------------
def _on_llm_start(tracker: _Tracker, entry: _Entry, event: Any, own: bool) -> None:
    """Messages or prompt, and the model, of an LLM call."""
    if entry.kind != "generation" or (entry.own_start and not own):
        return
    entry.own_start = entry.own_start or own
    _set_llm_input(entry, getattr(event, "messages", None), getattr(event, "prompt", None))
    model_dict = getattr(event, "model_dict", None)
    if isinstance(model_dict, dict):
        _apply_model_dict(entry, model_dict)


def _apply_model_dict(entry: _Entry, model_dict: dict[str, Any]) -> None:
    """Model name (when the instance did not say) and sampling parameters from the serialized model."""
    if entry.model is None:
        for key in ("model", "model_name"):
            name = model_dict.get(key)
            if isinstance(name, str) and name and name != "unknown":
                entry.model = name
                entry.record.update(model_name=name)
                break
    params = {k: model_dict[k] for k in ("temperature", "max_tokens", "top_p")
              if isinstance(model_dict.get(k), (int, float)) and not isinstance(model_dict.get(k), bool)}
    if params:
        entry.record.update(metadata={"invocation_params": params})


def _on_llm_progress(tracker: _Tracker, entry: _Entry, event: Any, own: bool) -> None:
    """A streamed chunk: time to first token, and the latest cumulative response."""
    if entry.kind != "generation":
        return
    if not entry.first_token:
        entry.first_token = True
        entry.record.update(time_to_first_token_ms=(perf_ns() - entry.record.perf_start) / 1e6)
    if own or not entry.own_start:
        entry.response = getattr(event, "response", None)
        delta = getattr(entry.response, "delta", None)
        if isinstance(delta, str) and len(entry.deltas) < MAX_STREAM_PIECES:
            entry.deltas.append(delta)


def _on_llm_end(tracker: _Tracker, entry: _Entry, event: Any, own: bool) -> None:
    """The final response; ends a streamed call (a plain call ends when its span exits)."""
    if entry.kind != "generation" or not (own or not entry.own_start):
        return
    entry.response = getattr(event, "response", None)
    if entry.exited:
        tracker.end_generation(entry)


def _on_exception(tracker: _Tracker, entry: _Entry, event: Any, own: bool) -> None:
    """An error while a stream was read (or the reader closing it early) ends the streamed call."""
    if entry.kind != "generation" or not entry.exited or not (own or not entry.own_start):
        return
    exc = getattr(event, "exception", None)
    if isinstance(exc, GeneratorExit):
        tracker.end_generation(entry, None, "closed early")
    else:
        tracker.end_generation(entry, exc if isinstance(exc, BaseException) else RuntimeError(str(exc)))


def _on_embedding_start(tracker: _Tracker, entry: _Entry, event: Any, own: bool) -> None:
    """The embedding model's name, when the instance did not say."""
    model_dict = getattr(event, "model_dict", None)
    if entry.kind == "embedding" and isinstance(model_dict, dict):
        _apply_model_dict(entry, model_dict)


def _on_embedding_end(tracker: _Tracker, entry: _Entry, event: Any, own: bool) -> None:
    """Texts embedded (a batch call sends one event per batch): counted, kept for input, tokens estimated."""
    if entry.kind != "embedding":
        return
    chunks = [c for c in (getattr(event, "chunks", None) or []) if isinstance(c, str)]
    entry.chunk_count += len(chunks)
    entry.chunks.extend(chunks[: max(0, MAX_ITEMS - len(entry.chunks))])
    entry.chunk_tokens += sum(_estimate(c, entry.model) or 0 for c in chunks)
    embeddings = getattr(event, "embeddings", None)
    if embeddings and entry.dimensions is None:
        try:
            entry.dimensions = len(embeddings[0])
        except Exception:  # noqa: BLE001 - sparse or odd shapes
            pass


_EVENT_HANDLERS: dict[str, Callable[[_Tracker, _Entry, Any, bool], None]] = {
    "LLMChatStartEvent": _on_llm_start,
    "LLMCompletionStartEvent": _on_llm_start,
    "LLMChatInProgressEvent": _on_llm_progress,
    "LLMCompletionInProgressEvent": _on_llm_progress,
    "LLMChatEndEvent": _on_llm_end,
    "LLMCompletionEndEvent": _on_llm_end,
    "ExceptionEvent": _on_exception,
    "EmbeddingStartEvent": _on_embedding_start,
    "SparseEmbeddingStartEvent": _on_embedding_start,
    "EmbeddingEndEvent": _on_embedding_end,
    "SparseEmbeddingEndEvent": _on_embedding_end,
}


# -- streaming query responses ---------------------------------------------------------------------------------------
class _Follower:
    """Keeps the spans that returned one streaming response open until its token generator ends."""

    def __init__(self) -> None:
        self.records: list[SpanRecord] = []
        self.parts: list[str] = []
        self.chars = 0
        self.started = False
        self.done = False
        self.lock = threading.Lock()

    def innermost(self) -> SpanRecord | None:
        """The span work done while reading the stream nests under (the synthesizer, inside the query)."""
        return self.records[0] if self.records else None

    def on_item(self, item: Any) -> None:
        """One streamed piece: first-token time on every waiting span, text kept (bounded) for the output."""
        try:
            if not self.started:
                self.started = True
                now = perf_ns()
                for record in self.records:
                    record.update(time_to_first_token_ms=(now - record.perf_start) / 1e6)
            if isinstance(item, str) and self.chars < MAX_STREAM_CHARS:
                self.parts.append(item)
                self.chars += len(item)
        except Exception:  # noqa: BLE001 - boundary
            log.exception("llmobs: could not record a LlamaIndex stream item")

    def finish(self, error: BaseException | None, note: str | None) -> None:
        """End every waiting span (innermost first) with the streamed text, once."""
        with self.lock:
            if self.done:
                return
            self.done = True
        try:
            text = "".join(self.parts) if self.parts else None
            metadata: dict[str, Any] = {"streamed": True}
            if note is not None:
                metadata["stream_incomplete"] = note
            for record in self.records:
                llmobs.end_span(record, text, error=error, metadata=metadata)
        except Exception:  # noqa: BLE001 - boundary
            log.exception("llmobs: could not end a LlamaIndex streaming span")


def _follow_streaming_response(tracker: _Tracker, entry: _Entry, result: Any) -> bool:
    """For a (async) StreamingResponse, wrap its generator so the span ends when the stream does; True if done."""
    if not isinstance(result, _t().streaming):
        return False
    stream: Any = getattr(result, "response_gen", None)
    if not _is_stream(stream):
        return False
    follower = tracker.follower_of(stream)
    if follower is not None and not follower.done:
        follower.records.append(entry.record)
        return True
    follower = _Follower()
    follower.records.append(entry.record)
    wrapper: Any = (_follow_sync(stream, follower) if inspect.isgenerator(stream)
                    else _follow_async(stream, follower))
    setattr(result, "response_gen", wrapper)  # noqa: B010 - the same object goes back to the caller
    tracker.register_follower(wrapper, follower)
    weakref.finalize(wrapper, follower.finish, None, "abandoned").atexit = False
    return True


def _follow_sync(gen: Iterator[Any], follower: _Follower) -> Iterator[Any]:
    """Re-yield ``gen`` unchanged, with the waiting span current while it computes each piece."""
    error: BaseException | None = None
    note: str | None = None
    try:
        while True:
            token = current_span.set(follower.innermost())
            try:
                item = next(gen)
            except StopIteration:
                return
            finally:
                current_span.reset(token)
            follower.on_item(item)
            yield item
    except GeneratorExit:
        note = "closed early"
        getattr(gen, "close", lambda: None)()
        raise
    except BaseException as exc:
        error = exc
        raise
    finally:
        follower.finish(error, note)


async def _follow_async(agen: AsyncIterator[Any], follower: _Follower) -> AsyncIterator[Any]:
    """Async twin of ``_follow_sync``."""
    error: BaseException | None = None
    note: str | None = None
    try:
        while True:
            token = current_span.set(follower.innermost())
            try:
                item = await agen.__anext__()
            except StopAsyncIteration:
                return
            finally:
                current_span.reset(token)
            follower.on_item(item)
            yield item
    except GeneratorExit:
        note = "closed early"
        aclose = getattr(agen, "aclose", None)
        if aclose is not None:
            await aclose()
        raise
    except BaseException as exc:
        error = exc
        raise
    finally:
        follower.finish(error, note)
