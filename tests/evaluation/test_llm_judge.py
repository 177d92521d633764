"""The llm_judge backend against a real OpenAI-compatible server on 127.0.0.1 with scripted judgments."""

from __future__ import annotations

import json
import re
import threading
import time
from typing import Any

import pytest

import llmobs
from llmobs.config import ConfigError
from llmobs.evaluation import LLMEvaluator
from llmobs.evaluation.llm_judge import MAX_CHARS
from llmobs.testing.openai_server import FakeOpenAIServer, RecordedRequest, Reply
from tests.support.databases import Store

KEY = "sk-judge-secret-123456"
PROMPT = "What is the capital of France?"
ANSWER = "The capital of France is Paris. It has about 90 million inhabitants."
CONTEXT = "Paris is the capital of France. The city has about 2.1 million inhabitants."


def metric_of(request: RecordedRequest) -> str:
    """The metric a judge request asks about (first line of its rubric)."""
    found = re.search(r"^Metric: (\w+)", request.body["messages"][1]["content"], re.M)
    assert found, request.body
    return found.group(1)


def judgment(score: int, reason: str = "scripted") -> Reply:
    return Reply(content=json.dumps({"score": score, "reason": reason}))


SCORES = {"relevance": 5, "coherence": 4, "accuracy": 2, "hallucination": 1, "toxicity": 1, "bias": 2,
          "directness": 3, "completeness": 5}


def scripted(request: RecordedRequest) -> Reply:
    """A judge that answers by metric; hallucination with a context is judged claim by claim."""
    metric = metric_of(request)
    if metric == "hallucination" and "<context>" in request.body["messages"][1]["content"]:
        claims = [{"claim": "Paris is the capital of France", "verdict": "supported"},
                  {"claim": "Paris has about 90 million inhabitants", "verdict": "contradicted"},
                  {"claim": "Paris is the capital", "verdict": "supported"}]
        return Reply(content=json.dumps({"claims": claims, "reason": "the population is wrong"}))
    return judgment(SCORES[metric], f"{metric} judged")


@pytest.fixture
def srv(srv: FakeOpenAIServer) -> FakeOpenAIServer:
    """The shared fake server (tests/conftest.py), answering as a judge would."""
    srv.responder = scripted
    return srv


def judge(srv: FakeOpenAIServer, **options: Any) -> LLMEvaluator:
    options.setdefault("backoff_base", 0.01)
    return LLMEvaluator(backend="llm_judge", judge_base_url=srv.base_url, judge_api_key=KEY, **options)


def requests_for(srv: FakeOpenAIServer, metric: str) -> list[RecordedRequest]:
    return [r for r in srv.requests if r.method == "POST" and metric_of(r) == metric]


# --- scoring -------------------------------------------------------------------------------------------------------
def test_each_metric_is_judged_by_rubric_at_temperature_zero_and_mapped_from_1_5_to_0_1(
        srv: FakeOpenAIServer, store: Store) -> None:
    result = judge(srv, judge_model="judge-model").evaluate_response(
        "gpt-4", PROMPT, ANSWER, task_type="qa", expected_response="Paris.", store=True)
    assert result.relevance_score == 1.0 and result.coherence_score == 0.75 and result.accuracy_score == 0.25
    assert result.toxicity_score == 0.0 and result.bias_score == 0.25
    assert result.task_scores == {"directness": 0.5, "completeness": 1.0}
    assert result.explanations["coherence"] == "coherence judged (LLM judge judge-model, score 4/5)"
    assert {m for m, s in result.sources.items() if s == "llm_judge"} == {*SCORES, "quality"}
    bodies = [r.body for r in srv.requests]
    assert len(bodies) == len(SCORES)
    assert all(b["temperature"] == 0 and b["model"] == "judge-model" for b in bodies)
    assert all(b["response_format"] == {"type": "json_object"} for b in bodies)
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in srv.requests)
    relevance = requests_for(srv, "relevance")[0].body["messages"][1]["content"]
    assert "Evaluation steps:" in relevance and f"<response>\n{ANSWER}\n</response>" in relevance
    rows = {r["name"]: r for r in store.rows("evaluations", order="name")}
    assert rows["coherence"]["value"] == 0.75 and rows["coherence"]["source"] == "llm_judge"
    assert rows["coherence"]["evaluator_version"] == "llm_judge-1/judge-model"
    assert rows["quality"]["source"] == "llm_judge" and rows["quality"]["value"] == pytest.approx(result.quality_score)


