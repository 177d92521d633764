"""llmobs.analytics on a known dataset: every figure is computed by hand below and must come out the same on
SQLite and PostgreSQL (the ``store`` fixture runs each test on both)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from llmobs import analytics
from llmobs.analytics import Filters
from tests.support.databases import Store
from tests.support.seed import evaluation, gen, seed, seed_evaluations

UTC = dt.timezone.utc
T0 = dt.datetime(2024, 1, 1, tzinfo=UTC)
START, END = T0, T0 + dt.timedelta(hours=2)


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def dataset() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Six LLM calls in [T0, T0+2h) (two failed), one tool span, one call outside the range, three quality scores.

    gpt-4o: 100, 200, 300, 400 ms (the 400 failed); claude-3: 1000, 3000 ms (the 3000 failed).
    """
    a1 = gen(at(0), 100, model="gpt-4o", trace_id="a" * 32, total_tokens=100, cost_usd=0.01, user_id="u1",
             session_id="s1", tags=["prod"])
    a2 = gen(at(10), 200, model="gpt-4o", trace_id="a" * 32, total_tokens=200, cost_usd=0.02)
    b = gen(at(20), 300, model="gpt-4o", trace_id="b" * 32, total_tokens=300, cost_usd=0.03, user_id="u2",
            session_id="s2", tags=["dev"])
    c = gen(at(70), 400, model="gpt-4o", trace_id="c" * 32, total_tokens=400, cost_usd=0.04, status="error",
            error_type="RateLimitError", error_message="slow down", user_id="u1", session_id="s3", tags=["prod"])
    d = gen(at(5), 1000, model="claude-3", trace_id="d" * 32, total_tokens=50, cost_usd=0.5, user_id="u3",
            session_id="s4", source="openai")
    e = gen(at(65), 3000, model="claude-3", trace_id="e" * 32, status="error", error_type="APITimeoutError",
            error_message="timed out")
    tool = gen(at(15), 9999, model=None, kind="tool", trace_id="f" * 32, user_id="u4", session_id="s5")
    later = gen(T0 + dt.timedelta(days=1), 50, model="gpt-4o", trace_id="9" * 32, total_tokens=7, cost_usd=1.0)
    spans = [a1, a2, b, c, d, e, tool, later]
    scores = [evaluation(a1, "quality", 0.8), evaluation(b, "quality", 0.6), evaluation(d, "quality", 0.9),
              evaluation(a1, "toxicity", 0.1), evaluation(later, "quality", 0.1)]
    return spans, scores


@pytest.fixture
def seeded(store: Store) -> Store:
    spans, scores = dataset()
    seed(store.engine(), spans)
    seed_evaluations(store.engine(), scores)
    return store


def test_overview_matches_hand_computed_figures(seeded: Store) -> None:
    ov = analytics.overview(START, END, engine=seeded.engine())
    assert (ov["total_requests"], ov["successful_requests"], ov["failed_requests"]) == (6, 4, 2)
    assert ov["success_rate"] == pytest.approx(4 / 6) and ov["error_rate"] == pytest.approx(2 / 6)
    assert ov["avg_response_time"] == pytest.approx(5000 / 6)
    assert (ov["min_response_time"], ov["max_response_time"]) == (100, 3000)
    # Linear interpolation: p50 h=2.5 -> 300..400; p95 h=4.75 -> 1000..3000; p99 h=4.95.
    assert ov["p50_response_time"] == pytest.approx(350)
    assert ov["p95_response_time"] == pytest.approx(2500)
    assert ov["p99_response_time"] == pytest.approx(2900)
    assert ov["total_tokens"] == 1050 and ov["avg_tokens"] == pytest.approx(210)
    assert ov["total_cost"] == pytest.approx(0.6) and ov["avg_cost"] == pytest.approx(0.12)
    assert ov["cost_per_1k_tokens"] == pytest.approx(0.6 / 1050 * 1000)
    assert ov["avg_quality_score"] == pytest.approx((0.8 + 0.6 + 0.9) / 3)
    assert (ov["traces"], ov["unique_users"], ov["unique_sessions"]) == (6, 4, 5)
    gpt, claude = ov["models"]
    assert (gpt["model_name"], gpt["total_requests"], gpt["failed_requests"]) == ("gpt-4o", 4, 1)
    assert gpt["avg_response_time"] == pytest.approx(250) and gpt["avg_quality_score"] == pytest.approx(0.7)
    assert gpt["share_of_requests"] == pytest.approx(4 / 6) and gpt["total_cost"] == pytest.approx(0.1)
    assert (claude["model_name"], claude["total_requests"], claude["success_rate"]) == ("claude-3", 2, 0.5)
    assert claude["total_tokens"] == 50 and claude["avg_tokens"] == pytest.approx(50)
    assert claude["share_of_cost"] == pytest.approx(0.5 / 0.6)


