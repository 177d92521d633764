"""Trace browsing queries for the dashboard: a searchable, paginated trace list, one trace's spans, and the
queue of recent generations that no human has scored yet.

>>> page = list_traces(Filters(start=since("24h"), kind=None), search="checkout")  # doctest: +SKIP
>>> [s["name"] for s in trace_spans(page["rows"][0]["trace_id"])]                                       # doctest: +SKIP
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.engine import Engine

from llmobs.analytics.evaluations import AUTOMATIC_SOURCES
from llmobs.analytics.filters import EVALUATIONS, SPANS, TRACES, Filters, resolve, span_conditions, \
    trace_conditions
from llmobs.analytics.queries import _positive_int, connect
from llmobs.analytics.stats import QUALITY_SKEW

MAX_PAGE_SIZE = 500
TRACE_LIST_COLUMNS = ("id", "name", "user_id", "session_id", "start_time", "duration_ms", "status", "span_count",
                      "error_count", "total_tokens", "cost_usd")


def list_traces(filters: Filters | None = None, *, search: str | None = None, page: int = 1, page_size: int = 25,
                count_limit: int | None = None, engine: Engine | str | None = None, **fields: Any) -> dict[str, Any]:
    """Traces that started in the range, newest first, one page at a time:
    ``{"rows", "total", "page", "pages", "total_capped"}``.

    ``count_limit`` stops counting there (``total_capped`` is then True and ``total`` equals the limit): a page of
    the newest traces stays fast on a range of millions, where an exact count walks every trace of the range.

    ``search`` matches a substring of the trace id, name, user or session (case-insensitive).

    >>> list_traces(Filters(start=since("1h"), kind=None), search="u-42")["total"]   # doctest: +SKIP
    3
    """
    _positive_int("page", page)
    if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"llmobs.analytics: page_size={page_size!r} must be an integer from 1 to {MAX_PAGE_SIZE}")
    if count_limit is not None:
        _positive_int("count_limit", count_limit)
    f = resolve(filters, **fields)
    t = TRACES.c
    with connect(engine) as conn:
        conds = trace_conditions(f, conn.dialect.name)
        if search and search.strip():
            pattern = f"%{search.strip().lower()}%"
            conds.append(or_(*(func.lower(func.coalesce(c, "")).like(pattern)
                               for c in (t.id, t.name, t.user_id, t.session_id))))
        matching = select(TRACES.c.id).where(*conds)
        if count_limit is not None:
            matching = matching.limit(count_limit + 1)
        total = int(conn.execute(select(func.count()).select_from(matching.subquery())).scalar_one())
        capped = count_limit is not None and total > count_limit
        if capped:
            total = count_limit
        rows = conn.execute(select(*(t[c] for c in TRACE_LIST_COLUMNS)).where(*conds)
                            .order_by(t.start_time.desc(), t.id).limit(page_size)
                            .offset((page - 1) * page_size)).mappings().all()
    out = [{"trace_id": r["id"], **{k: r[k] for k in TRACE_LIST_COLUMNS if k != "id"}} for r in rows]
    return {"rows": out, "total": total, "page": page, "pages": max(1, -(-total // page_size)), "total_capped": capped}


def trace_spans(trace_id: str, *, engine: Engine | str | None = None) -> list[dict[str, Any]]:
    """Every span of one trace, in start order, with all stored columns (``metadata`` under that key).

    >>> trace_spans("0af7651916cd43dd8448eb211c80319c")[0]["parent_id"] is None   # doctest: +SKIP
    True
    """
    s = SPANS.c
    with connect(engine) as conn:
        rows = conn.execute(select(SPANS).where(s.trace_id == trace_id).order_by(s.start_time, s.id)).mappings().all()
    return [dict(r) for r in rows]


def trace_tree(trace_id: str, *, output_chars: int = 100, engine: Engine | str | None = None) -> str:
    """One trace as text: a line with its user, session, tags and totals, then its spans as an indented tree with
    name, kind, duration, status, model, tokens, cost, time to first token and the start of the output
    (``output_chars`` characters; 0 leaves outputs out).

    What the examples and ``llmobs trace`` print. Empty text when the trace is not stored (yet).

    >>> print(trace_tree("0af7651916cd43dd8448eb211c80319c"))   # doctest: +SKIP
    trace 0af7651916cd43dd8448eb211c80319c: user=u-42 spans=2 errors=0
    - answer [chain] 12.41 ms ok
      - retrieve [retriever] 0.05 ms ok output=["doc a", "doc b"]
    """
    spans = trace_spans(trace_id, engine=engine)
    if not spans:
        return ""
    known = {s["id"] for s in spans}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for span in spans:  # a span whose parent is not stored hangs at the top rather than disappearing
        children.setdefault(span["parent_id"] if span["parent_id"] in known else None, []).append(span)
    lines = [_trace_line(trace_id, engine)]

    def add(span: dict[str, Any], depth: int) -> None:
        lines.append("  " * depth + "- " + _span_line(span, output_chars))
        for child in children.get(span["id"], []):
            add(child, depth + 1)

    for root in children.get(None, []):
        add(root, 0)
    return "\n".join(lines)


def _trace_line(trace_id: str, engine: Engine | str | None) -> str:
    t = TRACES.c
    with connect(engine) as conn:
        row = conn.execute(select(TRACES).where(t.id == trace_id)).mappings().first()
    if row is None:
        return f"trace {trace_id}"
    parts = [f"trace {trace_id}:"]
    for key in ("user_id", "session_id", "tags"):
        if row[key]:
            parts.append(f"{key.removesuffix('_id')}={row[key]}")
    parts.append(f"spans={row['span_count']} errors={row['error_count']}")
    if row["total_tokens"] is not None:
        parts.append(f"tokens={row['total_tokens']}")
    if row["cost_usd"] is not None:
        parts.append(f"cost_usd={row['cost_usd']:.7f}")
    return " ".join(parts)


def _span_line(span: dict[str, Any], output_chars: int) -> str:
    parts = [f"{span['name']} [{span['kind']}] {span['duration_ms']:.2f} ms {span['status']}"]
    if span["model_name"]:
        parts.append(f"model={span['model_name']}")
    if span["prompt_tokens"] is not None or span["completion_tokens"] is not None:
        source = span["metadata"].get("usage_source") if isinstance(span["metadata"], dict) else None
        parts.append(f"tokens={span['prompt_tokens']}/{span['completion_tokens']}" + (f" ({source})" if source else ""))
    if span["cost_usd"] is not None:
        parts.append(f"cost_usd={span['cost_usd']:.7f}")
    if span["time_to_first_token_ms"] is not None:
        parts.append(f"ttft={span['time_to_first_token_ms']:.1f} ms")
    if span["status"] == "error":
        parts.append(f"error={span['error_type']}: {span['error_message']}")
    elif output_chars and span["output"] is not None:
        text = span["output"] if isinstance(span["output"], str) else str(span["output"])
        parts.append("output=" + (text if len(text) <= output_chars else text[: output_chars - 1] + "…"))
    return " ".join(parts)


def review_queue(filters: Filters | None = None, *, limit: int = 20, score_source: str = "human",
                 quality_below: float | None = None, quality_name: str = "quality",
                 engine: Engine | str | None = None, **fields: Any) -> list[dict[str, Any]]:
    """Spans matching the filters (range on their start; ``kind`` defaults to ``generation``), newest first, that
    have an output and no score from ``score_source`` yet: the manual review queue.

    ``quality_below`` keeps only spans with at least one automatic score (heuristic, embedding or llm_judge) named
    ``quality_name`` below that value, so that reviewers can go to the answers the evaluators found poor first.

    >>> review_queue(Filters(start=since("7d"), model="gpt-4o"), limit=1, quality_below=0.5)[0]["output"]  # doctest: +SKIP
    '"Paris is the capital of France."'
    """
    _check_limit(limit)
    if quality_below is not None and (isinstance(quality_below, bool) or not isinstance(quality_below, (int, float))
                                      or not math.isfinite(quality_below)):
        raise ValueError(f"llmobs.analytics: quality_below={quality_below!r} must be a number (or None for any)")
    f = resolve(filters, **fields)
    s, e = SPANS.c, EVALUATIONS.c
    scored = select(e.id).where(e.span_id == s.id, e.source == score_source).exists()
    with connect(engine) as conn:
        if quality_below is None:
            conds = span_conditions(f, conn.dialect.name)
        else:
            # Driven by the low scores, each span found by primary key: walking the range instead would check every
            # span of it when few or none score that low.
            low = [e.name == quality_name, e.source.in_(AUTOMATIC_SOURCES), e.value < quality_below]
            if f.start is not None:
                low.append(e.created_at >= f.start - QUALITY_SKEW)
            conds = [*span_conditions(f, conn.dialect.name, unindexed=True), s.id.in_(select(e.span_id).where(*low))]
        conds += [s.output.is_not(None), ~scored]
        rows = conn.execute(select(s.id, s.trace_id, s.name, s.input, s.output, s.model_name, s.start_time)
                            .where(*conds).order_by(s.start_time.desc(), s.id).limit(limit)).mappings().all()
    return [{"span_id": r["id"], **{k: r[k] for k in r.keys() if k != "id"}} for r in rows]


def list_spans(filters: Filters | None = None, *, limit: int = 100, with_output: bool = False,
               engine: Engine | str | None = None, **fields: Any) -> list[dict[str, Any]]:
    """Spans matching the filters (range on their start; ``kind`` defaults to ``generation``), newest first, without
    their payloads: id, trace id, name, kind, model, start, duration and status. ``with_output`` keeps only spans
    that have an output.

    >>> [s["span_id"] for s in list_spans(Filters(start=since("1h")), limit=5)]   # doctest: +SKIP
    """
    _check_limit(limit)
    f = resolve(filters, **fields)
    s = SPANS.c
    with connect(engine) as conn:
        conds = span_conditions(f, conn.dialect.name)
        if with_output:
            conds.append(s.output.is_not(None))
        rows = conn.execute(select(s.id, s.trace_id, s.name, s.kind, s.model_name, s.start_time, s.duration_ms,
                                   s.status).where(*conds).order_by(s.start_time.desc(), s.id)
                            .limit(limit)).mappings().all()
    return [{"span_id": r["id"], **{k: r[k] for k in r.keys() if k != "id"}} for r in rows]


def _check_limit(limit: Any) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValueError(f"llmobs.analytics: limit={limit!r} must be an integer from 1 to {MAX_PAGE_SIZE}")
