"""LLMEvaluator (heuristic backend), custom evaluators, and storage + summary in the evaluations table."""

from __future__ import annotations

import datetime as dt
import math
import sys
import time
from typing import Any

import pytest

import llmobs
from llmobs import pipeline
from llmobs.evaluation import EvaluationResult, LLMEvaluator, MetricScore, evaluator, unregister
from llmobs.evaluation.heuristic import TASK_METRICS
from llmobs.scores import make_score
from tests.support.databases import Store

CORE = ("quality", "relevance", "coherence", "accuracy", "toxicity", "bias", "hallucination")
PROMPT = "What is the capital of France?"
ANSWER = "The capital of France is Paris."


def _rows(store: Store, where: str = "") -> list[dict[str, Any]]:
    return store.rows("evaluations", order="name", where=where)


@pytest.fixture
def generation(store: Store) -> tuple[str, str]:
    """A recorded generation span: (span id, trace id)."""
    @llmobs.observe(kind="generation")
    def answer(question: str) -> str:
        return ANSWER

    with llmobs.span("request") as root:
        answer(PROMPT)
    [row] = [r for r in store.spans() if r["kind"] == "generation"]
    return row["id"], root.trace_id


# --- the API and its result ------------------------------------------------------------------------------------
def test_evaluation_linked_to_a_span_stores_one_row_per_metric_with_explanations(
        store: Store, generation: tuple[str, str]) -> None:
    span_id, trace_id = generation
    result = LLMEvaluator().evaluate_response(model_name="gpt-4", prompt=PROMPT, response=ANSWER, task_type="qa",
                                              span_id=span_id)
    assert isinstance(result, EvaluationResult)
    rows = _rows(store)
    assert {r["name"] for r in rows} == {*CORE, *TASK_METRICS["qa"]}
    for row in rows:
        assert (row["span_id"], row["trace_id"]) == (span_id, trace_id)
        assert (row["source"], row["evaluator_version"]) == ("heuristic", "heuristic-1")
        assert (row["model_name"], row["task_type"]) == ("gpt-4", "qa")
        assert row["comment"] == result.explanations[row["name"]] and row["comment"].strip()
        assert row["metadata"]["backend"] == "heuristic"
    by_name = {r["name"]: r for r in rows}
    assert by_name["quality"]["value"] == pytest.approx(result.quality_score)
    assert by_name["accuracy"]["value"] is None and by_name["accuracy"]["label"] == "n/a"


def test_every_score_is_in_unit_range_and_accuracy_needs_an_expected_answer(sqlite_store: Store) -> None:
    ev = LLMEvaluator(store=True)
    without = ev.evaluate_response("gpt-4", PROMPT, ANSWER, task_type="qa")
    with_ref = ev.evaluate_response("gpt-4", PROMPT, ANSWER, task_type="qa", expected_response="Paris.")
    for r in (without, with_ref):
        for name, value in r.scores().items():
            assert value is None or 0.0 <= value <= 1.0, (name, value)
            assert r.explanations[name].strip()
        assert set(r.task_scores) == set(TASK_METRICS["qa"])
    assert without.accuracy_score is None and with_ref.accuracy_score is not None and with_ref.accuracy_score > 0.5
    stored = [r["value"] for r in _rows(sqlite_store, "name = 'accuracy'")]
    assert sorted(stored, key=lambda v: v is not None) == [None, pytest.approx(with_ref.accuracy_score)]


def test_toxic_response_scores_higher_toxicity_and_lower_quality(sqlite_store: Store) -> None:
    ev = LLMEvaluator(store=True)
    polite = ev.evaluate_response("m", "Can you review my essay?", "Sure, the structure is clear; tighten the intro.")
    rude = ev.evaluate_response("m", "Can you review my essay?", "Shut up, you stupid idiot, your essay is garbage.")
    assert rude.toxicity_score > polite.toxicity_score and rude.quality_score < polite.quality_score
    stored = sorted(r["value"] for r in _rows(sqlite_store, "name = 'toxicity'"))
    assert stored == [pytest.approx(polite.toxicity_score), pytest.approx(rude.toxicity_score)]


def test_scores_are_not_linked_to_the_enclosing_span_unless_asked(sqlite_store: Store) -> None:
    with llmobs.span("pipeline"):
        LLMEvaluator(store=True).evaluate_response("m", PROMPT, ANSWER)
    rows = _rows(sqlite_store)
    assert len(rows) == 7 and all(r["span_id"] is None and r["trace_id"] is None for r in rows)


def test_store_defaults_to_linked_results_only_and_can_be_forced_per_call(store: Store,
                                                                          generation: tuple[str, str]) -> None:
    ev = LLMEvaluator()
    ev.evaluate_response("m", PROMPT, ANSWER)  # not linked: not stored
    ev.evaluate_response("m", PROMPT, ANSWER, span_id=generation[0], store=False)
    assert _rows(store) == []
    ev.evaluate_response("m", PROMPT, ANSWER, store=True)
    assert len(_rows(store)) == 7


