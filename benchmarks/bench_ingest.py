"""Spans persisted per second into SQLite and PostgreSQL, and memory while the database is unreachable.

Three ingest figures: end to end (a burst of @observe calls as fast as one thread can make them, then flush:
the queue holds them all, and the garbage collector walking that queue costs the caller a fifth of the time), writer
alone (finished spans drained), and sustained (calls offered at steady, rising rates until the writer falls
behind: what a service can record indefinitely).

Run: python benchmarks/bench_ingest.py [--spans N] [--down-calls N] [--preload N] [--sustained-from N]
PostgreSQL is measured when LLMOBS_TEST_POSTGRES_URL is set (in a temporary schema that is dropped afterwards).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Code shared by the scripts below (each runs in its own interpreter).
PREBUILT = """
import random
from llmobs.context import SpanRecord, TraceState, new_trace_id

def prebuilt(n, per_trace):
    # finished generation spans: a root per trace with per_trace - 1 children (per_trace=0: all in one trace),
    # with durations spread like real calls (median ~0.7 s): equal durations would make every insert into an index
    # holding the duration an append, which no real workload gets
    durations = random.Random(n * 7 + per_trace)
    records = []
    trace = TraceState(new_trace_id(), True)
    root = None
    for i in range(n):
        if per_trace and i % per_trace == 0:
            trace, root = TraceState(new_trace_id(), True), None
        r = SpanRecord("prebuilt", "generation", trace, None if root is None else root.span_id, "observe")
        if per_trace and root is None:
            r.is_root, root = True, r
        r.arg_values, r.arg_names = ("what is the capital of France?",), ("prompt",)
        r.output = "Paris"
        r.model_name = "gpt-4o-mini"; r.provider = "openai"; r.prompt_tokens = 40; r.completion_tokens = 12
        r.perf_end = r.perf_start + int(durations.lognormvariate(20.4, 1.0)); r.ended = True
        records.append(r)
    return records
"""

CALL = """
import llmobs

@llmobs.observe(kind="generation")
def call(prompt):
    llmobs.update_current_span(model_name="gpt-4o-mini", provider="openai", prompt_tokens=40, completion_tokens=12)
    return "an answer of a few words"
"""

INGEST = PREBUILT + CALL + """
import time
from llmobs.pipeline import current_pipeline
N = {n}
# a queue that holds every call: a span dropped while the caller outruns the writer must not count as ingested
llmobs.configure(database_url={url!r}, batch_size=5000, queue_size=max(N, 100_000))

def drain(records):
    # returns (spans per wall second, spans per CPU second of the writer thread: robust on a shared machine)
    p = current_pipeline()
    clock = time.pthread_getcpuclockid(p.thread.ident)
    start, cpu = time.perf_counter(), time.clock_gettime(clock)
    p.queue.extend(records)
    p.wake.set()
    llmobs.flush(3600)
    return len(records) / (time.perf_counter() - start), len(records) / (time.clock_gettime(clock) - cpu)

with llmobs.span("warmup"):
    pass
