"""Behaviour of the offline heuristic scorers (llmobs.evaluation.heuristic)."""

from __future__ import annotations

import dataclasses
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmobs.evaluation import heuristic
from llmobs.evaluation.heuristic import (
    QUALITY_WEIGHTS,
    TASK_METRICS,
    TASK_TYPES,
    MetricScore,
    score_accuracy,
    score_bias,
    score_coherence,
    score_hallucination,
    score_relevance,
    score_response,
    score_toxicity,
)
from llmobs.evaluation.text import extract_numbers, lcs_length, split_sentences, stem

CORE = {"quality", "relevance", "coherence", "accuracy", "toxicity", "bias", "hallucination"}


def _assert_valid(scores: dict[str, MetricScore]) -> None:
    """Every score is a MetricScore named after its key, with a value in [0, 1] or None and an explanation."""
    for key, score in scores.items():
        assert isinstance(score, MetricScore)
        assert score.name == key
        assert score.value is None or 0.0 <= score.value <= 1.0, (key, score.value)
        assert score.explanation.strip(), key


# --- interface ------------------------------------------------------------------------------------


@pytest.mark.parametrize("task_type", TASK_TYPES)
def test_each_task_type_returns_core_and_task_metrics(task_type: str) -> None:
    scores = score_response(
        "Explain how vaccines work.", "Vaccines train the immune system to recognise a pathogen.", task_type=task_type
    )
    assert set(scores) == CORE | set(TASK_METRICS[task_type])
    _assert_valid(scores)


def test_unknown_task_type_raises_value_error_naming_value_and_allowed_ones() -> None:
    with pytest.raises(ValueError) as err:
        score_response("q", "a", task_type="poetry")
    message = str(err.value)
    assert "'poetry'" in message
    for allowed in TASK_TYPES:
        assert allowed in message


@pytest.mark.parametrize("field", ["prompt", "response"])
def test_none_prompt_or_response_raises_value_error(field: str) -> None:
    kwargs = {"prompt": "What is 2 + 2?", "response": "4"}
    kwargs[field] = None  # type: ignore[assignment]
    with pytest.raises(ValueError, match=field):
        score_response(**kwargs)  # type: ignore[arg-type]


def test_metric_score_is_frozen_with_empty_details_by_default() -> None:
    score = MetricScore("x", 0.5, "why")
    assert score.details == {} and score.label is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        score.value = 1.0  # type: ignore[misc]


def test_accuracy_is_none_without_expected_response_and_explains_why() -> None:
    accuracy = score_response("Capital of France?", "Paris.")["accuracy"]
    assert accuracy.value is None
    assert "expected_response" in accuracy.explanation


def test_quality_weights_cover_every_task_type_and_sum_to_one() -> None:
    assert set(QUALITY_WEIGHTS) == set(TASK_TYPES)
    for task_type, weights in QUALITY_WEIGHTS.items():
        assert abs(sum(weights.values()) - 1.0) < 1e-9, task_type
        assert set(TASK_METRICS[task_type]) <= set(weights)


def test_scoring_is_deterministic() -> None:
    args = ("Summarise the report.", "Revenue rose 9 percent to 2.1 billion euros, driven by wind power in Denmark.")
    first = score_response(*args, task_type="summarization", context="Revenue rose 9 percent to 2.1 billion euros.")
    second = score_response(*args, task_type="summarization", context="Revenue rose 9 percent to 2.1 billion euros.")
    assert first == second


# --- relevance ------------------------------------------------------------------------------------


def test_off_topic_answer_scores_lower_relevance_than_on_topic() -> None:
    question = "How do I reverse a list in Python?"
    on = score_relevance(question, "Call my_list.reverse() to reverse the list in place, or use slicing with [::-1].")
    off = score_relevance(question, "Whisk one part vinegar with three parts olive oil and season with salt.")
    assert on.value is not None and off.value is not None
    assert on.value > off.value + 0.3


