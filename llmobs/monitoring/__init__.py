"""Monitoring: the seed API (LLMMetrics, MetricsCollector, PerformanceTracker) and anomaly detection.

>>> from llmobs.monitoring import MetricsCollector, LLMMetrics, PerformanceTracker
>>> tracker = PerformanceTracker(window_size_minutes=15, alert_callback=print)
>>> tracker.track_request(model_name="claude-3", response_time_ms=2000, total_tokens=150, success=True)
"""

from __future__ import annotations

from llmobs.monitoring.anomaly import AnomalyAlert
from llmobs.monitoring.metrics import LLMMetrics, MetricsCollector, MetricsCollectorContext
from llmobs.monitoring.tracker import PerformanceTracker, feed_tracker

__all__ = ["AnomalyAlert", "LLMMetrics", "MetricsCollector", "MetricsCollectorContext", "PerformanceTracker",
           "feed_tracker"]
