"""Time of each dashboard tab's refresh callback (what a page load or a filter change costs) on SQLite and PostgreSQL.

Seeds ``--spans`` generation spans spread over the 30 days up to now (tests/support/seed.py's generator: 1,000
users, sessions, every trace tagged "bench", span source "seed") into a temporary SQLite file and, when a server is
given, a temporary PostgreSQL schema (analysed after loading, as autovacuum would), with heuristic scores (seven
metrics) for ``--scored`` of them, a human rating and thumbs for ``--reviewed`` of those, and ``--alerts`` alerts of
50 rules (each with two delivery attempts) over the same 30 days. Then prints the best and median of ``--repeat``
runs of every tab callback for the 24-hour and 30-day ranges: unfiltered, then with each filter of the filter row
(model, user, session, tag, source; the tag and the source match every span, the worst case), the traces list's
page 1 and a deep page, the review queue with filters and a quality threshold, the alert history and the channels
list, and the queries a run of the evaluators starts with (how many spans await a score, the first page of them).
Rows over the 2-second target are flagged.

Run: python benchmarks/bench_dashboard.py [--spans 200000] [--scored 10000] [--reviewed 1000] [--alerts 20000]
     [--repeat 3] [--engines sqlite,postgres] [--no-filters]
PostgreSQL is used when LLMOBS_TEST_POSTGRES_URL (or --pg-url) is set.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402

import llmobs  # noqa: E402
from llmobs import analytics  # noqa: E402
from llmobs.alerts.store import AlertStore  # noqa: E402
from llmobs.store.db import ensure_schema, make_engine  # noqa: E402
from llmobs.ui.state import AppContext  # noqa: E402
from llmobs.ui.tabs import (  # noqa: E402
    alert_channels, alert_history, errors, evaluations, models, overview, performance, review, traces,
)
from tests.support.databases import create_pg_schema, drop_pg_schema  # noqa: E402
from tests.support.seed import alert_row, evaluation, generate_spans, seed, seed_alerts, seed_evaluations  # noqa: E402

UTC = dt.timezone.utc
TARGET_MS = 2000.0
RANGES = {"24h": "Last 24 hours", "30d": "Last 30 days"}
# The filter row's boxes after the range (model, user, session, tag, source), one filter at a time.
FILTERS = {"model": ("gpt-4o",), "user": ("", "user-42"), "session": ("", "", "user-42-s3"),
           "tag": ("", "", "", "bench"), "source": ("", "", "", "", "seed")}
FILTERED_TABS: dict[str, Callable[..., Any]] = {"overview": overview.refresh, "performance": performance.refresh,
                                                "models": models.refresh, "errors": errors.refresh,
                                                "traces page 1": traces.trace_page,
                                                "review next item": review.load_item}


def filtered_callbacks(ctx: AppContext) -> list[tuple[str, Callable[[], Any]]]:
    """Every tab with the shared filter row, under each filter, plus the review queue's quality threshold and the
    model box of the evaluations summary and of the agreement."""
    out: list[tuple[str, Callable[[], Any]]] = []
    for short, label in RANGES.items():
        for name, values in FILTERS.items():
            out += [(f"{tab} {short} {name}", lambda fn=fn, label=label, values=values: fn(ctx, label, *values))
                    for tab, fn in FILTERED_TABS.items()]
        out += [(f"review next item {short} quality<0.3",
                 lambda label=label: review.load_item(ctx, label, "", "", "", "", "", "0.3")),
                (f"review next item {short} quality<0",  # nothing scores that low: the whole queue is searched
                 lambda label=label: review.load_item(ctx, label, "", "", "", "", "", "0")),
                (f"evaluations {short} model", lambda label=label: evaluations.refresh(ctx, label, "gpt-4o")),
                (f"review agreement {short} model", lambda label=label: review.agreement(ctx, label, "gpt-4o"))]
    return out


def callbacks(ctx: AppContext, trace_id: str) -> list[tuple[str, Callable[[], Any]]]:
    """The measured callbacks without filters, named as the table prints them."""
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
            ("review next item 30d", lambda: review.load_item(ctx)),
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


def bench_engine(engine: Engine, args: argparse.Namespace) -> None:
    """Seed ``engine`` and print the table of callback times."""
    name = engine.dialect.name
    ensure_schema(engine)
    now = dt.datetime.now(UTC)
    rows = list(generate_spans(args.spans, now - dt.timedelta(days=30), days=30))
    t0 = time.perf_counter()
    seed(engine, rows)
    seed_alert_history(engine, args.alerts, now)
    print(f"\n{name}: seeded {args.spans:,} spans and {args.alerts:,} alerts in {time.perf_counter() - t0:.1f} s")
    n, scored, reviewed = seed_scores(engine, rows, args.scored, args.reviewed)
    print(f"{name}: seeded {n:,} evaluation rows ({scored:,} spans scored, {reviewed:,} of them reviewed)")
    if name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in ("spans", "traces", "evaluations", "alerts", "alert_notifications"):
                conn.execute(text(f"VACUUM ANALYZE {table}"))
    ctx = AppContext(engine=engine, auto_refresh_seconds=0)
    measured = callbacks(ctx, rows[-1]["trace_id"]) + (filtered_callbacks(ctx) if args.filters else [])
    del rows
    print(f"{'callback':<36} {'best ms':>10} {'median ms':>10}")
    over = []
    for label, fn in measured:
        best, median = time_call(fn, args.repeat)
        flag = "  over 2 s" if best > TARGET_MS else ""
        if flag:
            over.append(label)
        print(f"{label:<36} {best:>10.1f} {median:>10.1f}{flag}", flush=True)
    print(f"{name}: {len(measured) - len(over)} of {len(measured)} callbacks under {TARGET_MS / 1000:.0f} s"
          + (f"; over: {', '.join(over)}" if over else ""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spans", type=int, default=200_000)
    parser.add_argument("--scored", type=int, default=10_000)
    parser.add_argument("--reviewed", type=int, default=1_000)
    parser.add_argument("--alerts", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--engines", default="sqlite,postgres")
    parser.add_argument("--pg-url", default=os.environ.get("LLMOBS_TEST_POSTGRES_URL"))
    parser.add_argument("--no-filters", dest="filters", action="store_false", help="time the unfiltered tabs only")
    args = parser.parse_args()
    llmobs.configure(alerts__channels={"console": {"type": "log"}, "pager": {"type": "log"}})
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    if "sqlite" in engines:
        with tempfile.TemporaryDirectory() as folder:
            engine = make_engine(f"sqlite:///{Path(folder) / 'bench.db'}")
            try:
                bench_engine(engine, args)
            finally:
                engine.dispose()
    if "postgres" in engines:
        if not args.pg_url:
            print("\npostgresql: skipped (set LLMOBS_TEST_POSTGRES_URL or --pg-url)")
        else:
            schema, url = create_pg_schema(args.pg_url)
            engine = make_engine(url)
            try:
                bench_engine(engine, args)
            finally:
                engine.dispose()
                drop_pg_schema(args.pg_url, schema)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