def test_model_comparison_gives_per_model_percentiles(seeded: Store) -> None:
    rows = analytics.model_comparison(START, END, engine=seeded.engine())
    by_name = {r["model_name"]: r for r in rows}
    assert [r["model_name"] for r in rows] == ["gpt-4o", "claude-3"]
    assert by_name["gpt-4o"]["p50_response_time"] == pytest.approx(250)
    assert by_name["gpt-4o"]["p95_response_time"] == pytest.approx(385)
    assert by_name["claude-3"]["p50_response_time"] == pytest.approx(2000)
    assert by_name["claude-3"]["p99_response_time"] == pytest.approx(2980)
    assert by_name["claude-3"]["error_rate"] == pytest.approx(0.5)


def test_timeseries_counts_each_bucket_and_keeps_empty_ones(seeded: Store) -> None:
    rows = analytics.timeseries(["requests", "errors", "error_rate", "latency_avg", "latency_p95", "tokens", "cost",
                                 "quality"], START, T0 + dt.timedelta(hours=3), bucket="1h", engine=seeded.engine())
    assert [r["time"] for r in rows] == [T0, at(60), at(120)]
    first, second, empty = rows
    assert (first["requests"], first["errors"], first["error_rate"]) == (4, 0, 0.0)
    assert first["latency_avg"] == pytest.approx(400) and first["latency_p95"] == pytest.approx(895)
    assert first["tokens"] == 650 and first["cost"] == pytest.approx(0.56)
    assert first["quality"] == pytest.approx((0.8 + 0.6 + 0.9) / 3)
    assert (second["requests"], second["errors"], second["error_rate"]) == (2, 2, 1.0)
    assert second["latency_avg"] == pytest.approx(1700) and second["latency_p95"] == pytest.approx(2870)
    assert second["tokens"] == 400 and second["quality"] is None
    assert empty == {"time": at(120), "requests": 0, "errors": 0, "error_rate": None, "latency_avg": None,
                     "latency_p95": None, "tokens": 0, "cost": 0.0, "quality": None}


def test_timeseries_fifteen_minute_buckets_are_aligned_and_complete(seeded: Store) -> None:
    rows = analytics.timeseries("requests", START, END, bucket="15m", engine=seeded.engine())
    assert [r["requests"] for r in rows] == [3, 1, 0, 0, 2, 0, 0, 0]
    assert rows[1]["time"] == at(15) and set(rows[0]) == {"time", "requests"}
    shifted = analytics.timeseries("requests", at(7), at(37), bucket="15m", engine=seeded.engine())
    assert [(r["time"], r["requests"]) for r in shifted] == [(T0, 1), (at(15), 1), (at(30), 0)]


def test_percentile_of_each_metric_by_linear_interpolation(seeded: Store) -> None:
    engine = seeded.engine()
    assert analytics.percentile("latency", 0.5, START, END, engine=engine) == pytest.approx(350)
    assert analytics.percentile("latency", [0, 1], START, END, engine=engine) == {0.0: 100, 1.0: 3000}
    # tokens known for five calls: 50, 100, 200, 300, 400 -> h = 0.9 * 4 = 3.6 -> 300 + 0.6 * 100
    assert analytics.percentile("tokens", 0.9, START, END, engine=engine) == pytest.approx(360)
    assert analytics.percentile("cost", 0.5, START, END, model="gpt-4o", engine=engine) == pytest.approx(0.025)
    assert analytics.percentile("latency", 0.95, START, END, model="no-such-model", engine=engine) is None


@pytest.mark.parametrize("fields, requests", [
    ({"status": "error"}, 2), ({"user_id": "u1"}, 3), ({"session_id": "s2"}, 1), ({"tag": "prod"}, 3),
    ({"source": "openai"}, 1), ({"model": ["gpt-4o", "claude-3"]}, 6), ({"kind": "tool"}, 1), ({"kind": None}, 7),
])
def test_each_filter_selects_the_expected_spans(seeded: Store, fields: dict[str, Any], requests: int) -> None:
    ov = analytics.overview(START, END, engine=seeded.engine(), **fields)
    assert ov["total_requests"] == requests
    same = analytics.overview(filters=Filters(start=START, end=END, **fields), engine=seeded.engine())
    assert same["total_requests"] == requests


