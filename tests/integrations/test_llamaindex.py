"""LlamaIndex integration with real llama-index-core (Mock models), asserted on the rows in SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import gc
import inspect
import json
import sys
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import pytest

pytest.importorskip("llama_index.core")

from llama_index.core import Document, VectorStoreIndex  # noqa: E402
from llama_index.core.agent.workflow import FunctionAgent  # noqa: E402
from llama_index.core.base.response.schema import AsyncStreamingResponse, StreamingResponse  # noqa: E402
from llama_index.core.chat_engine import SimpleChatEngine  # noqa: E402
from llama_index.core.chat_engine.types import ChatMode  # noqa: E402
from llama_index.core.embeddings import MockEmbedding  # noqa: E402
from llama_index.core.instrumentation import get_dispatcher  # noqa: E402
from llama_index.core.llms import (  # noqa: E402
    ChatMessage,
    ChatResponse,
    CompletionResponse,
    CompletionResponseGen,
    CustomLLM,
    LLMMetadata,
    MockLLM,
)
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback  # noqa: E402
from llama_index.core.llms.mock import MockFunctionCallingLLM  # noqa: E402
from llama_index.core.tools import FunctionTool  # noqa: E402
from llama_index.core.tools.types import BaseTool, ToolMetadata, ToolOutput  # noqa: E402

import llmobs  # noqa: E402
from llmobs.integrations import llamaindex  # noqa: E402
from tests.support.databases import Store  # noqa: E402

ANSWER = "text text text text text"  # what MockLLM(max_tokens=5) answers
QUESTION = "What is the capital of France?"
DOC_TEXTS = ("Paris is the capital of France.", "Berlin is the capital of Germany.", "Rome is the capital of Italy.")
Tree = list[tuple[str, str, "Tree"]]


# --- fixtures and helpers -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def index() -> VectorStoreIndex:
    """A small vector index built before instrumenting, so its embedding calls are not part of the trees."""
    docs = [Document(text=t) for t in DOC_TEXTS]
    return VectorStoreIndex.from_documents(docs, embed_model=MockEmbedding(embed_dim=8))


@pytest.fixture
def instrumented() -> Iterator[None]:
    """The integration switched on for one test."""
    llamaindex.instrument()
    yield
    llamaindex.uninstrument()


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def tree(rows: list[dict[str, Any]]) -> Tree:
    """The stored spans as nested (name, kind, children), siblings in start order."""
    children: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
    for row in sorted(rows, key=lambda r: (r["start_time"], r["name"])):
        children[row["parent_id"]].append(row)

    def build(row: dict[str, Any]) -> tuple[str, str, Tree]:
        return row["name"], row["kind"], [build(c) for c in children[row["id"]]]

    return [build(r) for r in children[None]]


def by_name(rows: list[dict[str, Any]], name: str) -> dict[str, Any]:
    found = [r for r in rows if r["name"] == name]
    assert len(found) == 1, f"expected one {name!r} in {[r['name'] for r in rows]}"
    return found[0]


def query_tree(prefix: str = "") -> Tree:
    """What a RetrieverQueryEngine query over MockEmbedding/MockLLM records (``prefix`` "a" for the async API)."""
    return [(f"RetrieverQueryEngine.{prefix}query", "chain", [
        (f"VectorIndexRetriever.{prefix}retrieve", "retriever", [
            (f"MockEmbedding.{prefix}get_query_embedding", "embedding", []),
        ]),
        (f"CompactAndRefine.{prefix}synthesize", "chain", [
            (f"MockLLM.{prefix}predict", "chain", [(f"MockLLM.{prefix}complete", "generation", [])]),
        ]),
    ])]


def assert_estimated_generation(row: dict[str, Any]) -> None:
    assert row["kind"] == "generation" and row["status"] == "ok"
    assert row["prompt_tokens"] > 0 and row["completion_tokens"] == 5
    assert row["total_tokens"] == row["prompt_tokens"] + row["completion_tokens"]
    assert row["metadata"]["usage_source"] == "estimated"
    assert row["cost_usd"] is None


class ScriptedLLM(CustomLLM):
    """A custom LLM answering ``reply_text`` with ``reply_raw`` as the provider's raw response."""

    model_id: str = "gpt-4o-mini"
    reply_text: str | None = "Paris."
    reply_raw: Any = None

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name=self.model_id)

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(text=self.reply_text or "", raw=self.reply_raw)

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        raise NotImplementedError

    @llm_chat_callback()
    def chat(self, messages: Any, **kwargs: Any) -> ChatResponse:
        return ChatResponse(message=ChatMessage(role="assistant", content=self.reply_text), raw=self.reply_raw)


