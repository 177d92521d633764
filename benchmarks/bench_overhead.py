"""Per-call cost of @observe against a minimal reference decorator, measured in the same run.

The reference does the least any tracer must: two perf_counter_ns reads, a contextvar set/reset and a
SimpleQueue.put, and nobody consumes its queue. To compare like with like, llmobs's writer is held back while a round
runs and drains between rounds (into a real SQLite file), so "observe overhead" is what the calling thread pays;
the writer's own cost per span is printed separately: with the GIL, a tight loop of calls pays it too.
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
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import llmobs  # noqa: E402
from llmobs.pipeline import current_pipeline  # noqa: E402

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


clock = time.thread_time_ns  # CPU time of this thread: robust when other processes share the two cores


ROUNDS = 40


def per_call_ns(fn: Callable[[], Any], calls: int) -> float:
    """Best of ROUNDS rounds of ``calls`` calls, in thread-CPU ns per call; drains queues between rounds.

    Rounds are short (a few thousand calls) so the held-back queue stays as small as the writer keeps it in
    normal running; a queue of tens of thousands of live spans would bill the garbage collector to the caller.
    """
    best = float("inf")
    for _ in range(ROUNDS):
        gc.collect()
        start = clock()
        for _ in range(calls):
            fn()
        best = min(best, (clock() - start) / calls)
        drain()
    return best


WRITER_NS: list[float] = []


def drain() -> None:
    """Empty the reference queue and let llmobs's writer persist what the round queued (timed)."""
    while not _ref_queue.empty():
        _ref_queue.get_nowait()
    pipe = current_pipeline()
    queued = len(pipe.queue)
    start = time.perf_counter_ns()
    llmobs.flush()
    if queued >= 500:
        WRITER_NS.append((time.perf_counter_ns() - start) / queued)


def nested(decorator: Callable[..., Any], depth: int) -> Callable[[], Any]:
    fn: Callable[..., Any] = decorator(bare)
    for _ in range(depth - 1):
        inner = fn
        fn = decorator(lambda q, c, _inner=inner: _inner(q, c))
    return lambda: fn("what is observability?", "short context")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000, help="calls per round")
    args = parser.parse_args()
    calls = args.calls
    tmp = tempfile.mkdtemp()
    llmobs.configure(database_url=f"sqlite:///{tmp}/overhead.db", queue_size=10_000_000, batch_size=5000,
                     flush_interval_seconds=3600)
    with llmobs.span("warmup"):
        pass
    llmobs.flush()
    current_pipeline().wake_at = 10**12  # hold the writer back during a round; drain() flushes between rounds

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
        for _ in range(ROUNDS):
            start = clock()
            run_async(fn)()
            best = min(best, (clock() - start) / calls)
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

    print(f"calls per round: {calls} (best of {ROUNDS} rounds, thread CPU time); spans written: {llmobs.stats()['written']}")
    print(f"{'case':<28}{'bare ns':>10}{'reference ns':>14}{'observe ns':>12}{'ref overhead':>14}"
          f"{'obs overhead':>14}{'ratio':>8}")
    for label, b, r, o in (("sync, 2 str args", t_bare, t_ref, t_obs), ("async, 2 str args", ta_bare, ta_ref, ta_obs),
                           (f"sync nested {depth}-deep /call", t10_bare / depth, t10_ref / depth, t10_obs / depth)):
        ref_over, obs_over = r - b, o - b
        print(f"{label:<28}{b:>10.0f}{r:>14.0f}{o:>12.0f}{ref_over:>14.0f}{obs_over:>14.0f}"
              f"{obs_over / ref_over:>7.2f}x")
    print(f"{'sync, llmobs disabled':<28}{t_bare:>10.0f}{'':>14}{t_disabled:>12.0f}{'':>14}{t_disabled - t_bare:>14.0f}")
    print(f"writer (snapshot -> SQLite row, on the background thread): {min(WRITER_NS) / 1000:.1f} us per span "
          f"(median {sorted(WRITER_NS)[len(WRITER_NS) // 2] / 1000:.1f})")
    print("target: observe overhead <= 4x the reference decorator's overhead")


if __name__ == "__main__":
    main()
