"""Time per call added by the LangChain and OpenAI integrations, measured in one run against the same call without.

- LangChain: ``prompt | FakeListChatModel | StrOutputParser`` with no callbacks, with a handler that asks for no
  event (every ``ignore_*`` flag set), with a do-nothing handler that receives every event, and with
  ``LLMObsCallbackHandler`` (4 spans per call). Reported over no callbacks (the issue's target) and over the
  do-nothing handler (llmobs's own share: langchain-core itself does more work for every run once any handler is
  attached, see docs/integrations_langchain.md). ``--explain`` adds the do-nothing handler with langchain-core's
  runtime-Protocol check in ``BaseChatModel._should_stream`` monkeypatched away, to show what that check costs.
- OpenAI: ``chat.completions.create`` with the real SDK against FakeOpenAIServer in a separate process (so the server
  does not share this process's GIL), with the SDK as shipped and after ``instrument()``.

Method: rounds of ``--calls`` calls; the variants alternate round by round (order flipped every round); every round
ends with ``llmobs.flush()`` so the next starts with an empty queue. Three clocks per round:
  wall        perf_counter over the calls (the flush not included): what the caller waits; noisy on a shared machine;
  caller CPU  CPU time of the calling thread over the calls: what the caller pays, robust to other processes;
  process CPU CPU time of the whole process over the calls *and* the flush: includes the writer thread turning the
              spans into SQLite rows, which shares the GIL with the caller - the full price of recording.
Reported per clock: best round and median round per variant, and the added time as a ratio three ways: best
against best, median against median, and "paired": the median over rounds of the ratio of the two variants run
back to back in that round. The verdict against the issue's target uses the paired figure on the wall and caller
CPU clocks (what the caller waits and pays); process CPU adds the writer thread's work and is shown for scale.
``--instructions`` counts instead of timing: the script runs itself under valgrind's callgrind and reports the
instructions the calling thread executes per call (one round of ``--calls`` calls per variant, after the same
warm-up; garbage collections that fall in the round included). Instruction counts do not move with the machine's
load, so they settle a ratio that the clocks above cannot on a busy machine; they do not see cache misses or waits
for the GIL, which the clocks do. ``--cache-sim`` adds callgrind's cycle estimate from its simulated caches (an
instruction 1, a first-level miss 10, a last-level miss 100), which shows how much colder caches make the recorded
call (about 4 times slower to run). Needs valgrind and a C compiler (the client requests are compiled on the spot).
Run: python benchmarks/bench_integrations.py [--calls N] [--rounds N] [--explain] [--instructions [--cache-sim]]
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import llmobs  # noqa: E402

TARGETS = {"langchain": 0.05, "openai": 0.02}
# How each clock is printed: multiplier from its per-call value and unit. Clocks named "process ..." are shown for
# scale; the verdict is judged on the others (what the calling thread waits for and pays).
UNITS = {"wall": (1e6, "us"), "caller CPU": (1e6, "us"), "process CPU": (1e6, "us"),
         "caller instructions": (1e-3, "k"), "caller est. cycles": (1e-3, "k")}
UNDER_CALLGRIND = "LLMOBS_BENCH_CALLGRIND_DIR"  # set for the copy of this script that runs under callgrind
# The fake server in its own process, with TCP_NODELAY on its sockets: without it the server's two writes per reply
# (headers, then body) meet the client's delayed ACK and every call waits ~40 ms, which would hide any overhead.
SERVER = ("import sys; from llmobs.testing import openai_server as s; "
          "s._Handler.disable_nagle_algorithm = True; sys.exit(s.main(['--port', '0', '--seconds', '900']))")

Rounds = dict[str, dict[str, list[float]]]  # variant -> clock -> figure per call, one value per round


class Clocks:
    """The timed clocks of one round: wall and calling-thread CPU over the calls, process CPU up to the flush."""

    def start(self, name: str) -> None:
        self.wall, self.thread, self.process = time.perf_counter(), time.thread_time(), time.process_time()

    def calls_done(self) -> None:
        self.wall, self.thread = time.perf_counter() - self.wall, time.thread_time() - self.thread

    def flushed(self) -> dict[str, float]:
        return {"wall": self.wall, "caller CPU": self.thread, "process CPU": time.process_time() - self.process}


CLIENT_REQUESTS = """
#include <valgrind/callgrind.h>
void llmobs_zero(void) { CALLGRIND_ZERO_STATS; }
void llmobs_dump(const char *label) { CALLGRIND_DUMP_STATS_AT(label); }
int llmobs_under_valgrind(void) { return RUNNING_ON_VALGRIND; }
"""


class Callgrind:
    """The calling thread's callgrind counts over the calls (instructions, and estimated cycles with --cache-sim).

    Callgrind's client requests act on the thread that makes them: the counts are zeroed before the calls and
    dumped right after them (before the flush), so the writer thread's work is not in them, as on the caller CPU
    clock. Dump n of this process is the file ``cg.out.<pid>.<n>-01`` (thread 1).
    """

    def __init__(self, directory: str) -> None:
        self.directory = Path(directory)
        self.lib = ctypes.CDLL(str(self.directory / "requests.so"))
        if not self.lib.llmobs_under_valgrind():
            raise RuntimeError("--instructions: this copy of the script is not running under valgrind")
        self.dumps = 0

    def start(self, name: str) -> None:
        self.dumps += 1
        self.label = f"llmobs-{self.dumps}-{name}"
        self.lib.llmobs_zero()

    def calls_done(self) -> None:
        self.lib.llmobs_dump(self.label.encode())

    def flushed(self) -> dict[str, float]:
        text = (self.directory / f"cg.out.{os.getpid()}.{self.dumps}-01").read_text(errors="replace")
        names = re.search(r"^events: (.+)$", text, re.MULTILINE)
        totals = re.search(r"^summary: (.+)$", text, re.MULTILINE)
        if f"Client Request: {self.label}\n" not in text or not names or not totals:
            raise RuntimeError(f"dump {self.dumps} in {self.directory} is not the one for {self.label}")
        events = dict(zip(names.group(1).split(), map(int, totals.group(1).split())))
        counts: dict[str, float] = {"caller instructions": events["Ir"]}
        if "I1mr" in events:  # --cache-sim
            counts["caller est. cycles"] = estimated_cycles(events)
        return counts


class Measure:
    """Runs the variants in rounds of ``calls`` calls (order flipped each round) and reads ``clocks`` over each."""

    def __init__(self, clocks: Clocks | Callgrind, calls: int, rounds: int, describe: str) -> None:
        self.clocks, self.calls, self.rounds, self.describe = clocks, calls, rounds, describe

    def __call__(self, variants: dict[str, Callable[[], Any]], before: dict[str, Callable[[], None]] | None = None,
                 after: dict[str, Callable[[], None]] | None = None) -> Rounds:
        result: Rounds = {name: {} for name in variants}
        names = list(variants)
        for index in range(self.rounds):
            for name in names if index % 2 == 0 else list(reversed(names)):
                if before and name in before:
                    before[name]()
                gc.collect()
                fn = variants[name]
                self.clocks.start(name)
                for _ in range(self.calls):
                    fn()
                self.clocks.calls_done()
                llmobs.flush(timeout=600)
                if after and name in after:
                    after[name]()
                for clock, value in self.clocks.flushed().items():
                    result[name].setdefault(clock, []).append(value / self.calls)
        return result


def estimated_cycles(events: dict[str, int]) -> int:
    """Callgrind's cycle estimate: each instruction 1, each first-level cache miss 10, each last-level miss 100.

    It shows what instruction counts miss: code that runs with cold caches costs more per instruction.

    >>> estimated_cycles({"Ir": 1000, "I1mr": 2, "D1mr": 3, "D1mw": 1, "ILmr": 0, "DLmr": 1, "DLmw": 0})
    1160
    """
    first = events.get("I1mr", 0) + events.get("D1mr", 0) + events.get("D1mw", 0)
    last = events.get("ILmr", 0) + events.get("DLmr", 0) + events.get("DLmw", 0)
    return events["Ir"] + 10 * first + 100 * last


def run_under_callgrind(argv: list[str], cache_sim: bool) -> int:
    """Compile the client requests and run this script again under callgrind; its report is this run's."""
    valgrind, compiler = shutil.which("valgrind"), shutil.which("cc") or shutil.which("gcc")
    if valgrind is None or compiler is None:
        print("--instructions needs valgrind and a C compiler (Debian: apt-get install valgrind gcc)")
        return 2
    directory = tempfile.mkdtemp(prefix="llmobs-callgrind-")
    source = Path(directory) / "requests.c"
    source.write_text(CLIENT_REQUESTS)
    subprocess.run([compiler, "-shared", "-fPIC", "-O1", "-o", str(Path(directory) / "requests.so"), str(source)],
                   check=True)
    print(f"counting under callgrind (dumps in {directory}); valgrind runs Python about 50 times slower", flush=True)
    cache = ["--cache-sim=yes"] if cache_sim else []
    command = [valgrind, "--tool=callgrind", "-q", "--separate-threads=yes", *cache,
               f"--callgrind-out-file={directory}/cg.out.%p", sys.executable, __file__, *argv]
    return subprocess.run(command, env={**os.environ, UNDER_CALLGRIND: directory}).returncode


