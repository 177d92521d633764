"""The analytics functions: overview, timeseries, model_comparison, error_breakdown, top_traces, percentile.

Each takes a time range and filters (a ``Filters`` object and/or keyword fields), reads the configured database
unless ``engine`` is given, and returns plain dicts and lists. Request figures cover spans of kind
``generation`` unless another kind is asked for.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine

from llmobs.analytics.filters import SPANS, TRACES, UTC, Filters, parse_duration, resolve, span_conditions, \
    trace_conditions
from llmobs.analytics.percentiles import check_q, column_for, percentiles, percentiles_by_bucket, \
    percentiles_by_model
from llmobs.analytics.parallel import run_all
from llmobs.analytics.stats import Agg, bucket_ranges, by_bucket, by_model, epoch, merge_all, quality_by_bucket, \
    quality_by_model, with_quality
from llmobs.store.db import ensure_schema, get_engine

RESPONSE_QS = (0.5, 0.95, 0.99)
MAX_BUCKETS = 10_000
DEFAULT_TIMESERIES_RANGE = dt.timedelta(hours=24)
TIMESERIES_METRICS = ("requests", "errors", "error_rate", "success_rate", "latency_avg", "latency_p50",
                      "latency_p95", "latency_p99", "tokens", "cost", "quality")
PERCENTILE_SERIES = {"latency_p50": 0.5, "latency_p95": 0.95, "latency_p99": 0.99}
TOP_TRACE_ORDERS = {"duration": "duration_ms", "cost": "cost_usd", "tokens": "total_tokens",
                    "errors": "error_count", "spans": "span_count"}
# Traces in the range above which SQLite counts distinct users by walking the (user_id, start_time) index.
_SQLITE_DISTINCT_INDEX_MIN = 50_000


@contextmanager
def connect(engine: Engine | str | None = None) -> Iterator[Connection]:
    """A connection to ``engine`` (an Engine, a URL, or None for the configured database) with the schema in place."""
    with resolve_engine(engine).connect() as conn:
        yield conn


def resolve_engine(engine: Engine | str | None = None) -> Engine:
    """The Engine for an Engine, a URL, or None (the configured database), with the schema in place."""
    if engine is None or isinstance(engine, str):
        engine = get_engine(engine)
    ensure_schema(engine)
    return engine


def overview(start: Any = None, end: Any = None, *, filters: Filters | None = None,
             engine: Engine | str | None = None, include_traces: bool = True, **fields: Any) -> dict[str, Any]:
    """Request figures over a range: counts, success/error rates, latency (avg, min, max, p50/p95/p99), tokens,
    cost, quality, per-model breakdown, and trace-level counts (traces, unique users and sessions).

    ``include_traces=False`` skips the trace-level counts (None then), which are the costly part with a model,
    status or source filter on a large SQLite database; alert rules do not need them.

    >>> overview("2024-01-01", "2024-02-01", model="gpt-4o")["success_rate"]   # doctest: +SKIP
    0.98
    """
    f = resolve(filters, start, end, **fields)
    extra = {"traces": lambda c: trace_counts(c, f)} if include_traces else {}
    done = _models_with(resolve_engine(engine), f, lambda c: percentiles(c, f, SPANS.c.duration_ms, RESPONSE_QS),
                        extra)
    models, pct = done["models"], done["pct"]
    traces = done.get("traces", {"traces": None, "unique_users": None, "unique_sessions": None})
    total = merge_all(models.values())
    out = {**total.figures(), **_response_percentiles(pct), **traces}
    out["models"] = [_model_row(m, agg, total) for m, agg in _by_requests(models)]
    out["range"] = _range(f)
    return out


def _models_with(engine: Engine, f: Filters, pct: Callable[[Connection], Any],
                 extra: dict[str, Callable[[Connection], Any]] | None = None) -> dict[str, Any]:
    """Run per-model aggregates, their quality, the response-time percentiles ``pct`` and ``extra`` tasks
    concurrently; returns {"models": {model: Agg with quality}, "pct": ..., **extra results}."""
    done = run_all(engine, {"models": lambda c: by_model(c, f), "quality": lambda c: quality_by_model(c, f),
                            "pct": pct, **(extra or {})})
    done["models"] = with_quality(done["models"], done.pop("quality"))
    return done


def model_comparison(start: Any = None, end: Any = None, *, filters: Filters | None = None,
                     engine: Engine | str | None = None, **fields: Any) -> list[dict[str, Any]]:
    """One row per model, busiest first: request figures, latency percentiles, and shares of requests and cost.

    >>> [m["model_name"] for m in model_comparison(since("7d"))]   # doctest: +SKIP
    ['gpt-4o-mini', 'gpt-4o']
    """
    f = resolve(filters, start, end, **fields)
    done = _models_with(resolve_engine(engine), f,
                        lambda c: percentiles_by_model(c, f, SPANS.c.duration_ms, RESPONSE_QS))
    models, pct = done["models"], done["pct"]
    total = merge_all(models.values())
    return [{**_model_row(m, agg, total), **_response_percentiles(pct.get(m, {}))} for m, agg in _by_requests(models)]


def timeseries(metric: str | Sequence[str] = "requests", start: Any = None, end: Any = None, *,
               bucket: str | dt.timedelta | int = "1h", filters: Filters | None = None,
               engine: Engine | str | None = None, **fields: Any) -> list[dict[str, Any]]:
    """One row per time bucket from start to end, empty buckets included: ``{"time": <bucket start>, metric: value}``.

    Metrics: requests, errors, error_rate, success_rate, latency_avg, latency_p50/p95/p99, tokens, cost, quality.
    Counts and sums of empty buckets are 0, rates/latency/quality None. Buckets are aligned to the epoch (whole
    minutes, hours, UTC days). Without a range, the last 24 hours.

    >>> timeseries(["requests", "latency_p95"], since("24h"), bucket="15m")[0].keys()   # doctest: +SKIP
    dict_keys(['time', 'requests', 'latency_p95'])
    """
    metrics = _metrics(metric)
    step = _step(bucket)
    f = resolve(filters, start, end, **fields)
    now = dt.datetime.now(UTC)
    f = f.replace(end=f.end or max(now, f.start or now))
    f = f.replace(start=f.start or f.end - DEFAULT_TIMESERIES_RANGE)
    buckets = _buckets(f, step)
    qs = tuple(q for name, q in PERCENTILE_SERIES.items() if name in metrics)
    ranges = dict(zip((epoch(b, step) for b in buckets), bucket_ranges(f, buckets, step)))
    tasks: dict[str, Callable[[Connection], Any]] = {}
    if buckets and set(metrics) - {"quality", *PERCENTILE_SERIES}:
        tasks["aggs"] = lambda c: by_bucket(c, f, buckets, step)
    if buckets and "quality" in metrics:
        tasks["quality"] = lambda c: quality_by_bucket(c, f, step)
    if buckets and qs:
        tasks["pcts"] = lambda c: percentiles_by_bucket(c, f, SPANS.c.duration_ms, qs, ranges, step)
    done = run_all(resolve_engine(engine), tasks)
    aggs: dict[int, Agg] = with_quality(done.get("aggs", {}), done.get("quality", {}))
    pcts: dict[int, dict[float, float | None]] = done.get("pcts", {})
    rows = []
    for b in buckets:
        key = epoch(b, step)
        values = _bucket_values(aggs.get(key, Agg()), pcts.get(key, {}))
        rows.append({"time": b, **{m: values[m] for m in metrics}})
    return rows


def percentile(metric: str = "latency", q: float | Sequence[float] = 0.95, start: Any = None, end: Any = None, *,
               filters: Filters | None = None, engine: Engine | str | None = None,
               **fields: Any) -> float | None | dict[float, float | None]:
    """The q-th percentile (0 <= q <= 1) of latency, ttft, tokens, prompt_tokens, completion_tokens or cost; None
    when no span matches. A list of q gives a dict {q: value}. Linear interpolation between closest ranks.

    >>> percentile("latency", 0.95, since("24h"), model="gpt-4o")   # doctest: +SKIP
    1843.2
    """
    column = column_for(metric)
    many = not isinstance(q, (int, float))
    qs = tuple(check_q(x) for x in (q if many else [q]))  # type: ignore[union-attr]
    f = resolve(filters, start, end, **fields)
    with connect(engine) as conn:
        values = percentiles(conn, f, column, qs)
    return values if many else values[qs[0]]


def error_breakdown(start: Any = None, end: Any = None, *, limit: int = 10, examples: int = 5,
                    filters: Filters | None = None, engine: Engine | str | None = None,
                    **fields: Any) -> dict[str, Any]:
    """Failed requests by error type, by model (with each model's error rate) and by message, plus recent examples.

    >>> error_breakdown(since("24h"))["by_type"][0]   # doctest: +SKIP
    {'error_type': 'RateLimitError', 'count': 12, 'share': 0.8, 'last_seen': datetime(...)}
    """
    _positive_int("limit", limit)
    _positive_int("examples", examples)
    f = resolve(filters, start, end, **fields)
    s = SPANS.c
    eng = resolve_engine(engine)
    errors_only = span_conditions(f.replace(status="error"), eng.dialect.name)
    done = run_all(eng, {
        "models": lambda c: by_model(c, f),
        "by_type": lambda c: c.execute(
            select(s.error_type, func.count(), func.max(s.start_time)).where(*errors_only)
            .group_by(s.error_type).order_by(func.count().desc(), s.error_type)).all(),
        "by_message": lambda c: c.execute(
            select(s.error_type, s.error_message, func.count(), func.max(s.start_time)).where(*errors_only)
            .group_by(s.error_type, s.error_message)
            .order_by(func.count().desc(), s.error_type, s.error_message).limit(limit)).all(),
        "recent": lambda c: c.execute(
            select(s.id, s.trace_id, s.name, s.start_time, s.model_name, s.error_type, s.error_message)
            .where(*errors_only).order_by(s.start_time.desc(), s.id).limit(examples)).mappings().all()})
    models, by_type, by_message, recent = done["models"], done["by_type"], done["by_message"], done["recent"]
    total = merge_all(models.values())
    n_errors = total.errors
    return {
        "total_requests": total.requests,
        "total_errors": n_errors,
        "error_rate": total.figures()["error_rate"],
        "by_type": [{"error_type": t, "count": c, "share": c / n_errors if n_errors else None, "last_seen": last}
                    for t, c, last in by_type],
        "by_model": [{"model_name": m, "requests": a.requests, "errors": a.errors,
                      "error_rate": a.errors / a.requests if a.requests else None}
                     for m, a in sorted(models.items(), key=lambda kv: (-kv[1].errors, kv[0] or "")) if a.errors],
        "by_message": [{"error_type": t, "error_message": msg, "count": c, "last_seen": last}
                       for t, msg, c, last in by_message],
        "recent": [{"span_id": r["id"], "trace_id": r["trace_id"], "name": r["name"], "start_time": r["start_time"],
                    "model_name": r["model_name"], "error_type": r["error_type"],
                    "error_message": r["error_message"]} for r in recent],
        "range": _range(f),
    }


def top_traces(start: Any = None, end: Any = None, *, by: str = "duration", limit: int = 10,
               filters: Filters | None = None, engine: Engine | str | None = None,
               **fields: Any) -> list[dict[str, Any]]:
    """The traces with the largest duration, cost, tokens, errors or spans (``by``) that started in the range.

    >>> top_traces(since("24h"), by="cost", limit=5)[0]["cost_usd"]   # doctest: +SKIP
    0.42
    """
    if by not in TOP_TRACE_ORDERS:
        raise ValueError(f"llmobs.analytics: by={by!r} is unknown; allowed: {', '.join(TOP_TRACE_ORDERS)}")
    _positive_int("limit", limit)
    f = resolve(filters, start, end, **fields)
    t = TRACES.c
    order = t[TOP_TRACE_ORDERS[by]]
    cols = [t.id, t.name, t.start_time, t.duration_ms, t.status, t.user_id, t.session_id, t.tags, t.span_count,
            t.error_count, t.total_tokens, t.cost_usd]
    with connect(engine) as conn:
        rows = conn.execute(select(*cols).where(*trace_conditions(f, conn.dialect.name), order.is_not(None))
                            .order_by(order.desc(), t.id).limit(limit)).mappings().all()
    return [{"trace_id": r["id"], **{k: r[k] for k in r.keys() if k != "id"}} for r in rows]


def trace_counts(conn: Connection, f: Filters) -> dict[str, int]:
    """Traces that started in the range (with the trace filters; holding a matching span when model, status or
    source is given), and the distinct users and sessions among them."""
    dialect = conn.dialect.name
    t = TRACES.c
    if f.has_span_filters:
        # One pass over the semi-join (it is the expensive part), counting all three at once.
        n, users, sessions = conn.execute(
            select(func.count(), func.count(t.user_id.distinct()), func.count(t.session_id.distinct()))
            .select_from(TRACES).where(*trace_conditions(f, dialect))).one()
        return {"traces": int(n), "unique_users": int(users), "unique_sessions": int(sessions)}
    n = int(conn.execute(select(func.count()).select_from(TRACES).where(*trace_conditions(f, dialect)))
            .scalar_one())
    if n == 0:
        return {"traces": 0, "unique_users": 0, "unique_sessions": 0}
    # On a large SQLite range, walking the (user_id, start_time) index in order beats sorting every row.
    walk = dialect == "sqlite" and n >= _SQLITE_DISTINCT_INDEX_MIN
    conds = trace_conditions(f, dialect, time_unindexed=walk)
    return {"traces": n, "unique_users": _distinct(conn, t.user_id, conds),
            "unique_sessions": _distinct(conn, t.session_id, conds)}


def _distinct(conn: Connection, column: Any, conds: list[Any]) -> int:
    """COUNT of distinct non-NULL values of a traces column."""
    inner = select(column).select_from(TRACES).where(*conds, column.is_not(None)).distinct()
    return int(conn.execute(select(func.count()).select_from(inner.subquery())).scalar_one())


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"llmobs.analytics: {name}={value!r} must be a positive integer")


def _metrics(metric: str | Sequence[str]) -> tuple[str, ...]:
    names = (metric,) if isinstance(metric, str) else tuple(metric)
    unknown = [m for m in names if m not in TIMESERIES_METRICS]
    if unknown or not names:
        raise ValueError(f"llmobs.analytics: unknown timeseries metric {', '.join(map(repr, unknown)) or '(none)'}; "
                         f"allowed: {', '.join(TIMESERIES_METRICS)}")
    return names


def _step(bucket: str | dt.timedelta | int) -> int:
    seconds = parse_duration(bucket, "bucket").total_seconds()
    if seconds < 1 or seconds != int(seconds):
        raise ValueError(f"llmobs.analytics: bucket={bucket!r} must be a whole number of seconds (e.g. '1m', '1h')")
    return int(seconds)


def _buckets(f: Filters, step: int) -> list[dt.datetime]:
    """Epoch-aligned bucket starts covering [f.start, f.end)."""
    assert f.start is not None and f.end is not None
    first = epoch(f.start, step)
    last = f.end.timestamp()
    count = 0 if f.end <= f.start else int((last - first + step - 1) // step)
    if count > MAX_BUCKETS:
        raise ValueError(f"llmobs.analytics: {count} buckets of {step}s between {f.start.isoformat()} and "
                         f"{f.end.isoformat()}; the most is {MAX_BUCKETS}: choose a larger bucket or a shorter range")
    return [dt.datetime.fromtimestamp(first + i * step, UTC) for i in range(count)]


def _bucket_values(agg: Agg, pct: dict[float, float | None]) -> dict[str, Any]:
    fig = agg.figures()
    return {"requests": agg.requests, "errors": agg.errors, "error_rate": fig["error_rate"],
            "success_rate": fig["success_rate"], "latency_avg": fig["avg_response_time"],
            "latency_p50": pct.get(0.5), "latency_p95": pct.get(0.95), "latency_p99": pct.get(0.99),
            "tokens": agg.tokens_sum, "cost": agg.cost_sum, "quality": fig["avg_quality_score"]}


def _response_percentiles(pct: dict[float, float | None]) -> dict[str, float | None]:
    return {"p50_response_time": pct.get(0.5), "p95_response_time": pct.get(0.95),
            "p99_response_time": pct.get(0.99)}


def _model_row(model: str | None, agg: Agg, total: Agg) -> dict[str, Any]:
    return {"model_name": model, **agg.figures(),
            "share_of_requests": agg.requests / total.requests if total.requests else None,
            "share_of_cost": agg.cost_sum / total.cost_sum if total.cost_sum else None}


def _by_requests(models: dict[str | None, Agg]) -> list[tuple[str | None, Agg]]:
    return sorted(models.items(), key=lambda kv: (-kv[1].requests, kv[0] or ""))


def _range(f: Filters) -> dict[str, dt.datetime | None]:
    return {"start": f.start, "end": f.end}

