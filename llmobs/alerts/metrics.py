"""The alert engine's metric adapter: every figure a rule checks is read through ``llmobs.analytics`` here.

This module is the only alert code that knows analytics' function signatures. Request metrics come from
``analytics.overview`` over the rule's window and filters; evaluation metrics (``quality_score`` ...) are
``analytics.evaluation_average`` of the mapped evaluation name over the window.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from sqlalchemy.engine import Engine

from llmobs import analytics

Overview = Mapping[str, Any]


@dataclass(frozen=True)
class MetricSpec:
    """A request metric: how to read it from an overview, its unit, and whether zero traffic still gives a value."""

    name: str
    description: str
    unit: str
    read: Callable[[Overview], float | None]
    zero_traffic_is_data: bool = False


@dataclass(frozen=True)
class Measurement:
    """One metric over one window: ``value`` (None when undefined, e.g. a rate over no requests) and ``count``,
    the number of requests (or of evaluations, for evaluation metrics) behind it."""

    value: float | None
    count: int
    zero_traffic_is_data: bool = False

    @property
    def has_data(self) -> bool:
        """Whether there is a value to compare (a sum over zero requests is 0, a rate over zero is no data)."""
        return self.value is not None and (self.count > 0 or self.zero_traffic_is_data)


def _num(key: str) -> Callable[[Overview], float | None]:
    def read(ov: Overview) -> float | None:
        value = ov.get(key)
        return None if value is None else float(value)
    return read


def _ratio(top: Callable[[Overview], float | None], bottom: Callable[[Overview], float | None]
           ) -> Callable[[Overview], float | None]:
    def read(ov: Overview) -> float | None:
        a, b = top(ov), bottom(ov)
        return None if a is None or not b else a / b
    return read


def _model_seconds(ov: Overview) -> float | None:
    """Total model time in seconds: mean response time times the number of requests."""
    avg, n = ov.get("avg_response_time"), ov.get("total_requests")
    return None if avg is None or not n else float(avg) * float(n) / 1000.0


def _zero(read: Callable[[Overview], float | None]) -> Callable[[Overview], float | None]:
    """A sum: zero when analytics has no value because nothing was stored."""
    def wrapped(ov: Overview) -> float | None:
        value = read(ov)
        return 0.0 if value is None else value
    return wrapped


REQUEST_METRICS: dict[str, MetricSpec] = {m.name: m for m in (
    MetricSpec("request_count", "requests in the window", "requests", _zero(_num("total_requests")), True),
    MetricSpec("error_count", "failed requests in the window", "requests", _zero(_num("failed_requests")), True),
    MetricSpec("error_rate", "failed / all requests", "ratio", _num("error_rate")),
    MetricSpec("success_rate", "successful / all requests", "ratio", _num("success_rate")),
    MetricSpec("response_time_avg", "mean response time", "ms", _num("avg_response_time")),
    MetricSpec("response_time_p50", "median response time", "ms", _num("p50_response_time")),
    MetricSpec("response_time_p95", "95th percentile response time", "ms", _num("p95_response_time")),
    MetricSpec("response_time_p99", "99th percentile response time", "ms", _num("p99_response_time")),
    MetricSpec("response_time_min", "fastest response", "ms", _num("min_response_time")),
    MetricSpec("response_time_max", "slowest response", "ms", _num("max_response_time")),
    MetricSpec("cost_usd", "total cost in the window", "USD", _zero(_num("total_cost")), True),
    MetricSpec("cost_per_request", "total cost / requests", "USD", _ratio(_num("total_cost"), _num("total_requests"))),
    MetricSpec("cost_per_token", "total cost / total tokens", "USD", _ratio(_num("total_cost"), _num("total_tokens"))),
    MetricSpec("tokens_per_second", "total tokens / total model time (generation speed)", "tokens/s",
               _ratio(_num("total_tokens"), _model_seconds)),
    MetricSpec("total_tokens", "tokens in the window", "tokens", _zero(_num("total_tokens")), True),
    MetricSpec("avg_tokens", "mean tokens per request", "tokens", _num("avg_tokens")),
)}

# Evaluation metrics: "<name>_score" reads evaluations named "<name>"; "eval:<name>" reads the exact name.
EVALUATION_ALIASES: dict[str, str] = {"quality_score": "quality", "toxicity_score": "toxicity",
                                      "hallucination_score": "hallucination", "relevance_score": "relevance",
                                      "coherence_score": "coherence", "bias_score": "bias"}
EVAL_PREFIX = "eval:"
EVAL_SUFFIX = "_score"


def evaluation_name(metric: str) -> str | None:
    """The evaluation name an evaluation metric averages, or None for a request metric.

    >>> evaluation_name("quality_score"), evaluation_name("eval:Helpfulness"), evaluation_name("error_rate")
    ('quality', 'Helpfulness', None)
    """
    if metric in EVALUATION_ALIASES:
        return EVALUATION_ALIASES[metric]
    if metric.startswith(EVAL_PREFIX) and len(metric) > len(EVAL_PREFIX):
        return metric[len(EVAL_PREFIX):]
    if metric.endswith(EVAL_SUFFIX) and len(metric) > len(EVAL_SUFFIX) and metric not in REQUEST_METRICS:
        return metric[: -len(EVAL_SUFFIX)]
    return None


def is_known(metric: str) -> bool:
    """Whether a rule may watch ``metric``."""
    return metric in REQUEST_METRICS or evaluation_name(metric) is not None


def allowed_text() -> str:
    """What ``metric_name`` may be, for error messages."""
    return ("one of " + ", ".join(REQUEST_METRICS) + ", or an evaluation metric: quality_score, toxicity_score, "
            "hallucination_score, <name>_score or eval:<name>")


def metric_names() -> list[str]:
    """The request metrics and the named evaluation metrics, for the dashboard's rule editor."""
    return [*REQUEST_METRICS, *EVALUATION_ALIASES]