def report(title: str, result: Rounds, labels: dict[str, str],
           comparisons: list[tuple[str, str, str, float | None]]) -> None:
    """Print each variant's per-call figure on each clock (best and median round when there are several rounds)
    and the share each comparison adds (against its target)."""
    clocks = list(next(iter(result.values())))
    several = len(result[next(iter(result))][clocks[0]]) > 1
    print(f"\n{title}")
    header = "".join(f"{f'{clock} best/median {UNITS[clock][1]}' if several else f'{clock} {UNITS[clock][1]}':>28}"
                     for clock in clocks)
    print(f"  {'':<34}{header}")
    for name, values in result.items():
        cells = "".join(_cell(values[clock], UNITS[clock][0], several) for clock in clocks)
        print(f"  {labels[name]:<34}{cells}")
    for base, traced, why, target in comparisons:
        goal = f": < {target:.0%}" if target is not None else ""
        print(f"  added by {labels[traced]} over {labels[base]} ({why}{goal}):")
        for clock in clocks:
            scale, unit = UNITS[clock]
            added = (min(result[traced][clock]) - min(result[base][clock])) * scale
            best = min(result[traced][clock]) / min(result[base][clock]) - 1
            paired = paired_median(result[base][clock], result[traced][clock])
            verdict = "" if target is None or clock.startswith("process") else _verdict(paired, target)
            if not several:
                print(f"    {clock:<20} {best:+7.1%} ({added:+7.1f} {unit}){verdict}")
                continue
            median = statistics.median(result[traced][clock]) / statistics.median(result[base][clock]) - 1
            print(f"    {clock:<12} best {best:+7.1%} ({added:+6.1f} {unit})  median {median:+7.1%}  "
                  f"paired {paired:+7.1%}{verdict}")