llmobs.flush()
for _ in range({preload} // 100_000):  # fill the file first: inserts into a large file cost more
    drain(prebuilt(100_000, 10))

# 1) end to end: @observe calls in the caller, writer persisting concurrently, until flush returns
written, start = llmobs.stats()["written"], time.perf_counter()
for i in range(N):
    call("what is the capital of France?")
llmobs.flush(3600)
e2e = (llmobs.stats()["written"] - written) / (time.perf_counter() - start)

# 2) writer alone: records already finished, measure only the drain into the database
rates = [drain(prebuilt(N, per_trace)) for per_trace in (1, 10, 0)]
print(f"{{e2e:.0f}}", " ".join(f"{{w:.0f}}/{{c:.0f}}" for w, c in rates), llmobs.stats()['dropped'])
"""

PACED = CALL + """
import time, llmobs
from llmobs.pipeline import current_pipeline
llmobs.configure(database_url={url!r})  # default batch_size and queue_size


with llmobs.span("warmup"):
    pass
llmobs.flush()
p = current_pipeline()

def paced(rate, seconds, tick=0.002):
    # rate/500 calls every 2 ms, sleeping to the next tick (as a service handling requests would leave gaps)
    per_tick = max(1, int(rate * tick))
    written, dropped = llmobs.stats()["written"], llmobs.stats()["dropped"]
    start = due = time.perf_counter()
    calls = peak = 0
    while time.perf_counter() - start < seconds:
        for _ in range(per_tick):
            call("what is the capital of France?")
        calls += per_tick
        peak = max(peak, len(p.queue))
        due += tick
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    elapsed = time.perf_counter() - start
    stats = llmobs.stats()
    lag = time.perf_counter()
    llmobs.flush(3600)
    return (calls / elapsed, (stats["written"] - written) / elapsed, peak, time.perf_counter() - lag,
            stats["dropped"] - dropped)

for rate in range({low}, {high} + 1, {step}):
    offered, written, peak, lag, dropped = paced(rate, {seconds})
    kept_up = not dropped and written >= 0.95 * offered and lag < 1.0
    print(f"{{rate}} {{offered:.0f}} {{written:.0f}} {{peak}} {{lag * 1000:.0f}} {{dropped}} {{int(kept_up)}}", flush=True)
    if not kept_up:
        break
"""

LATENCY = PREBUILT + """
import threading, time, llmobs
from llmobs.pipeline import current_pipeline
llmobs.configure(database_url={url!r})
with llmobs.span("warmup"):
    pass
llmobs.flush()

def app(late, stop):
    # an I/O-bound thread: 1 ms waits (the GIL let go), each wake-up late by the time it waited for the GIL
    while not stop:
        start = time.perf_counter()
        time.sleep(0.001)
        late.append(time.perf_counter() - start - 0.001)

def lateness(work):
    late, stop = [], []
    thread = threading.Thread(target=app, args=(late, stop))
    thread.start()
    work()
    stop.append(True)
    thread.join()
    late.sort()
    return [late[int(q * (len(late) - 1))] * 1000 for q in (0.5, 0.9, 0.99, 1.0)]

records = prebuilt({n}, 1)
pipe = current_pipeline()

def drain():
    pipe.queue.extend(records)
    pipe.wake.set()
    llmobs.flush(3600)

for work in (lambda: time.sleep(1.5), drain):
    print(" ".join(f"{{v:.2f}}" for v in lateness(work)))
"""

DOWN = """
import resource, time, llmobs
def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20
llmobs.configure(database_url="postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=1",
                 queue_size={queue}, shutdown_timeout_seconds=1)
@llmobs.observe(kind="generation")
def call(prompt):
    return "answer"
samples = []
start = time.perf_counter()
for i in range({calls}):
    call("a prompt of moderate length for the benchmark")
    if (i + 1) % ({calls} // 5) == 0:
        samples.append((i + 1, rss_mb()))
elapsed = time.perf_counter() - start
stats = llmobs.stats()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(" ".join(f"{{n}}:{{m:.0f}}" for n, m in samples), f"{{peak:.0f}}", stats["queued"], stats["dropped"],
      f"{{elapsed:.1f}}")
import os; os._exit(0)  # the database stays down: skip the exit flush, which would only wait and report loss
"""


def pricing_cost() -> str:
    """Nanoseconds the writer spends pricing one model span (fast linear path) and one compute_cost call."""
    import timeit

    from llmobs.context import SpanRecord, TraceState, new_trace_id
    from llmobs.pricing import compute_cost
    from llmobs.processors import price_processor

    record = SpanRecord("call", "generation", TraceState(new_trace_id(), True), None, "observe")
    record.model_name, record.provider = "gpt-4o-mini", "openai"
    record.prompt_tokens, record.completion_tokens = 40, 12

    def price() -> None:
        record.cost_usd = None
        price_processor(record)

    n = 100_000
    processor = min(timeit.repeat(price, number=n, repeat=5)) / n * 1e9
    direct = min(timeit.repeat(lambda: compute_cost("gpt-4o", 1000, 500, cached_tokens=100), number=n, repeat=5))
    return (f"pricing on the writer: {processor:.0f} ns per model span; "
            f"compute_cost with cached tokens {direct / n * 1e9:.0f} ns")


def run(code: str) -> str:
    """The last line the code prints, run in a fresh interpreter."""
    return run_lines(code)[-1]


def run_lines(code: str) -> list[str]:
    """Every line the code prints, run in a fresh interpreter in a temporary folder."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory() as cwd:
        proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=1800)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    return proc.stdout.strip().splitlines()


def sustained(url: str, low: int, high: int, step: int, seconds: float) -> None:
    """Offer @observe calls at rising steady rates until the writer no longer keeps up; print each step."""
    print(f"\nsustained, SQLite: @observe calls at a steady rate for {seconds:g} s each (default batch_size and "
          "queue_size),\nrising until the writer falls behind: a drop, under 95% written during the window, or a "
          "backlog left at its end\nthat takes a second or more to write (the queue peak shows stalls it recovered "
          "from: a full garbage collection\nstops every thread for tens of milliseconds)")
    best = 0
    for line in run_lines(PACED.format(url=url, low=low, high=high, step=step, seconds=seconds)):
        rate, offered, written, peak, lag, dropped, kept_up = line.split()
        verdict = "kept up" if kept_up == "1" else "fell behind"
        print(f"  {int(rate):>7,}/s: offered {int(offered):>7,}/s  written in the window {int(written):>7,}/s  queue "
              f"peak {int(peak):>7,}  left over written in {int(lag):>5,} ms  dropped {int(dropped):,}  {verdict}")
        if kept_up == "1":
            best = int(rate)
    print(f"  highest steady rate kept up: {f'{best:,} spans/s' if best else 'none of those tried'} "
          "(target: >= 50,000)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spans", type=int, default=200_000)
    parser.add_argument("--down-calls", type=int, default=1_000_000)
    parser.add_argument("--queue-size", type=int, default=100_000)
    parser.add_argument("--preload", type=int, default=0, help="spans written before measuring (multiple of 100k)")
    parser.add_argument("--sustained-from", type=int, default=40_000, help="first steady rate tried (spans/s)")
    parser.add_argument("--sustained-seconds", type=float, default=10.0, help="seconds per steady rate")
    parser.add_argument("--latency-spans", type=int, default=100_000, help="queued spans drained while timing")
    args = parser.parse_args()

    preload = f"; file holding {args.preload:,} spans first" if args.preload else ""
    print(f"ingest of {args.spans:,} generation spans, spans/s{preload}. end to end = @observe calls and the writer "
          "sharing one process until flush returns;\nwriter alone = finished spans drained into the database, "
          "with a trace per span / 10 spans per trace / one trace for all")

    def line(label: str, url: str) -> None:
        e2e, *writer, dropped = run(INGEST.format(url=url, n=args.spans, preload=args.preload)).split()
        wall = " / ".join(f"{int(w.split('/')[0]):>7,}" for w in writer)
        cpu = " / ".join(f"{int(w.split('/')[1]):>7,}" for w in writer)
        print(f"  {label:<11} end to end {int(e2e):>7,}/s   writer alone, wall {wall}/s   dropped {dropped}\n"
              f"  {'':<11} {'':<22}   writer alone, CPU  {cpu}/s (spans per CPU second of the writer thread)")

    with tempfile.TemporaryDirectory() as tmp:
        line("SQLite", f"sqlite:///{tmp}/bench.db")
    pg = os.environ.get("LLMOBS_TEST_POSTGRES_URL")
    if pg:
        from tests.support.databases import create_pg_schema, drop_pg_schema

        schema, url = create_pg_schema(pg)
        try:
            line("PostgreSQL", url)
        finally:
            drop_pg_schema(pg, schema)
    else:
        print("  PostgreSQL  skipped: LLMOBS_TEST_POSTGRES_URL is not set")
    print("target: >= 50,000 spans/s sustained into SQLite")
    print(pricing_cost())
    with tempfile.TemporaryDirectory() as tmp:
        sustained(f"sqlite:///{tmp}/sustained.db", args.sustained_from, 100_000, 5_000, args.sustained_seconds)

    print(f"\nan I/O-bound application thread (1 ms sleeps) while the writer drains {args.latency_spans:,} queued spans "
          "into SQLite:\nhow late its wake-ups are, in ms (waiting for the GIL)")
    with tempfile.TemporaryDirectory() as tmp:
        idle, busy = run_lines(LATENCY.format(url=f"sqlite:///{tmp}/latency.db", n=args.latency_spans))
    for label, line in (("writer idle", idle), ("writer draining", busy)):
        p50, p90, p99, worst = line.split()
        print(f"  {label:<16} p50 {p50:>6}  p90 {p90:>6}  p99 {p99:>6}  max {worst:>7}")
    if float(busy.split()[-1]) > 20:
        print("  (a max over 20 ms is a full garbage collection walking the queued spans)")

    print(f"\n{args.down_calls:,} @observe calls with the database unreachable (queue_size={args.queue_size:,})")
    out = run(DOWN.format(calls=args.down_calls, queue=args.queue_size)).split()
    samples, peak, queued, dropped, elapsed = out[:-4], out[-4], out[-3], out[-2], out[-1]
    print("  RSS (MB) after N calls: " + "  ".join(f"{s.split(':')[0]}={s.split(':')[1]}" for s in samples))
    print(f"  peak RSS {peak} MB; queued {int(queued):,}; dropped (counted, reported) {int(dropped):,}; "
          f"{elapsed} s")
    print("target: memory flat (bounded by queue_size) while the database is down")


if __name__ == "__main__":
    main()