def test_hallucination_with_context_is_the_share_of_claims_the_context_does_not_support(
        srv: FakeOpenAIServer, sqlite_store: Store) -> None:
    result = judge(srv, judge_metrics=("hallucination",)).evaluate_response("m", PROMPT, ANSWER, context=CONTEXT,
                                                                            store=True)
    assert result.hallucination_score == pytest.approx(1 / 3)
    assert "1 of 3 claims not supported" in result.explanations["hallucination"]
    assert "90 million" in result.explanations["hallucination"]
    [request] = srv.requests
    assert "<context>\n" + CONTEXT in request.body["messages"][1]["content"]
    [row] = sqlite_store.rows("evaluations", order="name", where="name = 'hallucination'")
    assert row["value"] == pytest.approx(1 / 3) and row["source"] == "llm_judge"


def test_metrics_the_judge_is_not_asked_for_keep_their_heuristic_value_flagged(
        srv: FakeOpenAIServer, sqlite_store: Store) -> None:
    result = judge(srv, judge_metrics=("relevance",)).evaluate_response("m", PROMPT, ANSWER, store=True)
    assert result.sources["relevance"] == "llm_judge" and result.sources["coherence"] == "heuristic"
    assert result.fallbacks == {"coherence": True, "toxicity": True, "bias": True, "hallucination": True}
    assert result.explanations["coherence"].startswith("heuristic fallback (the llm_judge tier does not compute it)")
    rows = {r["name"]: r for r in sqlite_store.rows("evaluations", order="name")}
    assert rows["coherence"]["source"] == "heuristic" and rows["coherence"]["metadata"]["fallback"] is True
    assert rows["relevance"]["metadata"] == {"backend": "llm_judge"}


# --- malformed judgments -------------------------------------------------------------------------------------------
def test_a_malformed_reply_is_asked_for_once_more_with_the_problem_stated(srv: FakeOpenAIServer,
                                                                          sqlite_store: Store) -> None:
    srv.enqueue(Reply(content="Score: 4 — looks good"), judgment(4, "fixed"))
    result = judge(srv, judge_metrics=("relevance",)).evaluate_response("m", PROMPT, ANSWER, store=True)
    assert result.relevance_score == 0.75 and result.errors == {}
    first, second = srv.requests
    assert second.body["messages"][2] == {"role": "assistant", "content": "Score: 4 — looks good"}
    assert "That reply is invalid: reply is not valid JSON" in second.body["messages"][3]["content"]
    [row] = sqlite_store.rows("evaluations", order="name", where="name = 'relevance'")
    assert row["value"] == 0.75


@pytest.mark.parametrize("bad, problem", [
    ('{"score": 7, "reason": "great"}', "'score' 7 is outside 1..5"),
    ('{"reason": "no score"}', "lacks the 'score' key"),
    ('{"score": "five", "reason": "x"}', "'score' must be a number from 1 to 5"),
    ("[4]", "not an object"),
])
def test_a_judgment_malformed_twice_falls_back_to_heuristic_and_is_reported(
        srv: FakeOpenAIServer, sqlite_store: Store, bad: str, problem: str) -> None:
    srv.enqueue(Reply(content=bad), Reply(content=bad))
    result = judge(srv, judge_metrics=("relevance",)).evaluate_response("m", PROMPT, ANSWER, store=True)
    assert problem in result.errors["relevance"] and "malformed judgment twice" in result.errors["relevance"]
    assert result.fallbacks["relevance"] and result.sources["relevance"] == "heuristic"
    assert result.explanations["relevance"].startswith("heuristic fallback (after a judge error)")
    assert 0.0 <= result.relevance_score <= 1.0 and len(srv.requests) == 2
    [row] = sqlite_store.rows("evaluations", order="name", where="name = 'relevance'")
    assert row["source"] == "heuristic" and row["metadata"]["fallback"] is True


