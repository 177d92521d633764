"""The embedding backend: all-MiniLM-L6-v2 (int8 ONNX shipped in a wheel) scoring offline, stored like the others."""

from __future__ import annotations

import time

import pytest

from llmobs.evaluation import LLMEvaluator
from llmobs.evaluation.embedding import EmbeddingBackend
from llmobs.evaluation.heuristic import score_response
from tests.support.benchmarks import load_benchmark
from tests.support.databases import Store

pytest.importorskip("onnxruntime", reason="the embedding extra is not installed: pip install 'llmobs[embed]'")

QUESTION = "How do I reverse a list in Python?"
ON_TOPIC = "Call my_list.reverse() to reverse it in place, or use my_list[::-1] to get a reversed copy."
OFF_TOPIC = "Bake the bread at 220 degrees for 25 minutes until the crust is golden."
CONTEXT = ("The Eiffel Tower is in Paris. It was completed in 1889 for the World's Fair. "
           "The tower is 330 metres tall and was designed by Gustave Eiffel's company.")


@pytest.fixture(scope="module")
def backend() -> EmbeddingBackend:
    return EmbeddingBackend()


@pytest.fixture(scope="module")
def embedding() -> LLMEvaluator:
    return LLMEvaluator(backend="embedding", store=True)


def test_semantic_relevance_separates_an_answer_from_an_off_topic_reply(embedding: LLMEvaluator,
                                                                        sqlite_store: Store) -> None:
    on = embedding.evaluate_response("m", QUESTION, ON_TOPIC)
    off = embedding.evaluate_response("m", QUESTION, OFF_TOPIC)
    assert on.relevance_score > 0.6 > 0.2 > off.relevance_score
    assert on.sources["relevance"] == "embedding" and "cosine" in on.explanations["relevance"]
    rows = sqlite_store.rows("evaluations", order="created_at", where="name = 'relevance'")
    assert [r["source"] for r in rows] == ["embedding", "embedding"]
    assert sorted(r["value"] for r in rows) == [pytest.approx(off.relevance_score), pytest.approx(on.relevance_score)]
    assert {r["evaluator_version"] for r in rows} == {"embedding-1"}


def test_accuracy_is_similarity_to_the_expected_answer(embedding: LLMEvaluator, sqlite_store: Store) -> None:
    expected = "Use list.reverse() or slicing with [::-1]."
    close = embedding.evaluate_response("m", QUESTION, ON_TOPIC, expected_response=expected)
    wrong = embedding.evaluate_response("m", QUESTION, OFF_TOPIC, expected_response=expected)
    assert close.accuracy_score > wrong.accuracy_score and wrong.accuracy_score < 0.2
    assert close.sources["accuracy"] == "embedding"
    stored = sorted(r["value"] for r in sqlite_store.rows("evaluations", order="name", where="name = 'accuracy'"))
    assert stored == [pytest.approx(wrong.accuracy_score), pytest.approx(close.accuracy_score)]


def test_grounding_is_the_share_of_sentences_without_a_close_context_sentence(backend: EmbeddingBackend,
                                                                              sqlite_store: Store) -> None:
    response = ("The Eiffel Tower was completed in 1889 for the World's Fair. "
                "It is 330 metres tall. "
                "Penguins mostly live in the Southern Hemisphere and eat krill.")
    scores, errors = backend.score("Tell me about the Eiffel Tower.", response, context=CONTEXT)
    hallucination = scores["hallucination"]
    assert errors == {} and hallucination.value == pytest.approx(1 / 3)
    assert "1 of 3 sentences have no close match" in hallucination.explanation
    assert "Penguins" in hallucination.explanation
    cosines = hallucination.details["best_cosines"]
    assert cosines[2] < backend.grounding_threshold <= min(cosines[:2])
    result = LLMEvaluator(backend="embedding", store=True).evaluate_response("m", "Tell me about the Eiffel Tower.",
                                                                             response, context=CONTEXT)
    assert result.hallucination_score >= 1 / 3 - 1e-9
    [row] = sqlite_store.rows("evaluations", order="name", where="name = 'hallucination'")
    assert row["value"] == pytest.approx(result.hallucination_score) and row["source"] == "embedding"


