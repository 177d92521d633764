"""The OpenAI integration with the real `openai` SDK against FakeOpenAIServer, asserted on stored span rows."""

from __future__ import annotations

import gc
import json
import socket
from typing import Any

import openai
import pydantic
import pytest
import wrapt

import llmobs
from llmobs.integrations import openai as integration
from llmobs.pricing import compute_cost
from llmobs.testing.openai_server import FakeOpenAIServer, Reply, ToolCall
from tests.support.databases import Store

pytestmark = pytest.mark.timeout(60)
USER = [{"role": "user", "content": "What is the capital of France?"}]
WEATHER_TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def generations(store: Store) -> list[dict[str, Any]]:
    return [r for r in store.spans() if r["kind"] in ("generation", "embedding")]


class City(pydantic.BaseModel):
    name: str
    population: int


# --- chat completions --------------------------------------------------------------------------------------------

def test_chat_completion_records_models_parameters_messages_output_usage_and_cost(
        store: Store, srv: FakeOpenAIServer, client: openai.OpenAI, openai_instrumented: None) -> None:
    srv.enqueue(Reply(content="Paris", model="gpt-4o-mini-2024-07-18", prompt_tokens=120, completion_tokens=30,
                      cached_tokens=20, reasoning_tokens=5))
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=USER, temperature=0.2, max_tokens=50,
                                           top_p=0.9, seed=7)
    assert reply.choices[0].message.content == "Paris"
    [row] = generations(store)
    assert (row["name"], row["kind"], row["source"], row["status"]) == (
        "openai.chat.completions.create", "generation", "openai", "ok")
    assert row["model_name"] == "gpt-4o-mini-2024-07-18" and row["provider"] == "openai-compatible"
    meta = row["metadata"]
    assert meta["request_model"] == "gpt-4o-mini"
    assert meta["model_parameters"] == {"temperature": 0.2, "max_tokens": 50, "top_p": 0.9, "seed": 7}
    assert meta["finish_reason"] == "stop" and meta["response_id"] == reply.id
    assert meta["usage_source"] == "reported"
    assert meta["usage_details"] == {"cached_tokens": 20, "reasoning_tokens": 5}
    assert (row["prompt_tokens"], row["completion_tokens"], row["total_tokens"]) == (120, 30, 150)
    expected = compute_cost("gpt-4o-mini-2024-07-18", 120, 30, cached_tokens=20, provider="openai-compatible")
    assert expected.cost_usd is not None and row["cost_usd"] == pytest.approx(expected.cost_usd)
    assert loads(row["input"]) == USER
    assert loads(row["output"]) == {"role": "assistant", "content": "Paris"}
    assert row["duration_ms"] > 0 and row["time_to_first_token_ms"] is None
    assert srv.requests[-1].body["temperature"] == 0.2


def test_instrumenting_twice_and_wrapping_the_client_still_records_each_call_once(
        store: Store, srv: FakeOpenAIServer, client: openai.OpenAI) -> None:
    integration.instrument()
    integration.instrument()
    integration.wrap_openai(client)
    integration.wrap_openai(client)
    try:
        client.chat.completions.create(model="gpt-4o-mini", messages=USER)
        client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    finally:
        integration.uninstrument()
    assert len(srv.requests) == 2
    assert [r["name"] for r in generations(store)] == ["openai.chat.completions.create"] * 2


def test_wrap_openai_records_only_that_client_and_its_with_options_copies(
        store: Store, srv: FakeOpenAIServer) -> None:
    wrapped = integration.wrap_openai(openai.OpenAI(base_url=srv.base_url, api_key="sk-a", max_retries=0))
    plain = openai.OpenAI(base_url=srv.base_url, api_key="sk-b", max_retries=0)
    wrapped.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "wrapped"}])
    plain.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "plain"}])
    wrapped.with_options(timeout=5).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "copy"}])
    assert len(srv.requests) == 3
    recorded = [loads(r["input"])[0]["content"] for r in generations(store)]
    assert recorded == ["wrapped", "copy"]