def test_claims_with_an_unknown_verdict_are_rejected(srv: FakeOpenAIServer, sqlite_store: Store) -> None:
    bad = json.dumps({"claims": [{"claim": "x", "verdict": "maybe"}], "reason": "?"})
    srv.enqueue(Reply(content=bad), Reply(content=bad))
    result = judge(srv, judge_metrics=("hallucination",)).evaluate_response("m", PROMPT, ANSWER, context=CONTEXT,
                                                                            store=True)
    assert "verdict 'maybe'" in result.errors["hallucination"] and result.fallbacks["hallucination"]
    assert len(sqlite_store.rows("evaluations", order="name")) == 7


# --- transport: retries, Retry-After, timeouts ---------------------------------------------------------------------
def test_a_429_is_retried_after_the_retry_after_delay(srv: FakeOpenAIServer, sqlite_store: Store) -> None:
    srv.enqueue(Reply.error(429, retry_after=0.3), judgment(5))
    result = judge(srv, judge_metrics=("relevance",)).evaluate_response("m", PROMPT, ANSWER, store=True)
    assert result.relevance_score == 1.0 and result.errors == {}
    first, second = srv.requests
    assert second.received_at - first.received_at >= 0.29
    [span] = [s for s in sqlite_store.spans() if s["kind"] == "evaluator"]
    assert span["metadata"]["attempts"] == 2


def test_server_errors_are_retried_with_backoff_then_the_metric_falls_back(srv: FakeOpenAIServer,
                                                                           sqlite_store: Store) -> None:
    srv.enqueue(*[Reply.error(503)] * 3)
    started = time.monotonic()
    result = judge(srv, judge_metrics=("relevance",), max_retries=2).evaluate_response("m", PROMPT, ANSWER,
                                                                                       store=True)
    assert time.monotonic() - started < 5
    assert "HTTP 503" in result.errors["relevance"] and "gave up after 3 attempts" in result.errors["relevance"]
    assert len(srv.requests) == 3 and result.fallbacks["relevance"]
    [span] = [s for s in sqlite_store.spans() if s["kind"] == "evaluator"]
    assert span["status"] == "error" and "HTTP 503" in span["error_message"]


def test_a_client_error_is_not_retried(srv: FakeOpenAIServer, sqlite_store: Store) -> None:
    srv.enqueue(Reply.error(401))
    result = judge(srv, judge_metrics=("relevance",)).evaluate_response("m", PROMPT, ANSWER, store=True)
    assert "HTTP 401" in result.errors["relevance"] and "Incorrect API key" in result.errors["relevance"]
    assert len(srv.requests) == 1
    assert {r["name"] for r in sqlite_store.rows("evaluations", order="name")} >= {"relevance", "quality"}


def test_a_reply_slower_than_the_timeout_is_retried_then_falls_back_without_hanging(
        srv: FakeOpenAIServer, sqlite_store: Store) -> None:
    srv.enqueue(Reply(content='{"score": 5, "reason": "late"}', delay=3), Reply(content="{}", delay=3))
    started = time.monotonic()
    result = judge(srv, judge_metrics=("relevance",), judge_timeout=0.3, max_retries=1).evaluate_response(
        "m", PROMPT, ANSWER, store=True)
    assert time.monotonic() - started < 2.5
    assert "no reply within 0.3 s" in result.errors["relevance"] and result.fallbacks["relevance"]
    assert len(srv.requests) == 2
    assert len(sqlite_store.rows("evaluations", order="name")) == 7


# --- cache, concurrency, tracing, secrets, truncation, configuration -----------------------------------------------
def test_the_same_judgment_is_served_from_the_cache(srv: FakeOpenAIServer, sqlite_store: Store) -> None:
    ev = judge(srv, judge_metrics=("relevance", "coherence"))
    first = ev.evaluate_response("m", PROMPT, ANSWER, store=True)
    second = ev.evaluate_response("m", PROMPT, ANSWER, store=True)
    third = ev.evaluate_response("m", PROMPT, ANSWER + " Really.", store=True)
    assert first.scores() == second.scores() and third.relevance_score == 1.0
    assert len(srv.requests) == 4  # two metrics, twice: the repeated response asked nothing
    assert len(sqlite_store.rows("evaluations", order="name", where="name = 'relevance'")) == 3


