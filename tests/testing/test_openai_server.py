"""The fake OpenAI server speaks the real wire format: the official `openai` SDK parses every endpoint and behaviour."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import os
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import pydantic
import pytest
from openai.types.chat import ChatCompletionMessageParam

from llmobs.testing.openai_server import FakeOpenAIServer, RecordedRequest, Reply, ToolCall

REPO_ROOT = Path(__file__).resolve().parents[2]
USER_MSG: list[ChatCompletionMessageParam] = [{"role": "user", "content": "What is the capital of France?"}]


class City(pydantic.BaseModel):
    name: str
    population: int


@pytest.fixture()
def client(srv: FakeOpenAIServer) -> Iterator[openai.OpenAI]:
    """A real sync SDK client pointed at the fake server, retries off so errors surface at once."""
    with openai.OpenAI(base_url=srv.base_url, api_key="sk-test", max_retries=0) as c:
        yield c


# -- chat completions ---------------------------------------------------------------------------------------------
def test_chat_default_reply_echoes_last_user_message_with_usage(client: openai.OpenAI) -> None:
    """Unscripted chat replies echo the last user message and carry a full usage block."""
    messages: list[ChatCompletionMessageParam] = [{"role": "system", "content": "Be brief."}, *USER_MSG]
    r = client.chat.completions.create(model="gpt-4o", messages=messages)
    assert r.object == "chat.completion"
    assert r.model == "gpt-4o"
    assert r.choices[0].message.content == "Echo: What is the capital of France?"
    assert r.choices[0].finish_reason == "stop"
    assert r.usage is not None
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    assert r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0
    assert r.usage.prompt_tokens_details is not None and r.usage.prompt_tokens_details.cached_tokens == 0
    assert r.usage.completion_tokens_details is not None
    assert r.usage.completion_tokens_details.reasoning_tokens == 0


def test_chat_scripted_content_model_and_token_details(srv: FakeOpenAIServer, client: openai.OpenAI) -> None:
    """Scripted content, model name and token counts (cached, reasoning) reach the SDK objects unchanged."""
    srv.enqueue(
        Reply(
            content="Paris",
            model="gpt-4o-2024-08-06",
            prompt_tokens=120,
            completion_tokens=30,
            cached_tokens=100,
            reasoning_tokens=12,
        )
    )
    r = client.chat.completions.create(model="gpt-4o", messages=USER_MSG)
    assert r.choices[0].message.content == "Paris"
    assert r.model == "gpt-4o-2024-08-06"
    assert r.usage is not None
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (120, 30, 150)
    assert r.usage.prompt_tokens_details is not None and r.usage.prompt_tokens_details.cached_tokens == 100
    assert r.usage.completion_tokens_details is not None
    assert r.usage.completion_tokens_details.reasoning_tokens == 12


def test_chat_usage_can_be_omitted(srv: FakeOpenAIServer, client: openai.OpenAI) -> None:
    """Reply(usage=False) sends no usage block, like providers that do not report tokens."""
    srv.enqueue(Reply(content="no usage here", usage=False))
    r = client.chat.completions.create(model="gpt-4o", messages=USER_MSG)
    assert r.usage is None
    assert r.choices[0].message.content == "no usage here"


def test_chat_stream_reassembles_content_without_usage_chunk_by_default(client: openai.OpenAI) -> None:
    """A plain stream reassembles to the full reply, ends with finish_reason, and carries no usage."""
    chunks = list(client.chat.completions.create(model="gpt-4o", messages=USER_MSG, stream=True))
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: What is the capital of France?"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)
    assert len({c.id for c in chunks}) == 1


def test_chat_stream_usage_chunk_only_when_include_usage(srv: FakeOpenAIServer, client: openai.OpenAI) -> None:
    """With stream_options.include_usage the last chunk has no choices and the usage; earlier chunks have none."""
    srv.enqueue(Reply(content="one two three", prompt_tokens=7, completion_tokens=3, cached_tokens=2))
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o",
            messages=USER_MSG,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    *body, last = chunks
    assert last.choices == [] and last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens, last.usage.total_tokens) == (7, 3, 10)
    assert last.usage.prompt_tokens_details is not None and last.usage.prompt_tokens_details.cached_tokens == 2
    assert all(c.usage is None for c in body)
    assert "".join(c.choices[0].delta.content or "" for c in body) == "one two three"


def test_chat_stream_include_usage_but_usage_omitted(srv: FakeOpenAIServer, client: openai.OpenAI) -> None:
    """Reply(usage=False) drops the usage chunk even when the client asked for it (a broken provider)."""
    srv.enqueue(Reply(content="hi", usage=False))
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o",
            messages=USER_MSG,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert all(c.choices for c in chunks) and all(c.usage is None for c in chunks)


def test_chat_tool_calls_plain_and_streamed(srv: FakeOpenAIServer, client: openai.OpenAI) -> None:
    """Scripted tool calls arrive as message.tool_calls (finish_reason tool_calls) and as streamed deltas."""
    calls = [ToolCall("get_weather", {"city": "Paris"}, id="call_abc"), ToolCall("get_time", '{"tz": "CET"}')]
    srv.enqueue(Reply(tool_calls=calls), Reply(tool_calls=calls))
    r = client.chat.completions.create(model="gpt-4o", messages=USER_MSG)
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    assert choice.message.tool_calls is not None
    got = [(t.id, t.function.name, json.loads(t.function.arguments)) for t in choice.message.tool_calls]  # type: ignore[union-attr]
    assert got[0] == ("call_abc", "get_weather", {"city": "Paris"})
    assert got[1][1:] == ("get_time", {"tz": "CET"})

    stream = client.chat.completions.create(model="gpt-4o", messages=USER_MSG, stream=True)
    names: dict[int, str] = {}
    args: dict[int, str] = {}
    finish = None
    for chunk in stream:
        for delta in chunk.choices[0].delta.tool_calls or []:
            if delta.function and delta.function.name:
                names[delta.index] = delta.function.name
            args[delta.index] = args.get(delta.index, "") + ((delta.function and delta.function.arguments) or "")
        finish = chunk.choices[0].finish_reason or finish
    assert names == {0: "get_weather", 1: "get_time"}
    assert json.loads(args[0]) == {"city": "Paris"} and json.loads(args[1]) == {"tz": "CET"}
    assert finish == "tool_calls"


def test_chat_stream_helper_accumulates_tool_calls(srv: FakeOpenAIServer, client: openai.OpenAI) -> None:
    """The SDK's `chat.completions.stream()` helper accepts our deltas and rebuilds the final completion."""
    srv.enqueue(Reply(content="Let me check.", tool_calls=[ToolCall("lookup", {"q": "x"})]))
    with client.chat.completions.stream(model="gpt-4o", messages=USER_MSG) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    message = final.choices[0].message
    assert message.content == "Let me check."
    assert message.tool_calls and message.tool_calls[0].function.name == "lookup"
    assert json.loads(message.tool_calls[0].function.arguments) == {"q": "x"}