class FailingLLM(CustomLLM):
    """A custom LLM whose calls raise ``error`` (streams after one chunk)."""

    error: Any = None

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name="failing-model")

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        raise self.error

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        def gen() -> CompletionResponseGen:
            yield CompletionResponse(text="Par", delta="Par")
            raise self.error

        return gen()


# --- query engines ----------------------------------------------------------------------------------------------------

def test_sync_query_records_the_engine_tree_in_one_trace_with_estimated_tokens(
        store: Store, index: VectorStoreIndex, instrumented: None) -> None:
    response = index.as_query_engine(llm=MockLLM(max_tokens=5), similarity_top_k=2).query(QUESTION)

    assert str(response) == ANSWER
    rows = store.spans()
    assert tree(rows) == query_tree()
    assert len({r["trace_id"] for r in rows}) == 1 and {r["source"] for r in rows} == {"llamaindex"}
    assert {r["status"] for r in rows} == {"ok"}
    query = by_name(rows, "RetrieverQueryEngine.query")
    assert loads(query["input"]) == QUESTION and loads(query["output"]) == ANSWER
    nodes = loads(by_name(rows, "VectorIndexRetriever.retrieve")["output"])
    assert len(nodes) == 2 and all(set(n) == {"id", "score", "text"} for n in nodes)
    assert {n["text"] for n in nodes} < set(DOC_TEXTS)  # MockEmbedding ties every score: which two is arbitrary
    embedding = by_name(rows, "MockEmbedding.get_query_embedding")
    assert loads(embedding["input"]) == QUESTION and loads(embedding["output"]) == {"embeddings": 1, "dimensions": 8}
    assert embedding["prompt_tokens"] > 0 and embedding["metadata"]["usage_source"] == "estimated"
    generation = by_name(rows, "MockLLM.complete")
    assert_estimated_generation(generation)
    assert QUESTION in loads(generation["input"]) and all(n["text"] in loads(generation["input"]) for n in nodes)
    assert loads(generation["output"]) == ANSWER
    trace = store.traces()[0]
    assert trace["span_count"] == 6 and trace["status"] == "ok"
    assert trace["prompt_tokens"] == generation["prompt_tokens"] + embedding["prompt_tokens"]


def test_async_query_records_the_same_tree_under_the_async_names(
        store: Store, index: VectorStoreIndex, instrumented: None) -> None:
    response = asyncio.run(index.as_query_engine(llm=MockLLM(max_tokens=5)).aquery(QUESTION))

    assert str(response) == ANSWER
    rows = store.spans()
    assert tree(rows) == query_tree("a")
    assert len({r["trace_id"] for r in rows}) == 1
    assert_estimated_generation(by_name(rows, "MockLLM.acomplete"))


def test_streaming_query_spans_end_when_the_stream_is_consumed(
        store: Store, index: VectorStoreIndex, instrumented: None) -> None:
    response = index.as_query_engine(llm=MockLLM(max_tokens=5), streaming=True).query(QUESTION)
    assert isinstance(response, StreamingResponse) and inspect.isgenerator(response.response_gen)

    assert sorted(r["name"] for r in store.spans()) == ["MockEmbedding.get_query_embedding",
                                                        "VectorIndexRetriever.retrieve"]
    assert "".join(cast(Iterator[str], response.response_gen)) == ANSWER
    rows = store.spans()
    assert tree(rows) == [("RetrieverQueryEngine.query", "chain", [
        ("VectorIndexRetriever.retrieve", "retriever", [("MockEmbedding.get_query_embedding", "embedding", [])]),
        ("CompactAndRefine.synthesize", "chain", [
            ("MockLLM.stream", "chain", [("MockLLM.stream_complete", "generation", [])]),
        ]),
    ])]
    query, synth = by_name(rows, "RetrieverQueryEngine.query"), by_name(rows, "CompactAndRefine.synthesize")
    generation = by_name(rows, "MockLLM.stream_complete")
    assert_estimated_generation(generation)
    assert loads(generation["output"]) == ANSWER and generation["metadata"]["streamed"] is True
    assert generation["time_to_first_token_ms"] is not None
    for row in (query, synth):
        assert loads(row["output"]) == ANSWER and row["metadata"] == {"streamed": True}
        assert row["end_time"] >= generation["end_time"] and row["time_to_first_token_ms"] is not None


