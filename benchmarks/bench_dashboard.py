"""Time of each dashboard tab's refresh callback (what a page load or a filter change costs) on a seeded SQLite file.

Seeds ``--spans`` generation spans spread over the 30 days up to now (tests/support/seed.py's generator) into a
temporary SQLite file, with heuristic scores (seven metrics) for ``--scored`` of them and a human rating and thumbs
for ``--reviewed`` of those, and ``--alerts`` alerts of 50 rules (each with two delivery attempts) over the same 30
days, then prints the best and median of ``--repeat`` runs of every tab callback for the 24-hour and 30-day ranges,
the same figures for the traces list's page 1 and a deep page, the alert history and the channels list, and the
queries a run of the evaluators starts with (how many spans await a score, the first page of them).

Run: python benchmarks/bench_dashboard.py [--spans 200000] [--scored 10000] [--reviewed 1000] [--alerts 20000]
     [--repeat 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import llmobs  # noqa: E402
from llmobs import analytics  # noqa: E402
from llmobs.alerts.store import AlertStore  # noqa: E402
from llmobs.store.db import ensure_schema, make_engine  # noqa: E402
from llmobs.ui.state import AppContext  # noqa: E402
from llmobs.ui.tabs import (  # noqa: E402
    alert_channels, alert_history, errors, evaluations, models, overview, performance, review, traces,
)
from tests.support.seed import alert_row, evaluation, generate_spans, seed, seed_alerts, seed_evaluations  # noqa: E402

UTC = dt.timezone.utc


def callbacks(ctx: AppContext, trace_id: str) -> list[tuple[str, Callable[[], Any]]]:
    """The measured callbacks, named as the table prints them."""
    out: list[tuple[str, Callable[[], Any]]] = []
    for label in ("Last 24 hours", "Last 30 days"):
        short = "24h" if "24" in label else "30d"
        out += [
            (f"overview {short}", lambda label=label: overview.refresh(ctx, label)),
            (f"performance {short}", lambda label=label: performance.refresh(ctx, label)),
            (f"models {short}", lambda label=label: models.refresh(ctx, label)),
            (f"errors {short}", lambda label=label: errors.refresh(ctx, label)),
            (f"traces page 1 {short}", lambda label=label: traces.trace_page(ctx, label)),
            (f"evaluations {short}", lambda label=label: evaluations.refresh(ctx, label)),
            (f"evaluations spans {short}", lambda label=label: evaluations.span_choices(ctx, label)),
            (f"review agreement {short}", lambda label=label: review.agreement(ctx, label)),
            (f"alert history {short}", lambda label=label: alert_history.refresh(ctx, label)),
        ]
    out += [("traces page 200 30d", lambda: traces.trace_page(ctx, "Last 30 days", page=200)),
            ("traces search 30d", lambda: traces.trace_page(ctx, "Last 30 days", search="user-42-")),
            ("open trace", lambda: traces.open_trace(ctx, trace_id)),
            ("review next item", lambda: review.next_item(ctx)),
            ("alert history rule 30d", lambda: alert_history.refresh(ctx, "Last 30 days", "rule-7", "All", "resolved")),
            ("alert channels", lambda: alert_channels.refresh(ctx))]
    month = analytics.Filters(start=analytics.since("30d"))
    out += [("run: awaiting score 30d", lambda: analytics.evaluation_coverage("heuristic-1", month,
                                                                              engine=ctx.engine)),
            ("run: first page 30d", lambda: analytics.unscored_spans("heuristic-1", month, engine=ctx.engine))]
    return out


def seed_scores(engine: Any, rows: list[dict[str, Any]], scored: int, reviewed: int) -> tuple[int, int, int]:
    """Heuristic scores for ``scored`` finished spans spread over the range, a human rating and thumbs for
    ``reviewed`` of them; returns (evaluation rows, spans scored, spans reviewed)."""
    finished = [r for r in rows if r["status"] == "ok"]
    chosen = finished[:: max(1, len(finished) // max(scored, 1))][:scored]
    judged = chosen[:: max(1, len(chosen) // max(reviewed, 1))][:reviewed]
    metrics = ("quality", "relevance", "coherence", "accuracy", "toxicity", "bias", "hallucination")
    scores = [evaluation(r, m, ((i * 37 + j * 11) % 100) / 100, source="heuristic", evaluator_version="heuristic-1")
              for i, r in enumerate(chosen) for j, m in enumerate(metrics)]
    for i, r in enumerate(judged):
        scores += [evaluation(r, "human_rating", 1 + i % 5, source="human"),
                   evaluation(r, "human_thumbs", float(i % 3 != 0), source="human")]
    return seed_evaluations(engine, scores), len(chosen), len(judged)


def seed_alert_history(engine: Any, n: int, now: dt.datetime) -> None:
    """``n`` resolved alerts of 50 rules spread over 30 days (10 minutes each), two delivery attempts per alert."""
    step = dt.timedelta(days=30) / max(n, 1)
    rows = [alert_row(f"rule-{i % 50}", now - dt.timedelta(days=30) + i * step,
                      now - dt.timedelta(days=30) + i * step + dt.timedelta(minutes=10),
                      severity=("info", "warning", "critical")[i % 3]) for i in range(n)]
    seed_alerts(engine, rows)
    AlertStore(engine).add_notifications([
        {"alert_id": r["id"], "rule_id": r["rule_id"], "channel": channel, "channel_type": "log", "state": state,
         "status": "sent", "attempts": 1, "idempotency_key": f"{r['id']}:{state}", "created_at": r["fired_at"]}
        for r in rows for channel, state in (("console", "firing"), ("pager", "resolved"))])


def time_call(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """(best, median) wall time in milliseconds."""
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - t0) * 1000)
    return min(runs), statistics.median(runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spans", type=int, default=200_000)
    parser.add_argument("--scored", type=int, default=10_000)
    parser.add_argument("--reviewed", type=int, default=1_000)
    parser.add_argument("--alerts", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{Path(folder) / 'bench.db'}")
        ensure_schema(engine)
        now = dt.datetime.now(UTC)
        rows = list(generate_spans(args.spans, now - dt.timedelta(days=30), days=30))
        t0 = time.perf_counter()
        seed(engine, rows)
        seed_alert_history(engine, args.alerts, now)
        print(f"seeded {args.spans:,} spans and {args.alerts:,} alerts in {time.perf_counter() - t0:.1f} s (SQLite)")
        n, scored, reviewed = seed_scores(engine, rows, args.scored, args.reviewed)
        print(f"seeded {n:,} evaluation rows ({scored:,} spans scored, {reviewed:,} of them reviewed)")
        llmobs.configure(alerts__channels={"console": {"type": "log"}, "pager": {"type": "log"}})
        ctx = AppContext(engine=engine, auto_refresh_seconds=0)
        print(f"{'callback':<24} {'best ms':>10} {'median ms':>10}")
        for name, fn in callbacks(ctx, rows[-1]["trace_id"]):
            best, median = time_call(fn, args.repeat)
            print(f"{name:<24} {best:>10.1f} {median:>10.1f}")
        engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
