"""The scheduler: the database lease, job wiring, retention, two real ``llmobs scheduler`` processes on one database
(one notification per transition, takeover after SIGKILL, clean SIGTERM), and end to end from ``@llmobs.observe``
to a Slack message at a local receiver within one interval plus 5 s.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import insert

import llmobs
from llmobs.alerts.manager import AlertManager
from llmobs.alerts.notification_handlers import SlackConfig, SlackNotifier
from llmobs.alerts.rules import AlertRule
from llmobs.scheduler import Lease, SchedulerOptions, SchedulerService, start_background
from llmobs.scheduler.jobs import apply_retention
from llmobs.scheduler.runner import JOB_ALERTS, JOB_LEASE, JOB_ONLINE_EVALUATION, JOB_RETENTION
from llmobs.store.alert_models import AlertRow
from llmobs.store.models import Evaluation
from tests.support.databases import Store
from tests.support.receivers import HttpReceiver
from tests.support.seed import gen, seed

UTC = dt.timezone.utc
INTERVAL = 2.0
REPO = Path(__file__).resolve().parents[2]


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


def lease_row(store: Store) -> dict[str, Any]:
    (row,) = store.rows("scheduler_leases", order="name")
    return row


# --- lease ----------------------------------------------------------------------------------------------------------

def test_lease_is_exclusive_renewed_taken_over_after_expiry_and_released(store: Store) -> None:
    clock = Clock(dt.datetime(2025, 1, 1, tzinfo=UTC))
    engine = store.engine()
    a = Lease(engine, ttl_seconds=10, holder="a", clock=clock)
    b = Lease(engine, ttl_seconds=10, holder="b", clock=clock)
    assert a.acquire() and not b.acquire()
    clock.advance(seconds=9)
    assert a.acquire()  # renewed: now expires at t=19
    clock.advance(seconds=9)
    assert not b.acquire() and a.held()
    clock.advance(seconds=2)  # t=20: a did not renew
    assert not a.held()
    assert b.acquire() and not a.acquire()
    row = lease_row(store)
    assert row["holder"] == "b" and row["token"] == 2
    assert row["expires_at"] == clock.now + dt.timedelta(seconds=10)
    assert b.release() is True and lease_row(store)["holder"] is None
    assert a.acquire() and lease_row(store)["holder"] == "a"


# --- wiring ---------------------------------------------------------------------------------------------------------

def test_jobs_are_registered_with_fixed_ids_and_safe_options_and_default_rules_created(store: Store) -> None:
    from apscheduler.schedulers.background import BackgroundScheduler

    options = SchedulerOptions.from_settings(interval_seconds=30, online_evaluation=True)
    service = SchedulerService(options, database_url=store.url, holder="wiring-test")
    scheduler = service.register(BackgroundScheduler(timezone="UTC"))
    service.register(scheduler)  # registering twice replaces the jobs
    scheduler.start(paused=True)
    try:
        jobs = {j.id: j for j in scheduler.get_jobs()}
    finally:
        scheduler.shutdown(wait=False)
    assert set(jobs) == {JOB_LEASE, JOB_ALERTS, JOB_ONLINE_EVALUATION, JOB_RETENTION}
    for job in jobs.values():
        assert job.coalesce is True and job.max_instances == 1
        assert job.misfire_grace_time >= job.trigger.interval.total_seconds()
    assert jobs[JOB_ALERTS].trigger.interval == dt.timedelta(seconds=30)
    assert jobs[JOB_LEASE].trigger.interval == dt.timedelta(seconds=10)
    rules = [r["rule_id"] for r in store.rows("alert_rules", order="rule_id")]
    assert rules == ["default_response_time_ms_critical", "default_response_time_ms_warning",
                     "default_success_rate_critical", "default_success_rate_warning"]


def test_online_evaluation_tick_scores_new_generations(store: Store) -> None:
    now = dt.datetime.now(UTC)
    seed(store.engine(), [gen(now - dt.timedelta(seconds=5), 100.0, input=json.dumps({"question": "What is 2+2?"}),
                              output=json.dumps("2+2 equals 4."))])
    options = SchedulerOptions.from_settings(interval_seconds=60, online_evaluation=True, online_sample_rate=1.0,
                                             default_rules=False)
    service = SchedulerService(options, database_url=store.url, holder="online-test")
    from apscheduler.schedulers.background import BackgroundScheduler

    service.register(BackgroundScheduler(timezone="UTC"))
    assert service.online is not None
    service.online_evaluation_tick()
    assert llmobs.flush(timeout=30)
    scores = store.rows("evaluations", order="created_at")
    assert scores and {s["span_id"] for s in scores} == {store.spans()[0]["id"]}


def test_retention_deletes_old_rows_in_batches_and_keeps_recent_and_open_ones(store: Store) -> None:
    now = dt.datetime(2025, 6, 1, tzinfo=UTC)
    old, recent = now - dt.timedelta(days=40), now - dt.timedelta(days=1)
    seed(store.engine(), [gen(old + dt.timedelta(minutes=i), 10.0) for i in range(5)]
         + [gen(recent, 10.0)])
    engine = store.engine()

    def alert(state: str, resolved: dt.datetime | None) -> dict[str, Any]:
        return {"id": uuid.uuid4().hex, "rule_id": f"r-{state}", "open_rule_id": None if resolved else f"r-{state}",
                "rule_name": "r", "severity": "info", "state": state, "seq": 0, "metric_name": "error_rate",
                "condition": "gt", "threshold": 0.1, "started_at": old, "fired_at": old, "resolved_at": resolved,
                "notification_count": 0}

    with engine.begin() as conn:
        conn.execute(insert(Evaluation.__table__), [
            {"id": uuid.uuid4().hex, "name": "quality", "value": 1.0, "source": "custom", "created_at": t}
            for t in (old, recent)])
        conn.execute(insert(AlertRow.__table__), [alert("resolved", old), alert("firing", None)])
    done = apply_retention(engine, 30, now=now, batch_size=2)
    assert done == {"spans": 5, "traces": 5, "evaluations": 1, "alerts": 1}
    assert [s["start_time"] for s in store.spans()] == [recent]
    assert len(store.traces()) == 1
    assert [e["created_at"] for e in store.rows("evaluations", order="created_at")] == [recent]
    assert [a["state"] for a in store.rows("alerts", order="started_at")] == ["firing"]


# --- two real scheduler processes -----------------------------------------------------------------------------------

def start_scheduler(url: str, tmp_path: Path, hook_url: str, name: str) -> tuple[subprocess.Popen[bytes], Path]:
    """``llmobs scheduler`` in a subprocess, notifying the webhook receiver; its log goes to a file."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "LLMOBS_ALERTS__THRESHOLDS": "{}",
           "LLMOBS_ALERTS__CHANNELS": json.dumps({"hook": {"type": "webhook", "url": hook_url, "retry_count": 0,
                                                           "timeout": 2}})}
    env.pop("LLMOBS_CONFIG_FILE", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    log = tmp_path / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "llmobs.cli", "--database-url", url, "scheduler",
                                 "--interval", str(INTERVAL)], cwd=tmp_path, env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    return proc, log


