"""Ids and span records (llmobs.context): unique under threads, local in the index, named arguments on read."""

from __future__ import annotations

import threading

from llmobs.context import SpanRecord, TraceState, new_trace_id


def test_span_and_trace_ids_are_unique_across_threads_and_increase_within_a_process() -> None:
    made: list[list[tuple[int, int]]] = [[] for _ in range(8)]

    def work(out: list[tuple[int, int]]) -> None:
        for _ in range(5000):
            trace = TraceState(new_trace_id(), True)
            out.append((SpanRecord("s", "span", trace, None, "test").span_id, trace.trace_id))

    threads = [threading.Thread(target=work, args=(out,)) for out in made]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    span_ids = [s for out in made for s, _ in out]
    trace_ids = [t for out in made for _, t in out]
    assert len(set(span_ids)) == len(span_ids) == 40_000
    assert len(set(trace_ids)) == len(trace_ids)
    for out in made:
        assert [s for s, _ in out] == sorted(s for s, _ in out)
        assert all(0 < s < 2**64 for s, _ in out) and all(0 < t < 2**128 for _, t in out)


def test_raw_positional_arguments_are_named_on_first_read_and_an_assigned_input_wins() -> None:
    span = SpanRecord("s", "span", TraceState(new_trace_id(), True), None, "test")
    assert span.input is None
    span.arg_values, span.arg_names = ("q", 3), ("question", "n")
    assert span.input == {"question": "q", "n": 3}
    assert span.input is span.input
    span.input = {"replaced": True}
    assert span.input == {"replaced": True}
