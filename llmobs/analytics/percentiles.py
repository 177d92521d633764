"""Percentiles by one definition on every engine: linear interpolation between the closest ranks.

For n sorted values v[0] <= ... <= v[n-1] and 0 <= q <= 1, let h = (n - 1) * q; the percentile is
v[floor(h)] + (h - floor(h)) * (v[floor(h) + 1] - v[floor(h)]). This is PostgreSQL's ``percentile_cont`` and
numpy's default ("linear"), so PostgreSQL computes it natively. Where an index on (kind, value) exists, both
engines read the two values at ranks floor(h) and floor(h)+1 with ORDER BY ... LIMIT 2 OFFSET k, walking the index
from whichever end is nearer; SQLite without one fetches the value column and sorts it (or, for percentiles near
either end, lets ORDER BY ... LIMIT keep a small heap). Small sets are fetched and sorted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Column, func, select
from sqlalchemy.dialects.postgresql import array
from sqlalchemy.engine import Connection

from llmobs.analytics.filters import SPANS, Filters, checked_by_index, span_conditions
from llmobs.analytics.sql import bucket_expr, bucket_key, driver_rows, has_index
from llmobs.analytics.stats import value_counts_by_model

# Value sets up to this size are fetched and sorted in Python on SQLite (one query for all percentiles).
SQLITE_FETCH_MAX = 50_000
SQLITE_HEAP_SHARE = 0.1
METRIC_COLUMNS: dict[str, str] = {
    "latency": "duration_ms", "duration_ms": "duration_ms", "response_time": "duration_ms",
    "ttft": "time_to_first_token_ms", "time_to_first_token_ms": "time_to_first_token_ms",
    "tokens": "total_tokens", "total_tokens": "total_tokens", "prompt_tokens": "prompt_tokens",
    "completion_tokens": "completion_tokens", "cost": "cost_usd", "cost_usd": "cost_usd",
}


def column_for(metric: str) -> Column[Any]:
    """The spans column a percentile metric reads; ValueError listing the allowed names otherwise."""
    name = METRIC_COLUMNS.get(metric)
    if name is None:
        raise ValueError(f"llmobs.analytics: unknown percentile metric {metric!r}; allowed: "
                         + ", ".join(sorted(METRIC_COLUMNS)))
    return SPANS.c[name]


def check_q(q: float) -> float:
    """Validate a quantile in [0, 1]."""
    if isinstance(q, bool) or not isinstance(q, (int, float)) or not 0 <= q <= 1:
        raise ValueError(f"llmobs.analytics: q={q!r} must be a number between 0 and 1 (0.95 for p95)")
    return float(q)


def interpolate(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile of already sorted ``values`` by linear interpolation (None when empty).

    >>> interpolate([10.0, 20.0, 30.0, 40.0], 0.5)
    25.0
    """
    n = len(values)
    if n == 0:
        return None
    h = q * (n - 1)
    lo = math.floor(h)
    first = float(values[lo])
    second = float(values[lo + 1]) if lo + 1 < n else first
    return first + (second - first) * (h - lo)


def percentiles(conn: Connection, f: Filters, column: Column[Any], qs: Sequence[float],
                n: int | None = None) -> dict[float, float | None]:
    """The ``qs`` percentiles of ``column`` over the spans matching ``f`` (NULLs ignored).

    ``n``, the number of non-NULL values, saves a count query when the caller already knows it.
    """
    dialect = conn.dialect.name
    conds = [*span_conditions(f, dialect), column.is_not(None)]
    if not qs:
        return {}
    indexed = f.kind is not None and checked_by_index(f) and has_index(conn, ("kind", column.name))
    if dialect == "postgresql" and not indexed:
        row = conn.execute(select(func.percentile_cont(array([float(q) for q in qs])).within_group(column))
                           .where(*conds)).scalar()
        return {q: None if row is None or v is None else float(v) for q, v in zip(qs, row or [None] * len(qs))}
    # Without an index, ORDER BY ... LIMIT k keeps a heap of k rows: cheap only near either end of the order.
    near_ends = all(min(q, 1 - q) <= SQLITE_HEAP_SHARE for q in qs)
    if not (indexed or near_ends):
        return _fetch_sorted(conn, span_conditions(f, dialect), column, qs)
    if n is None:
        n = int(conn.execute(select(func.count()).where(*conds)).scalar_one())
    if n <= SQLITE_FETCH_MAX:
        return _fetch_sorted(conn, span_conditions(f, dialect), column, qs)
    return {q: _by_offset(conn, conds, column, q, n) for q in qs}