def wait_until(predicate: Any, timeout: float, what: str) -> float:
    """Poll ``predicate`` every 50 ms; returns the seconds waited or fails naming ``what``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


def test_two_scheduler_processes_notify_once_take_over_after_sigkill_and_stop_on_sigterm(
        store: Store, tmp_path: Path) -> None:
    now = dt.datetime.now(UTC)
    seed(store.engine(), [gen(now - dt.timedelta(seconds=30 + i), 3000.0) for i in range(3)])
    setup = AlertManager(store.url, channels_from_config=False)
    setup.add_rule(AlertRule(rule_id="slow", name="Slow answers", metric_name="response_time_avg", condition="gt",
                             threshold=1000, severity="critical", window_minutes=10, cooldown_minutes=60,
                             channels=["hook"]))
    procs: list[subprocess.Popen[bytes]] = []
    with HttpReceiver() as hook:
        try:
            for name in ("a", "b"):
                proc, log = start_scheduler(store.url, tmp_path, f"{hook.url}/alerts", name)
                procs.append(proc)
                wait_until(lambda log=log: b"running (holder" in log.read_bytes(), 30, f"scheduler {name} to start")
            hook.wait_for(1, timeout=2 * INTERVAL + 5)
            time.sleep(INTERVAL * 1.5)  # more ticks of both processes: still one message
            assert [r.json()["state"] for r in hook.requests] == ["firing"]

            holder = lease_row(store)["holder"]
            leader = next(p for p in procs if f":{p.pid}:" in holder)
            follower = next(p for p in procs if p is not leader)
            leader.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            leader.wait(timeout=10)
            setup.update_rule("slow", threshold=100_000)  # the condition clears
            takeover = wait_until(lambda: f":{follower.pid}:" in (lease_row(store)["holder"] or ""),
                                  3 * INTERVAL, "the follower to take the lease")
            assert time.monotonic() - killed <= 2 * INTERVAL + 0.5, f"takeover took {takeover:.2f}s"
            hook.wait_for(2, timeout=2 * INTERVAL + 5)
            time.sleep(INTERVAL)
            assert [r.json()["state"] for r in hook.requests] == ["firing", "resolved"]
            assert len({r.json()["idempotency_key"] for r in hook.requests}) == 2

            follower.send_signal(signal.SIGTERM)
            assert follower.wait(timeout=15) == 0
            assert lease_row(store)["holder"] is None
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(timeout=10)
    rows = store.rows("alert_notifications", order="id")
    assert [(r["state"], r["status"]) for r in rows] == [("firing", "sent"), ("resolved", "sent")]
    (alert,) = store.rows("alerts", order="started_at")
    assert alert["state"] == "resolved" and alert["seq"] == 1


# --- end to end -----------------------------------------------------------------------------------------------------

def test_slow_generations_reach_slack_within_one_interval_and_clearing_sends_one_resolved(store: Store) -> None:
    @llmobs.observe(kind="generation")
    def answer(question: str, delay: float) -> str:
        time.sleep(delay)
        llmobs.update_current_span(model_name="gpt-4o-mini", prompt_tokens=10, completion_tokens=5)
        return "an answer"

    with HttpReceiver() as slack:
        manager = AlertManager(store.url, channels_from_config=False)
        manager.add_rule(AlertRule(rule_id="slow-generations", name="Slow generations",
                                   metric_name="response_time_avg", condition="gt", threshold=100,
                                   severity="critical", window_minutes=10, cooldown_minutes=60))
        manager.add_notification_handler(SlackNotifier(SlackConfig(
            webhook_url=f"{slack.url}/services/T000/B000/XXXXXXXX", channel="#llm-alerts", username="LLM Observer",
            retry_count=0, timeout=2)))
        scheduler = start_background(interval_seconds=INTERVAL, manager=manager, default_rules=False)
        try:
            time.sleep(0.3)  # let the first (empty) tick pass
            answer("slow one", 0.2)
            answer("slow two", 0.2)
            assert llmobs.flush(timeout=10)
            stored = time.monotonic()
            slack.wait_for(1, timeout=INTERVAL + 5)
            time_to_alert = slack.requests[0].received_at - stored
            print(f"time to alert: {time_to_alert:.2f}s (interval {INTERVAL:g}s)")
            assert time_to_alert <= INTERVAL + 5
            for i in range(30):
                answer(f"fast {i}", 0.0)
            assert llmobs.flush(timeout=10)
            slack.wait_for(2, timeout=2 * INTERVAL + 5)
            time.sleep(INTERVAL)
        finally:
            scheduler.shutdown()
        bodies = [r.json() for r in slack.requests]
    assert len(bodies) == 2
    assert "[FIRING] critical: Slow generations" in bodies[0]["text"] and bodies[0]["channel"] == "#llm-alerts"
    assert "[RESOLVED] critical: Slow generations" in bodies[1]["text"]
    rows = store.rows("alert_notifications", order="id")
    assert [(r["channel"], r["state"], r["status"]) for r in rows] == [("slack", "firing", "sent"),
                                                                       ("slack", "resolved", "sent")]
    assert lease_row(store)["holder"] is None  # shutdown released the lease
