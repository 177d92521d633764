"""Evaluation results in the ``evaluations`` table: written as scores through the pipeline, summarised in SQL.

Writes go through :func:`llmobs.scores.make_score` and the writer queue, one row per metric, so evaluating never
waits on the database. Reads (summary, resume, unscored spans) are SQLAlchemy Core queries that give the same
numbers on SQLite and PostgreSQL; the 10th percentile is the nearest-rank one (the value at rank ceil(n/10)),
computed with a window function and integer arithmetic on both engines.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.engine import Engine

from llmobs import pipeline as _pipeline
from llmobs.context import current_span
from llmobs.scores import ScoreRecord, make_score
from llmobs.store.db import ensure_schema, get_engine
from llmobs.store.models import Evaluation, Span

if TYPE_CHECKING:
    from .evaluator import EvaluationResult

log = logging.getLogger("llmobs")

__all__ = [
    "flush_pending",
    "get_evaluation_summary",
    "result_records",
    "store_result",
    "stored_metrics",
    "stored_values",
    "unscored_spans",
    "SUMMARY_METRICS",
]

SUMMARY_METRICS = ("quality", "relevance", "coherence", "accuracy", "toxicity", "bias", "hallucination")
MAX_COMMENT_CHARS = 2000
_CHUNK = 500
_FLUSH_SECONDS = 30.0


def _table() -> Any:
    return Evaluation.__table__


def _engine(database_url: str | None = None) -> Engine:
    engine = get_engine(database_url)
    ensure_schema(engine)
    return engine


def flush_pending() -> None:
    """Make scores queued by this process visible to the query that follows (read your own writes)."""
    import llmobs

    llmobs.flush(timeout=_FLUSH_SECONDS)


# --- writing ---------------------------------------------------------------------------------------------------
def result_records(result: EvaluationResult, *, row_key: str | None = None) -> list[ScoreRecord]:
    """One ScoreRecord per metric of ``result`` (None values are kept with the label ``n/a``).

    Built outside any current span, so a score is linked only to the span and trace the result names.
    """
    token = current_span.set(None)
    try:
        records = []
        for metric, ms in result.metric_scores().items():
            meta: dict[str, Any] = {"backend": result.backend}
            if row_key is not None:
                meta["row_key"] = row_key
            if result.fallbacks.get(metric):
                meta["fallback"] = True
            records.append(
                make_score(
                    metric,
                    ms.value,
                    span_id=result.span_id,
                    trace_id=result.trace_id,
                    label=ms.label if ms.label is not None else ("n/a" if ms.value is None else None),
                    comment=(ms.explanation or "")[:MAX_COMMENT_CHARS],
                    source=result.sources.get(metric, result.backend),
                    evaluator_version=result.versions.get(metric, result.evaluator_version),
                    model_name=result.model_name,
                    task_type=result.task_type,
                    metadata=meta,
                )
            )
        return records
    finally:
        current_span.reset(token)


def store_result(result: EvaluationResult, *, row_key: str | None = None) -> list[str]:
    """Queue ``result``'s rows for the writer; returns their ids. Failures are logged, never raised."""
    try:
        records = result_records(result, row_key=row_key)
    except Exception:  # noqa: BLE001 - storing must not break the evaluation that produced the result
        log.exception("llmobs: could not build evaluation rows for %s", result.span_id or row_key or "a response")
        return []
    for record in records:
        _pipeline.submit(record)  # type: ignore[arg-type]
    return [r.id for r in records]


# --- summary ---------------------------------------------------------------------------------------------------
def _filters(
    model_name: str | None,
    task_type: str | None,
    start: dt.datetime | None,
    end: dt.datetime | None,
    metric: str | None,
    source: str | None,
) -> list[Any]:
    t = _table()
    conds: list[Any] = [t.c.value.isnot(None)]
    if model_name is not None:
        conds.append(t.c.model_name == model_name)
    if task_type is not None:
        conds.append(t.c.task_type == task_type)
    if start is not None:
        conds.append(t.c.created_at >= start)
    if end is not None:
        conds.append(t.c.created_at < end)
    if metric is not None:
        conds.append(t.c.name == metric)
    if source is not None:
        conds.append(t.c.source == source)
    return conds


