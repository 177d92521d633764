"""Seeded databases: insert known spans and traces directly, in bulk, with SQLAlchemy Core (or COPY on PostgreSQL).

Tests that need data with hand-computable figures, and the query benchmark, build rows here instead of running
instrumented code. Rows bypass the capture pipeline but go through the same tables and column types.

Usage::

    from tests.support.seed import gen, seed

    rows = [gen("2024-01-01T00:00:00", 120.0, model="gpt-4o", user_id="u1"),
            gen("2024-01-01T00:01:00", 80.0, model="gpt-4o", status="error", error_type="RateLimitError")]
    seed(store.engine(), rows)          # spans + one traces row per trace_id (user_id/session_id/tags go there)

    seed(engine, generate_spans(1_000_000, start, days=30))   # large, streamed in chunks (benchmarks)
    seed_evaluations(engine, [evaluation(rows[0], "quality", 0.8)])

``gen`` fills every column with a sensible default; each keyword overrides one column. The trace-level keys
``user_id``, ``session_id`` and ``tags`` are taken out of the span and stored on the trace row.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import random
from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import Engine

from llmobs.store.db import ensure_schema
from llmobs.store.models import Evaluation, Span, Trace
from llmobs.store.rows import tags_json

UTC = dt.timezone.utc
TRACE_KEYS = ("user_id", "session_id", "tags")
SPAN_COLUMNS = tuple(c.name for c in Span.__table__.columns)
TRACE_COLUMNS = tuple(c.name for c in Trace.__table__.columns)
EVALUATION_COLUMNS = tuple(c.name for c in Evaluation.__table__.columns)
# Indexes proposed for llmobs/store/models.py (see docs/monitoring.md); tests check results do not change with
# them and the query benchmark measures both schemas.
PROPOSED_INDEXES = (
    "CREATE INDEX ix_spans_kind_start_cover ON spans "
    "(kind, start_time, model_name, status, duration_ms, total_tokens, cost_usd, source)",
    "CREATE INDEX ix_spans_kind_model_start_cover ON spans "
    "(kind, model_name, start_time, status, duration_ms, total_tokens, cost_usd, source)",
    "CREATE INDEX ix_spans_kind_duration ON spans (kind, duration_ms, start_time)",
    "CREATE INDEX ix_spans_kind_model_duration ON spans (kind, model_name, duration_ms, start_time)",
)
_ids = itertools.count(1)


def as_utc(value: str | dt.datetime) -> dt.datetime:
    """An aware UTC datetime from an ISO string or datetime (naive means UTC)."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def gen(start: str | dt.datetime, duration_ms: float | None = 100.0, *, model: str | None = "gpt-4o",
        kind: str = "generation", status: str = "ok", trace_id: str | None = None, **columns: Any) -> dict[str, Any]:
    """One span row (plus optional trace keys) with every column filled; keywords override columns.

    >>> gen("2024-01-01T00:00:00", 250.0, model="gpt-4o-mini", total_tokens=300, cost_usd=0.01)["kind"]
    'generation'
    """
    n = next(_ids)
    begin = as_utc(start)
    row: dict[str, Any] = {
        "id": f"{n:016x}", "trace_id": trace_id or f"{n:032x}", "parent_id": None, "name": f"call-{n}",
        "kind": kind, "start_time": begin,
        "end_time": None if duration_ms is None else begin + dt.timedelta(milliseconds=duration_ms),
        "duration_ms": duration_ms, "status": status, "error_type": None, "error_message": None,
        "error_traceback": None, "input": None, "output": None, "metadata": None, "model_name": model,
        "provider": "openai", "prompt_tokens": None, "completion_tokens": None, "total_tokens": None,
        "cost_usd": None, "time_to_first_token_ms": None, "source": "seed",
    }
    unknown = set(columns) - set(SPAN_COLUMNS) - set(TRACE_KEYS)
    if unknown:
        raise TypeError(f"gen() got unknown columns {sorted(unknown)}; spans columns are {SPAN_COLUMNS}")
    row.update(columns)
    return row


