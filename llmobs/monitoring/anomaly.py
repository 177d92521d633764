"""Anomaly detection for the PerformanceTracker: each new point against a robust baseline of its model's window.

Latency, cost and tokens are compared on a log scale (their noise is multiplicative), quality on its own scale:
z = (x - median) / sigma, where sigma = IQR / 1.349 (a robust standard deviation that a few spikes do not
inflate), floored so that a perfectly steady baseline does not turn every tiny wiggle into an alert. The median
and IQR are refreshed every few points (amortised O(1) per point). Failures are checked as a burst: failures
among the last ``BURST_WINDOW`` requests against the window's failure rate, by the exact binomial tail
probability turned into a z-score (a threshold of 6 means a one-in-a-billion cluster: 7 of 20 at a 1% rate). No alert
before ``min_samples`` points, and at most one per model and metric per ``cooldown_seconds``.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

IQR_TO_SIGMA = 1.349
BURST_WINDOW = 20
BURST_MIN_FAILURES = 5
BURST_MIN_RATE = 0.01
MAX_Z = 40.0
_NORMAL = NormalDist()
# Smallest sigma per metric: 0.05 on a log scale is a 5% change; quality scores are in [0, 1].
SIGMA_FLOOR = {"latency": 0.05, "cost": 0.05, "tokens": 0.05, "quality": 0.02}
LOG_FLOOR = {"latency": 0.01, "cost": 1e-9, "tokens": 1.0}
UNITS = {"latency": " ms", "cost": " USD", "tokens": " tokens", "quality": "", "error_burst": " failures"}


@dataclass(frozen=True, slots=True)
class AnomalyAlert:
    """What ``alert_callback`` receives: which model and metric, the value, the baseline, and how unusual it is."""

    model: str
    metric: str  # latency | cost | tokens | quality | error_burst
    value: float
    baseline: float
    z_score: float
    threshold: float
    severity: str  # warning | critical (z at least twice the threshold)
    message: str
    timestamp: dt.datetime

    @property
    def model_name(self) -> str:
        """Alias of ``model``."""
        return self.model


@dataclass(slots=True)
class Baseline:
    """Median and robust sigma of one metric's window values (on the metric's scale)."""

    median: float
    sigma: float


def to_scale(metric: str, value: float) -> float:
    """The value on the scale its metric is compared on: log for latency, cost and tokens."""
    floor = LOG_FLOOR.get(metric)
    return value if floor is None else math.log(max(value, floor))


def from_scale(metric: str, value: float) -> float:
    """Back from the comparison scale, for messages."""
    return value if metric not in LOG_FLOOR else math.exp(value)


def baseline(metric: str, values: Sequence[float]) -> Baseline | None:
    """Median and sigma (IQR / 1.349, floored) of scaled ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    n = len(ordered)
    median = _quantile(ordered, 0.5)
    iqr = _quantile(ordered, 0.75) - _quantile(ordered, 0.25) if n >= 4 else 0.0
    return Baseline(median, max(iqr / IQR_TO_SIGMA, SIGMA_FLOOR[metric]))


def _quantile(ordered: Sequence[float], q: float) -> float:
    h = q * (len(ordered) - 1)
    lo = int(h)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (h - lo)


def z_score(metric: str, scaled: float, base: Baseline) -> float:
    """How many sigmas ``scaled`` lies in the bad direction: above for latency/cost/tokens, below for quality."""
    deviation = base.median - scaled if metric == "quality" else scaled - base.median
    return deviation / base.sigma


def burst_z(recent_failures: int, recent: int, window_failures: int, window: int) -> float:
    """How unusual ``recent_failures`` among the last ``recent`` points are, given the older window's failure rate:
    the exact binomial tail probability expressed as a normal z-score (so one threshold serves every metric)."""
    older = max(window - recent, 1)
    rate = min(max((window_failures - recent_failures) / older, BURST_MIN_RATE), 0.99)
    tail = sum(math.comb(recent, k) * rate ** k * (1 - rate) ** (recent - k)
               for k in range(recent_failures, recent + 1))
    return MAX_Z if tail <= 0 else min(-_NORMAL.inv_cdf(min(tail, 0.5)), MAX_Z)


def make_alert(model: str, metric: str, value: float, base_value: float, z: float, threshold: float,
               when: dt.datetime) -> AnomalyAlert:
    """Build the alert with a one-line human message."""
    severity = "critical" if z >= 2 * threshold else "warning"
    unit = UNITS.get(metric, "")
    if metric == "error_burst":
        text = (f"{model}: error burst, {value:g} of the last {BURST_WINDOW} requests failed "
                f"(baseline {base_value:.1%} failure rate; z={z:.1f} >= {threshold:g})")
    else:
        word = "drop" if metric == "quality" else "spike"
        text = (f"{model}: {metric} {word}, {value:.6g}{unit} against a baseline of {base_value:.6g}{unit} "
                f"(robust z={z:.1f} >= {threshold:g})")
    return AnomalyAlert(model, metric, float(value), float(base_value), round(z, 3), threshold, severity, text, when)
