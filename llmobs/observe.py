"""``@observe``: turn any function into a span, built with wrapt.

The kind of callable (plain, coroutine, generator, async generator) is decided once, at decoration time; the
per-call path then does a contextvar read, a snapshot of the arguments, two clock reads and a queue append.
The wrapped function's return value and exceptions pass through untouched.
"""

from __future__ import annotations

import functools
import inspect
import logging
import types
from dataclasses import dataclass
from typing import Any, AsyncGenerator, Awaitable, Callable, Generator, TypeVar, overload

import wrapt

from llmobs import pipeline as _pipeline
from llmobs._state import rt
from llmobs.context import SpanRecord, TraceState, current_span, new_trace_id, perf_ns
from llmobs.serialize import _snap, truncate_text
from llmobs.store.models import SPAN_KINDS
from llmobs.tracing import NOOP_SPAN, NoopSpan, record_error

log = logging.getLogger("llmobs")
F = TypeVar("F", bound=Callable[..., Any])
_submit = _pipeline.submit  # reads the pipeline of this process at each call (a new one after fork)
_get = current_span.get
_set = current_span.set
_reset = current_span.reset
_CoroutineType = types.CoroutineType
_random = __import__("random").random
_SELF_NAMES = ("self", "cls")
MAX_STREAM_ITEMS = 10_000


@dataclass(frozen=True)
class _Spec:
    """What ``@observe`` decided about one function at decoration time."""

    name: str
    kind: str
    capture_input: bool | None
    capture_output: bool | None
    metadata: dict[str, Any] | None
    params: tuple[str, ...]
    varargs: str | None
    skip_self_when_unbound: bool


def _spec_for(func: Callable[..., Any], name: str | None, kind: str, capture_input: bool | None,
              capture_output: bool | None, metadata: dict[str, Any] | None) -> _Spec:
    target = getattr(func, "__func__", func)
    try:
        sig = inspect.signature(target)
        positional = tuple(p.name for p in sig.parameters.values()
                           if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))
        varargs = next((p.name for p in sig.parameters.values() if p.kind is p.VAR_POSITIONAL), None)
    except (TypeError, ValueError):
        positional, varargs = (), "args"
    skip_self = bool(positional) and positional[0] in _SELF_NAMES and not isinstance(func, staticmethod)
    return _Spec(name or getattr(target, "__qualname__", None) or getattr(target, "__name__", "function"), kind,
                 capture_input, capture_output, dict(metadata) if metadata else None, positional, varargs, skip_self)


_IMMUTABLE = frozenset({str, int, float, bool, type(None)})


