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
