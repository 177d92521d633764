"""Time of the analytics queries on 1,000,000 generation spans over 30 days, on SQLite and PostgreSQL.

Loads the data with tests/support/seed.py's generator (five models, 2% errors, ~120 characters of input and output
per span) into a temporary SQLite file and a temporary PostgreSQL schema, both removed at the end, then prints the
best and median of ``--repeat`` runs of each query: with the schema as shipped, then with the indexes proposed in
docs/monitoring.md. Also times ``PerformanceTracker.track_request``.

Run: python benchmarks/bench_queries.py [--spans N] [--engines sqlite,postgres] [--repeat 5]
PostgreSQL is used when LLMOBS_TEST_POSTGRES_URL (or --pg-url) is set.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
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

from llmobs import analytics  # noqa: E402
from llmobs.monitoring import PerformanceTracker  # noqa: E402
from llmobs.store.db import ensure_schema, make_engine  # noqa: E402
from tests.support.databases import create_pg_schema, drop_pg_schema  # noqa: E402
from tests.support.seed import add_proposed_indexes, generate_spans, seed  # noqa: E402

UTC = dt.timezone.utc
START = dt.datetime(2024, 1, 1, tzinfo=UTC)
TARGET_MS = 500.0


def queries(days: float) -> list[tuple[str, Callable[[Engine], Any]]]:
    """The measured calls: whole-range figures, a minute series over the last day, an hourly series over all."""
    end = START + dt.timedelta(days=days)
    last_day = end - dt.timedelta(hours=24)
    series = ["requests", "errors", "error_rate", "latency_avg", "tokens", "cost", "quality"]
    return [
        ("overview (whole range)", lambda e: analytics.overview(START, end, engine=e)),
        ("timeseries 1m buckets / 24h", lambda e: analytics.timeseries(series, last_day, end, bucket="1m", engine=e)),
        ("timeseries 1h buckets / 30d", lambda e: analytics.timeseries(series, START, end, bucket="1h", engine=e)),
        ("model_comparison (whole range)", lambda e: analytics.model_comparison(START, end, engine=e)),
        ("percentile p95 (whole range)", lambda e: analytics.percentile("latency", 0.95, START, end, engine=e)),
        ("  extra: timeseries p95 1h / 30d",
         lambda e: analytics.timeseries("latency_p95", START, end, bucket="1h", engine=e)),
        ("  extra: error_breakdown", lambda e: analytics.error_breakdown(START, end, engine=e)),
        ("  extra: overview of one model", lambda e: analytics.overview(START, end, model="gpt-4o", engine=e)),
    ]


def time_queries(engine: Engine, days: float, repeat: int) -> list[tuple[str, float, float]]:
    """(name, best ms, median ms) per query; the first run warms caches and is not counted."""
    out = []
    for name, call in queries(days):
        call(engine)
        runs = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            call(engine)
            runs.append((time.perf_counter() - t0) * 1000)
        out.append((name, min(runs), statistics.median(runs)))
    return out


def load(engine: Engine, n: int, days: float, payload: int) -> float:
    """Bulk-insert the dataset (Core executemany on SQLite, COPY on PostgreSQL); returns seconds."""
    ensure_schema(engine)
    t0 = time.perf_counter()
    if engine.dialect.name == "sqlite":
        with engine.begin() as conn:  # loading only: the file is thrown away afterwards
            conn.execute(text("PRAGMA synchronous=OFF"))
    seed(engine, generate_spans(n, START, days, payload_chars=payload), chunk_size=50_000)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE spans"))
            conn.execute(text("VACUUM ANALYZE traces"))
    return time.perf_counter() - t0


def report(label: str, rows: list[tuple[str, float, float]]) -> None:
    print(f"\n{label}")
    print(f"  {'query':<36}{'best ms':>10}{'median ms':>11}")
    for name, best, median in rows:
        flag = "" if name.startswith("  extra") else ("  ok" if best < TARGET_MS else "  over 500 ms")
        print(f"  {name:<36}{best:>10.1f}{median:>11.1f}{flag}")


def bench_engine(kind: str, url: str, args: argparse.Namespace) -> None:
    engine = make_engine(url)
    try:
        seconds = load(engine, args.spans, args.days, args.payload_chars)
        print(f"\n{kind}: loaded {args.spans:,} spans in {seconds:.0f} s")
        report(f"{kind}, schema as shipped", time_queries(engine, args.days, args.repeat))
        t0 = time.perf_counter()
        add_proposed_indexes(engine)
        if kind == "postgres":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE spans"))
        report(f"{kind}, with the proposed indexes (built in {time.perf_counter() - t0:.0f} s)",
               time_queries(engine, args.days, args.repeat))
    finally:
        engine.dispose()


def bench_write_cost(n: int) -> None:
    """What the proposed indexes cost the writer: SQLite inserts of ``n`` spans in batches of 2,000 (as the writer
    batches), driver-level executemany of ready rows, into an empty file with and without them."""
    import json as _json

    rows = list(generate_spans(n, START, 1, payload_chars=120))
    columns = [c for c in rows[0] if c not in ("user_id", "session_id", "tags")]
    sql = f"INSERT INTO spans ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
    tuples = [tuple(r[c].strftime("%Y-%m-%d %H:%M:%S.%f") if c in ("start_time", "end_time")
                    else _json.dumps(r[c]) if c == "metadata" and r[c] is not None else r[c] for c in columns)
              for r in rows]
    for proposed in (False, True):
        with tempfile.TemporaryDirectory(prefix="llmobs-bench-") as tmp:
            engine = make_engine(f"sqlite:///{tmp}/w.db")
            ensure_schema(engine)
            if proposed:
                add_proposed_indexes(engine)
            t0 = time.perf_counter()
            for i in range(0, n, 2000):
                with engine.begin() as conn:
                    conn.exec_driver_sql(sql, tuples[i:i + 2000])
            us = (time.perf_counter() - t0) / n * 1e6
            engine.dispose()
        label = "with the proposed indexes" if proposed else "schema as shipped      "
        print(f"  SQLite insert, {label}: {us:.1f} us per span")


def bench_tracker(calls: int) -> None:
    """track_request per call with three models and anomaly detection on (defaults: 1000 points, 15 min)."""
    rng = random.Random(3)
    points = [(f"model-{i % 3}", 800 * rng.lognormvariate(0, 0.25), rng.randint(100, 900), rng.random() > 0.02,
               rng.uniform(0.001, 0.01), rng.uniform(0.7, 0.95)) for i in range(calls)]
    best = float("inf")
    for _ in range(3):
        tracker = PerformanceTracker()
        t0 = time.perf_counter_ns()
        for p in points:
            tracker.track_request(*p)
        best = min(best, (time.perf_counter_ns() - t0) / calls / 1000)
    print(f"\nPerformanceTracker.track_request: {best:.2f} us per call (best of 3 x {calls:,} calls; target 20 us)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--engines", default="sqlite,postgres")
    parser.add_argument("--pg-url", default=os.environ.get("LLMOBS_TEST_POSTGRES_URL"))
    parser.add_argument("--payload-chars", type=int, default=120)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--tracker-calls", type=int, default=200_000)
    parser.add_argument("--write-spans", type=int, default=200_000, help="spans for the insert-cost measure; 0 skips")
    args = parser.parse_args()
    print(f"bench_queries: {args.spans:,} generation spans over {args.days:g} days; {os.cpu_count()} CPUs; "
          f"load average {os.getloadavg()[0]:.1f}")
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    if "sqlite" in engines:
        with tempfile.TemporaryDirectory(prefix="llmobs-bench-") as tmp:
            bench_engine("sqlite", f"sqlite:///{tmp}/bench.db", args)
    if "postgres" in engines:
        if not args.pg_url:
            print("\npostgres: skipped (set LLMOBS_TEST_POSTGRES_URL or --pg-url)")
        else:
            schema, url = create_pg_schema(args.pg_url)
            try:
                bench_engine("postgres", url, args)
            finally:
                from llmobs.store.db import dispose_engine

                dispose_engine(url)
                drop_pg_schema(args.pg_url, schema)
    if args.write_spans:
        print(f"\nwriter cost of the proposed indexes ({args.write_spans:,} spans):")
        bench_write_cost(args.write_spans)
    bench_tracker(args.tracker_calls)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