def test_parse_structured_output_scripted_and_default(srv: FakeOpenAIServer, client: openai.OpenAI) -> None:
    """chat.completions.parse() parses scripted JSON, and unscripted replies fit the requested schema."""
    srv.enqueue(Reply(content='{"name": "Paris", "population": 2100000}'))
    parsed = client.chat.completions.parse(model="gpt-4o", messages=USER_MSG, response_format=City)
    assert parsed.choices[0].message.parsed == City(name="Paris", population=2100000)
    default = client.chat.completions.parse(model="gpt-4o", messages=USER_MSG, response_format=City)
    assert isinstance(default.choices[0].message.parsed, City)
    sent = srv.requests[0].body["response_format"]
    assert sent["type"] == "json_schema"


def test_json_mode_default_and_malformed_content(srv: FakeOpenAIServer, client: openai.OpenAI) -> None:
    """json_object mode defaults to valid JSON; scripted malformed content reaches the client verbatim."""
    r = client.chat.completions.create(model="gpt-4o", messages=USER_MSG, response_format={"type": "json_object"})
    assert json.loads(r.choices[0].message.content or "") == {"echo": "What is the capital of France?"}
    srv.enqueue(Reply(content="Score: 7/10 {not json"), Reply(content="Score: 7/10 {not json"))
    r = client.chat.completions.create(model="gpt-4o", messages=USER_MSG, response_format={"type": "json_object"})
    assert r.choices[0].message.content == "Score: 7/10 {not json"
    with pytest.raises(pydantic.ValidationError):
        client.chat.completions.parse(model="gpt-4o", messages=USER_MSG, response_format=City)


