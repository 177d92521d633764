"""The scheduler's jobs: alert evaluation, online evaluation of new generations, and data retention.

Each job is a plain function of its inputs so it can be called directly (tests, ``llmobs scheduler --once``);
``llmobs.scheduler.runner`` wires them into APScheduler behind the database lease.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Callable

from sqlalchemy import Table, delete, select
from sqlalchemy.engine import Engine

from llmobs.store.db import ensure_schema

log = logging.getLogger("llmobs.scheduler")
UTC = dt.timezone.utc
RETENTION_BATCH = 5000
RETENTION_MAX_BATCHES = 10_000


def evaluate_alerts(manager: Any) -> list[Any]:
    """One alert evaluation tick: judge every enabled rule, notify, and return the transitions.

    >>> evaluate_alerts(AlertManager())   # doctest: +SKIP
    []
    """
    transitions = manager.evaluate_rules()
    if transitions:
        log.info("llmobs scheduler: alert tick made %d transition(s): %s", len(transitions),
                 ", ".join(f"{t.rule_id}:{t.event}" for t in transitions))
    return transitions


def load_online_evaluator() -> Callable[..., Any] | None:
    """``llmobs.evaluation.batch.evaluate_spans``, or None (logged as an error) when it cannot be imported."""
    try:
        from llmobs.evaluation.batch import evaluate_spans
    except ImportError as exc:
        log.error("llmobs scheduler: evaluation.online.enabled is true but llmobs.evaluation.batch.evaluate_spans "
                  "is unavailable (%s); online evaluation is off. Install the 'evaluation' extra "
                  "(pip install 'llmobs[evaluation]') or set evaluation.online.enabled: false", exc)
        return None
    return evaluate_spans


class OnlineEvaluation:
    """Scores a sample of the generations recorded since its previous run (the first run covers one interval)."""

    def __init__(self, evaluate_spans: Callable[..., Any], sample_rate: float, backend: str, interval_seconds: float,
                 clock: Callable[[], dt.datetime] | None = None) -> None:
        self.evaluate_spans = evaluate_spans
        self.sample_rate = sample_rate
        self.backend = backend
        self.clock = clock or (lambda: dt.datetime.now(UTC))
        self.since = self.clock() - dt.timedelta(seconds=interval_seconds)

    def __call__(self) -> Any:
        """Evaluate [previous end, now); the window moves on only when the evaluator returned."""
        end = self.clock()
        result = self.evaluate_spans(self.since, end, sample_rate=self.sample_rate, backend=self.backend)
        log.info("llmobs scheduler: online evaluation of %s .. %s done: %s", self.since.isoformat(),
                 end.isoformat(), result)
        self.since = end
        return result


def apply_retention(engine: Engine, retention_days: float, now: dt.datetime | None = None,
                    batch_size: int = RETENTION_BATCH) -> dict[str, int]:
    """Delete spans, traces, evaluations and resolved alerts older than ``retention_days``, in batches so that
    no transaction holds the database for long; returns the rows deleted per table.

    >>> apply_retention(get_engine(), 30)   # doctest: +SKIP
    {'spans': 120, 'traces': 60, 'evaluations': 12, 'alerts': 1}
    """
    from llmobs.alerts.store import AlertStore
    from llmobs.store.models import Evaluation, Span, Trace

    ensure_schema(engine)
    cutoff = (now or dt.datetime.now(UTC)) - dt.timedelta(days=retention_days)
    done = {
        "spans": _delete_before(engine, Span.__table__, "start_time", cutoff, batch_size),
        "traces": _delete_before(engine, Trace.__table__, "start_time", cutoff, batch_size),
        "evaluations": _delete_before(engine, Evaluation.__table__, "created_at", cutoff, batch_size),
        "alerts": AlertStore(engine).purge_closed_alerts(cutoff, batch_size),
    }
    if any(done.values()):
        log.info("llmobs scheduler: retention (%s days) deleted %s", retention_days, done)
    return done


def _delete_before(engine: Engine, table: Table, column: str, cutoff: dt.datetime, batch_size: int) -> int:
    """Delete rows whose ``column`` is before ``cutoff``, ``batch_size`` ids per transaction."""
    total = 0
    key = table.c.id
    for _ in range(RETENTION_MAX_BATCHES):
        with engine.begin() as conn:
            ids = conn.execute(select(key).where(table.c[column] < cutoff).limit(batch_size)).scalars().all()
            if not ids:
                break
            conn.execute(delete(table).where(key.in_(ids)))
        total += len(ids)
    return total
