"""Per-call cost of @observe against a minimal reference decorator, measured in the same run.

The reference does the least any tracer must: two perf_counter_ns reads, a contextvar set/reset and a
SimpleQueue.put. Spans go to an in-memory exporter so the database is not part of the figure.
Run: python benchmarks/bench_overhead.py [--calls N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import functools
import gc
import queue
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import llmobs  # noqa: E402
from llmobs.pipeline import InMemoryExporter  # noqa: E402

_ref_var: contextvars.ContextVar[Any] = contextvars.ContextVar("ref", default=None)
_ref_queue: queue.SimpleQueue[Any] = queue.SimpleQueue()


def reference(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The minimal tracer: two clock reads, a contextvar set/reset, one queue put."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter_ns()
        token = _ref_var.set(start)
        try:
            return fn(*args, **kwargs)
        finally:
            _ref_var.reset(token)
            _ref_queue.put((start, time.perf_counter_ns()))
    return wrapper


def reference_async(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The async twin of ``reference``."""
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter_ns()
        token = _ref_var.set(start)
        try:
            return await fn(*args, **kwargs)
        finally:
            _ref_var.reset(token)
            _ref_queue.put((start, time.perf_counter_ns()))
    return wrapper


def bare(question: str, context: str) -> str:
    return question


async def abare(question: str, context: str) -> str:
    return question


def per_call_ns(fn: Callable[[], Any], calls: int) -> float:
    """Best of 5 rounds of ``calls`` calls, in ns per call; drains queues between rounds."""
    best = float("inf")
    for _ in range(5):
        gc.collect()
        start = time.perf_counter_ns()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter_ns() - start) / calls)
        drain()
    return best


def drain() -> None:
    while not _ref_queue.empty():
        _ref_queue.get_nowait()
    llmobs.flush()


def nested(decorator: Callable[..., Any], depth: int) -> Callable[[], Any]:
    fn: Callable[..., Any] = decorator(bare)
    for _ in range(depth - 1):
        inner = fn
        fn = decorator(lambda q, c, _inner=inner: _inner(q, c))
    return lambda: fn("what is observability?", "short context")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=20000)
    args = parser.parse_args()
    calls = args.calls
    exporter = InMemoryExporter()
    llmobs.configure(exporters=[exporter], queue_size=10_000_000, batch_size=5000)

    q, c = "what is observability?", "short context"
    observed = llmobs.observe(bare)
    ref = reference(bare)
    t_bare = per_call_ns(lambda: bare(q, c), calls)
    t_ref = per_call_ns(lambda: ref(q, c), calls)
    t_obs = per_call_ns(lambda: observed(q, c), calls)

    aobserved = llmobs.observe(abare)
    aref = reference_async(abare)

    def run_async(fn: Callable[..., Any]) -> Callable[[], Any]:
        async def loop() -> None:
            for _ in range(calls):
                await fn(q, c)
        return lambda: asyncio.run(loop())

    def per_async(fn: Callable[..., Any]) -> float:
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter_ns()
            run_async(fn)()
            best = min(best, (time.perf_counter_ns() - start) / calls)
            drain()
        return best

    ta_bare, ta_ref, ta_obs = per_async(abare), per_async(aref), per_async(aobserved)
    depth = 10
    t10_bare = per_call_ns(nested(lambda f: f, depth), calls // depth)
    t10_ref = per_call_ns(nested(reference, depth), calls // depth)
    t10_obs = per_call_ns(nested(llmobs.observe, depth), calls // depth)

    llmobs.configure(enabled=False)
    disabled = llmobs.observe(bare)
    t_disabled = per_call_ns(lambda: disabled(q, c), calls)
    llmobs.configure(enabled=True)

    print(f"calls per round: {calls} (best of 5 rounds); spans recorded in memory: {len(exporter.rows)}")
    print(f"{'case':<28}{'bare ns':>10}{'reference ns':>14}{'observe ns':>12}{'ref overhead':>14}"
          f"{'obs overhead':>14}{'ratio':>8}")
    for label, b, r, o in (("sync, 2 str args", t_bare, t_ref, t_obs), ("async, 2 str args", ta_bare, ta_ref, ta_obs),
                           (f"sync nested {depth}-deep /call", t10_bare / depth, t10_ref / depth, t10_obs / depth)):
        ref_over, obs_over = r - b, o - b
        print(f"{label:<28}{b:>10.0f}{r:>14.0f}{o:>12.0f}{ref_over:>14.0f}{obs_over:>14.0f}"
              f"{obs_over / ref_over:>7.2f}x")
    print(f"{'sync, llmobs disabled':<28}{t_bare:>10.0f}{'':>14}{t_disabled:>12.0f}{'':>14}{t_disabled - t_bare:>14.0f}")
    print("target: observe overhead <= 4x the reference decorator's overhead")


if __name__ == "__main__":
    main()
