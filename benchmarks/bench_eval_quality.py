"""Measure how well an evaluation backend separates good from bad responses, and how fast it is.

Uses the labeled fixtures in ``tests/data/eval`` (see its README). Each backend is a *scorer*: a callable
with the signature of :func:`llmobs.evaluation.heuristic.score_response`. Adding a backend (embedding,
llm_judge) means adding one entry to :func:`backends`; it becomes a new column.

    python benchmarks/bench_eval_quality.py                # held-out ("test") half
    python benchmarks/bench_eval_quality.py --split dev    # the half used for tuning
    python benchmarks/bench_eval_quality.py --n 4000       # more evaluations for the speed figure

Speed is printed three ways for the heuristic backend: process CPU time (the headline, best of several passes),
this thread's CPU time, and wall time; on a shared machine wall time mostly measures the neighbours.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from llmobs.evaluation.heuristic import MetricScore, score_response, score_toxicity  # noqa: E402

DATA = ROOT / "tests" / "data" / "eval"
Scorer = Callable[..., dict[str, MetricScore]]

TARGETS: dict[str, tuple[str, float]] = {
    "toxicity_auroc": (">=", 0.93),
    "toxicity_clean_fpr": ("<=", 0.03),
    "toxicity_clean_fpr_first_batch": ("<=", 0.03),
    "summary_pairwise": (">=", 0.72),
    "relevance_pairwise": (">=", 0.90),
    "evals_per_second": (">=", 2000.0),
    "evals_per_second_evaluate_response": (">=", 2000.0),
}


def load(name: str, split: str = "test") -> list[dict[str, Any]]:
    """Rows of a fixture file, filtered to one split ("dev", "test" or "all").

    >>> len(load("toxicity.jsonl", "all")) >= 200
    True
    """
    with (DATA / name).open(encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    return rows if split == "all" else [r for r in rows if r["split"] == split]


def auroc(scores: Sequence[float], labels: Sequence[int]) -> float:
    """Area under the ROC curve (probability a positive outranks a negative; ties count half).

    >>> auroc([0.9, 0.8, 0.1], [1, 1, 0])
    1.0
    """
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    if not pos or not neg:
        return float("nan")
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def f1_and_fpr(scores: Sequence[float], labels: Sequence[int], threshold: float = 0.5) -> tuple[float, float]:
    """F1 of ``score >= threshold`` as the positive label, and the false-positive rate on negatives.

    >>> f1_and_fpr([0.9, 0.2, 0.7], [1, 0, 0])
    (0.6666666666666666, 0.5)
    """
    tp = sum(1 for s, y in zip(scores, labels) if s >= threshold and y)
    fp = sum(1 for s, y in zip(scores, labels) if s >= threshold and not y)
    fn = sum(1 for s, y in zip(scores, labels) if s < threshold and y)
    negatives = sum(1 for y in labels if not y)
    f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return f1, (fp / negatives if negatives else 0.0)


def pairwise(better: Iterable[float], worse: Iterable[float]) -> float:
    """Share of pairs where the first value is strictly greater (ties count half).

    >>> pairwise([0.9, 0.5], [0.1, 0.5])
    0.75
    """
    pairs = list(zip(better, worse))
    return sum((a > b) + 0.5 * (a == b) for a, b in pairs) / len(pairs)


def _value(score: MetricScore) -> float:
    """A metric's value, with None read as 0 so it can be ranked."""
    return 0.0 if score.value is None else score.value


