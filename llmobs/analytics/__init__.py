"""The one query layer: every figure llmobs shows (CLI, dashboard, alert rules, users) is computed here from the
``spans`` and ``traces`` tables, in SQL, the same way on SQLite and PostgreSQL.

>>> from llmobs import analytics
>>> analytics.overview(analytics.since("24h"), model="gpt-4o")["p95_response_time"]   # doctest: +SKIP
"""

from __future__ import annotations

from llmobs.analytics.export import EXPORT_FORMATS, EXPORT_TABLES, export
from llmobs.analytics.filters import Filters, parse_duration, parse_time, since
from llmobs.analytics.percentiles import interpolate
from llmobs.analytics.queries import (
    TIMESERIES_METRICS,
    TOP_TRACE_ORDERS,
    error_breakdown,
    model_comparison,
    overview,
    percentile,
    timeseries,
    top_traces,
)
from llmobs.analytics.storage import storage_summary
from llmobs.analytics.traces import list_traces, review_queue, trace_spans

__all__ = [
    "EXPORT_FORMATS",
    "EXPORT_TABLES",
    "Filters",
    "TIMESERIES_METRICS",
    "TOP_TRACE_ORDERS",
    "error_breakdown",
    "export",
    "interpolate",
    "list_traces",
    "model_comparison",
    "overview",
    "parse_duration",
    "parse_time",
    "percentile",
    "review_queue",
    "since",
    "storage_summary",
    "timeseries",
    "top_traces",
    "trace_spans",
]