# --- reading through analytics ------------------------------------------------------------------------------------

def _overview(engine: Engine, start: dt.datetime, end: dt.datetime, filters: Mapping[str, Any]) -> Overview:
    """The one call into ``analytics.overview``: totals, rates and response-time percentiles of [start, end).

    Rule filters map to analytics fields: model_name -> model, tags (one tag) -> tag, kind and user_id as they
    are; without ``kind`` analytics counts ``generation`` spans (LLM calls).
    """
    fields: dict[str, Any] = {}
    if filters.get("model_name") is not None:
        fields["model"] = filters["model_name"]
    if filters.get("kind") is not None:
        fields["kind"] = filters["kind"]
    if filters.get("user_id") is not None:
        fields["user_id"] = filters["user_id"]
    if filters.get("tags"):
        fields["tag"] = filters["tags"][0]
    return analytics.overview(start, end, engine=engine, include_traces=False, **fields)


class MetricReader:
    """Reads rule metrics for one evaluation tick; overviews of the same window and filters are fetched once."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._cache: dict[tuple[Any, ...], Any] = {}

    def measure(self, metric: str, start: dt.datetime, end: dt.datetime,
                filters: Mapping[str, Any] | None = None) -> Measurement:
        """The value of ``metric`` over [start, end) with the rule's filters.

        >>> MetricReader(engine).measure("error_rate", start, end, {"model_name": "gpt-4o"})   # doctest: +SKIP
        Measurement(value=0.02, count=500, zero_traffic_is_data=False)
        """
        filters = dict(filters or {})
        eval_name = evaluation_name(metric)
        if eval_name is not None:
            key = ("eval", eval_name, start, end, _freeze(filters.get("model_name")))
            if key not in self._cache:
                self._cache[key] = analytics.evaluation_average(eval_name, start, end,
                                                                model_name=filters.get("model_name"),
                                                                engine=self.engine)
            value, count = self._cache[key]
            return Measurement(value, count)
        spec = REQUEST_METRICS[metric]
        key = ("overview", start, end, _freeze(filters))
        if key not in self._cache:
            self._cache[key] = _overview(self.engine, start, end, filters)
        ov = self._cache[key]
        count = int(ov.get("total_requests") or 0)
        value = spec.read(ov)
        if value is not None and not math.isfinite(value):
            value = None
        return Measurement(value, count, spec.zero_traffic_is_data)


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


# --- anomaly: robust z-score against preceding windows ------------------------------------------------------------

MIN_BASELINE_POINTS = 3


def robust_z(value: float, baseline: Sequence[float]) -> float | None:
    """How many robust deviations ``value`` is from the baseline median (MAD scaled by 1.4826 to match a standard
    deviation); None with fewer than 3 baseline points. A flat baseline uses 1% of its median (at least 1e-9) as
    the deviation, so any real departure from a constant counts.

    >>> round(robust_z(200.0, [100.0, 110.0, 90.0, 105.0, 95.0]), 2)
    13.49
    """
    if len(baseline) < MIN_BASELINE_POINTS:
        return None
    median = statistics.median(baseline)
    mad = statistics.median(abs(b - median) for b in baseline)
    scale = 1.4826 * mad
    if scale <= 0:
        scale = max(abs(median) * 0.01, 1e-9)
    return (value - median) / scale