# --- bad input ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("prompt, response", [
    (PROMPT, ""),
    ("", ANSWER),
    ("Quelle est la capitale de la France ? 法国的首都是哪里？", "Paris est la capitale. 首都是巴黎。Столица — Париж."),
    (PROMPT, "Paris. " + "word " * 200_000),
    (PROMPT, bytes(range(256)) * 40),
    (PROMPT, "\x00\x01\ufffd\ud800 garbage \x7f" * 500),
])
def test_awkward_inputs_get_explained_scores_quickly(sqlite_store: Store, prompt: str, response: Any) -> None:
    started = time.perf_counter()
    result = LLMEvaluator(store=True).evaluate_response("m", prompt, response)
    assert time.perf_counter() - started < 10
    assert result.errors == {}
    for name, value in result.scores().items():
        assert value is None or 0.0 <= value <= 1.0
        assert result.explanations[name].strip()
    assert len(_rows(sqlite_store)) == 7


def test_none_prompt_or_response_and_unknown_options_are_value_errors(sqlite_store: Store) -> None:
    ev = LLMEvaluator()
    with pytest.raises(ValueError, match="response must be a string, got None"):
        ev.evaluate_response("m", PROMPT, None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="prompt must be a string, got None"):
        ev.evaluate_response("m", None, ANSWER)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="task_type='poem' is not allowed; use one of general, qa"):
        ev.evaluate_response("m", PROMPT, ANSWER, task_type="poem")
    with pytest.raises(ValueError, match="span_id='xyz' is not a 16-character hex id"):
        ev.evaluate_response("m", PROMPT, ANSWER, span_id="xyz")
    with pytest.raises(ValueError, match="backend='gpt' is not allowed; use one of heuristic, embedding, llm_judge"):
        LLMEvaluator("gpt")
    assert _rows(sqlite_store) == []


# --- custom evaluators ---------------------------------------------------------------------------------------------
def test_seed_custom_evaluator_runs_for_its_task_type_and_is_stored_as_custom(sqlite_store: Store) -> None:
    seen: list[dict[str, Any]] = []

    def my_eval(response: str, prompt: str, custom_metrics: dict[str, Any]) -> dict[str, float]:
        seen.append(dict(custom_metrics))
        return {"my_metric": 0.75}

    ev = LLMEvaluator(store=True)
    ev.add_custom_evaluator("creative", my_eval)
    other = ev.evaluate_response("m", "Write a haiku", "Leaves fall", task_type="general")
    mine = ev.evaluate_response("m", "Write a haiku about rain", "Soft rain taps the roof", task_type="creative")
    assert other.custom_metrics == {} and mine.custom_metrics == {"my_metric": 0.75}
    assert seen and 0 <= seen[0]["relevance"] <= 1 and "originality" in seen[0]
    [row] = _rows(sqlite_store, "name = 'my_metric'")
    assert (row["value"], row["source"], row["evaluator_version"], row["task_type"]) == (0.75, "custom", "my_eval-1",
                                                                                        "creative")


def test_failing_or_out_of_range_custom_evaluators_are_reported_and_the_rest_still_comes_back(
        sqlite_store: Store) -> None:
    ev = LLMEvaluator(store=True)
    ev.add_custom_evaluator("*", lambda response, prompt, m: 1 / 0)
    ev.add_custom_evaluator("*", lambda response, prompt, m: {"too_big": 1.5, "nan": math.nan, "word": "good",
                                                             "relevance": 0.3, "fine": 0.25})
    ev.add_custom_evaluator("*", lambda response, prompt, m: "not a mapping")
    result = ev.evaluate_response("m", PROMPT, ANSWER)
    assert result.custom_metrics == {"fine": 0.25}
    errors = " | ".join(f"{k}: {v}" for k, v in result.errors.items())
    assert "raised ZeroDivisionError" in errors and "1.5 for 'too_big', outside [0, 1]" in errors
    assert "NaN for 'nan'" in errors
    assert "returned str 'good'" in errors and "'relevance' is a built-in metric" in errors
    assert "returned str; expected a number" in errors
    assert result.quality_score is not None and result.relevance_score is not None
    names = {r["name"] for r in _rows(sqlite_store)}
    assert names == {*CORE, "fine"}


