"""The span lifecycle shared by ``@observe``, ``llmobs.span()`` and every integration.

``start_span`` decides sampling at the root and links the span to its parent; ``end_span`` stamps the duration,
snapshots the output and queues the record. Every function here is a boundary: a failure inside llmobs is logged
on the ``llmobs`` logger and never reaches the caller.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import functools
import logging
import random
import traceback
from types import TracebackType
from typing import Any, Callable, TypeVar

from llmobs import pipeline as _pipeline
from llmobs._state import rt
from llmobs.context import (
    SPAN_FIELDS,
    TRACE_FIELDS,
    UNSAMPLED,
    SpanRecord,
    TraceState,
    current_span,
    format_span_id,
    format_trace_id,
    new_trace_id,
    perf_ns,
)
from llmobs.serialize import snapshot
from llmobs.store.models import SPAN_KINDS

log = logging.getLogger("llmobs")
T = TypeVar("T")
_random = random.random
MAX_TRACEBACK_CHARS = 4000


class NoopSpan(SpanRecord):
    """Stands in for a span that is not recorded (llmobs disabled, trace not sampled); every method is a no-op."""

    def __init__(self) -> None:  # noqa: D107 - nothing to set
        self.trace = UNSAMPLED
        self.span_id = 0
        self.name = "noop"
        self.kind = "span"
        self.source = "noop"
        self.perf_start = 0
        self.parent_id = None

    def update(self, **fields: Any) -> "NoopSpan":
        """Ignore the fields."""
        return self

    def end(self, output: Any = None, error: BaseException | None = None) -> None:
        """Nothing to end."""


NOOP_SPAN = NoopSpan()


def start_span(name: str, kind: str = "span", *, source: str = "observe", parent: SpanRecord | None = None,
               input: Any = None, capture: bool = True, **fields: Any) -> SpanRecord:
    """Open a span under ``parent`` (default: the current span) without making it current; end it with ``end_span``.

    Integrations use this for runs that start and end in different callbacks.

    >>> s = start_span("lookup", kind="tool", input={"q": "x"}); end_span(s, output=3)
    """
    try:
        if not rt.enabled:
            return NOOP_SPAN
        if parent is None:
            parent = current_span.get()
        if kind not in SPAN_KINDS:
            log.warning("llmobs: unknown span kind %r for %r; using 'span' (allowed: %s)", kind, name,
                        ", ".join(SPAN_KINDS))
            kind = "span"
        if parent is None:
            if rt.sample_rate < 1.0 and _random() >= rt.sample_rate:
                return NoopSpan()  # a distinct object: children see an unsampled trace, not no trace
            span = SpanRecord(name, kind, TraceState(new_trace_id(), True), None, source)
            span.is_root = True
        elif not parent.trace.sampled:
            return parent if isinstance(parent, NoopSpan) else NOOP_SPAN
        else:
            span = SpanRecord(name, kind, parent.trace, parent.span_id, source)
        if input is not None and capture and rt.capture_input:
            span.input = snapshot(input, rt.max_field_chars)
        if fields:
            _update(span, fields)
        return span
    except Exception:  # noqa: BLE001 - boundary
        log.exception("llmobs: could not start span %r", name)
        return NOOP_SPAN



def end_span(span: SpanRecord, output: Any = None, *, error: BaseException | None = None, capture: bool = True,
             **fields: Any) -> None:
    """Close ``span``: stamp its duration, record ``output`` or ``error``, and queue it for writing (once).

    >>> s = start_span("step"); end_span(s, output="done")
    """
    if span.ended or isinstance(span, NoopSpan):
        return
    try:
        span.perf_end = perf_ns()
        span.ended = True
        if fields:
            _update(span, fields)
        if error is not None:
            record_error(span, error)
        elif output is not None and capture and rt.capture_output:
            span.output = snapshot(output, rt.max_field_chars)
        _pipeline.submit(span)
    except Exception:  # noqa: BLE001 - boundary
        log.exception("llmobs: could not end span %r", getattr(span, "name", "?"))


def record_error(span: SpanRecord, error: BaseException) -> None:
    """Mark ``span`` failed with the exception's type, message and a shortened traceback."""
    if isinstance(error, SystemExit) and error.code in (None, 0):
        return
    span.status = "error"
    span.error_type = type(error).__qualname__
    try:
        span.error_message = str(error)
    except Exception:  # noqa: BLE001 - a broken __str__ must not hide the error type
        span.error_message = f"<{type(error).__qualname__} with unprintable message>"
    try:
        lines = traceback.format_exception(type(error), error, error.__traceback__)
        text = "".join(lines)
        if len(text) > MAX_TRACEBACK_CHARS:
            text = "…" + text[-MAX_TRACEBACK_CHARS:]
        span.error_traceback = text
    except Exception:  # noqa: BLE001
        span.error_traceback = None


# Fields stored as given (no snapshot, no check): the model-call fields set on every generation come first.
_SET_AS_GIVEN = SPAN_FIELDS - {"metadata", "input", "output", "kind", "status"}


