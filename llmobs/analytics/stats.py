"""Mergeable request aggregates (counts, sums, min/max) over spans: in total, per model, per time bucket.

Every figure is computed in SQL. Sums and counts are kept separately so per-model or per-bucket rows merge into
totals exactly, and averages are derived the same way on every engine. On SQLite, where GROUP BY sorts every
row, per-model and per-bucket figures are read with one indexed range query per group instead.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import bindparam, case, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from llmobs.analytics.filters import EVALUATIONS, SPANS, Filters, span_conditions, trace_driven
from llmobs.analytics.sql import bucket_expr, bucket_key, has_index
from llmobs.store.models import UTCDateTime

# Quality figures average the evaluations of this name (LLMEvaluator, llmobs.score, MetricsCollector write them).
QUALITY_EVALUATION = "quality"
QUALITY_SKEW = dt.timedelta(hours=1)
# More buckets than this are grouped in SQL on SQLite; fewer are read one indexed range at a time.
SQLITE_BUCKET_LOOP_MAX = 2000
MAX_MODELS = 10_000


@dataclass
class Agg:
    """Sums and counts over a set of spans; averages and rates are derived, so Aggs merge without loss."""

    requests: int = 0
    errors: int = 0
    duration_sum: float = 0.0
    duration_n: int = 0
    duration_min: float | None = None
    duration_max: float | None = None
    tokens_sum: int = 0
    tokens_n: int = 0
    cost_sum: float = 0.0
    cost_n: int = 0
    quality_sum: float = 0.0
    quality_n: int = 0

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> "Agg":
        """Build from a row of ``AGG_COLUMNS`` values."""
        n, err, dsum, dn, dmin, dmax, tsum, tn, csum, cn = row
        return cls(int(n or 0), int(err or 0), float(dsum or 0.0), int(dn or 0), _float(dmin), _float(dmax),
                   int(tsum or 0), int(tn or 0), float(csum or 0.0), int(cn or 0))

    def merge(self, other: "Agg") -> "Agg":
        """The aggregate over both sets of spans."""
        out = Agg()
        for f in fields(Agg):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if f.name == "duration_min":
                value = b if a is None else a if b is None else min(a, b)
            elif f.name == "duration_max":
                value = b if a is None else a if b is None else max(a, b)
            else:
                value = a + b
            setattr(out, f.name, value)
        return out

    def figures(self) -> dict[str, Any]:
        """The request figures: counts, rates (None when there are no requests), latency, tokens, cost, quality."""
        n = self.requests
        return {
            "total_requests": n,
            "successful_requests": n - self.errors,
            "failed_requests": self.errors,
            "success_rate": (n - self.errors) / n if n else None,
            "error_rate": self.errors / n if n else None,
            "avg_response_time": self.duration_sum / self.duration_n if self.duration_n else None,
            "min_response_time": self.duration_min,
            "max_response_time": self.duration_max,
            "total_tokens": self.tokens_sum,
            "avg_tokens": self.tokens_sum / self.tokens_n if self.tokens_n else None,
            "total_cost": self.cost_sum,
            "avg_cost": self.cost_sum / self.cost_n if self.cost_n else None,
            "cost_per_1k_tokens": self.cost_sum / self.tokens_sum * 1000 if self.tokens_sum and self.cost_n else None,
            "avg_quality_score": self.quality_sum / self.quality_n if self.quality_n else None,
        }


def merge_all(aggs: Iterable[Agg]) -> Agg:
    """The aggregate over every group."""
    total = Agg()
    for agg in aggs:
        total = total.merge(agg)
    return total


def agg_columns() -> list[ColumnElement[Any]]:
    """The SELECT list every aggregate query shares (order matches ``Agg.from_row``)."""
    s = SPANS.c
    return [func.count(), func.sum(case((s.status == "error", 1), else_=0)), func.sum(s.duration_ms),
            func.count(s.duration_ms), func.min(s.duration_ms), func.max(s.duration_ms), func.sum(s.total_tokens),
            func.count(s.total_tokens), func.sum(s.cost_usd), func.count(s.cost_usd)]


def by_model(conn: Connection, f: Filters) -> dict[str | None, Agg]:
    """Aggregates per model name (None for spans without one) without quality; models without spans omitted."""
    dialect = conn.dialect.name
    s = SPANS.c
    conds = span_conditions(f, dialect)
    out: dict[str | None, Agg] = {}
    if _loop_models(conn, f):
        stmt = select(*agg_columns()).where(*span_conditions(f.replace(model=None), dialect),
                                            s.model_name == bindparam("m"))
        for model in f.model or _models_present(conn, f.kind):
            agg = Agg.from_row(conn.execute(stmt, {"m": model}).one())
            if agg.requests:
                out[model] = agg
        if f.model is None:
            agg = Agg.from_row(conn.execute(select(*agg_columns()).where(*conds, s.model_name.is_(None))).one())
            if agg.requests:
                out[None] = agg
    else:
        for row in conn.execute(select(s.model_name, *agg_columns()).where(*conds).group_by(s.model_name)):
            out[row[0]] = Agg.from_row(row[1:])
    return out


def quality_by_model(conn: Connection, f: Filters) -> dict[str | None, tuple[float, int]]:
    """Quality (sum, count) per model name, from the quality evaluations of the matching spans."""
    return _quality(conn, f, SPANS.c.model_name, lambda k: k)


def value_counts_by_model(conn: Connection, f: Filters, column: Any) -> dict[str | None, int]:
    """Non-NULL values of ``column`` per model name, for models that have any (indexed loop on SQLite)."""
    dialect = conn.dialect.name
    s = SPANS.c
    if _loop_models(conn, f):
        stmt = select(func.count(column)).where(*span_conditions(f.replace(model=None), dialect),
                                                s.model_name == bindparam("m"))
        counts: dict[str | None, int] = {m: conn.execute(stmt, {"m": m}).scalar_one()
                                         for m in f.model or _models_present(conn, f.kind)}
        if f.model is None:
            counts[None] = conn.execute(select(func.count(column)).where(*span_conditions(f, dialect),
                                                                          s.model_name.is_(None))).scalar_one()
    else:
        counts = dict(conn.execute(select(s.model_name, func.count(column)).where(*span_conditions(f, dialect))
                                   .group_by(s.model_name)).all())
    return {m: int(n) for m, n in counts.items() if n}


def _loop_models(conn: Connection, f: Filters) -> bool:
    """True when SQLite reads per-model figures with one indexed query per model rather than a GROUP BY."""
    return (conn.dialect.name == "sqlite" and f.kind is not None and not trace_driven(f, "sqlite")
            and has_index(conn, ("kind", "model_name")))


def _models_present(conn: Connection, kind: str) -> list[str]:
    """Distinct model names of ``kind`` by a loose index scan: one index probe per model, not one row per span."""
    s = SPANS.c
    first = select(func.min(s.model_name)).where(s.kind == kind)
    nxt = select(func.min(s.model_name)).where(s.kind == kind, s.model_name > bindparam("prev"))
    models: list[str] = []
    current = conn.execute(first).scalar()
    while current is not None and len(models) < MAX_MODELS:
        models.append(current)
        current = conn.execute(nxt, {"prev": current}).scalar()
    return models


def by_bucket(conn: Connection, f: Filters, buckets: Sequence[dt.datetime], step: int) -> dict[int, Agg]:
    """Aggregates per time bucket (without quality), keyed by the bucket's start in epoch seconds; empty omitted.

    ``buckets`` are the epoch-aligned bucket starts covering ``[f.start, f.end)``.
    """
    dialect = conn.dialect.name
    out: dict[int, Agg] = {}
    if dialect == "sqlite" and len(buckets) <= SQLITE_BUCKET_LOOP_MAX and not trace_driven(f, dialect):
        s = SPANS.c
        stmt = select(*agg_columns()).where(*span_conditions(f, dialect, time=False),
                                            s.start_time >= bindparam("lo", type_=UTCDateTime()),
                                            s.start_time < bindparam("hi", type_=UTCDateTime()))
        for lo, hi in bucket_ranges(f, buckets, step):
            agg = Agg.from_row(conn.execute(stmt, {"lo": lo, "hi": hi}).one())
            if agg.requests:
                out[epoch(lo, step)] = agg
    else:
        key = bucket_expr(dialect, step).label("bucket")
        stmt = select(key, *agg_columns()).where(*span_conditions(f, dialect)).group_by(key)
        for row in conn.execute(stmt):
            out[bucket_key(row[0])] = Agg.from_row(row[1:])
    return out


def quality_by_bucket(conn: Connection, f: Filters, step: int) -> dict[int, tuple[float, int]]:
    """Quality (sum, count) per time bucket of the spans' start, from their quality evaluations."""
    return _quality(conn, f, bucket_expr(conn.dialect.name, step), bucket_key)


