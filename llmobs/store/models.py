"""SQLModel tables: the data contract every part of llmobs reads and writes.

``spans`` holds one row per observed unit (an LLM call is a ``generation`` span with model, tokens and cost);
``traces`` one row per call tree with its totals. Times are timezone-aware UTC on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Optional

from sqlalchemy import JSON, BigInteger, Column, DateTime, Float, Index, Integer, String, Text, text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

UTC = dt.timezone.utc
SPAN_KINDS = ("span", "generation", "chain", "tool", "retriever", "embedding", "agent", "evaluator")
STATUSES = ("ok", "error")


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A datetime stored as UTC and always read back timezone-aware, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        """Normalise to UTC; naive values are taken as UTC. SQLite stores the naive UTC wall time."""
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        """Return an aware UTC datetime."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def index_where_set(name: str, *columns: str) -> Index:
    """An index on ``columns`` holding only the rows whose first column is set (partial, on SQLite and PostgreSQL).

    Queries look these columns up by value (``user_id = ?``, ``model_name IN (...)``, ``IS NOT NULL`` walks), which
    both databases know cannot match NULL, so a row without a value needs no entry: an anonymous trace, or a span
    that is no model call, then updates one index fewer when it is inserted.
    """
    condition = text(f"{columns[0]} IS NOT NULL")
    return Index(name, *columns, sqlite_where=condition, postgresql_where=condition)


def _col(type_: Any, *, index: bool = False, name: str | None = None) -> Any:
    """A nullable column, optionally indexed (SQLModel needs a fresh Column per field)."""
    if name is None:
        return Field(default=None, sa_column=Column(type_, index=index, nullable=True))
    return Field(default=None, sa_column=Column(name, type_, index=index, nullable=True))


class Trace(SQLModel, table=True):
    """One call tree: who, when, how long, and the totals over its spans."""

    __tablename__ = "traces"
    __table_args__ = (Index("ix_traces_start_time", "start_time"),
                      index_where_set("ix_traces_user_start", "user_id", "start_time"),
                      index_where_set("ix_traces_session_start", "session_id", "start_time"))

    id: str = Field(sa_column=Column(String(32), primary_key=True))
    name: Optional[str] = _col(String(512))
    start_time: Optional[dt.datetime] = _col(UTCDateTime())
    end_time: Optional[dt.datetime] = _col(UTCDateTime())
    duration_ms: Optional[float] = _col(Float())
    status: Optional[str] = _col(String(16))
    user_id: Optional[str] = _col(String(256))
    session_id: Optional[str] = _col(String(256))
    tags: Optional[list[str]] = _col(JSON(none_as_null=True))
    metadata_: Optional[dict[str, Any]] = _col(JSON(none_as_null=True), name="metadata")
    input: Optional[str] = _col(Text())
    output: Optional[str] = _col(Text())
    span_count: Optional[int] = _col(Integer())
    error_count: Optional[int] = _col(Integer())
    prompt_tokens: Optional[int] = _col(BigInteger())
    completion_tokens: Optional[int] = _col(BigInteger())
    total_tokens: Optional[int] = _col(BigInteger())
    cost_usd: Optional[float] = _col(Float())


class Span(SQLModel, table=True):
    """One observed unit of work; ``input``/``output`` hold JSON text, ``metadata`` a JSON object."""

    __tablename__ = "spans"
    # Covering indexes let analytics answer range, per-model and percentile queries from the index alone
    # (1M spans: overview 3.1 s -> 0.4 s on SQLite) at the price of a slower insert. ``source`` and ``trace_tags``
    # ride along so that the dashboard's source and tag filters read no table row either (insert cost within
    # measurement noise; NULL tags cost a byte). A tag filter over 30 days of 1M spans: 4.4 s -> 3.2 s.
    # No index is keyed by duration: real durations land at random places in such an index, so each batch dirties
    # a page per span and the writer fell from 46-60k to 12-20k spans/s on a growing file. Percentiles sort the
    # values of the range instead (docs/monitoring.md gives the two optional indexes that trade ingest for them).
    __table_args__ = (Index("ix_spans_start_time", "start_time"),
                      Index("ix_spans_trace_id", "trace_id"),
                      index_where_set("ix_spans_model_start", "model_name", "start_time"),
                      Index("ix_spans_kind_start_cover", "kind", "start_time", "model_name", "status", "duration_ms",
                            "total_tokens", "cost_usd", "source", "trace_tags"),
                      Index("ix_spans_kind_model_start_cover", "kind", "model_name", "start_time", "status",
                            "duration_ms", "total_tokens", "cost_usd", "source", "trace_tags"))

    id: str = Field(sa_column=Column(String(32), primary_key=True))
    trace_id: str = Field(sa_column=Column(String(32), nullable=False))
    parent_id: Optional[str] = _col(String(32))
    name: str = Field(sa_column=Column(String(512), nullable=False))
    kind: str = Field(default="span", sa_column=Column(String(16), nullable=False))
    start_time: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    end_time: Optional[dt.datetime] = _col(UTCDateTime())
    duration_ms: Optional[float] = _col(Float())
    status: str = Field(default="ok", sa_column=Column(String(16), nullable=False))
    error_type: Optional[str] = _col(String(256))
    error_message: Optional[str] = _col(Text())
    error_traceback: Optional[str] = _col(Text())
    input: Optional[str] = _col(Text())
    output: Optional[str] = _col(Text())
    metadata_: Optional[dict[str, Any]] = _col(JSON(none_as_null=True), name="metadata")
    model_name: Optional[str] = _col(String(256))
    provider: Optional[str] = _col(String(64))
    prompt_tokens: Optional[int] = _col(Integer())
    completion_tokens: Optional[int] = _col(Integer())
    total_tokens: Optional[int] = _col(Integer())
    cost_usd: Optional[float] = _col(Float())
    time_to_first_token_ms: Optional[float] = _col(Float())
    source: str = Field(default="observe", sa_column=Column(String(32), nullable=False))
    # The trace's tags (the JSON list of ``traces.tags``) repeated on each span, so that a tag filter over a range of
    # spans reads the span's own row instead of looking its trace up (1M spans: 4.6 s -> 0.7 s on SQLite).
    trace_tags: Optional[str] = _col(Text())


EVALUATION_SOURCES = ("heuristic", "embedding", "llm_judge", "human", "custom")


class Evaluation(SQLModel, table=True):
    """One score of one metric, linked to the span and trace it judges (automatic or human)."""

    __tablename__ = "evaluations"
    __table_args__ = (Index("ix_evaluations_span_id", "span_id"),
                      Index("ix_evaluations_trace_id", "trace_id"),
                      Index("ix_evaluations_name_created", "name", "created_at"),
                      Index("ix_evaluations_model_created", "model_name", "created_at"))

    id: str = Field(sa_column=Column(String(32), primary_key=True))
    span_id: Optional[str] = _col(String(32))
    trace_id: Optional[str] = _col(String(32))
    name: str = Field(sa_column=Column(String(128), nullable=False))
    value: Optional[float] = _col(Float())
    label: Optional[str] = _col(String(128))
    comment: Optional[str] = _col(Text())
    source: str = Field(default="custom", sa_column=Column(String(16), nullable=False))
    evaluator_version: Optional[str] = _col(String(64))
    model_name: Optional[str] = _col(String(256))
    task_type: Optional[str] = _col(String(32))
    author: Optional[str] = _col(String(256))
    metadata_: Optional[dict[str, Any]] = _col(JSON(none_as_null=True), name="metadata")
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