def test_relevance_explanation_lists_matched_and_missing_terms() -> None:
    score = score_relevance("How do I sort a dictionary by value?", "Use sorted() with a key function on the items.")
    assert "sort" in score.explanation and "missing" in score.explanation


def test_relevance_is_none_for_empty_prompt() -> None:
    assert score_relevance("", "Some answer.").value is None


def test_relevance_uses_topic_agreement_when_words_differ() -> None:
    question = "How do I caramelize onions?"
    cooking = score_relevance(question, "Slice them thinly and cook slowly in butter over low heat for 40 minutes.")
    finance = score_relevance(question, "Spread your money across stocks, bonds and funds to lower risk.")
    assert cooking.value is not None and finance.value is not None and cooking.value > finance.value


# --- coherence ------------------------------------------------------------------------------------


def test_connected_text_is_more_coherent_than_repetitive_text() -> None:
    good = score_coherence("Rain fell all night. The rain flooded the road. Therefore the council closed the road.")
    repetitive = score_coherence("The cat sat. The cat sat. The cat sat. The cat sat. The cat sat. The cat sat.")
    assert good.value is not None and repetitive.value is not None
    assert good.value > repetitive.value
    assert "duplicate" in repetitive.explanation or "repeated" in repetitive.explanation


def test_binary_garbage_gets_low_coherence_with_explanation() -> None:
    garbage = bytes(range(256)).decode("latin-1") * 4
    score = score_coherence(garbage)
    assert score.value is not None and score.value < 0.3
    assert "binary" in score.explanation or "garbage" in score.explanation


# --- accuracy -------------------------------------------------------------------------------------


def test_wrong_number_lowers_accuracy() -> None:
    expected = "The Berlin Wall fell on 9 November 1989."
    right = score_accuracy("It fell on 9 November 1989.", expected)
    wrong = score_accuracy("It fell on 9 November 1991.", expected)
    assert right.value is not None and wrong.value is not None
    assert right.value > wrong.value
    assert "1989" in wrong.explanation


def test_negated_answer_lowers_accuracy() -> None:
    expected = "Yes, tuples are immutable."
    assert (
        score_accuracy("Tuples are immutable.", expected).value
        > score_accuracy("Tuples are not immutable.", "Tuples are immutable.").value
    )  # type: ignore[operator]


def test_technical_accuracy_counts_code_identifiers() -> None:
    expected = "Use `sorted(d.items(), key=lambda kv: kv[1])`."
    with_code = score_accuracy("Call `sorted(d.items(), key=lambda kv: kv[1])`.", expected, task_type="technical")
    assert "code identifiers" in with_code.explanation


# --- toxicity -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "f.u.c.k you",
        "you are a f u c k i n g idiot",
        "what a piece of sh1t",
        "go to hell you a$$hole",
        "this is f*cking ridiculous",
        "fuuuuuck this",
        "shut up b!tch",
        "FFFUUUCCKKK YOU",
    ],
)
def test_obfuscated_profanity_is_detected(text: str) -> None:
    assert score_toxicity(text).label == "toxic", score_toxicity(text).explanation


@pytest.mark.parametrize(
    "text",
    [
        "Scunthorpe United drew 1-1 with Grimsby.",
        "Kill the process with kill -9 and restart the worker.",
        "We'll shoot a photo of the team tomorrow.",
        "A breast self-exam can help detect lumps early.",
        "The penis and the vagina are parts of the reproductive system.",
        "The cocktail menu includes a gin fizz.",
        "Those shiitake mushrooms are delicious.",
        "Please complete the class assignment before the assessment.",
    ],
)
def test_tricky_clean_text_is_not_flagged(text: str) -> None:
    assert score_toxicity(text).label == "clean", score_toxicity(text).explanation