def test_finish_reason_override(srv: FakeOpenAIServer, client: openai.OpenAI) -> None:
    """A scripted finish_reason is reported, and parse() reacts to "length" as it does upstream."""
    srv.enqueue(Reply(content="cut", finish_reason="length"), Reply(content="{}", finish_reason="length"))
    r = client.chat.completions.create(model="gpt-4o", messages=USER_MSG)
    assert r.choices[0].finish_reason == "length"
    with pytest.raises(openai.LengthFinishReasonError):
        client.chat.completions.parse(model="gpt-4o", messages=USER_MSG, response_format=City)


# -- Responses API ------------------------------------------------------------------------------------------------
def test_responses_plain(srv: FakeOpenAIServer, client: openai.OpenAI) -> None:
    """responses.create returns an output message whose output_text and usage details parse."""
    srv.enqueue(Reply(content="Bonjour", prompt_tokens=11, completion_tokens=4, cached_tokens=5, reasoning_tokens=2))
    r = client.responses.create(model="gpt-4.1-mini", input="Say hello in French", instructions="Be brief.")
    assert r.object == "response" and r.status == "completed"
    assert r.output_text == "Bonjour"
    assert r.model == "gpt-4.1-mini"
    assert r.usage is not None
    assert (r.usage.input_tokens, r.usage.output_tokens, r.usage.total_tokens) == (11, 4, 15)
    assert r.usage.input_tokens_details.cached_tokens == 5
    assert r.usage.output_tokens_details.reasoning_tokens == 2
    default = client.responses.create(model="gpt-4.1-mini", input=[{"role": "user", "content": "hi there"}])
    assert default.output_text == "Echo: hi there"


