"""Time of each dashboard tab's refresh callback (what a page load or a filter change costs) on a seeded SQLite file.

Seeds ``--spans`` generation spans spread over the 30 days up to now (tests/support/seed.py's generator) into a
temporary SQLite file, then prints the best and median of ``--repeat`` runs of every tab callback for the 24-hour
and 30-day ranges, and the same figures for the traces list's page 1 and a deep page.

Run: python benchmarks/bench_dashboard.py [--spans 200000] [--repeat 3]
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

from llmobs.store.db import ensure_schema, make_engine  # noqa: E402
from llmobs.ui.state import AppContext  # noqa: E402
from llmobs.ui.tabs import errors, evaluations, models, overview, performance, review, traces  # noqa: E402
from tests.support.seed import generate_spans, seed  # noqa: E402

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
        ]
    out += [("traces page 200 30d", lambda: traces.trace_page(ctx, "Last 30 days", page=200)),
            ("traces search 30d", lambda: traces.trace_page(ctx, "Last 30 days", search="user-42-")),
            ("open trace", lambda: traces.open_trace(ctx, trace_id)),
            ("review next item", lambda: review.next_item(ctx))]
    return out


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
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{Path(folder) / 'bench.db'}")
        ensure_schema(engine)
        now = dt.datetime.now(UTC)
        rows = list(generate_spans(args.spans, now - dt.timedelta(days=30), days=30))
        t0 = time.perf_counter()
        seed(engine, rows)
        print(f"seeded {args.spans:,} spans in {time.perf_counter() - t0:.1f} s (SQLite)")
        ctx = AppContext(engine=engine, auto_refresh_seconds=0)
        print(f"{'callback':<24} {'best ms':>10} {'median ms':>10}")
        for name, fn in callbacks(ctx, rows[-1]["trace_id"]):
            best, median = time_call(fn, args.repeat)
            print(f"{name:<24} {best:>10.1f} {median:>10.1f}")
        engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