def _cell(values: list[float], scale: float, several: bool) -> str:
    if several:
        return f"{min(values) * scale:>17.1f} /{statistics.median(values) * scale:>8.1f}"
    return f"{values[0] * scale:>28.1f}"


def paired_median(base: list[float], traced: list[float]) -> float:
    """Median over rounds of (traced round / the base round run next to it) - 1.

    The two variants of a round run back to back (in alternating order), so each ratio compares calls made under
    the same machine conditions; the median of these ratios is robust to the machine speeding up and slowing down
    between rounds, which the best and median of each variant on its own are not.

    >>> round(paired_median([1.0, 2.0, 1.0], [1.1, 2.2, 1.0]), 6)
    0.1
    """
    return statistics.median(t / b - 1 for b, t in zip(base, traced))


def _verdict(paired: float, target: float) -> str:
    """Judged on the paired median; a traced call measured clearly faster than the plain one means noise."""
    if paired < -target:
        return "  too noisy to judge (the traced call measured faster)"
    return "  meets the target" if paired < target else "  misses the target"


def _noop_handler(ignore_everything: bool = False) -> Any:
    """A LangChain handler that does nothing: it receives every event, or none (every ``ignore_*`` flag set)."""
    from langchain_core.callbacks.base import BaseCallbackHandler

    class NoopHandler(BaseCallbackHandler):
        run_inline = True
        ignore_llm = ignore_chat_model = ignore_chain = ignore_agent = ignore_retriever = ignore_retry = \
            ignore_everything

        def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
            return None

    return NoopHandler()


def _without_protocol_check() -> tuple[Callable[[], None], Callable[[], None]]:
    """Switch off / back on langchain-core's ``isinstance(handler, _StreamingCallbackHandler)`` in
    ``BaseChatModel._should_stream`` (a runtime-checkable Protocol: slow on Python 3.11), for attribution only."""
    from langchain_core.language_models import chat_models

    protocol = chat_models._StreamingCallbackHandler

    class NotAHandler:
        pass

    def off() -> None:
        chat_models._StreamingCallbackHandler = NotAHandler  # type: ignore[misc]

    def on() -> None:
        chat_models._StreamingCallbackHandler = protocol  # type: ignore[misc]

    return off, on