def test_responses_stream_typed_events(srv: FakeOpenAIServer, client: openai.OpenAI) -> None:
    """A streamed response emits the typed events in order; deltas reassemble; response.completed carries usage."""
    srv.enqueue(Reply(content="streamed answer here", prompt_tokens=9, completion_tokens=3))
    events = list(client.responses.create(model="gpt-4o", input="hi", stream=True))
    kinds = [e.type for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")  # type: ignore[union-attr]
    assert deltas == "streamed answer here"
    completed = events[-1].response  # type: ignore[union-attr]
    assert completed.usage is not None and completed.usage.total_tokens == 12
    assert completed.output_text == "streamed answer here"


def test_responses_stream_helper_with_tool_calls(srv: FakeOpenAIServer, client: openai.OpenAI) -> None:
    """The SDK's strict `responses.stream()` helper accepts our events, including function-call items."""
    srv.enqueue(Reply(content="Checking.", tool_calls=[ToolCall("search", {"q": "llm"})]))
    with client.responses.stream(model="gpt-4o", input="find") as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()
    assert final.output_text == "Checking."
    call = final.output[1]
    assert call.type == "function_call" and call.name == "search" and json.loads(call.arguments) == {"q": "llm"}
    assert final.usage is not None and final.usage.output_tokens > 0


def test_responses_incomplete_when_length(srv: FakeOpenAIServer, client: openai.OpenAI) -> None:
    """finish_reason "length" becomes status incomplete (max_output_tokens), streamed as response.incomplete."""
    srv.enqueue(Reply(content="partial", finish_reason="length"), Reply(content="partial", finish_reason="length"))
    r = client.responses.create(model="gpt-4o", input="long story")
    assert r.status == "incomplete" and r.incomplete_details is not None
    assert r.incomplete_details.reason == "max_output_tokens"
    last = list(client.responses.create(model="gpt-4o", input="long story", stream=True))[-1]
    assert last.type == "response.incomplete"


# -- legacy completions, embeddings, models -------------------------------------------------------------------
def test_legacy_completions_plain_and_stream(srv: FakeOpenAIServer, client: openai.OpenAI) -> None:
    """Text completions work plain and streamed, with the usage chunk only on request."""
    r = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Once upon a time")
    assert r.object == "text_completion" and r.choices[0].text == "Echo: Once upon a time"
    assert r.usage is not None and r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    chunks = list(client.completions.create(model="gpt-3.5-turbo-instruct", prompt="abc", stream=True))
    assert "".join(c.choices[0].text for c in chunks) == "Echo: abc"
    assert all(c.usage is None for c in chunks)
    chunks = list(
        client.completions.create(
            model="gpt-3.5-turbo-instruct", prompt="abc", stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[-1].choices == [] and chunks[-1].usage is not None


def test_embeddings_deterministic_fixed_dimension(srv: FakeOpenAIServer, client: openai.OpenAI) -> None:
    """Embeddings are unit vectors of a fixed dimension, equal for equal text, closer for texts sharing words."""
    r = client.embeddings.create(model="text-embedding-3-small", input=["the cat sat", "the cat sat", "quantum flux"])
    vectors = [d.embedding for d in r.data]
    assert [d.index for d in r.data] == [0, 1, 2]
    assert all(len(v) == srv.embedding_dimensions for v in vectors)
    assert vectors[0] == vectors[1]
    assert math.isclose(sum(x * x for x in vectors[0]), 1.0, rel_tol=1e-6)
    similar = client.embeddings.create(model="text-embedding-3-small", input="the cat sat down").data[0].embedding
    assert sum(a * b for a, b in zip(vectors[0], similar, strict=True)) > sum(
        a * b for a, b in zip(vectors[2], similar, strict=True)
    )
    assert r.usage.prompt_tokens > 0 and r.usage.total_tokens == r.usage.prompt_tokens
    sized = client.embeddings.create(model="text-embedding-3-small", input="x", dimensions=8)
    assert len(sized.data[0].embedding) == 8


def test_embeddings_base64_encoding(client: openai.OpenAI) -> None:
    """encoding_format="base64" returns little-endian float32 bytes of the same vector."""
    plain = client.embeddings.create(model="text-embedding-3-small", input="hello").data[0].embedding
    raw = client.embeddings.create(model="text-embedding-3-small", input="hello", encoding_format="base64")
    encoded = raw.data[0].embedding
    decoded = struct.unpack(f"<{len(plain)}f", base64.b64decode(encoded)) if isinstance(encoded, str) else encoded
    assert all(math.isclose(a, b, abs_tol=1e-6) for a, b in zip(plain, decoded, strict=True))


def test_models_list(client: openai.OpenAI) -> None:
    """GET /v1/models lists model objects."""
    ids = [m.id for m in client.models.list()]
    assert "gpt-4o" in ids and "text-embedding-3-small" in ids
    assert client.models.retrieve("gpt-4o").id == "gpt-4o"


# -- errors, retries, timing, broken streams ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "exc"),
    [
        (400, openai.BadRequestError),
        (401, openai.AuthenticationError),
        (404, openai.NotFoundError),
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
    ],
)
def test_error_statuses_raise_sdk_exceptions(
    srv: FakeOpenAIServer, client: openai.OpenAI, status: int, exc: type[openai.APIStatusError]
) -> None:
    """Scripted error statuses raise the SDK's typed exception with the status and an OpenAI-shaped body."""
    srv.enqueue(Reply.error(status, "scripted failure"))
    with pytest.raises(exc) as info:
        client.chat.completions.create(model="gpt-4o", messages=USER_MSG)
    assert info.value.status_code == status
    assert isinstance(info.value.body, dict) and info.value.body["message"] == "scripted failure"
    assert {"type", "code", "param"} <= set(info.value.body)


def test_rate_limit_carries_retry_after(srv: FakeOpenAIServer, client: openai.OpenAI) -> None:
    """A 429 with retry_after sends Retry-After (seconds) and retry-after-ms headers and the rate-limit code."""
    srv.enqueue(Reply.error(429, retry_after=2.5))
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="gpt-4o", messages=USER_MSG)
    assert info.value.response.headers["retry-after"] == "3"
    assert info.value.response.headers["retry-after-ms"] == "2500"
    assert info.value.code == "rate_limit_exceeded"


def test_sdk_retries_are_visible_in_requests(srv: FakeOpenAIServer) -> None:
    """With retries on, the SDK honours retry-after-ms and each attempt is recorded."""
    srv.enqueue(Reply.error(429, retry_after=0.01), Reply.error(500, retry_after=0.01), Reply(content="third time"))
    with openai.OpenAI(base_url=srv.base_url, api_key="sk-test", max_retries=2) as c:
        r = c.chat.completions.create(model="gpt-4o", messages=USER_MSG)
    assert r.choices[0].message.content == "third time"
    assert len(srv.requests) == 3
    assert [q.headers.get("x-stainless-retry-count") for q in srv.requests] == ["0", "1", "2"]


def test_delay_is_measurable(srv: FakeOpenAIServer, client: openai.OpenAI) -> None:
    """Reply.delay holds the whole response back by at least that long."""
    srv.enqueue(Reply(delay=0.2))
    start = time.perf_counter()
    client.chat.completions.create(model="gpt-4o", messages=USER_MSG)
    assert time.perf_counter() - start >= 0.2


def test_stream_time_to_first_token_and_chunk_delay(srv: FakeOpenAIServer, client: openai.OpenAI) -> None:
    """delay sets the time to the first chunk; chunk_delay spaces every streamed chunk."""
    srv.enqueue(Reply(content="a b c", delay=0.15, chunk_delay=0.03))
    start = time.perf_counter()
    stamps = [
        time.perf_counter() - start
        for _ in client.chat.completions.create(model="gpt-4o", messages=USER_MSG, stream=True)
    ]
    assert stamps[0] >= 0.15 + 0.03
    # role chunk + 3 content chunks + finish chunk (+ [DONE]) each waited chunk_delay
    assert len(stamps) == 5 and stamps[-1] >= 0.15 + 5 * 0.03


def test_broken_stream_raises_connection_error_after_partial_content(
    srv: FakeOpenAIServer, client: openai.OpenAI
) -> None:
    """break_after drops the connection mid-body: the SDK yields the chunks sent, then raises APIConnectionError."""
    srv.enqueue(Reply(content="one two three four five", break_after=3))
    received: list[str] = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in client.chat.completions.create(model="gpt-4o", messages=USER_MSG, stream=True):
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "one two"


def test_raw_non_json_body(srv: FakeOpenAIServer, client: openai.OpenAI) -> None:
    """raw_body is sent verbatim: a non-JSON 502 raises InternalServerError with the text."""
    srv.enqueue(Reply(status=502, raw_body="<html>Bad gateway</html>"))
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="gpt-4o", messages=USER_MSG)
    assert info.value.status_code == 502
    assert "Bad gateway" in info.value.response.text