def test_wrap_openai_rejects_what_is_not_an_openai_client() -> None:
    with pytest.raises(TypeError, match="wrap_openai.*expected an openai.OpenAI"):
        integration.wrap_openai("not a client")


def test_uninstrument_puts_the_original_sdk_methods_back(store: Store, srv: FakeOpenAIServer,
                                                         client: openai.OpenAI) -> None:
    from openai.resources.chat.completions.completions import Completions

    gc.collect()  # a client wrapped by an earlier test keeps the patch in place while it exists
    integration.uninstrument()
    original = Completions.__dict__["create"]
    assert not isinstance(original, wrapt.FunctionWrapper)
    integration.instrument()
    assert isinstance(Completions.__dict__["create"], wrapt.FunctionWrapper)
    integration.uninstrument()
    assert Completions.__dict__["create"] is original
    client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert len(srv.requests) == 1 and generations(store) == []


async def test_async_chat_completion_is_recorded_like_the_sync_one(
        store: Store, srv: FakeOpenAIServer, aclient: openai.AsyncOpenAI, openai_instrumented: None) -> None:
    srv.enqueue(Reply(content="Paris", prompt_tokens=11, completion_tokens=2))
    reply = await aclient.chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert reply.choices[0].message.content == "Paris"
    [row] = generations(store)
    assert row["name"] == "openai.chat.completions.create" and row["status"] == "ok"
    assert (row["prompt_tokens"], row["completion_tokens"]) == (11, 2)
    assert loads(row["output"])["content"] == "Paris"


def test_tool_calls_are_recorded_in_the_output_with_the_tools_parameter(
        store: Store, srv: FakeOpenAIServer, client: openai.OpenAI, openai_instrumented: None) -> None:
    srv.enqueue(Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"}, id="call_1")]))
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=USER, tools=[WEATHER_TOOL],
                                           tool_choice="auto")
    assert reply.choices[0].message.tool_calls[0].function.name == "get_weather"
    [row] = generations(store)
    assert loads(row["output"]) == {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "name": "get_weather", "arguments": '{"city": "Paris"}'}]}
    assert row["metadata"]["finish_reason"] == "tool_calls"
    assert row["metadata"]["model_parameters"] == {"tools": [WEATHER_TOOL], "tool_choice": "auto"}


def test_parse_with_a_pydantic_response_format_records_the_parsed_object(
        store: Store, srv: FakeOpenAIServer, client: openai.OpenAI, openai_instrumented: None) -> None:
    srv.enqueue(Reply(content='{"name": "Paris", "population": 2100000}'))
    reply = client.chat.completions.parse(model="gpt-4o-mini", messages=USER, response_format=City)
    assert reply.choices[0].message.parsed == City(name="Paris", population=2100000)
    [row] = generations(store)
    assert row["name"] == "openai.chat.completions.parse"
    assert row["metadata"]["model_parameters"] == {"response_format": "City"}
    assert loads(row["output"])["parsed"] == {"name": "Paris", "population": 2100000}


def test_messages_tools_and_reply_changed_after_the_call_are_recorded_as_they_were(
        store: Store, srv: FakeOpenAIServer, client: openai.OpenAI, openai_instrumented: None) -> None:
    srv.enqueue(Reply(content="Paris"))
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}]
    tools = [json.loads(json.dumps(WEATHER_TOOL))]
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=tools, temperature=0.1)
    messages[1]["content"] = "changed after the call"
    messages.append({"role": "assistant", "content": "appended after the call"})
    tools[0]["function"]["name"] = "renamed_after_the_call"
    reply.choices[0].message.content = "edited by the caller"
    [row] = generations(store)
    assert loads(row["input"]) == [{"role": "system", "content": "Be brief."},
                                   {"role": "user", "content": "Capital of France?"}]
    assert row["metadata"]["model_parameters"] == {"tools": [WEATHER_TOOL], "temperature": 0.1}
    assert loads(row["output"]) == {"role": "assistant", "content": "Paris"}