def test_async_streaming_query_ends_when_the_async_stream_is_consumed(
        store: Store, index: VectorStoreIndex, instrumented: None) -> None:
    async def ask() -> str:
        response = await index.as_query_engine(llm=MockLLM(max_tokens=5), streaming=True).aquery(QUESTION)
        assert isinstance(response, AsyncStreamingResponse)
        return "".join([piece async for piece in response.async_response_gen()])

    assert asyncio.run(ask()) == ANSWER
    rows = store.spans()
    assert {r["name"]: r["kind"] for r in rows}["MockLLM.astream_complete"] == "generation"
    assert len({r["trace_id"] for r in rows}) == 1
    query = by_name(rows, "RetrieverQueryEngine.aquery")
    assert loads(query["output"]) == ANSWER and query["metadata"] == {"streamed": True}
    generation = by_name(rows, "MockLLM.astream_complete")
    assert_estimated_generation(generation)
    assert query["end_time"] >= generation["end_time"]


def test_streaming_response_dropped_unread_still_ends_its_spans(
        store: Store, index: VectorStoreIndex, instrumented: None) -> None:
    response = index.as_query_engine(llm=MockLLM(max_tokens=5), streaming=True).query(QUESTION)
    del response
    gc.collect()

    rows = store.spans()
    query = by_name(rows, "RetrieverQueryEngine.query")
    assert query["status"] == "ok" and query["metadata"] == {"streamed": True, "stream_incomplete": "abandoned"}
    assert not [r for r in rows if r["kind"] == "generation"]  # the LLM was never called


# --- chat engines and LLM calls ---------------------------------------------------------------------------------------

def test_context_chat_engine_records_retrieval_and_generation_under_the_chat_span(
        store: Store, index: VectorStoreIndex, instrumented: None) -> None:
    engine = index.as_chat_engine(chat_mode=ChatMode.CONTEXT, llm=MockLLM(max_tokens=5))
    assert str(engine.chat(QUESTION)) == ANSWER

    rows = store.spans()
    assert tree(rows) == [("ContextChatEngine.chat", "chain", [
        ("VectorIndexRetriever.retrieve", "retriever", [("MockEmbedding.get_query_embedding", "embedding", [])]),
        ("CompactAndRefine.synthesize", "chain", [
            ("MockLLM.predict", "chain", [("MockLLM.complete", "generation", [])]),
        ]),
    ])]
    chat = by_name(rows, "ContextChatEngine.chat")
    assert loads(chat["input"]) == QUESTION and loads(chat["output"]) == ANSWER
    assert_estimated_generation(by_name(rows, "MockLLM.complete"))


def test_simple_chat_engine_records_the_chat_messages_of_the_generation(store: Store, instrumented: None) -> None:
    engine = SimpleChatEngine.from_defaults(llm=MockLLM(max_tokens=5))
    assert str(engine.chat("Hello there")) == ANSWER

    rows = store.spans()
    assert tree(rows) == [("SimpleChatEngine.chat", "chain", [("MockLLM.chat", "generation", [])])]
    generation = by_name(rows, "MockLLM.chat")
    assert loads(generation["input"]) == [{"role": "user", "content": "Hello there"}]
    assert loads(generation["output"]) == {"role": "assistant", "content": ANSWER}
    assert_estimated_generation(generation)