def test_unknown_path_is_openai_shaped_404(client: openai.OpenAI) -> None:
    """Endpoints the server does not implement answer 404 with the error envelope."""
    with pytest.raises(openai.NotFoundError):
        client.post("/fine_tuning/jobs", body={}, cast_to=object)


def test_reply_validation_rejects_impossible_scripts() -> None:
    """Reply refuses a bad status, finish_reason or negative delay when built, naming the field."""
    with pytest.raises(ValueError, match="status"):
        Reply(status=42)
    with pytest.raises(ValueError, match="finish_reason"):
        Reply(finish_reason="done")
    with pytest.raises(ValueError, match="delay"):
        Reply(delay=-1)


# -- scripting hooks and request recording ------------------------------------------------------------------------
def test_responder_hook_and_queue_precedence(srv: FakeOpenAIServer, client: openai.OpenAI) -> None:
    """The queue is used first, then the responder; a responder returning None falls back to the default."""

    def responder(req: RecordedRequest) -> Reply | None:
        last = req.body["messages"][-1]["content"]
        return Reply(content=f"judged: {last.upper()}") if "judge" in last else None

    srv.responder = responder
    srv.enqueue(Reply(content="from queue"))

    def ask(text: str) -> str | None:
        r = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": text}])
        return r.choices[0].message.content

    assert ask("please judge") == "from queue"
    assert ask("please judge") == "judged: PLEASE JUDGE"
    assert ask("plain") == "Echo: plain"
    assert srv.pending == 0