def test_long_messages_and_replies_are_cut_at_max_field_chars_with_the_marker(
        store: Store, srv: FakeOpenAIServer, client: openai.OpenAI, openai_instrumented: None) -> None:
    llmobs.configure(max_field_chars=64)
    question, answer = "why " * 50, "because " * 50
    srv.enqueue(Reply(content=answer))
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": question}])
    [row] = generations(store)
    [message] = loads(row["input"])
    output = loads(row["output"])
    assert message["content"].startswith("why why") and "…[truncated" in message["content"]
    assert output["content"].startswith("because") and "…[truncated" in output["content"]
    assert len(message["content"]) < len(question) and len(output["content"]) < len(answer)


# --- streams -----------------------------------------------------------------------------------------------------

def test_stream_with_usage_chunk_gives_every_chunk_and_records_usage_and_time_to_first_token(
        store: Store, srv: FakeOpenAIServer, client: openai.OpenAI) -> None:
    script = Reply(content="The capital is Paris", prompt_tokens=14, completion_tokens=4, chunk_delay=0.01)
    srv.enqueue(script)
    plain = [c.model_dump(exclude={"id", "created"}) for c in client.chat.completions.create(
        model="gpt-4o-mini", messages=USER, stream=True, stream_options={"include_usage": True})]
    integration.instrument()
    try:
        srv.enqueue(script)
        stream = client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True,
                                                stream_options={"include_usage": True})
        assert isinstance(stream, openai.Stream) and stream.response.status_code == 200
        chunks = list(stream)
    finally:
        integration.uninstrument()
    assert all(isinstance(c, openai.types.chat.ChatCompletionChunk) for c in chunks)
    assert [c.model_dump(exclude={"id", "created"}) for c in chunks] == plain
    [row] = generations(store)
    assert row["status"] == "ok" and loads(row["output"]) == {"role": "assistant", "content": "The capital is Paris"}
    assert (row["prompt_tokens"], row["completion_tokens"], row["total_tokens"]) == (14, 4, 18)
    assert row["metadata"]["usage_source"] == "reported" and row["metadata"]["finish_reason"] == "stop"
    assert row["metadata"]["model_parameters"] == {"stream": True, "stream_options": {"include_usage": True}}
    assert 10 <= row["time_to_first_token_ms"] < row["duration_ms"]
    assert row["cost_usd"] is not None


def test_stream_without_usage_chunk_estimates_tokens_and_says_so(
        store: Store, srv: FakeOpenAIServer, client: openai.OpenAI, openai_instrumented: None) -> None:
    from llmobs.pricing import estimate_tokens

    srv.enqueue(Reply(content="The capital of France is Paris."))
    text = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
        model="gpt-4o-mini", messages=USER, stream=True) if c.choices)
    assert text == "The capital of France is Paris."
    [row] = generations(store)
    assert row["metadata"]["usage_source"] == "estimated"
    assert row["prompt_tokens"] == estimate_tokens(USER[0]["content"], "gpt-4o-mini") > 0
    assert row["completion_tokens"] == estimate_tokens(text, "gpt-4o-mini") > 0
    assert row["cost_usd"] is not None


def test_stream_left_with_break_or_garbage_collected_still_ends_its_span(
        store: Store, srv: FakeOpenAIServer, client: openai.OpenAI, openai_instrumented: None) -> None:
    srv.enqueue(Reply(content="one two three four five"), Reply(content="six seven eight"))
    for chunk in client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True):
        if chunk.choices and chunk.choices[0].delta.content:
            break
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True)
    next(stream)
    del stream
    gc.collect()
    rows = generations(store)
    assert len(rows) == 2 and all(r["status"] == "ok" for r in rows)
    assert all(r["metadata"]["stream_closed_early"] is True for r in rows)
    assert loads(rows[0]["output"])["content"] == "one"


