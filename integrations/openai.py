"""OpenAI SDK integration: every chat/Responses/completions/embeddings call becomes a ``generation`` (or ``embedding``)
span with model, provider, parameters, messages, output, usage, latency, time to first token and errors.

    from llmobs.integrations.openai import instrument, wrap_openai
    instrument()                      # every client in the process
    client = wrap_openai(OpenAI())    # or just this client (and its .with_options() copies)

The SDK's resource methods are patched once at class level with wrapt; a call is recorded when the process is
instrumented or its client was wrapped, so instrumenting twice (or both ways) still records each call once.
Return values and exceptions are the SDK's own objects; streams are proxied (``wrapt.ObjectProxy``) so the caller
gets every chunk as the SDK produced it while the span ends when the stream is exhausted, closed or collected.
"""

from __future__ import annotations

import contextvars
import functools
import importlib
import inspect
import logging
import threading
import weakref
from typing import Any, Callable

import wrapt

from llmobs._state import rt
from llmobs.context import SpanRecord, perf_ns
from llmobs.integrations._common import (
    USAGE_ESTIMATED,
    USAGE_REPORTED,
    ActiveModelRun,
    Usage,
    active_model_run,
    content_text,
    estimate,
    estimated_usage,
    messages_list,
    messages_text,
    plain,
    provider_for,
    reader,
    tool_call_dict,
    usage_fields,
    usage_from,
)
from llmobs.tracing import NoopSpan, end_span, start_span

__all__ = ["instrument", "is_instrumented", "uninstrument", "wrap_openai"]

log = logging.getLogger("llmobs")
SOURCE = "openai"
RAW_RESPONSE_HEADER = "X-Stainless-Raw-Response"
_TRANSPORT_KEYS = frozenset({"extra_headers", "extra_query", "extra_body", "timeout"})
_INPUT_KEYS = frozenset({"model", "messages", "input", "prompt", "instructions"})


class _SDK:
    """The openai package, imported on first use (``import llmobs.integrations.openai`` does not import it)."""

    module: Any = None
    omitted: tuple[type, ...] = ()  # the SDK's "argument not given" markers (NotGiven, Omit)


def _sdk() -> Any:
    """Import the OpenAI SDK once; a clear ImportError naming the extra when it is not installed."""
    if _SDK.module is None:
        try:
            import openai
        except ImportError as exc:
            raise ImportError("llmobs.integrations.openai needs the OpenAI SDK: pip install 'llmobs[openai]'") from exc
        _SDK.omitted = tuple(t for t in (getattr(openai, "NotGiven", None), getattr(openai, "Omit", None))
                             if isinstance(t, type))
        _SDK.module = openai
    return _SDK.module


class _Endpoint:
    """One SDK method we record: its span name, span kind and response family (chat, responses, ...)."""

    __slots__ = ("name", "kind", "family")

    def __init__(self, name: str, kind: str, family: str) -> None:
        self.name = name
        self.kind = kind
        self.family = family


_CHAT_MODULE = "openai.resources.chat.completions.completions"
_RESPONSES_MODULE = "openai.resources.responses.responses"
_TARGETS: tuple[tuple[str, str, str, _Endpoint], ...] = tuple(
    (module, prefix + cls, method, endpoint)
    for module, cls, method, endpoint in (
        (_CHAT_MODULE, "Completions", "create", _Endpoint("openai.chat.completions.create", "generation", "chat")),
        (_CHAT_MODULE, "Completions", "parse", _Endpoint("openai.chat.completions.parse", "generation", "chat")),
        (_RESPONSES_MODULE, "Responses", "create", _Endpoint("openai.responses.create", "generation", "responses")),
        (_RESPONSES_MODULE, "Responses", "parse", _Endpoint("openai.responses.parse", "generation", "responses")),
        ("openai.resources.completions", "Completions", "create",
         _Endpoint("openai.completions.create", "generation", "completions")),
        ("openai.resources.embeddings", "Embeddings", "create",
         _Endpoint("openai.embeddings.create", "embedding", "embeddings")),
    )
    for prefix in ("", "Async")
)


# --- switching on and off -----------------------------------------------------------------------------------------