def test_batch_judge_requests_never_exceed_max_concurrency(srv: FakeOpenAIServer, sqlite_store: Store) -> None:
    lock = threading.Lock()
    state = {"now": 0, "peak": 0}

    def slow(request: RecordedRequest) -> Reply:
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.05)
        with lock:
            state["now"] -= 1
        return judgment(4)

    srv.responder = slow
    rows = [{"id": i, "prompt": f"Question {i}?", "response": f"Answer {i}."} for i in range(6)]
    frame = judge(srv, max_concurrency=2, judge_metrics=("relevance", "coherence")).evaluate_batch(
        rows, workers=4, progress=False)
    assert list(frame["relevance"]) == [0.75] * 6
    assert state["peak"] == 2 and len(srv.requests) == 12
    assert len(sqlite_store.rows("evaluations", order="name", where="name = 'relevance'")) == 6


def test_judge_calls_are_evaluator_spans_and_the_api_key_is_never_stored_or_logged(
        srv: FakeOpenAIServer, store: Store, llmobs_logs: pytest.LogCaptureFixture) -> None:
    srv.enqueue(Reply.error(500, f"upstream echoed {KEY}"))
    with llmobs.span("user request") as parent:
        judge(srv, judge_metrics=("relevance",), max_retries=0).evaluate_response("m", PROMPT, ANSWER,
                                                                                   span_id=parent.id)
        judge(srv, judge_metrics=("relevance",)).evaluate_response("m", PROMPT, ANSWER, span_id=parent.id)
    spans = [s for s in store.spans() if s["kind"] == "evaluator"]
    assert len(spans) == 2 and all(s["source"] == "llm_judge" and s["name"] == "llm_judge.relevance" for s in spans)
    assert all(s["parent_id"] == parent.id and s["model_name"] == "gpt-4o-mini" for s in spans)
    ok = [s for s in spans if s["status"] == "ok"][0]
    assert ok["prompt_tokens"] > 0 and "Evaluation criteria" in json.loads(ok["input"])[1]["content"]
    assert json.loads(ok["output"])["value"] == 1.0
    everything = json.dumps([store.spans(), store.traces(), store.rows("evaluations", order="name")], default=str)
    assert KEY not in everything and "***" in everything  # the echoed key was scrubbed from the error
    assert KEY not in llmobs_logs.text


def test_very_long_inputs_are_truncated_for_the_judge_with_a_note(srv: FakeOpenAIServer,
                                                                  sqlite_store: Store) -> None:
    long_answer = "Paris is the capital of France. " * 5000
    result = judge(srv, judge_metrics=("relevance",)).evaluate_response("m", PROMPT, long_answer, store=True)
    [request] = srv.requests
    sent = request.body["messages"][1]["content"]
    assert len(sent) < MAX_CHARS["response"] + 3000
    assert "response truncated for the judge to" in result.explanations["relevance"]
    [row] = sqlite_store.rows("evaluations", order="name", where="name = 'relevance'")
    assert "truncated" in row["comment"]


def test_missing_judge_endpoint_and_key_is_a_config_error_naming_the_setting(
        monkeypatch: pytest.MonkeyPatch, sqlite_store: Store) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="evaluation.judge.api_key is not set"):
        LLMEvaluator(backend="llm_judge")
    with pytest.raises(ConfigError, match="evaluation.judge.base_url = 'ftp://x' is invalid"):
        LLMEvaluator(backend="llm_judge", judge_base_url="ftp://x")
    llmobs.configure(evaluation={"judge": {"base_url": "http://127.0.0.1:9/v1", "model": "from-settings"}})
    assert LLMEvaluator(backend="llm_judge").evaluator_version == "llm_judge-1/from-settings"
    assert sqlite_store.rows("evaluations", order="name") == []
