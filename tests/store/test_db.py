"""Engines (llmobs.store.db): what a PostgreSQL connection is opened with, URLs safe to show, and upgrading the
schema of a database an earlier release wrote."""

from __future__ import annotations

import pytest

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