def test_a_tag_matches_whole_tags_exactly_wherever_it_sits_in_the_list(store: Store) -> None:
    tag_lists = [["bench"], ["bench", "b"], ["a", "bench", "b"], ["a", "bench"], ["Bench"], ["bench-x", "xbench"],
                 ['a"bench'], ['bench"', "b"], ["x,bench", "bench,"], ['a","bench'], ["ünï", "b"], []]
    seed(store.engine(), [gen(at(i), 10, trace_id=f"{i + 1:032x}", tags=tags) for i, tags in enumerate(tag_lists)])

    def count(tag: str) -> int:
        return analytics.overview(START, END, tag=tag, engine=store.engine())["total_requests"]

    def traces(tag: str) -> int:
        return analytics.overview(START, END, tag=tag, engine=store.engine())["traces"]

    assert (count("bench"), traces("bench")) == (4, 4)
    assert [count(t) for t in ("Bench", "bench-x", 'a"bench', 'bench"', "x,bench", 'a","bench', "ünï", "ben")] == \
        [1, 1, 1, 1, 1, 1, 1, 0]
    assert (count("b"), count("a"), count("")) == (4, 2, 0)


def test_trace_level_counts_follow_span_filters(seeded: Store) -> None:
    ov = analytics.overview(START, END, model="claude-3", engine=seeded.engine())
    assert (ov["traces"], ov["unique_users"], ov["unique_sessions"]) == (2, 1, 1)
    assert ov["total_requests"] == 2 and ov["avg_quality_score"] == pytest.approx(0.9)
    lean = analytics.overview(START, END, model="claude-3", include_traces=False, engine=seeded.engine())
    assert lean["traces"] is None and {k: v for k, v in lean.items() if k not in ("traces", "unique_users",
                                                                                "unique_sessions")} == {
        k: v for k, v in ov.items() if k not in ("traces", "unique_users", "unique_sessions")}


def test_error_breakdown_by_type_model_message_with_recent_examples(seeded: Store) -> None:
    eb = analytics.error_breakdown(START, END, engine=seeded.engine())
    assert (eb["total_requests"], eb["total_errors"]) == (6, 2) and eb["error_rate"] == pytest.approx(2 / 6)
    assert [(t["error_type"], t["count"], t["share"]) for t in eb["by_type"]] == [
        ("APITimeoutError", 1, 0.5), ("RateLimitError", 1, 0.5)]
    assert eb["by_type"][1]["last_seen"] == at(70)
    assert [(m["model_name"], m["errors"], m["requests"], m["error_rate"]) for m in eb["by_model"]] == [
        ("claude-3", 1, 2, 0.5), ("gpt-4o", 1, 4, 0.25)]
    assert {(m["error_type"], m["error_message"]) for m in eb["by_message"]} == {
        ("APITimeoutError", "timed out"), ("RateLimitError", "slow down")}
    assert [(r["start_time"], r["model_name"]) for r in eb["recent"]] == [(at(70), "gpt-4o"), (at(65), "claude-3")]


def test_top_traces_by_duration_and_by_cost(seeded: Store) -> None:
    slowest = analytics.top_traces(START, END, limit=3, engine=seeded.engine())
    assert [t["trace_id"][0] for t in slowest] == ["a", "f", "e"]
    assert slowest[0]["duration_ms"] == pytest.approx(10 * 60_000 + 200) and slowest[0]["user_id"] == "u1"
    costly = analytics.top_traces(START, END, by="cost", limit=2, engine=seeded.engine())
    assert [(t["trace_id"][0], t["cost_usd"]) for t in costly] == [("d", pytest.approx(0.5)), ("c", 0.04)]


def test_empty_range_and_unknown_model_give_honest_empty_figures(seeded: Store) -> None:
    for ov in (analytics.overview(at(30), at(60), engine=seeded.engine()),
               analytics.overview(START, END, model="gpt-9", engine=seeded.engine()),
               analytics.overview(START, START, engine=seeded.engine())):
        assert ov["total_requests"] == 0 and ov["success_rate"] is None and ov["error_rate"] is None
        assert ov["avg_response_time"] is None and ov["p95_response_time"] is None
        assert ov["total_tokens"] == 0 and ov["total_cost"] == 0 and ov["models"] == []
    assert analytics.model_comparison(at(30), at(60), engine=seeded.engine()) == []
    assert analytics.error_breakdown(at(30), at(60), engine=seeded.engine())["by_type"] == []
    assert analytics.timeseries("requests", START, START, engine=seeded.engine()) == []


def test_naive_times_are_utc_and_aware_times_are_converted(seeded: Store) -> None:
    engine = seeded.engine()
    naive = analytics.overview("2024-01-01T00:00:00", "2024-01-01T01:00:00", engine=engine)
    plus_two = analytics.overview("2024-01-01T02:00:00+02:00", dt.datetime(2024, 1, 1, 3, tzinfo=dt.timezone(
        dt.timedelta(hours=2))), engine=engine)
    assert naive["total_requests"] == 4 and plus_two["total_requests"] == 4
    assert naive["range"] == {"start": T0, "end": at(60)}