def test_responder_exception_becomes_500(srv: FakeOpenAIServer, client: openai.OpenAI) -> None:
    """A responder that raises answers 500 naming the exception instead of hanging the client."""

    def responder(req: RecordedRequest) -> Reply | None:
        raise KeyError("oops")

    srv.responder = responder
    with pytest.raises(openai.InternalServerError, match="KeyError"):
        client.chat.completions.create(model="gpt-4o", messages=USER_MSG)


def test_requests_are_recorded_thread_safely(srv: FakeOpenAIServer, client: openai.OpenAI) -> None:
    """Concurrent requests are all recorded with path, headers and parsed JSON body."""

    def call(i: int) -> str | None:
        r = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": f"n{i}"}])
        return r.choices[0].message.content

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(call, range(16)))
    assert sorted(answers) == sorted(f"Echo: n{i}" for i in range(16))  # type: ignore[type-var]
    recorded = srv.wait_for_requests(16, timeout=2.0)
    assert len(recorded) == 16
    first = recorded[0]
    assert first.method == "POST" and first.path == "/v1/chat/completions"
    assert first.headers["authorization"] == "Bearer sk-test"
    assert first.body["model"] == "gpt-4o-mini"
    assert sorted(r.body["messages"][0]["content"] for r in recorded) == sorted(f"n{i}" for i in range(16))


def test_async_client_chat_stream_and_responses(srv: FakeOpenAIServer) -> None:
    """The async SDK client parses plain, streamed and Responses replies from the same server."""

    async def scenario() -> tuple[str | None, str, str]:
        async with openai.AsyncOpenAI(base_url=srv.base_url, api_key="sk-test", max_retries=0) as ac:
            plain = await ac.chat.completions.create(model="gpt-4o", messages=USER_MSG)
            stream = await ac.chat.completions.create(model="gpt-4o", messages=USER_MSG, stream=True)
            text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
            resp = await ac.responses.create(model="gpt-4o", input="async")
            return plain.choices[0].message.content, text, resp.output_text

    srv.enqueue(Reply(content="async plain"))
    assert asyncio.run(scenario()) == ("async plain", "Echo: What is the capital of France?", "Echo: async")


def test_async_client_errors(srv: FakeOpenAIServer) -> None:
    """The async client raises the same typed errors."""

    async def scenario() -> None:
        async with openai.AsyncOpenAI(base_url=srv.base_url, api_key="sk-test", max_retries=0) as ac:
            await ac.chat.completions.create(model="gpt-4o", messages=USER_MSG)

    srv.enqueue(Reply.error(429))
    with pytest.raises(openai.RateLimitError):
        asyncio.run(scenario())


# -- lifecycle and CLI ----------------------------------------------------------------------------------------------
def test_stop_is_prompt_even_with_a_long_pending_delay() -> None:
    """stop() wakes a reply waiting on a long delay, so the server never outlives its test."""
    srv = FakeOpenAIServer().start()
    srv.enqueue(Reply(delay=30))
    errors: list[BaseException] = []

    def call() -> None:
        try:
            with openai.OpenAI(base_url=srv.base_url, api_key="k", max_retries=0, timeout=10) as c:
                c.chat.completions.create(model="gpt-4o", messages=USER_MSG)
        except BaseException as exc:
            errors.append(exc)

    caller = threading.Thread(target=call, daemon=True)
    caller.start()
    srv.wait_for_requests(1, timeout=2.0)
    start = time.perf_counter()
    srv.stop()
    caller.join(timeout=5.0)
    assert time.perf_counter() - start < 2.0
    assert not caller.is_alive()
    assert errors and isinstance(errors[0], openai.APIConnectionError)


def test_cli_prints_base_url_serves_and_stops_on_sigterm() -> None:
    """`python -m llmobs.testing.openai_server --port 0` prints its base URL, serves, and exits cleanly on SIGTERM."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmobs.testing.openai_server", "--port", "0", "--seconds", "20"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO_ROOT,
    )
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        with openai.OpenAI(base_url=base_url, api_key="k", max_retries=0) as c:
            assert c.chat.completions.create(model="gpt-4o", messages=USER_MSG).choices[0].message.content
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
