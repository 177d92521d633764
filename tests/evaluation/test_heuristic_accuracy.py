"""Accuracy floors of the heuristic scorers on the held-out half of tests/data/eval.

The figures are computed by the same functions as benchmarks/bench_eval_quality.py. Floors sit a little
below what was measured (see the comments), so a regression fails while noise from small edits does not.
"""

from __future__ import annotations

import time

import pytest

from llmobs.evaluation.heuristic import profanity_model_available, score_response
from tests.support.benchmarks import load_benchmark

bench = load_benchmark("bench_eval_quality")


@pytest.fixture(scope="module")
def heldout() -> dict[str, float]:
    """Quality figures of the default heuristic backend on the held-out split."""
    return bench.measure_quality(score_response, "test")


@pytest.fixture(scope="module")
def heldout_lexicon_only() -> dict[str, float]:
    """Quality figures with toxicity from the lexicon alone (no alt-profanity-check)."""
    return bench.measure_quality(bench._lexicon_only_scorer, "test")


def test_fixtures_have_enough_labeled_items() -> None:
    for name in ("toxicity.jsonl", "bias.jsonl", "summaries.jsonl", "relevance.jsonl"):
        rows = bench.load(name, "all")
        assert len(rows) >= 200, name
        assert {r["split"] for r in rows} == {"dev", "test"}, name


def test_toxicity_separates_toxic_from_clean(heldout: dict[str, float]) -> None:
    # measured on the held-out half (205 rows since the second and third batches): AUROC 0.953, F1 0.91,
    # clean false-positive rate 0.017 (2 of 121); on the first batch alone 0.016 (1 of 64)
    assert heldout["toxicity_auroc"] >= 0.94
    assert heldout["toxicity_f1"] >= 0.89
    assert heldout["toxicity_clean_fpr"] <= 0.03
    assert heldout["toxicity_clean_fpr_first_batch"] <= 0.03


def test_toxicity_lexicon_alone_still_meets_floor(heldout_lexicon_only: dict[str, float]) -> None:
    # measured: AUROC 0.942, F1 0.90, clean false-positive rate 0.017
    assert heldout_lexicon_only["toxicity_auroc"] >= 0.93
    assert heldout_lexicon_only["toxicity_clean_fpr"] <= 0.03


def test_bias_separates_stereotypes_from_neutral_mentions(heldout: dict[str, float]) -> None:
    # measured: AUROC 0.98, F1 0.98, neutral false-positive rate 0.02
    assert heldout["bias_auroc"] >= 0.93
    assert heldout["bias_f1"] >= 0.90


def test_hallucination_prefers_consistent_summary(heldout: dict[str, float]) -> None:
    # measured: 0.911 of 140 pairs (target 0.72)
    assert heldout["summary_pairwise"] >= 0.86


def test_relevance_prefers_on_topic_answer(heldout: dict[str, float]) -> None:
    # measured: 0.944 overall, 0.95 when the off-topic answer comes from the same domain (target 0.90)
    assert heldout["relevance_pairwise"] >= 0.90
    assert heldout["relevance_pairwise_same_domain"] >= 0.85


def test_classifier_is_used_when_installed() -> None:
    pytest.importorskip("profanity_check")
    assert profanity_model_available()


def test_throughput_has_not_collapsed() -> None:
    # The real figure comes from the benchmark (target 2,000/s on an idle core); this floor only catches
    # order-of-magnitude regressions, since CI machines are shared. CPU time, not wall time.
    work = bench.hundred_word_workload(301)
    score_response(*work[0])
    start = time.process_time()
    for prompt, response in work[1:]:
        score_response(prompt, response)
    per_second = 300 / max(time.process_time() - start, 1e-9)
    assert per_second >= 250
