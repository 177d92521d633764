"""Fixtures for the integration tests: one fake OpenAI server per module and real SDK clients pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from llmobs.testing.openai_server import FakeOpenAIServer


@pytest.fixture()
def client(srv: FakeOpenAIServer) -> Iterator[object]:
    """A real sync OpenAI client on the fake server, retries off so errors surface at once."""
    import openai

    with openai.OpenAI(base_url=srv.base_url, api_key="sk-test", max_retries=0) as c:
        yield c


@pytest.fixture()
async def aclient(srv: FakeOpenAIServer) -> AsyncIterator[object]:
    """A real async OpenAI client on the fake server, retries off."""
    import openai

    async with openai.AsyncOpenAI(base_url=srv.base_url, api_key="sk-test", max_retries=0) as c:
        yield c


@pytest.fixture()
def openai_instrumented() -> Iterator[None]:
    """``llmobs.integrations.openai.instrument()`` for one test, undone afterwards."""
    from llmobs.integrations import openai as integration

    integration.instrument()
    yield
    integration.uninstrument()


@pytest.fixture()
def langchain_instrumented() -> Iterator[object]:
    """``llmobs.integrations.langchain.instrument()`` for one test, undone afterwards; yields the global handler."""
    from llmobs.integrations import langchain as integration

    handler = integration.instrument()
    yield handler
    integration.uninstrument()
