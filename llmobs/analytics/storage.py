"""What is stored at all: counts and totals over every table, for ``llmobs stats``."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.engine import Engine

from llmobs.store.db import ensure_schema, get_engine
from llmobs.store.models import Span, Trace


def storage_summary(engine: Engine | None = None) -> dict[str, Any]:
    """Counts and totals of everything stored: traces, spans by kind, models, errors, tokens, cost, time range.

    >>> storage_summary()["spans"]   # doctest: +SKIP
    1234
    """
    engine = engine or get_engine()
    ensure_schema(engine)
    s = Span.__table__.c
    t = Trace.__table__.c
    with engine.connect() as conn:
        n_traces = conn.execute(select(func.count()).select_from(Trace.__table__)).scalar_one()
        totals = conn.execute(select(
            func.count(), func.sum(case((s.status == "error", 1), else_=0)),
            func.min(s.start_time), func.max(s.start_time))).one()
        by_kind = dict(conn.execute(select(s.kind, func.count()).group_by(s.kind).order_by(s.kind)).all())
        models = conn.execute(
            select(s.model_name, func.count(), func.sum(s.total_tokens), func.sum(s.cost_usd), func.avg(s.duration_ms))
            .where(s.kind == "generation").group_by(s.model_name).order_by(func.count().desc())).all()
        users = conn.execute(select(func.count(func.distinct(t.user_id)))).scalar_one()
    start, end = totals[2], totals[3]
    return {
        "traces": n_traces,
        "spans": totals[0],
        "errors": int(totals[1] or 0),
        "first_span": _aware(start),
        "last_span": _aware(end),
        "spans_by_kind": by_kind,
        "users": users,
        "models": [{"model_name": m or "(none)", "calls": c, "total_tokens": int(tok or 0),
                    "cost_usd": cost, "avg_duration_ms": avg} for m, c, tok, cost, avg in models],
    }


def _aware(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value
