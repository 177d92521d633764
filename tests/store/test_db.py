"""Engines (llmobs.store.db): what a PostgreSQL connection is opened with, URLs safe to show, and upgrading the
schema of a database an earlier release wrote."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import llmobs
from llmobs.store.db import display_url, ensure_schema, make_engine
from tests.support.databases import PG_SKIP_REASON, Store, postgres_base_url
from tests.support.seed import gen, trace_rows


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


def test_a_database_written_before_spans_held_trace_tags_gets_them_from_its_traces(store: Store) -> None:
    from sqlalchemy import insert, inspect

    from llmobs import analytics
    from llmobs.store.models import Span, Trace

    old = make_engine(store.url)
    ensure_schema(old)
    spans = [gen("2024-01-01T00:00:00", trace_id="1" * 32), gen("2024-01-01T00:01:00", trace_id="1" * 32),
             gen("2024-01-01T00:02:00", trace_id="2" * 32), gen("2024-01-01T00:03:00", trace_id="3" * 32)]
    with old.begin() as conn:  # the schema and rows of the release before spans.trace_tags
        for index in ("ix_spans_kind_start_cover", "ix_spans_kind_model_start_cover"):  # they hold the column now
            conn.exec_driver_sql(f"DROP INDEX {index}")
        conn.exec_driver_sql("ALTER TABLE spans DROP COLUMN trace_tags")
        conn.execute(insert(Span.__table__), spans)
        conn.execute(insert(Trace.__table__), trace_rows(spans))
        cast = "CAST(%s AS JSON)" if old.dialect.name == "postgresql" else "?"
        mark = "%s" if old.dialect.name == "postgresql" else "?"
        conn.exec_driver_sql(f"UPDATE traces SET tags = {cast} WHERE id = {mark}",  # spaced, as json.dumps writes
                             [('["prod", "e\\"u"]', "1" * 32), ("[]", "2" * 32)])
    old.dispose()

    upgraded = make_engine(store.url)
    try:
        ensure_schema(upgraded)
        with upgraded.connect() as conn:
            stored = dict(conn.exec_driver_sql("SELECT id, trace_tags FROM spans").all())
        assert [stored[s["id"]] for s in spans] == ['["prod","e\\"u"]', '["prod","e\\"u"]', None, None]
        covering = {ix["name"]: ix["column_names"] for ix in inspect(upgraded).get_indexes("spans")}
        assert covering["ix_spans_kind_start_cover"][-1] == "trace_tags"
        counts = [analytics.overview("2024-01-01", "2024-01-02", tag=t, engine=upgraded)["total_requests"]
                  for t in ("prod", 'e"u', "e")]
        assert counts == [2, 2, 0]
    finally:
        upgraded.dispose()


def test_user_session_and_model_indexes_hold_only_rows_with_a_value_and_filters_still_find_them(store: Store) -> None:
    import llmobs
    from llmobs import analytics

    @llmobs.observe(kind="generation")
    def generate(prompt: str) -> str:
        llmobs.update_current_span(model_name="gpt-4o-mini", prompt_tokens=3, completion_tokens=2)
        return "ok"

    @llmobs.observe
    def signed_in(prompt: str) -> str:
        llmobs.update_current_trace(user_id="u-1", session_id="s-1")
        return generate(prompt)

    @llmobs.observe(kind="tool")
    def anonymous() -> str:
        return "no user, no session, no model"

    for _ in range(2):
        signed_in("hi")
    for _ in range(3):
        anonymous()
    assert llmobs.flush(timeout=30)

    engine = make_engine(store.url)
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "postgresql":
                found = conn.exec_driver_sql("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = "
                                             "current_schema()").all()
            else:
                found = conn.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'index'").all()
        definitions = {name: sql for name, sql in found}
        for name, column in (("ix_traces_user_start", "user_id"), ("ix_traces_session_start", "session_id"),
                             ("ix_spans_model_start", "model_name")):
            assert f"{column} IS NOT NULL" in definitions[name].replace("(", "").replace(")", "")
        day = ("2000-01-01", "2100-01-01")
        counts = ("traces", "unique_users", "unique_sessions")
        by_user = analytics.overview(*day, user_id="u-1", engine=engine)
        by_session = analytics.overview(*day, session_id="s-1", engine=engine)
        everything = analytics.overview(*day, engine=engine)
        assert [by_user[k] for k in counts] == [by_session[k] for k in counts] == [2, 1, 1]
        assert [everything[k] for k in counts] == [5, 1, 1]
        assert analytics.overview(*day, model="gpt-4o-mini", engine=engine)["total_requests"] == 2
    finally:
        engine.dispose()


def test_a_new_sqlite_file_gets_8k_pages_and_an_existing_file_keeps_its_own(tmp_path: Path) -> None:
    """Only a new database takes the larger page; an older 4 KiB file opens, takes spans and stays 4 KiB."""
    old = tmp_path / "old.db"
    with sqlite3.connect(old) as conn:
        conn.execute("PRAGMA page_size=4096")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE unrelated (x INTEGER)")
    for path, expected in ((tmp_path / "new.db", 8192), (old, 4096)):
        llmobs.configure(reset=True, database_url=f"sqlite:///{path}")
        with llmobs.span("step", kind="tool"):
            pass
        assert llmobs.flush(timeout=30)
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA page_size").fetchone()[0] == expected
            assert conn.execute("SELECT count(*) FROM spans WHERE name = 'step'").fetchone()[0] == 1