def test_metrics_the_embedding_tier_does_not_compute_fall_back_to_heuristic_and_say_so(
        embedding: LLMEvaluator, store: Store) -> None:
    result = embedding.evaluate_response("gpt-4", QUESTION, ON_TOPIC, task_type="technical")
    for metric in ("coherence", "toxicity", "bias", "clarity"):
        assert result.sources[metric] == "heuristic" and result.fallbacks[metric]
        assert result.explanations[metric].startswith("heuristic fallback (the embedding tier does not compute it)")
    assert result.explanations["quality"].startswith("embedding scores, technical weights")
    rows = {r["name"]: r for r in store.rows("evaluations", order="name")}
    assert rows["clarity"]["source"] == "heuristic" and rows["clarity"]["metadata"] == {"backend": "embedding",
                                                                                        "fallback": True}
    assert rows["relevance"]["source"] == "embedding" and rows["quality"]["source"] == "embedding"
    assert {r["evaluator_version"] for r in rows.values()} == {"embedding-1"}


@pytest.mark.parametrize("prompt, response", [
    (QUESTION, ""),
    ("", ON_TOPIC),
    ("Comment inverser une liste en Python ?", "Utilisez liste.reverse() ou liste[::-1]. 使用切片。"),
    (QUESTION, "reverse it " * 100_000),
    (QUESTION, bytes(range(256)).decode("latin-1") * 50),
])
def test_awkward_inputs_get_embedding_scores_quickly(embedding: LLMEvaluator, sqlite_store: Store, prompt: str,
                                                     response: str) -> None:
    started = time.perf_counter()
    result = embedding.evaluate_response("m", prompt, response, context=CONTEXT)
    assert time.perf_counter() - started < 10 and result.errors == {}
    for name, value in result.scores().items():
        assert value is None or 0.0 <= value <= 1.0, name
        assert result.explanations[name].strip()
    assert len(sqlite_store.rows("evaluations", order="name")) == 7


def test_a_missing_model_file_is_a_configuration_error_at_construction(sqlite_store: Store) -> None:
    with pytest.raises(ValueError, match="embedding model file /nonexistent/model.onnx does not exist"):
        LLMEvaluator(backend="embedding", model_path="/nonexistent/model.onnx")
    assert sqlite_store.rows("evaluations", order="name") == []


APOLLO = ("Apollo 11 launched from Kennedy Space Center on July 16, 1969. Neil Armstrong and Buzz Aldrin landed "
          "the lunar module Eagle and spent about 21 hours on the lunar surface.")


def test_a_name_paraphrasing_a_context_word_is_not_held_against_the_response(embedding: LLMEvaluator,
                                                                              sqlite_store: Store) -> None:
    prompt = "Summarise the text."
    moon = "Apollo 11 launched on July 16, 1969, and Armstrong and Aldrin spent about 21 hours on the Moon."
    mars = "Apollo 11 launched on July 16, 1969, and Armstrong and Aldrin spent about 21 hours on Mars."
    heuristic = LLMEvaluator(store=False).evaluate_response("m", prompt, moon, context=APOLLO)
    assert heuristic.hallucination_score > 0.5 and "name Moon not in context" in heuristic.explanations["hallucination"]
    paraphrase = embedding.evaluate_response("m", prompt, moon, context=APOLLO)
    assert paraphrase.hallucination_score < 0.2
    assert "Moon ~ lunar" in paraphrase.explanations["hallucination"]
    wrong = embedding.evaluate_response("m", prompt, mars, context=APOLLO)
    assert wrong.hallucination_score > 0.5 and "name Mars not in context" in wrong.explanations["hallucination"]
    stored = sorted(r["value"] for r in sqlite_store.rows("evaluations", order="name", where="name = 'hallucination'"))
    assert stored == [pytest.approx(paraphrase.hallucination_score), pytest.approx(wrong.hallucination_score)]


def test_embedding_tier_beats_the_heuristic_tier_on_held_out_relevance_and_consistency() -> None:
    bench = load_benchmark("bench_eval_quality")
    heuristic = bench.measure_quality(score_response, "test")
    embedded = bench.measure_quality(LLMEvaluator(backend="embedding", store=False).score, "test")
    # measured: relevance 1.000 vs 0.944, consistent summary 0.918 vs 0.911 (one pair of 140 more)
    assert embedded["relevance_pairwise"] >= 0.97 and embedded["relevance_pairwise"] > heuristic["relevance_pairwise"]
    assert embedded["summary_pairwise"] >= 0.90 and embedded["summary_pairwise"] > heuristic["summary_pairwise"]