def _fetch_sorted(conn: Connection, conds: list[Any], column: Column[Any],
                  qs: Sequence[float]) -> dict[float, float | None]:
    """Fetch the one value column and sort it in Python. NULLs are dropped here rather than in SQL, so that the
    planner keeps the time-range index instead of walking an index on the value column."""
    values = sorted(v for (v,) in driver_rows(conn, select(column).where(*conds)) if v is not None)
    return {q: interpolate(values, q) for q in qs}


def _by_offset(conn: Connection, conds: list[Any], column: Column[Any], q: float, n: int) -> float | None:
    """Read the values at ranks floor(h) and floor(h)+1 with LIMIT/OFFSET from the nearer end, then interpolate."""
    h = q * (n - 1)
    lo = math.floor(h)
    hi = min(lo + 1, n - 1)
    if lo < (n - 1) / 2:
        rows = [v for (v,) in conn.execute(select(column).where(*conds).order_by(column.asc())
                                           .limit(hi - lo + 1).offset(lo))]
    else:
        rows = [v for (v,) in conn.execute(select(column).where(*conds).order_by(column.desc())
                                           .limit(hi - lo + 1).offset(n - 1 - hi))][::-1]
    if not rows:  # the data changed between the count and this read
        return None
    return interpolate(rows, h - lo) if len(rows) == 2 else float(rows[0])


def percentiles_by_model(conn: Connection, f: Filters, column: Column[Any], qs: Sequence[float],
                         counts: dict[str | None, int] | None = None) -> dict[str | None, dict[float, float | None]]:
    """Percentiles per model name (None: spans without a model), for models with at least one value.

    ``counts`` (non-NULL values per model, when the caller has them) saves SQLite a counting pass.
    """
    if conn.dialect.name == "postgresql":
        rows = select(SPANS.c.model_name, column).where(*span_conditions(f, "postgresql"), column.is_not(None))
        if f.tag is not None:
            # The tag is read from each row: where a team added the optional (kind, model, value) index, PostgreSQL
            # walked it to skip the sort and fetched every row at random (1M spans: 5.4 s); the fence makes it scan
            # in order and sort (2.3 s). Without that index the fence changes nothing.
            rows = rows.offset(0)
        inner = rows.subquery()
        stmt = (select(inner.c.model_name, func.percentile_cont(array([float(q) for q in qs]))
                       .within_group(inner.c[column.name])).group_by(inner.c.model_name))
        return {m: dict(zip(qs, (float(v) for v in row))) for m, row in conn.execute(stmt)}
    if not (f.kind is not None and checked_by_index(f) and has_index(conn, ("kind", "model_name", column.name))):
        return _fetch_sorted_by_model(conn, f, column, qs)
    out: dict[str | None, dict[float, float | None]] = {}
    for model, n in (value_counts_by_model(conn, f, column) if counts is None else counts).items():
        if model is None:
            out[None] = _fetch_sorted(conn, [*span_conditions(f, "sqlite"), SPANS.c.model_name.is_(None)], column, qs)
        else:
            out[model] = percentiles(conn, f.replace(model=model), column, qs, n)
    return out


def percentiles_by_bucket(conn: Connection, f: Filters, column: Column[Any], qs: Sequence[float],
                          ranges: dict[int, tuple[Any, Any]], step: int) -> dict[int, dict[float, float | None]]:
    """Percentiles per time bucket keyed by bucket start (epoch seconds); ``ranges`` maps key -> [lo, hi)."""
    if conn.dialect.name == "postgresql":
        key = bucket_expr("postgresql", step).label("bucket")
        stmt = (select(key, func.percentile_cont(array([float(q) for q in qs])).within_group(column))
                .where(*span_conditions(f, "postgresql"), column.is_not(None)).group_by(key))
        return {bucket_key(k): dict(zip(qs, (float(v) for v in row))) for k, row in conn.execute(stmt)}
    # One bucket holds a slice of the range: fetching and sorting its values beats counting first.
    out: dict[int, dict[float, float | None]] = {}
    for key, (lo, hi) in ranges.items():
        values = _fetch_sorted(conn, span_conditions(f.replace(start=lo, end=hi), "sqlite"), column, qs)
        if any(v is not None for v in values.values()):
            out[key] = values
    return out


def _fetch_sorted_by_model(conn: Connection, f: Filters, column: Column[Any],
                           qs: Sequence[float]) -> dict[str | None, dict[float, float | None]]:
    """One fetch of (model, value) over the range, grouped and sorted in Python: without a per-model index on the
    value this beats one scan per model."""
    groups: dict[str | None, list[float]] = {}
    for model, value in driver_rows(conn, select(SPANS.c.model_name, column).where(*span_conditions(f, "sqlite"))):
        if value is not None:
            groups.setdefault(model, []).append(value)
    out: dict[str | None, dict[float, float | None]] = {}
    for model, values in groups.items():
        values.sort()
        out[model] = {q: interpolate(values, q) for q in qs}
    return out
