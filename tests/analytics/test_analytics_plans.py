"""Analytics picks among query plans (per-group loops over indexes, LIMIT/OFFSET percentiles, GROUP BY,
percentile_cont); every plan must give the same figures, with and without the indexes proposed for large
databases, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest

from llmobs import analytics
from llmobs.analytics import percentiles, queries, stats
from tests.support.databases import Store
from tests.support.seed import add_proposed_indexes, evaluation, gen, seed, seed_evaluations

UTC = dt.timezone.utc
T0 = dt.datetime(2024, 3, 1, tzinfo=UTC)
MODELS = ("gpt-4o", "gpt-4o-mini", "claude-3", None)


def random_spans(n: int = 600) -> list[dict[str, Any]]:
    """Spans over 10 hours with ties, NULL durations/tokens/costs, several models and kinds (fixed seed)."""
    rng = random.Random(5)
    rows = []
    for _ in range(n):
        failed = rng.random() < 0.1
        rows.append(gen(T0 + dt.timedelta(seconds=rng.randrange(36_000)),
                        None if rng.random() < 0.03 else float(rng.choice([50, 100, 100, 250]) + rng.randrange(500)),
                        model=rng.choice(MODELS), kind=rng.choice(["generation"] * 5 + ["tool"]),
                        status="error" if failed else "ok", error_type="Timeout" if failed else None,
                        total_tokens=None if rng.random() < 0.1 else rng.randrange(1, 900),
                        cost_usd=None if rng.random() < 0.1 else rng.randrange(1, 500) / 1e4,
                        user_id=f"u{rng.randrange(7)}", session_id=f"s{rng.randrange(20)}"))
    return rows


def figures(engine: Any) -> dict[str, Any]:
    end = T0 + dt.timedelta(hours=10)
    return {
        "overview": analytics.overview(T0, end, engine=engine),
        "overview_model": analytics.overview(T0, end, model=["gpt-4o", "claude-3"], engine=engine),
        "models": analytics.model_comparison(T0, end, engine=engine),
        "hourly": analytics.timeseries(list(analytics.TIMESERIES_METRICS), T0, end, bucket="1h", engine=engine),
        "minutes": analytics.timeseries(["requests", "latency_p50", "quality"], T0 + dt.timedelta(minutes=7),
                                        T0 + dt.timedelta(hours=3), bucket="10m", engine=engine),
        "p": analytics.percentile("latency", [0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 1], T0, end, engine=engine),
        "p_tokens": analytics.percentile("tokens", [0.5, 0.99], T0, end, model="gpt-4o", engine=engine),
        "p_tail": analytics.percentile("latency", [0.02, 0.95, 0.99], T0, end, engine=engine),
        "errors": analytics.error_breakdown(T0, end, engine=engine),
    }


def assert_same(a: Any, b: Any, path: str = "") -> None:
    if isinstance(a, dict):
        assert set(a) == set(b), path
        for key in a:
            assert_same(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, float):
        assert b == pytest.approx(a, rel=1e-12), path
    else:
        assert a == b, path


def test_every_plan_gives_the_same_figures(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = store.engine()
    spans = random_spans()
    seed(engine, spans)
    seed_evaluations(engine, [evaluation(s, "quality", (i % 10) / 10) for i, s in enumerate(spans) if i % 3 == 0])
    baseline = figures(engine)
    assert baseline["overview"]["total_requests"] > 400 and baseline["overview"]["avg_quality_score"] is not None
    monkeypatch.setattr(stats, "SQLITE_BUCKET_LOOP_MAX", 0)      # GROUP BY buckets instead of one query each
    monkeypatch.setattr(queries, "_SQLITE_DISTINCT_INDEX_MIN", 0)  # walk the (user_id, start_time) index
    monkeypatch.setattr(percentiles, "SQLITE_FETCH_MAX", 0)        # tail percentiles by LIMIT/OFFSET heaps
    assert_same(baseline, figures(engine))
    add_proposed_indexes(engine)                                   # per-model loops over the covering index,
    assert_same(baseline, figures(engine))                         # LIMIT/OFFSET over the duration index
    monkeypatch.undo()
    assert_same(baseline, figures(engine))


def test_percentiles_match_the_definition_on_random_data(store: Store) -> None:
    """Linear interpolation between closest ranks (numpy's default, PostgreSQL's percentile_cont)."""
    spans = random_spans(300)
    seed(store.engine(), spans)
    values = sorted(s["duration_ms"] for s in spans if s["kind"] == "generation" and s["duration_ms"] is not None)
    for q in (0.0, 0.1, 0.5, 0.77, 0.95, 0.99, 1.0):
        h = q * (len(values) - 1)
        lo = int(h)
        expected = values[lo] + (values[min(lo + 1, len(values) - 1)] - values[lo]) * (h - lo)
        assert analytics.percentile("latency", q, engine=store.engine()) == pytest.approx(expected, rel=1e-12)


# --- filters on trace attributes, source and status ---------------------------------------------------------------
SUBSET_FILTERS = [{"user_id": "u3"}, {"session_id": "s7"}, {"tag": "blue"}, {"source": "openai"},
                  {"status": "error"}, {"model": "gpt-4o", "user_id": "u1"}, {"tag": "blue", "session_id": "s4"},
                  {"source": "openai", "tag": "red"}]


def tagged_spans() -> list[dict[str, Any]]:
    """random_spans with tags and sources on some of them (each span is its own trace)."""
    rng = random.Random(11)
    return [{**s, "tags": rng.choice([None, ["blue"], ["red"], ["blue", "red"]]),
             "source": rng.choice(["observe", "observe", "openai"])} for s in random_spans()]


def matches(span: dict[str, Any], fields: dict[str, Any]) -> bool:
    """The filter's definition, written out: trace attributes (user, session, tag) and span columns."""
    for key, value in fields.items():
        if key == "tag":
            if value not in (span["tags"] or []):
                return False
        elif span[{"model": "model_name"}.get(key, key)] != value:
            return False
    return True