class _Switch:
    """Which calls are recorded: all (``instrument()``) or those of wrapped clients; and what is patched."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.everywhere = False
        self.clients: weakref.WeakSet[Any] = weakref.WeakSet()
        self.patched: dict[tuple[type, str], Any] = {}


_switch = _Switch()
_inside: contextvars.ContextVar[bool] = contextvars.ContextVar("llmobs_openai_inside", default=False)


def instrument() -> None:
    """Record the calls of every OpenAI/AsyncOpenAI/AzureOpenAI client in the process; calling it again is a no-op.

    >>> from llmobs.integrations.openai import instrument
    >>> instrument()                                                      # doctest: +SKIP
    """
    _sdk()
    with _switch.lock:
        _patch()
        _switch.everywhere = True


def uninstrument() -> None:
    """Stop recording calls of clients that were not wrapped one by one; the SDK is restored when none is left.

    >>> uninstrument()                                                    # doctest: +SKIP
    """
    with _switch.lock:
        _switch.everywhere = False
        if not len(_switch.clients):
            _unpatch()


def is_instrumented() -> bool:
    """True while ``instrument()`` is in effect."""
    return _switch.everywhere


def wrap_openai(client: Any) -> Any:
    """Record the calls of this one client (and of the copies ``with_options()``/``copy()`` make); returns it.

    >>> client = wrap_openai(OpenAI())                                    # doctest: +SKIP
    """
    sdk = _sdk()
    if not isinstance(client, (sdk.OpenAI, sdk.AsyncOpenAI)):
        raise TypeError(f"wrap_openai(client={client!r}): expected an openai.OpenAI, openai.AsyncOpenAI or "
                        f"openai.AzureOpenAI/AsyncAzureOpenAI client, got {type(client).__name__}")
    with _switch.lock:
        _patch()
        if client in _switch.clients:
            return client
        _switch.clients.add(client)
    _follow_copies(client)
    return client


def _follow_copies(client: Any) -> None:
    """Make ``client.with_options(...)``/``client.copy(...)`` return wrapped clients too."""
    try:
        original = client.copy

        @functools.wraps(original)
        def copy(*args: Any, **kwargs: Any) -> Any:
            new = original(*args, **kwargs)
            try:
                wrap_openai(new)
            except Exception:  # noqa: BLE001 - boundary
                log.exception("llmobs: could not wrap the copied OpenAI client")
            return new

        client.copy = copy
        client.with_options = copy
    except Exception:  # noqa: BLE001 - copies simply stay unwrapped
        log.debug("llmobs: could not follow copies of %r", type(client).__name__, exc_info=True)


def _patch() -> None:
    """Wrap each SDK method once (class level); later calls find them patched and do nothing."""
    for module_name, cls_name, method, endpoint in _TARGETS:
        try:
            cls = getattr(importlib.import_module(module_name), cls_name)
            original = cls.__dict__[method]
        except (ImportError, AttributeError, KeyError):
            log.debug("llmobs: openai has no %s.%s.%s; not recorded", module_name, cls_name, method)
            continue
        if (cls, method) in _switch.patched:
            continue
        maker = _async_wrapper if cls_name.startswith("Async") else _sync_wrapper
        setattr(cls, method, wrapt.FunctionWrapper(original, maker(endpoint)))
        _switch.patched[(cls, method)] = original


def _unpatch() -> None:
    for (cls, method), original in list(_switch.patched.items()):
        current = cls.__dict__.get(method)
        if isinstance(current, wrapt.FunctionWrapper) and current.__wrapped__ is original:
            setattr(cls, method, original)
        del _switch.patched[(cls, method)]


def _recording(instance: Any) -> bool:
    if not rt.enabled or _inside.get():
        return False
    if _switch.everywhere:
        return True
    client = getattr(instance, "_client", None)
    return client is not None and client in _switch.clients


# --- the wrappers -------------------------------------------------------------------------------------------------

Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]


def _sync_wrapper(endpoint: _Endpoint) -> Wrapper:
    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not _recording(instance):
            return wrapped(*args, **kwargs)
        call = _Call.begin(endpoint, instance, kwargs)
        if call is None:
            return wrapped(*args, **kwargs)
        token = _inside.set(True)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            call.fail(exc)
            raise
        finally:
            _inside.reset(token)
        return call.finish(result)

    return wrapper


def _async_wrapper(endpoint: _Endpoint) -> Wrapper:
    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not _recording(instance):
            return wrapped(*args, **kwargs)
        return _acall(endpoint, wrapped, instance, args, kwargs)

    return wrapper


async def _acall(endpoint: _Endpoint, wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                 kwargs: dict[str, Any]) -> Any:
    call = _Call.begin(endpoint, instance, kwargs)
    if call is None:
        return await wrapped(*args, **kwargs)
    token = _inside.set(True)
    try:
        result = await wrapped(*args, **kwargs)
    except BaseException as exc:
        call.fail(exc)
        raise
    finally:
        _inside.reset(token)
    return call.finish(result)


# --- one call -----------------------------------------------------------------------------------------------------

class _Call:
    """The span of one SDK call, from the request to the last chunk; every method is a boundary (never raises)."""

    __slots__ = ("endpoint", "span", "owned", "kwargs", "request_model", "acc", "done")

    def __init__(self, endpoint: _Endpoint, span: SpanRecord, owned: bool, kwargs: dict[str, Any]) -> None:
        self.endpoint = endpoint
        self.span = span
        self.owned = owned
        self.kwargs = kwargs
        self.request_model = kwargs.get("model")
        self.acc: Any = None
        self.done = False

    @classmethod
    def begin(cls, endpoint: _Endpoint, instance: Any, kwargs: dict[str, Any]) -> "_Call | None":
        """Open the span (or claim the open generation span of a framework integration); None: do not record."""
        try:
            headers = kwargs.get("extra_headers")
            if isinstance(headers, dict) and headers.get(RAW_RESPONSE_HEADER) == "stream":
                return None  # with_streaming_response: the body belongs to the caller unread
            _materialize(kwargs)
            run: ActiveModelRun | None = active_model_run.get()
            owned = not (endpoint.kind == "generation" and run is not None and run.claim())
            if owned:
                parent = run.span if run is not None and not run.span.ended else None
                span = start_span(endpoint.name, endpoint.kind, source=SOURCE, parent=parent)
                if rt.capture_input and span.__class__ is not NoopSpan:
                    span.input = plain(_request_input(endpoint.family, kwargs))
            else:
                span = run.span  # type: ignore[union-attr]
            if span.__class__ is NoopSpan:
                return None  # llmobs disabled, or a trace that is not sampled
            call = cls(endpoint, span, owned, kwargs)
            # Fresh JSON-safe values (plain) are stored as they are rather than through a second snapshot.
            meta: dict[str, Any] = {"endpoint": endpoint.name, "model_parameters": plain(_parameters(kwargs))}
            if call.request_model is not None:
                meta["request_model"] = plain(call.request_model)
            if owned:
                if call.request_model is not None:
                    span.model_name = str(call.request_model)
            else:
                meta["enriched_by"] = SOURCE
            span.metadata = {**span.metadata, **meta} if span.metadata else meta
            span.provider = _provider(instance)
            return call
        except Exception:  # noqa: BLE001 - boundary: record nothing rather than break the call
            log.exception("llmobs: could not start recording an OpenAI call")
            return None

    # -- outcomes ------------------------------------------------------------------------------------------------
    def finish(self, result: Any) -> Any:
        """Record a returned object; streams and raw streamed responses come back proxied, all else unchanged."""
        try:
            if _is_raw_response(result):
                if self.kwargs.get("stream") is True:
                    return _RawStreamResponse(result, self)
                self._record_raw(result)
                return result
            if isinstance(result, (_SDK.module.Stream, _SDK.module.AsyncStream)):
                return self.wrap_stream(result)
            self._record(_response_result(self.endpoint.family, result))
        except Exception:  # noqa: BLE001 - boundary
            log.exception("llmobs: could not record an OpenAI response")
            self._end_quietly()
        return result

    def wrap_stream(self, stream: Any) -> Any:
        """Proxy a (sync or async) SDK stream so that its chunks feed this span."""
        try:
            self.acc = _ACCUMULATORS[self.endpoint.family]()
            if isinstance(stream, _SDK.module.AsyncStream):
                return _AsyncStreamProxy(stream, self)
            if isinstance(stream, _SDK.module.Stream):
                return _StreamProxy(stream, self)
            self._end_quietly()
        except Exception:  # noqa: BLE001 - boundary
            log.exception("llmobs: could not follow an OpenAI stream")
            self._end_quietly()
        return stream

    def fail(self, error: BaseException) -> None:
        """Record the SDK's exception (class, HTTP status, request id) and end the span; the caller re-raises it."""
        if self.done:
            return
        self.done = True
        try:
            meta = _error_metadata(error)
            if self.owned:
                end_span(self.span, error=error, metadata=meta)
            else:
                self.span.update(metadata=meta)
        except Exception:  # noqa: BLE001 - boundary
            log.exception("llmobs: could not record an OpenAI error")

    def chunk(self, item: Any) -> None:
        """Feed one streamed chunk; stamps the time to first token on the first chunk that carries output."""
        try:
            if self.acc.add(item) and self.span.time_to_first_token_ms is None:
                self.span.time_to_first_token_ms = (perf_ns() - self.span.perf_start) / 1e6
        except Exception:  # noqa: BLE001 - an odd chunk is skipped, the stream goes on
            log.debug("llmobs: could not read an OpenAI stream chunk", exc_info=True)

    def close(self, error: BaseException | None = None, *, exhausted: bool = False) -> None:
        """End a streamed call: exhausted, failed, closed, left with break or collected (once)."""
        if self.done:
            return
        if error is not None:
            self.fail(error)
            return
        try:
            result = self.acc.result() if self.acc is not None else _Result()
            if not exhausted:
                result.extra["stream_closed_early"] = True
            self._record(result)
        except Exception:  # noqa: BLE001 - boundary
            log.exception("llmobs: could not record an OpenAI stream")
            self._end_quietly()

    # -- recording -----------------------------------------------------------------------------------------------
    def _record_raw(self, raw: Any) -> None:
        try:
            parsed = raw.parse()  # cached by the SDK: the caller's own parse() returns this same object
        except Exception as exc:  # noqa: BLE001 - the caller's parse() will raise it again
            self._record(_Result(extra={"parse_error": f"{type(exc).__name__}: {exc}"}))
            return
        if inspect.isawaitable(parsed):
            close = getattr(parsed, "close", None)
            if callable(close):
                close()
            self._record(_Result(extra={"raw_response": True}))
            return
        self._record(_response_result(self.endpoint.family, parsed))

    def _record(self, result: "_Result") -> None:
        if self.done:
            return
        self.done = True
        model = result.model or self.request_model
        usage = result.usage
        source = USAGE_REPORTED
        if usage is None or (usage.prompt is None and usage.completion is None):
            usage = self._estimate(result, model)
            source = USAGE_ESTIMATED
        fields = usage_fields(usage, source) if usage is not None else {"metadata": {}}
        meta = fields.pop("metadata")  # llmobs's own strings and counts; what came in the reply goes through plain()
        if result.response_id is not None:
            meta["response_id"] = plain(result.response_id)
        if result.finish_reason is not None:
            meta["finish_reason"] = plain(result.finish_reason)
        for key, value in result.extra.items():
            meta[key] = plain(value)
        if model is not None:
            fields["model_name"] = str(model)
        span = self.span
        if span.ended:
            return
        span.metadata = {**span.metadata, **meta} if span.metadata else meta
        if self.owned:
            if result.output is not None and rt.capture_output:
                span.output = plain(result.output)
            for key, value in fields.items():  # token counts and the model name: known fields, set directly
                setattr(span, key, value)
            end_span(span)
        else:
            span.update(**fields)

    def _estimate(self, result: "_Result", model: Any) -> Usage | None:
        name = str(model) if model is not None else None
        prompt_text = _prompt_text(self.endpoint.family, self.kwargs)
        if self.endpoint.family == "embeddings":
            return Usage(estimate(prompt_text, name), None)
        if not prompt_text and not result.completion_text:
            return None
        return estimated_usage(prompt_text, result.completion_text, name)

    def _end_quietly(self) -> None:
        if not self.done:
            self.done = True
            if self.owned:
                end_span(self.span)


