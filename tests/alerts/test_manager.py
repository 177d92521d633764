"""The alert state machine on a real database with an injected clock: pending, firing, cooldown, resolve,
acknowledge, silence, no data, min_requests, restarts, two evaluators racing, history and statistics.

Notifications go to a real webhook receiver on 127.0.0.1; tests assert on the ``alerts`` and
``alert_notifications`` rows and on the requests the receiver got.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest

from llmobs.alerts.manager import AlertManager
from llmobs.alerts.notification_handlers import WebhookConfig, WebhookNotifier
from llmobs.alerts.rules import AlertRule
from llmobs.store.db import make_engine
from tests.support.databases import Store
from tests.support.receivers import HttpReceiver, Reply
from tests.support.seed import gen, seed

UTC = dt.timezone.utc
T0 = dt.datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


class Clock:
    """A settable clock for AlertManager(clock=...)."""

    def __init__(self, now: dt.datetime = T0) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@pytest.fixture
def hook() -> Any:
    with HttpReceiver() as receiver:
        yield receiver


def webhook(hook: HttpReceiver, name: str = "hook") -> WebhookNotifier:
    return WebhookNotifier(WebhookConfig(url=f"{hook.url}/alerts", timeout=2.0, retry_count=0), name=name)


def make_manager(store: Store, hook: HttpReceiver, clock: Clock, *, own_engine: bool = False) -> AlertManager:
    kwargs: dict[str, Any] = {"engine": make_engine(store.url)} if own_engine else {"database_url": store.url}
    m = AlertManager(clock=clock, notification_timeout=5.0, **kwargs)
    m.add_notification_handler(webhook(hook))
    return m


def slow_rule(**overrides: Any) -> AlertRule:
    values: dict[str, Any] = dict(rule_id="slow", name="Slow answers", metric_name="response_time_avg",
                                  condition="gt", threshold=1000, severity="critical", window_minutes=60,
                                  cooldown_minutes=10)
    values.update(overrides)
    return AlertRule(**values)


def calls(store: Store, at: dt.datetime, ms: float, n: int = 3, **columns: Any) -> None:
    """``n`` generation spans of ``ms`` milliseconds starting at ``at``, one second apart."""
    seed(store.engine(), [gen(at + dt.timedelta(seconds=i), ms, **columns) for i in range(n)])


def states(hook: HttpReceiver) -> list[str]:
    return [r.json()["state"] for r in hook.requests]


def alert_rows(store: Store) -> list[dict[str, Any]]:
    return store.rows("alerts", order="started_at")


def sent_rows(store: Store) -> list[dict[str, Any]]:
    return store.rows("alert_notifications", order="id")


# --- the basic life cycle -------------------------------------------------------------------------------------------

def test_breach_fires_once_notifies_and_resolves_with_one_resolved_message(store: Store, hook: HttpReceiver) -> None:
    clock = Clock()
    m = make_manager(store, hook, clock)
    m.add_rule(slow_rule())
    calls(store, T0 - dt.timedelta(minutes=5), 3000.0)
    (fired,) = m.evaluate_rules()
    assert (fired.event, fired.from_state, fired.to_state, fired.value) == ("firing", "inactive", "firing", 3000.0)
    clock.advance(minutes=1)
    assert m.evaluate_rules() == []  # still firing, inside the cooldown
    hook.wait_for(1)
    (alert,) = alert_rows(store)
    assert alert["state"] == "firing" and alert["open_rule_id"] == "slow" and alert["fired_at"] == T0
    body = hook.requests[0].json()
    assert (body["state"], body["rule"]["id"], body["value"], body["threshold"]) == ("firing", "slow", 3000.0, 1000.0)
    assert body["idempotency_key"] == f"{alert['id']}:firing:0"
    clock.advance(minutes=65)  # the slow calls leave the window: no data counts as ok
    (resolved,) = m.evaluate_rules()
    assert resolved.event == "resolved"
    hook.wait_for(2)
    assert states(hook) == ["firing", "resolved"]
    (alert,) = alert_rows(store)
    assert alert["state"] == "resolved" and alert["open_rule_id"] is None
    assert alert["resolved_at"] == T0 + dt.timedelta(minutes=66) and alert["seq"] == 1
    rows = sent_rows(store)
    assert [(r["channel"], r["state"], r["status"], r["attempts"]) for r in rows] == [
        ("hook", "firing", "sent", 1), ("hook", "resolved", "sent", 1)]
    assert all(r["sent_at"] is not None and r["error"] is None for r in rows)
    assert m.get_active_alerts() == []


def test_for_minutes_keeps_the_alert_pending_then_fires_at_the_stored_pending_start(store: Store,
                                                                                    hook: HttpReceiver) -> None:
    clock = Clock()
    m = make_manager(store, hook, clock)
    m.add_rule(slow_rule(for_minutes=5))
    calls(store, T0 - dt.timedelta(minutes=1), 3000.0)
    assert [t.event for t in m.evaluate_rules()] == ["pending"]
    clock.advance(minutes=3)
    assert m.evaluate_rules() == []
    (alert,) = alert_rows(store)
    assert alert["state"] == "pending" and alert["started_at"] == T0 and alert["fired_at"] is None
    assert hook.requests == []
    clock.advance(minutes=2)
    assert [t.event for t in m.evaluate_rules()] == ["firing"]
    hook.wait_for(1)
    (alert,) = alert_rows(store)
    assert alert["state"] == "firing" and alert["fired_at"] == T0 + dt.timedelta(minutes=5)
    assert states(hook) == ["firing"]


def test_pending_alert_whose_condition_clears_is_dropped_without_a_message(store: Store, hook: HttpReceiver) -> None:
    clock = Clock()
    m = make_manager(store, hook, clock)
    m.add_rule(slow_rule(for_minutes=10))
    calls(store, T0 - dt.timedelta(minutes=1), 3000.0)
    m.evaluate_rules()
    calls(store, T0 + dt.timedelta(seconds=10), 10.0, n=30)  # the average drops to ~290 ms
    clock.advance(minutes=1)
    assert [t.event for t in m.evaluate_rules()] == ["cancelled"]
    assert alert_rows(store) == [] and sent_rows(store) == [] and hook.requests == []


def test_firing_alert_is_renotified_only_after_the_cooldown(store: Store, hook: HttpReceiver) -> None:
    clock = Clock()
    m = make_manager(store, hook, clock)
    m.add_rule(slow_rule(cooldown_minutes=10))
    calls(store, T0 - dt.timedelta(minutes=1), 3000.0)
    m.evaluate_rules()
    for _ in range(9):
        clock.advance(minutes=1)
        assert m.evaluate_rules() == []
    clock.advance(minutes=1)
    assert [t.event for t in m.evaluate_rules()] == ["renotify"]
    hook.wait_for(2)
    assert states(hook) == ["firing", "firing"]
    keys = [r.json()["idempotency_key"] for r in hook.requests]
    assert len(set(keys)) == 2
    (alert,) = alert_rows(store)
    assert alert["notification_count"] == 2 and alert["last_notified_at"] == T0 + dt.timedelta(minutes=10)


def test_acknowledged_alert_is_not_renotified_but_its_resolution_is_announced(store: Store,
                                                                              hook: HttpReceiver) -> None:
    clock = Clock()
    m = make_manager(store, hook, clock)
    m.add_rule(slow_rule(cooldown_minutes=1))
    calls(store, T0 - dt.timedelta(minutes=1), 3000.0)
    m.evaluate_rules()
    (active,) = m.get_active_alerts(severity="critical")
    assert m.acknowledge(active["alert_id"], by="oncall@example.com") is True
    assert m.acknowledge(active["alert_id"], by="someone-else") is False
    for _ in range(3):
        clock.advance(minutes=2)
        assert m.evaluate_rules() == []
    clock.advance(minutes=60)
    assert [t.event for t in m.evaluate_rules()] == ["resolved"]
    hook.wait_for(2)
    assert states(hook) == ["firing", "resolved"]
    (alert,) = alert_rows(store)
    assert alert["acknowledged_by"] == "oncall@example.com" and alert["acknowledged_at"] == T0


def test_silenced_rule_records_the_alert_but_notifies_only_after_the_silence(store: Store,
                                                                             hook: HttpReceiver) -> None:
    clock = Clock()
    m = make_manager(store, hook, clock)
    m.add_rule(slow_rule())
    m.silence("slow", until=T0 + dt.timedelta(minutes=30))
    calls(store, T0 - dt.timedelta(minutes=1), 3000.0)
    assert [t.event for t in m.evaluate_rules()] == ["firing"]
    clock.advance(minutes=20)
    m.evaluate_rules()
    (alert,) = alert_rows(store)
    assert alert["state"] == "firing" and alert["notification_count"] == 0 and sent_rows(store) == []
    clock.advance(minutes=11)  # silence over, the data still breaches
    assert [t.event for t in m.evaluate_rules()] == ["firing"]
    hook.wait_for(1)
    assert states(hook) == ["firing"] and len(sent_rows(store)) == 1


@pytest.mark.parametrize(("no_data", "expected_state"), [("ok", "resolved"), ("keep_state", "firing")])
def test_no_data_resolves_or_keeps_the_firing_alert(store: Store, hook: HttpReceiver, no_data: str,
                                                    expected_state: str) -> None:
    clock = Clock()
    m = make_manager(store, hook, clock)
    m.add_rule(slow_rule(no_data=no_data))
    calls(store, T0 - dt.timedelta(minutes=1), 3000.0)
    m.evaluate_rules()
    clock.advance(hours=2)
    m.evaluate_rules()
    (alert,) = alert_rows(store)
    assert alert["state"] == expected_state


def test_no_data_alert_fires_when_nothing_arrives(store: Store, hook: HttpReceiver) -> None:
    m = make_manager(store, hook, Clock())
    m.add_rule(slow_rule(rule_id="silent", name="Nothing arrives", no_data="alert"))
    assert [t.event for t in m.evaluate_rules()] == ["firing"]
    hook.wait_for(1)
    (alert,) = alert_rows(store)
    assert alert["value"] is None and "no data" in alert["message"]
    assert hook.requests[0].json()["value"] is None


def test_min_requests_blocks_firing_on_too_little_traffic(store: Store, hook: HttpReceiver) -> None:
    clock = Clock()
    m = make_manager(store, hook, clock)
    m.add_rule(slow_rule(min_requests=5))
    calls(store, T0 - dt.timedelta(minutes=2), 3000.0, n=3)
    assert m.evaluate_rules() == [] and alert_rows(store) == []
    assert "fewer than min_requests=5" in m.check_rule("slow")["message"]
    calls(store, T0 - dt.timedelta(minutes=1), 3000.0, n=2)
    assert [t.event for t in m.evaluate_rules()] == ["firing"]


def test_request_count_rule_sees_zero_traffic_as_a_value(store: Store, hook: HttpReceiver) -> None:
    m = make_manager(store, hook, Clock())
    m.add_rule(AlertRule(rule_id="quiet", name="Traffic stopped", metric_name="request_count", condition="lt",
                         threshold=1, window_minutes=10))
    assert [t.event for t in m.evaluate_rules()] == ["firing"]
    (alert,) = alert_rows(store)
    assert alert["value"] == 0.0


# --- persistence and concurrency ------------------------------------------------------------------------------------

def test_new_manager_on_the_same_database_continues_cooldown_and_pending_start(store: Store,
                                                                               hook: HttpReceiver) -> None:
    clock = Clock()
    first = make_manager(store, hook, clock)
    first.add_rule(slow_rule(rule_id="now", cooldown_minutes=10))
    first.add_rule(slow_rule(rule_id="later", for_minutes=5))
    calls(store, T0 - dt.timedelta(minutes=1), 3000.0)
    assert sorted(t.event for t in first.evaluate_rules()) == ["firing", "pending"]
    hook.wait_for(1)
    clock.advance(minutes=3)
    restarted = make_manager(store, hook, clock, own_engine=True)  # a new process: nothing kept in memory
    assert restarted.evaluate_rules() == []  # 'now' is inside its cooldown, 'later' still pending
    clock.advance(minutes=2)
    assert [(t.rule_id, t.event) for t in restarted.evaluate_rules()] == [("later", "firing")]
    hook.wait_for(2)
    later = next(a for a in alert_rows(store) if a["rule_id"] == "later")
    assert later["started_at"] == T0 and later["fired_at"] == T0 + dt.timedelta(minutes=5)
    assert sorted(r.json()["rule"]["id"] for r in hook.requests) == ["later", "now"]


def test_two_evaluators_racing_notify_each_transition_once(store: Store, hook: HttpReceiver) -> None:
    clock = Clock()
    managers = [make_manager(store, hook, clock, own_engine=True) for _ in range(2)]
    managers[0].add_rule(slow_rule())
    calls(store, T0 - dt.timedelta(minutes=1), 3000.0)
    for step in (0, 65):  # fire, then resolve
        clock.now = T0 + dt.timedelta(minutes=step)
        barrier = threading.Barrier(2)
        results: list[Any] = []

        def run(m: AlertManager) -> None:
            barrier.wait(timeout=10)
            results.extend(m.evaluate_rules())

        threads = [threading.Thread(target=run, args=(m,)) for m in managers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert len(results) == 1
    hook.wait_for(2)
    assert states(hook) == ["firing", "resolved"]
    assert [r["state"] for r in sent_rows(store)] == ["firing", "resolved"]
    assert len(alert_rows(store)) == 1


# --- delivery records, history, statistics --------------------------------------------------------------------------

def test_failed_delivery_and_unknown_channel_are_recorded_with_their_errors(store: Store) -> None:
    with HttpReceiver(default=Reply(500, "boom")) as broken:
        m = AlertManager(store.url, clock=Clock())
        m.add_notification_handler(WebhookNotifier(WebhookConfig(url=f"{broken.url}/x", timeout=2.0, retry_count=1,
                                                                 backoff_base=0.01, backoff_max=0.02), name="pager"))
        m.add_rule(slow_rule(channels=["pager", "nowhere"]))
        calls(store, T0 - dt.timedelta(minutes=1), 3000.0)
        m.evaluate_rules()
        assert len(broken.wait_for(2)) == 2
    rows = {r["channel"]: r for r in sent_rows(store)}
    assert rows["pager"]["status"] == "failed" and rows["pager"]["attempts"] == 2
    assert "500" in rows["pager"]["error"] and rows["pager"]["http_status"] == 500
    assert rows["nowhere"]["status"] == "failed" and "no notification channel named 'nowhere'" in rows["nowhere"]["error"]
    stats = m.get_alert_statistics(T0 - dt.timedelta(hours=1), T0 + dt.timedelta(hours=1))
    assert stats["notifications"] == {"sent": 0, "failed": 2,
                                      "by_channel": {"pager": {"sent": 0, "failed": 1},
                                                     "nowhere": {"sent": 0, "failed": 1}}}


def test_history_and_statistics_count_alerts_per_rule_severity_and_time_to_resolve(store: Store,
                                                                                   hook: HttpReceiver) -> None:
    clock = Clock()
    m = make_manager(store, hook, clock)
    m.add_rule(slow_rule(rule_id="slow", severity="critical", cooldown_minutes=60))
    m.add_rule(slow_rule(rule_id="slowish", severity="warning", threshold=500, window_minutes=30))
    calls(store, T0 - dt.timedelta(minutes=1), 3000.0)
    m.evaluate_rules()
    clock.advance(minutes=40)  # leaves the 30-minute window only
    m.evaluate_rules()
    hook.wait_for(3)
    history = m.get_alert_history(T0 - dt.timedelta(hours=1), T0 + dt.timedelta(hours=2))
    assert sorted((a["rule_id"], a["state"]) for a in history) == [("slow", "firing"), ("slowish", "resolved")]
    assert [a["rule_id"] for a in m.get_alert_history(T0, T0 + dt.timedelta(hours=2), severity="warning")] == [
        "slowish"]
    assert m.get_alert_history(T0 + dt.timedelta(hours=3), T0 + dt.timedelta(hours=4), rule_id="slowish") == []
    stats = m.get_alert_statistics(T0 - dt.timedelta(hours=1), T0 + dt.timedelta(hours=2))
    assert stats["total_alerts"] == 2 and stats["open_alerts"] == 1 and stats["resolved_alerts"] == 1
    assert stats["by_severity"] == {
        "info": {"alerts": 0, "open": 0, "resolved": 0, "mean_time_to_resolve_seconds": None},
        "warning": {"alerts": 1, "open": 0, "resolved": 1, "mean_time_to_resolve_seconds": 40 * 60},
        "critical": {"alerts": 1, "open": 1, "resolved": 0, "mean_time_to_resolve_seconds": None}}
    assert stats["by_rule"] == {
        "slow": {"name": "Slow answers", "alerts": 1, "open": 1, "resolved": 0, "mean_time_to_resolve_seconds": None},
        "slowish": {"name": "Slow answers", "alerts": 1, "open": 0, "resolved": 1,
                    "mean_time_to_resolve_seconds": 40 * 60}}
    assert stats["mean_time_to_resolve_seconds"] == 40 * 60
    assert [a["rule_id"] for a in m.get_alert_history(T0 - dt.timedelta(hours=1), T0 + dt.timedelta(hours=2),
                                                      state="firing")] == ["slow"]
    newest = m.get_alert_history(T0 - dt.timedelta(hours=1), T0 + dt.timedelta(hours=2), latest=1)
    assert [a["alert_id"] for a in newest] == [history[-1]["alert_id"]]
    with pytest.raises(ValueError, match="state = 'pending' is invalid: must be one of firing, resolved"):
        m.get_alert_history(T0, T0 + dt.timedelta(hours=1), state="pending")
    assert stats["notifications"]["sent"] == 3 and stats["notifications"]["failed"] == 0


def test_disabling_a_rule_closes_its_alert_silently(store: Store, hook: HttpReceiver) -> None:
    clock = Clock()
    m = make_manager(store, hook, clock)
    m.add_rule(slow_rule())
    calls(store, T0 - dt.timedelta(minutes=1), 3000.0)
    m.evaluate_rules()
    m.disable_rule("slow")
    clock.advance(minutes=30)
    assert m.evaluate_rules() == []
    (alert,) = alert_rows(store)
    assert alert["state"] == "resolved" and alert["message"] == "rule disabled"
    hook.wait_for(1)
    assert states(hook) == ["firing"]