def test_llm_error_fails_every_enclosing_span_and_reaches_the_caller_unchanged(
        store: Store, index: VectorStoreIndex, instrumented: None) -> None:
    error = ConnectionError("upstream model is down")
    engine = index.as_query_engine(llm=FailingLLM(error=error))

    with pytest.raises(ConnectionError) as info:
        engine.query(QUESTION)

    assert info.value is error
    rows = store.spans()
    assert tree(rows) == [("RetrieverQueryEngine.query", "chain", [
        ("VectorIndexRetriever.retrieve", "retriever", [("MockEmbedding.get_query_embedding", "embedding", [])]),
        ("CompactAndRefine.synthesize", "chain", [
            ("FailingLLM.predict", "chain", [("FailingLLM.complete", "generation", [])]),
        ]),
    ])]
    failed = {r["name"] for r in rows if r["status"] == "error"}
    assert failed == {"RetrieverQueryEngine.query", "CompactAndRefine.synthesize", "FailingLLM.predict",
                      "FailingLLM.complete"}
    generation = by_name(rows, "FailingLLM.complete")
    assert generation["error_type"] == "ConnectionError" and generation["error_message"] == "upstream model is down"
    assert generation["model_name"] == "failing-model" and generation["prompt_tokens"] is None
    assert "ConnectionError: upstream model is down" in generation["error_traceback"]
    assert store.traces()[0]["error_count"] == 4


def test_error_while_reading_a_stream_fails_the_generation_and_the_waiting_spans(
        store: Store, index: VectorStoreIndex, instrumented: None) -> None:
    error = TimeoutError("stream cut")
    response = index.as_query_engine(llm=FailingLLM(error=error), streaming=True).query(QUESTION)
    assert isinstance(response, StreamingResponse) and inspect.isgenerator(response.response_gen)
    received: list[str] = []

    with pytest.raises(TimeoutError) as info:
        for piece in cast(Iterator[str], response.response_gen):
            received.append(piece)

    assert info.value is error and received == ["Par"]
    rows = store.spans()
    for name in ("FailingLLM.stream_complete", "CompactAndRefine.synthesize", "RetrieverQueryEngine.query"):
        row = by_name(rows, name)
        assert (row["status"], row["error_type"], row["error_message"]) == ("error", "TimeoutError", "stream cut")
    assert by_name(rows, "FailingLLM.stream_complete")["time_to_first_token_ms"] is not None


# --- tokens and odd shapes --------------------------------------------------------------------------------------------

USAGE_SHAPES = {
    "openai": ({"usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18,
                          "prompt_tokens_details": {"cached_tokens": 4},
                          "completion_tokens_details": {"reasoning_tokens": 2}}},
               (11, 7, 18), {"cached_tokens": 4, "reasoning_tokens": 2}),
    "anthropic": ({"usage": {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 6,
                             "cache_creation_input_tokens": 2}},
                  (18, 5, 23), {"cached_tokens": 6, "cache_creation_tokens": 2}),
    "responses": ({"usage": {"input_tokens": 9, "output_tokens": 3, "total_tokens": 12,
                             "input_tokens_details": {"cached_tokens": 1}}}, (9, 3, 12), {"cached_tokens": 1}),
    "gemini": ({"usage_metadata": {"prompt_token_count": 8, "candidates_token_count": 4, "total_token_count": 12}},
               (8, 4, 12), None),
    "ollama": ({"prompt_eval_count": 6, "eval_count": 2}, (6, 2, 8), None),
}


@pytest.mark.parametrize("shape", list(USAGE_SHAPES))
def test_provider_usage_in_the_raw_response_is_recorded_as_reported_and_priced(
        store: Store, instrumented: None, shape: str) -> None:
    raw, (prompt, completion, total), details = USAGE_SHAPES[shape]
    assert ScriptedLLM(reply_raw=raw).complete(QUESTION).text == "Paris."

    row = by_name(store.spans(), "ScriptedLLM.complete")
    assert (row["prompt_tokens"], row["completion_tokens"], row["total_tokens"]) == (prompt, completion, total)
    assert row["model_name"] == "gpt-4o-mini" and row["metadata"]["usage_source"] == "reported"
    assert row["metadata"].get("usage_details") == details
    assert row["cost_usd"] is not None and row["cost_usd"] > 0  # the writer's price processor
    assert loads(row["input"]) == QUESTION and loads(row["output"]) == "Paris."