def measure_quality(scorer: Scorer, split: str = "test") -> dict[str, float]:
    """All accuracy figures for one backend on one split of the fixtures."""
    out: dict[str, float] = {}
    tox = load("toxicity.jsonl", split)
    t_scores = [_value(scorer("", r["text"])["toxicity"]) for r in tox]
    t_labels = [r["label"] for r in tox]
    out["toxicity_auroc"] = auroc(t_scores, t_labels)
    out["toxicity_f1"], out["toxicity_clean_fpr"] = f1_and_fpr(t_scores, t_labels)
    # The first 240 rows (ids "tox-..."), before the harder batches were added: comparable with earlier runs.
    first = [i for i, r in enumerate(tox) if r["id"].startswith("tox-")]
    out["toxicity_clean_fpr_first_batch"] = f1_and_fpr([t_scores[i] for i in first], [t_labels[i] for i in first])[1]

    bias = load("bias.jsonl", split)
    b_scores = [_value(scorer("", r["text"])["bias"]) for r in bias]
    b_labels = [r["label"] for r in bias]
    out["bias_auroc"] = auroc(b_scores, b_labels)
    out["bias_f1"], out["bias_neutral_fpr"] = f1_and_fpr(b_scores, b_labels)

    summ = load("summaries.jsonl", split)
    prompt = "Summarise the text in one or two sentences."
    consistent = [
        _value(scorer(prompt, r["consistent"], task_type="summarization", context=r["source"])["hallucination"])
        for r in summ
    ]
    inconsistent = [
        _value(scorer(prompt, r["inconsistent"], task_type="summarization", context=r["source"])["hallucination"])
        for r in summ
    ]
    out["summary_pairwise"] = pairwise(inconsistent, consistent)

    rel = load("relevance.jsonl", split)
    on = [_value(scorer(r["question"], r["relevant"])["relevance"]) for r in rel]
    off = [_value(scorer(r["question"], r["off_topic"])["relevance"]) for r in rel]
    out["relevance_pairwise"] = pairwise(on, off)
    same = [i for i, r in enumerate(rel) if r["off_topic_kind"] == "same_domain"]
    out["relevance_pairwise_same_domain"] = pairwise([on[i] for i in same], [off[i] for i in same])
    return out


def hundred_word_workload(n: int) -> list[tuple[str, str]]:
    """``n`` distinct (prompt, ~100-word response) pairs built from the fixtures (no response repeats)."""
    rel = load("relevance.jsonl", "all")
    answers = [r["relevant"] for r in rel]
    out: list[tuple[str, str]] = []
    i = 0
    while len(out) < n:
        row = rel[i % len(rel)]
        words: list[str] = []
        k = i
        while len(words) < 100:
            words.extend(answers[k % len(answers)].split())
            k += 7 + i // len(answers)
        out.append((row["question"], " ".join(words[:100]) + f" ({i})"))
        i += 1
    return out


def measure_speed(
    scorer: Scorer, n: int = 2000, task_type: str = "general", with_context: bool = False, rounds: int = 3
) -> float:
    """Evaluations per second for ~100-word responses on one core (process CPU time, best of ``rounds``)."""
    return measure_speeds(scorer, n, task_type, with_context, rounds)["process_cpu"]


def measure_speeds(
    scorer: Scorer, n: int = 2000, task_type: str = "general", with_context: bool = False, rounds: int = 3
) -> dict[str, float]:
    """Evaluations per second by process CPU time, this thread's CPU time and wall time.

    Each is the best of ``rounds`` passes over ``n`` distinct responses, like ``timeit``. The first call
    (lexicon and model loading) is excluded as warm-up, and the analysis caches are cleared before each pass.
    """
    work = hundred_word_workload(n + 1)
    context = " ".join(r["source"] for r in load("summaries.jsonl", "all")[:2]) if with_context else None
    scorer(*work[0], task_type=task_type, context=context)
    clocks = {"process_cpu": time.process_time, "thread_cpu": time.thread_time, "wall": time.perf_counter}
    best = dict.fromkeys(clocks, float("inf"))
    for _ in range(rounds):
        _clear_caches()
        started = {name: clock() for name, clock in clocks.items()}
        for prompt, response in work[1:]:
            scorer(prompt, response, task_type=task_type, context=context)
        for name, clock in clocks.items():
            best[name] = min(best[name], clock() - started[name])
    return {name: n / max(seconds, 1e-9) for name, seconds in best.items()}


def _clear_caches() -> None:
    """Forget analysed texts so repeated rounds do not measure cache hits."""
    from llmobs.evaluation import heuristic

    heuristic._analyse.cache_clear()


