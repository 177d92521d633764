"""The LangChain callback handler with real langchain-core runnables, asserted on stored span rows."""

from __future__ import annotations

import gc
import json
import threading
from typing import Any, Iterator

import pytest
import tenacity
from langchain_core.agents import AgentAction, AgentFinish
from langchain_core.callbacks import CallbackManagerForChainRun, CallbackManagerForLLMRun
from langchain_core.documents import Document
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import FakeListChatModel, GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool

import llmobs
from llmobs.integrations import langchain as integration
from llmobs.integrations.langchain import LLMObsCallbackHandler
from llmobs.pricing import compute_cost
from llmobs.testing.openai_server import FakeOpenAIServer, Reply
from tests.support.databases import Store

pytestmark = pytest.mark.timeout(60)
PROMPT = ChatPromptTemplate.from_messages([("system", "Answer in one line."), ("user", "Tell me about {topic}")])
USAGE = {"input_tokens": 20, "output_tokens": 5, "total_tokens": 25}
BOOM = ValueError("model exploded")


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def by_name(rows: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [r for r in rows if r["name"] == name]


def children(rows: list[dict[str, Any]], parent: dict[str, Any]) -> list[str]:
    """Names of the direct children of ``parent``, in start order."""
    return [r["name"] for r in rows if r["parent_id"] == parent["id"]]


def fake_model(*contents: str, usage: dict[str, Any] | None = None) -> GenericFakeChatModel:
    """GenericFakeChatModel replying ``contents`` in turn, each with provider-style usage and model name."""
    return GenericFakeChatModel(messages=iter([
        AIMessage(content=c, usage_metadata=usage or USAGE,
                  response_metadata={"model_name": "gpt-4o-mini", "finish_reason": "stop"}) for c in contents]))


class EchoChatModel(BaseChatModel):
    """A real chat model that answers ``echo: <last message>`` and reports usage like a provider, also streamed."""

    model: str = "gpt-4o-mini"
    fail_on: str | None = None

    @property
    def _llm_type(self) -> str:
        return "echo-chat"

    def _reply(self, messages: list[BaseMessage]) -> tuple[list[str], dict[str, Any]]:
        text = str(messages[-1].content)
        if self.fail_on and self.fail_on in text:
            raise BOOM
        words = f"echo: {text}".split(" ")
        usage = {"input_tokens": 3 * len(messages) + len(text.split()), "output_tokens": len(words),
                 "total_tokens": 3 * len(messages) + len(text.split()) + len(words),
                 "input_token_details": {"cache_read": 2}, "output_token_details": {"reasoning": 1}}
        return [w if i == 0 else " " + w for i, w in enumerate(words)], usage

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        pieces, usage = self._reply(messages)
        message = AIMessage(content="".join(pieces), usage_metadata=usage,  # type: ignore[arg-type]
                            response_metadata={"model_name": f"{self.model}-2024-07-18", "finish_reason": "stop"})
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        pieces, usage = self._reply(messages)
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            chunk = AIMessageChunk(content=piece, usage_metadata=usage if last else None,  # type: ignore[arg-type]
                                   response_metadata={"model_name": f"{self.model}-2024-07-18",
                                                      "finish_reason": "stop"} if last else {})
            yield ChatGenerationChunk(message=chunk)


class ScriptedResultModel(BaseChatModel):
    """A real chat model returning one fixed ChatResult, to put usage where a given provider puts it."""

    result: ChatResult
    model: str = "scripted-model"

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        return self.result


class KeywordRetriever(BaseRetriever):
    """A real retriever: documents whose text contains the query."""

    docs: list[Document]

    def _get_relevant_documents(self, query: str, *, run_manager: Any) -> list[Document]:
        return [d for d in self.docs if query.lower() in d.page_content.lower()]


@pytest.fixture()
def handler() -> Iterator[LLMObsCallbackHandler]:
    h = LLMObsCallbackHandler()
    yield h
    assert h.open_runs == 0, "every run must be removed from the handler's map when it ends"


def cfg(handler: LLMObsCallbackHandler, **extra: Any) -> dict[str, Any]:
    return {"callbacks": [handler], **extra}


# --- LCEL chains ---------------------------------------------------------------------------------------------------

def test_lcel_chain_records_the_exact_tree_kinds_tokens_and_cost(store: Store,
                                                                 handler: LLMObsCallbackHandler) -> None:
    chain = PROMPT | fake_model("Owls hunt at night.") | StrOutputParser()
    assert chain.invoke({"topic": "owls"}, config=cfg(handler)) == "Owls hunt at night."
    rows = store.spans()
    [root] = by_name(rows, "RunnableSequence")
    assert root["parent_id"] is None and root["kind"] == "chain" and root["source"] == "langchain"
    assert children(rows, root) == ["ChatPromptTemplate", "GenericFakeChatModel", "StrOutputParser"]
    assert loads(root["input"]) == {"topic": "owls"} and loads(root["output"]) == "Owls hunt at night."
    [prompt] = by_name(rows, "ChatPromptTemplate")
    assert prompt["kind"] == "chain" and loads(prompt["output"]) == [
        {"role": "system", "content": "Answer in one line."}, {"role": "user", "content": "Tell me about owls"}]
    [gen] = by_name(rows, "GenericFakeChatModel")
    assert gen["kind"] == "generation" and gen["status"] == "ok"
    assert gen["model_name"] == "gpt-4o-mini" and gen["provider"] == "genericfakechatmodel"
    assert (gen["prompt_tokens"], gen["completion_tokens"], gen["total_tokens"]) == (20, 5, 25)
    assert gen["cost_usd"] == pytest.approx(compute_cost("gpt-4o-mini", 20, 5, provider=gen["provider"]).cost_usd)
    assert gen["metadata"]["usage_source"] == "reported" and gen["metadata"]["finish_reason"] == "stop"
    assert loads(gen["input"]) == loads(prompt["output"])
    assert loads(gen["output"]) == {"role": "assistant", "content": "Owls hunt at night."}
    assert all(r["trace_id"] == root["trace_id"] for r in rows) and len(rows) == 4
    [trace] = store.traces()
    assert trace["span_count"] == 4 and trace["total_tokens"] == 25


def test_model_parameters_and_request_model_come_from_invocation_params(
        store: Store, handler: LLMObsCallbackHandler) -> None:
    model = EchoChatModel().bind(stop=["\n\n"])
    model.invoke("hello", config=cfg(handler))
    [gen] = store.spans()
    assert gen["metadata"]["request_model"] == "gpt-4o-mini"
    assert gen["model_name"] == "gpt-4o-mini-2024-07-18"
    assert gen["metadata"]["model_parameters"]["stop"] == ["\n\n"]
    assert gen["metadata"]["usage_details"] == {"cached_tokens": 2, "reasoning_tokens": 1}


def _result(message: AIMessage, *, info: dict[str, Any] | None = None,
            llm_output: dict[str, Any] | None = None) -> ChatResult:
    return ChatResult(generations=[ChatGeneration(message=message, generation_info=info)], llm_output=llm_output)


OPENAI_USAGE = {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25,
                "prompt_tokens_details": {"cached_tokens": 4}, "completion_tokens_details": {"reasoning_tokens": 2}}
USAGE_PLACES = {
    "usage_metadata": _result(AIMessage("ok", usage_metadata={
        "input_tokens": 20, "output_tokens": 5, "total_tokens": 25, "input_token_details": {"cache_read": 4},
        "output_token_details": {"reasoning": 2}}, response_metadata={"model_name": "gpt-4o-2024-08-06"})),
    "response_metadata": _result(AIMessage("ok", response_metadata={
        "token_usage": OPENAI_USAGE, "model_name": "gpt-4o-2024-08-06", "finish_reason": "length"})),
    "generation_info": _result(AIMessage("ok"), info={
        "token_usage": OPENAI_USAGE, "model_name": "gpt-4o-2024-08-06", "finish_reason": "length"}),
    "llm_output_token_usage": _result(AIMessage("ok"), llm_output={
        "token_usage": OPENAI_USAGE, "model_name": "gpt-4o-2024-08-06"}),
    "llm_output_anthropic_usage": _result(AIMessage("ok", response_metadata={"stop_reason": "end_turn"}), llm_output={
        "usage": {"input_tokens": 16, "output_tokens": 5, "cache_read_input_tokens": 4}, "model": "gpt-4o-2024-08-06"}),
}


@pytest.mark.parametrize("place", list(USAGE_PLACES))
def test_model_name_and_usage_are_read_wherever_the_provider_puts_them(
        store: Store, handler: LLMObsCallbackHandler, place: str) -> None:
    ScriptedResultModel(result=USAGE_PLACES[place]).invoke("hi", config=cfg(handler))
    [gen] = store.spans()
    assert gen["model_name"] == "gpt-4o-2024-08-06"
    assert (gen["prompt_tokens"], gen["completion_tokens"], gen["total_tokens"]) == (20, 5, 25)
    assert gen["metadata"]["usage_details"]["cached_tokens"] == 4
    assert gen["metadata"]["request_model"] == "scripted-model"
    expected = compute_cost("gpt-4o-2024-08-06", 20, 5, cached_tokens=4, provider=gen["provider"]).cost_usd
    assert expected is not None and gen["cost_usd"] == pytest.approx(expected)


def test_model_without_any_usage_keeps_tokens_unknown_and_the_requested_model(
        store: Store, handler: LLMObsCallbackHandler) -> None:
    ScriptedResultModel(result=_result(AIMessage("ok"))).invoke("hi", config=cfg(handler))
    [gen] = store.spans()
    assert gen["model_name"] == "scripted-model" and gen["prompt_tokens"] is None and gen["cost_usd"] is None


def test_odd_provider_values_are_recorded_as_far_as_they_go_and_never_raise(
        store: Store, handler: LLMObsCallbackHandler) -> None:
    odd = _result(AIMessage("ok", response_metadata={"token_usage": {"prompt_tokens": "ten", "completion_tokens": -1},
                                                     "finish_reason": "brand_new_reason", "model_name": None,
                                                     "new_field": object()}),
                  info={"usage": [1, 2]}, llm_output={"token_usage": None, "model_name": 42})
    chain = ScriptedResultModel(result=odd) | RunnableLambda(lambda m: threading.Lock(), name="odd_output")
    assert chain.invoke("hi", config=cfg(handler)) is not None
    rows = store.spans()
    [gen] = by_name(rows, "ScriptedResultModel")
    assert gen["status"] == "ok" and gen["model_name"] == "42" and gen["prompt_tokens"] is None
    assert gen["metadata"]["finish_reason"] == "brand_new_reason"
    [odd_row] = by_name(rows, "odd_output")
    assert odd_row["status"] == "ok" and "lock" in odd_row["output"].lower()


def test_a_model_that_raises_records_errors_up_the_tree_and_the_caller_gets_the_same_exception(
        store: Store, handler: LLMObsCallbackHandler) -> None:
    chain = PROMPT | EchoChatModel(fail_on="volcanoes") | StrOutputParser()
    with pytest.raises(ValueError) as caught:
        chain.invoke({"topic": "volcanoes"}, config=cfg(handler))
    assert caught.value is BOOM
    rows = store.spans()
    [gen] = by_name(rows, "EchoChatModel")
    [root] = by_name(rows, "RunnableSequence")
    assert (gen["status"], gen["error_type"], gen["error_message"]) == ("error", "ValueError", "model exploded")
    assert root["status"] == "error" and root["error_type"] == "ValueError"
    assert children(rows, root) == ["ChatPromptTemplate", "EchoChatModel"]
    assert store.traces()[0]["error_count"] == 2


# --- tools, retrievers, agents, retries ----------------------------------------------------------------------------

@llmobs.observe(name="weather_lookup", kind="tool")
def weather_lookup(city: str) -> str:
    return f"sunny in {city}"


@tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    return weather_lookup(city)


def test_tool_span_is_current_so_observed_functions_inside_nest_under_it(
        store: Store, handler: LLMObsCallbackHandler) -> None:
    assert get_weather.invoke({"city": "Paris"}, config=cfg(handler)) == "sunny in Paris"
    rows = store.spans()
    [tool_row] = by_name(rows, "get_weather")
    [inner] = by_name(rows, "weather_lookup")
    assert tool_row["kind"] == "tool" and tool_row["source"] == "langchain" and tool_row["parent_id"] is None
    assert loads(tool_row["input"]) == {"city": "Paris"} and loads(tool_row["output"]) == "sunny in Paris"
    assert inner["parent_id"] == tool_row["id"] and inner["source"] == "observe"


def test_retriever_records_query_documents_and_nests_in_its_chain(store: Store,
                                                                   handler: LLMObsCallbackHandler) -> None:
    retriever = KeywordRetriever(docs=[Document("Paris is in France", metadata={"src": "a"}),
                                       Document("Berlin is in Germany"), Document("Paris has the Louvre")])
    chain = retriever | RunnableLambda(lambda docs: len(docs), name="count_docs")
    assert chain.invoke("paris", config=cfg(handler)) == 2
    rows = store.spans()
    [ret] = by_name(rows, "KeywordRetriever")
    [root] = by_name(rows, "RunnableSequence")
    assert ret["kind"] == "retriever" and ret["parent_id"] == root["id"]
    assert loads(ret["input"]) == "paris" and ret["metadata"]["documents"] == 2
    assert loads(ret["output"]) == [{"page_content": "Paris is in France", "metadata": {"src": "a"}},
                                    {"page_content": "Paris has the Louvre"}]


def test_agent_like_loop_with_tool_calls_records_agent_generations_and_tools(
        store: Store, handler: LLMObsCallbackHandler) -> None:
    model = GenericFakeChatModel(messages=iter([
        AIMessage("", tool_calls=[{"name": "get_weather", "args": {"city": "Paris"}, "id": "call_1"}],
                  usage_metadata={"input_tokens": 30, "output_tokens": 8, "total_tokens": 38},
                  response_metadata={"model_name": "gpt-4o-mini"}),
        AIMessage("It is sunny in Paris.", usage_metadata={"input_tokens": 45, "output_tokens": 6, "total_tokens": 51},
                  response_metadata={"model_name": "gpt-4o-mini"})]))

    def planner(question: str, run_manager: CallbackManagerForChainRun) -> str:
        messages: list[BaseMessage] = [HumanMessage(question)]
        for _ in range(4):
            reply = model.invoke(messages)
            messages.append(reply)
            if not reply.tool_calls:
                run_manager.on_agent_finish(AgentFinish({"output": reply.content}, log="final"))
                return str(reply.content)
            for call in reply.tool_calls:
                run_manager.on_agent_action(AgentAction(call["name"], call["args"], log=f"use {call['name']}"))
                messages.append(get_weather.invoke(call))
        raise RuntimeError("the loop did not finish")

    answer = RunnableLambda(planner, name="planner").invoke("Weather in Paris?", config=cfg(handler))
    assert answer == "It is sunny in Paris."
    rows = store.spans()
    [agent] = by_name(rows, "planner")
    assert agent["kind"] == "agent" and agent["status"] == "ok"
    assert children(rows, agent) == ["GenericFakeChatModel", "get_weather", "GenericFakeChatModel"]
    assert agent["metadata"]["agent_actions"] == [{"tool": "get_weather", "tool_input": {"city": "Paris"},
                                                   "log": "use get_weather"}]
    assert agent["metadata"]["agent_finish"] == {"output": "It is sunny in Paris."}
    first, second = by_name(rows, "GenericFakeChatModel")
    assert loads(first["output"])["tool_calls"] == [{"id": "call_1", "name": "get_weather",
                                                     "arguments": {"city": "Paris"}}]
    assert (first["prompt_tokens"], second["prompt_tokens"]) == (30, 45)
    [tool_row] = by_name(rows, "get_weather")
    assert tool_row["metadata"]["tool_call_id"] == "call_1"
    assert loads(tool_row["output"])["role"] == "tool" and loads(tool_row["output"])["content"] == "sunny in Paris"
    assert by_name(rows, "weather_lookup")[0]["parent_id"] == tool_row["id"]
    assert store.traces()[0]["total_tokens"] == 38 + 51


def test_retry_callbacks_are_counted_on_the_run(store: Store, handler: LLMObsCallbackHandler) -> None:
    attempts: list[int] = []

    def fetch(x: int, run_manager: CallbackManagerForChainRun) -> int:
        for attempt in tenacity.Retrying(stop=tenacity.stop_after_attempt(3), wait=tenacity.wait_none(),
                                         retry=tenacity.retry_if_exception_type(ConnectionError),
                                         before_sleep=run_manager.on_retry, reraise=True):
            with attempt:
                attempts.append(x)
                if len(attempts) < 3:
                    raise ConnectionError(f"refused #{len(attempts)}")
        return x * 2

    assert RunnableLambda(fetch, name="fetch").invoke(21, config=cfg(handler)) == 42
    [row] = store.spans()
    assert row["status"] == "ok" and row["metadata"]["retries"] == 2
    assert row["metadata"]["retry_errors"] == ["ConnectionError: refused #1", "ConnectionError: refused #2"]


async def test_async_chain_tool_and_retriever_runs_leave_no_current_span_behind(
        store: Store, handler: LLMObsCallbackHandler) -> None:
    retriever = KeywordRetriever(docs=[Document("Paris is in France")])

    @llmobs.observe(name="after")
    def after() -> None:
        return None

    @llmobs.observe(name="outer")
    async def outer() -> None:
        await (PROMPT | EchoChatModel()).ainvoke({"topic": "x"}, config=cfg(handler))
        await retriever.ainvoke("paris", config=cfg(handler))
        await get_weather.ainvoke({"city": "Rome"}, config=cfg(handler))
        after()

    await outer()
    rows = store.spans()
    [outer_row] = by_name(rows, "outer")
    assert children(rows, outer_row) == ["RunnableSequence", "KeywordRetriever", "get_weather", "after"]
    # a sync tool awaited runs (callbacks included) in a worker thread, where its span is current
    assert by_name(rows, "weather_lookup")[0]["parent_id"] == by_name(rows, "get_weather")[0]["id"]


# --- concurrency, async, streaming ---------------------------------------------------------------------------------

TOPICS = [f"topic{i}" for i in range(8)]


def _assert_batch_tree(rows: list[dict[str, Any]], outer: dict[str, Any]) -> None:
    roots = by_name(rows, "RunnableSequence")
    assert len(roots) == 8 and {r["parent_id"] for r in roots} == {outer["id"]}
    assert {loads(r["input"])["topic"] for r in roots} == set(TOPICS)
    for root in roots:
        topic = loads(root["input"])["topic"]
        assert children(rows, root) == ["ChatPromptTemplate", "EchoChatModel", "StrOutputParser"]
        [gen] = [r for r in rows if r["parent_id"] == root["id"] and r["kind"] == "generation"]
        assert loads(gen["input"])[-1]["content"] == f"Tell me about {topic}"
        assert loads(root["output"]) == f"echo: Tell me about {topic}"
        assert gen["prompt_tokens"] == 6 + 4 and gen["trace_id"] == outer["trace_id"]


def test_batch_of_8_concurrent_inputs_inside_observe_nests_each_run_correctly(
        store: Store, handler: LLMObsCallbackHandler) -> None:
    chain = PROMPT | EchoChatModel() | StrOutputParser()

    @llmobs.observe(name="batch_job")
    def job() -> list[str]:
        return chain.batch([{"topic": t} for t in TOPICS], config=cfg(handler, max_concurrency=8))

    assert job() == [f"echo: Tell me about {t}" for t in TOPICS]
    rows = store.spans()
    _assert_batch_tree(rows, by_name(rows, "batch_job")[0])
    assert len(rows) == 1 + 8 * 4


async def test_abatch_and_async_chain_inside_async_observe_nest_each_run_correctly(
        store: Store, handler: LLMObsCallbackHandler) -> None:
    chain = PROMPT | EchoChatModel() | StrOutputParser()

    @llmobs.observe(name="batch_job")
    async def job() -> list[str]:
        return await chain.abatch([{"topic": t} for t in TOPICS], config=cfg(handler))

    assert await job() == [f"echo: Tell me about {t}" for t in TOPICS]
    rows = store.spans()
    _assert_batch_tree(rows, by_name(rows, "batch_job")[0])


def test_one_handler_shared_by_threads_keeps_each_thread_in_its_own_trace(
        store: Store, handler: LLMObsCallbackHandler) -> None:
    chain = PROMPT | EchoChatModel() | StrOutputParser()

    @llmobs.observe(name="worker")
    def worker(topic: str) -> None:
        for _ in range(3):
            chain.invoke({"topic": topic}, config=cfg(handler))

    threads = [threading.Thread(target=worker, args=(t,)) for t in TOPICS[:4]]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    rows = store.spans()
    for outer in by_name(rows, "worker"):
        topic = loads(outer["input"])["topic"]
        roots = [r for r in rows if r["parent_id"] == outer["id"]]
        assert len(roots) == 3 and all(loads(r["input"])["topic"] == topic for r in roots)
        assert sum(r["trace_id"] == outer["trace_id"] for r in rows) == 1 + 3 * 4


def test_stream_records_time_to_first_token_usage_and_the_joined_output(
        store: Store, handler: LLMObsCallbackHandler) -> None:
    chain = PROMPT | EchoChatModel() | StrOutputParser()
    pieces = list(chain.stream({"topic": "rivers"}, config=cfg(handler)))
    assert "".join(pieces) == "echo: Tell me about rivers" and len(pieces) > 1
    rows = store.spans()
    [root] = by_name(rows, "RunnableSequence")
    [gen] = by_name(rows, "EchoChatModel")
    assert loads(root["input"]) == {"topic": "rivers"}
    assert loads(root["output"]) == "echo: Tell me about rivers"
    assert children(rows, root) == ["ChatPromptTemplate", "EchoChatModel", "StrOutputParser"]
    assert 0 < gen["time_to_first_token_ms"] <= gen["duration_ms"]
    assert (gen["prompt_tokens"], gen["completion_tokens"]) == (10, 5)
    assert loads(gen["output"])["content"] == "echo: Tell me about rivers"


async def test_astream_records_the_same_tree_with_time_to_first_token(
        store: Store, handler: LLMObsCallbackHandler) -> None:
    chain = PROMPT | FakeListChatModel(responses=["slow stream"], sleep=0.01) | StrOutputParser()
    pieces = [p async for p in chain.astream({"topic": "tides"}, config=cfg(handler))]
    assert "".join(pieces) == "slow stream"
    rows = store.spans()
    [root] = by_name(rows, "RunnableSequence")
    [gen] = by_name(rows, "FakeListChatModel")
    assert children(rows, root) == ["ChatPromptTemplate", "FakeListChatModel", "StrOutputParser"]
    assert gen["status"] == "ok" and 10 <= gen["time_to_first_token_ms"] < gen["duration_ms"]
    assert loads(gen["output"])["content"] == "slow stream"


def test_stream_left_early_ends_every_span_without_an_error(store: Store, handler: LLMObsCallbackHandler) -> None:
    chain = PROMPT | EchoChatModel() | StrOutputParser()
    for piece in chain.stream({"topic": "a long answer to cut"}, config=cfg(handler)):
        break
    gc.collect()
    rows = store.spans()
    assert {r["name"] for r in rows} >= {"RunnableSequence", "EchoChatModel"}
    assert all(r["status"] == "ok" and r["end_time"] is not None for r in rows)


# --- sampling and capture switches ------------------------------------------------------------------------------

def _tool_chain() -> Any:
    """A chain whose steps cover every run kind: a retriever, a chat model with usage, a tool calling @observe."""
    retriever = KeywordRetriever(docs=[Document("Paris is in France")])
    return (retriever | RunnableLambda(lambda docs: {"topic": docs[0].page_content}, name="to_topic")
            | PROMPT | fake_model("Owls.") | RunnableLambda(lambda m: get_weather.invoke({"city": "Paris"}),
                                                           name="weather_step"))


def test_an_unsampled_trace_records_no_run_and_nothing_nested_in_its_tool_then_sampling_resumes(
        store: Store, handler: LLMObsCallbackHandler) -> None:
    llmobs.configure(sample_rate=0.0)
    assert _tool_chain().invoke("paris", config=cfg(handler)) == "sunny in Paris"
    assert handler.open_runs == 0 and llmobs.get_current_span_id() is None
    assert store.spans() == []
    llmobs.configure(sample_rate=1.0)
    assert _tool_chain().invoke("paris", config=cfg(handler)) == "sunny in Paris"
    rows = store.spans()
    names = {r["name"] for r in rows}
    assert {"RunnableSequence", "KeywordRetriever", "GenericFakeChatModel", "get_weather", "weather_lookup"} <= names
    assert len({r["trace_id"] for r in rows}) == 1


def test_capture_switches_keep_inputs_and_outputs_out_but_tokens_model_and_metadata_in(
        store: Store, handler: LLMObsCallbackHandler) -> None:
    llmobs.configure(capture_input=False, capture_output=False)
    assert _tool_chain().invoke("paris", config=cfg(handler)) == "sunny in Paris"
    rows = [r for r in store.spans() if r["source"] == "langchain"]
    assert sorted(r["name"] for r in rows) == ["ChatPromptTemplate", "GenericFakeChatModel", "KeywordRetriever",
                                                "RunnableSequence", "get_weather", "to_topic", "weather_step"]
    assert all(r["input"] is None and r["output"] is None for r in rows)
    [gen] = by_name(rows, "GenericFakeChatModel")
    assert (gen["model_name"], gen["prompt_tokens"], gen["completion_tokens"]) == ("gpt-4o-mini", 20, 5)
    assert gen["metadata"]["finish_reason"] == "stop" and "model_parameters" in gen["metadata"]
    [ret] = by_name(rows, "KeywordRetriever")
    assert ret["metadata"]["documents"] == 1


def test_a_long_parser_output_is_stored_as_text_cut_like_the_same_plain_string(
        store: Store, handler: LLMObsCallbackHandler) -> None:
    """StrOutputParser returns a str subclass (TextAccessor): stored as its text, cut at max_field_chars with the
    same marker as the plain string an @observe function returns."""
    llmobs.configure(max_field_chars=64)
    answer = "owls " * 40
    chain = PROMPT | FakeListChatModel(responses=[answer]) | StrOutputParser()
    result = chain.invoke({"topic": "owls"}, config=cfg(handler))
    assert type(result) is not str and result == answer

    @llmobs.observe(name="plain_text")
    def plain_text() -> str:
        return str(answer)

    plain_text()
    rows = store.spans()
    [expected] = by_name(rows, "plain_text")
    assert "truncated" in expected["output"] and len(loads(expected["output"])) < len(answer)
    for name in ("StrOutputParser", "RunnableSequence"):
        [row] = by_name(rows, name)
        assert row["output"] == expected["output"]


# --- instrument() --------------------------------------------------------------------------------------------------

def test_instrument_records_runs_without_callbacks_also_in_new_threads(
        store: Store, langchain_instrumented: LLMObsCallbackHandler) -> None:
    chain = PROMPT | fake_model("main thread", "other thread") | StrOutputParser()
    chain.invoke({"topic": "a"})
    worker = threading.Thread(target=chain.invoke, args=({"topic": "b"},))
    worker.start()
    worker.join(timeout=30)
    roots = by_name(store.spans(), "RunnableSequence")
    assert [loads(r["output"]) for r in roots] == ["main thread", "other thread"]
    assert langchain_instrumented.open_runs == 0


def test_instrument_twice_plus_an_explicit_handler_records_each_run_once(
        store: Store, handler: LLMObsCallbackHandler) -> None:
    integration.instrument()
    integration.instrument()
    try:
        (PROMPT | fake_model("once")).invoke({"topic": "x"}, config=cfg(handler))
    finally:
        integration.uninstrument()
    assert sorted(r["name"] for r in store.spans()) == ["ChatPromptTemplate", "GenericFakeChatModel",
                                                        "RunnableSequence"]


def test_uninstrument_stops_recording_runs_without_callbacks(store: Store) -> None:
    integration.instrument()
    integration.uninstrument()
    (PROMPT | fake_model("quiet")).invoke({"topic": "x"})
    assert store.spans() == []


# --- one call seen by LangChain and the OpenAI integration ---------------------------------------------------------

@pytest.fixture()
def both_instrumented(srv: FakeOpenAIServer) -> Iterator[None]:
    from llmobs.integrations import openai as openai_integration

    openai_integration.instrument()
    integration.instrument()
    yield
    integration.uninstrument()
    openai_integration.uninstrument()


def _chat_openai(srv: FakeOpenAIServer, **kwargs: Any) -> Any:
    """ChatOpenAI on the fake server; its own async HTTP client, as langchain-openai's shared default would stay
    bound to the event loop of the first test that used it."""
    import openai
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(model="gpt-4o-mini", base_url=srv.base_url, api_key="sk-test", max_retries=0,
                      http_async_client=openai.DefaultAsyncHttpxClient(), **kwargs)


def _assert_one_enriched_generation(store: Store, count: int) -> list[dict[str, Any]]:
    gens = [r for r in store.spans() if r["kind"] == "generation"]
    assert len(gens) == count
    for gen in gens:
        assert gen["source"] == "langchain" and gen["name"] == "ChatOpenAI"
        assert gen["metadata"]["enriched_by"] == "openai"
        assert gen["provider"] == "openai-compatible" and gen["model_name"] == "gpt-4o-mini"
        assert gen["prompt_tokens"] and gen["completion_tokens"] and gen["cost_usd"] is not None
    return gens


def test_langchain_over_instrumented_openai_records_one_generation_sync(
        store: Store, srv: FakeOpenAIServer, both_instrumented: None) -> None:
    srv.enqueue(Reply(content="plain", prompt_tokens=12, completion_tokens=3),
                Reply(content="streamed", prompt_tokens=12, completion_tokens=3))
    model = _chat_openai(srv, stream_usage=True)
    assert model.invoke("hello").content == "plain"
    assert "".join(c.content for c in model.stream("hello")) == "streamed"
    plain, streamed = _assert_one_enriched_generation(store, 2)
    assert (plain["prompt_tokens"], plain["completion_tokens"]) == (12, 3)
    assert plain["metadata"]["usage_source"] == "reported"
    assert (streamed["prompt_tokens"], streamed["completion_tokens"]) == (12, 3)
    assert streamed["time_to_first_token_ms"] is not None
    assert loads(plain["output"]) == {"role": "assistant", "content": "plain"}
    assert plain["cost_usd"] == pytest.approx(
        compute_cost("gpt-4o-mini", 12, 3, cached_tokens=0, provider="openai-compatible").cost_usd)


async def test_langchain_over_instrumented_openai_records_one_generation_async(
        store: Store, srv: FakeOpenAIServer, both_instrumented: None) -> None:
    srv.enqueue(Reply(content="plain", prompt_tokens=12, completion_tokens=3), Reply(content="streamed"))
    model = _chat_openai(srv)
    assert (await model.ainvoke("hello")).content == "plain"
    assert "".join([c.content async for c in model.astream("hello")]) == "streamed"
    plain, streamed = _assert_one_enriched_generation(store, 2)
    assert plain["prompt_tokens"] == 12 and plain["metadata"]["usage_source"] == "reported"
    assert streamed["metadata"]["usage_source"] == "estimated"  # no usage chunk was asked for


async def test_an_async_model_call_leaves_no_current_span_behind(
        store: Store, srv: FakeOpenAIServer, both_instrumented: None) -> None:
    import openai

    @llmobs.observe(name="after")
    def after() -> None:
        return None

    @llmobs.observe(name="outer")
    async def outer() -> None:
        await _chat_openai(srv).ainvoke("first")
        after()
        async with openai.AsyncOpenAI(base_url=srv.base_url, api_key="sk", max_retries=0) as direct:
            await direct.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])

    await outer()
    rows = store.spans()
    [outer_row] = by_name(rows, "outer")
    assert children(rows, outer_row) == ["ChatOpenAI", "after", "openai.chat.completions.create"]
    assert by_name(rows, "openai.chat.completions.create")[0]["source"] == "openai"


def test_without_langchain_the_module_imports_and_the_handler_names_the_extra_to_install() -> None:
    import subprocess
    import sys

    code = ("import sys; sys.modules['langchain_core'] = None\n"
            "import llmobs.integrations.langchain as integration\n"
            "for use in (integration.instrument, lambda: integration.LLMObsCallbackHandler):\n"
            "    try:\n        use()\n    except ImportError as exc:\n        print(exc)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("pip install 'llmobs[langchain]'") == 2