@pytest.mark.parametrize("raw", [
    {"usage": {"prompt_tokens": "many", "completion_tokens": -3, "surprise": {"new": "field"}}},
    {"usage": None, "choices": [None]},
    object(),
    "not a response",
])
def test_odd_response_shapes_are_recorded_as_far_as_they_go_without_raising(
        store: Store, instrumented: None, raw: Any) -> None:
    llm = ScriptedLLM(reply_text=None, reply_raw=raw)
    assert llm.chat([ChatMessage(role="user", content=None)]).message.content is None

    row = by_name(store.spans(), "ScriptedLLM.chat")
    assert row["status"] == "ok" and row["metadata"]["usage_source"] == "estimated"
    assert (row["prompt_tokens"], row["completion_tokens"], row["total_tokens"]) == (0, 0, 0)
    assert loads(row["input"]) == [{"role": "user", "content": None}]
    assert loads(row["output"]) == {"role": "assistant", "content": None}


def test_index_build_records_one_embedding_span_for_the_batch(store: Store, instrumented: None) -> None:
    texts = ["Paris is in France.", "Berlin is in Germany."]
    VectorStoreIndex.from_documents([Document(text=t) for t in texts], embed_model=MockEmbedding(embed_dim=4))

    rows = store.spans()
    assert tree(rows) == [("MockEmbedding.get_text_embedding_batch", "embedding", [])]
    row = rows[0]
    assert loads(row["input"]) == texts and loads(row["output"]) == {"embeddings": 2, "dimensions": 4}
    assert row["prompt_tokens"] > 0 and row["total_tokens"] == row["prompt_tokens"]
    assert row["metadata"] == {"usage_source": "estimated", "embedding_count": 2, "dimensions": 4}


# --- nesting with @observe, tools and agents ------------------------------------------------------------------------

def test_query_inside_observe_nests_under_it_in_the_same_trace(
        store: Store, index: VectorStoreIndex, instrumented: None) -> None:
    @llmobs.observe(name="answer_question")
    def answer(question: str) -> str:
        return str(index.as_query_engine(llm=MockLLM(max_tokens=5)).query(question))

    assert answer(QUESTION) == ANSWER
    rows = store.spans()
    assert tree(rows) == [("answer_question", "span", query_tree())]
    assert len({r["trace_id"] for r in rows}) == 1
    assert by_name(rows, "answer_question")["source"] == "observe"
    assert len(store.traces()) == 1 and store.traces()[0]["name"] == "answer_question"


def test_queries_outside_observe_start_their_own_traces(
        store: Store, index: VectorStoreIndex, instrumented: None) -> None:
    engine = index.as_query_engine(llm=MockLLM(max_tokens=5))
    engine.query(QUESTION)
    engine.query("And Germany?")

    rows = store.spans()
    roots = [r for r in rows if r["parent_id"] is None]
    assert [r["name"] for r in roots] == ["RetrieverQueryEngine.query"] * 2
    assert len({r["trace_id"] for r in rows}) == 2 and len(store.traces()) == 2


def test_observe_function_inside_a_tool_nests_under_the_tool_span(store: Store, instrumented: None) -> None:
    @llmobs.observe(name="geo_lookup")
    def country_of(city: str) -> str:
        return "France"

    def locate(city: str) -> str:
        """Find the country of a city."""
        return f"{city} is in {country_of(city)}"

    tool = FunctionTool.from_defaults(locate)
    assert tool.call(city="Paris").content == "Paris is in France"

    rows = store.spans()
    assert tree(rows) == [("locate", "tool", [("geo_lookup", "span", [])])]
    row = by_name(rows, "locate")
    assert loads(row["input"]) == {"city": "Paris"} and loads(row["output"]) == "Paris is in France"
    assert row["metadata"]["tool_class"] == "FunctionTool"


