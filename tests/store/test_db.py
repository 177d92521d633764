"""Engines (llmobs.store.db): what a PostgreSQL connection is opened with, and URLs safe to show."""

from __future__ import annotations

import pytest

from llmobs.store.db import display_url, make_engine
from tests.support.databases import PG_SKIP_REASON, postgres_base_url


def _dsn(url: str) -> dict[str, str]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return dict(conn.connection.dbapi_connection.info.get_parameters())  # type: ignore[union-attr]
    finally:
        engine.dispose()


@pytest.mark.skipif(postgres_base_url() is None, reason=PG_SKIP_REASON)
def test_postgres_connections_time_out_and_keep_alive_unless_the_url_says_otherwise() -> None:
    base = postgres_base_url() or ""
    params = _dsn(base)
    assert params["connect_timeout"] == "10" and params["keepalives"] == "1" and params["keepalives_idle"] == "30"
    own = _dsn(base + ("&" if "?" in base else "?") + "connect_timeout=3")
    assert own["connect_timeout"] == "3" and own["keepalives_count"] == "3"


def test_display_url_hides_the_password_and_every_query_parameter() -> None:
    shown = display_url("postgresql+psycopg://app:s3cret@db.example:5432/llm?sslpassword=x&application_name=y")
    assert shown == "postgresql+psycopg://app:***@db.example:5432/llm"
    assert display_url("not a url s3cret") == "(database URL hidden)"
