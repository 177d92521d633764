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
Run: python benchmarks/bench_integrations.py [--calls N] [--rounds N] [--explain]
"""

from __future__ import annotations

import argparse
import gc
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
CLOCKS = ("wall", "caller CPU", "process CPU")
# The fake server in its own process, with TCP_NODELAY on its sockets: without it the server's two writes per reply
# (headers, then body) meet the client's delayed ACK and every call waits ~40 ms, which would hide any overhead.
SERVER = ("import sys; from llmobs.testing import openai_server as s; "
          "s._Handler.disable_nagle_algorithm = True; sys.exit(s.main(['--port', '0', '--seconds', '900']))")

Rounds = dict[str, dict[str, list[float]]]  # variant -> clock -> seconds per call, one value per round


def interleaved(variants: dict[str, Callable[[], Any]], calls: int, rounds: int,
                before: dict[str, Callable[[], None]] | None = None,
                after: dict[str, Callable[[], None]] | None = None) -> Rounds:
    """Run the variants round by round (order flipped each round) and return per-call times on each clock."""
    result: Rounds = {name: {clock: [] for clock in CLOCKS} for name in variants}
    names = list(variants)
    for index in range(rounds):
        for name in names if index % 2 == 0 else list(reversed(names)):
            if before and name in before:
                before[name]()
            gc.collect()
            fn = variants[name]
            wall, thread, process = time.perf_counter(), time.thread_time(), time.process_time()
            for _ in range(calls):
                fn()
            wall, thread = time.perf_counter() - wall, time.thread_time() - thread
            llmobs.flush(timeout=60)
            process = time.process_time() - process
            if after and name in after:
                after[name]()
            for clock, value in zip(CLOCKS, (wall, thread, process)):
                result[name][clock].append(value / calls)
    return result


def report(title: str, result: Rounds, labels: dict[str, str],
           comparisons: list[tuple[str, str, str, float | None]]) -> None:
    """Print best and median per-call times on each clock, and the time each comparison adds (against its target)."""
    print(f"\n{title}")
    header = "".join(f"{clock + ' best/median us':>28}" for clock in CLOCKS)
    print(f"  {'':<34}{header}")
    for name, clocks in result.items():
        cells = "".join(f"{min(v) * 1e6:>17.1f} /{statistics.median(v) * 1e6:>8.1f}" for v in clocks.values())
        print(f"  {labels[name]:<34}{cells}")
    for base, traced, why, target in comparisons:
        goal = f": < {target:.0%}" if target is not None else ""
        print(f"  added by {labels[traced]} over {labels[base]} ({why}{goal}):")
        for clock in CLOCKS:
            added = (min(result[traced][clock]) - min(result[base][clock])) * 1e6
            best = min(result[traced][clock]) / min(result[base][clock]) - 1
            median = statistics.median(result[traced][clock]) / statistics.median(result[base][clock]) - 1
            paired = paired_median(result[base][clock], result[traced][clock])
            verdict = "" if target is None or clock == "process CPU" else _verdict(paired, target)
            print(f"    {clock:<12} best {best:+7.1%} ({added:+6.1f} us)  median {median:+7.1%}  "
                  f"paired {paired:+7.1%}{verdict}")


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


def bench_langchain(calls: int, rounds: int, explain: bool = False) -> None:
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
    result = interleaved(variants, calls, rounds, before, after)
    comparisons: list[tuple[str, str, str, float | None]] = [
        ("base", "traced", "the issue's target", TARGETS["langchain"]),
        ("noop", "traced", "llmobs's own share", None),
        ("base", "noop", "langchain-core's share for any handler", None),
        ("base", "ignoring", "langchain-core's share even when no event is wanted", None)]
    if explain:
        comparisons.append(("no_protocol", "noop", "the Protocol check alone", None))
    report(f"LangChain: prompt | FakeListChatModel | StrOutputParser, {calls} calls x {rounds} rounds "
           "(4 spans per traced call)", result, labels, comparisons)


def bench_openai(calls: int, rounds: int) -> None:
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
            result = interleaved({"base": call, "traced": call}, calls, rounds,
                                 before={"base": integration.uninstrument, "traced": integration.instrument})
            integration.uninstrument()
    finally:
        server.terminate()
        server.wait(timeout=10)
    report(f"OpenAI SDK: chat.completions.create on a local server process, {calls} calls x {rounds} rounds",
           result, {"base": "SDK as shipped", "traced": "instrument()"},
           [("base", "traced", "the issue's target", TARGETS["openai"])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200, help="calls per round")
    parser.add_argument("--rounds", type=int, default=15, help="rounds per variant")
    parser.add_argument("--explain", action="store_true",
                        help="also time the do-nothing handler without langchain-core's runtime-Protocol check")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp()
    llmobs.configure(database_url=f"sqlite:///{tmp}/integrations.db")
    print(f"Python {sys.version.split()[0]}; spans written to a SQLite file in {tmp}")
    bench_langchain(args.calls, args.rounds, args.explain)
    bench_openai(args.calls, args.rounds)
    print(f"\nspans written: {llmobs.stats()['written']}")


if __name__ == "__main__":
    main()