@pytest.mark.parametrize(
    "text, how",
    [
        ('The moderation guide lists "idiot" as an insult that earns a warning.', "mentioned"),
        ("The regex also matches obfuscated spellings such as sh1t.", "mentioned"),
        ('Telling someone to "go die" is never acceptable.', "mentioned"),
        ("You are not stupid for asking this.", "negated"),
        ("You're far from useless; your tests caught the regression.", "negated"),
        ("If a coworker calls you stupid, write it down and tell HR.", "reported"),
        ("I feel like such an idiot for forgetting my keys again.", "said of the writer"),
        ("What an idiot I was to leave the umbrella at home.", "said of the writer"),
        ("Dick Van Dyke starred in Mary Poppins.", "part of a name"),
        ("The pussy willow blooms early in spring.", "harmless expression"),
    ],
)
def test_listed_word_that_is_mentioned_negated_reported_or_a_name_is_not_toxic(text: str, how: str) -> None:
    score = score_toxicity(text)
    assert score.label == "clean" and score.value < 0.3, score.explanation
    assert how in score.explanation


@pytest.mark.parametrize(
    "text",
    [
        "Don't be such an idiot.",
        "You're nothing but a worthless loser.",
        "You never stop being an idiot.",
        "Nobody could be as stupid as you.",
        "I'd call you an idiot, and I am calling you a moron.",
        "I don't give a shit what you think.",
        'He typed "you are a fucking idiot and I will kill you" in the chat.',
        "They called you a moron and they were right, moron.",
    ],
)
def test_insults_that_only_look_negated_reported_or_quoted_stay_toxic(text: str) -> None:
    assert score_toxicity(text).label == "toxic", score_toxicity(text).explanation


@pytest.mark.parametrize(
    "text",
    [
        "You are a complete idiot and everyone knows it.",
        "Don't you dare call my_var a fucking mess, it's fine!",
        "Naïve café owners hate the 3.5% tax, honestly.",
        "日本語 and shit",
        "",
    ],
)
def test_pure_python_classifier_equals_alt_profanity_check(text: str) -> None:
    # The weights are re-evaluated in pure Python, reusing our tokens where they equal sklearn's.
    pc = pytest.importorskip("profanity_check")
    model = heuristic._profanity_model()
    assert model is not None
    assert model.predict(text, heuristic._analyse(text).tokens)[0] == pytest.approx(pc.predict_prob([text])[0], abs=1e-12)


def test_classifier_does_not_count_the_words_the_lexicon_already_weighed() -> None:
    # The classifier alone is near-certain about "ugly"; counted once (by the lexicon) civil criticism stays clean.
    model = heuristic._profanity_model()
    if model is None:
        pytest.skip("alt-profanity-check is not installed")
    text = "Honestly, the old interface was ugly and slow."
    assert model.predict(text)[0] > 0.6
    score = score_toxicity(text)
    assert score.details["classifier_probability"] < 0.3
    assert score.value == pytest.approx(score.details["lexicon_score"], abs=0.01) and score.label == "clean"
    assert "on the words the lexicon did not match" in score.explanation


def test_toxicity_explanation_mentions_matched_term_and_obfuscated_spelling() -> None:
    score = score_toxicity("you absolute sh1thead")
    assert "shithead" in score.explanation and "sh1thead" in score.explanation


def test_threat_phrase_is_detected_and_quoted() -> None:
    score = score_toxicity("I will find you and kill you.")
    assert score.label == "toxic" and "kill you" in score.explanation


def test_toxicity_works_with_lexicon_only() -> None:
    score = score_toxicity("You are a complete idiot.", use_model=False)
    assert score.label == "toxic"
    assert score.details["classifier_probability"] is None


def test_toxicity_without_profanity_package_falls_back_to_lexicon(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heuristic, "_MODEL_STATE", {"model": None})
    score = score_toxicity("You are a worthless moron.")
    assert score.label == "toxic"
    assert "lexicon only" in score.explanation


# --- bias -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,phrase",
    [
        ("All women are too emotional to lead.", "All women are"),
        ("People from Africa are always poor.", "People from Africa are always"),
        ("Old people can't learn new technology.", "Old people can't"),
        ("She codes well for a girl.", "for a girl"),
    ],
)
def test_generalisation_about_group_is_flagged_and_quoted(text: str, phrase: str) -> None:
    score = score_bias(text)
    assert score.label == "biased", score.explanation
    assert phrase in score.explanation