class _Result:
    """What a response (or an accumulated stream) says, in the terms of a span."""

    __slots__ = ("model", "response_id", "output", "finish_reason", "usage", "completion_text", "extra")

    def __init__(self, model: Any = None, response_id: Any = None, output: Any = None, finish_reason: Any = None,
                 usage: Usage | None = None, completion_text: str = "", extra: dict[str, Any] | None = None) -> None:
        self.model = model
        self.response_id = response_id
        self.output = output
        self.finish_reason = finish_reason
        self.usage = usage
        self.completion_text = completion_text
        self.extra = extra if extra is not None else {}


# --- requests -----------------------------------------------------------------------------------------------------

def _materialize(kwargs: dict[str, Any]) -> None:
    """Turn one-shot iterables of messages/input into lists, so that recording them cannot consume them."""
    for key in ("messages", "input"):
        value = kwargs.get(key)
        if value is not None and not isinstance(value, (list, tuple, str, dict, bytes)) and _is_iterator(value):
            kwargs[key] = list(value)


def _is_iterator(value: Any) -> bool:
    return hasattr(value, "__next__") or inspect.isgenerator(value)


def _request_input(family: str, kwargs: dict[str, Any]) -> Any:
    if family == "chat":
        messages = kwargs.get("messages")
        if isinstance(messages, list) and all(type(m) is dict for m in messages):
            return messages  # already role/content dicts: begin() copies them with plain()
        return messages_list(messages)
    if family == "responses":
        items: list[Any] = []
        instructions = kwargs.get("instructions")
        if isinstance(instructions, str):
            items.append({"role": "system", "content": instructions})
        value = kwargs.get("input")
        if isinstance(value, str):
            items.append({"role": "user", "content": value})
        elif isinstance(value, (list, tuple)):
            items.extend(messages_list(value))
        elif value is not None and not isinstance(value, _SDK.omitted):
            items.append(value)
        return items
    if family == "completions":
        return kwargs.get("prompt")
    return kwargs.get("input")


