"""Trace and span context: the span records, the contextvar that nests them, ids and clocks.

Ids are integers on the hot path and become hex strings on the writer thread. Each process draws a random base
per id kind (again after fork) and counts up from it: ids stay unique across processes (ranges of 2**63 and
2**127 that would have to overlap) and within one (a counter), and consecutive ids land next to each other in
the database's primary-key and trace indexes, which keeps inserts from touching random pages of large files.
Each span keeps its monotonic start (``perf_counter_ns``); the writer turns it into wall-clock time with a
refreshed offset.
"""

from __future__ import annotations

import contextvars
import itertools
import os
import random
import time
from typing import Any

_getrandbits = random.getrandbits
_span_base = _getrandbits(63)
_trace_base = _getrandbits(127)
_next_span = itertools.count(1).__next__  # atomic under the GIL: threads never get the same number
_next_trace = itertools.count(1).__next__


def _new_id_bases() -> None:
    """A forked child must not count on from its parent's bases."""
    global _span_base, _trace_base
    _span_base = _getrandbits(63)
    _trace_base = _getrandbits(127)


os.register_at_fork(after_in_child=_new_id_bases)
_time_ns = time.time_ns
_perf_ns = time.perf_counter_ns

SPAN_FIELDS = frozenset({
    "name", "input", "output", "metadata", "model_name", "provider", "prompt_tokens", "completion_tokens",
    "total_tokens", "cost_usd", "time_to_first_token_ms", "status", "error_type", "error_message", "kind",
})
TRACE_FIELDS = frozenset({"name", "user_id", "session_id", "tags", "metadata", "input", "output"})


_TRACE_DEFAULTS: dict[str, Any] = {"name": None, "user_id": None, "session_id": None, "tags": None,
                                   "metadata": None, "input": None, "output": None}
# Kept by the writer thread: the tags its span rows were last written with (``spans.trace_tags``), as JSON text,
# and whether rows written earlier carry other tags and must be rewritten.
_TAGS_UNWRITTEN = object()
_TRACE_WRITER_DEFAULTS: dict[str, Any] = {"tags_written": _TAGS_UNWRITTEN, "tags_json": None, "retagged": False}


class TraceState:
    """What is known about one call tree while it runs: sampling decision and trace-level attributes."""

    # Defaults live on the class (see below); an instance stores only what was set, so creating one is cheap.

    def __init__(self, trace_id: int, sampled: bool) -> None:
        self.trace_id = trace_id
        self.sampled = sampled

    @property
    def id(self) -> str:
        """The trace id as 32 hex characters."""
        return format_trace_id(self.trace_id)


_SPAN_DEFAULTS: dict[str, Any] = {
    "parent_id": None, "perf_end": 0, "status": "ok", "error_type": None, "error_message": None,
    "error_traceback": None, "arg_names": None, "arg_values": None, "output": None, "metadata": None,
    "model_name": None, "provider": None,
    "prompt_tokens": None, "completion_tokens": None, "total_tokens": None, "cost_usd": None,
    "time_to_first_token_ms": None, "ended": False, "is_root": False, "wall_start_ns": None,
}


class _RawArguments:
    """``SpanRecord.input`` while nothing set it: the positional arguments ``@observe`` kept as they were passed
    (all immutable), named on first read, usually on the writer thread. An assigned ``input`` shadows this.
    """

    def __get__(self, span: Any, owner: type | None = None) -> Any:
        if span is None:
            return self
        values = span.arg_values
        if values is None:
            return None
        # An instance attribute now shadows this descriptor. (Not through ``__dict__``: asking for it turns the
        # instance's inline attribute storage into a dict, which costs a microsecond and slows later reads.)
        named = dict(zip(span.arg_names, values))
        span.input = named
        return named


class SpanRecord:
    """One span as captured. Defaults live on the class, so creating one sets only seven attributes.

    (No lazily made ids or trace state here: a descriptor written in Python on ``trace`` or ``span_id`` stops
    CPython from specializing every read of them, which costs the nested case more than laziness saves.)
    """

    input: Any = _RawArguments()

    def __init__(self, name: str, kind: str, trace: TraceState, parent_id: int | None, source: str) -> None:
        self.name = name
        self.kind = kind
        self.trace = trace
        self.span_id = _span_base + _next_span()
        self.parent_id = parent_id
        self.source = source
        self.perf_start = _perf_ns()

    @property
    def id(self) -> str:
        """The span id as 16 hex characters."""
        return format_span_id(self.span_id)

    @property
    def trace_id(self) -> str:
        """The trace id as 32 hex characters."""
        return format_trace_id(self.trace.trace_id)

    @property
    def duration_ms(self) -> float | None:
        """Elapsed milliseconds, once ended."""
        return (self.perf_end - self.perf_start) / 1e6 if self.ended else None


    def update(self, **fields: Any) -> "SpanRecord":
        """Set fields (output, metadata, model_name, tokens, cost, ...); see ``llmobs.update_current_span``."""
        from llmobs.tracing import update_span

        return update_span(self, **fields)

    def end(self, output: Any = None, error: BaseException | None = None) -> None:
        """End the span (once) and queue it for writing; see ``llmobs.end_span``."""
        from llmobs.tracing import end_span

        end_span(self, output, error=error)

    def __repr__(self) -> str:
        return f"SpanRecord({self.name!r}, kind={self.kind!r}, id={self.id}, status={self.status!r})"


for _key, _value in {**_TRACE_DEFAULTS, **_TRACE_WRITER_DEFAULTS}.items():
    setattr(TraceState, _key, _value)
for _key, _value in _SPAN_DEFAULTS.items():
    setattr(SpanRecord, _key, _value)


UNSAMPLED = TraceState(0, False)  # the trace of an unsampled or disabled call tree; nothing under it is recorded

current_span: contextvars.ContextVar[SpanRecord | None] = contextvars.ContextVar("llmobs_current_span", default=None)


def new_trace_id() -> int:
    """A 128-bit trace id (this process's base plus a counter; see the module docstring)."""
    return _trace_base + _next_trace()


def format_span_id(value: int) -> str:
    """16 lowercase hex digits."""
    return "%016x" % value  # printf-style formats an int twice as fast as a format spec


def format_trace_id(value: int) -> str:
    """32 lowercase hex digits."""
    return "%032x" % value



_clock_offset_ns = _time_ns() - _perf_ns()


def refresh_clock_offset() -> None:
    """Re-read the wall-minus-monotonic offset (the writer calls this per batch, so clock steps are followed)."""
    global _clock_offset_ns
    _clock_offset_ns = _time_ns() - _perf_ns()


def perf_to_wall_ns(perf: int) -> int:
    """Convert a ``perf_counter_ns`` reading into epoch nanoseconds."""
    return perf + _clock_offset_ns


perf_ns = _perf_ns  # the monotonic clock in nanoseconds, for durations (bound directly: it is on the hot path)