def test_stream_as_context_manager_and_the_sdk_stream_helper_keep_working(
        store: Store, srv: FakeOpenAIServer, client: openai.OpenAI, openai_instrumented: None) -> None:
    srv.enqueue(Reply(content="first answer"), Reply(content="helper answer"))
    with client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True) as stream:
        first = next(iter(stream))
        assert first.choices[0].delta.role == "assistant"
    with client.chat.completions.stream(model="gpt-4o-mini", messages=USER) as helper:
        final = helper.get_final_completion()
    assert final.choices[0].message.content == "helper answer"
    rows = generations(store)
    assert [loads(r["output"])["content"] for r in rows] == [None, "helper answer"]
    assert rows[0]["metadata"]["stream_closed_early"] is True
    assert "stream_closed_early" not in rows[1]["metadata"]


def test_streamed_tool_calls_are_reassembled(store: Store, srv: FakeOpenAIServer, client: openai.OpenAI,
                                             openai_instrumented: None) -> None:
    srv.enqueue(Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"}, id="call_9")]))
    list(client.chat.completions.create(model="gpt-4o-mini", messages=USER, tools=[WEATHER_TOOL], stream=True))
    [row] = generations(store)
    assert loads(row["output"])["tool_calls"] == [
        {"id": "call_9", "name": "get_weather", "arguments": '{"city": "Paris"}'}]
    assert row["metadata"]["finish_reason"] == "tool_calls" and row["time_to_first_token_ms"] is not None


async def test_async_stream_with_and_without_usage_and_as_async_context_manager(
        store: Store, srv: FakeOpenAIServer, aclient: openai.AsyncOpenAI, openai_instrumented: None) -> None:
    srv.enqueue(Reply(content="async one", prompt_tokens=5, completion_tokens=2), Reply(content="async two"))
    stream = await aclient.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True,
                                                   stream_options={"include_usage": True})
    texts = [c.choices[0].delta.content async for c in stream if c.choices]
    assert "".join(t or "" for t in texts) == "async one"
    async with await aclient.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True) as second:
        async for _ in second:
            pass
    first_row, second_row = generations(store)
    assert (first_row["prompt_tokens"], first_row["completion_tokens"]) == (5, 2)
    assert first_row["metadata"]["usage_source"] == "reported"
    assert second_row["metadata"]["usage_source"] == "estimated"
    assert loads(second_row["output"])["content"] == "async two"
    assert all(r["time_to_first_token_ms"] is not None for r in (first_row, second_row))


def test_stream_cut_mid_body_records_the_connection_error(
        store: Store, srv: FakeOpenAIServer, client: openai.OpenAI, openai_instrumented: None) -> None:
    srv.enqueue(Reply(content="a b c d e f", break_after=3))
    with pytest.raises(openai.APIError) as caught:
        list(client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True))
    [row] = generations(store)
    assert row["status"] == "error" and row["error_type"] == type(caught.value).__qualname__
    assert row["metadata"]["error_class"] == f"openai.{type(caught.value).__qualname__}"


# --- other endpoints ---------------------------------------------------------------------------------------------

