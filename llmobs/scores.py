"""Scores: ``llmobs.score()`` records a judgment (user feedback, a human review, a custom metric) for a span or trace.

Scores travel through the same queue and writer as spans, so recording one never waits on the database.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from typing import Any

from llmobs import pipeline as _pipeline
from llmobs.context import current_span, format_span_id, format_trace_id
from llmobs.serialize import snapshot
from llmobs.store.models import EVALUATION_SOURCES

SCORE_COLUMNS = ("id", "span_id", "trace_id", "name", "value", "label", "comment", "source", "evaluator_version",
                 "model_name", "task_type", "author", "metadata", "created_at")


class ScoreRecord:
    """One score waiting to be written; its fields are the ``evaluations`` columns."""

    __slots__ = SCORE_COLUMNS

    def __init__(self, **fields: Any) -> None:
        for column in SCORE_COLUMNS:
            setattr(self, column, fields.get(column))

    def as_tuple(self) -> tuple[Any, ...]:
        """The values in SCORE_COLUMNS order."""
        return tuple(getattr(self, c) for c in SCORE_COLUMNS)


def _hex_id(value: Any, field: str, length: int) -> str | None:
    if value is None:
        return None
    text = str(value).strip().lower()
    if len(text) != length or any(c not in "0123456789abcdef" for c in text):
        raise ValueError(f"llmobs.score: {field}={value!r} is not a {length}-character hex id")
    return text


def make_score(name: str, value: float | int | bool | None = None, *, span_id: str | None = None,
               trace_id: str | None = None, label: str | None = None, comment: str | None = None,
               source: str = "human", evaluator_version: str | None = None, model_name: str | None = None,
               task_type: str | None = None, author: str | None = None, metadata: dict[str, Any] | None = None,
               created_at: dt.datetime | None = None) -> ScoreRecord:
    """Validate the arguments of a score and build its record; raises ValueError naming the bad argument."""
    if not isinstance(name, str) or not name.strip() or len(name) > 128:
        raise ValueError(f"llmobs.score: name={name!r} must be a non-empty string of at most 128 characters")
    if source not in EVALUATION_SOURCES:
        raise ValueError(f"llmobs.score: source={source!r} is not allowed; use one of {', '.join(EVALUATION_SOURCES)}")
    if value is not None:
        if isinstance(value, bool):
            value = float(value)
        if not isinstance(value, (int, float)) or not math.isfinite(float(value)):
            raise ValueError(f"llmobs.score: value={value!r} must be a finite number (or None with a label)")
        value = float(value)
    elif label is None:
        raise ValueError("llmobs.score: give a value, a label, or both")
    span_hex, trace_hex = _hex_id(span_id, "span_id", 16), _hex_id(trace_id, "trace_id", 32)
    if span_hex is None and trace_hex is None:
        current = current_span.get()
        if current is not None and current.trace.sampled:
            span_hex, trace_hex = format_span_id(current.span_id), format_trace_id(current.trace.trace_id)
    return ScoreRecord(id=uuid.uuid4().hex, span_id=span_hex, trace_id=trace_hex, name=name.strip(), value=value,
                       label=None if label is None else str(label)[:128],
                       comment=None if comment is None else str(comment), source=source,
                       evaluator_version=evaluator_version, model_name=model_name, task_type=task_type,
                       author=None if author is None else str(author)[:256],
                       metadata=None if metadata is None else snapshot(metadata),
                       created_at=created_at or dt.datetime.now(dt.timezone.utc))


def score(name: str, value: float | int | bool | None = None, *, span_id: str | None = None,
          trace_id: str | None = None, comment: str | None = None, source: str = "human", label: str | None = None,
          author: str | None = None, metadata: dict[str, Any] | None = None) -> str:
    """Record a score for a span or trace (default: the current span) and return the score's id.

    Use it for user feedback or any metric of your own; it lands in the ``evaluations`` table next to the
    automatic scores. The arguments are checked at once (ValueError); the write happens on the writer thread.

    >>> llmobs.score("user_feedback", 1, span_id=span_id, comment="thumbs up")   # doctest: +SKIP
    """
    record = make_score(name, value, span_id=span_id, trace_id=trace_id, label=label, comment=comment, source=source,
                        author=author, metadata=metadata)
    _pipeline.submit(record)  # type: ignore[arg-type]
    return record.id
