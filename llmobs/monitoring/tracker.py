"""PerformanceTracker: a sliding in-memory window per model with live statistics and anomaly alerts.

Each model keeps at most ``max_data_points`` points no older than ``window_size_minutes`` (thread-safe, one lock).
``track_request`` is O(1) amortised; statistics are computed when asked for. Feed it by hand or from the span
pipeline with ``tracker.processor`` (``llmobs.configure(processors=[tracker.processor])``).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from llmobs.analytics.percentiles import interpolate
from llmobs.context import SpanRecord, perf_to_wall_ns
from llmobs.monitoring.anomaly import (
    BURST_MIN_FAILURES,
    BURST_WINDOW,
    AnomalyAlert,
    Baseline,
    baseline,
    burst_z,
    from_scale,
    make_alert,
    to_scale,
    z_score,
)

log = logging.getLogger("llmobs")
UTC = dt.timezone.utc
METRICS = ("latency", "cost", "tokens", "quality")
# Point layout: (time, latency ms, tokens, ok, cost, quality, scaled latency, scaled cost, scaled tokens).
_T, _RT, _TOK, _OK, _COST, _Q = 0, 1, 2, 3, 4, 5
_SCALED = {"latency": 6, "cost": 7, "tokens": 8, "quality": 5}
_RAW = {"latency": _RT, "cost": _COST, "tokens": _TOK, "quality": _Q}


class _Window:
    """One model's points, failure counters and cached baselines."""

    __slots__ = ("points", "failures", "recent", "recent_failures", "baselines", "since_refresh", "first_seen",
                 "last_fired", "latest")

    def __init__(self, max_points: int, now: float) -> None:
        self.points: deque[tuple[Any, ...]] = deque(maxlen=max_points)
        self.failures = 0
        self.recent: deque[bool] = deque(maxlen=BURST_WINDOW)
        self.recent_failures = 0
        self.baselines: dict[str, Baseline | None] = {}
        self.since_refresh = 0
        self.first_seen = now
        self.last_fired: dict[str, float] = {}
        self.latest = now

    def drop_older_than(self, horizon: float) -> None:
        points = self.points
        while points and points[0][_T] < horizon:
            if not points.popleft()[_OK]:
                self.failures -= 1

    def add(self, point: tuple[Any, ...]) -> None:
        points = self.points
        if len(points) == points.maxlen and not points[0][_OK]:
            self.failures -= 1
        points.append(point)
        ok = point[_OK]
        if not ok:
            self.failures += 1
        if len(self.recent) == BURST_WINDOW and not self.recent[0]:
            self.recent_failures -= 1
        self.recent.append(ok)
        if not ok:
            self.recent_failures += 1

    def refresh(self) -> None:
        points = self.points
        for metric, index in _SCALED.items():
            self.baselines[metric] = baseline(metric, [p[index] for p in points if p[index] is not None])
        self.since_refresh = 0