def get_evaluation_summary(
    model_name: str | None = None,
    task_type: str | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    metric: str | None = None,
    *,
    source: str | None = None,
    database_url: str | None = None,
) -> dict[str, Any]:
    """Aggregate stored scores: ``count`` (scored responses), ``average_<metric>`` for the core metrics and, per
    metric, count / mean / p10 / min / max. ``start`` is inclusive, ``end`` exclusive (on ``created_at``).

    >>> get_evaluation_summary(model_name="gpt-4", task_type="qa")["average_quality"]   # doctest: +SKIP
    0.78
    """
    flush_pending()
    t = _table()
    ranked = (
        select(
            t.c.name.label("name"),
            t.c.value.label("value"),
            func.row_number().over(partition_by=t.c.name, order_by=[t.c.value, t.c.id]).label("rn"),
            func.count().over(partition_by=t.c.name).label("n"),
        )
        .where(*_filters(model_name, task_type, start, end, metric, source))
        .subquery()
    )
    nearest_rank = (ranked.c.n + 9) // 10  # ceil(n / 10) in integer arithmetic: the same on every engine
    query = (
        select(
            ranked.c.name,
            func.count(),
            func.avg(ranked.c.value),
            func.min(ranked.c.value),
            func.max(ranked.c.value),
            func.max(case((ranked.c.rn == nearest_rank, ranked.c.value), else_=None)),
        )
        .group_by(ranked.c.name)
        .order_by(ranked.c.name)
    )
    with _engine(database_url).connect() as conn:
        rows = conn.execute(query).all()
    metrics = {
        name: {
            "count": int(n),
            "mean": float(mean),
            "p10": None if p10 is None else float(p10),
            "min": float(low),
            "max": float(high),
        }
        for name, n, mean, low, high, p10 in rows
    }
    summary: dict[str, Any] = {
        "count": metrics.get("quality", {}).get("count", 0)
        if metric in (None, "quality")
        else metrics.get(metric, {}).get("count", 0),
        "filters": {
            "model_name": model_name,
            "task_type": task_type,
            "start": start,
            "end": end,
            "metric": metric,
            "source": source,
        },
        "metrics": metrics,
    }
    for name in SUMMARY_METRICS:
        if metric in (None, name):
            summary[f"average_{name}"] = metrics[name]["mean"] if name in metrics else None
    return summary


# --- resume and online evaluation ------------------------------------------------------------------------------
def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


def stored_metrics(
    row_keys: Iterable[str], versions: Iterable[str], *, database_url: str | None = None
) -> set[tuple[str, str, str]]:
    """The (row_key, metric, evaluator_version) triples already stored for these batch rows."""
    flush_pending()
    keys = sorted(set(row_keys))
    wanted = sorted(set(versions))
    if not keys or not wanted:
        return set()
    t = _table()
    row_key = t.c["metadata"]["row_key"].as_string()
    found: set[tuple[str, str, str]] = set()
    with _engine(database_url).connect() as conn:
        for chunk in _chunks(keys):
            query = select(row_key, t.c.name, t.c.evaluator_version).where(
                t.c.evaluator_version.in_(wanted), row_key.in_(list(chunk))
            )
            found.update((k, n, v) for k, n, v in conn.execute(query))
    return found


def stored_values(
    row_keys: Iterable[str], versions: Iterable[str], *, database_url: str | None = None
) -> dict[str, dict[str, float | None]]:
    """Latest stored value of each metric per batch row (for rows a resumed run skips)."""
    keys = sorted(set(row_keys))
    wanted = sorted(set(versions))
    if not keys or not wanted:
        return {}
    t = _table()
    row_key = t.c["metadata"]["row_key"].as_string()
    out: dict[str, dict[str, float | None]] = {}
    with _engine(database_url).connect() as conn:
        for chunk in _chunks(keys):
            query = (
                select(row_key, t.c.name, t.c.value)
                .where(t.c.evaluator_version.in_(wanted), row_key.in_(list(chunk)))
                .order_by(t.c.created_at)
            )
            for key, name, value in conn.execute(query):
                out.setdefault(key, {})[name] = value
    return out


def unscored_spans(
    evaluator_version: str,
    *,
    kind: str = "generation",
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    limit: int = 200,
    after: tuple[dt.datetime, str] | None = None,
    database_url: str | None = None,
) -> list[dict[str, Any]]:
    """Finished spans of ``kind`` with an output and no score from ``evaluator_version``, oldest first.

    ``after`` is the (start_time, id) of the last span of the previous page (keyset pagination).
    """
    s, e = Span.__table__, _table()
    scored = select(e.c.id).where(e.c.span_id == s.c.id, e.c.evaluator_version == evaluator_version).exists()
    conds: list[Any] = [s.c.kind == kind, s.c.status == "ok", s.c.output.isnot(None), ~scored]
    if start is not None:
        conds.append(s.c.start_time >= start)
    if end is not None:
        conds.append(s.c.start_time < end)
    if after is not None:
        conds.append(or_(s.c.start_time > after[0], and_(s.c.start_time == after[0], s.c.id > after[1])))
    query = (
        select(s.c.id, s.c.trace_id, s.c.name, s.c.input, s.c.output, s.c["metadata"], s.c.model_name, s.c.start_time)
        .where(*conds)
        .order_by(s.c.start_time, s.c.id)
        .limit(limit)
    )
    with _engine(database_url).connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(query)]
    for row in rows:
        for key in ("input", "output"):
            row[key] = _loads(row[key])
    return rows


def _loads(text: Any) -> Any:
    if text is None or not isinstance(text, (str, bytes)):
        return text
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text
