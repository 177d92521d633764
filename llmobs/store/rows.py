"""Turn finished span records into row tuples for the ``spans`` and ``traces`` tables (runs on the writer thread).

Rows are built as tuples in table column order with values already in the driver's format, so the writer can hand
a whole batch to one ``executemany`` without per-value type processing: that is what keeps ingest above 50k spans/s.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Callable, Iterable, Sequence

import orjson

from llmobs.context import SpanRecord, perf_to_wall_ns
from llmobs.serialize import encode, redact, snapshot, truncate_text

log = logging.getLogger("llmobs")

SPAN_COLUMNS = ("id", "trace_id", "parent_id", "name", "kind", "start_time", "end_time", "duration_ms", "status",
                "error_type", "error_message", "error_traceback", "input", "output", "metadata", "model_name",
                "provider", "prompt_tokens", "completion_tokens", "total_tokens", "cost_usd", "time_to_first_token_ms",
                "source")
TRACE_COLUMNS = ("id", "name", "start_time", "end_time", "duration_ms", "status", "user_id", "session_id", "tags",
                 "metadata", "input", "output", "span_count", "error_count", "prompt_tokens", "completion_tokens",
                 "total_tokens", "cost_usd")
TRACE_TOTALS = ("span_count", "error_count", "prompt_tokens", "completion_tokens", "total_tokens", "cost_usd")
JSON_COLUMNS = frozenset({"metadata", "tags"})
# Only model calls count toward trace totals, so a parent span repeating its child's usage is not counted twice.
COUNTED_KINDS = ("generation", "embedding")

_UTC = dt.timezone.utc
_EPOCH_AWARE = dt.datetime(1970, 1, 1, tzinfo=_UTC)
_EPOCH_NAIVE = dt.datetime(1970, 1, 1)
_timedelta = dt.timedelta
TimeFormat = Callable[[int], Any]


_last_second: list[Any] = [None, ""]


def sqlite_time(epoch_us: int) -> str:
    """SQLAlchemy's SQLite DATETIME text for an epoch in microseconds (naive UTC, always with microseconds).

    Spans of one batch mostly share their second, so the date-and-time part is cached.
    """
    second, micro = divmod(epoch_us, 1_000_000)
    cached = _last_second
    if cached[0] != second:
        cached[1] = (_EPOCH_NAIVE + _timedelta(seconds=second)).isoformat(" ")
        cached[0] = second
    return f"{cached[1]}.{micro:06d}"


def aware_time(epoch_us: int) -> dt.datetime:
    """An aware UTC datetime for an epoch in microseconds (PostgreSQL, in-memory rows)."""
    return _EPOCH_AWARE + _timedelta(microseconds=epoch_us)


def _text(value: Any, limit: int) -> str | None:
    if value is None:
        return None
    text = value if type(value) is str else str(value)
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _int(value: Any, field: str) -> int | None:
    if value is None or type(value) is int and value >= 0:
        return value
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        log.warning("llmobs: %s=%r is not an integer; stored as NULL", field, value)
        return None
    return number if number >= 0 else None


def _float(value: Any, field: str) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        log.warning("llmobs: %s=%r is not a number; stored as NULL", field, value)
        return None
    return number if number == number else None


def json_text(value: Any, max_chars: int, redact_secrets: bool) -> str | None:
    """A snapshot as stored JSON text: bounded in size, secrets redacted when asked."""
    if value is None:
        return None
    t = type(value)
    if t is str and len(value) <= max_chars and '"' not in value and "\\" not in value and value.isprintable():
        text = f'"{value}"'
    else:
        text = encode(value, max_chars)
        if text is None:
            return None
    return redact(text) if redact_secrets else text


def metadata_text(value: Any, max_chars: int, redact_secrets: bool) -> str | None:
    """Metadata as JSON object text (non-dict values are wrapped as ``{"value": ...}``)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        value = {"value": snapshot(value, max_chars)}
    text = json_text(value, max_chars, redact_secrets)
    if text is not None and not text.startswith("{"):
        text = orjson.dumps({"truncated": orjson.loads(text)}).decode()
    return text