def trace_rows(spans: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One traces row per trace_id: earliest start, latest end, totals over generation/embedding spans, trace keys."""
    out: dict[str, dict[str, Any]] = {}
    for row in spans:
        t = out.get(row["trace_id"])
        if t is None:
            t = out[row["trace_id"]] = {c: None for c in TRACE_COLUMNS}
            t.update(id=row["trace_id"], name=row["name"], span_count=0, error_count=0, status="ok")
        t["span_count"] += 1
        if row["status"] == "error":
            t["error_count"] += 1
            t["status"] = "error"
        if t["start_time"] is None or row["start_time"] < t["start_time"]:
            t["start_time"] = row["start_time"]
        end = row["end_time"] or row["start_time"]
        if t["end_time"] is None or end > t["end_time"]:
            t["end_time"] = end
        t["duration_ms"] = (t["end_time"] - t["start_time"]).total_seconds() * 1000
        for key in TRACE_KEYS:
            if row.get(key) is not None:
                t[key] = row[key]
        if row["kind"] in ("generation", "embedding"):
            for key in ("prompt_tokens", "completion_tokens", "total_tokens", "cost_usd"):
                if row[key] is not None:
                    t[key] = (t[key] or 0) + row[key]
    return list(out.values())


def seed(engine: Engine, spans: Iterable[dict[str, Any]], *, chunk_size: int = 20_000) -> int:
    """Insert span rows and their trace rows (built by ``trace_rows``) in chunks; returns the number of spans.

    Chunks end only where the trace id changes, so a trace's consecutive spans share one traces row; spans of
    one trace must therefore be adjacent in ``spans`` (``generate_spans`` keeps them so).
    """
    ensure_schema(engine)
    total = 0
    for chunk in _trace_chunks(iter(spans), chunk_size):
        traces = trace_rows(chunk)
        tags = {t["id"]: tags_json(t["tags"]) for t in traces}  # each span repeats its trace's tags
        span_rows = [{**{k: v for k, v in r.items() if k not in TRACE_KEYS}, "trace_tags": tags[r["trace_id"]]}
                     for r in chunk]
        _insert(engine, Span.__table__, span_rows, SPAN_COLUMNS)
        _insert(engine, Trace.__table__, traces, TRACE_COLUMNS)
        total += len(chunk)
    return total


def evaluation(span: dict[str, Any], name: str, value: float | None, *, created_at: str | dt.datetime | None = None,
               **columns: Any) -> dict[str, Any]:
    """One evaluations row judging ``span`` (created at the span's start unless given); keywords override columns.

    >>> evaluation(gen("2024-01-01T00:00:00"), "quality", 0.8)["name"]
    'quality'
    """
    n = next(_ids)
    row: dict[str, Any] = {c: None for c in EVALUATION_COLUMNS}
    row.update(id=f"{n:032x}", span_id=span["id"], trace_id=span["trace_id"], name=name, value=value,
               source="custom", created_at=as_utc(created_at) if created_at is not None else span["start_time"])
    row.update(columns)
    return row


def seed_evaluations(engine: Engine, rows: Iterable[dict[str, Any]]) -> int:
    """Insert evaluations rows (Core executemany); returns how many."""
    ensure_schema(engine)
    rows = list(rows)
    if rows:
        _insert(engine, Evaluation.__table__, rows, EVALUATION_COLUMNS)
    return len(rows)


def alert_row(rule_id: str, fired_at: dt.datetime, resolved_at: dt.datetime | None = None, *,
              severity: str = "warning", name: str | None = None, **columns: Any) -> dict[str, Any]:
    """One ``alerts`` row of ``rule_id`` that fired at ``fired_at`` (still firing unless ``resolved_at``);
    keywords override columns.

    >>> alert_row("slow", as_utc("2024-01-01T00:00:00"), severity="critical")["state"]
    'firing'
    """
    n = next(_ids)
    row: dict[str, Any] = {
        "id": f"{n:032x}", "rule_id": rule_id, "open_rule_id": None if resolved_at else rule_id,
        "rule_name": name or rule_id, "severity": severity, "state": "resolved" if resolved_at else "firing",
        "seq": 2 if resolved_at else 1, "metric_name": "error_count", "condition": "gt", "threshold": 0.0,
        "value": 1.0, "peak_value": 3.0, "request_count": 10, "message": f"{rule_id} breached",
        "started_at": fired_at, "fired_at": fired_at, "resolved_at": resolved_at, "last_evaluated_at": fired_at,
        "notification_count": 1}
    row.update(columns)
    return row


def seed_alert(engine: Engine, rule_id: str, fired_at: dt.datetime, resolved_at: dt.datetime | None = None,
               **kwargs: Any) -> dict[str, Any]:
    """Store one ``alert_row`` through ``AlertStore.insert_alert`` (so a rule keeps at most one open alert)."""
    from llmobs.alerts.store import AlertStore

    row = alert_row(rule_id, fired_at, resolved_at, **kwargs)
    assert AlertStore(engine).insert_alert(row), f"rule {rule_id!r} already has an open alert"
    return row


def seed_alerts(engine: Engine, rows: Iterable[dict[str, Any]]) -> int:
    """Insert many ``alert_row`` rows at once (benchmarks); returns how many."""
    from llmobs.store.alert_models import AlertRow
    from llmobs.store.db import ensure_schema

    ensure_schema(engine)
    rows = list(rows)
    if rows:
        with engine.begin() as conn:
            conn.execute(insert(AlertRow.__table__), rows)
    return len(rows)


def add_proposed_indexes(engine: Engine) -> None:
    """Create PROPOSED_INDEXES (idempotent) and make analytics re-read the index list."""
    from sqlalchemy import text

    from llmobs.analytics.sql import forget_indexes

    with engine.begin() as conn:
        for ddl in PROPOSED_INDEXES:
            conn.execute(text(ddl.replace("CREATE INDEX", "CREATE INDEX IF NOT EXISTS")))
    forget_indexes(engine)


def _trace_chunks(rows: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    """Lists of about ``size`` rows, never splitting a run of rows with the same trace_id."""
    chunk: list[dict[str, Any]] = []
    for row in rows:
        if len(chunk) >= size and row["trace_id"] != chunk[-1]["trace_id"]:
            yield chunk
            chunk = []
        chunk.append(row)
    if chunk:
        yield chunk


def _insert(engine: Engine, table: Any, rows: list[dict[str, Any]], columns: tuple[str, ...]) -> None:
    if engine.dialect.name == "postgresql" and len(rows) > 1000:
        _copy(engine, table.name, rows, columns)
        return
    filled = [{c: r.get(c) for c in columns} for r in rows]
    with engine.begin() as conn:
        conn.execute(insert(table), filled)


def _copy(engine: Engine, table: str, rows: list[dict[str, Any]], columns: tuple[str, ...]) -> None:
    """PostgreSQL COPY FROM STDIN: the fast path for the benchmark's million rows."""
    json_columns = {"metadata", "tags"}  # JSON text; every other value COPY formats itself
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cur:  # type: ignore[attr-defined]
            quoted = ", ".join(f'"{c}"' for c in columns)
            with cur.copy(f"COPY {table} ({quoted}) FROM STDIN") as copy:
                for r in rows:
                    copy.write_row([json.dumps(r.get(c)) if c in json_columns and r.get(c) is not None
                                    else r.get(c) for c in columns])
        raw.commit()
    finally:
        raw.close()


# --- a large realistic dataset ----------------------------------------------------------------------------------

BENCH_MODELS: dict[str, tuple[str, float, float, float]] = {
    # model -> (provider, median latency ms, USD per 1k prompt tokens, USD per 1k completion tokens)
    "gpt-4o": ("openai", 1800.0, 0.0025, 0.01),
    "gpt-4o-mini": ("openai", 700.0, 0.00015, 0.0006),
    "claude-3-5-sonnet": ("anthropic", 2200.0, 0.003, 0.015),
    "claude-3-haiku": ("anthropic", 600.0, 0.00025, 0.00125),
    "llama-3-70b": ("groq", 400.0, 0.00059, 0.00079),
}
ERRORS = (("RateLimitError", "rate limit reached, retry after 20s"), ("APITimeoutError", "request timed out"),
          ("BadRequestError", "context length exceeded"))


def generate_spans(n: int, start: dt.datetime, days: float = 30.0, *, error_rate: float = 0.02,
                   models: dict[str, tuple[str, float, float, float]] | None = None, users: int = 1000,
                   payload_chars: int = 120, seed_value: int = 42) -> Iterator[dict[str, Any]]:
    """Yield ``n`` generation spans spread evenly over ``days`` from ``start`` (1-3 per trace, in time order).

    Latency is log-normal around each model's median, tokens uniform, cost from the model's price, ``error_rate``
    of calls fail with one of three error types; ``payload_chars`` of input and output text make rows realistic.
    """
    rng = random.Random(seed_value)
    models = models or BENCH_MODELS
    names = list(models)
    step_us = days * 86_400e6 / n
    filler = "x" * max(0, payload_chars - 40)
    i = 0
    while i < n:
        trace_id = f"{rng.getrandbits(128):032x}"
        user = rng.randrange(users)
        attrs = {"user_id": f"user-{user}", "session_id": f"user-{user}-s{rng.randrange(20)}", "tags": ["bench"]}
        for _ in range(min(rng.randint(1, 3), n - i)):
            model = names[rng.randrange(len(names))]
            provider, median, p_in, p_out = models[model]
            prompt, completion = rng.randint(50, 2000), rng.randint(20, 800)
            failed = rng.random() < error_rate
            error_type, message = ERRORS[rng.randrange(len(ERRORS))] if failed else (None, None)
            begin = start + dt.timedelta(microseconds=int(i * step_us))
            duration = round(median * rng.lognormvariate(0.0, 0.5), 3)
            yield {
                "id": f"{rng.getrandbits(64):016x}", "trace_id": trace_id, "parent_id": None, "name": "chat",
                "kind": "generation", "start_time": begin, "end_time": begin + dt.timedelta(milliseconds=duration),
                "duration_ms": duration,
                "status": "error" if failed else "ok", "error_type": error_type, "error_message": message,
                "error_traceback": None, "input": json.dumps({"question": f"q{i} {filler}"}),
                "output": None if failed else json.dumps(f"a{i} {filler}"), "metadata": None,
                "model_name": model, "provider": provider, "prompt_tokens": prompt,
                "completion_tokens": None if failed else completion,
                "total_tokens": prompt + (0 if failed else completion),
                "cost_usd": round(prompt * p_in / 1000 + (0 if failed else completion * p_out / 1000), 8),
                "time_to_first_token_ms": None, "source": "seed", **attrs,
            }
            i += 1
