"""Turn finished span records into row tuples for the ``spans`` and ``traces`` tables (runs on the writer thread).

Rows are built as tuples in table column order with values already in the driver's format, so the writer hands a
whole batch to the driver (50 rows per statement) without per-value type processing; the writer's speed rests on it.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import Counter
from typing import Any, Callable, Iterable, Iterator, Sequence, TypeVar

import orjson

from llmobs.context import _TAGS_UNWRITTEN, SpanRecord, TraceState, format_trace_id, perf_to_wall_ns
from llmobs.serialize import MARK_SLACK, encode, may_hold_secret, redact, snapshot, truncate_text

log = logging.getLogger("llmobs")

SPAN_COLUMNS = ("id", "trace_id", "parent_id", "name", "kind", "start_time", "end_time", "duration_ms", "status",
                "error_type", "error_message", "error_traceback", "input", "output", "metadata", "model_name",
                "provider", "prompt_tokens", "completion_tokens", "total_tokens", "cost_usd", "time_to_first_token_ms",
                "source", "trace_tags")
TRACE_COLUMNS = ("id", "name", "start_time", "end_time", "duration_ms", "status", "user_id", "session_id", "tags",
                 "metadata", "input", "output", "span_count", "error_count", "prompt_tokens", "completion_tokens",
                 "total_tokens", "cost_usd")
TRACE_TOTALS = ("span_count", "error_count", "prompt_tokens", "completion_tokens", "total_tokens", "cost_usd")
JSON_COLUMNS = frozenset({"metadata", "tags"})
# JSON kept in a plain text column (so SQL can search it without parsing each row): decoded for in-memory rows.
JSON_TEXT_COLUMNS = frozenset({"trace_tags"})
# Only model calls count toward trace totals, so a parent span repeating its child's usage is not counted twice.
COUNTED_KINDS = ("generation", "embedding")

_UTC = dt.timezone.utc
_EPOCH_AWARE = dt.datetime(1970, 1, 1, tzinfo=_UTC)
_EPOCH_NAIVE = dt.datetime(1970, 1, 1)
_timedelta = dt.timedelta
TimeFormat = Callable[[int], Any]
T = TypeVar("T")


# The writer shares the GIL with the application. A thread of the application that waited on I/O waits for the GIL
# up to the switch interval (5 ms) while the writer runs Python; letting go of it every GIL_SLICE spans (about
# 1 ms of work) hands it over sooner: an I/O-bound thread's wake-ups while the writer drained were late by 5.2 ms
# at p90 and 10.4 ms at p99, and are late by about 1.0 and 2.0 ms with this (benchmarks/bench_ingest.py prints it).
GIL_SLICE = 256


def let_others_run() -> None:
    """Let go of the GIL for a moment, so a thread that waits for it runs now rather than at the switch interval."""
    time.sleep(0)


def yielding(items: Iterable[T]) -> Iterator[T]:
    """The items of ``items``, letting other threads run after every GIL_SLICE of them (for the writer's loops)."""
    for count, item in enumerate(items, 1):
        yield item
        if not count % GIL_SLICE:
            let_others_run()


_SECOND_TEXTS: dict[int, str] = {}


def sqlite_time(epoch_us: int) -> str:
    """SQLAlchemy's SQLite DATETIME text for an epoch in microseconds (naive UTC, always with microseconds).

    The spans of one batch start and end in a handful of seconds, so the date-and-time text of each second is
    cached (the last 256 seconds seen; a span's start and end often fall in different seconds).
    """
    second, micro = divmod(epoch_us, 1_000_000)
    head = _SECOND_TEXTS.get(second)
    if head is None:
        if len(_SECOND_TEXTS) >= 256:
            _SECOND_TEXTS.clear()
        head = _SECOND_TEXTS[second] = (_EPOCH_NAIVE + _timedelta(seconds=second)).isoformat(" ") + ".%06d"
    return head % micro


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
    if (t is str and len(value) <= max_chars + MARK_SLACK and '"' not in value and "\\" not in value
            and value.isprintable()):
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


def _plain(value: Any, limit: int) -> bool:
    """True for a short str without NUL characters, stored as it is (the common case, checked inline below)."""
    return type(value) is str and len(value) <= limit and "\x00" not in value


def tags_json(tags: Any) -> str | None:
    """A trace's tags as the JSON list text stored in ``traces.tags`` and ``spans.trace_tags`` (None when empty).

    >>> tags_json(["prod", 7])
    '["prod","7"]'
    """
    return orjson.dumps([str(t) for t in tags]).decode() if tags else None


def _note_tags(trace: TraceState, tags: Any) -> None:
    """Remember the tags a trace's span rows are written with; tags that differ from those of rows already written
    mark the trace ``retagged`` so the writer rewrites them (see ``retagged_traces``)."""
    text = tags_json(tags)
    if trace.tags_written is not _TAGS_UNWRITTEN and text != trace.tags_json:
        trace.retagged = True
    trace.tags_written = tags
    trace.tags_json = text


def retagged_traces(records: Iterable[SpanRecord]) -> list[tuple[str | None, str]]:
    """(tags JSON, trace id) of each trace in the batch whose tags changed after some of its spans were written.

    The writer rewrites ``spans.trace_tags`` of those traces, so a tag set late (after a child span was flushed,
    or from a task that outlived its trace) still reaches every span row; the trace row gets it from
    ``trace_tuples``.
    """
    found: dict[int, tuple[str | None, str]] = {}
    for rec in records:
        trace = rec.trace
        if trace.retagged:
            found[trace.trace_id] = (trace.tags_json, format_trace_id(trace.trace_id))
    return list(found.values())


def span_tuple(rec: SpanRecord, max_chars: int, redact_secrets: bool, fmt_time: TimeFormat) -> tuple[Any, ...]:
    """The ``spans`` row of one finished record, in SPAN_COLUMNS order.

    Runs once per span on the writer thread, so fields that are usually None or plain skip the helper calls, and
    the three JSON fields get one secret check between them.
    """
    perf_start = rec.perf_start
    elapsed_ns = rec.perf_end - perf_start
    wall = rec.wall_start_ns  # set by callers that know the exact start (e.g. the MetricsCollector)
    start_us = (wall if wall is not None else perf_to_wall_ns(perf_start)) // 1000
    prompt, completion, total = rec.prompt_tokens, rec.completion_tokens, rec.total_tokens
    if prompt is not None or completion is not None or total is not None:
        prompt = _int(prompt, "prompt_tokens")
        completion = _int(completion, "completion_tokens")
        total = _int(total, "total_tokens")
        if total is None and (prompt is not None or completion is not None):
            total = (prompt or 0) + (completion or 0)
    name = rec.name
    if not name or not _plain(name, 512):
        name = _text(name, 512) or "unnamed"
    error_type, error_message, model, provider = rec.error_type, rec.error_message, rec.model_name, rec.provider
    cost, ttft, metadata, source = rec.cost_usd, rec.time_to_first_token_ms, rec.metadata, rec.source
    parent = rec.parent_id
    trace = rec.trace
    tags = trace.tags
    if tags is not trace.tags_written:
        _note_tags(trace, tags)
    input_text = json_text(rec.input, max_chars, False)
    output_text = json_text(rec.output, max_chars, False)
    metadata_json = None if metadata is None else metadata_text(metadata, max_chars, False)
    # One check over the three texts (a None reads 'None', which holds no secret pattern's literal).
    if redact_secrets and may_hold_secret(f"{input_text}{output_text}{metadata_json}"):
        input_text, output_text, metadata_json = (None if t is None else redact(t)
                                                  for t in (input_text, output_text, metadata_json))
    return (
        "%016x" % rec.span_id,
        "%032x" % trace.trace_id,
        None if parent is None else "%016x" % parent,
        name,
        rec.kind,
        fmt_time(start_us),
        fmt_time(start_us + elapsed_ns // 1000),
        elapsed_ns / 1e6,
        "error" if rec.status == "error" else "ok",
        None if error_type is None else _text(error_type, 256),
        None if error_message is None else _text(truncate_text(str(error_message), max_chars),
                                                 max_chars + MARK_SLACK),
        None if rec.error_traceback is None else _text(rec.error_traceback, max_chars + MARK_SLACK),
        input_text,
        output_text,
        metadata_json,
        model if model is None or _plain(model, 256) else _text(model, 256),
        provider if provider is None or _plain(provider, 64) else _text(provider, 64),
        prompt,
        completion,
        total,
        None if cost is None else _float(cost, "cost_usd"),
        None if ttft is None else _float(ttft, "time_to_first_token_ms"),
        _text(source, 32) or "observe",
        trace.tags_json,
    )


_I = {name: i for i, name in enumerate(SPAN_COLUMNS)}
_TRACE_I = {name: i for i, name in enumerate(TRACE_COLUMNS)}


_TRACE_ID, _NAME, _START, _END, _DURATION, _STATUS, _INPUT, _OUTPUT, _KIND = (
    _I[c] for c in ("trace_id", "name", "start_time", "end_time", "duration_ms", "status", "input", "output", "kind"))


_SUMMED = tuple((_TRACE_I[c], _I[c]) for c in ("prompt_tokens", "completion_tokens", "total_tokens", "cost_usd"))


def trace_tuples(records: Sequence[SpanRecord], spans: Sequence[tuple[Any, ...]], max_chars: int,
                 redact_secrets: bool) -> list[tuple[Any, ...]]:
    """One ``traces`` row per trace in the batch: totals over the batch's spans, attributes from the root span,
    tags from the trace as its spans were written (so every batch carries them, and a retag reaches the trace row).

    The writer upserts these, adding totals to what earlier batches stored, so late spans still count.
    """
    out: dict[str, list[Any]] = {}
    for rec, row in yielding(zip(records, spans)):
        trace_id = row[_TRACE_ID]
        agg = out.get(trace_id)
        if agg is None:
            agg = out[trace_id] = [trace_id, None, None, None, None, None, None, None, rec.trace.tags_json, None,
                                   None, None, 0, 0, None, None, None, None]
        agg[12] += 1
        if row[_STATUS] == "error":
            agg[13] += 1
        if row[_KIND] in COUNTED_KINDS:
            for total_at, row_at in _SUMMED:  # None + None stays None: a trace with no reported usage has none
                value = row[row_at]
                if value is not None:
                    so_far = agg[total_at]
                    agg[total_at] = value if so_far is None else so_far + value
        if rec.is_root:
            trace = rec.trace
            name, user_id, session_id = trace.name, trace.user_id, trace.session_id
            metadata, trace_input, trace_output = trace.metadata, trace.input, trace.output
            agg[1] = _text(name, 512) if name else row[_NAME]
            agg[2], agg[3], agg[4], agg[5] = row[_START], row[_END], row[_DURATION], row[_STATUS]
            agg[6] = None if user_id is None else _text(user_id, 256)
            agg[7] = None if session_id is None else _text(session_id, 256)
            agg[9] = None if metadata is None else metadata_text(metadata, max_chars, redact_secrets)
            agg[10] = row[_INPUT] if trace_input is None else json_text(trace_input, max_chars, redact_secrets)
            agg[11] = row[_OUTPUT] if trace_output is None else json_text(trace_output, max_chars, redact_secrets)
    return [tuple(v) for v in out.values()]


def _plain_trace(trace: TraceState) -> bool:
    """True when nothing was set on the trace itself (name, user, session, tags, metadata, input, output)."""
    return (trace.name is None and trace.user_id is None and trace.session_id is None and trace.tags_json is None
            and trace.metadata is None and trace.input is None and trace.output is None)


def split_lone_roots(records: Sequence[SpanRecord], spans: Sequence[tuple[Any, ...]]
                     ) -> tuple[list[SpanRecord], list[tuple[Any, ...]], list[tuple[str]]]:
    """Set apart the spans that are a whole plain trace in this batch (a root, alone, nothing set on its trace):
    their ``traces`` row is the span row's own values, so the database copies it (``INSERT ... SELECT``) from the
    span id alone. Returns the other records and rows (for ``trace_tuples``) and those span ids as 1-tuples.
    """
    alone = Counter(row[_TRACE_ID] for row in spans)
    records_left: list[SpanRecord] = []
    spans_left: list[tuple[Any, ...]] = []
    copies: list[tuple[str]] = []
    for rec, row in zip(records, spans):
        if rec.is_root and alone[row[_TRACE_ID]] == 1 and _plain_trace(rec.trace):
            copies.append((row[0],))
        else:
            records_left.append(rec)
            spans_left.append(row)
    return records_left, spans_left, copies


def as_dicts(columns: Sequence[str], rows: Iterable[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Rows as dicts keyed by column name, with JSON columns decoded (for in-memory exporters and tests)."""
    out = []
    for row in rows:
        item = dict(zip(columns, row))
        for key in (JSON_COLUMNS | JSON_TEXT_COLUMNS) & item.keys():
            if item[key] is not None:
                item[key] = orjson.loads(item[key])
        out.append(item)
    return out