def span_tuple(rec: SpanRecord, max_chars: int, redact_secrets: bool, fmt_time: TimeFormat) -> tuple[Any, ...]:
    """The ``spans`` row of one finished record, in SPAN_COLUMNS order."""
    duration_us = (rec.perf_end - rec.perf_start) // 1000
    wall = rec.wall_start_ns  # set by callers that know the exact start (e.g. the MetricsCollector)
    start_us = (wall if wall is not None else perf_to_wall_ns(rec.perf_start)) // 1000
    prompt = _int(rec.prompt_tokens, "prompt_tokens")
    completion = _int(rec.completion_tokens, "completion_tokens")
    total = _int(rec.total_tokens, "total_tokens")
    if total is None and (prompt is not None or completion is not None):
        total = (prompt or 0) + (completion or 0)
    error_message = rec.error_message
    return (
        f"{rec.span_id:016x}",
        f"{rec.trace.trace_id:032x}",
        None if rec.parent_id is None else f"{rec.parent_id:016x}",
        _text(rec.name, 512) or "unnamed",
        rec.kind,
        fmt_time(start_us),
        fmt_time(start_us + duration_us),
        (rec.perf_end - rec.perf_start) / 1e6,
        "error" if rec.status == "error" else "ok",
        _text(rec.error_type, 256),
        None if error_message is None else _text(truncate_text(str(error_message), max_chars), max_chars + 64),
        _text(rec.error_traceback, max_chars + 64),
        json_text(rec.input, max_chars, redact_secrets),
        json_text(rec.output, max_chars, redact_secrets),
        metadata_text(rec.metadata, max_chars, redact_secrets),
        _text(rec.model_name, 256),
        _text(rec.provider, 64),
        prompt,
        completion,
        total,
        _float(rec.cost_usd, "cost_usd"),
        _float(rec.time_to_first_token_ms, "time_to_first_token_ms"),
        _text(rec.source, 32) or "observe",
    )


_I = {name: i for i, name in enumerate(SPAN_COLUMNS)}
_TRACE_I = {name: i for i, name in enumerate(TRACE_COLUMNS)}


def trace_tuples(records: Sequence[SpanRecord], spans: Sequence[tuple[Any, ...]], max_chars: int,
                 redact_secrets: bool) -> list[tuple[Any, ...]]:
    """One ``traces`` row per trace in the batch: totals over the batch's spans, attributes from the root span.

    The writer upserts these, adding totals to what earlier batches stored, so late spans still count.
    """
    i_trace, i_status, i_kind = _I["trace_id"], _I["status"], _I["kind"]
    i_prompt, i_completion, i_total, i_cost = _I["prompt_tokens"], _I["completion_tokens"], _I["total_tokens"], _I[
        "cost_usd"]
    out: dict[str, list[Any]] = {}
    for rec, row in zip(records, spans):
        agg = out.get(row[i_trace])
        if agg is None:
            agg = out[row[i_trace]] = [row[i_trace], None, None, None, None, None, None, None, None, None, None, None,
                                       0, 0, None, None, None, None]
        agg[12] += 1
        if row[i_status] == "error":
            agg[13] += 1
        if row[i_kind] in COUNTED_KINDS:
            for src, dst in ((i_prompt, 14), (i_completion, 15), (i_total, 16), (i_cost, 17)):
                if row[src] is not None:
                    agg[dst] = (agg[dst] or 0) + row[src]
        if rec.is_root:
            trace = rec.trace
            agg[1] = _text(trace.name or row[_I["name"]], 512)
            agg[2], agg[3], agg[4], agg[5] = row[_I["start_time"]], row[_I["end_time"]], row[_I["duration_ms"]], row[
                i_status]
            agg[6], agg[7] = _text(trace.user_id, 256), _text(trace.session_id, 256)
            agg[8] = orjson.dumps([str(t) for t in trace.tags]).decode() if trace.tags else None
            agg[9] = metadata_text(trace.metadata, max_chars, redact_secrets)
            agg[10] = row[_I["input"]] if trace.input is None else json_text(trace.input, max_chars, redact_secrets)
            agg[11] = row[_I["output"]] if trace.output is None else json_text(trace.output, max_chars,
                                                                                redact_secrets)
    return [tuple(v) for v in out.values()]


def as_dicts(columns: Sequence[str], rows: Iterable[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Rows as dicts keyed by column name, with JSON columns decoded (for in-memory exporters and tests)."""
    out = []
    for row in rows:
        item = dict(zip(columns, row))
        for key in JSON_COLUMNS & item.keys():
            if item[key] is not None:
                item[key] = orjson.loads(item[key])
        out.append(item)
    return out
