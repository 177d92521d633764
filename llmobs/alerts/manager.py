"""AlertManager: the rule engine. Rules and alert state live in the database; each tick judges every enabled rule,
moves its alert through inactive -> pending -> firing -> resolved and notifies the rule's channels.

Transitions are conditional updates (see ``llmobs.alerts.store``), and a channel is notified only by the caller
whose update won, so two evaluators on one database send each notification once.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

from sqlalchemy.engine import Engine

from llmobs.alerts.metrics import Measurement, MetricReader, robust_z
from llmobs.alerts.notification import Notification
from llmobs.alerts.rules import SEVERITIES, AlertRule
from llmobs.alerts.store import AlertStore
from llmobs.config import ConfigError

log = logging.getLogger("llmobs.alerts")
UTC = dt.timezone.utc
Clock = Callable[[], dt.datetime]

# alerts.thresholds keys that are not metric names: key -> (metric, condition)
THRESHOLD_ALIASES: dict[str, tuple[str, str]] = {"response_time_ms": ("response_time_p95", "gt")}
LOWER_IS_WORSE = frozenset({"success_rate", "quality_score", "tokens_per_second", "request_count",
                            "relevance_score", "coherence_score"})
DEFAULT_RULE_MIN_REQUESTS = 5
HISTORY_STATES: tuple[str, ...] = ("firing", "resolved")  # states an alert in the history can be in now
_THRESHOLD_OPTIONS = ("condition", "metric", "window_minutes", "for_minutes", "min_requests", "cooldown_minutes")


def utcnow() -> dt.datetime:
    """The current time, timezone-aware UTC (the default clock)."""
    return dt.datetime.now(UTC)


@dataclass(frozen=True)
class Verdict:
    """What one rule's data says now: ``breach``, ``clear`` or ``hold`` (cannot judge: keep the state)."""

    outcome: str
    value: float | None
    count: int
    message: str