class BrokenTool(BaseTool):
    """A tool that reports failure through its output, as agents' tool wrappers do."""

    @property
    def metadata(self) -> ToolMetadata:
        return ToolMetadata(name="broken_lookup", description="Always fails.")

    def __call__(self, input: Any) -> ToolOutput:
        return ToolOutput(tool_name="broken_lookup", content="Error: no such city", raw_input={"input": input},
                          raw_output=None, is_error=True, exception=LookupError("no such city"))


def test_tool_output_flagged_as_error_fails_the_tool_span(store: Store, instrumented: None) -> None:
    assert BrokenTool()("Atlantis").is_error

    row = by_name(store.spans(), "broken_lookup")
    assert (row["kind"], row["status"], row["error_type"], row["error_message"]) == (
        "tool", "error", "LookupError", "no such city")
    assert loads(row["input"]) == {"input": "Atlantis"} and loads(row["output"]) == "Error: no such city"


def test_agent_run_records_agent_steps_generations_and_tool_calls(store: Store, instrumented: None) -> None:
    @llmobs.observe(name="geo_lookup")
    def country_of(city: str) -> str:
        return "France"

    def locate(city: str = "Paris") -> str:
        """Find the country of a city."""
        return f"{city} is in {country_of(city)}"

    agent = FunctionAgent(tools=[FunctionTool.from_defaults(locate)], llm=MockFunctionCallingLLM())

    async def run() -> str:
        return str(await agent.run("Where is Paris?"))

    assert asyncio.run(asyncio.wait_for(run(), timeout=60)) == "Tool calls complete."
    rows = store.spans()
    step = "BaseWorkflowAgent."
    llm_call: tuple[str, str, Tree] = ("MockFunctionCallingLLM.astream_chat", "generation", [])
    assert tree(rows) == [("FunctionAgent.run", "agent", [
        (step + "init_run", "chain", []),
        (step + "setup_agent", "chain", []),
        (step + "run_agent_step", "chain", [llm_call]),
        (step + "parse_agent_output", "chain", []),
        (step + "call_tool", "chain", [("locate", "tool", [("geo_lookup", "span", [])])]),
        (step + "aggregate_tool_results", "chain", []),
        (step + "setup_agent", "chain", []),
        (step + "run_agent_step", "chain", [llm_call]),
        (step + "parse_agent_output", "chain", []),
    ])]
    assert len({r["trace_id"] for r in rows}) == 1 and {r["status"] for r in rows} == {"ok"}
    assert loads(by_name(rows, "FunctionAgent.run")["output"]) == {"response": "Tool calls complete.",
                                                                   "tool_calls": ["locate"]}
    first_call = min((r for r in rows if r["kind"] == "generation"), key=lambda r: r["start_time"])
    assert loads(first_call["output"])["tool_calls"] == [{"name": "locate", "arguments": {"city": "Paris"}}]
    assert first_call["metadata"]["streamed"] is True and first_call["completion_tokens"] > 0


# --- switching on and off -------------------------------------------------------------------------------------------

def test_uninstrument_stops_recording(store: Store, index: VectorStoreIndex) -> None:
    engine = index.as_query_engine(llm=MockLLM(max_tokens=5))
    llamaindex.instrument()
    engine.query(QUESTION)
    llamaindex.uninstrument()
    llamaindex.uninstrument()
    assert str(engine.query(QUESTION)) == ANSWER

    assert len(store.spans()) == 6 and len(store.traces()) == 1
    assert not [h for h in get_dispatcher().span_handlers if type(h).__name__ == "LlmobsSpanHandler"]
    assert not [h for h in get_dispatcher().event_handlers if type(h).__name__ == "LlmobsEventHandler"]


def test_instrument_twice_records_each_span_once(store: Store, index: VectorStoreIndex) -> None:
    llamaindex.instrument()
    llamaindex.instrument()
    try:
        index.as_query_engine(llm=MockLLM(max_tokens=5)).query(QUESTION)
        assert len([h for h in get_dispatcher().span_handlers if type(h).__name__ == "LlmobsSpanHandler"]) == 1
    finally:
        llamaindex.uninstrument()

    rows = store.spans()
    assert tree(rows) == query_tree() and len(rows) == 6


