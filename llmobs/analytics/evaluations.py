"""Queries over the ``evaluations`` table: summaries of stored scores, the look-ups batch and online evaluation
resume from, the alert engine's evaluation averages, and agreement between human and automatic scores.

Written once in SQLAlchemy Core and giving the same numbers on SQLite and PostgreSQL: the 10th percentile is the
nearest-rank one (the value at rank ceil(n/10)) and rank correlation uses average ranks for ties, both computed
with window functions and integer or double arithmetic that both engines share.

>>> from llmobs import analytics
>>> analytics.score_agreement(analytics.Filters(start=analytics.since("30d")))["paired_items"]   # doctest: +SKIP
42
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import orjson
from sqlalchemy import Float, and_, case, cast, func, or_, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.elements import ColumnElement

from llmobs.analytics.filters import EVALUATIONS, SPANS, Filters, parse_time, resolve, span_conditions
from llmobs.analytics.queries import connect
from llmobs.analytics.stats import QUALITY_SKEW

SUMMARY_METRICS = ("quality", "relevance", "coherence", "accuracy", "toxicity", "bias", "hallucination")
# What the dashboard's review tab stores (source "human"): a 1-5 rating and thumbs up (1) / down (0).
HUMAN_RATING = "human_rating"
HUMAN_THUMBS = "human_thumbs"
RATING_SCALE = (1.0, 5.0)
AUTOMATIC_SOURCES = ("heuristic", "embedding", "llm_judge")
# Built-in metrics where a lower score is better; agreement compares 1 - score with the human judgment.
LOWER_IS_BETTER = frozenset({"toxicity", "bias", "hallucination"})
PASS_THRESHOLD = 0.5
CORRELATION = "spearman"
_CHUNK = 500


# --- summaries -------------------------------------------------------------------------------------------------
def _summary_conditions(model_name: str | None, task_type: str | None, start: dt.datetime | None,
                        end: dt.datetime | None, metric: str | None, source: str | None) -> list[ColumnElement[bool]]:
    """The summary's WHERE: the score's own name, source and task type; the range and model of the span it judges
    (as on every other dashboard tab), or of the score itself when it judges no stored span."""
    e, s = EVALUATIONS.c, SPANS.c
    conds: list[ColumnElement[bool]] = [e.value.is_not(None)]
    for column, value in ((e.task_type, task_type), (e.name, metric), (e.source, source)):
        if value is not None:
            conds.append(column == value)
    if model_name is None and start is None and end is None:
        return conds
    if start is not None:
        # A score is not created before its span started: older scores are skipped before any span is read.
        conds.append(e.created_at >= start - QUALITY_SKEW)
    return [*conds, or_(and_(s.id.is_not(None), *_range_and_model(s.start_time, s.model_name, start, end, model_name)),
                        and_(s.id.is_(None), *_range_and_model(e.created_at, e.model_name, start, end, model_name)))]


def _range_and_model(time: Any, model: Any, start: dt.datetime | None, end: dt.datetime | None,
                     model_name: str | None) -> list[ColumnElement[bool]]:
    """``start <= time < end`` and ``model == model_name`` for the bounds that are given."""
    conds: list[ColumnElement[bool]] = []
    if start is not None:
        conds.append(time >= start)
    if end is not None:
        conds.append(time < end)
    if model_name is not None:
        conds.append(model == model_name)
    return conds


def evaluation_summary(model_name: str | None = None, task_type: str | None = None, start: dt.datetime | None = None,
                       end: dt.datetime | None = None, metric: str | None = None, *, source: str | None = None,
                       engine: Engine | str | None = None) -> dict[str, Any]:
    """Stored scores aggregated: ``count`` (scored responses), ``average_<metric>`` for the core metrics and, per
    metric, count / mean / p10 / min / max.

    ``start`` (inclusive), ``end`` (exclusive) and ``model_name`` apply to the span a score judges, as on every
    other dashboard figure: its start time and model. Only a score that judges no stored span (no ``span_id``, or a
    span that is not stored) is placed by its own ``created_at`` and ``model_name``. ``task_type``, ``metric``
    (the score's name) and ``source`` (heuristic, human, ...) are the score's own.

    >>> evaluation_summary(model_name="gpt-4", task_type="qa")["average_quality"]   # doctest: +SKIP
    0.78
    """
    start = None if start is None else parse_time(start, "start")
    end = None if end is None else parse_time(end, "end")
    e = EVALUATIONS.c
    by_span = model_name is not None or start is not None or end is not None
    ranked = (
        select(e.name.label("name"), e.value.label("value"),
               func.row_number().over(partition_by=e.name, order_by=[e.value, e.id]).label("rn"),
               func.count().over(partition_by=e.name).label("n"))
        .select_from(EVALUATIONS.outerjoin(SPANS, SPANS.c.id == e.span_id) if by_span else EVALUATIONS)
        .where(*_summary_conditions(model_name, task_type, start, end, metric, source))
        .subquery()
    )
    nearest_rank = (ranked.c.n + 9) // 10  # ceil(n / 10) in integer arithmetic: the same on every engine
    query = (
        select(ranked.c.name, func.count(), func.avg(ranked.c.value), func.min(ranked.c.value),
               func.max(ranked.c.value), func.max(case((ranked.c.rn == nearest_rank, ranked.c.value), else_=None)))
        .group_by(ranked.c.name)
        .order_by(ranked.c.name)
    )
    with connect(engine) as conn:
        rows = conn.execute(query).all()
    metrics = {name: {"count": int(n), "mean": float(mean), "p10": None if p10 is None else float(p10),
                      "min": float(low), "max": float(high)} for name, n, mean, low, high, p10 in rows}
    counted = "quality" if metric is None else metric
    summary: dict[str, Any] = {
        "count": metrics.get(counted, {}).get("count", 0),
        "filters": {"model_name": model_name, "task_type": task_type, "start": start, "end": end, "metric": metric,
                    "source": source},
        "metrics": metrics,
    }
    for name in SUMMARY_METRICS:
        if metric in (None, name):
            summary[f"average_{name}"] = metrics[name]["mean"] if name in metrics else None
    return summary


def evaluation_average(name: str, start: Any, end: Any, *, model_name: str | Sequence[str] | None = None,
                       engine: Engine | str | None = None) -> tuple[float | None, int]:
    """(average, count) of the values of evaluations named ``name`` created in [start, end), optionally for a model
    (the evaluation's own model_name, else that of the span it judges). The alert engine's evaluation metrics.

    >>> evaluation_average("quality", since("15m"), None, model_name="gpt-4o")   # doctest: +SKIP
    (0.81, 37)
    """
    e, s = EVALUATIONS.c, SPANS.c
    stmt = select(func.avg(e.value), func.count(e.value)).where(e.name == name, e.value.is_not(None))
    if start is not None:
        stmt = stmt.where(e.created_at >= start)
    if end is not None:
        stmt = stmt.where(e.created_at < end)
    if model_name is not None:
        models = [model_name] if isinstance(model_name, str) else list(model_name)
        stmt = stmt.select_from(EVALUATIONS.outerjoin(SPANS, s.id == e.span_id)).where(
            or_(e.model_name.in_(models), and_(e.model_name.is_(None), s.model_name.in_(models))))
    with connect(engine) as conn:
        avg, count = conn.execute(stmt).one()
    return (None if avg is None else float(avg)), int(count or 0)


# --- batch resume ----------------------------------------------------------------------------------------------
def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i: i + _CHUNK]


def _row_key() -> ColumnElement[Any]:
    return EVALUATIONS.c["metadata"]["row_key"].as_string()


def stored_metrics(row_keys: Iterable[str], versions: Iterable[str], *,
                   engine: Engine | str | None = None) -> set[tuple[str, str, str]]:
    """The (row_key, metric, evaluator_version) triples already stored for these batch rows.

    >>> stored_metrics(["id:q1"], ["heuristic-1"])   # doctest: +SKIP
    {('id:q1', 'quality', 'heuristic-1'), ...}
    """
    keys, wanted = sorted(set(row_keys)), sorted(set(versions))
    if not keys or not wanted:
        return set()
    e, row_key = EVALUATIONS.c, _row_key()
    found: set[tuple[str, str, str]] = set()
    with connect(engine) as conn:
        for chunk in _chunks(keys):
            query = select(row_key, e.name, e.evaluator_version).where(e.evaluator_version.in_(wanted),
                                                                         row_key.in_(list(chunk)))
            found.update((k, n, v) for k, n, v in conn.execute(query))
    return found


def stored_values(row_keys: Iterable[str], versions: Iterable[str], *,
                  engine: Engine | str | None = None) -> dict[str, dict[str, float | None]]:
    """The latest stored value of each metric per batch row (for rows a resumed run skips).

    >>> stored_values(["id:q1"], ["heuristic-1"])["id:q1"]["quality"]   # doctest: +SKIP
    0.82
    """
    keys, wanted = sorted(set(row_keys)), sorted(set(versions))
    if not keys or not wanted:
        return {}
    e, row_key = EVALUATIONS.c, _row_key()
    out: dict[str, dict[str, float | None]] = {}
    with connect(engine) as conn:
        for chunk in _chunks(keys):
            query = (select(row_key, e.name, e.value)
                     .where(e.evaluator_version.in_(wanted), row_key.in_(list(chunk)))
                     .order_by(e.created_at))
            for key, name, value in conn.execute(query):
                out.setdefault(key, {})[name] = value
    return out


# --- spans awaiting a score ------------------------------------------------------------------------------------
def _candidate_conditions(conn: Connection, f: Filters, span_ids: Sequence[str] | None) -> list[ColumnElement[bool]]:
    """Finished spans matching ``f`` (optionally one of ``span_ids``) that have an output to judge."""
    s = SPANS.c
    conds = [*span_conditions(f, conn.dialect.name), s.status == "ok", s.output.is_not(None)]
    if span_ids is not None:
        conds.append(s.id.in_(list(span_ids)))
    return conds


def _scored_by(evaluator_version: str) -> ColumnElement[bool]:
    e = EVALUATIONS.c
    return select(e.id).where(e.span_id == SPANS.c.id, e.evaluator_version == evaluator_version).exists()


def unscored_spans(evaluator_version: str, filters: Filters | None = None, *, span_ids: Sequence[str] | None = None,
                   limit: int = 200, after: tuple[dt.datetime, str] | None = None,
                   engine: Engine | str | None = None, **fields: Any) -> list[dict[str, Any]]:
    """Finished spans (status ok, with an output) matching the filters, optionally only ``span_ids``, that have no
    score from ``evaluator_version`` yet: oldest first, ``input``/``output`` parsed from JSON.

    ``after`` is the (start_time, id) of the last span of the previous page (keyset pagination). The filters'
    range applies to the spans' start time; ``kind`` defaults to ``generation``.

    >>> [s["id"] for s in unscored_spans("heuristic-1", Filters(start=since("24h"), model="gpt-4o"))]  # doctest: +SKIP
    """
    f = resolve(filters, **fields)
    s = SPANS.c
    with connect(engine) as conn:
        conds = [*_candidate_conditions(conn, f, span_ids), ~_scored_by(evaluator_version)]
        if after is not None:
            conds.append(or_(s.start_time > after[0], and_(s.start_time == after[0], s.id > after[1])))
        query = (select(s.id, s.trace_id, s.name, s.input, s.output, s["metadata"], s.model_name, s.start_time)
                 .where(*conds).order_by(s.start_time, s.id).limit(limit))
        rows = [dict(r._mapping) for r in conn.execute(query)]
    for row in rows:
        row["input"], row["output"] = _loads(row["input"]), _loads(row["output"])
    return rows


def evaluation_coverage(evaluator_version: str, filters: Filters | None = None, *,
                        span_ids: Sequence[str] | None = None, engine: Engine | str | None = None,
                        **fields: Any) -> dict[str, int]:
    """How many spans ``unscored_spans`` would consider (``spans``) and how many of them ``evaluator_version`` has
    already scored (``scored``) and not (``unscored``): the total a run's progress is measured against.

    >>> evaluation_coverage("heuristic-1", Filters(start=since("24h")))   # doctest: +SKIP
    {'spans': 120, 'scored': 100, 'unscored': 20}
    """
    f = resolve(filters, **fields)
    with connect(engine) as conn:
        candidates = _candidate_conditions(conn, f, span_ids)
        total = int(conn.execute(select(func.count()).where(*candidates)).scalar_one())
        # Counted from the version's scores (each looked up by primary key), not by probing every span for a score.
        versions_spans = select(EVALUATIONS.c.span_id).where(EVALUATIONS.c.evaluator_version == evaluator_version)
        scored = int(conn.execute(select(func.count()).where(SPANS.c.id.in_(versions_spans), *candidates))
                     .scalar_one())
    return {"spans": total, "scored": scored, "unscored": total - scored}


def _loads(text: Any) -> Any:
    if text is None or not isinstance(text, (str, bytes)):
        return text
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


# --- agreement between human and automatic scores --------------------------------------------------------------
def score_agreement(filters: Filters | None = None, *, rating_name: str = HUMAN_RATING,
                    thumbs_name: str = HUMAN_THUMBS, sources: Sequence[str] = AUTOMATIC_SOURCES,
                    engine: Engine | str | None = None, **fields: Any) -> dict[str, Any]:
    """How well automatic scores agree with human judgments on the spans matching the filters (range on the spans'
    start time; ``kind`` defaults to ``generation``).

    A span's human judgment is its latest ``human`` score named ``rating_name`` (1-5, normalised to 0..1 as
    (rating - 1) / 4; values outside 1..5 are ignored) and its latest named ``thumbs_name`` (up when >= 0.5); its
    automatic score per (source, metric) is the latest one from ``sources``. Metrics where lower is better
    (toxicity, bias, hallucination) are compared as 1 - score (``inverted``). Per metric:

    - ``pairs``: spans with both a rating and the score; ``spearman``: Spearman's rank correlation between them
      (average ranks for ties; None with fewer than 2 pairs or when either side is constant);
      ``mean_abs_diff``: mean |score - normalised rating|; ``mean_auto``, ``mean_human``;
    - ``thumbs_pairs``: spans with thumbs and the score; ``thumbs_agreement``: the share where thumbs up goes with
      a score >= 0.5 and thumbs down with a score < 0.5.

    ``paired_items`` counts spans with a human judgment and at least one automatic score, ``human_items`` spans
    with a human judgment at all.

    >>> score_agreement(Filters(start=since("30d")))["metrics"][0]["spearman"]   # doctest: +SKIP
    0.64
    """
    f = resolve(filters, **fields)
    sources = tuple(sources)
    if not sources or not all(isinstance(x, str) and x for x in sources):
        raise ValueError(f"llmobs.analytics: sources={sources!r} must be a non-empty list of score sources")
    with connect(engine) as conn:
        human = _human_judgments(conn, f, rating_name, thumbs_name)
        pairs = _pairs(human, sources)
        ranked = _ranked_pairs(pairs)
        human_items = conn.execute(select(func.count()).select_from(human)).scalar_one()
        paired = conn.execute(select(func.count(pairs.c.span_id.distinct()))).scalar_one()
        rows = conn.execute(_agreement_query(ranked)).mappings().all()
    return {
        "correlation": CORRELATION,
        "human_items": int(human_items or 0),
        "paired_items": int(paired or 0),
        "metrics": [_agreement_row(r) for r in rows],
        "range": {"start": f.start, "end": f.end},
    }


def _human_judgments(conn: Connection, f: Filters, rating_name: str, thumbs_name: str) -> Any:
    """Subquery: one row per span with a human judgment: ``rating`` (0..1 or NULL) and ``thumbs`` (1/0 or NULL)."""
    e = EVALUATIONS.c
    latest = (
        select(e.span_id, e.name, e.value,
               func.row_number().over(partition_by=[e.span_id, e.name],
                                      order_by=[e.created_at.desc(), e.id.desc()]).label("rn"))
        # Driven by the few human scores (index on name), each checked against its span by primary key.
        .where(e.source == "human", e.name.in_([rating_name, thumbs_name]), e.value.is_not(None),
               select(SPANS.c.id).where(SPANS.c.id == e.span_id, *span_conditions(f, conn.dialect.name)).exists())
        .subquery("human_latest")
    )
    low, high = RATING_SCALE
    in_scale = and_(latest.c.name == rating_name, latest.c.value >= low, latest.c.value <= high)
    rating = func.max(case((in_scale, (latest.c.value - low) / (high - low)), else_=None))
    thumbs = func.max(case((latest.c.name == thumbs_name, case((latest.c.value >= PASS_THRESHOLD, 1), else_=0)),
                           else_=None))
    grouped = (select(latest.c.span_id, rating.label("rating"), thumbs.label("thumbs"))
               .where(latest.c.rn == 1).group_by(latest.c.span_id).subquery("human_grouped"))
    return (select(grouped).where(or_(grouped.c.rating.is_not(None), grouped.c.thumbs.is_not(None)))
            .subquery("human"))


def _pairs(human: Any, sources: tuple[str, ...]) -> Any:
    """Subquery: one row per (span, source, metric) with the latest automatic score ``x`` (inverted where lower is
    better) next to the span's human ``rating`` and ``thumbs``."""
    e = EVALUATIONS.c
    inverted = e.name.in_(sorted(LOWER_IS_BETTER))
    latest = (
        select(e.span_id, e.source, e.name, case((inverted, 1.0 - e.value), else_=e.value).label("x"),
               human.c.rating, human.c.thumbs, case((human.c.rating.is_not(None), 1), else_=0).label("rated"),
               func.row_number().over(partition_by=[e.span_id, e.source, e.name],
                                      order_by=[e.created_at.desc(), e.id.desc()]).label("rn"))
        .select_from(human.join(EVALUATIONS, e.span_id == human.c.span_id))
        .where(e.source.in_(sources), e.value.is_not(None))
        .subquery("auto_latest")
    )
    return select(*(c for c in latest.c if c.name != "rn")).where(latest.c.rn == 1).subquery("pairs")


def _average_rank(pairs: Any, column: Any) -> ColumnElement[Any]:
    """The rank of ``column`` among the rated pairs of the same metric, ties sharing the mean of their ranks."""
    group = [pairs.c.source, pairs.c.name, pairs.c.rated]
    first = cast(func.rank().over(partition_by=group, order_by=column), Float)
    ties = cast(func.count().over(partition_by=[*group, column]), Float)
    return first + (ties - 1.0) / 2.0


def _ranked_pairs(pairs: Any) -> Any:
    return select(pairs, _average_rank(pairs, pairs.c.x).label("rx"),
                  _average_rank(pairs, pairs.c.rating).label("ry")).subquery("ranked")


def _agreement_query(r: Any) -> Any:
    """Per (source, metric): counts, the sums Spearman's rho is computed from, mean differences, thumbs agreement."""
    rated = r.c.rated == 1

    def rated_sum(expr: Any) -> Any:
        return func.sum(case((rated, expr), else_=None))

    auto_pass = case((r.c.x >= PASS_THRESHOLD, 1), else_=0)
    agrees = case((and_(r.c.thumbs.is_not(None), auto_pass == r.c.thumbs), 1), else_=0)
    return (
        select(r.c.source, r.c.name, func.count(r.c.rating).label("pairs"),
               rated_sum(r.c.rx).label("sx"), rated_sum(r.c.ry).label("sy"), rated_sum(r.c.rx * r.c.ry).label("sxy"),
               rated_sum(r.c.rx * r.c.rx).label("sxx"), rated_sum(r.c.ry * r.c.ry).label("syy"),
               func.avg(func.abs(r.c.x - r.c.rating)).label("mean_abs_diff"),
               rated_sum(r.c.x).label("auto_sum"), func.avg(r.c.rating).label("mean_human"),
               func.count(r.c.thumbs).label("thumbs_pairs"), func.sum(agrees).label("thumbs_agree"))
        .group_by(r.c.source, r.c.name)
        .order_by(r.c.name, r.c.source)
    )


def _agreement_row(row: Any) -> dict[str, Any]:
    n, thumbs_n = int(row["pairs"] or 0), int(row["thumbs_pairs"] or 0)
    return {
        "name": row["name"],
        "source": row["source"],
        "inverted": row["name"] in LOWER_IS_BETTER,
        "pairs": n,
        "spearman": _pearson(n, *(_f(row[k]) for k in ("sx", "sy", "sxy", "sxx", "syy"))),
        "mean_abs_diff": None if n == 0 else _f(row["mean_abs_diff"]),
        "mean_auto": None if n == 0 else _f(row["auto_sum"]) / n,
        "mean_human": None if n == 0 else _f(row["mean_human"]),
        "thumbs_pairs": thumbs_n,
        "thumbs_agreement": None if thumbs_n == 0 else int(row["thumbs_agree"] or 0) / thumbs_n,
    }


def _pearson(n: int, sx: float, sy: float, sxy: float, sxx: float, syy: float) -> float | None:
    """Pearson's r from sums (of ranks here, which makes it Spearman's rho); None when undefined."""
    if n < 2:
        return None
    var_x, var_y = n * sxx - sx * sx, n * syy - sy * sy
    if var_x <= 1e-12 or var_y <= 1e-12:
        return None
    return max(-1.0, min(1.0, (n * sxy - sx * sy) / math.sqrt(var_x * var_y)))


def _f(value: Any) -> float:
    return 0.0 if value is None else float(value)