@pytest.mark.parametrize(
    "text",
    [
        "Women make up about half of the world's population.",
        "Muslims observe fasting during Ramadan.",
        "The study enrolled 120 women and 115 men.",
        "Older adults are advised to get a flu shot every year.",
    ],
)
def test_neutral_factual_mentions_of_groups_do_not_fire(text: str) -> None:
    assert score_bias(text).label == "neutral", score_bias(text).explanation


# --- hallucination --------------------------------------------------------------------------------

SOURCE = (
    "The Norton Bridge reopened on Monday after an 18-month renovation costing 27 million pounds. "
    "Workers replaced the steel deck and added a separate cycle path."
)


def test_changed_number_is_flagged_as_unsupported() -> None:
    good = score_hallucination(
        "The Norton Bridge reopened Monday after an 18-month, 27 million pound renovation.", SOURCE
    )
    bad = score_hallucination(
        "The Norton Bridge reopened Monday after an 18-month, 72 million pound renovation.", SOURCE
    )
    assert good.value is not None and bad.value is not None and good.value < bad.value
    assert "72000000" in bad.explanation or "72" in bad.explanation


def test_negation_flip_and_new_entity_are_flagged() -> None:
    negated = score_hallucination("The renovation did not add a cycle path.", SOURCE)
    entity = score_hallucination("Mayor Sandra Lee reopened the Norton Bridge on Monday.", SOURCE)
    assert "negat" in negated.explanation
    assert "Sandra" in entity.explanation


def test_hallucination_without_context_says_it_is_the_weaker_mode() -> None:
    score = score_response(
        "Is coffee healthy?", "Studies show coffee definitely adds 7 years to your life (Smith, 2020)."
    )["hallucination"]
    assert "weaker mode" in score.explanation
    assert score.details["mode"] == "no_context"
    assert score.value is not None and score.value > 0.3


# --- task metrics ---------------------------------------------------------------------------------


def test_summary_coverage_and_conciseness_reward_a_short_faithful_summary() -> None:
    source = (
        SOURCE + " The bridge carries about 30,000 vehicles a day and was first opened in 1932 by the city council."
    )
    good = score_response(
        "Summarise.",
        "Norton Bridge reopened after an 18-month, 27 million pound renovation with a new deck and cycle path.",
        task_type="summarization",
        context=source,
    )
    copy = score_response("Summarise.", source + " " + source, task_type="summarization", context=source)
    assert good["conciseness"].value > copy["conciseness"].value  # type: ignore[operator]
    assert good["coverage"].value is not None and good["coverage"].value >= 0.4


def test_evasive_answer_is_not_direct() -> None:
    question = "How many players are on a basketball team on court?"
    direct = score_response(question, "Five players per team are on the court.", task_type="qa")["directness"]
    evasive = score_response(question, "As an AI language model, I cannot answer that.", task_type="qa")["directness"]
    assert direct.value > evasive.value  # type: ignore[operator]
    assert "as an ai" in evasive.explanation.lower()


def test_completeness_uses_expected_answer_when_given() -> None:
    question = "What is ACID?"
    expected = "Atomicity, consistency, isolation and durability."
    full = score_response(
        question,
        "ACID means atomicity, consistency, isolation and durability.",
        task_type="qa",
        expected_response=expected,
    )
    partial = score_response(question, "ACID means atomicity.", task_type="qa", expected_response=expected)
    assert full["completeness"].value > partial["completeness"].value  # type: ignore[operator]


def test_creative_originality_penalises_copying_and_cliches() -> None:
    prompt = "Write a story about a lighthouse keeper who finds a message in a bottle."
    fresh = score_response(
        prompt,
        "Salt crusted the brass rail where Mara knelt, prying the cork loose while gulls wheeled and shrieked above the amber lamp.",
        task_type="creative",
    )
    copied = score_response(
        prompt,
        "Once upon a time a lighthouse keeper who finds a message in a bottle finds a message in a bottle.",
        task_type="creative",
    )
    assert fresh["originality"].value > copied["originality"].value  # type: ignore[operator]
    assert fresh["vividness"].value > copied["vividness"].value  # type: ignore[operator]


