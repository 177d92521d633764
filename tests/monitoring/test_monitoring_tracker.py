"""PerformanceTracker: sliding-window statistics per model, bounded and thread-safe, fed by hand or by the span
pipeline (where the tracker's figures must agree with the rows written to the database)."""

from __future__ import annotations

import threading

import pytest

import llmobs
from llmobs.monitoring import LLMMetrics, MetricsCollector, PerformanceTracker, feed_tracker
from tests.support.databases import Store


class Clock:
    """A hand-moved clock in epoch seconds."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_seed_example_tracks_a_request_and_reports_p95() -> None:
    alerts: list = []
    tracker = PerformanceTracker(window_size_minutes=15, max_data_points=1000, alert_callback=alerts.append)
    tracker.track_request(model_name="claude-3", response_time_ms=2000, total_tokens=150, success=True,
                          cost_usd=0.003, quality_score=0.92)
    stats = tracker.get_current_stats("claude-3")["claude-3"]
    assert stats["response_time"]["p95"] == 2000.0 and stats["requests"] == 1 and alerts == []
    assert stats["quality"] == {"avg": 0.92, "min": 0.92, "count": 1}


def test_window_statistics_match_hand_computed_values() -> None:
    clock = Clock()
    tracker = PerformanceTracker(window_size_minutes=15, clock=clock)
    t0 = clock.now
    points = [(100, 10, True, 0.001, 0.9), (200, 20, True, 0.002, None), (300, 30, False, None, 0.7),
              (400, 40, True, 0.004, 0.8), (1000, 100, True, 0.003, 1.0)]
    for i, (ms, tokens, ok, cost, quality) in enumerate(points):
        tracker.track_request("gpt-4o", ms, tokens, ok, cost, quality, timestamp=t0 + i)
    clock.now = t0 + 4
    stats = tracker.get_current_stats()["gpt-4o"]
    rt = stats["response_time"]
    assert (rt["avg"], rt["min"], rt["max"], rt["p50"]) == (400.0, 100.0, 1000.0, 300.0)
    assert rt["p95"] == pytest.approx(880.0) and rt["p99"] == pytest.approx(976.0)
    assert stats["success_rate"] == 0.8 and stats["error_rate"] == pytest.approx(0.2)
    assert stats["tokens_per_second"] == pytest.approx(200 / 2.0)   # 200 tokens over 2.0 s of model time
    assert stats["throughput_per_minute"] == pytest.approx(5 * 60 / 4)
    assert stats["tokens"] == {"total": 200.0, "avg": 40.0}
    assert stats["cost"]["total"] == pytest.approx(0.010) and stats["cost"]["avg"] == pytest.approx(0.0025)
    assert stats["quality"]["avg"] == pytest.approx(0.85) and stats["quality"]["count"] == 4


def test_points_older_than_the_window_are_dropped_and_unknown_models_are_empty() -> None:
    clock = Clock()
    tracker = PerformanceTracker(window_size_minutes=1, clock=clock)
    t0 = clock.now
    for offset in (0, 30, 70):
        tracker.track_request("m", 100.0 + offset, timestamp=t0 + offset)
    clock.now = t0 + 70
    assert tracker.get_current_stats("m")["m"]["requests"] == 2
    tracker.track_request("m", 5.0, timestamp=t0 + 1)   # older than the window: ignored
    clock.now = t0 + 200
    gone = tracker.get_current_stats("m")["m"]
    assert gone["requests"] == 0 and gone["response_time"]["p95"] is None and gone["success_rate"] is None
    assert tracker.get_current_stats("never-seen")["never-seen"]["requests"] == 0
    assert tracker.get_current_stats() == {"m": gone}


def test_each_model_keeps_at_most_max_data_points() -> None:
    tracker = PerformanceTracker(max_data_points=10)
    for i in range(50):
        tracker.track_request("m", float(i), success=i % 2 == 0)
    stats = tracker.get_current_stats("m")["m"]
    assert stats["requests"] == 10 and stats["response_time"]["min"] == 40.0 and stats["success_rate"] == 0.5


def test_concurrent_tracking_loses_no_point() -> None:
    tracker = PerformanceTracker(max_data_points=20_000)
    errors: list[BaseException] = []

    def feed(model: str) -> None:
        try:
            for i in range(2500):
                tracker.track_request(model, 100.0 + i % 7, total_tokens=10, success=i % 50 != 0)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    def read() -> None:
        for _ in range(200):
            tracker.get_current_stats()

    threads = [threading.Thread(target=feed, args=(m,)) for m in ("a", "a", "b", "b")]
    threads.append(threading.Thread(target=read))
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    stats = tracker.get_current_stats()
    assert errors == [] and stats["a"]["requests"] == 5000 and stats["b"]["requests"] == 5000
    assert stats["a"]["success_rate"] == pytest.approx(0.98)


def test_processor_feeds_every_generation_span_the_pipeline_writes(store: Store) -> None:
    tracker = PerformanceTracker()
    llmobs.configure(processors=[feed_tracker(tracker)])
    for i in range(3):
        with llmobs.span("call", kind="generation") as s:
            s.update(model_name="gpt-4o", prompt_tokens=10 * (i + 1), completion_tokens=5)
    with pytest.raises(RuntimeError):
        with llmobs.span("call", kind="generation", model_name="gpt-4o"):
            raise RuntimeError("boom")
    with llmobs.span("lookup", kind="tool"):
        pass
    MetricsCollector().collect_metrics(LLMMetrics(model_name="claude-3", response_time_ms=120.0, total_tokens=9,
                                                  quality_score=0.5))
    rows = [r for r in store.spans() if r["kind"] == "generation"]
    stats = tracker.get_current_stats()
    assert sorted(stats) == ["claude-3", "gpt-4o"] and len(rows) == 5
    gpt = stats["gpt-4o"]
    db_gpt = [r for r in rows if r["model_name"] == "gpt-4o"]
    assert gpt["requests"] == len(db_gpt) == 4 and gpt["success_rate"] == 0.75
    assert gpt["tokens"]["total"] == sum(r["total_tokens"] or 0 for r in db_gpt) == 75
    assert gpt["response_time"]["max"] == pytest.approx(max(r["duration_ms"] for r in db_gpt))
    assert stats["claude-3"]["response_time"]["avg"] == pytest.approx(120.0)
    assert stats["claude-3"]["quality"]["avg"] == 0.5


def test_defaults_come_from_monitoring_settings() -> None:
    try:
        llmobs.configure(monitoring={"window_size_minutes": 2, "max_data_points": 50, "anomaly_threshold": 4.5,
                                     "anomaly_min_samples": 10, "anomaly_cooldown_seconds": 7})
        tracker = PerformanceTracker()
        assert (tracker.window_seconds, tracker.max_data_points, tracker.threshold, tracker.min_samples,
                tracker.cooldown_seconds) == (120.0, 50, 4.5, 10, 7.0)
        assert PerformanceTracker(window_size_minutes=5).window_seconds == 300.0
    finally:
        llmobs.configure(reset=True)


@pytest.mark.parametrize("kwargs, fragment", [
    ({"window_size_minutes": 0}, "window_size_minutes=0 must be a number > 0"),
    ({"max_data_points": "many"}, "max_data_points='many'"),
    ({"anomaly_min_samples": 1}, "anomaly_min_samples=1 must be a number >= 3"),
    ({"alert_callback": 5}, "alert_callback=5 must be callable"),
])
def test_bad_tracker_settings_raise_value_error(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        PerformanceTracker(**kwargs)


def test_impossible_response_time_raises_and_is_not_counted() -> None:
    tracker = PerformanceTracker()
    for bad in (-1.0, float("nan"), "fast"):
        with pytest.raises(ValueError, match="response_time_ms"):
            tracker.track_request("m", bad)  # type: ignore[arg-type]
    assert tracker.get_current_stats("m")["m"]["requests"] == 0


def test_configure_performance_tracker_feeds_every_traced_generation(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import llmobs
    from llmobs.monitoring import PerformanceTracker

    tracker = PerformanceTracker(window_size_minutes=15, max_data_points=100)
    llmobs.configure(reset=True, database_url=f"sqlite:///{tmp_path}/t.db", performance_tracker=tracker)
    try:
        for _ in range(3):
            with llmobs.span("call", kind="generation") as s:
                s.update(model_name="tracked-model", prompt_tokens=5, completion_tokens=7)
        with llmobs.span("not-a-model-call"):
            pass
        assert llmobs.flush(30)
        stats = tracker.get_current_stats()
        assert set(stats) == {"tracked-model"} and stats["tracked-model"]["requests"] == 3
    finally:
        llmobs.configure(reset=True)
