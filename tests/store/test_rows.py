"""Row tuples the writer builds hold values exactly as SQLAlchemy would have bound them."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy.dialects import sqlite
from sqlalchemy.types import DateTime

from llmobs.context import SpanRecord, TraceState, format_span_id, format_trace_id, new_trace_id
from llmobs.store.rows import SPAN_COLUMNS, aware_time, span_tuple, sqlite_time

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


def test_sqlite_time_stays_exact_when_starts_and_ends_alternate_between_many_seconds() -> None:
    """Spans of one batch start and end in different seconds; past 256 cached seconds the cache starts over."""
    dialect = sqlite.dialect()
    bind = dialect.type_descriptor(DateTime()).bind_processor(dialect)
    base = 1_700_000_000_000_000
    for i in range(600):
        for epoch_us in (base + i * 1_000_007, base + (i % 7) * 1_000_000 + 999_999, base - i * 3_000_001):
            assert sqlite_time(epoch_us) == bind(EPOCH + dt.timedelta(microseconds=epoch_us))


@pytest.mark.parametrize("value", [0, 1, 0xABC, 2**63 - 1, 2**64 - 1])
def test_ids_are_fixed_width_lowercase_hex(value: int) -> None:
    assert format_span_id(value) == format(value, "x").rjust(16, "0")
    assert format_trace_id(value) == format(value, "x").rjust(32, "0")


def finished(**fields: Any) -> SpanRecord:
    record = SpanRecord("call", "generation", TraceState(new_trace_id(), True), None, "observe")
    for key, value in fields.items():
        setattr(record, key, value)
    record.perf_end, record.ended = record.perf_start + 2_500_000, True
    return record


def row_of(record: SpanRecord, redact_secrets: bool = True) -> dict[str, Any]:
    return dict(zip(SPAN_COLUMNS, span_tuple(record, 1000, redact_secrets, sqlite_time)))


@pytest.mark.parametrize(("given", "stored"), [
    ((40, 12, None), (40, 12, 52)),
    (("40", 12, None), (40, 12, 52)),
    ((-1, 12, None), (None, 12, 12)),
    ((40, 12, 100), (40, 12, 100)),
    ((40, 12, "lots"), (40, 12, 52)),
    ((None, None, 7), (None, None, 7)),
    ((None, None, None), (None, None, None)),
])
def test_token_counts_are_stored_as_non_negative_ints_with_a_derived_total(given: tuple[Any, ...],
                                                                           stored: tuple[Any, ...]) -> None:
    row = row_of(finished(prompt_tokens=given[0], completion_tokens=given[1], total_tokens=given[2]))
    assert (row["prompt_tokens"], row["completion_tokens"], row["total_tokens"]) == stored


@pytest.mark.parametrize(("cost", "stored"), [(0.25, 0.25), (1, 1.0), ("0.5", 0.5), (float("nan"), None),
                                              ("free", None), (None, None)])
def test_cost_is_stored_as_a_number_or_null(cost: Any, stored: float | None) -> None:
    assert row_of(finished(cost_usd=cost))["cost_usd"] == stored


def test_plain_and_odd_names_models_providers_and_sources() -> None:
    row = row_of(finished(model_name="gpt-4o-mini", provider="openai"))
    assert (row["name"], row["model_name"], row["provider"], row["source"]) == ("call", "gpt-4o-mini", "openai",
                                                                               "observe")
    odd = finished(model_name="m\x00" + "x" * 300, provider=42, source=None)
    odd.name = ""
    row = row_of(odd)
    assert row["name"] == "unnamed" and row["source"] == "observe" and row["provider"] == "42"
    assert "\x00" not in row["model_name"] and len(row["model_name"]) == 256 and row["model_name"].endswith("…")


def test_each_json_field_is_redacted_on_its_own() -> None:
    record = finished(output="the answer", metadata={"auth": "Bearer abcdefghijklmnop.qrstuvwx"})
    record.input = {"key": "sk-abcdefghijklmnopqrstuvwx"}
    row = row_of(record)
    assert row["input"] == '{"key":"[REDACTED]"}' and row["output"] == '"the answer"'
    assert row["metadata"] == '{"auth":"[REDACTED]"}'
    kept = row_of(record, redact_secrets=False)
    assert "sk-abcdefghijklmnopqrstuvwx" in kept["input"] and "Bearer abcdefghijklmnop" in kept["metadata"]


@pytest.mark.parametrize("field", ["input", "output", "metadata"])
def test_a_secret_in_any_one_json_field_is_found(field: str) -> None:
    record = finished(input={"q": "plain"}, output="plain", metadata={"team": "search"})
    setattr(record, field, {"contact": "bob@example.com"})
    row = row_of(record)
    assert row[field] == '{"contact":"[REDACTED]"}'
    assert all("[REDACTED]" not in row[other] for other in ("input", "output", "metadata") if other != field)