class PerformanceTracker:
    """Live per-model statistics over a sliding window, with anomaly alerts to ``alert_callback``.

    Defaults come from the ``monitoring.*`` settings. ``clock`` (epoch seconds) is for tests and replays.

    >>> tracker = PerformanceTracker(window_size_minutes=15, alert_callback=print)
    >>> tracker.track_request(model_name="claude-3", response_time_ms=2000, total_tokens=150, success=True,
    ...                       cost_usd=0.003, quality_score=0.92)
    >>> tracker.get_current_stats("claude-3")["claude-3"]["response_time"]["p95"]
    2000.0
    """

    def __init__(self, window_size_minutes: float | None = None, max_data_points: int | None = None,
                 alert_callback: Callable[[AnomalyAlert], Any] | None = None, *,
                 anomaly_min_samples: int | None = None, anomaly_threshold: float | None = None,
                 anomaly_cooldown_seconds: float | None = None, clock: Callable[[], float] = time.time) -> None:
        from llmobs._state import settings

        conf = settings().monitoring
        self.window_seconds = 60.0 * _positive("window_size_minutes", window_size_minutes,
                                               conf.window_size_minutes)
        self.max_data_points = int(_positive("max_data_points", max_data_points, conf.max_data_points, minimum=1))
        self.min_samples = int(_positive("anomaly_min_samples", anomaly_min_samples, conf.anomaly_min_samples,
                                         minimum=3))
        self.threshold = _positive("anomaly_threshold", anomaly_threshold, conf.anomaly_threshold)
        self.cooldown_seconds = _positive("anomaly_cooldown_seconds", anomaly_cooldown_seconds,
                                          conf.anomaly_cooldown_seconds, minimum=0)
        if alert_callback is not None and not callable(alert_callback):
            raise ValueError(f"llmobs.monitoring: alert_callback={alert_callback!r} must be callable or None")
        self.alert_callback = alert_callback
        self.clock = clock
        self.alerts: deque[AnomalyAlert] = deque(maxlen=100)
        self._windows: dict[str, _Window] = {}
        self._lock = threading.Lock()

    # --- feeding -------------------------------------------------------------------------------------------------
    def track_request(self, model_name: str | None, response_time_ms: float, total_tokens: int | None = None,
                      success: bool = True, cost_usd: float | None = None, quality_score: float | None = None,
                      timestamp: float | dt.datetime | None = None) -> None:
        """Add one request to its model's window and check it for anomalies; ValueError on impossible values.

        >>> PerformanceTracker().track_request("gpt-4o", 850.0, total_tokens=300, cost_usd=0.002)
        """
        if not isinstance(response_time_ms, (int, float)) or not response_time_ms >= 0 \
                or response_time_ms == math.inf:
            raise ValueError(f"llmobs.monitoring: response_time_ms={response_time_ms!r} must be a number >= 0")
        ts = self.clock() if timestamp is None else (
            timestamp.timestamp() if isinstance(timestamp, dt.datetime) else float(timestamp))
        model = model_name if isinstance(model_name, str) and model_name else "unknown"
        tokens = None if total_tokens is None else float(total_tokens)
        cost = None if cost_usd is None else float(cost_usd)
        quality = None if quality_score is None else float(quality_score)
        ok = bool(success)
        point = (ts, float(response_time_ms), tokens, ok, cost, quality, to_scale("latency", response_time_ms),
                 None if cost is None else to_scale("cost", cost),
                 None if tokens is None else to_scale("tokens", tokens))
        with self._lock:
            window = self._windows.get(model)
            if window is None:
                window = self._windows[model] = _Window(self.max_data_points, ts)
            if ts > window.latest:
                window.latest = ts
            horizon = window.latest - self.window_seconds
            if ts < horizon:
                return  # older than the window: nothing to say about the present
            window.drop_older_than(horizon)
            fired = self._check(model, window, point) if len(window.points) >= self.min_samples else None
            window.add(point)
            window.since_refresh += 1
            n = len(window.points)
            if n >= self.min_samples and (not window.baselines or window.since_refresh >= max(8, n // 8)):
                window.refresh()
            if fired:
                self.alerts.extend(fired)
        if fired:
            self._notify(fired)

    def _check(self, model: str, window: _Window, point: tuple[Any, ...]) -> list[AnomalyAlert] | None:
        """Alerts ``point`` raises against the window's baselines (respecting cooldowns); None when quiet."""
        out: list[AnomalyAlert] | None = None
        ts = point[_T]
        threshold = self.threshold
        for metric in METRICS:
            scaled = point[_SCALED[metric]]
            base = window.baselines.get(metric)
            if scaled is None or base is None:
                continue
            z = z_score(metric, scaled, base)
            if z >= threshold and self._cool(window, metric, ts):
                out = out or []
                out.append(make_alert(model, metric, point[_RAW[metric]], from_scale(metric, base.median), z,
                                      threshold, _utc(ts)))
        if not point[_OK] and window.recent_failures + 1 >= BURST_MIN_FAILURES:
            recent = min(len(window.recent) + 1, BURST_WINDOW)
            failures = window.recent_failures + 1 - (1 if len(window.recent) == BURST_WINDOW
                                                     and not window.recent[0] else 0)
            z = burst_z(failures, recent, window.failures + 1, len(window.points) + 1)
            if failures >= BURST_MIN_FAILURES and z >= threshold and self._cool(window, "error_burst", ts):
                rate = (window.failures + 1 - failures) / max(len(window.points) + 1 - recent, 1)
                out = out or []
                out.append(make_alert(model, "error_burst", failures, rate, z, threshold, _utc(ts)))
        return out

    def _cool(self, window: _Window, metric: str, ts: float) -> bool:
        """True (and the cooldown restarts) unless this model and metric fired less than the cooldown ago."""
        last = window.last_fired.get(metric)
        if last is not None and ts - last < self.cooldown_seconds:
            return False
        window.last_fired[metric] = ts
        return True

    def _notify(self, alerts: list[AnomalyAlert]) -> None:
        for alert in alerts:
            log.warning("llmobs: anomaly: %s", alert.message)
            if self.alert_callback is None:
                continue
            try:
                self.alert_callback(alert)
            except Exception:  # noqa: BLE001 - a failing callback must not break tracking
                log.exception("llmobs: alert_callback failed on %s", alert.message)

    @property
    def processor(self) -> Callable[[SpanRecord], SpanRecord]:
        """A pipeline processor that feeds every finished generation span into this tracker (on the writer thread).

        >>> llmobs.configure(processors=[tracker.processor])   # doctest: +SKIP
        """
        def feed_performance_tracker(record: SpanRecord) -> SpanRecord:
            if record.kind == "generation" and record.ended:
                total = record.total_tokens
                if total is None and (record.prompt_tokens is not None or record.completion_tokens is not None):
                    total = (record.prompt_tokens or 0) + (record.completion_tokens or 0)
                quality = getattr(record, "quality_score", None)  # set by MetricsCollector
                if quality is None:
                    quality = (record.metadata or {}).get("quality_score")
                self.track_request(record.model_name, max(record.duration_ms or 0.0, 0.0), total,
                                   record.status != "error", record.cost_usd,
                                   quality if isinstance(quality, (int, float)) else None,
                                   perf_to_wall_ns(record.perf_end) / 1e9)
            return record

        return feed_performance_tracker

    # --- reading -------------------------------------------------------------------------------------------------
    def get_current_stats(self, model_name: str | None = None) -> dict[str, dict[str, Any]]:
        """Statistics per model over the window: {model: {...}} for one model (empty figures if unseen) or all.

        Keys: requests, window_minutes, response_time {avg, min, max, p50, p95, p99}, success_rate, error_rate,
        throughput_per_minute, tokens_per_second, tokens {total, avg}, cost {total, avg}, quality {avg, min, count}.
        """
        now = self.clock()
        with self._lock:
            names = [model_name] if model_name is not None else sorted(self._windows)
            snapshot = {}
            for name in names:
                window = self._windows.get(name)
                if window is not None:
                    window.drop_older_than(now - self.window_seconds)
                snapshot[name] = (list(window.points) if window else [], window.first_seen if window else now)
        return {name: self._stats(points, first_seen, now) for name, (points, first_seen) in snapshot.items()}

    def _stats(self, points: list[tuple[Any, ...]], first_seen: float, now: float) -> dict[str, Any]:
        n = len(points)
        latencies = sorted(p[_RT] for p in points)
        failures = sum(1 for p in points if not p[_OK])
        tokens = [p[_TOK] for p in points if p[_TOK] is not None]
        costs = [p[_COST] for p in points if p[_COST] is not None]
        quality = [p[_Q] for p in points if p[_Q] is not None]
        token_time = sum(p[_RT] for p in points if p[_TOK] is not None) / 1000
        observed = min(self.window_seconds, max(now - first_seen, 1.0))
        return {
            "requests": n,
            "window_minutes": self.window_seconds / 60,
            "response_time": {"avg": sum(latencies) / n if n else None, "min": latencies[0] if n else None,
                              "max": latencies[-1] if n else None, "p50": interpolate(latencies, 0.5),
                              "p95": interpolate(latencies, 0.95), "p99": interpolate(latencies, 0.99)},
            "success_rate": (n - failures) / n if n else None,
            "error_rate": failures / n if n else None,
            "throughput_per_minute": n * 60 / observed,
            "tokens_per_second": sum(tokens) / token_time if token_time > 0 else None,
            "tokens": {"total": sum(tokens), "avg": sum(tokens) / len(tokens) if tokens else None},
            "cost": {"total": sum(costs), "avg": sum(costs) / len(costs) if costs else None},
            "quality": {"avg": sum(quality) / len(quality) if quality else None,
                        "min": min(quality) if quality else None, "count": len(quality)},
        }

    def reset(self, model_name: str | None = None) -> None:
        """Forget one model's window (or every model's)."""
        with self._lock:
            if model_name is None:
                self._windows.clear()
            else:
                self._windows.pop(model_name, None)


def feed_tracker(tracker: PerformanceTracker) -> Callable[[SpanRecord], SpanRecord]:
    """The pipeline processor feeding ``tracker``: ``llmobs.configure(processors=[feed_tracker(tracker)])``."""
    return tracker.processor


def _positive(name: str, value: float | None, default: float, minimum: float | None = None) -> float:
    """``value`` (or the setting's default) checked: a number above 0, or at least ``minimum`` when given."""
    chosen = default if value is None else value
    ok = isinstance(chosen, (int, float)) and not isinstance(chosen, bool) and math.isfinite(chosen) and (
        chosen >= minimum if minimum is not None else chosen > 0)
    if not ok:
        allowed = f">= {minimum:g}" if minimum is not None else "> 0"
        raise ValueError(f"llmobs.monitoring: {name}={chosen!r} must be a number {allowed}")
    return float(chosen)


def _utc(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, UTC)
