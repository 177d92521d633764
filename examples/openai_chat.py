"""Trace OpenAI SDK calls with llmobs: a chat call, a streamed call and a tool call inside one ``@observe`` function.

    pip install 'llmobs[openai]'
    python examples/openai_chat.py

Without ``OPENAI_API_KEY`` the script starts llmobs's offline OpenAI-compatible server (``FakeOpenAIServer``) and
talks to it; with a key it calls the real API (``OPENAI_MODEL``, default gpt-4o-mini). Spans go to the configured
database (``LLMOBS_DATABASE_URL``, default ``sqlite:///data/llmobs.db``); the script reads them back and prints them.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from typing import Any

import openai

import llmobs
from _recorded import print_recorded  # examples/_recorded.py
from llmobs.integrations.openai import instrument, uninstrument

MODEL = os.environ.get("OPENAI_MODEL", "gpt-4o-mini")
WEATHER_TOOL: dict[str, Any] = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
TRACE_IDS: list[str | None] = []


@contextlib.contextmanager
def openai_client() -> Iterator[openai.OpenAI]:
    """The real API when OPENAI_API_KEY is set, else a client on the offline fake server."""
    if os.environ.get("OPENAI_API_KEY"):
        with openai.OpenAI() as client:
            yield client
        return
    from llmobs.testing.openai_server import FakeOpenAIServer, Reply, ToolCall

    with FakeOpenAIServer() as server:
        server.enqueue(Reply(content="Paris is the capital of France.", cached_tokens=4),
                       Reply(content="Bonjour ! Je vais bien, merci.", chunk_delay=0.02),
                       Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"})]))
        with openai.OpenAI(base_url=server.base_url, api_key="sk-offline-example") as client:
            yield client


@llmobs.observe(name="travel_assistant")
def travel_assistant(client: openai.OpenAI) -> dict[str, Any]:
    """Three model calls in one trace: plain, streamed (with usage chunk) and with a tool."""
    TRACE_IDS.append(llmobs.get_current_trace_id())
    llmobs.update_current_trace(user_id="example-user", tags=["example", "openai"])
    capital = client.chat.completions.create(
        model=MODEL, temperature=0.2, max_tokens=60,
        messages=[{"role": "system", "content": "Answer in one sentence."},
                  {"role": "user", "content": "What is the capital of France?"}])
    stream = client.chat.completions.create(
        model=MODEL, stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "Say hello in French."}])
    greeting = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    weather = client.chat.completions.create(
        model=MODEL, tools=[WEATHER_TOOL], messages=[{"role": "user", "content": "What is the weather in Paris?"}])
    calls = weather.choices[0].message.tool_calls or []
    return {"capital": capital.choices[0].message.content, "greeting": greeting,
            "tool_calls": [{"name": c.function.name, "arguments": c.function.arguments}
                           for c in calls if c.type == "function"]}


def main() -> None:
    """Instrument the SDK, run the example calls and print what was stored."""
    instrument()
    try:
        with openai_client() as client:
            print("result:", json.dumps(travel_assistant(client)))
    finally:
        uninstrument()
    print_recorded(TRACE_IDS)


if __name__ == "__main__":
    main()
