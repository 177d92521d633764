"""@observe on every kind of callable, asserted on the rows that land in a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import gc
import inspect
import json
import threading
import traceback
from typing import Any

import pytest

import llmobs
from tests.support.databases import Store


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


# --- return values, exceptions, wrapper metadata -------------------------------------------------------------------

def test_sync_function_returns_the_identical_object_and_records_a_span(store: Store) -> None:
    payload = {"answer": [1, 2, 3]}

    @llmobs.observe
    def answer(question: str) -> dict[str, Any]:
        return payload

    assert answer("why?") is payload
    row = store.span("test_sync_function_returns_the_identical_object_and_records_a_span.<locals>.answer")
    assert row["kind"] == "span" and row["status"] == "ok" and row["source"] == "observe"
    assert loads(row["input"]) == {"question": "why?"}
    assert loads(row["output"]) == {"answer": [1, 2, 3]}
    assert row["parent_id"] is None and row["duration_ms"] >= 0
    assert row["start_time"].tzinfo is not None and row["end_time"] >= row["start_time"]


def test_exception_is_the_same_object_with_traceback_and_is_recorded(store: Store) -> None:
    error = ValueError("bad input 42")

    @llmobs.observe(name="failing")
    def failing() -> None:
        raise error

    with pytest.raises(ValueError) as info:
        failing()
    assert info.value is error
    frames = [f.name for f in traceback.extract_tb(info.value.__traceback__)]
    assert frames[-1] == "failing"
    row = store.span("failing")
    assert row["status"] == "error" and row["error_type"] == "ValueError"
    assert row["error_message"] == "bad input 42"
    assert "raise error" in row["error_traceback"] and "ValueError: bad input 42" in row["error_traceback"]
    trace = store.traces()[0]
    assert trace["status"] == "error" and trace["error_count"] == 1


def test_wrapper_keeps_name_doc_signature_and_function_kind() -> None:
    def plain(a: int, b: str = "x") -> str:
        """Plain doc."""
        return b * a

    async def coro(a: int) -> int:
        """Coro doc."""
        return a

    def gen(n: int):  # type: ignore[no-untyped-def]
        yield n

    async def agen(n: int):  # type: ignore[no-untyped-def]
        yield n

    for fn in (plain, coro, gen, agen):
        wrapped = llmobs.observe(fn)
        assert wrapped.__name__ == fn.__name__ and wrapped.__doc__ == fn.__doc__
        assert inspect.signature(wrapped) == inspect.signature(fn)
        assert inspect.iscoroutinefunction(wrapped) == inspect.iscoroutinefunction(fn)
        assert inspect.isasyncgenfunction(wrapped) == inspect.isasyncgenfunction(fn)
        assert inspect.isgeneratorfunction(wrapped) == inspect.isgeneratorfunction(fn)


def test_unknown_kind_fails_at_decoration_with_allowed_values() -> None:
    with pytest.raises(ValueError, match="kind='llm'.*generation"):
        llmobs.observe(kind="llm")(lambda: None)


# --- kinds of callables ----------------------------------------------------------------------------------------------

def test_async_function_is_recorded_with_its_result(store: Store) -> None:
    @llmobs.observe(name="double", kind="tool")
    async def double(x: int) -> int:
        await asyncio.sleep(0.01)
        return 2 * x

    assert asyncio.run(double(21)) == 42
    row = store.span("double")
    assert row["kind"] == "tool" and loads(row["output"]) == 42 and row["duration_ms"] >= 9


def test_generator_span_stays_open_until_exhausted_and_children_nest(store: Store) -> None:
    @llmobs.observe(name="child")
    def child(i: int) -> int:
        return i

    @llmobs.observe(name="tokens")
    def tokens(n: int):  # type: ignore[no-untyped-def]
        for i in range(n):
            child(i)
            yield f"t{i} "

    gen = tokens(3)
    assert list(gen) == ["t0 ", "t1 ", "t2 "]
    parent = store.span("tokens")
    children = [r for r in store.spans() if r["name"] == "child"]
    assert loads(parent["output"]) == "t0 t1 t2 "
    assert len(children) == 3 and {c["parent_id"] for c in children} == {parent["id"]}
    assert parent["time_to_first_token_ms"] is not None
    assert parent["end_time"] >= max(c["end_time"] for c in children)


def test_generator_left_with_break_or_garbage_collected_still_ends_its_span(store: Store) -> None:
    @llmobs.observe(name="numbers")
    def numbers():  # type: ignore[no-untyped-def]
        i = 0
        while True:
            yield i
            i += 1

    for value in numbers():
        if value == 2:
            break
    gen = numbers()
    next(gen)
    del gen
    gc.collect()
    rows = [r for r in store.spans() if r["name"] == "numbers"]
    assert len(rows) == 2
    assert sorted(len(loads(r["output"])) for r in rows) == [1, 3]
    assert all(r["status"] == "ok" for r in rows)


def test_generator_error_is_recorded_and_reraised(store: Store) -> None:
    @llmobs.observe(name="breaks")
    def breaks():  # type: ignore[no-untyped-def]
        yield 1
        raise KeyError("gone")

    with pytest.raises(KeyError):
        list(breaks())
    row = store.span("breaks")
    assert row["status"] == "error" and row["error_type"] == "KeyError"


def test_generator_send_and_return_value_pass_through(store: Store) -> None:
    @llmobs.observe(name="echo")
    def echo():  # type: ignore[no-untyped-def]
        received = yield "ready"
        yield f"got {received}"
        return "done"

    gen = echo()
    assert next(gen) == "ready"
    assert gen.send("ping") == "got ping"
    with pytest.raises(StopIteration) as stop:
        next(gen)
    assert stop.value.value == "done"
    assert loads(store.span("echo")["output"]) == "done"


def test_async_generator_span_collects_items_and_nests_children(store: Store) -> None:
    @llmobs.observe(name="achild")
    async def achild() -> str:
        return "c"

    @llmobs.observe(name="astream")
    async def astream(n: int):  # type: ignore[no-untyped-def]
        for i in range(n):
            await achild()
            yield i

    async def consume() -> list[int]:
        return [x async for x in astream(3)]

    assert asyncio.run(consume()) == [0, 1, 2]
    parent = store.span("astream")
    assert loads(parent["output"]) == [0, 1, 2]
    assert {r["parent_id"] for r in store.spans() if r["name"] == "achild"} == {parent["id"]}


def test_methods_classmethods_and_staticmethods_do_not_capture_self_or_cls(store: Store) -> None:
    class Agent:
        factor = 3

        @llmobs.observe(name="method")
        def method(self, x: int) -> int:
            return x * self.factor

        @llmobs.observe(name="klass")
        @classmethod
        def klass(cls, x: int) -> int:
            return x * cls.factor

        @classmethod
        @llmobs.observe(name="klass_inner")
        def klass_inner(cls, x: int) -> int:
            return x + cls.factor

        @llmobs.observe(name="static")
        @staticmethod
        def static(x: int) -> int:
            return -x

    agent = Agent()
    assert (agent.method(2), Agent.klass(2), Agent.klass_inner(2), Agent.static(2), agent.static(3)) == (6, 6, 5, -2,
                                                                                                       -3)
    for name in ("method", "klass", "klass_inner"):
        assert loads(store.span(name)["input"]) == {"x": 2}, name
    assert sorted(loads(r["input"])["x"] for r in store.spans() if r["name"] == "static") == [2, 3]


def test_function_returning_a_coroutine_keeps_its_span_open_until_awaited(store: Store) -> None:
    async def work() -> str:
        await asyncio.sleep(0.02)
        return "late"

    @llmobs.observe(name="returns_coro")
    def returns_coro():  # type: ignore[no-untyped-def]
        return work()

    assert asyncio.run(returns_coro()) == "late"
    row = store.span("returns_coro")
    assert loads(row["output"]) == "late" and row["duration_ms"] >= 15


# --- nesting -----------------------------------------------------------------------------------------------------------

def test_nested_calls_share_one_trace_with_parent_links_and_trace_totals(store: Store) -> None:
    @llmobs.observe(kind="retriever")
    def retrieve(q: str) -> list[str]:
        return ["doc-a", "doc-b"]

    @llmobs.observe(kind="generation")
    def generate(q: str, docs: list[str]) -> str:
        llmobs.update_current_span(model_name="my-model", provider="local", prompt_tokens=12, completion_tokens=5,
                                   cost_usd=0.25, time_to_first_token_ms=3.5, metadata={"temperature": 0})
        return "generated"

    @llmobs.observe(name="answer")
    def answer(q: str) -> str:
        llmobs.update_current_trace(user_id="u-42", session_id="s-1", tags=["prod"], metadata={"team": "search"})
        return generate(q, retrieve(q))

    answer("What is ML?")
    rows = {r["name"].rsplit(".", 1)[-1]: r for r in store.spans()}
    root, ret, gen = rows["answer"], rows["retrieve"], rows["generate"]
    assert root["trace_id"] == ret["trace_id"] == gen["trace_id"]
    assert ret["parent_id"] == root["id"] and gen["parent_id"] == root["id"]
    assert (gen["kind"], gen["model_name"], gen["provider"]) == ("generation", "my-model", "local")
    assert (gen["prompt_tokens"], gen["completion_tokens"], gen["total_tokens"]) == (12, 5, 17)
    assert gen["cost_usd"] == pytest.approx(0.25) and gen["time_to_first_token_ms"] == pytest.approx(3.5)
    assert gen["metadata"] == {"temperature": 0}
    [trace] = store.traces()
    assert trace["id"] == root["trace_id"] and trace["name"] == "answer"
    assert (trace["user_id"], trace["session_id"], trace["tags"]) == ("u-42", "s-1", ["prod"])
    assert trace["metadata"] == {"team": "search"}
    assert (trace["span_count"], trace["prompt_tokens"], trace["total_tokens"]) == (3, 12, 17)
    assert trace["cost_usd"] == pytest.approx(0.25)
    assert loads(trace["input"]) == {"q": "What is ML?"} and loads(trace["output"]) == "generated"


def _tag_count(store: Store, tag: str) -> int:
    from llmobs import analytics

    return analytics.overview(kind=None, tag=tag, engine=store.engine())["total_requests"]


def test_every_span_row_repeats_its_trace_tags_even_when_tagged_after_a_child_was_written(store: Store) -> None:
    @llmobs.observe(name="child")
    def child() -> int:
        return 1

    @llmobs.observe(name="root")
    def root() -> None:
        child()
        assert llmobs.flush(timeout=30)  # the first child is stored before the trace has any tag
        llmobs.update_current_trace(tags=["late", 'q"uote'])
        child()

    root()
    rows = store.spans()
    assert len(rows) == 3 and {r["trace_tags"] for r in rows} == {'["late","q\\"uote"]'}
    assert store.traces()[0]["tags"] == ["late", 'q"uote']
    assert (_tag_count(store, "late"), _tag_count(store, 'q"uote'), _tag_count(store, "lat")) == (3, 3, 0)


def test_a_tag_set_after_the_root_was_written_reaches_every_row_of_the_trace(store: Store) -> None:
    import contextvars

    kept: list[contextvars.Context] = []

    @llmobs.observe(name="root")
    def root() -> None:
        llmobs.update_current_trace(tags=["early"])
        kept.append(contextvars.copy_context())  # as a task that outlives the call would keep it

    @llmobs.observe(name="straggler")
    def straggler() -> None:
        llmobs.update_current_trace(tags=["later"])

    root()
    assert llmobs.flush(timeout=30) and _tag_count(store, "early") == 1
    kept[0].run(straggler)
    rows = store.spans()
    assert [r["name"] for r in rows] == ["root", "straggler"]
    assert {r["trace_tags"] for r in rows} == {'["early","later"]'}
    assert store.traces()[0]["tags"] == ["early", "later"]
    assert (_tag_count(store, "early"), _tag_count(store, "later")) == (2, 2)


def test_asyncio_gather_and_create_task_nest_under_the_awaiting_span(store: Store) -> None:
    @llmobs.observe(name="leaf")
    async def leaf(i: int) -> int:
        await asyncio.sleep(0.001 * (5 - i))
        return i

    @llmobs.observe(name="fan_out")
    async def fan_out() -> list[int]:
        gathered = await asyncio.gather(*(leaf(i) for i in range(5)))
        task = asyncio.create_task(leaf(9))
        return [*gathered, await task]

    async def main() -> None:
        await asyncio.gather(fan_out(), fan_out())

    asyncio.run(main())
    roots = [r for r in store.spans() if r["name"] == "fan_out"]
    leaves = [r for r in store.spans() if r["name"] == "leaf"]
    assert len(roots) == 2 and len(leaves) == 12
    for root in roots:
        mine = [r for r in leaves if r["parent_id"] == root["id"]]
        assert len(mine) == 6 and {r["trace_id"] for r in mine} == {root["trace_id"]}
    assert roots[0]["trace_id"] != roots[1]["trace_id"]


def test_concurrent_threads_keep_their_traces_apart(store: Store) -> None:
    @llmobs.observe(name="inner")
    def inner(tag: str) -> str:
        return tag

    @llmobs.observe(name="outer")
    def outer(tag: str) -> str:
        barrier.wait(5)
        return inner(tag)

    barrier = threading.Barrier(4)
    threads = [threading.Thread(target=outer, args=(f"t{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows = store.spans()
    outers = {loads(r["input"])["tag"]: r for r in rows if r["name"] == "outer"}
    inners = {loads(r["input"])["tag"]: r for r in rows if r["name"] == "inner"}
    assert len({r["trace_id"] for r in outers.values()}) == 4
    for tag, o in outers.items():
        assert inners[tag]["parent_id"] == o["id"] and inners[tag]["trace_id"] == o["trace_id"]


def test_thread_pool_work_nests_with_wrap_context_and_context_executor(store: Store) -> None:
    @llmobs.observe(name="task")
    def task(i: int) -> int:
        return i

    @llmobs.observe(name="parent")
    def parent() -> None:
        with llmobs.ContextThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(task, range(3)))
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=2) as plain:
            plain.submit(llmobs.wrap_context(task), 10).result()

    parent()
    root = store.span("parent")
    tasks = [r for r in store.spans() if r["name"] == "task"]
    assert len(tasks) == 4 and all(t["parent_id"] == root["id"] for t in tasks)


# --- manual API --------------------------------------------------------------------------------------------------------

def test_span_context_manager_sync_and_async_with_update_and_ids(store: Store) -> None:
    seen: dict[str, Any] = {}

    with llmobs.span("outer", kind="chain", input={"q": 1}) as outer:
        seen["trace"] = llmobs.get_current_trace_id()
        with llmobs.span("retrieve", kind="retriever") as s:
            s.update(output=["d1"], metadata={"k": 3})
            seen["span"] = llmobs.get_current_span_id()

    async def run() -> None:
        async with llmobs.span("async_step", kind="agent") as s:
            s.update(model_name="m", output="ok")

    asyncio.run(run())
    assert llmobs.get_current_span_id() is None and llmobs.get_current_trace_id() is None
    retrieve = store.span("retrieve")
    assert retrieve["id"] == seen["span"] and retrieve["trace_id"] == seen["trace"] == outer.trace_id
    assert retrieve["parent_id"] == store.span("outer")["id"] and retrieve["metadata"] == {"k": 3}
    assert loads(store.span("outer")["input"]) == {"q": 1}
    assert store.span("async_step")["kind"] == "agent" and loads(store.span("async_step")["output"]) == "ok"


def test_span_context_manager_records_the_exception_and_lets_it_through(store: Store) -> None:
    with pytest.raises(ZeroDivisionError):
        with llmobs.span("divide"):
            1 / 0  # noqa: B018
    assert store.span("divide")["error_type"] == "ZeroDivisionError"


def test_start_and_end_span_for_callbacks_that_open_and_close_separately(store: Store) -> None:
    run = llmobs.start_span("llm_run", kind="generation", source="custom", input=[{"role": "user", "content": "hi"}],
                            model_name="m1")
    llmobs.end_span(run, output="hello", prompt_tokens=3, completion_tokens=1)
    llmobs.end_span(run, output="again")  # ending twice records once
    [row] = store.spans()
    assert (row["source"], row["model_name"], row["total_tokens"]) == ("custom", "m1", 4)
    assert loads(row["output"]) == "hello"


# --- control flow exceptions -----------------------------------------------------------------------------------------

def test_keyboard_interrupt_and_cancellation_end_the_span_and_propagate(store: Store) -> None:
    @llmobs.observe(name="interrupted")
    def interrupted() -> None:
        raise KeyboardInterrupt

    @llmobs.observe(name="cancelled")
    async def cancelled() -> None:
        await asyncio.sleep(10)

    with pytest.raises(KeyboardInterrupt):
        interrupted()

    async def main() -> None:
        task = asyncio.create_task(cancelled())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert store.span("interrupted")["error_type"] == "KeyboardInterrupt"
    assert store.span("cancelled")["error_type"] == "CancelledError"


# --- sampling and enablement ---------------------------------------------------------------------------------------------

def test_disabled_llmobs_passes_calls_through_and_records_nothing(store: Store) -> None:
    llmobs.configure(enabled=False)

    @llmobs.observe(name="quiet")
    def quiet(x: int) -> int:
        return x + 1

    with llmobs.span("quiet_span"):
        assert quiet(1) == 2
    assert store.spans() == []


def test_sample_rate_keeps_or_drops_whole_traces(store: Store) -> None:
    @llmobs.observe(name="child")
    def child() -> None:
        return None

    @llmobs.observe(name="root")
    def root() -> None:
        child()
        child()

    llmobs.configure(sample_rate=0.5)
    for _ in range(200):
        root()
    rows = store.spans()
    roots = [r for r in rows if r["name"] == "root"]
    assert 50 < len(roots) < 150
    by_trace: dict[str, int] = {}
    for r in rows:
        by_trace[r["trace_id"]] = by_trace.get(r["trace_id"], 0) + 1
    assert set(by_trace.values()) == {3}
    llmobs.configure(sample_rate=0.0)
    root()
    assert len(store.spans()) == len(rows)

    calls: list[str] = []

    @llmobs.observe(name="later")
    def later() -> Any:  # a plain function returning a coroutine: its children run after it returned
        calls.append("later")

        async def body() -> None:
            child()
        return body()

    @llmobs.observe(name="failing")
    def failing() -> None:
        calls.append("failing")
        raise KeyError("k")

    asyncio.run(later())
    with pytest.raises(KeyError):
        failing()
    assert calls == ["later", "failing"]  # each ran once, as without llmobs
    assert len(store.spans()) == len(rows)  # and neither they nor the child under the coroutine were recorded
