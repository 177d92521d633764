"""LLMMetrics and MetricsCollector: the seed API for recording LLM calls by hand and reading summary statistics.

A collected metric becomes a ``generation`` span (source ``collector``) through the same pipeline as every other
span, so it shows up in every figure; nothing keeps a second copy. Each one is its own trace. Its quality_score
becomes a ``quality`` evaluation of that span (the evaluations table), where the evaluators' scores also go.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from llmobs import pipeline as _pipeline
from llmobs.context import current_span, perf_to_wall_ns
from llmobs.scores import make_score
from llmobs.tracing import NoopSpan, record_error, start_span

log = logging.getLogger("llmobs")
UTC = dt.timezone.utc
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
SPAN_NAME = "llm_request"
SOURCE = "collector"
# A request's quality_score is stored as an evaluation of this name, where every quality figure is read from.
QUALITY_EVALUATION = "quality"
QUALITY_SOURCE = "custom"


@dataclass
class LLMMetrics:
    """One LLM request as measured by the caller. ``timestamp`` is when it started (naive = UTC).

    >>> LLMMetrics(timestamp="2024-01-15T10:00:00", request_id="req_123", model_name="gpt-4", prompt_tokens=100,
    ...            completion_tokens=200, total_tokens=300, response_time_ms=1500.0, cost_usd=0.006, success=True,
    ...            quality_score=0.85).total_tokens
    300
    """

    timestamp: str | dt.datetime | None = None
    request_id: str | None = None
    model_name: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    response_time_ms: float | None = None
    cost_usd: float | None = None
    success: bool = True
    error_message: str | None = None
    error_type: str | None = None
    quality_score: float | None = None
    provider: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    metadata: dict[str, Any] | None = None


class MetricsCollectorContext:
    """Times a block and records it as one request; an exception marks it failed and is re-raised unchanged.

    >>> with collector.MetricsCollectorContext(collector, "req_1", "gpt-4") as m:   # doctest: +SKIP
    ...     m.prompt_tokens, m.completion_tokens = 50, 120
    """

    def __init__(self, collector: "MetricsCollector", request_id: str | None, model_name: str | None,
                 **fields: Any) -> None:
        self.collector = collector
        self.metrics = LLMMetrics(request_id=request_id, model_name=model_name, **fields)
        self._t0 = 0

    def __enter__(self) -> LLMMetrics:
        if self.metrics.timestamp is None:
            self.metrics.timestamp = dt.datetime.now(UTC)
        self._t0 = time.perf_counter_ns()
        return self.metrics

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        elapsed_ms = (time.perf_counter_ns() - self._t0) / 1e6
        m = self.metrics
        if m.response_time_ms is None:
            m.response_time_ms = elapsed_ms
        if exc is not None:
            m.success = False
            m.error_type = m.error_type or type(exc).__qualname__
            m.error_message = m.error_message or str(exc)
        try:
            self.collector.collect_metrics(m, _error=exc)
        except Exception:  # noqa: BLE001 - the user's block decides what is raised, never the recording
            log.exception("llmobs: could not record metrics of request %r", m.request_id)

    async def __aenter__(self) -> LLMMetrics:
        return self.__enter__()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.__exit__(exc_type, exc, tb)


class MetricsCollector:
    """Records LLMMetrics into the configured database and reads summary statistics back through analytics.

    >>> collector = MetricsCollector()
    >>> collector.collect_metrics(LLMMetrics(model_name="gpt-4", response_time_ms=1500.0, total_tokens=300))
    ... # doctest: +SKIP
    """

    # The seed API calls it as ``collector.MetricsCollectorContext(collector, request_id, model_name)``.
    MetricsCollectorContext = MetricsCollectorContext

    def __init__(self, source: str = SOURCE) -> None:
        self.source = source

    def track(self, request_id: str | None, model_name: str | None, **fields: Any) -> MetricsCollectorContext:
        """A context manager timing one request: ``with collector.track("req_1", "gpt-4") as m: ...``."""
        return MetricsCollectorContext(self, request_id, model_name, **fields)

    def collect_metrics(self, metrics: LLMMetrics, *, _error: BaseException | None = None) -> str | None:
        """Record ``metrics`` as a generation span starting at ``metrics.timestamp`` and lasting
        ``response_time_ms``; returns its span id (None when llmobs is disabled). Bad values raise ValueError."""
        if not isinstance(metrics, LLMMetrics):
            raise ValueError(f"llmobs.monitoring: collect_metrics expects an LLMMetrics, got {type(metrics).__name__}")
        start = _start_time(metrics.timestamp)
        duration_ms = _duration(metrics.response_time_ms)
        span = _root_generation(self.source, metrics)
        if isinstance(span, NoopSpan):
            return None
        start_ns = (start - EPOCH) // dt.timedelta(microseconds=1) * 1000
        # The writer turns perf_start into wall time with the clock offset of its batch, which may have moved by a
        # few microseconds since now; wall_start_ns is the exact start for a writer that honours it.
        span.perf_start = start_ns - perf_to_wall_ns(0)
        span.wall_start_ns = start_ns  # type: ignore[attr-defined]
        span.perf_end = span.perf_start + round(duration_ms * 1e6)
        if _error is not None:
            record_error(span, _error)
        elif not metrics.success:
            span.status = "error"
            span.error_type = metrics.error_type
            span.error_message = metrics.error_message
        trace = span.trace
        trace.user_id, trace.session_id = metrics.user_id, metrics.session_id
        quality = None if metrics.quality_score is None else _number("quality_score", metrics.quality_score)
        span.quality_score = quality  # type: ignore[attr-defined]  # read by PerformanceTracker.processor only
        span.ended = True
        _pipeline.submit(span)
        if quality is not None:
            _pipeline.submit(make_score(QUALITY_EVALUATION, quality, span_id=span.id, trace_id=span.trace_id,
                                        source=QUALITY_SOURCE, model_name=metrics.model_name,
                                        created_at=start))  # type: ignore[arg-type]
        return span.id

    def get_summary_stats(self, start_time: Any = None, end_time: Any = None, model_name: str | None = None,
                          *, flush_timeout: float = 10.0) -> dict[str, Any]:
        """Figures over generation spans in [start_time, end_time) (naive times are UTC), after flushing what was
        collected: the analytics overview plus ``model_breakdown`` {model: figures}.

        >>> collector.get_summary_stats("2024-01-01T00:00:00", "2024-01-31T23:59:59")["success_rate"]  # doctest: +SKIP
        """
        from llmobs import analytics, api

        api.flush(flush_timeout)
        stats = analytics.overview(start_time, end_time, model=model_name)
        stats["model_breakdown"] = {m["model_name"] or "(none)": m for m in stats["models"]}
        return stats


def _root_generation(source: str, m: LLMMetrics) -> Any:
    """A new root generation span (never nested under the caller's current span: a request is its own trace)."""
    metadata: dict[str, Any] = dict(m.metadata or {})
    if m.request_id is not None:
        metadata["request_id"] = m.request_id
    fields: dict[str, Any] = {"model_name": m.model_name, "provider": m.provider,
                              "prompt_tokens": _count("prompt_tokens", m.prompt_tokens),
                              "completion_tokens": _count("completion_tokens", m.completion_tokens),
                              "total_tokens": _count("total_tokens", m.total_tokens),
                              "cost_usd": None if m.cost_usd is None else _number("cost_usd", m.cost_usd, 0.0)}
    token = current_span.set(None)
    try:
        return start_span(SPAN_NAME, "generation", source=source,
                          metadata=metadata or None, **{k: v for k, v in fields.items() if v is not None})
    finally:
        current_span.reset(token)


def _start_time(value: str | dt.datetime | None) -> dt.datetime:
    if value is None:
        return dt.datetime.now(UTC)
    from llmobs.analytics.filters import parse_time

    try:
        return parse_time(value, "timestamp")
    except ValueError as exc:
        raise ValueError(str(exc).replace("llmobs.analytics", "llmobs.monitoring")) from None


def _duration(value: float | None) -> float:
    return 0.0 if value is None else _number("response_time_ms", value, 0.0)


def _number(name: str, value: Any, minimum: float | None = None) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (minimum is not None and value < minimum):
        need = "a finite number" + (f" >= {minimum:g}" if minimum is not None else "")
        raise ValueError(f"llmobs.monitoring: {name}={value!r} must be {need}")
    return float(value)


def _count(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"llmobs.monitoring: {name}={value!r} must be an integer >= 0")
    return value
