"""Row tuples the writer builds hold values exactly as SQLAlchemy would have bound them."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.dialects import sqlite
from sqlalchemy.types import DateTime

from llmobs.context import format_span_id, format_trace_id
from llmobs.store.rows import aware_time, sqlite_time

EPOCH = dt.datetime(1970, 1, 1)


@pytest.mark.parametrize("epoch_us", [0, 1, 999_999, 1_700_000_000_000_000, 1_700_000_000_999_999,
                                      1_700_000_001_000_000, 1_700_000_000_500_000, 4_102_444_799_123_456])
def test_sqlite_time_is_sqlalchemys_datetime_text(epoch_us: int) -> None:
    """The cached-second formatter gives the text SQLAlchemy's SQLite DATETIME stores, microseconds included."""
    dialect = sqlite.dialect()
    bind = dialect.type_descriptor(DateTime()).bind_processor(dialect)
    moment = EPOCH + dt.timedelta(microseconds=epoch_us)
    assert sqlite_time(epoch_us) == bind(moment)
    assert sqlite_time(epoch_us + 1) == bind(moment + dt.timedelta(microseconds=1))  # same second, cached
    assert aware_time(epoch_us) == moment.replace(tzinfo=dt.timezone.utc)


@pytest.mark.parametrize("value", [0, 1, 0xABC, 2**63 - 1, 2**64 - 1])
def test_ids_are_fixed_width_lowercase_hex(value: int) -> None:
    assert format_span_id(value) == format(value, "x").rjust(16, "0")
    assert format_trace_id(value) == format(value, "x").rjust(32, "0")