def test_responses_create_plain_and_streaming(store: Store, srv: FakeOpenAIServer, client: openai.OpenAI,
                                              openai_instrumented: None) -> None:
    srv.enqueue(Reply(content="Paris", prompt_tokens=9, completion_tokens=1, cached_tokens=4),
                Reply(content="Streamed Paris", prompt_tokens=9, completion_tokens=2))
    reply = client.responses.create(model="gpt-4o-mini", instructions="Be brief.", input="Capital of France?",
                                    max_output_tokens=20)
    assert reply.output_text == "Paris"
    events = list(client.responses.create(model="gpt-4o-mini", input="Capital of France?", stream=True))
    assert events[-1].type == "response.completed"
    plain, streamed = generations(store)
    assert plain["name"] == "openai.responses.create"
    assert loads(plain["input"]) == [{"role": "system", "content": "Be brief."},
                                     {"role": "user", "content": "Capital of France?"}]
    assert loads(plain["output"]) == {"role": "assistant", "content": "Paris"}
    assert (plain["prompt_tokens"], plain["completion_tokens"]) == (9, 1)
    assert plain["metadata"]["usage_details"]["cached_tokens"] == 4
    assert plain["metadata"]["model_parameters"] == {"max_output_tokens": 20}
    assert plain["metadata"]["response_id"] == reply.id and plain["metadata"]["finish_reason"] == "stop"
    assert loads(streamed["output"]) == {"role": "assistant", "content": "Streamed Paris"}
    assert (streamed["prompt_tokens"], streamed["completion_tokens"]) == (9, 2)
    assert streamed["time_to_first_token_ms"] is not None and streamed["metadata"]["usage_source"] == "reported"


def test_legacy_completions_create(store: Store, srv: FakeOpenAIServer, client: openai.OpenAI,
                                   openai_instrumented: None) -> None:
    srv.enqueue(Reply(content=" Paris.", prompt_tokens=6, completion_tokens=2))
    reply = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="The capital of France is",
                                      max_tokens=5)
    assert reply.choices[0].text == " Paris."
    [row] = generations(store)
    assert row["name"] == "openai.completions.create" and loads(row["input"]) == "The capital of France is"
    assert loads(row["output"]) == " Paris." and (row["prompt_tokens"], row["completion_tokens"]) == (6, 2)


def test_embeddings_are_recorded_as_embedding_spans(store: Store, srv: FakeOpenAIServer, client: openai.OpenAI,
                                                    openai_instrumented: None) -> None:
    reply = client.embeddings.create(model="text-embedding-3-small", input=["first text", "second"])
    assert len(reply.data) == 2
    [row] = generations(store)
    assert (row["name"], row["kind"]) == ("openai.embeddings.create", "embedding")
    assert loads(row["input"]) == ["first text", "second"]
    assert loads(row["output"]) == {"embeddings": 2, "dimensions": 64}
    assert row["prompt_tokens"] == reply.usage.prompt_tokens and row["completion_tokens"] is None
    assert row["cost_usd"] is not None


def test_with_raw_response_is_recorded_and_parse_returns_the_sdk_object(
        store: Store, srv: FakeOpenAIServer, client: openai.OpenAI, openai_instrumented: None) -> None:
    srv.enqueue(Reply(content="raw Paris", prompt_tokens=3, completion_tokens=2),
                Reply(content="raw stream", prompt_tokens=3, completion_tokens=2))
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=USER)
    assert raw.headers["x-request-id"].startswith("req_")
    assert raw.parse() is raw.parse() and raw.parse().choices[0].message.content == "raw Paris"
    raw_stream = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=USER, stream=True, stream_options={"include_usage": True})
    assert "".join(c.choices[0].delta.content or "" for c in raw_stream.parse() if c.choices) == "raw stream"
    first, second = generations(store)
    assert loads(first["output"])["content"] == "raw Paris" and first["prompt_tokens"] == 3
    assert loads(second["output"])["content"] == "raw stream" and second["completion_tokens"] == 2


def test_with_streaming_response_passes_through_unrecorded_and_readable(
        store: Store, srv: FakeOpenAIServer, client: openai.OpenAI, openai_instrumented: None) -> None:
    srv.enqueue(Reply(content="streamed body"))
    with client.chat.completions.with_streaming_response.create(model="gpt-4o-mini", messages=USER) as response:
        body = json.loads(b"".join(response.iter_bytes()))
    assert body["choices"][0]["message"]["content"] == "streamed body"
    assert generations(store) == []


# --- errors and latency ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("status", "error_class"), [(429, openai.RateLimitError),
                                                     (500, openai.InternalServerError)])
