"""MetricsCollector (the seed API): collected metrics land as generation spans (and quality evaluations) and the
summary statistics are read back through analytics, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from datetime import datetime

import pytest

import llmobs
from llmobs.monitoring import LLMMetrics, MetricsCollector
from tests.support.databases import Store

UTC = dt.timezone.utc


def test_seed_example_collect_metrics_stores_a_generation_span(store: Store) -> None:
    collector = MetricsCollector()
    metrics = LLMMetrics(timestamp="2024-01-15T10:30:00.123456", request_id="req_123", model_name="gpt-4",
                         prompt_tokens=100, completion_tokens=200, total_tokens=300, response_time_ms=1500.0,
                         cost_usd=0.006, success=True, quality_score=0.85)
    span_id = collector.collect_metrics(metrics)
    [row] = store.spans()
    assert row["id"] == span_id and (row["kind"], row["source"], row["status"]) == ("generation", "collector", "ok")
    start = dt.datetime(2024, 1, 15, 10, 30, 0, 123456, tzinfo=UTC)
    assert abs(row["start_time"] - start) < dt.timedelta(milliseconds=1)
    assert row["duration_ms"] == pytest.approx(1500.0)
    assert row["end_time"] - row["start_time"] == dt.timedelta(milliseconds=1500)
    assert (row["model_name"], row["prompt_tokens"], row["completion_tokens"], row["total_tokens"]) == (
        "gpt-4", 100, 200, 300)
    assert row["cost_usd"] == pytest.approx(0.006) and row["metadata"] == {"request_id": "req_123"}
    [score] = store.rows("evaluations", order="created_at")
    assert (score["name"], score["value"], score["span_id"], score["trace_id"]) == ("quality", 0.85, row["id"],
                                                                                   row["trace_id"])
    assert [t["id"] for t in store.traces()] == [row["trace_id"]]


def test_seed_example_context_times_the_block_and_records_tokens(store: Store) -> None:
    collector = MetricsCollector()
    with collector.MetricsCollectorContext(collector, "req_456", "gpt-4") as metrics:
        time.sleep(0.02)
        metrics.prompt_tokens = 50
        metrics.completion_tokens = 120
        metrics.total_tokens = 170
        metrics.cost_usd = 0.0034
    [row] = store.spans()
    assert row["duration_ms"] >= 20 and row["status"] == "ok" and row["metadata"] == {"request_id": "req_456"}
    assert (row["total_tokens"], row["cost_usd"]) == (170, pytest.approx(0.0034))
    assert abs(row["start_time"] - dt.datetime.now(UTC)) < dt.timedelta(minutes=1)


def test_context_records_a_failure_and_reraises_the_same_exception(store: Store) -> None:
    collector = MetricsCollector()
    error = TimeoutError("provider took too long")
    with pytest.raises(TimeoutError) as info:
        with collector.track("req_9", "claude-3") as metrics:
            raise error
    assert info.value is error and metrics.success is False
    [row] = store.spans()
    assert (row["status"], row["error_type"], row["error_message"]) == ("error", "TimeoutError",
                                                                        "provider took too long")
    assert "raise error" in row["error_traceback"] and row["model_name"] == "claude-3"


def test_async_context_and_a_collected_failure(store: Store) -> None:
    collector = MetricsCollector()

    async def call() -> None:
        async with collector.track("req_a", "gpt-4o-mini") as m:
            m.total_tokens = 10

    asyncio.run(call())
    collector.collect_metrics(LLMMetrics(model_name="gpt-4o-mini", response_time_ms=30.0, success=False,
                                         error_type="RateLimitError", error_message="429"))
    rows = sorted(store.spans(), key=lambda r: r["status"])
    assert [(r["status"], r["error_type"]) for r in rows] == [("error", "RateLimitError"), ("ok", None)]


def test_collected_request_inside_a_traced_function_is_its_own_trace(store: Store) -> None:
    collector = MetricsCollector()
    with llmobs.span("handler"):
        collector.collect_metrics(LLMMetrics(model_name="gpt-4", response_time_ms=5.0))
    handler, metric = sorted(store.spans(), key=lambda r: r["name"])[::-1]
    assert metric["parent_id"] is None and metric["trace_id"] != handler["trace_id"]


def test_seed_example_summary_stats_over_january(store: Store) -> None:
    collector = MetricsCollector()
    jan = [("gpt-4", 1000.0, True, 300, 0.006, 0.8), ("gpt-4", 2000.0, True, 100, 0.002, 0.6),
           ("gpt-4", 3000.0, False, 200, 0.004, None), ("claude-3", 500.0, True, 100, 0.001, 1.0)]
    for i, (model, ms, ok, tokens, cost, quality) in enumerate(jan):
        collector.collect_metrics(LLMMetrics(timestamp=f"2024-01-{10 + i}T12:00:00", request_id=f"r{i}",
                                             model_name=model, total_tokens=tokens, response_time_ms=ms,
                                             cost_usd=cost, success=ok, quality_score=quality))
    collector.collect_metrics(LLMMetrics(timestamp="2024-02-01T00:00:00", model_name="gpt-4", response_time_ms=9.0))
    stats = collector.get_summary_stats(start_time="2024-01-01T00:00:00", end_time="2024-01-31T23:59:59")
    assert (stats["total_requests"], stats["successful_requests"], stats["failed_requests"]) == (4, 3, 1)
    assert stats["success_rate"] == 0.75 and stats["error_rate"] == 0.25
    assert stats["avg_response_time"] == pytest.approx(1625.0)
    assert stats["p50_response_time"] == pytest.approx(1500.0)      # [500, 1000, 2000, 3000], h = 1.5
    assert stats["p95_response_time"] == pytest.approx(2850.0)      # h = 2.85
    assert (stats["min_response_time"], stats["max_response_time"]) == (500.0, 3000.0)
    assert stats["total_tokens"] == 700 and stats["avg_tokens"] == pytest.approx(175)
    assert stats["total_cost"] == pytest.approx(0.013) and stats["avg_cost"] == pytest.approx(0.00325)
    assert stats["cost_per_1k_tokens"] == pytest.approx(0.013 / 700 * 1000)
    assert stats["avg_quality_score"] == pytest.approx(0.8)
    gpt4 = stats["model_breakdown"]["gpt-4"]
    assert (gpt4["total_requests"], gpt4["failed_requests"]) == (3, 1)
    assert gpt4["avg_response_time"] == pytest.approx(2000.0) and gpt4["avg_quality_score"] == pytest.approx(0.7)
    only_claude = collector.get_summary_stats("2024-01-01", "2024-02-01", model_name="claude-3")
    assert only_claude["total_requests"] == 1 and only_claude["avg_quality_score"] == 1.0
    aware = collector.get_summary_stats(datetime(2024, 1, 12, 12, 59, tzinfo=dt.timezone(dt.timedelta(hours=1))))
    assert aware["total_requests"] == 3  # 11:59 UTC on the 12th onwards, February included


def test_summary_of_an_empty_range_has_no_rates(store: Store) -> None:
    stats = MetricsCollector().get_summary_stats("2030-01-01", "2030-01-02")
    assert stats["total_requests"] == 0 and stats["success_rate"] is None and stats["model_breakdown"] == {}
    assert store.spans() == []


@pytest.mark.parametrize("metrics, fragment", [
    (LLMMetrics(timestamp="15/01/2024 10:00"), "timestamp='15/01/2024 10:00' is not a time"),
    (LLMMetrics(response_time_ms=-1.0), "response_time_ms=-1.0 must be a finite number >= 0"),
    (LLMMetrics(prompt_tokens=-3), "prompt_tokens=-3 must be an integer >= 0"),
    (LLMMetrics(quality_score=float("nan")), "quality_score=nan must be a finite number"),
])
def test_bad_metrics_raise_value_error_and_store_nothing(store: Store, metrics: LLMMetrics, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment.replace("(", r"\(")):
        MetricsCollector().collect_metrics(metrics)
    assert store.spans() == []


def test_disabled_llmobs_records_nothing_and_returns_none(store: Store) -> None:
    llmobs.configure(enabled=False)
    try:
        assert MetricsCollector().collect_metrics(LLMMetrics(model_name="gpt-4", response_time_ms=5.0)) is None
        with MetricsCollector().track("r", "gpt-4") as m:
            m.total_tokens = 3
    finally:
        llmobs.configure(enabled=True)
    assert store.spans() == [] and store.rows("evaluations", order="created_at") == []
