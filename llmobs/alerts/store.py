"""Reading and writing the alert tables (rules, alerts, notification attempts); the only SQL of the alert engine.

Each state change is one short transaction. Transitions are conditional (``WHERE id = ? AND seq = ?``) and
report whether this caller won, so two evaluators never both act on the same transition.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Iterable, Mapping

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from llmobs.alerts.rules import AlertRule
from llmobs.store.alert_models import AlertNotificationRow, AlertRow, AlertRuleRow
from llmobs.store.db import ensure_schema

log = logging.getLogger("llmobs.alerts")
RULES = AlertRuleRow.__table__
ALERTS = AlertRow.__table__
NOTIFICATIONS = AlertNotificationRow.__table__
OPEN_STATES = ("pending", "firing")


def _dict(row: Any) -> dict[str, Any]:
    return dict(row._mapping)


class AlertStore:
    """The alert tables of one database.

    >>> store = AlertStore(get_engine())   # doctest: +SKIP
    >>> store.list_rules()                  # doctest: +SKIP
    []
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        ensure_schema(engine)  # creates the alert tables with the others

    # --- rules ----------------------------------------------------------------------------------------------------

    def save_rule(self, rule: AlertRule, now: dt.datetime) -> None:
        """Insert the rule, or replace every field of the stored one with the same id (keeps ``created_at``)."""
        values = rule.to_dict()
        with self.engine.begin() as conn:
            changed = conn.execute(update(RULES).where(RULES.c.rule_id == rule.rule_id)
                                   .values(**values, updated_at=now)).rowcount
        if changed:
            return
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(RULES).values(**values, created_at=now, updated_at=now))
        except IntegrityError:  # another process inserted it meanwhile: ours replaces it
            with self.engine.begin() as conn:
                conn.execute(update(RULES).where(RULES.c.rule_id == rule.rule_id).values(**values, updated_at=now))

    def insert_rule_if_absent(self, rule: AlertRule, now: dt.datetime) -> bool:
        """Insert the rule unless one with its id exists; True when inserted."""
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(RULES).values(**rule.to_dict(), created_at=now, updated_at=now))
            return True
        except IntegrityError:
            return False

    def get_rule(self, rule_id: str) -> AlertRule | None:
        """The stored rule, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(select(RULES).where(RULES.c.rule_id == rule_id)).first()
        return None if row is None else _rule(row)

    def rule_times(self, rule_id: str) -> tuple[dt.datetime, dt.datetime] | None:
        """(created_at, updated_at) of a stored rule."""
        with self.engine.connect() as conn:
            row = conn.execute(select(RULES.c.created_at, RULES.c.updated_at).where(RULES.c.rule_id == rule_id)).first()
        return None if row is None else (row[0], row[1])

    def list_rules(self, enabled: bool | None = None) -> list[AlertRule]:
        """Every stored rule (optionally only enabled or disabled ones), by id."""
        stmt = select(RULES).order_by(RULES.c.rule_id)
        if enabled is not None:
            stmt = stmt.where(RULES.c.enabled == enabled)
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        out = []
        for row in rows:
            try:
                out.append(_rule(row))
            except ValueError as exc:  # a row edited by hand into something invalid: skip it, loudly
                log.error("llmobs alerts: stored rule %r is invalid and is skipped: %s", row.rule_id, exc)
        return out

    def delete_rule(self, rule_id: str) -> bool:
        """Delete a rule; True when it existed."""
        with self.engine.begin() as conn:
            return bool(conn.execute(delete(RULES).where(RULES.c.rule_id == rule_id)).rowcount)

    def set_rule_fields(self, rule_id: str, now: dt.datetime, **values: Any) -> bool:
        """Change some columns of one rule (already validated by the caller); True when the rule exists."""
        with self.engine.begin() as conn:
            return bool(conn.execute(update(RULES).where(RULES.c.rule_id == rule_id)
                                     .values(**values, updated_at=now)).rowcount)

    # --- alerts ---------------------------------------------------------------------------------------------------

    def open_alerts(self) -> dict[str, dict[str, Any]]:
        """The open (pending or firing) alert of each rule, by rule id."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(ALERTS).where(ALERTS.c.open_rule_id.is_not(None))).all()
        return {r.rule_id: _dict(r) for r in rows}

    def get_alert(self, alert_id: str) -> dict[str, Any] | None:
        """One alert row as a dict."""
        with self.engine.connect() as conn:
            row = conn.execute(select(ALERTS).where(ALERTS.c.id == alert_id)).first()
        return None if row is None else _dict(row)

    def insert_alert(self, values: Mapping[str, Any]) -> bool:
        """Open a new alert; False when the rule already has an open one (another evaluator was first)."""
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(ALERTS).values(**values))
            return True
        except IntegrityError:
            return False

    def transition(self, alert_id: str, seq: int, values: Mapping[str, Any]) -> bool:
        """Apply a transition if nobody changed the alert since ``seq`` was read; True when this call won."""
        with self.engine.begin() as conn:
            result = conn.execute(update(ALERTS).where(ALERTS.c.id == alert_id, ALERTS.c.seq == seq)
                                  .values(**values, seq=ALERTS.c.seq + 1))
            return result.rowcount == 1

    def observe(self, alert_id: str, seq: int, values: Mapping[str, Any]) -> bool:
        """Record the latest value of an open alert without a transition (seq unchanged)."""
        with self.engine.begin() as conn:
            result = conn.execute(update(ALERTS).where(ALERTS.c.id == alert_id, ALERTS.c.seq == seq).values(**values))
            return result.rowcount == 1

    def discard_pending(self, alert_id: str, seq: int) -> bool:
        """Drop a pending alert whose condition cleared before it fired; True when this call removed it."""
        with self.engine.begin() as conn:
            result = conn.execute(delete(ALERTS).where(ALERTS.c.id == alert_id, ALERTS.c.seq == seq,
                                                       ALERTS.c.state == "pending"))
            return result.rowcount == 1

    def acknowledge(self, alert_id: str, by: str | None, at: dt.datetime) -> bool:
        """Mark an open alert acknowledged; True when it was open and not yet acknowledged."""
        with self.engine.begin() as conn:
            result = conn.execute(update(ALERTS).where(ALERTS.c.id == alert_id, ALERTS.c.open_rule_id.is_not(None),
                                                       ALERTS.c.acknowledged_at.is_(None))
                                  .values(acknowledged_at=at, acknowledged_by=by))
            return result.rowcount == 1

    def active_alerts(self, severity: str | None = None, rule_id: str | None = None,
                      states: Iterable[str] = OPEN_STATES) -> list[dict[str, Any]]:
        """Open alerts, newest first."""
        stmt = select(ALERTS).where(ALERTS.c.open_rule_id.is_not(None), ALERTS.c.state.in_(list(states)))
        if severity is not None:
            stmt = stmt.where(ALERTS.c.severity == severity)
        if rule_id is not None:
            stmt = stmt.where(ALERTS.c.rule_id == rule_id)
        with self.engine.connect() as conn:
            return [_dict(r) for r in conn.execute(stmt.order_by(ALERTS.c.started_at.desc())).all()]

    def history(self, start: dt.datetime, end: dt.datetime, rule_id: str | None = None,
                severity: str | None = None, state: str | None = None,
                latest: int | None = None) -> list[dict[str, Any]]:
        """Alerts that fired in [start, end) or were still firing then (optionally of one rule, severity and
        current state, or only the ``latest`` that fired), oldest first."""
        stmt = _history(select(ALERTS), start, end)
        if rule_id is not None:
            stmt = stmt.where(ALERTS.c.rule_id == rule_id)
        if severity is not None:
            stmt = stmt.where(ALERTS.c.severity == severity)
        if state is not None:
            stmt = stmt.where(ALERTS.c.state == state)
        return self._rows(stmt, (ALERTS.c.fired_at, ALERTS.c.id), latest)

    def history_outline(self, start: dt.datetime, end: dt.datetime) -> list[dict[str, Any]]:
        """The history's rule_id, rule_name, severity, state, fired_at and resolved_at only (for statistics)."""
        stmt = _history(select(ALERTS.c.rule_id, ALERTS.c.rule_name, ALERTS.c.severity, ALERTS.c.state,
                               ALERTS.c.fired_at, ALERTS.c.resolved_at), start, end)
        return self._rows(stmt, (ALERTS.c.fired_at, ALERTS.c.id), None)

    def _rows(self, stmt: Any, order: tuple[Any, ...], latest: int | None) -> list[dict[str, Any]]:
        """Run ``stmt`` in ``order``, or take the ``latest`` by that order; rows oldest first."""
        if latest is not None:
            stmt = stmt.order_by(*(c.desc() for c in order)).limit(latest)
        else:
            stmt = stmt.order_by(*order)
        with self.engine.connect() as conn:
            rows = [_dict(r) for r in conn.execute(stmt).all()]
        return rows[::-1] if latest is not None else rows

    def close_open_alert(self, rule_id: str, at: dt.datetime, message: str) -> None:
        """Close a rule's open alert without notifying (the rule was deleted or disabled)."""
        with self.engine.begin() as conn:
            conn.execute(update(ALERTS).where(ALERTS.c.open_rule_id == rule_id)
                         .values(state="resolved", open_rule_id=None, resolved_at=at, message=message,
                                 seq=ALERTS.c.seq + 1))

    def purge_closed_alerts(self, before: dt.datetime, batch_size: int = 5000) -> int:
        """Delete resolved alerts (and their notification rows) resolved before ``before``, in batches."""
        total = 0
        while True:
            with self.engine.begin() as conn:
                ids = [r[0] for r in conn.execute(
                    select(ALERTS.c.id).where(ALERTS.c.state == "resolved", ALERTS.c.resolved_at < before)
                    .limit(batch_size)).all()]
                if not ids:
                    return total
                conn.execute(delete(NOTIFICATIONS).where(NOTIFICATIONS.c.alert_id.in_(ids)))
                conn.execute(delete(ALERTS).where(ALERTS.c.id.in_(ids)))
            total += len(ids)

    # --- notifications --------------------------------------------------------------------------------------------

    def add_notifications(self, rows: list[dict[str, Any]]) -> None:
        """Record delivery attempts (one row per channel per transition)."""
        if rows:
            with self.engine.begin() as conn:
                conn.execute(insert(NOTIFICATIONS), rows)

    def notifications(self, alert_id: str | None = None, start: dt.datetime | None = None,
                      end: dt.datetime | None = None, channel: str | None = None,
                      latest: int | None = None) -> list[dict[str, Any]]:
        """Delivery attempts, oldest first, optionally of one alert or channel, within [start, end), or only the
        ``latest`` ones."""
        stmt = select(NOTIFICATIONS)
        if alert_id is not None:
            stmt = stmt.where(NOTIFICATIONS.c.alert_id == alert_id)
        if channel is not None:
            stmt = stmt.where(NOTIFICATIONS.c.channel == channel)
        return self._rows(_within(stmt, start, end), (NOTIFICATIONS.c.id,), latest)

    def notification_counts(self, start: dt.datetime | None = None,
                            end: dt.datetime | None = None) -> dict[tuple[str, str], int]:
        """Delivery attempts within [start, end) counted per (channel, status)."""
        stmt = select(NOTIFICATIONS.c.channel, NOTIFICATIONS.c.status, func.count()) \
            .group_by(NOTIFICATIONS.c.channel, NOTIFICATIONS.c.status)
        with self.engine.connect() as conn:
            return {(r[0], r[1]): int(r[2]) for r in conn.execute(_within(stmt, start, end)).all()}


def _history(stmt: Any, start: dt.datetime, end: dt.datetime) -> Any:
    """Restrict ``stmt`` to alerts that fired in [start, end) or were still firing at ``start``."""
    return stmt.where(ALERTS.c.fired_at.is_not(None), ALERTS.c.fired_at < end,
                      (ALERTS.c.resolved_at.is_(None)) | (ALERTS.c.resolved_at >= start))


def _within(stmt: Any, start: dt.datetime | None, end: dt.datetime | None) -> Any:
    """Restrict a notifications query to attempts created in [start, end) (either bound optional)."""
    if start is not None:
        stmt = stmt.where(NOTIFICATIONS.c.created_at >= start)
    if end is not None:
        stmt = stmt.where(NOTIFICATIONS.c.created_at < end)
    return stmt


def _rule(row: Any) -> AlertRule:
    data = _dict(row)
    data.pop("created_at", None)
    data.pop("updated_at", None)
    data["filters"] = data.get("filters") or {}
    data["channels"] = data.get("channels") or []
    data["description"] = data.get("description") or ""
    return AlertRule.from_dict(data)
