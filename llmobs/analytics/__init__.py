"""The one query layer: every figure llmobs shows (CLI, dashboard, alert rules, evaluation, users) is computed here
from the ``spans``, ``traces`` and ``evaluations`` tables, in SQL, the same way on SQLite and PostgreSQL.

>>> from llmobs import analytics
>>> analytics.overview(analytics.since("24h"), model="gpt-4o")["p95_response_time"]   # doctest: +SKIP
"""

from __future__ import annotations

from llmobs.analytics.evaluations import (
    AUTOMATIC_SOURCES,
    HUMAN_RATING,
    HUMAN_THUMBS,
    evaluation_average,
    evaluation_coverage,
    evaluation_summary,
    score_agreement,
    stored_metrics,
    stored_values,
    unscored_spans,
)
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
from llmobs.analytics.traces import list_spans, list_traces, review_queue, trace_spans, trace_tree

__all__ = [
    "AUTOMATIC_SOURCES",
    "EXPORT_FORMATS",
    "EXPORT_TABLES",
    "Filters",
    "HUMAN_RATING",
    "HUMAN_THUMBS",
    "TIMESERIES_METRICS",
    "TOP_TRACE_ORDERS",
    "error_breakdown",
    "evaluation_average",
    "evaluation_coverage",
    "evaluation_summary",
    "export",
    "interpolate",
    "list_spans",
    "list_traces",
    "model_comparison",
    "overview",
    "parse_duration",
    "parse_time",
    "percentile",
    "review_queue",
    "score_agreement",
    "since",
    "storage_summary",
    "stored_metrics",
    "stored_values",
    "timeseries",
    "top_traces",
    "trace_spans",
    "trace_tree",
    "unscored_spans",
]