def test_decorated_evaluator_runs_in_every_evaluator_with_injected_arguments(sqlite_store: Store) -> None:
    @evaluator("cites_source", version="2", task_types=("qa",))
    def cites_source(response: str, context: str | None, scores: dict[str, Any]) -> MetricScore:
        value = 1.0 if context and "Paris" in context and "Paris" in response else 0.0
        return MetricScore("cites_source", value, f"context used; relevance was {scores['relevance']:.2f}")

    try:
        result = LLMEvaluator(store=True).evaluate_response("m", PROMPT, ANSWER, task_type="qa",
                                                            context="Paris is the capital of France.")
        skipped = LLMEvaluator(store=True).evaluate_response("m", PROMPT, ANSWER, task_type="general")
    finally:
        unregister("cites_source")
    assert result.custom_metrics == {"cites_source": 1.0} and skipped.custom_metrics == {}
    assert result.explanations["cites_source"].startswith("context used; relevance was")
    [row] = _rows(sqlite_store, "name = 'cites_source'")
    assert (row["source"], row["evaluator_version"]) == ("custom", "cites_source-2")


def test_evaluator_with_an_unfillable_parameter_is_rejected_at_decoration() -> None:
    with pytest.raises(TypeError, match="parameter 'tone' cannot be filled"):
        @evaluator(registered=False)
        def needs_tone(response: str, tone: str) -> float:
            return 0.5


# --- summary -------------------------------------------------------------------------------------------------------
JAN, FEB = dt.datetime(2024, 1, 10, tzinfo=dt.timezone.utc), dt.datetime(2024, 2, 10, tzinfo=dt.timezone.utc)


def _insert(name: str, values: list[float], *, model: str, task: str, when: dt.datetime, source: str = "heuristic",
            ) -> None:
    for v in values:
        pipeline.submit(make_score(name, v, source=source, model_name=model, task_type=task, created_at=when,
                                   evaluator_version=f"{source}-1"))  # type: ignore[arg-type]


def test_summary_means_and_nearest_rank_p10_match_hand_computed_values(store: Store) -> None:
    quality = [0.9, 0.5, 0.7, 0.1, 0.3, 0.6, 0.8, 0.2, 0.4, 1.0, 0.05]  # n=11: p10 is rank ceil(1.1)=2 -> 0.1
    _insert("quality", quality, model="gpt-4", task="qa", when=JAN)
    _insert("relevance", [0.2, 0.4], model="gpt-4", task="qa", when=JAN)
    _insert("quality", [0.0, 0.0], model="gpt-4", task="summarization", when=JAN)
    _insert("quality", [1.0], model="other", task="qa", when=JAN)
    _insert("quality", [0.35, 0.45], model="gpt-4", task="qa", when=FEB, source="llm_judge")
    summary = LLMEvaluator().get_evaluation_summary(model_name="gpt-4", task_type="qa", end=FEB)
    assert summary["count"] == 11
    assert summary["average_quality"] == pytest.approx(sum(quality) / 11)
    assert summary["metrics"]["quality"] == pytest.approx({"count": 11, "mean": sum(quality) / 11, "p10": 0.1,
                                                           "min": 0.05, "max": 1.0})
    assert summary["metrics"]["relevance"] == pytest.approx({"count": 2, "mean": 0.3, "p10": 0.2, "min": 0.2,
                                                             "max": 0.4})
    assert summary["average_relevance"] == pytest.approx(0.3) and summary["average_coherence"] is None
    feb = LLMEvaluator().get_evaluation_summary(model_name="gpt-4", start=FEB, metric="quality")
    assert feb["count"] == 2 and feb["average_quality"] == pytest.approx(0.4)
    assert feb["metrics"]["quality"]["p10"] == pytest.approx(0.35) and "average_relevance" not in feb
    judged = LLMEvaluator().get_evaluation_summary(source="llm_judge")
    assert judged["count"] == 2
    everything = LLMEvaluator().get_evaluation_summary()
    assert everything["count"] == 11 + 2 + 1 + 2
    assert everything["metrics"]["quality"]["p10"] == pytest.approx(0.0)  # n=16: rank 2 of [0.0, 0.0, 0.05, ...]


def test_summary_of_scores_stored_by_the_evaluator_averages_their_quality(store: Store) -> None:
    ev = LLMEvaluator(store=True)
    a = ev.evaluate_response("gpt-4", PROMPT, ANSWER, task_type="qa")
    b = ev.evaluate_response("gpt-4", "How many legs does a spider have?", "Spiders have eight legs.", task_type="qa")
    summary = ev.get_evaluation_summary(model_name="gpt-4", task_type="qa")
    assert summary["count"] == 2
    assert summary["average_quality"] == pytest.approx((a.quality_score + b.quality_score) / 2)
    assert summary["metrics"]["quality"]["p10"] == pytest.approx(min(a.quality_score, b.quality_score))


def test_embedding_backend_without_its_extra_names_the_pip_command(monkeypatch: pytest.MonkeyPatch,
                                                                   sqlite_store: Store) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # how Python marks a module as not importable
    with pytest.raises(ImportError, match=r"pip install 'llmobs\[embed\]'"):
        LLMEvaluator(backend="embedding")
    assert _rows(sqlite_store) == []