def test_http_errors_are_recorded_and_reach_the_caller_unchanged(
        store: Store, srv: FakeOpenAIServer, client: openai.OpenAI, openai_instrumented: None, status: int,
        error_class: type[Exception]) -> None:
    srv.enqueue(Reply.error(status, "scripted failure"))
    with pytest.raises(error_class) as caught:
        client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert caught.value.status_code == status and "scripted failure" in str(caught.value)
    [row] = generations(store)
    assert row["status"] == "error" and row["error_type"] == error_class.__qualname__
    assert row["error_message"] == str(caught.value)
    assert row["metadata"]["error_class"] == f"openai.{error_class.__name__}"
    assert row["metadata"]["http_status"] == status
    assert row["metadata"]["request_id"] == caught.value.request_id
    assert row["prompt_tokens"] is None and row["cost_usd"] is None


def test_slow_response_latency_is_the_span_duration(store: Store, srv: FakeOpenAIServer, client: openai.OpenAI,
                                                    openai_instrumented: None) -> None:
    srv.enqueue(Reply(content="slow", delay=0.3))
    client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    [row] = generations(store)
    assert 300 <= row["duration_ms"] < 5000


def test_sdk_retry_after_429_is_one_span_with_the_final_answer(
        store: Store, srv: FakeOpenAIServer, openai_instrumented: None) -> None:
    srv.enqueue(Reply.error(429, retry_after=0.01), Reply(content="after retry"))
    with openai.OpenAI(base_url=srv.base_url, api_key="sk-test", max_retries=1) as retrying:
        assert retrying.chat.completions.create(model="gpt-4o-mini", messages=USER).choices[0].message.content \
            == "after retry"
    assert len(srv.requests) == 2
    [row] = generations(store)
    assert row["status"] == "ok" and loads(row["output"])["content"] == "after retry"


# --- nesting, providers, odd replies -----------------------------------------------------------------------------

def test_calls_inside_observe_nest_and_calls_outside_start_their_own_trace(
        store: Store, srv: FakeOpenAIServer, client: openai.OpenAI, openai_instrumented: None) -> None:
    @llmobs.observe(name="answer")
    def answer() -> str:
        return client.chat.completions.create(model="gpt-4o-mini", messages=USER).choices[0].message.content

    answer()
    client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    rows = store.spans()
    outer = next(r for r in rows if r["name"] == "answer")
    nested, alone = [r for r in rows if r["kind"] == "generation"]
    assert nested["parent_id"] == outer["id"] and nested["trace_id"] == outer["trace_id"]
    assert alone["parent_id"] is None and alone["trace_id"] != outer["trace_id"]
    assert len(store.traces()) == 2


def _free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_provider_is_derived_from_the_base_url_and_the_client_class(
        store: Store, srv: FakeOpenAIServer, openai_instrumented: None) -> None:
    with openai.OpenAI(base_url=f"http://localhost:{srv.port}/v1", api_key="sk", max_retries=0) as local:
        local.chat.completions.create(model="llama3", messages=USER)
    with openai.AzureOpenAI(base_url=srv.base_url, api_key="sk", api_version="2024-06-01", max_retries=0) as azure:
        try:
            azure.chat.completions.create(model="gpt-4o-mini", messages=USER)
        except openai.APIStatusError:
            pass  # the fake server does not serve Azure's deployment paths; the provider is recorded all the same
    providers = [r["provider"] for r in generations(store)]
    if _free(11434):
        with FakeOpenAIServer(port=11434) as ollama_port, \
                openai.OpenAI(base_url=ollama_port.base_url, api_key="ollama", max_retries=0) as ollama:
            ollama.chat.completions.create(model="llama3", messages=USER)
        providers = [r["provider"] for r in generations(store)]
        assert providers[-1] == "ollama"
    assert providers[:2] == ["openai-compatible", "azure"]