def span_figures(engine: Any, **fields: Any) -> dict[str, Any]:
    """The span-level figures of ``figures`` (trace counts left out) under the filter ``fields``."""
    end = T0 + dt.timedelta(hours=10)
    return {
        "overview": analytics.overview(T0, end, include_traces=False, engine=engine, **fields),
        "models": analytics.model_comparison(T0, end, engine=engine, **fields),
        "hourly": analytics.timeseries(list(analytics.TIMESERIES_METRICS), T0, end, bucket="1h", engine=engine,
                                       **fields),
        "p": analytics.percentile("latency", [0, 0.25, 0.5, 0.95, 1], T0, end, engine=engine, **fields),
        "errors": analytics.error_breakdown(T0, end, engine=engine, **fields),
    }


def test_filtered_figures_equal_those_of_a_database_holding_only_the_matching_spans(
        store: Store, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each plan a filter leads to (through the traces of a user or session, a tag checked span by span, scores
    driving the quality join, percentiles fetched and sorted) against plain unfiltered figures of the subset."""
    from llmobs.store.db import make_engine

    spans = tagged_spans()
    scores = [evaluation(s, "quality", (i % 10) / 10) for i, s in enumerate(spans) if i % 3 == 0]
    seed(store.engine(), spans)
    seed_evaluations(store.engine(), scores)
    for i, fields in enumerate(SUBSET_FILTERS):
        keep = [s for s in spans if matches(s, fields)]
        assert 5 < len(keep) < len(spans), fields
        subset = make_engine(f"sqlite:///{tmp_path / f'subset{i}.db'}")
        seed(subset, keep)
        seed_evaluations(subset, [e for e in scores if e["span_id"] in {s["id"] for s in keep}])
        expected = span_figures(subset)
        assert_same(expected, span_figures(store.engine(), **fields))
        with monkeypatch.context() as m:
            m.setattr(percentiles, "SQLITE_FETCH_MAX", 0)
            m.setattr(stats, "SQLITE_BUCKET_LOOP_MAX", 0)
            assert_same(expected, span_figures(store.engine(), **fields))
        subset.dispose()


# --- SQLite plans: without ANALYZE statistics, SQLite must still start from the small side -------------------------
def sqlite_plans(engine: Any, call: Any) -> list[list[str]]:
    """The EXPLAIN QUERY PLAN lines of every SELECT that ``call()`` runs on ``engine`` (SQLite)."""
    from sqlalchemy import event

    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        call()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    raw = engine.raw_connection()
    try:
        return [[row[3] for row in raw.cursor().execute("EXPLAIN QUERY PLAN " + sql, params)] for sql, params in seen]
    finally:
        raw.close()


def test_sqlite_joins_scores_to_spans_from_the_scores_and_reads_a_users_spans_through_their_traces(
        sqlite_store: Store) -> None:
    from llmobs.analytics.filters import Filters

    engine = sqlite_store.engine()
    seed(engine, random_spans(50))
    end = T0 + dt.timedelta(hours=10)
    with engine.connect() as conn:
        quality = sqlite_plans(engine, lambda: stats.quality_by_model(conn, Filters(T0, end, model="gpt-4o")))
        by_user = sqlite_plans(engine, lambda: analytics.overview(T0, end, user_id="u1", engine=engine))
        tagged = sqlite_plans(engine, lambda: analytics.model_comparison(T0, end, tag="blue", engine=engine))
    pages = sqlite_plans(engine, lambda: analytics.list_traces(Filters(T0, end, model="gpt-4o", kind=None),
                                                               engine=engine))
    # Minutes at 1M spans otherwise: every span of the model, each scanning the quality scores.
    assert quality[0][0].startswith("SEARCH evaluations USING INDEX ix_evaluations_name_created")
    assert any("sqlite_autoindex_spans_1 (id=?)" in line for line in quality[0])
    span_reads = [line for plan in by_user for line in plan if line.startswith(("SEARCH spans", "SCAN spans"))]
    assert span_reads and all(line.endswith(("ix_spans_trace_id (trace_id=?)", "sqlite_autoindex_spans_1 (id=?)"))
                              for line in span_reads)  # the user's spans by trace, scored spans by primary key
    assert tagged and not any("LIST SUBQUERY" in line for plan in tagged for line in plan)  # no list of every trace
    # A range of spans is checked for the tag in its covering index entries: no trace, no span row is looked up
    # (scores still reach their span by primary key, as above).
    walks = [line for plan in tagged for line in plan if " spans USING" in line and "(id=?)" not in line]
    assert walks and all("COVERING INDEX" in line for line in walks), walks
    assert not any("traces" in line for plan in tagged for line in plan)
    assert all(any("ix_spans_trace_id (trace_id=?)" in line for line in plan) for plan in pages)
    assert not any("LIST SUBQUERY" in line for plan in pages for line in plan)


@pytest.mark.parametrize("store", ["postgres"], indirect=True)  # expression statistics are a PostgreSQL feature
def test_postgresql_keeps_statistics_on_trace_tags(store: Store) -> None:
    from sqlalchemy import text

    from llmobs.store.db import ensure_schema

    engine = store.engine()
    ensure_schema(engine)
    with engine.connect() as conn:
        names = conn.execute(text("SELECT stxname FROM pg_statistic_ext WHERE stxrelid = 'traces'::regclass")).all()
    assert ("llmobs_traces_tags_jsonb",) in [tuple(n) for n in names]


def test_an_index_whose_columns_changed_is_rebuilt_when_an_existing_database_is_opened(store: Store) -> None:
    from sqlalchemy import inspect, text

    from llmobs.store import db

    engine = store.engine()
    db.ensure_schema(engine)
    seed(engine, random_spans(20))
    old = "kind, start_time, model_name, status, duration_ms, total_tokens, cost_usd"  # before source was added
    with engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_spans_kind_start_cover"))
        conn.execute(text(f"CREATE INDEX ix_spans_kind_start_cover ON spans ({old})"))
    db._schema_ready.pop(engine, None)  # as a new process opening the database
    db.ensure_schema(engine)
    columns = {ix["name"]: ix["column_names"] for ix in inspect(engine).get_indexes("spans")}
    assert columns["ix_spans_kind_start_cover"] == [*old.split(", "), "source", "trace_tags"]
    assert analytics.overview(T0, T0 + dt.timedelta(hours=10), source="seed", engine=engine)["total_requests"] > 0
