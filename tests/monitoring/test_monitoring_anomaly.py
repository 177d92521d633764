"""Anomaly detection in the PerformanceTracker: spikes in latency and cost, quality drops and error bursts alert
once (cooldown), nothing alerts before the minimum sample count, and steady noisy traffic stays silent."""

from __future__ import annotations

import logging
import math
import random

import pytest

from llmobs.monitoring import AnomalyAlert, PerformanceTracker

T0 = 1_700_000_000.0


class Feed:
    """Steady noisy traffic for one model: log-normal latency, tokens and cost, normal quality, 2% failures."""

    def __init__(self, tracker: PerformanceTracker, seed: int = 11, failure_rate: float = 0.02) -> None:
        self.tracker = tracker
        self.rng = random.Random(seed)
        self.t = T0
        self.failure_rate = failure_rate

    def normal(self, n: int = 1, **override: object) -> None:
        rng = self.rng
        for _ in range(n):
            tokens = int(300 * rng.lognormvariate(0, 0.3))
            values = {"response_time_ms": 800 * rng.lognormvariate(0, 0.25), "total_tokens": tokens,
                      "success": rng.random() >= self.failure_rate, "cost_usd": tokens * 2e-5 * rng.uniform(0.9, 1.1),
                      "quality_score": min(1.0, max(0.0, rng.gauss(0.85, 0.03)))}
            values.update(override)
            self.t += 0.5
            self.tracker.track_request("gpt-4o", timestamp=self.t, **values)  # type: ignore[arg-type]


def tracker_with(alerts: list[AnomalyAlert], **kwargs: object) -> PerformanceTracker:
    settings = {"window_size_minutes": 15, "max_data_points": 1000, "anomaly_min_samples": 30,
                "anomaly_threshold": 6.0, "anomaly_cooldown_seconds": 300.0}
    settings.update(kwargs)
    return PerformanceTracker(alert_callback=alerts.append, clock=lambda: T0, **settings)  # type: ignore[arg-type]


def test_steady_noisy_traffic_raises_no_alert_in_10000_points() -> None:
    alerts: list[AnomalyAlert] = []
    Feed(tracker_with(alerts)).normal(10_000)
    false_positives = len(alerts)
    assert false_positives == 0, [a.message for a in alerts]


def test_latency_spike_alerts_once_with_value_and_baseline() -> None:
    alerts: list[AnomalyAlert] = []
    feed = Feed(tracker_with(alerts))
    feed.normal(500)
    feed.normal(1, response_time_ms=12_000.0)
    [alert] = alerts
    assert (alert.model, alert.metric, alert.value) == ("gpt-4o", "latency", 12_000.0)
    assert 700 < alert.baseline < 900 and alert.z_score >= 6 and alert.threshold == 6.0
    assert alert.severity == "warning" and "latency spike" in alert.message and "gpt-4o" in alert.message  # z < 12
    feed.normal(1, response_time_ms=15_000.0)          # within the cooldown: silent
    feed.normal(200)
    assert len(alerts) == 1


def test_cost_spike_alerts_and_fires_again_after_the_cooldown() -> None:
    alerts: list[AnomalyAlert] = []
    feed = Feed(tracker_with(alerts, anomaly_cooldown_seconds=60))
    feed.normal(300)
    feed.normal(1, cost_usd=0.2)
    feed.normal(10)                                    # 5 s later
    feed.normal(1, cost_usd=0.25)                      # still cooling down
    feed.normal(150)                                   # 75 s later
    feed.normal(1, cost_usd=0.3)
    assert [(a.metric, a.value) for a in alerts] == [("cost", 0.2), ("cost", 0.3)]
    assert alerts[0].baseline == pytest.approx(0.006, rel=0.2)
    assert alerts[1].timestamp > alerts[0].timestamp


def test_quality_drop_and_error_burst_are_detected() -> None:
    alerts: list[AnomalyAlert] = []
    feed = Feed(tracker_with(alerts), failure_rate=0.0)
    feed.normal(300)
    feed.normal(1, quality_score=0.3)
    feed.normal(8, success=False)
    assert [a.metric for a in alerts] == ["quality", "error_burst"]
    burst = alerts[1]
    # At the 1% floor rate, 7 failures in 20 is the first count rarer than z = 6 (binomial tail < 1e-9).
    assert burst.value == 7 and burst.baseline == 0.0 and "7 of the last 20 requests failed" in burst.message
    assert alerts[0].baseline == pytest.approx(0.85, abs=0.02)


def test_no_alert_before_the_minimum_sample_count() -> None:
    alerts: list[AnomalyAlert] = []
    feed = Feed(tracker_with(alerts, anomaly_min_samples=50))
    feed.normal(20)
    feed.normal(1, response_time_ms=50_000.0, cost_usd=5.0)
    assert alerts == []
    feed.normal(40)
    feed.normal(1, response_time_ms=50_000.0)
    assert [a.metric for a in alerts] == ["latency"]


def test_a_failing_callback_is_logged_and_tracking_goes_on(llmobs_logs: pytest.LogCaptureFixture) -> None:
    def broken(alert: AnomalyAlert) -> None:
        raise RuntimeError("pager down")

    tracker = PerformanceTracker(alert_callback=broken, anomaly_min_samples=30, clock=lambda: T0)
    feed = Feed(tracker)
    feed.normal(100)
    feed.normal(1, response_time_ms=30_000.0)
    feed.normal(5)
    assert tracker.get_current_stats("gpt-4o")["gpt-4o"]["requests"] == 106
    assert [a.metric for a in tracker.alerts] == ["latency"]
    assert any("alert_callback failed" in r.getMessage() for r in llmobs_logs.records
               if r.levelno == logging.ERROR)


def test_alert_z_score_uses_the_log_scale_for_latency() -> None:
    alerts: list[AnomalyAlert] = []
    tracker = tracker_with(alerts, anomaly_min_samples=10)
    for i in range(40):
        tracker.track_request("m", 1000.0 * (1.1 if i % 2 else 1 / 1.1), timestamp=T0 + i)
    tracker.track_request("m", 4000.0, timestamp=T0 + 41)
    [alert] = alerts
    sigma = 2 * math.log(1.1) / 1.349                   # IQR of the +-10% steps on the log scale
    assert alert.z_score == pytest.approx(math.log(4.0) / sigma, rel=0.01)
