"""Turn finished span records into row dicts for the ``spans`` and ``traces`` tables (runs on the writer thread)."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Iterable

from llmobs.context import SpanRecord, format_span_id, format_trace_id, ns_to_datetime, perf_to_wall_ns
from llmobs.serialize import encode, redact, snapshot, truncate_text

log = logging.getLogger("llmobs")
_STR_LIMITS = {"name": 512, "error_type": 256, "model_name": 256, "provider": 64, "user_id": 256, "session_id": 256}


def _text(value: Any, limit: int) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _int(value: Any, field: str) -> int | None:
    if value is None:
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
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


def _json_field(value: Any, max_chars: int, redact_secrets: bool) -> str | None:
    text = encode(value, max_chars)
    if text is not None and redact_secrets:
        text = redact(text)
    return text


def _metadata(value: Any, max_chars: int, redact_secrets: bool) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        value = {"value": snapshot(value, max_chars)}
    text = _json_field(value, max_chars, redact_secrets)
    if text is None:
        return None
    import orjson

    loaded = orjson.loads(text)
    return loaded if isinstance(loaded, dict) else {"truncated": loaded}


def span_row(rec: SpanRecord, max_chars: int, redact_secrets: bool) -> dict[str, Any]:
    """The ``spans`` row for one finished record: hex ids, aware UTC times, JSON text, checked numbers."""
    duration_ms = (rec.perf_end - rec.perf_start) / 1e6
    start = ns_to_datetime(perf_to_wall_ns(rec.perf_start))
    total = rec.total_tokens
    if total is None and (rec.prompt_tokens is not None or rec.completion_tokens is not None):
        total = (_int(rec.prompt_tokens, "prompt_tokens") or 0) + (_int(rec.completion_tokens, "completion_tokens")
                                                                     or 0)
    return {
        "id": format_span_id(rec.span_id),
        "trace_id": format_trace_id(rec.trace.trace_id),
        "parent_id": format_span_id(rec.parent_id) if rec.parent_id is not None else None,
        "name": _text(rec.name, 512) or "unnamed",
        "kind": rec.kind,
        "start_time": start,
        "end_time": start + dt.timedelta(microseconds=duration_ms * 1000),
        "duration_ms": duration_ms,
        "status": rec.status if rec.status in ("ok", "error") else "ok",
        "error_type": _text(rec.error_type, 256),
        "error_message": _text(rec.error_message and truncate_text(str(rec.error_message), max_chars), max_chars + 64),
        "error_traceback": _text(rec.error_traceback, max_chars + 64),
        "input": _json_field(rec.input, max_chars, redact_secrets),
        "output": _json_field(rec.output, max_chars, redact_secrets),
        "metadata": _metadata(rec.metadata, max_chars, redact_secrets),
        "model_name": _text(rec.model_name, 256),
        "provider": _text(rec.provider, 64),
        "prompt_tokens": _int(rec.prompt_tokens, "prompt_tokens"),
        "completion_tokens": _int(rec.completion_tokens, "completion_tokens"),
        "total_tokens": _int(total, "total_tokens"),
        "cost_usd": _float(rec.cost_usd, "cost_usd"),
        "time_to_first_token_ms": _float(rec.time_to_first_token_ms, "time_to_first_token_ms"),
        "source": _text(rec.source, 32) or "observe",
    }


# Only model calls count toward trace totals, so a parent span repeating its child's usage is not counted twice.
COUNTED_KINDS = ("generation", "embedding")
TRACE_TOTALS = ("span_count", "error_count", "prompt_tokens", "completion_tokens", "total_tokens", "cost_usd")


def trace_rows(records: Iterable[SpanRecord], rows: Iterable[dict[str, Any]], max_chars: int,
               redact_secrets: bool) -> list[dict[str, Any]]:
    """One ``traces`` row per trace in the batch: totals over the batch's spans, attributes from the root span."""
    out: dict[str, dict[str, Any]] = {}
    for rec, row in zip(records, rows):
        tid = row["trace_id"]
        agg = out.get(tid)
        if agg is None:
            agg = out[tid] = {"id": tid, "span_count": 0, "error_count": 0, "prompt_tokens": None,
                              "completion_tokens": None, "total_tokens": None, "cost_usd": None,
                              "name": None, "start_time": None, "end_time": None, "duration_ms": None,
                              "status": None, "user_id": None, "session_id": None, "tags": None, "metadata": None,
                              "input": None, "output": None}
        agg["span_count"] += 1
        agg["error_count"] += row["status"] == "error"
        for key in ("prompt_tokens", "completion_tokens", "total_tokens", "cost_usd"):
            if row[key] is not None and row["kind"] in COUNTED_KINDS:
                agg[key] = (agg[key] or 0) + row[key]
        if rec.is_root:
            trace = rec.trace
            agg.update({
                "name": _text(trace.name or row["name"], 512),
                "start_time": row["start_time"], "end_time": row["end_time"], "duration_ms": row["duration_ms"],
                "status": row["status"],
                "user_id": _text(trace.user_id, 256), "session_id": _text(trace.session_id, 256),
                "tags": [str(t) for t in trace.tags] if trace.tags else None,
                "metadata": _metadata(trace.metadata, max_chars, redact_secrets),
                "input": row["input"] if trace.input is None else _json_field(trace.input, max_chars, redact_secrets),
                "output": row["output"] if trace.output is None else _json_field(trace.output, max_chars,
                                                                                redact_secrets),
            })
    return list(out.values())
