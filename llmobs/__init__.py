"""llmobs: LLM observability for Python — trace, measure, evaluate and alert, on an embedded SQLite file by default.

>>> import llmobs
>>> @llmobs.observe
... def answer(question: str) -> str:
...     return "42"
"""

from __future__ import annotations

from llmobs.api import configure, flush, get_settings, shutdown, stats
from llmobs.config import ConfigError
from llmobs.observe import observe
from llmobs.scores import score
from llmobs.tracing import (
    ContextThreadPoolExecutor,
    end_span,
    get_current_span_id,
    get_current_trace_id,
    span,
    start_span,
    update_current_span,
    update_current_trace,
    wrap_context,
)

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "ContextThreadPoolExecutor",
    "configure",
    "end_span",
    "flush",
    "get_current_span_id",
    "get_current_trace_id",
    "get_settings",
    "observe",
    "score",
    "shutdown",
    "span",
    "start_span",
    "stats",
    "update_current_span",
    "update_current_trace",
    "wrap_context",
]