def bench_langchain(measure: Measure, explain: bool = False) -> None:
    """A three-step LCEL chain on a fake chat model: no handler, do-nothing handlers, and llmobs's handler."""
    from langchain_core.language_models.fake_chat_models import FakeListChatModel
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate

    from llmobs.integrations.langchain import LLMObsCallbackHandler

    prompt = ChatPromptTemplate.from_messages([("system", "Answer in one line."), ("user", "Tell me about {topic}")])
    chain = prompt | FakeListChatModel(responses=["Owls hunt at night and sleep by day."]) | StrOutputParser()
    configs: dict[str, Any] = {"base": None, "ignoring": {"callbacks": [_noop_handler(ignore_everything=True)]},
                               "noop": {"callbacks": [_noop_handler()]},
                               "traced": {"callbacks": [LLMObsCallbackHandler()]}}
    labels = {"base": "no callbacks", "ignoring": "a handler ignoring every event",
              "noop": "a do-nothing handler", "traced": "LLMObsCallbackHandler",
              "no_protocol": "do-nothing, no Protocol check"}
    before: dict[str, Callable[[], None]] = {}
    after: dict[str, Callable[[], None]] = {}
    if explain:
        configs["no_protocol"] = configs["noop"]
        before["no_protocol"], after["no_protocol"] = _without_protocol_check()
    question = {"topic": "owls"}
    for _ in range(50):
        for config in configs.values():
            chain.invoke(question, config=config)
    llmobs.flush()
    variants = {name: (lambda config=config: chain.invoke(question, config=config)) for name, config in configs.items()}
    result = measure(variants, before, after)
    comparisons: list[tuple[str, str, str, float | None]] = [
        ("base", "traced", "the issue's target", TARGETS["langchain"]),
        ("noop", "traced", "llmobs's own share", None),
        ("base", "noop", "langchain-core's share for any handler", None),
        ("base", "ignoring", "langchain-core's share even when no event is wanted", None)]
    if explain:
        comparisons.append(("no_protocol", "noop", "the Protocol check alone", None))
    report(f"LangChain: prompt | FakeListChatModel | StrOutputParser, {measure.describe} "
           "(4 spans per traced call)", result, labels, comparisons)


def bench_openai(measure: Measure) -> None:
    """chat.completions.create against a local FakeOpenAIServer process, with and without instrument()."""
    import openai

    from llmobs.integrations import openai as integration

    server = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        base_url = server.stdout.readline().strip()
        if not base_url.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"the fake server did not start: {base_url!r}")
        with openai.OpenAI(base_url=base_url, api_key="sk-bench", max_retries=0) as client:
            messages = [{"role": "system", "content": "Answer in one line."},
                        {"role": "user", "content": "What is the capital of France?"}]

            def call() -> None:
                client.chat.completions.create(model="gpt-4o-mini", messages=messages, temperature=0.2)

            for _ in range(50):
                call()
            integration.instrument()
            for _ in range(50):
                call()
            integration.uninstrument()
            llmobs.flush()
            result = measure({"base": call, "traced": call},
                             before={"base": integration.uninstrument, "traced": integration.instrument})
            integration.uninstrument()
    finally:
        server.terminate()
        server.wait(timeout=10)
    report(f"OpenAI SDK: chat.completions.create on a local server process, {measure.describe}",
           result, {"base": "SDK as shipped", "traced": "instrument()"},
           [("base", "traced", "the issue's target", TARGETS["openai"])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200, help="calls per round")
    parser.add_argument("--rounds", type=int, default=15, help="rounds per variant")
    parser.add_argument("--explain", action="store_true",
                        help="also time the do-nothing handler without langchain-core's runtime-Protocol check")
    parser.add_argument("--instructions", action="store_true",
                        help="count the calling thread's instructions per call under callgrind instead of timing")
    parser.add_argument("--cache-sim", action="store_true",
                        help="with --instructions: also simulate the caches and estimate cycles (about 4x slower)")
    args = parser.parse_args()
    if args.cache_sim and not args.instructions:
        parser.error("--cache-sim: counts only; add --instructions")
    if args.instructions and not os.environ.get(UNDER_CALLGRIND):
        sys.exit(run_under_callgrind(sys.argv[1:], args.cache_sim))
    if args.instructions:
        measure = Measure(Callgrind(os.environ[UNDER_CALLGRIND]), args.calls, 1,
                          f"{args.calls} calls per variant, counted by callgrind")
    else:
        measure = Measure(Clocks(), args.calls, args.rounds, f"{args.calls} calls x {args.rounds} rounds")
    tmp = tempfile.mkdtemp()
    llmobs.configure(database_url=f"sqlite:///{tmp}/integrations.db")
    print(f"Python {sys.version.split()[0]}; spans written to a SQLite file in {tmp}")
    bench_langchain(measure, args.explain)
    bench_openai(measure)
    print(f"\nspans written: {llmobs.stats()['written']}")


if __name__ == "__main__":
    main()