def bucket_ranges(f: Filters, buckets: Sequence[dt.datetime], step: int) -> list[tuple[dt.datetime, dt.datetime]]:
    """Each bucket's [lo, hi) clipped to the filter's range."""
    assert f.start is not None and f.end is not None
    width = dt.timedelta(seconds=step)
    return [(max(b, f.start), min(b + width, f.end)) for b in buckets]


def epoch(value: dt.datetime, step: int) -> int:
    """Epoch seconds of the start of the bucket holding ``value``."""
    seconds = int(value.timestamp())
    return seconds - seconds % step


def _quality(conn: Connection, f: Filters, key: ColumnElement[Any],
             as_key: Callable[[Any], Any]) -> dict[Any, tuple[float, int]]:
    """Sum and count of the ``quality`` evaluations of the matching spans, per group of ``key`` (a spans expression).

    Driven by the evaluations index (name, created_at): a score is not created before its span started, so
    scores created before the range (less a margin for clock skew) are skipped without joining; each remaining
    score reaches its span by primary key (on SQLite, walking the spans of a model instead and scanning the quality
    scores for each took minutes at 1M spans).
    """
    dialect = conn.dialect.name
    e = EVALUATIONS.c
    label = key.label("k")
    conds = [e.name == QUALITY_EVALUATION, e.value.is_not(None)]
    if f.start is not None:
        conds.append(e.created_at >= f.start - QUALITY_SKEW)
    stmt = (select(label, func.sum(e.value), func.count(e.value))
            .select_from(EVALUATIONS.join(SPANS, SPANS.c.id == e.span_id))
            .where(*conds, *span_conditions(f, dialect, unindexed=True)).group_by(label))
    return {as_key(k): (float(qsum or 0.0), int(qn or 0)) for k, qsum, qn in conn.execute(stmt)}


def with_quality(aggs: dict[Any, Agg], quality: dict[Any, tuple[float, int]]) -> dict[Any, Agg]:
    """Fold quality (sum, count) per group into the aggregates (in place) and return them."""
    for key, (qsum, qn) in quality.items():
        agg = aggs.setdefault(key, Agg())
        agg.quality_sum += qsum
        agg.quality_n += qn
    return aggs


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
