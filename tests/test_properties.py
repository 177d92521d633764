"""Property: whatever the arguments and whatever the function raises, @observe changes nothing the caller sees."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import llmobs
from llmobs.pipeline import InMemoryExporter
from llmobs.serialize import encode, snapshot

values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text() | st.binary()
    | st.datetimes() | st.decimals(allow_nan=False) | st.uuids() | st.complex_numbers(),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=5) | st.integers(), children,
                                                                      max_size=5)
    | st.tuples(children, children) | st.frozensets(st.integers(), max_size=4),
    max_leaves=20,
)
exceptions = st.sampled_from([ValueError, KeyError, RuntimeError, ZeroDivisionError, OSError, TypeError,
                              StopAsyncIteration, UnicodeError])


def setup_module() -> None:
    llmobs.configure(reset=True, exporters=[InMemoryExporter()])


def teardown_module() -> None:
    from llmobs.pipeline import SQLExporter

    llmobs.flush(10)
    llmobs.configure(reset=True, exporters=[SQLExporter()])


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(args=st.lists(values, max_size=4), kwargs=st.dictionaries(st.from_regex(r"[a-z]{1,6}", fullmatch=True), values,
                                                                   max_size=3), result=values)
def test_return_value_is_the_identical_object(args: list[Any], kwargs: dict[str, Any], result: Any) -> None:
    @llmobs.observe
    def fn(*a: Any, **k: Any) -> Any:
        return result

    assert fn(*args, **kwargs) is result


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(args=st.lists(values, max_size=4), exc_type=exceptions, message=values)
def test_exception_is_the_identical_object(args: list[Any], exc_type: type[BaseException], message: Any) -> None:
    error = exc_type(message)

    @llmobs.observe
    def fn(*a: Any) -> Any:
        raise error

    @llmobs.observe
    async def afn(*a: Any) -> Any:
        raise error

    for call in (lambda: fn(*args), lambda: asyncio.run(afn(*args))):
        try:
            call()
        except BaseException as caught:  # noqa: BLE001
            assert caught is error
        else:
            raise AssertionError("the exception vanished")


@settings(max_examples=300, deadline=None)
@given(value=values, limit=st.integers(min_value=64, max_value=400))
def test_any_snapshot_encodes_to_bounded_json(value: Any, limit: int) -> None:
    import json

    text = encode(snapshot(value, limit), limit)
    assert text is None or (json.loads(text) is not None or text == "null") and len(text) <= limit * 2 + 200
