"""Bad input to llmobs.analytics fails at once with a ValueError that names the argument and what is allowed."""

from __future__ import annotations

import datetime as dt

import pytest

from llmobs import analytics
from llmobs.analytics import Filters, parse_duration, parse_time

UTC = dt.timezone.utc


@pytest.mark.parametrize("call, fragment", [
    (lambda: Filters(kind="llm"), "kind='llm' is unknown; allowed: span, generation"),
    (lambda: Filters(status="failed"), "status='failed' is unknown; allowed: ok, error"),
    (lambda: Filters(start="2024-02-01", end="2024-01-01"), "is before start"),
    (lambda: Filters(start="yesterday"), "start='yesterday' is not a time"),
    (lambda: Filters(end="2024-13-01"), "end='2024-13-01' is not a time"),
    (lambda: Filters(model=[]), "non-empty list"),
    (lambda: Filters(user_id=42), "user_id=42 must be a string"),
    (lambda: analytics.overview(colour="red"), "unknown filter colour; allowed: start, end, model"),
    (lambda: analytics.overview(filters={"model": "x"}), "must be a llmobs.analytics.Filters"),
    (lambda: analytics.timeseries("latency"), "unknown timeseries metric 'latency'; allowed: requests"),
    (lambda: analytics.timeseries("requests", bucket="5x"), "bucket='5x' is not a duration"),
    (lambda: analytics.timeseries("requests", bucket="0.5s"), "whole number of seconds"),
    (lambda: analytics.timeseries("requests", "2024-01-01", "2024-02-01", bucket="1m"), "the most is 10000"),
    (lambda: analytics.percentile("speed", 0.5), "unknown percentile metric 'speed'"),
    (lambda: analytics.percentile("latency", 95), "q=95 must be a number between 0 and 1"),
    (lambda: analytics.top_traces(by="fun"), "by='fun' is unknown; allowed: duration, cost"),
    (lambda: analytics.top_traces(limit=0), "limit=0 must be a positive integer"),
    (lambda: analytics.error_breakdown(examples=-1), "examples=-1 must be a positive integer"),
    (lambda: analytics.export("x.csv", format="xml"), "format='xml' is unknown; allowed: csv, json, jsonl"),
    (lambda: analytics.export("x.csv", table="alerts"), "table='alerts' is unknown; allowed: spans, traces"),
    (lambda: parse_duration("-5m"), "is not a duration"),
    (lambda: parse_duration(0), "must be positive"),
])
def test_bad_arguments_raise_value_error_naming_them(call, fragment: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=_escaped(fragment)):
        call()


def _escaped(text: str) -> str:
    import re

    return re.escape(text)


def test_times_parse_as_utc_whatever_their_form() -> None:
    assert parse_time("2024-01-31T23:59:59") == dt.datetime(2024, 1, 31, 23, 59, 59, tzinfo=UTC)
    assert parse_time("2024-01-31T23:59:59Z") == dt.datetime(2024, 1, 31, 23, 59, 59, tzinfo=UTC)
    assert parse_time("2024-02-01T01:59:59+02:00") == dt.datetime(2024, 1, 31, 23, 59, 59, tzinfo=UTC)
    assert parse_time(dt.date(2024, 1, 31)) == dt.datetime(2024, 1, 31, tzinfo=UTC)
    assert parse_time(0) == dt.datetime(1970, 1, 1, tzinfo=UTC)
    assert parse_duration("15m") == dt.timedelta(minutes=15) and parse_duration("7d") == dt.timedelta(days=7)
    now = dt.datetime(2024, 1, 2, tzinfo=UTC)
    assert analytics.since("24h", now) == dt.datetime(2024, 1, 1, tzinfo=UTC)


def test_filters_normalise_their_fields() -> None:
    f = Filters(start="2024-01-01", model="gpt-4o", kind="all")
    assert f.start == dt.datetime(2024, 1, 1, tzinfo=UTC) and f.model == ("gpt-4o",) and f.kind is None
    assert Filters().kind == "generation"
    assert f.replace(status="error").status == "error" and f.status is None