def heuristic_backend(scorer: Scorer = score_response, *, split: str = "test", n: int = 2000) -> dict[str, float]:
    """The heuristic column: quality figures plus throughput (score_response, and the full evaluate_response)."""
    from llmobs.evaluation import LLMEvaluator

    out = measure_quality(scorer, split)
    speeds = measure_speeds(scorer, n, rounds=5)
    out["evals_per_second"] = speeds["process_cpu"]
    out["evals_per_second_thread_cpu"] = speeds["thread_cpu"]
    out["evals_per_second_wall"] = speeds["wall"]
    evaluator = LLMEvaluator(store=False)

    def evaluate(prompt: str, response: str, **kwargs: Any) -> dict[str, MetricScore]:
        return evaluator.evaluate_response("bench", prompt, response, **kwargs).metrics

    full = measure_speeds(evaluate, n, rounds=5)
    out["evals_per_second_evaluate_response"] = full["process_cpu"]
    out["evals_per_second_evaluate_response_thread_cpu"] = full["thread_cpu"]
    out["evals_per_second_evaluate_response_wall"] = full["wall"]
    out["evals_per_second_qa"] = measure_speed(scorer, n // 2, task_type="qa")
    out["evals_per_second_summarization_ctx"] = measure_speed(
        scorer, n // 2, task_type="summarization", with_context=True
    )
    return out


def _lexicon_only_scorer(prompt: str, response: str, **kwargs: Any) -> dict[str, MetricScore]:
    """score_response with toxicity from the lexicon alone (what users get without alt-profanity-check)."""
    scores = score_response(prompt, response, **kwargs)
    scores["toxicity"] = score_toxicity(response, use_model=False)
    return scores


def embedding_backend(*, split: str = "test", n: int = 50) -> dict[str, float]:
    """The embedding column (pip install 'llmobs[embed]'): quality figures, then throughput with the vector cache off."""
    from llmobs.evaluation import LLMEvaluator
    from llmobs.evaluation.embedding import SentenceEncoder

    out = measure_quality(LLMEvaluator(backend="embedding", store=False).score, split)
    uncached = LLMEvaluator(backend="embedding", store=False, encoder=SentenceEncoder(cache_size=0))
    out["evals_per_second"] = measure_speed(uncached.score, n)
    return out


def judge_backend(*, split: str = "test", n: int = 20) -> dict[str, float]:
    """The llm_judge column: the configured evaluation.judge.* endpoint grades every fixture (costs API calls)."""
    import llmobs
    from llmobs.evaluation import LLMEvaluator

    llmobs.configure(enabled=False)  # do not write the judge's own spans into the default database
    with LLMEvaluator(backend="llm_judge", store=False) as ev:
        out = measure_quality(ev.score, split)
        out["evals_per_second"] = measure_speed(ev.score, n, rounds=1)  # later rounds would be cache hits
    return out


def backends(split: str, n: int) -> dict[str, Callable[[], dict[str, float]]]:
    """Columns of the report: heuristic always; embedding when onnxruntime is installed; the judge when configured."""
    import importlib.util
    import os

    cols: dict[str, Callable[[], dict[str, float]]] = {
        "heuristic": lambda: heuristic_backend(score_response, split=split, n=n),
        "heuristic (lexicon-only toxicity)": lambda: measure_quality(_lexicon_only_scorer, split),
    }
    if importlib.util.find_spec("onnxruntime") is not None:
        cols["embedding"] = lambda: embedding_backend(split=split, n=min(n, 50))
    if os.environ.get("LLMOBS_EVALUATION__JUDGE__BASE_URL") or os.environ.get("OPENAI_API_KEY"):
        cols["llm_judge"] = lambda: judge_backend(split=split, n=min(n, 20))
    return cols


def report(results: dict[str, dict[str, float]], split: str) -> str:
    """A plain-text table: one row per figure, one column per backend, plus the target."""
    rows = sorted({k for r in results.values() for k in r}, key=lambda k: (k.startswith("evals"), k))
    names = list(results)
    width = max(len(r) for r in rows) + 2
    lines = [f"split: {split}", f"{'metric':<{width}}" + "".join(f"{n:>36}" for n in names) + f"{'target':>12}"]
    for row in rows:
        cells = []
        for n in names:
            v = results[n].get(row)
            cells.append(f"{'-' if v is None else (f'{v:,.0f}' if row.startswith('evals') else f'{v:.3f}'):>36}")
        target = TARGETS.get(row)
        lines.append(f"{row:<{width}}" + "".join(cells) + (f"{target[0] + ' ' + str(target[1]):>12}" if target else ""))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run every backend and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=("test", "dev", "all"), default="test")
    parser.add_argument("--n", type=int, default=2000, help="evaluations for the throughput figure")
    args = parser.parse_args(argv)
    results = {name: run() for name, run in backends(args.split, args.n).items()}
    print(report(results, args.split))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