def test_instrument_without_llama_index_raises_import_error_naming_the_extra(
        store: Store, index: VectorStoreIndex, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llama_index.core.instrumentation", None)

    with pytest.raises(ImportError, match=r"pip install 'llmobs\[llamaindex\]'"):
        llamaindex.instrument()

    monkeypatch.undo()
    index.as_query_engine(llm=MockLLM(max_tokens=5)).query(QUESTION)
    assert store.spans() == []


@pytest.mark.parametrize("setting", [{"enabled": False}, {"sample_rate": 0.0}], ids=["disabled", "unsampled"])
def test_disabled_or_unsampled_records_nothing_and_answers_normally(
        store: Store, index: VectorStoreIndex, instrumented: None, setting: dict[str, Any]) -> None:
    @llmobs.observe(name="inner_tool_step")
    def inner() -> str:
        return "x"

    llmobs.configure(**setting)
    try:
        assert str(index.as_query_engine(llm=MockLLM(max_tokens=5)).query(QUESTION)) == ANSWER
        assert FunctionTool.from_defaults(lambda: inner(), name="step").call().content == "x"
    finally:
        llmobs.configure(enabled=True, sample_rate=1.0)
    assert store.spans() == []


def test_concurrent_queries_in_threads_build_separate_correct_trees(
        store: Store, index: VectorStoreIndex, instrumented: None) -> None:
    engine = index.as_query_engine(llm=MockLLM(max_tokens=5))

    @llmobs.observe(name="worker")
    def worker(i: int) -> str:
        return str(engine.query(f"{QUESTION} #{i}"))

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(worker, range(8), timeout=60)) == [ANSWER] * 8

    rows = store.spans()
    assert len(rows) == 8 * 7 and len(store.traces()) == 8
    for trace_id in {r["trace_id"] for r in rows}:
        assert tree([r for r in rows if r["trace_id"] == trace_id]) == [("worker", "span", query_tree())]


# --- a custom LLM calling the OpenAI SDK ----------------------------------------------------------------------------

class OpenAIBackedLLM(CustomLLM):
    """A custom LLM that calls the real openai SDK (against the local fake server)."""

    base_url: str

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name="gpt-4o-mini")

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        import openai

        client = openai.OpenAI(base_url=self.base_url, api_key="test", max_retries=0)
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}])
        return CompletionResponse(text=reply.choices[0].message.content or "", raw=reply)

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        raise NotImplementedError


def test_usage_of_a_real_openai_response_object_is_read_from_raw(
        store: Store, instrumented: None, srv: Any) -> None:
    from llmobs.testing.openai_server import Reply

    srv.enqueue(Reply(content="Paris", prompt_tokens=21, completion_tokens=2, cached_tokens=5))
    assert OpenAIBackedLLM(base_url=srv.base_url).complete(QUESTION).text == "Paris"

    row = by_name(store.spans(), "OpenAIBackedLLM.complete")
    assert (row["prompt_tokens"], row["completion_tokens"], row["total_tokens"]) == (21, 2, 23)
    assert row["metadata"]["usage_source"] == "reported"
    assert row["metadata"]["usage_details"] == {"cached_tokens": 5}
    assert row["cost_usd"] > 0


def test_openai_integration_fills_the_llamaindex_generation_instead_of_adding_a_second_span(
        store: Store, instrumented: None, srv: Any) -> None:
    openai_integration = pytest.importorskip("llmobs.integrations.openai")
    from llmobs.testing.openai_server import Reply

    srv.enqueue(Reply(content="Paris", prompt_tokens=21, completion_tokens=2))
    openai_integration.instrument()
    try:
        assert OpenAIBackedLLM(base_url=srv.base_url).complete(QUESTION).text == "Paris"
    finally:
        openai_integration.uninstrument()

    rows = store.spans()
    assert tree(rows) == [("OpenAIBackedLLM.complete", "generation", [])]
    row = rows[0]
    assert row["source"] == "llamaindex" and row["metadata"]["enriched_by"] == "openai"
    assert (row["prompt_tokens"], row["completion_tokens"]) == (21, 2)
    assert row["metadata"]["usage_source"] == "reported"
    assert len(srv.requests) == 1