def _prompt_text(family: str, kwargs: dict[str, Any]) -> str:
    if family == "chat":
        return messages_text(kwargs.get("messages"))
    if family == "responses":
        instructions = kwargs.get("instructions")
        text = messages_text(kwargs.get("input"))
        return f"{instructions}\n{text}" if isinstance(instructions, str) else text
    value = kwargs.get("prompt") if family == "completions" else kwargs.get("input")
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return "\n".join(value)
    return ""


def _parameters(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Request parameters (temperature, max_tokens, tools, response_format, stream, ...) without the input."""
    params: dict[str, Any] = {}
    for key, value in kwargs.items():
        if key in _INPUT_KEYS or key in _TRANSPORT_KEYS or isinstance(value, _SDK.omitted):
            continue
        params[key] = value.__name__ if isinstance(value, type) else value
    return params


@functools.lru_cache(maxsize=256)
def _provider_of(host: str, port: int | None, azure: bool) -> str:
    return provider_for(host, port, azure=azure)


_PROVIDERS: dict[int, tuple[Any, str]] = {}


def _provider(instance: Any) -> str:
    """The provider of the resource's client, worked out once per client and base URL.

    Keyed by ``id(client)`` and checked against the URL object itself, which the entry keeps alive: a later client
    reusing the id has another URL object, so it is worked out afresh. Bounded: cleared past 1,024 clients.
    """
    client = getattr(instance, "_client", None)
    if client is None:
        return "openai"
    try:
        # The stored URL object: the SDK's ``base_url`` property costs about 1.5 µs per read, the attribute 30 ns.
        url = vars(client).get("_base_url") or client.base_url
        known = _PROVIDERS.get(id(client))
        if known is not None and known[0] is url:
            return known[1]
        provider = _provider_of(url.host, url.port, "Azure" in type(client).__name__)
        if len(_PROVIDERS) >= 1024:
            _PROVIDERS.clear()
        _PROVIDERS[id(client)] = (url, provider)
        return provider
    except Exception:  # noqa: BLE001 - an unreadable client is taken for OpenAI itself
        return "openai"


def _is_raw_response(result: Any) -> bool:
    """A ``with_raw_response`` reply (the SDK's LegacyAPIResponse), told apart by shape."""
    if isinstance(result, _SDK.module.BaseModel):
        return False
    return hasattr(result, "http_response") and hasattr(result, "parse")


def _error_metadata(error: BaseException) -> dict[str, Any]:
    meta: dict[str, Any] = {"error_class": f"{type(error).__module__.split('.')[0]}.{type(error).__qualname__}"}
    status = getattr(error, "status_code", None)
    if isinstance(status, int):
        meta["http_status"] = status
    for attr, key in (("request_id", "request_id"), ("code", "error_code")):
        value = getattr(error, attr, None)
        if isinstance(value, (str, int)):
            meta[key] = value
    return meta


# --- responses ----------------------------------------------------------------------------------------------------

def _response_result(family: str, response: Any) -> _Result:
    return _READERS[family](response)


def _chat_result(response: Any) -> _Result:
    outputs = []
    finish = None
    text_parts: list[str] = []
    for choice in getattr(response, "choices", None) or ():
        said = reader(getattr(choice, "message", None))  # one lookup per field (getattr of an absent field is slow)
        out: dict[str, Any] = {"role": said("role") or "assistant", "content": said("content")}
        text_parts.append(content_text(out["content"]))
        calls = said("tool_calls")
        if calls:
            out["tool_calls"] = [tool_call_dict(c) for c in calls]
            text_parts.extend(str(c["arguments"] or "") for c in out["tool_calls"])
        for extra in ("refusal", "parsed"):
            value = said(extra)
            if value is not None:
                out[extra] = value
        outputs.append(out)
        if finish is None:
            finish = getattr(choice, "finish_reason", None)
    extra = {}
    fingerprint = getattr(response, "system_fingerprint", None)
    if fingerprint:
        extra["system_fingerprint"] = fingerprint
    return _Result(getattr(response, "model", None), getattr(response, "id", None),
                   outputs[0] if len(outputs) == 1 else outputs or None, finish,
                   usage_from(getattr(response, "usage", None)), "".join(text_parts), extra)


def _responses_result(response: Any) -> _Result:
    text_parts: list[str] = []
    calls: list[dict[str, Any]] = []
    for item in getattr(response, "output", None) or ():
        kind = getattr(item, "type", None)
        if kind == "message":
            for part in getattr(item, "content", None) or ():
                text = getattr(part, "text", None) or getattr(part, "refusal", None)
                if isinstance(text, str):
                    text_parts.append(text)
        elif kind in ("function_call", "custom_tool_call"):
            calls.append({"id": getattr(item, "call_id", None), "name": getattr(item, "name", None),
                          "arguments": getattr(item, "arguments", None) or getattr(item, "input", None)})
        elif kind is not None and kind != "reasoning":
            calls.append({"type": kind, "id": getattr(item, "id", None)})
    text = "".join(text_parts)
    output: dict[str, Any] = {"role": "assistant", "content": text if text_parts else None}
    if calls:
        output["tool_calls"] = calls
    status = getattr(response, "status", None)
    details = getattr(response, "incomplete_details", None)
    if status == "incomplete":
        finish = getattr(details, "reason", None) or "incomplete"
    elif status in ("failed", "cancelled"):
        finish = status
    else:
        finish = "tool_calls" if any("name" in c for c in calls) else "stop"
    completion_text = text + "".join(str(c.get("arguments") or "") for c in calls)
    return _Result(getattr(response, "model", None), getattr(response, "id", None), output, finish,
                   usage_from(getattr(response, "usage", None)), completion_text)


def _completions_result(response: Any) -> _Result:
    texts = [getattr(c, "text", None) for c in getattr(response, "choices", None) or ()]
    choices = getattr(response, "choices", None) or ()
    finish = getattr(choices[0], "finish_reason", None) if choices else None
    return _Result(getattr(response, "model", None), getattr(response, "id", None),
                   texts[0] if len(texts) == 1 else texts or None, finish,
                   usage_from(getattr(response, "usage", None)), "".join(t for t in texts if isinstance(t, str)))


def _embeddings_result(response: Any) -> _Result:
    data = getattr(response, "data", None) or []
    output: dict[str, Any] = {"embeddings": len(data)}
    if data:
        vector = getattr(data[0], "embedding", None)
        if isinstance(vector, list):
            output["dimensions"] = len(vector)
    return _Result(getattr(response, "model", None), None, output, None,
                   usage_from(getattr(response, "usage", None)))


_READERS: dict[str, Callable[[Any], _Result]] = {
    "chat": _chat_result, "responses": _responses_result, "completions": _completions_result,
    "embeddings": _embeddings_result,
}


# --- streams ------------------------------------------------------------------------------------------------------

class _ChatAccumulator:
    """Rebuilds a chat completion from its chunks: text and tool calls per choice, finish reason, usage."""

    __slots__ = ("model", "id", "texts", "calls", "finish", "usage")

    def __init__(self) -> None:
        self.model: Any = None
        self.id: Any = None
        self.texts: dict[int, list[str]] = {}
        self.calls: dict[int, dict[int, dict[str, Any]]] = {}
        self.finish: dict[int, Any] = {}
        self.usage: Any = None

    def add(self, chunk: Any) -> bool:
        """Take one chunk; True when it carries output (text or a tool call)."""
        if self.model is None:
            self.model = getattr(chunk, "model", None)
            self.id = getattr(chunk, "id", None)
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            self.usage = usage
        carried = False
        for choice in getattr(chunk, "choices", None) or ():
            index = _index(getattr(choice, "index", 0))
            delta = getattr(choice, "delta", None)
            if delta is not None:
                content = getattr(delta, "content", None)
                if content:
                    self.texts.setdefault(index, []).append(content)
                    carried = True
                calls = getattr(delta, "tool_calls", None)
                if calls:
                    carried = True
                    self._add_calls(index, calls)
            reason = getattr(choice, "finish_reason", None)
            if reason is not None:
                self.finish[index] = reason
        return carried

    def _add_calls(self, index: int, calls: Any) -> None:
        slots = self.calls.setdefault(index, {})
        for call in calls:
            slot = slots.setdefault(_index(getattr(call, "index", 0)), {"id": None, "name": None, "arguments": ""})
            if getattr(call, "id", None):
                slot["id"] = call.id
            function = getattr(call, "function", None)
            if function is not None:
                if getattr(function, "name", None):
                    slot["name"] = function.name
                arguments = getattr(function, "arguments", None)
                if isinstance(arguments, str):
                    slot["arguments"] += arguments

    def result(self) -> _Result:
        """The accumulated call as a _Result."""
        outputs = []
        completion_parts: list[str] = []
        for index in sorted(set(self.texts) | set(self.calls) | set(self.finish)) or [0]:
            text = "".join(self.texts.get(index, ()))
            out: dict[str, Any] = {"role": "assistant", "content": text if index in self.texts else None}
            completion_parts.append(text)
            calls = self.calls.get(index)
            if calls:
                out["tool_calls"] = [calls[i] for i in sorted(calls)]
                completion_parts.extend(c["arguments"] for c in out["tool_calls"])
            outputs.append(out)
        finish = self.finish.get(0, next(iter(self.finish.values()), None))
        return _Result(self.model, self.id, outputs[0] if len(outputs) == 1 else outputs, finish,
                       usage_from(self.usage), "".join(completion_parts))


def _index(value: Any) -> int:
    """A choice or tool-call index; anything that is not an int counts as the first."""
    return value if type(value) is int else 0


class _CompletionsAccumulator:
    """Rebuilds a legacy text completion from its chunks."""

    __slots__ = ("model", "id", "texts", "finish", "usage")

    def __init__(self) -> None:
        self.model: Any = None
        self.id: Any = None
        self.texts: list[str] = []
        self.finish: Any = None
        self.usage: Any = None

    def add(self, chunk: Any) -> bool:
        """Take one chunk; True when it carries text."""
        if self.model is None:
            self.model = getattr(chunk, "model", None)
            self.id = getattr(chunk, "id", None)
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            self.usage = usage
        carried = False
        for choice in getattr(chunk, "choices", None) or ():
            text = getattr(choice, "text", None)
            if text and _index(getattr(choice, "index", 0)) == 0:
                self.texts.append(text)
                carried = True
            if getattr(choice, "finish_reason", None) is not None:
                self.finish = choice.finish_reason
        return carried

    def result(self) -> _Result:
        """The accumulated call as a _Result."""
        text = "".join(self.texts)
        return _Result(self.model, self.id, text, self.finish, usage_from(self.usage), text)


class _ResponsesAccumulator:
    """Follows Responses API stream events; the final ``response.completed`` event carries the whole response."""

    __slots__ = ("model", "id", "texts", "items", "final")

    def __init__(self) -> None:
        self.model: Any = None
        self.id: Any = None
        self.texts: list[str] = []
        self.items: list[Any] = []
        self.final: Any = None

    def add(self, event: Any) -> bool:
        """Take one event; True when it carries output text or tool-call arguments."""
        kind = getattr(event, "type", None)
        if kind == "response.output_text.delta":
            self.texts.append(getattr(event, "delta", "") or "")
            return True
        if kind == "response.function_call_arguments.delta":
            return True
        if kind in ("response.completed", "response.incomplete", "response.failed"):
            self.final = getattr(event, "response", None)
        elif kind in ("response.created", "response.in_progress") and self.model is None:
            response = getattr(event, "response", None)
            self.model = getattr(response, "model", None)
            self.id = getattr(response, "id", None)
        elif kind == "response.output_item.done":
            self.items.append(getattr(event, "item", None))
        return False

    def result(self) -> _Result:
        """The final response when it arrived, else what the deltas said."""
        if self.final is not None:
            return _responses_result(self.final)
        text = "".join(self.texts)
        partial = _responses_result(_Partial(self.model, self.id, self.items))
        if self.texts and not partial.completion_text:
            partial.output = {"role": "assistant", "content": text}
            partial.completion_text = text
        partial.finish_reason = None
        return partial


class _Partial:
    """A response shell for streams that ended before ``response.completed``."""

    def __init__(self, model: Any, response_id: Any, items: list[Any]) -> None:
        self.model = model
        self.id = response_id
        self.output = [i for i in items if i is not None]
        self.status = None
        self.usage = None


_ACCUMULATORS: dict[str, Callable[[], Any]] = {
    "chat": _ChatAccumulator, "completions": _CompletionsAccumulator, "responses": _ResponsesAccumulator,
}


class _StreamProxy(wrapt.ObjectProxy):  # type: ignore[misc]
    """An SDK ``Stream`` that feeds its chunks to the span; the same chunk objects reach the caller."""

    def __init__(self, stream: Any, call: _Call) -> None:
        super().__init__(stream)
        self._self_call = call

    def __iter__(self) -> "_StreamProxy":
        return self

    def __next__(self) -> Any:
        try:
            item = self.__wrapped__.__next__()
        except StopIteration:
            self._self_call.close(exhausted=True)
            raise
        except BaseException as exc:
            self._self_call.close(exc)
            raise
        self._self_call.chunk(item)
        return item

    def __enter__(self) -> "_StreamProxy":
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(*exc_info)
        finally:
            self._self_call.close()

    def close(self) -> None:
        """Close the SDK stream and end the span."""
        try:
            self.__wrapped__.close()
        finally:
            self._self_call.close()

    def __del__(self) -> None:
        try:
            self._self_call.close()
        except Exception:  # noqa: BLE001 - never raise from a finalizer
            pass


class _AsyncStreamProxy(wrapt.ObjectProxy):  # type: ignore[misc]
    """An SDK ``AsyncStream`` that feeds its chunks to the span; the same chunk objects reach the caller."""

    def __init__(self, stream: Any, call: _Call) -> None:
        super().__init__(stream)
        self._self_call = call

    def __aiter__(self) -> "_AsyncStreamProxy":
        return self

    async def __anext__(self) -> Any:
        try:
            item = await self.__wrapped__.__anext__()
        except StopAsyncIteration:
            self._self_call.close(exhausted=True)
            raise
        except BaseException as exc:
            self._self_call.close(exc)
            raise
        self._self_call.chunk(item)
        return item

    async def __aenter__(self) -> "_AsyncStreamProxy":
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(*exc_info)
        finally:
            self._self_call.close()

    async def close(self) -> None:
        """Close the SDK stream and end the span."""
        try:
            await self.__wrapped__.close()
        finally:
            self._self_call.close()

    async def aclose(self) -> None:
        """Close the SDK stream and end the span."""
        await self.close()

    def __del__(self) -> None:
        try:
            self._self_call.close()
        except Exception:  # noqa: BLE001 - never raise from a finalizer
            pass


class _RawStreamResponse(wrapt.ObjectProxy):  # type: ignore[misc]
    """A ``with_raw_response`` reply of a streamed call whose ``parse()`` returns the proxied stream."""

    def __init__(self, raw: Any, call: _Call) -> None:
        super().__init__(raw)
        self._self_call = call
        self._self_stream: Any = None

    def parse(self, *args: Any, **kwargs: Any) -> Any:
        """The SDK's parse(); the default parse gives the stream, proxied once and returned the same each time."""
        parsed = self.__wrapped__.parse(*args, **kwargs)
        if args or kwargs.get("to") is not None:
            return parsed
        if self._self_stream is None:
            self._self_stream = self._self_call.wrap_stream(parsed)
        return self._self_stream

    def __del__(self) -> None:
        try:
            if self._self_stream is None:
                self._self_call.close()
        except Exception:  # noqa: BLE001 - never raise from a finalizer
            pass