@dataclass(frozen=True)
class Transition:
    """One change made by an evaluation tick: ``event`` is pending, firing, renotify, resolved or cancelled."""

    alert_id: str
    rule_id: str
    rule_name: str
    severity: str
    event: str
    from_state: str
    to_state: str
    value: float | None
    threshold: float
    message: str
    at: dt.datetime
    deliveries: tuple[dict[str, Any], ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        """Plain data, e.g. for JSON."""
        return asdict(self)


class AlertManager:
    """Alert rules, their state and notifications, stored in the llmobs database.

    >>> manager = AlertManager()                                          # doctest: +SKIP
    >>> manager.add_rule(AlertRule(rule_id="slow", name="Slow", metric_name="response_time_p95",
    ...                            condition="gt", threshold=5000))     # doctest: +SKIP
    >>> manager.evaluate_rules()                                          # doctest: +SKIP
    []
    """

    def __init__(self, database_url: str | None = None, *, engine: Engine | None = None, clock: Clock | None = None,
                 notifiers: Iterable[Any] | None = None, channels_from_config: bool = True,
                 notification_timeout: float = 30.0, dashboard_url: str | None = None) -> None:
        self._url = database_url
        self._engine = engine
        self._stores: dict[int, AlertStore] = {}
        self.clock: Clock = clock or utcnow
        self.notification_timeout = notification_timeout
        self.dashboard_url = dashboard_url
        self._handlers: dict[str, Any] = {}
        self._lock = threading.RLock()
        if channels_from_config:
            from llmobs.alerts.notification_handlers import notifiers_from_config

            for notifier in notifiers_from_config().values():
                self.add_notification_handler(notifier)
        for notifier in notifiers or ():
            self.add_notification_handler(notifier)

    # --- database -------------------------------------------------------------------------------------------------

    @property
    def engine(self) -> Engine:
        """The engine of ``database_url`` (or the given engine, or the configured database)."""
        if self._engine is not None:
            return self._engine
        from llmobs.store.db import get_engine

        return get_engine(self._url)

    @property
    def store(self) -> AlertStore:
        """The alert tables of the current database."""
        engine = self.engine
        found = self._stores.get(id(engine))
        if found is None or found.engine is not engine:
            found = self._stores[id(engine)] = AlertStore(engine)
        return found

    def _now(self) -> dt.datetime:
        now = self.clock()
        if now.tzinfo is None:
            raise ValueError(f"AlertManager clock returned {now!r}: it must return a timezone-aware datetime")
        return now.astimezone(UTC)

    # --- rules ----------------------------------------------------------------------------------------------------

    def add_rule(self, rule: AlertRule) -> AlertRule:
        """Store a rule, replacing any rule with the same id (upsert); returns the stored rule.

        >>> manager.add_rule(AlertRule(rule_id="errors", name="Errors", metric_name="error_rate",
        ...                            condition="gt", threshold=0.05))   # doctest: +SKIP
        """
        if not isinstance(rule, AlertRule):
            raise ValueError(f"add_rule: rule = {rule!r} is invalid: must be an AlertRule")
        rule = self._with_defaults(rule)
        self.store.save_rule(rule, self._now())
        return rule

    def update_rule(self, rule_id: str, **changes: Any) -> AlertRule:
        """Change fields of a stored rule; the whole new rule is validated first, so nothing is half-saved.

        >>> manager.update_rule("errors", threshold=0.1, severity="critical")   # doctest: +SKIP
        """
        current = self.get_rule(rule_id)
        if current is None:
            raise KeyError(f"no alert rule with rule_id {rule_id!r}")
        updated = self._with_defaults(current.replace(**changes))
        self.store.save_rule(updated, self._now())
        if "enabled" in changes and not updated.enabled:
            self.store.close_open_alert(rule_id, self._now(), "rule disabled")
        return updated

    def get_rule(self, rule_id: str) -> AlertRule | None:
        """The stored rule with this id, or None."""
        return self.store.get_rule(rule_id)

    def list_rules(self, enabled: bool | None = None) -> list[AlertRule]:
        """Every stored rule, by id (only enabled or disabled ones when ``enabled`` is given)."""
        return self.store.list_rules(enabled)

    def delete_rule(self, rule_id: str) -> bool:
        """Delete a rule and close its open alert without notifying; True when the rule existed."""
        self.store.close_open_alert(rule_id, self._now(), "rule deleted")
        return self.store.delete_rule(rule_id)

    def enable_rule(self, rule_id: str) -> AlertRule:
        """Switch a rule on."""
        return self.update_rule(rule_id, enabled=True)

    def disable_rule(self, rule_id: str) -> AlertRule:
        """Switch a rule off; its open alert is closed without a notification."""
        return self.update_rule(rule_id, enabled=False)

    def silence(self, rule_id: str, until: dt.datetime) -> AlertRule:
        """Mute a rule's notifications until ``until`` (its alerts still change state and are recorded).

        >>> manager.silence("errors", until=utcnow() + dt.timedelta(hours=1))   # doctest: +SKIP
        """
        return self.update_rule(rule_id, silenced_until=until)

    def unsilence(self, rule_id: str) -> AlertRule:
        """End a silence early."""
        return self.update_rule(rule_id, silenced_until=None)

    def _with_defaults(self, rule: AlertRule) -> AlertRule:
        """Fill ``cooldown_minutes`` from ``alerts.default_cooldown_minutes`` when the rule leaves it unset."""
        if rule.cooldown_minutes is not None:
            return rule
        from llmobs._state import settings

        return rule.replace(cooldown_minutes=settings().alerts.default_cooldown_minutes)

    def ensure_default_rules(self, thresholds: Mapping[str, Any] | None = None) -> list[AlertRule]:
        """Create the rules of ``alerts.thresholds`` that do not exist yet (existing ones keep their edits);
        returns the rules created. ``response_time_ms`` watches the p95 response time, ``success_rate`` fires below
        its thresholds; any other key names a metric (``lt`` for metrics where lower is worse, else ``gt``).

        >>> [r.rule_id for r in manager.ensure_default_rules()]   # doctest: +SKIP
        ['default_response_time_ms_warning', 'default_response_time_ms_critical', ...]
        """
        if thresholds is None:
            from llmobs._state import settings

            thresholds = settings().alerts.thresholds
        rules = default_rules(thresholds, self._default_cooldown())
        now = self._now()
        return [r for r in rules if self.store.insert_rule_if_absent(r, now)]

    def _default_cooldown(self) -> float:
        from llmobs._state import settings

        return float(settings().alerts.default_cooldown_minutes)

    # --- notification channels ------------------------------------------------------------------------------------

    def add_notification_handler(self, handler: Any, name: str | None = None) -> None:
        """Add a notifier (``send(Notification) -> DeliveryResult``); rules name it in ``channels`` by its name.

        >>> manager.add_notification_handler(SlackNotifier(SlackConfig(webhook_url=url)))   # doctest: +SKIP
        """
        if not callable(getattr(handler, "send", None)):
            raise ValueError(f"add_notification_handler: handler = {handler!r} is invalid: must have a "
                             "send(notification) method (see llmobs.alerts.notification_handlers)")
        key = name or getattr(handler, "name", None) or type(handler).__name__
        with self._lock:
            self._handlers[str(key)] = handler

    def remove_notification_handler(self, name: str) -> bool:
        """Remove a notifier by name; True when it was there."""
        with self._lock:
            return self._handlers.pop(name, None) is not None

    @property
    def notification_handlers(self) -> dict[str, Any]:
        """The notifiers by channel name."""
        with self._lock:
            return dict(self._handlers)

    def send_test_notification(self, channel: str | None = None) -> list[Any]:
        """Send a harmless "test" notification to one channel (or all) and return the DeliveryResults."""
        from llmobs.alerts.notification_handlers import deliver_all

        handlers = self.notification_handlers
        chosen = [handlers[channel]] if channel is not None else list(handlers.values())
        return deliver_all(chosen, Notification.test(channel or "every"), timeout=self.notification_timeout)

    # --- evaluation -----------------------------------------------------------------------------------------------

    def evaluate_rules(self, now: dt.datetime | None = None) -> list[Transition]:
        """Run one evaluation tick over every enabled rule and return the transitions this call made.

        A rule whose data cannot be read is logged and skipped; the other rules are still judged.

        >>> [t.event for t in manager.evaluate_rules()]   # doctest: +SKIP
        ['firing']
        """
        now = (now or self._now()).astimezone(UTC)
        store = self.store
        reader = MetricReader(store.engine)
        open_alerts = store.open_alerts()
        out: list[Transition] = []
        for rule in store.list_rules(enabled=True):
            try:
                out.extend(self._evaluate(store, rule, open_alerts.get(rule.rule_id), reader, now))
            except Exception:  # noqa: BLE001 - one broken rule must not stop the others
                log.exception("llmobs alerts: evaluating rule %r failed", rule.rule_id)
        return out

    def check_rule(self, rule: AlertRule | str, now: dt.datetime | None = None) -> dict[str, Any]:
        """What a rule's data says now (value, request count, breach/clear/hold) without changing any state."""
        if isinstance(rule, str):
            found = self.get_rule(rule)
            if found is None:
                raise KeyError(f"no alert rule with rule_id {rule!r}")
            rule = found
        verdict = judge(rule, MetricReader(self.engine), (now or self._now()).astimezone(UTC))
        return asdict(verdict)

    def _evaluate(self, store: AlertStore, rule: AlertRule, alert: dict[str, Any] | None, reader: MetricReader,
                  now: dt.datetime) -> list[Transition]:
        verdict = judge(rule, reader, now)
        if alert is None:
            return self._open(store, rule, verdict, now) if verdict.outcome == "breach" else []
        observed = {"value": verdict.value, "request_count": verdict.count, "message": verdict.message,
                    "last_evaluated_at": now, "peak_value": _peak(rule, alert.get("peak_value"), verdict.value)}
        if verdict.outcome == "hold":
            store.observe(alert["id"], alert["seq"], observed)
            return []
        if alert["state"] == "pending":
            return self._advance_pending(store, rule, alert, verdict, observed, now)
        return self._advance_firing(store, rule, alert, verdict, observed, now)

    def _open(self, store: AlertStore, rule: AlertRule, verdict: Verdict, now: dt.datetime) -> list[Transition]:
        """No open alert and a breach: open one, pending or (with ``for_minutes`` 0) firing at once."""
        firing = rule.for_minutes <= 0
        notify = firing and not rule.silenced(now)
        row = {"id": uuid.uuid4().hex, "rule_id": rule.rule_id, "open_rule_id": rule.rule_id,
               "rule_name": rule.name, "severity": rule.severity, "state": "firing" if firing else "pending",
               "seq": 0, "metric_name": rule.metric_name, "condition": rule.condition, "threshold": rule.threshold,
               "value": verdict.value, "peak_value": verdict.value, "request_count": verdict.count,
               "message": verdict.message, "started_at": now, "fired_at": now if firing else None,
               "last_evaluated_at": now, "last_notified_at": now if notify else None,
               "notification_count": 1 if notify else 0}
        if not store.insert_alert(row):
            return []  # another evaluator opened it first
        event = "firing" if firing else "pending"
        deliveries = self._notify(store, rule, row, "firing", now) if notify else ()
        return [self._transition(rule, row, event, "inactive", row["state"], verdict, now, deliveries)]

    def _advance_pending(self, store: AlertStore, rule: AlertRule, alert: dict[str, Any], verdict: Verdict,
                         observed: dict[str, Any], now: dt.datetime) -> list[Transition]:
        if verdict.outcome == "clear":
            if store.discard_pending(alert["id"], alert["seq"]):
                return [self._transition(rule, alert, "cancelled", "pending", "inactive", verdict, now)]
            return []
        if now - alert["started_at"] < dt.timedelta(minutes=rule.for_minutes):
            store.observe(alert["id"], alert["seq"], observed)
            return []
        notify = not rule.silenced(now)
        changes = {**observed, "state": "firing", "fired_at": now}
        if notify:
            changes.update(last_notified_at=now, notification_count=alert["notification_count"] + 1)
        if not store.transition(alert["id"], alert["seq"], changes):
            return []
        fired = {**alert, **changes, "seq": alert["seq"] + 1}
        deliveries = self._notify(store, rule, fired, "firing", now) if notify else ()
        return [self._transition(rule, fired, "firing", "pending", "firing", verdict, now, deliveries)]

    def _advance_firing(self, store: AlertStore, rule: AlertRule, alert: dict[str, Any], verdict: Verdict,
                        observed: dict[str, Any], now: dt.datetime) -> list[Transition]:
        if verdict.outcome == "clear":
            notify = alert["notification_count"] > 0 and not rule.silenced(now)
            changes = {**observed, "state": "resolved", "open_rule_id": None, "resolved_at": now}
            if not store.transition(alert["id"], alert["seq"], changes):
                return []
            resolved = {**alert, **changes, "seq": alert["seq"] + 1}
            deliveries = self._notify(store, rule, resolved, "resolved", now) if notify else ()
            return [self._transition(rule, resolved, "resolved", "firing", "resolved", verdict, now, deliveries)]
        last = alert.get("last_notified_at")
        due = (alert.get("acknowledged_at") is None and not rule.silenced(now)
               and (last is None or now - last >= dt.timedelta(minutes=rule.cooldown_minutes or 0.0)))
        if not due:
            store.observe(alert["id"], alert["seq"], observed)
            return []
        changes = {**observed, "last_notified_at": now, "notification_count": alert["notification_count"] + 1}
        if not store.transition(alert["id"], alert["seq"], changes):
            return []
        renotified = {**alert, **changes, "seq": alert["seq"] + 1}
        deliveries = self._notify(store, rule, renotified, "firing", now)
        event = "renotify" if alert["notification_count"] > 0 else "firing"
        return [self._transition(rule, renotified, event, "firing", "firing", verdict, now, deliveries)]

    def _transition(self, rule: AlertRule, alert: Mapping[str, Any], event: str, from_state: str, to_state: str,
                    verdict: Verdict, now: dt.datetime, deliveries: Sequence[dict[str, Any]] = ()) -> Transition:
        log.info("llmobs alerts: rule %r %s -> %s (%s)", rule.rule_id, from_state, to_state, verdict.message)
        return Transition(alert_id=alert["id"], rule_id=rule.rule_id, rule_name=rule.name, severity=rule.severity,
                          event=event, from_state=from_state, to_state=to_state, value=verdict.value,
                          threshold=rule.threshold, message=verdict.message, at=now, deliveries=tuple(deliveries))

    # --- notifications --------------------------------------------------------------------------------------------

    def _notify(self, store: AlertStore, rule: AlertRule, alert: Mapping[str, Any], state: str,
                now: dt.datetime) -> tuple[dict[str, Any], ...]:
        """Send one transition to the rule's channels and record one ``alert_notifications`` row per channel."""
        from llmobs.alerts.notification_handlers import deliver_all

        notification = self._notification(rule, alert, state)
        handlers = self.notification_handlers
        wanted = rule.channels or list(handlers)
        chosen = [handlers[name] for name in wanted if name in handlers]
        rows = [_notification_row(alert, name, state, notification.idempotency_key, now, status="failed",
                                  error=f"no notification channel named {name!r} (known: "
                                        f"{', '.join(sorted(handlers)) or 'none'})")
                for name in wanted if name not in handlers]
        if not wanted:
            log.warning("llmobs alerts: rule %r %s but no notification channel is configured", rule.rule_id, state)
        try:
            results = deliver_all(chosen, notification, timeout=self.notification_timeout) if chosen else []
        except Exception as exc:  # noqa: BLE001 - a channel must never break evaluation
            log.exception("llmobs alerts: delivering %s failed", notification.idempotency_key)
            results = []
            rows += [_notification_row(alert, getattr(h, "name", "?"), state, notification.idempotency_key, now,
                                       status="failed", error=f"{type(exc).__name__}: {exc}") for h in chosen]
        for result in results:
            rows.append(_notification_row(
                alert, result.channel, state, notification.idempotency_key, now, status=result.status,
                attempts=result.attempts, error=result.error, sent_at=result.sent_at,
                channel_type=getattr(result, "channel_type", None), http_status=getattr(result, "http_status", None),
                duration_ms=getattr(result, "duration_ms", None)))
        try:
            store.add_notifications(rows)
        except Exception:  # noqa: BLE001 - the message left; only its record failed
            log.exception("llmobs alerts: recording notifications of %s failed", notification.idempotency_key)
        return tuple({k: r[k] for k in ("channel", "status", "attempts", "error")} for r in rows)

    def _notification(self, rule: AlertRule, alert: Mapping[str, Any], state: str) -> Notification:
        model = rule.filters.get("model_name")
        return Notification(
            alert_id=alert["id"], rule_id=rule.rule_id, rule_name=rule.name, state=state, severity=rule.severity,
            metric=rule.metric_name, value=alert.get("value"), threshold=rule.threshold,
            condition=rule.condition_symbol(), window_minutes=rule.window_minutes,
            message=alert.get("message") or "", model=model if isinstance(model, str) else None,
            filters={k: v for k, v in rule.filters.items() if k != "model_name" or not isinstance(v, str)},
            started_at=alert.get("fired_at") or alert["started_at"], resolved_at=alert.get("resolved_at"),
            dashboard_url=self.dashboard_url, transition_seq=int(alert["seq"]))

    # --- reading state --------------------------------------------------------------------------------------------

    def get_active_alerts(self, severity: str | None = None, rule_id: str | None = None,
                          include_pending: bool = True) -> list[dict[str, Any]]:
        """Open alerts (firing, and pending unless ``include_pending`` is false), newest first, as dicts with
        alert_id, rule_id, name, severity, state, message, value, threshold, started_at, fired_at, ...

        >>> manager.get_active_alerts(severity="critical")   # doctest: +SKIP
        """
        if severity is not None and severity not in SEVERITIES:
            raise ValueError(f"severity = {severity!r} is invalid: must be one of {', '.join(SEVERITIES)}")
        states = ("pending", "firing") if include_pending else ("firing",)
        return [_public(a) for a in self.store.active_alerts(severity, rule_id, states)]

    def get_alert(self, alert_id: str) -> dict[str, Any] | None:
        """One alert (open or closed) by id."""
        row = self.store.get_alert(alert_id)
        return None if row is None else _public(row)

    def acknowledge(self, alert_id: str, by: str | None = None) -> bool:
        """Stop re-notifications of an open alert (its resolution is still announced); True when it was open
        and not yet acknowledged.

        >>> manager.acknowledge(alert_id, by="oncall@example.com")   # doctest: +SKIP
        True
        """
        return self.store.acknowledge(alert_id, by, self._now())

    def get_alert_history(self, start: dt.datetime, end: dt.datetime, rule_id: str | None = None,
                          severity: str | None = None, state: str | None = None,
                          latest: int | None = None) -> list[dict[str, Any]]:
        """Alerts that fired in [start, end) or were firing during it, oldest first; ``state`` ("firing" or
        "resolved") keeps those in that state now, ``latest`` only the newest that many.

        >>> manager.get_alert_history(start, end, severity="critical", state="resolved")   # doctest: +SKIP
        """
        if severity is not None and severity not in SEVERITIES:
            raise ValueError(f"severity = {severity!r} is invalid: must be one of {', '.join(SEVERITIES)}")
        if state is not None and state not in HISTORY_STATES:
            raise ValueError(f"state = {state!r} is invalid: must be one of {', '.join(HISTORY_STATES)}")
        return [_public(a) for a in self.store.history(_utc("start", start), _utc("end", end), rule_id, severity,
                                                       state, latest)]

    def get_notifications(self, alert_id: str | None = None, channel: str | None = None,
                          latest: int | None = None) -> list[dict[str, Any]]:
        """Delivery attempts (channel, state, status, attempts, error, sent_at), oldest first; ``latest`` keeps
        only the newest that many."""
        return self.store.notifications(alert_id, channel=channel, latest=latest)

    def get_alert_statistics(self, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
        """Alerts that fired in (or were firing during) [start, end): in total, per rule and per severity, each
        with ``alerts`` (fired), ``open`` (still firing now), ``resolved`` and ``mean_time_to_resolve_seconds``;
        plus notifications sent and failed (per channel too).

        >>> manager.get_alert_statistics(start, end)["by_severity"]["critical"]   # doctest: +SKIP
        {'alerts': 2, 'open': 1, 'resolved': 1, 'mean_time_to_resolve_seconds': 2400.0}
        """
        start, end = _utc("start", start), _utc("end", end)
        alerts = self.store.history_outline(start, end)
        overall = _tally(alerts)
        per_rule: dict[str, list[dict[str, Any]]] = {}
        per_severity: dict[str, list[dict[str, Any]]] = {s: [] for s in SEVERITIES}
        for a in alerts:
            per_rule.setdefault(a["rule_id"], []).append(a)
            per_severity.setdefault(a["severity"], []).append(a)
        by_rule = {rule_id: {"name": rows[-1]["rule_name"], **_tally(rows)} for rule_id, rows in per_rule.items()}
        by_severity = {severity: _tally(rows) for severity, rows in per_severity.items()}
        by_channel: dict[str, dict[str, int]] = {}
        for (channel, status), count in sorted(self.store.notification_counts(start, end).items()):
            entry = by_channel.setdefault(channel, {"sent": 0, "failed": 0})
            if status in entry:
                entry[status] += count
        sent = sum(c["sent"] for c in by_channel.values())
        failed = sum(c["failed"] for c in by_channel.values())
        return {"start": start, "end": end, "total_alerts": overall["alerts"], "open_alerts": overall["open"],
                "resolved_alerts": overall["resolved"], "by_rule": by_rule, "by_severity": by_severity,
                "mean_time_to_resolve_seconds": overall["mean_time_to_resolve_seconds"],
                "notifications": {"sent": sent, "failed": failed, "by_channel": by_channel}}


# --- judging a rule -------------------------------------------------------------------------------------------------

def judge(rule: AlertRule, reader: MetricReader, now: dt.datetime) -> Verdict:
    """Read the rule's metric over its window ending ``now`` and say breach, clear or hold.

    No data (a rate or average over zero requests) follows ``no_data``; fewer than ``min_requests`` requests may
    clear an alert but never open or escalate one (``request_count`` rules ignore ``min_requests``).
    """
    window = dt.timedelta(minutes=rule.window_minutes)
    current = reader.measure(rule.metric_name, now - window, now, rule.filters)
    if not current.has_data:
        return _no_data(rule, current)
    if rule.condition == "anomaly":
        return _judge_anomaly(rule, reader, now, window, current)
    assert current.value is not None
    breach = rule.breached(current.value)
    text = (f"{rule.metric_name} = {current.value:.6g} ({rule.condition_symbol()} {rule.threshold:g} "
            f"{'breached' if breach else 'not breached'}) over {rule.window_minutes:g} min, {current.count} requests")
    if breach and _too_little_traffic(rule, current):
        return Verdict("hold", current.value, current.count,
                       f"{text}; fewer than min_requests={rule.min_requests}, not judged")
    return Verdict("breach" if breach else "clear", current.value, current.count, text)


def _too_little_traffic(rule: AlertRule, m: Measurement) -> bool:
    return rule.metric_name != "request_count" and m.count < rule.min_requests


def _no_data(rule: AlertRule, m: Measurement) -> Verdict:
    text = f"no data for {rule.metric_name} in the last {rule.window_minutes:g} min"
    outcome = {"ok": "clear", "keep_state": "hold", "alert": "breach"}[rule.no_data]
    return Verdict(outcome, None, m.count, f"{text} (no_data={rule.no_data})")


def _judge_anomaly(rule: AlertRule, reader: MetricReader, now: dt.datetime, window: dt.timedelta,
                   current: Measurement) -> Verdict:
    """Robust z-score of the current window against the ``baseline_windows`` windows before it."""
    assert current.value is not None
    baseline: list[float] = []
    for k in range(1, rule.baseline_windows + 1):
        past = reader.measure(rule.metric_name, now - window * (k + 1), now - window * k, rule.filters)
        if past.has_data:
            baseline.append(past.value)  # type: ignore[arg-type]
    z = robust_z(current.value, baseline)
    if z is None:
        return Verdict("hold", current.value, current.count,
                       f"{rule.metric_name} = {current.value:.6g}: only {len(baseline)} of {rule.baseline_windows} "
                       "baseline windows have data, not judged")
    breach = abs(z) > rule.threshold
    text = (f"{rule.metric_name} = {current.value:.6g} is {z:+.2f} robust deviations from the median of the "
            f"previous {len(baseline)} windows (threshold {rule.threshold:g}), {current.count} requests")
    if breach and _too_little_traffic(rule, current):
        return Verdict("hold", current.value, current.count, f"{text}; fewer than min_requests, not judged")
    return Verdict("breach" if breach else "clear", current.value, current.count, text)


def _peak(rule: AlertRule, old: float | None, new: float | None) -> float | None:
    """The worst value seen while the alert is open (largest, or smallest for lt/lte rules)."""
    if old is None or new is None:
        return old if new is None else new
    return min(old, new) if rule.condition in ("lt", "lte") else max(old, new)


# --- default rules --------------------------------------------------------------------------------------------------

def default_rules(thresholds: Mapping[str, Any], cooldown_minutes: float) -> list[AlertRule]:
    """Rules for the ``alerts.thresholds`` setting: one per (key, severity), ids ``default_<key>_<severity>``.

    >>> [r.rule_id for r in default_rules({"success_rate": {"warning": 0.95}}, 10)]
    ['default_success_rate_warning']
    """
    rules: list[AlertRule] = []
    for key, levels in thresholds.items():
        where = f"alerts.thresholds.{key}"
        if not isinstance(levels, Mapping):
            raise ConfigError(f"llmobs config: {where} = {levels!r} is invalid: must be a mapping like "
                              "{warning: 5000, critical: 15000}")
        unknown = set(levels) - set(SEVERITIES) - set(_THRESHOLD_OPTIONS)
        if unknown:
            raise ConfigError(f"llmobs config: {where} has unknown key {sorted(unknown)[0]!r}: allowed are "
                              + ", ".join((*SEVERITIES, *_THRESHOLD_OPTIONS)))
        metric, condition = THRESHOLD_ALIASES.get(str(key), (str(key), "lt" if key in LOWER_IS_WORSE else "gt"))
        metric = levels.get("metric", metric)
        condition = levels.get("condition", condition)
        for severity in SEVERITIES:
            if severity not in levels:
                continue
            try:
                rules.append(AlertRule(
                    rule_id=f"default_{key}_{severity}", name=f"{key} {severity}", metric_name=metric,
                    condition=condition, threshold=levels[severity], severity=severity,
                    window_minutes=levels.get("window_minutes", 15.0), for_minutes=levels.get("for_minutes", 0.0),
                    cooldown_minutes=levels.get("cooldown_minutes", cooldown_minutes),
                    min_requests=levels.get("min_requests", DEFAULT_RULE_MIN_REQUESTS),
                    description=f"Default rule from alerts.thresholds.{key}.{severity}"))
            except ValueError as exc:
                raise ConfigError(f"llmobs config: {where}.{severity} = {levels[severity]!r} makes an invalid "
                                  f"rule: {exc}") from None
    return rules


# --- helpers --------------------------------------------------------------------------------------------------------

def _notification_row(alert: Mapping[str, Any], channel: str, state: str, key: str, now: dt.datetime, *,
                      status: str, attempts: int = 0, error: str | None = None, sent_at: dt.datetime | None = None,
                      channel_type: str | None = None, http_status: int | None = None,
                      duration_ms: float | None = None) -> dict[str, Any]:
    return {"alert_id": alert["id"], "rule_id": alert["rule_id"], "channel": channel, "channel_type": channel_type,
            "state": state, "status": status, "attempts": attempts, "error": error, "http_status": http_status,
            "idempotency_key": key, "duration_ms": duration_ms, "sent_at": sent_at, "created_at": now}


def _tally(alerts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Counts of fired alerts, those still open and those resolved, and the mean seconds from firing to resolution."""
    durations = [(a["resolved_at"] - a["fired_at"]).total_seconds() for a in alerts if a["resolved_at"] is not None]
    return {"alerts": len(alerts), "open": sum(a["state"] != "resolved" for a in alerts), "resolved": len(durations),
            "mean_time_to_resolve_seconds": sum(durations) / len(durations) if durations else None}


def _public(row: Mapping[str, Any]) -> dict[str, Any]:
    """An alert row as the API shows it (``alert_id`` and ``name`` instead of ``id`` and ``rule_name``)."""
    out = {k: v for k, v in row.items() if k not in ("id", "open_rule_id", "rule_name")}
    return {"alert_id": row["id"], "name": row["rule_name"], **out}


def _utc(name: str, value: dt.datetime) -> dt.datetime:
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        raise ValueError(f"{name} = {value!r} is invalid: must be a timezone-aware datetime")
    return value.astimezone(UTC)