def _update(span: SpanRecord, fields: dict[str, Any]) -> None:
    for key, value in fields.items():
        if key in _SET_AS_GIVEN:
            setattr(span, key, value)
            continue
        if key not in SPAN_FIELDS:
            log.warning("llmobs: update ignored unknown span field %r (allowed: %s)", key,
                        ", ".join(sorted(SPAN_FIELDS)))
            continue
        if key == "metadata":
            if value is not None:
                merged = dict(span.metadata or {})
                merged.update(snapshot(value if isinstance(value, dict) else {"value": value}, rt.max_field_chars))
                span.metadata = merged
        elif key in ("input", "output"):
            if key == "input" and not rt.capture_input or key == "output" and not rt.capture_output:
                continue
            setattr(span, key, snapshot(value, rt.max_field_chars))
        elif key == "kind" and value not in SPAN_KINDS:
            log.warning("llmobs: unknown span kind %r (allowed: %s)", value, ", ".join(SPAN_KINDS))
        elif key == "status" and value not in ("ok", "error"):
            log.warning("llmobs: unknown span status %r (allowed: ok, error)", value)
        else:
            setattr(span, key, value)


def update_span(span: SpanRecord, **fields: Any) -> SpanRecord:
    """Set fields on a span (output, metadata, model_name, tokens, cost, ...); unknown names are logged and ignored."""
    _update_quietly(span, fields)
    return span


def _update_quietly(span: SpanRecord, fields: dict[str, Any]) -> None:
    """``_update`` at the boundary with the user's code: nothing for a span that is not recorded, errors logged."""
    try:
        if not isinstance(span, NoopSpan):
            _update(span, fields)
    except Exception:  # noqa: BLE001 - boundary
        log.exception("llmobs: span update failed")




def update_current_span(**fields: Any) -> None:
    """Set fields on the innermost open span: output, metadata, model_name, provider, prompt_tokens,
    completion_tokens, total_tokens, cost_usd, time_to_first_token_ms, status, name, input.

    >>> update_current_span(model_name="gpt-4o", prompt_tokens=12, completion_tokens=30)
    """
    span = current_span.get()
    if span is None:
        log.debug("llmobs: update_current_span called outside any span; ignored")
        return
    _update_quietly(span, fields)  # the keyword arguments as they came, not packed again by update_span


def update_current_trace(**fields: Any) -> None:
    """Set trace attributes of the current call tree: user_id, session_id, tags, metadata, name, input, output.

    >>> update_current_trace(user_id="u-42", session_id="s-1", tags=["prod"])
    """
    span = current_span.get()
    if span is None or not span.trace.sampled:
        return
    trace = span.trace
    try:
        for key, value in fields.items():
            if key not in TRACE_FIELDS:
                log.warning("llmobs: update_current_trace ignored unknown field %r (allowed: %s)", key,
                            ", ".join(sorted(TRACE_FIELDS)))
            elif key == "tags":
                existing = list(trace.tags or [])
                for tag in ([value] if isinstance(value, str) else list(value or [])):
                    if str(tag) not in existing:
                        existing.append(str(tag))
                trace.tags = existing
            elif key == "metadata":
                merged = dict(trace.metadata or {})
                merged.update(snapshot(value if isinstance(value, dict) else {"value": value}, rt.max_field_chars))
                trace.metadata = merged
            elif key in ("input", "output"):
                setattr(trace, key, snapshot(value, rt.max_field_chars))
            else:
                setattr(trace, key, None if value is None else str(value))
    except Exception:  # noqa: BLE001 - boundary
        log.exception("llmobs: trace update failed")


def get_current_span_id() -> str | None:
    """Hex id of the innermost recorded span, or None outside a (sampled) span."""
    span = current_span.get()
    return None if span is None or isinstance(span, NoopSpan) else format_span_id(span.span_id)


def get_current_trace_id() -> str | None:
    """Hex id of the current trace, or None outside a (sampled) trace."""
    span = current_span.get()
    return None if span is None or isinstance(span, NoopSpan) else format_trace_id(span.trace.trace_id)


class span:  # noqa: N801 - used like a function: ``with llmobs.span("name"):``
    """Context manager (sync and async) that opens a span, makes it current, and ends it on exit.

    >>> with span("retrieve", kind="retriever") as s:
    ...     s.update(output=["doc-1"], metadata={"k": 3})
    """

    __slots__ = ("_name", "_kind", "_fields", "_span", "_token", "_input")

    def __init__(self, name: str, kind: str = "span", *, input: Any = None, **fields: Any) -> None:
        self._name = name
        self._kind = kind
        self._input = input
        self._fields = fields
        self._span: SpanRecord = NOOP_SPAN
        self._token: contextvars.Token[SpanRecord | None] | None = None

    def __enter__(self) -> SpanRecord:
        self._span = start_span(self._name, self._kind, input=self._input, **self._fields)
        self._token = current_span.set(self._span)
        return self._span

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._token is not None:
            try:
                current_span.reset(self._token)
            except ValueError:  # exited in another context; nothing to restore there
                pass
        end_span(self._span, error=exc)

    async def __aenter__(self) -> SpanRecord:
        return self.__enter__()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.__exit__(exc_type, exc, tb)


def wrap_context(fn: Callable[..., T]) -> Callable[..., T]:
    """Bind ``fn`` to the current span so that spans it opens in another thread nest under it.

    >>> with ThreadPoolExecutor() as pool:                                   # doctest: +SKIP
    ...     pool.submit(llmobs.wrap_context(work), item)
    """
    parent = current_span.get()

    @functools.wraps(fn)
    def bound(*args: Any, **kwargs: Any) -> T:
        token = current_span.set(parent)
        try:
            return fn(*args, **kwargs)
        finally:
            current_span.reset(token)

    return bound


class ContextThreadPoolExecutor(concurrent.futures.ThreadPoolExecutor):
    """A ThreadPoolExecutor whose tasks run under the span that submitted them."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[T]:
        """Submit ``fn`` bound to the submitter's current span."""
        return super().submit(wrap_context(fn), *args, **kwargs)
