"""Alert engine: the time of one full evaluation tick of 50 rules over 1,000,000 stored spans (SQLite), and
notifications per second through the webhook channel to a local receiver.

Run: python benchmarks/bench_alerts.py [--spans N] [--rules N] [--notifications N] [--db PATH]
The seeded database is kept at --db (default data/bench_alerts_<N>.db) and reused by later runs.
Target: one tick under 2 s on SQLite.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert, select  # noqa: E402

from llmobs.alerts.manager import AlertManager  # noqa: E402
from llmobs.alerts.notification_handlers import WebhookConfig, WebhookNotifier, deliver_all  # noqa: E402
from llmobs.alerts.notification import Notification  # noqa: E402
from llmobs.alerts.rules import AlertRule  # noqa: E402
from llmobs.store.db import ensure_schema, make_engine  # noqa: E402
from llmobs.store.models import Evaluation, Span  # noqa: E402
from tests.support.receivers import HttpReceiver  # noqa: E402
from tests.support.seed import BENCH_MODELS, generate_spans, seed  # noqa: E402

UTC = dt.timezone.utc
DAYS = 30.0


def prepare(path: Path, n: int, now: dt.datetime) -> tuple[str, dt.datetime]:
    """A SQLite file with ``n`` generation spans over the 30 days before ``now`` (reused when already seeded),
    plus one quality score per 100 spans; returns its URL and the time the data ends."""
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    ensure_schema(engine)
    with engine.connect() as conn:
        have = conn.execute(select(func.count()).select_from(Span.__table__)).scalar_one()
        last = conn.execute(select(func.max(Span.__table__.c.start_time))).scalar()
    if have >= n and last is not None:
        engine.dispose()
        end = dt.datetime.fromisoformat(str(last)).replace(tzinfo=UTC)
        print(f"reusing {path} ({have:,} spans, data ends {end:%Y-%m-%d %H:%M} UTC)")
        return url, end + dt.timedelta(seconds=1)
    path.unlink(missing_ok=True)
    engine.dispose()
    engine = make_engine(url)
    started = time.perf_counter()
    start = now - dt.timedelta(days=DAYS)
    seed(engine, generate_spans(n, start, days=DAYS))
    step = dt.timedelta(days=DAYS) / (n // 100)
    models = list(BENCH_MODELS)
    scores = [{"id": uuid.uuid4().hex, "name": "quality", "value": (i % 10) / 10, "source": "heuristic",
               "model_name": models[i % len(models)], "created_at": start + step * i} for i in range(n // 100)]
    with engine.begin() as conn:
        conn.execute(insert(Evaluation.__table__), scores)
    engine.dispose()
    print(f"seeded {n:,} spans and {len(scores):,} scores into {path} in {time.perf_counter() - started:.1f} s")
    return url, now


def rules(count: int) -> list[AlertRule]:
    """A realistic mix: every metric, three window sizes, per-model filters, anomaly and evaluation rules."""
    metrics = [("error_rate", "gt", 0.5), ("success_rate", "lt", 0.5), ("response_time_p95", "gt", 60_000),
               ("response_time_p99", "gt", 60_000), ("response_time_avg", "gt", 60_000),
               ("cost_usd", "gt", 10_000), ("cost_per_request", "gt", 10), ("cost_per_token", "gt", 1),
               ("tokens_per_second", "lt", 0.001), ("request_count", "lt", 0), ("total_tokens", "gt", 10**12),
               ("error_count", "gt", 10**6), ("quality_score", "lt", -1)]
    models = [None, *BENCH_MODELS]
    out = []
    for i in range(count):
        if i % 10 == 9:
            metric, condition, threshold = "response_time_avg", "anomaly", 50.0
        else:
            metric, condition, threshold = metrics[i % len(metrics)]
        model = models[i % len(models)]
        out.append(AlertRule(rule_id=f"bench-{i:03d}", name=f"bench rule {i}", metric_name=metric,
                             condition=condition, threshold=threshold, window_minutes=(5, 15, 60)[i % 3],
                             filters={"model_name": model} if model else {}, cooldown_minutes=60))
    return out


def bench_tick(url: str, now: dt.datetime, n_rules: int, repeats: int) -> None:
    manager = AlertManager(url, channels_from_config=False, clock=lambda: now)
    for rule in manager.list_rules():
        manager.delete_rule(rule.rule_id)
    for rule in rules(n_rules):
        manager.add_rule(rule)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        manager.evaluate_rules(now)
        times.append(time.perf_counter() - started)
    print(f"one evaluation tick of {n_rules} rules over the stored spans: median {statistics.median(times):.3f} s, "
          f"first {times[0]:.3f} s, best {min(times):.3f} s ({repeats} runs)")
    print(f"  target: under 2 s on SQLite -> {'OK' if statistics.median(times) < 2 else 'MISSED'}")


def bench_notifications(url: str, now: dt.datetime, n: int) -> None:
    with HttpReceiver() as hook:
        notifier = WebhookNotifier(WebhookConfig(url=f"{hook.url}/hook", retry_count=0, timeout=5), name="hook")
        note = Notification(alert_id="a", rule_id="r", rule_name="bench", state="firing", severity="warning",
                            metric="error_rate", value=0.5, threshold=0.1, condition=">", window_minutes=15)
        started = time.perf_counter()
        for _ in range(n):
            deliver_all([notifier], note, timeout=5)
        raw = n / (time.perf_counter() - started)
        hook.wait_for(n, timeout=30)

        manager = AlertManager(url, channels_from_config=False, clock=lambda: now, notifiers=[notifier])
        for rule in manager.list_rules():
            manager.delete_rule(rule.rule_id)
        for i in range(n):  # every rule fires at once: each firing is one webhook POST + its database rows
            manager.add_rule(AlertRule(rule_id=f"fire-{i:04d}", name=f"fire {i}", metric_name="request_count",
                                       condition="gte", threshold=0, window_minutes=5, cooldown_minutes=60))
        before = len(hook.requests)
        started = time.perf_counter()
        transitions = manager.evaluate_rules(now)
        elapsed = time.perf_counter() - started
        hook.wait_for(before + n, timeout=30)
        sent = len(hook.requests) - before
        for rule in manager.list_rules():
            manager.delete_rule(rule.rule_id)
    print(f"webhook channel to a local receiver: {raw:,.0f} notifications/s (send alone, {n} sends)")
    print(f"  through the rule engine (transition + POST + notification row): {len(transitions) / elapsed:,.0f} "
          f"notifications/s ({sent} received)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--rules", type=int, default=50)
    parser.add_argument("--notifications", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--db", type=Path, help="SQLite file to seed or reuse")
    args = parser.parse_args()
    logging.getLogger("llmobs").setLevel(logging.WARNING)
    path = args.db or ROOT / "data" / f"bench_alerts_{args.spans}.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    url, now = prepare(path, args.spans, dt.datetime.now(UTC).replace(microsecond=0))
    bench_tick(url, now, args.rules, args.repeats)
    bench_notifications(url, now, args.notifications)


if __name__ == "__main__":
    main()
