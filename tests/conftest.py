"""Fixtures shared by the whole suite: a configured llmobs on a fresh real database per test."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import llmobs
from llmobs.store.db import dispose_engine
from llmobs.testing.openai_server import FakeOpenAIServer
from tests.support.databases import PG_SKIP_REASON, Store, create_pg_schema, drop_pg_schema, postgres_base_url
from tests.support.receivers import http_receiver, smtp_receiver  # noqa: F401  (shared fixtures)

os.environ.setdefault("HYPOTHESIS_PROFILE", "ci")


def _sqlite_store(tmp_path: Path) -> Store:
    path = tmp_path / "llmobs.db"
    return Store("sqlite", f"sqlite:///{path}", path)


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    """llmobs writing to a fresh SQLite file."""
    store = _sqlite_store(tmp_path)
    llmobs.configure(reset=True, database_url=store.url)
    yield store
    llmobs.flush(timeout=30)
    store.dispose()
    llmobs.configure(reset=True)
    dispose_engine(store.url)  # its pooled connection holds the file, -wal and -shm open


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """llmobs writing to a fresh database: a SQLite file, then a PostgreSQL schema (skipped without the server)."""
    schema = None
    base = postgres_base_url()
    if request.param == "postgres":
        if base is None:
            if os.environ.get("CI"):
                pytest.fail("CI must run the PostgreSQL tests: " + PG_SKIP_REASON)
            pytest.skip(PG_SKIP_REASON)
        schema, url = create_pg_schema(base)
        st = Store("postgres", url)
    else:
        st = _sqlite_store(tmp_path)
    llmobs.configure(reset=True, database_url=st.url)
    yield st
    llmobs.flush(timeout=30)
    st.dispose()
    llmobs.configure(reset=True)
    dispose_engine(st.url)  # one pooled connection per test would pile up file descriptors over the suite
    if schema is not None and base is not None:
        drop_pg_schema(base, schema)


@pytest.fixture
def llmobs_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Captured records of the ``llmobs`` logger."""
    caplog.set_level(logging.DEBUG, logger="llmobs")
    return caplog


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeOpenAIServer]:
    """One OpenAI-compatible server on 127.0.0.1 per test module: one per test would cost more than the tests."""
    with FakeOpenAIServer() as srv:
        yield srv


@pytest.fixture()
def srv(fake_server: FakeOpenAIServer) -> Iterator[FakeOpenAIServer]:
    """The module's server with an empty script, no responder and no recorded requests, reset again afterwards."""
    fake_server.clear()
    fake_server.responder = None
    yield fake_server
    fake_server.responder = None
    fake_server.clear()
