"""Evaluation results in the ``evaluations`` table: written as scores through the pipeline, read through analytics.

Writes go through :func:`llmobs.scores.make_score` and the writer queue, one row per metric, so evaluating never
waits on the database. Reads (summary, resume, unscored spans) first flush this process's queued scores, then call
:mod:`llmobs.analytics.evaluations`, the query layer that gives the same numbers on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from llmobs import analytics
from llmobs import pipeline as _pipeline
from llmobs.analytics.evaluations import SUMMARY_METRICS
from llmobs.context import current_span
from llmobs.scores import ScoreRecord, make_score

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
    "stable_score_id",
    "unscored_spans",
    "SUMMARY_METRICS",
]

MAX_COMMENT_CHARS = 2000
_FLUSH_SECONDS = 30.0


def flush_pending() -> None:
    """Make scores queued by this process visible to the query that follows (read your own writes)."""
    import llmobs

    llmobs.flush(timeout=_FLUSH_SECONDS)


# --- writing ---------------------------------------------------------------------------------------------------
def result_records(result: EvaluationResult, *, row_key: str | None = None, once: bool = False) -> list[ScoreRecord]:
    """One ScoreRecord per metric of ``result`` (None values are kept with the label ``n/a``).

    Built outside any current span, so a score is linked only to the span and trace the result names. ``once``
    (with a span id) gives each row an id derived from the span, metric, source and evaluator version: the writer
    ignores ids already stored, so runs that overlap (the scheduler's, the CLI's, the dashboard's) score a span once.
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
            if once and result.span_id:
                record = records[-1]
                record.id = stable_score_id(record.span_id, metric, record.source, record.evaluator_version)
        return records
    finally:
        current_span.reset(token)


def stable_score_id(span_id: str | None, metric: str, source: str, version: str | None) -> str:
    """A 32-hex score id that is the same for the same span, metric, source and evaluator version.

    >>> stable_score_id("00000000000000aa", "quality", "heuristic", "heuristic-1")[:8]
    '96974bc1'
    """
    key = "\x1f".join((span_id or "", metric, source, version or ""))
    return hashlib.blake2b(key.encode(), digest_size=16).hexdigest()


def store_result(result: EvaluationResult, *, row_key: str | None = None, once: bool = False) -> list[str]:
    """Queue ``result``'s rows for the writer; returns their ids. Failures are logged, never raised.

    ``once``: see :func:`result_records` (a span's metrics are stored once per evaluator version).
    """
    try:
        records = result_records(result, row_key=row_key, once=once)
    except Exception:  # noqa: BLE001 - storing must not break the evaluation that produced the result
        log.exception("llmobs: could not build evaluation rows for %s", result.span_id or row_key or "a response")
        return []
    for record in records:
        _pipeline.submit(record)  # type: ignore[arg-type]
    return [r.id for r in records]


# --- reads (the SQL lives in llmobs.analytics.evaluations, the one query layer) --------------------------------
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
    """Aggregate stored scores (after this process's queued scores are written): ``count`` (scored responses),
    ``average_<metric>`` for the core metrics and, per metric, count / mean / p10 / min / max. ``start`` is
    inclusive, ``end`` exclusive; range and model are those of the judged span (the score's own for a score without
    one). See :func:`llmobs.analytics.evaluation_summary`.

    >>> get_evaluation_summary(model_name="gpt-4", task_type="qa")["average_quality"]   # doctest: +SKIP
    0.78
    """
    flush_pending()
    return analytics.evaluation_summary(model_name, task_type, start, end, metric, source=source,
                                        engine=database_url)


def stored_metrics(
    row_keys: Iterable[str], versions: Iterable[str], *, database_url: str | None = None
) -> set[tuple[str, str, str]]:
    """The (row_key, metric, evaluator_version) triples already stored for these batch rows (queued ones included)."""
    flush_pending()
    return analytics.stored_metrics(row_keys, versions, engine=database_url)


def stored_values(
    row_keys: Iterable[str], versions: Iterable[str], *, database_url: str | None = None
) -> dict[str, dict[str, float | None]]:
    """Latest stored value of each metric per batch row (for rows a resumed run skips)."""
    return analytics.stored_values(row_keys, versions, engine=database_url)


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
    """Finished spans of ``kind`` with an output and no score from ``evaluator_version``, oldest first; see
    :func:`llmobs.analytics.unscored_spans` for every filter.

    ``after`` is the (start_time, id) of the last span of the previous page (keyset pagination).
    """
    return analytics.unscored_spans(evaluator_version, analytics.Filters(start=start, end=end, kind=kind),
                                    limit=limit, after=after, engine=database_url)