def _capture_args(spec: _Spec, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """Arguments by parameter name; immutable values are kept as they are, anything else is snapshotted now."""
    names = spec.params
    if spec.skip_self_when_unbound:
        if instance is not None:
            names = names[1:]
        elif args:
            names, args = names[1:], args[1:]
    if len(args) <= len(names):
        out = dict(zip(names, args))
    else:
        out = dict(zip(names, args))
        out[spec.varargs or "args"] = list(args[len(names):])
    if kwargs:
        out.update(kwargs)
    for key, value in out.items():
        if type(value) not in _IMMUTABLE:
            out[key] = _safe_snap(value, rt.max_field_chars)
    return out


def _safe_snap(value: Any, limit: int) -> Any:
    try:
        return _snap(value, limit, 0, set())
    except Exception:  # noqa: BLE001 - boundary: unserializable input is recorded as such
        return f"<unserializable {type(value).__qualname__}>"


def _open(spec: _Spec, parent: SpanRecord | None) -> SpanRecord:
    """A new span under ``parent`` (``parent`` itself when its trace is not sampled, a no-op span when a new trace
    is not); the input is attached separately, once the span is known to be recorded. Never raises."""
    try:
        if parent is None:
            rate = rt.sample_rate
            if rate < 1.0 and _random() >= rate:
                return NoopSpan()
            span = SpanRecord(spec.name, spec.kind, TraceState(new_trace_id(), True), None, "observe")
            span.is_root = True
        elif parent.trace.sampled:
            span = SpanRecord(spec.name, spec.kind, parent.trace, parent.span_id, "observe")
        else:
            return parent
        if spec.metadata:
            span.metadata = dict(spec.metadata)
        return span
    except Exception:  # noqa: BLE001 - boundary
        log.exception("llmobs: could not open span %r", spec.name)
        return NOOP_SPAN


def _attach_input(spec: _Spec, span: SpanRecord, captured: Any) -> None:
    """Put what ``_input`` captured on a recorded span: raw immutable arguments are named when first read."""
    if span.__class__ is NoopSpan:
        return
    if type(captured) is tuple:
        span.arg_values = captured
        span.arg_names = spec.params
    elif captured is not None:
        span.input = captured


def _input(spec: _Spec, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """What to record as the call's input: None (capture off), ``args`` itself when every argument is a positional
    immutable value (kept as passed: naming them is left to whoever reads ``SpanRecord.input``), else a dict.
    """
    if not (rt.capture_input if spec.capture_input is None else spec.capture_input):
        return None
    try:
        if instance is None and not kwargs and not spec.skip_self_when_unbound and len(args) <= len(spec.params):
            for value in args:
                if type(value) not in _IMMUTABLE:
                    break
            else:
                return args
        return _capture_args(spec, instance, args, kwargs)
    except Exception:  # noqa: BLE001 - boundary
        log.warning("llmobs: could not capture the arguments of %r", spec.name, exc_info=True)
        return "<capture failed>"


def _close(spec: _Spec, span: SpanRecord, result: Any = None, error: BaseException | None = None,
           output_is_snapshot: bool = False) -> None:
    """Stamp the end, record the output or error and queue the span. Never raises."""
    if span.__class__ is NoopSpan or span.ended:
        return
    try:
        span.perf_end = perf_ns()
        span.ended = True
        if error is not None:
            record_error(span, error)
        elif result is not None and (rt.capture_output if spec.capture_output is None else spec.capture_output):
            if output_is_snapshot:
                span.output = result
            else:
                t = type(result)
                if t is str and len(result) <= rt.max_field_chars or t is int or t is float or t is bool:
                    span.output = result
                else:
                    span.output = _safe_snap(result, rt.max_field_chars)
        _pipeline.submit(span)
    except Exception:  # noqa: BLE001 - boundary
        log.exception("llmobs: could not close span %r", spec.name)


async def _await_then_close(spec: _Spec, span: SpanRecord, awaitable: Awaitable[Any]) -> Any:
    """For a plain function that returned a coroutine: the span stays open until that coroutine finishes."""
    token = _set(span)
    try:
        result = await awaitable
    except BaseException as exc:
        _reset(token)
        _close(spec, span, error=exc)
        raise
    _reset(token)
    _close(spec, span, result)
    return result


class _StreamOutput:
    """Collects what a generator yields, bounded in size; strings are joined at the end."""

    __slots__ = ("items", "all_str", "chars", "dropped", "limit")

    def __init__(self, limit: int) -> None:
        self.items: list[Any] = []
        self.all_str = True
        self.chars = 0
        self.dropped = 0
        self.limit = limit

    def add(self, item: Any) -> None:
        if len(self.items) >= MAX_STREAM_ITEMS or self.chars > self.limit:
            self.dropped += 1
            return
        if type(item) is str:
            self.chars += len(item)
            self.items.append(item)
        else:
            self.all_str = False
            self.items.append(_safe_snap(item, self.limit))

    def value(self) -> Any:
        if self.all_str and self.items:
            return truncate_text("".join(self.items), self.limit)
        out: list[Any] = list(self.items)
        if self.dropped:
            out.append(f"…[{self.dropped} more items]")
        return out


def _first_item(span: SpanRecord) -> None:
    if span.time_to_first_token_ms is None and span.__class__ is not NoopSpan:
        span.time_to_first_token_ms = (perf_ns() - span.perf_start) / 1e6


def _gen_wrapper(spec: _Spec) -> Callable[..., Any]:
    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not rt.enabled:
            return wrapped(*args, **kwargs)
        captured = _input(spec, instance, args, kwargs)
        parent = _get()
        return _observe_generator(spec, wrapped(*args, **kwargs), parent, captured)

    return wrapper


def _observe_generator(spec: _Spec, gen: Generator[Any, Any, Any], parent: SpanRecord | None,
                       captured: Any) -> Generator[Any, Any, Any]:
    """Re-yield ``gen`` with its span current during each step; the span ends when ``gen`` ends or is closed."""
    span = _open(spec, parent)
    _attach_input(spec, span, captured)
    collected = _StreamOutput(rt.max_field_chars)
    throwing: BaseException | None = None
    sent: Any = None
    while True:
        token = _set(span)
        try:
            item = gen.throw(throwing) if throwing is not None else gen.send(sent)
        except StopIteration as stop:
            _close(spec, span, collected.value() if stop.value is None else stop.value,
                   output_is_snapshot=stop.value is None)
            return stop.value
        except BaseException as exc:
            _close(spec, span, error=exc)
            raise
        finally:
            _reset(token)
        _first_item(span)
        collected.add(item)
        throwing = None
        try:
            sent = yield item
        except GeneratorExit:
            token = _set(span)
            try:
                gen.close()
            finally:
                _reset(token)
                _close(spec, span, collected.value(), output_is_snapshot=True)
            raise
        except BaseException as exc:
            throwing = exc


def _asyncgen_wrapper(spec: _Spec) -> Callable[..., Any]:
    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not rt.enabled:
            return wrapped(*args, **kwargs)
        captured = _input(spec, instance, args, kwargs)
        parent = _get()
        return _observe_async_generator(spec, wrapped(*args, **kwargs), parent, captured)

    return wrapper


async def _observe_async_generator(spec: _Spec, agen: AsyncGenerator[Any, Any], parent: SpanRecord | None,
                                   captured: Any) -> AsyncGenerator[Any, Any]:
    """Async twin of ``_observe_generator``."""
    span = _open(spec, parent)
    _attach_input(spec, span, captured)
    collected = _StreamOutput(rt.max_field_chars)
    throwing: BaseException | None = None
    sent: Any = None
    while True:
        token = _set(span)
        try:
            item = await (agen.athrow(throwing) if throwing is not None else agen.asend(sent))
        except StopAsyncIteration:
            _close(spec, span, collected.value(), output_is_snapshot=True)
            return
        except BaseException as exc:
            _close(spec, span, error=exc)
            raise
        finally:
            _reset(token)
        _first_item(span)
        collected.add(item)
        throwing = None
        try:
            sent = yield item
        except GeneratorExit:
            token = _set(span)
            try:
                await agen.aclose()
            finally:
                _reset(token)
                _close(spec, span, collected.value(), output_is_snapshot=True)
            raise
        except BaseException as exc:
            throwing = exc


def _closure(func: Callable[..., Any], spec: _Spec) -> Callable[..., Any]:
    """A plain closure around ``func``: wrapt's proxy costs about 1 µs a call, twice the reference tracer.

    Methods still bind (the closure is a function), ``self``/``cls`` are dropped from the captured input, and
    functools.wraps keeps name, docstring, ``__wrapped__`` (so the signature) and the coroutine-function answer.
    The synchronous path inlines the common case (sampled, positional immutable arguments): it is the hot path.
    """
    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            if not rt.enabled:
                return await func(*args, **kwargs)
            parent = _get()
            span = _open(spec, parent)
            if span is parent:
                return await func(*args, **kwargs)
            if span.__class__ is not NoopSpan:  # no capture for a trace that sampling left out
                _attach_input(spec, span, _input(spec, None, args, kwargs))
            token = _set(span)
            try:
                result = await func(*args, **kwargs)
            except BaseException as exc:
                _reset(token)
                _close(spec, span, error=exc)
                raise
            _reset(token)
            _close(spec, span, result)
            return result

        return async_wrapper

    name, kind, metadata = spec.name, spec.kind, spec.metadata
    capture_out, params = spec.capture_output, spec.params

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not rt.enabled:
            return func(*args, **kwargs)
        parent = _get()
        if parent is None and rt.sample_rate < 1.0 and _random() >= rt.sample_rate:
            return _call_unsampled(spec, func, args, kwargs)
        try:
            if parent is None:
                span = SpanRecord(name, kind, TraceState(new_trace_id(), True), None, "observe")
                span.is_root = True
            else:
                trace = parent.trace
                if not trace.sampled:
                    return func(*args, **kwargs)
                span = SpanRecord(name, kind, trace, parent.span_id, "observe")
            captured = _input(spec, None, args, kwargs)
            if type(captured) is tuple:  # the common case of _open + _attach_input, inlined: the hot path
                span.arg_values = captured
                span.arg_names = params
            elif captured is not None:
                span.input = captured
            if metadata:
                span.metadata = dict(metadata)
        except Exception:  # noqa: BLE001 - boundary: trace nothing rather than break the call
            log.exception("llmobs: could not open span %r", name)
            return func(*args, **kwargs)
        token = _set(span)
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            _reset(token)
            _close(spec, span, error=exc)
            raise
        _reset(token)
        if type(result) is _CoroutineType:
            return _await_then_close(spec, span, result)
        try:
            span.perf_end = perf_ns()
            span.ended = True
            if result is not None and (rt.capture_output if capture_out is None else capture_out):
                t = type(result)
                if t is str and len(result) <= rt.max_field_chars or t is int or t is float or t is bool:
                    span.output = result
                else:
                    span.output = _safe_snap(result, rt.max_field_chars)
            _submit(span)
        except Exception:  # noqa: BLE001 - boundary
            log.exception("llmobs: could not close span %r", name)
        return result

    return wrapper


def _call_unsampled(spec: _Spec, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Run a call that starts a trace sampling left out: nothing captured, a no-op span current so that nothing
    under it is recorded either (also while a returned coroutine runs)."""
    span = NoopSpan()
    token = _set(span)
    try:
        result = func(*args, **kwargs)
    finally:
        _reset(token)
    if type(result) is _CoroutineType:
        return _await_then_close(spec, span, result)
    return result


def _callable_wrapper(spec: _Spec, func: Callable[..., Any]) -> Callable[..., Any]:
    """The wrapt wrapper for callables that are not plain functions (objects with ``__call__``, builtins, partials):
    wrapt keeps their descriptor behaviour, and the call itself goes through the same closure as a function.
    """
    direct = _closure(func, spec)

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return (direct if wrapped is func else _closure(wrapped, spec))(*args, **kwargs)

    return wrapper


@overload
def observe(func: F) -> F: ...


@overload
def observe(func: None = None, *, name: str | None = None, kind: str = "span", capture_input: bool | None = None,
            capture_output: bool | None = None, metadata: dict[str, Any] | None = None) -> Callable[[F], F]: ...


def observe(func: Any = None, *, name: str | None = None, kind: str = "span", capture_input: bool | None = None,
            capture_output: bool | None = None, metadata: dict[str, Any] | None = None) -> Any:
    """Record every call of the decorated function as a span (sync, async, generator, async generator, methods).

    ``kind`` is one of span, generation, chain, tool, retriever, embedding, agent, evaluator. ``capture_input`` /
    ``capture_output`` override the global settings for this function.

    >>> @observe(kind="tool")
    ... def add(a: int, b: int) -> int:
    ...     return a + b
    >>> add(1, 2)
    3
    """
    if kind not in SPAN_KINDS:
        raise ValueError(f"llmobs.observe: kind={kind!r} is not allowed; use one of {', '.join(SPAN_KINDS)}")
    if metadata is not None and not isinstance(metadata, dict):
        raise ValueError(f"llmobs.observe: metadata={metadata!r} must be a dict")
    if func is None:
        return lambda f: observe(f, name=name, kind=kind, capture_input=capture_input, capture_output=capture_output,
                                 metadata=metadata)
    if not callable(func) and not isinstance(func, (staticmethod, classmethod)):
        raise TypeError(f"llmobs.observe: {func!r} is not callable")
    spec = _spec_for(func, name, kind, capture_input, capture_output, metadata)
    target = getattr(func, "__func__", func)
    if inspect.isgeneratorfunction(target):
        return wrapt.FunctionWrapper(func, _gen_wrapper(spec))
    if inspect.isasyncgenfunction(target):
        return wrapt.FunctionWrapper(func, _asyncgen_wrapper(spec))
    if inspect.isfunction(func):
        return _closure(func, spec)
    if isinstance(func, (staticmethod, classmethod)) and inspect.isfunction(target):
        return type(func)(_closure(target, spec))
    return wrapt.FunctionWrapper(func, _callable_wrapper(spec, func))
