"""Dialect-specific SQL pieces (time buckets) and the index catalogue that picks fast query plans.

SQLite stores the DateTime columns as text 'YYYY-MM-DD HH:MM:SS.ffffff' (naive UTC), PostgreSQL as timestamptz.
Everything else in the analytics package is written once in SQLAlchemy Core for both.
"""

from __future__ import annotations

import datetime as dt
import threading
import weakref
from collections.abc import Iterator
from typing import Any

from sqlalchemy import BigInteger, cast, func, inspect, literal_column, type_coerce
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql import Select
from sqlalchemy.sql.elements import ColumnElement

from llmobs.analytics.filters import SPANS, UTC

EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
_catalogue: "weakref.WeakKeyDictionary[Engine, dict[str, list[tuple[str, ...]]]]" = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def bucket_expr(dialect: str, step_seconds: int) -> ColumnElement[Any]:
    """The bucket of ``step_seconds`` holding each span, buckets aligned to the epoch: a timestamptz from
    ``date_bin`` on PostgreSQL (cheaper to group by than epoch numbers), epoch seconds on SQLite. Read the
    grouped values with ``bucket_key``."""
    start = SPANS.c.start_time
    step = int(step_seconds)
    if dialect == "postgresql":
        # Literals, not bind parameters: GROUP BY must repeat the very same expression text.
        return func.date_bin(literal_column(f"INTERVAL '{step} seconds'"), start,
                             literal_column("TIMESTAMPTZ '1970-01-01 00:00:00+00'"))
    seconds = cast(func.strftime(literal_column("'%s'"), start), BigInteger)
    width = type_coerce(literal_column(str(step)), BigInteger)
    return (seconds // width) * width


def bucket_key(value: Any) -> int:
    """Epoch seconds of a grouped bucket value (a datetime on PostgreSQL, an integer on SQLite)."""
    return int(value.timestamp()) if isinstance(value, dt.datetime) else int(value)


def has_index(conn: Connection, columns: tuple[str, ...]) -> bool:
    """True when an index on ``spans`` starts with ``columns`` (looked up once per engine)."""
    engine = conn.engine
    with _lock:
        known = _catalogue.get(engine)
    if known is None:
        known = {"spans": [tuple(ix["column_names"]) for ix in inspect(conn).get_indexes("spans")]}
        with _lock:
            _catalogue[engine] = known
    return any(ix[: len(columns)] == columns for ix in known["spans"])


def forget_indexes(engine: Engine) -> None:
    """Drop the cached index list of ``engine`` (after adding or dropping indexes)."""
    with _lock:
        _catalogue.pop(engine, None)


def driver_rows(conn: Connection, stmt: Select[Any]) -> Iterator[tuple[Any, ...]]:
    """The rows of ``stmt`` as the driver returns them, without SQLAlchemy's Row objects: for fetches of up to a
    million numbers or names (percentiles sorted in Python), where building the Row objects cost as long as the
    query. Only for columns that need no result conversion (numbers, text), which is what the driver gives.
    """
    result = conn.execute(stmt)
    try:
        yield from result.cursor
    finally:
        result.close()