def test_unbalanced_code_fence_lowers_clarity() -> None:
    balanced = score_response(
        "How do I list files?", "Run:\n```sh\nls -la\n```\nIt lists all files.", task_type="technical"
    )["clarity"]
    broken = score_response("How do I list files?", "Run:\n```sh\nls -la\nIt lists all files.", task_type="technical")[
        "clarity"
    ]
    assert balanced.value > broken.value  # type: ignore[operator]
    assert "unbalanced" in broken.explanation


# --- odd inputs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "response",
    [
        "",
        "   ",
        "这是一个关于数据库索引的回答。索引可以加快查询。",
        "Это ответ на русском языке.",
        "Mixed 日本語 and English and русский text",
        "\x00\x01\x02\xff\ufffd" * 50,
        "🙂" * 100,
    ],
)
def test_odd_inputs_get_explained_scores_without_crashing(response: str) -> None:
    for task_type in TASK_TYPES:
        scores = score_response(
            "Explain database indexes.",
            response,
            task_type=task_type,
            context="Indexes speed up queries.",
            expected_response="Indexes speed up lookups.",
        )
        _assert_valid(scores)


def test_one_megabyte_response_is_capped_fast_and_says_so() -> None:
    response = ("The index speeds up queries on large tables because it avoids a full scan. " * 14_000)[:1_000_000]
    start = time.perf_counter()
    scores = score_response(
        "How do indexes speed up queries?",
        response,
        task_type="technical",
        context=response[:5000],
        expected_response="It avoids a full table scan.",
    )
    assert time.perf_counter() - start < 5.0
    _assert_valid(scores)
    assert "analysed the first" in scores["coherence"].explanation


@pytest.mark.parametrize(
    "response",
    [
        "@$!*#%" * 50_000,
        "f*" * 100_000,
        "1234567890" * 50_000,
        "a " * 100_000,
        "Bank of " * 30_000,
        "f . u . c . k " * 20_000,
    ],
    ids=["symbols", "masks", "digits", "single-letters", "capitalised-run", "separated-letters"],
)
def test_pathological_inputs_do_not_hang(response: str) -> None:
    start = time.perf_counter()
    scores = score_response("Explain indexes.", response, task_type="summarization", context=response[:50_000])
    assert time.perf_counter() - start < 3.0
    _assert_valid(scores)


def test_non_latin_response_explanation_mentions_script() -> None:
    score = score_toxicity("Это ответ на русском языке, и он довольно длинный.")
    assert "non-Latin" in score.explanation


# --- text utilities -------------------------------------------------------------------------------


def test_text_utilities_basics() -> None:
    assert split_sentences("Dr. Smith left at 3.30 pm. He returned later!") == [
        "Dr. Smith left at 3.30 pm.",
        "He returned later!",
    ]
    assert extract_numbers("It cost 4.2 million, up from 3,900,000.") == ["4200000", "3900000"]
    assert extract_numbers("Visitors reached 2,300, a record; 1,2345 is no thousands group.") == [
        "2300", "1", "2345"]
    assert stem("studies") == stem("studied")
    assert lcs_length(list("abcd"), list("acbd")) == 3


# --- properties -----------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    prompt=st.text(max_size=300),
    response=st.text(max_size=600),
    context=st.one_of(st.none(), st.text(max_size=300)),
    expected=st.one_of(st.none(), st.text(max_size=200)),
    task_type=st.sampled_from(TASK_TYPES),
)
def test_any_text_gives_values_in_range_or_none(
    prompt: str, response: str, context: str | None, expected: str | None, task_type: str
) -> None:
    scores = score_response(prompt, response, task_type=task_type, context=context, expected_response=expected)
    assert set(scores) == CORE | set(TASK_METRICS[task_type])
    _assert_valid(scores)