ODD_CHAT_BODIES = [
    # no usage, None content, an unknown finish reason and a field the SDK does not know yet
    {"id": "odd-1", "object": "chat.completion", "created": 0, "model": "odd-model", "brand_new_field": {"x": 1},
     "choices": [{"index": 0, "message": {"role": "assistant", "content": None}, "finish_reason": "weird_reason"}]},
    # usage counts that are not numbers and a missing choices list
    {"id": "odd-2", "object": "chat.completion", "created": 0, "model": "odd-model",
     "usage": {"prompt_tokens": "ten", "completion_tokens": -3, "total_tokens": None}},
    # not an object at all
    ["just", "a", "list"],
]


@pytest.mark.parametrize("body", ODD_CHAT_BODIES, ids=["no-usage", "bad-usage", "list-body"])
def test_odd_provider_replies_are_recorded_as_far_as_they_go_and_never_raise(
        store: Store, srv: FakeOpenAIServer, client: openai.OpenAI, openai_instrumented: None, body: Any) -> None:
    srv.enqueue(Reply(raw_body=json.dumps(body)))
    client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    [row] = generations(store)
    assert row["status"] == "ok"
    if isinstance(body, dict):
        assert row["model_name"] == "odd-model" and row["metadata"]["response_id"] == body["id"]
    if isinstance(body, dict) and "choices" in body:
        assert row["metadata"]["finish_reason"] == "weird_reason"
        assert loads(row["output"]) == {"role": "assistant", "content": None}
    assert row["metadata"]["usage_source"] == "estimated" and row["prompt_tokens"] > 0


def test_odd_stream_chunks_are_skipped_and_the_stream_goes_on(
        store: Store, srv: FakeOpenAIServer, client: openai.OpenAI, openai_instrumented: None) -> None:
    frames = [{"id": "s1", "object": "chat.completion.chunk", "created": 0, "model": "odd-model",
               "choices": [{"index": 0, "delta": {"content": "Hel"}, "finish_reason": None}]},
              {"id": "s1", "object": "chat.completion.chunk", "created": 0, "model": "odd-model",
               "choices": [{"index": "zero", "delta": None, "finish_reason": "brand_new"}]},
              {"id": "s1", "object": "chat.completion.chunk", "created": 0, "model": "odd-model",
               "choices": [{"index": 0, "delta": {"content": "lo"}, "finish_reason": "stop"}]}]
    srv.enqueue(Reply(raw_body="".join(f"data: {json.dumps(f)}\n\n" for f in frames) + "data: [DONE]\n\n"))
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True))
    assert len(chunks) == 3
    [row] = generations(store)
    assert row["status"] == "ok" and loads(row["output"])["content"] == "Hello"
    assert row["model_name"] == "odd-model"


def test_one_shot_message_iterables_are_recorded_and_still_sent(
        store: Store, srv: FakeOpenAIServer, client: openai.OpenAI, openai_instrumented: None) -> None:
    client.chat.completions.create(model="gpt-4o-mini", messages=(m for m in USER))
    assert srv.requests[-1].body["messages"] == USER
    [row] = generations(store)
    assert loads(row["input"]) == USER


def test_disabled_llmobs_records_nothing_and_the_call_works(
        store: Store, srv: FakeOpenAIServer, client: openai.OpenAI, openai_instrumented: None) -> None:
    llmobs.configure(enabled=False)
    try:
        stream = client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True)
        assert isinstance(stream, openai.Stream) and type(stream) is openai.Stream
        list(stream)
    finally:
        llmobs.configure(enabled=True)
    assert generations(store) == []


def test_without_the_sdk_the_module_imports_and_instrument_names_the_extra_to_install() -> None:
    import subprocess
    import sys

    code = ("import sys; sys.modules['openai'] = None\n"
            "import llmobs.integrations.openai as integration\n"
            "try:\n    integration.instrument()\nexcept ImportError as exc:\n    print(exc)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "pip install 'llmobs[openai]'" in done.stdout
