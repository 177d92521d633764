"""llmobs.analytics over the ``evaluations`` table on SQLite and PostgreSQL (the ``store`` fixture runs each test on
both): agreement between human and automatic scores, spans awaiting a score, and the alert engine's averages.

Expected agreement figures are computed in the test from the seeded rows by an independent Python implementation
(latest score per span, average ranks, Pearson over ranks), never written down as numbers.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pytest

import llmobs
from llmobs import analytics
from llmobs.analytics import Filters
from llmobs.analytics.evaluations import AUTOMATIC_SOURCES, LOWER_IS_BETTER, PASS_THRESHOLD, RATING_SCALE
from tests.support.databases import Store
from tests.support.seed import evaluation, gen, seed, seed_evaluations

UTC = dt.timezone.utc
T0 = dt.datetime(2024, 3, 1, tzinfo=UTC)
RANGE = Filters(start=T0, end=T0 + dt.timedelta(hours=1))


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def human(span: dict[str, Any], name: str, value: float, minutes: float) -> dict[str, Any]:
    return evaluation(span, name, value, source="human", created_at=at(minutes))


def auto(span: dict[str, Any], name: str, value: float, source: str = "heuristic",
         minutes: float = 30) -> dict[str, Any]:
    return evaluation(span, name, value, source=source, created_at=at(minutes))


def agreement_data() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Seven generations in the hour (one gpt-4o-mini), one before it, one chain span; human ratings, thumbs and
    automatic scores including superseded ones, ties, an out-of-scale rating, and sources that do not count."""
    s = [gen(at(i), 100.0, model="gpt-4o-mini" if i == 4 else "gpt-4o", output='"answer"') for i in range(7)]
    before = gen(T0 - dt.timedelta(minutes=5), 100.0, model="gpt-4o", output='"old"')
    chain = gen(at(8), 100.0, model=None, kind="chain", output='"done"')
    scores = [
        human(s[0], "human_rating", 1, 10), human(s[0], "human_rating", 5, 20),  # the later rating counts
        human(s[1], "human_rating", 4, 20), human(s[2], "human_rating", 2, 20), human(s[3], "human_rating", 1, 20),
        human(s[4], "human_rating", 3, 20), human(s[5], "human_rating", 9, 20),  # 9 is off the 1-5 scale
        human(s[0], "human_thumbs", 1, 20), human(s[1], "human_thumbs", 1, 20), human(s[2], "human_thumbs", 0, 20),
        human(s[3], "human_thumbs", 0, 20), human(s[5], "human_thumbs", 1, 20), human(s[6], "human_thumbs", 0, 20),
        human(s[1], "user_feedback", 0, 20),  # another human score name: not a rating
        auto(s[0], "quality", 0.9), auto(s[1], "quality", 0.2, minutes=25), auto(s[1], "quality", 0.8),
        auto(s[2], "quality", 0.3), auto(s[3], "quality", 0.3), auto(s[4], "quality", 0.55),
        auto(s[5], "quality", 0.7), auto(s[6], "quality", 0.4),
        auto(s[0], "quality", 0.8, "llm_judge"), auto(s[2], "quality", 0.2, "llm_judge"),
        auto(s[4], "quality", 0.6, "llm_judge"),
        auto(s[0], "toxicity", 0.1), auto(s[1], "toxicity", 0.05), auto(s[2], "toxicity", 0.6),
        auto(s[3], "toxicity", 0.4), auto(s[4], "toxicity", 0.2),
        auto(s[0], "my_metric", 7.0, "custom"),  # custom scores are not automatic judgments of quality here
        human(before, "human_rating", 5, 0), auto(before, "quality", 0.1, minutes=0),
        human(chain, "human_rating", 2, 20), auto(chain, "quality", 0.9),
    ]
    return [*s, before, chain], scores


# --- an independent implementation of the documented definition ----------------------------------------------
def latest(rows: list[dict[str, Any]]) -> dict[Any, float]:
    """The value of the newest row (created_at, then id) per key."""
    best: dict[Any, dict[str, Any]] = {}
    for r in rows:
        if r["key"] not in best or (r["created_at"], r["id"]) > (best[r["key"]]["created_at"], best[r["key"]]["id"]):
            best[r["key"]] = r
    return {k: r["value"] for k, r in best.items()}


def average_ranks(values: list[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def pearson(a: list[float], b: list[float]) -> float | None:
    n = len(a)
    if n < 2:
        return None
    ma, mb = sum(a) / n, sum(b) / n
    cov = sum((x - ma) * (y - mb) for x, y in zip(a, b))
    va, vb = sum((x - ma) ** 2 for x in a), sum((y - mb) ** 2 for y in b)
    return None if va == 0 or vb == 0 else cov / math.sqrt(va * vb)


def expected_agreement(spans: list[dict[str, Any]], scores: list[dict[str, Any]], f: Filters) -> dict[str, Any]:
    chosen = {s["id"] for s in spans if s["kind"] == "generation" and f.start <= s["start_time"] < f.end
              and (f.model is None or s["model_name"] in f.model)}
    rows = [{**r, "key": (r["span_id"], r["source"], r["name"])} for r in scores if r["span_id"] in chosen]
    humans = latest([r for r in rows if r["source"] == "human" and r["name"] in ("human_rating", "human_thumbs")])
    low, high = RATING_SCALE
    rating = {k[0]: (v - low) / (high - low) for k, v in humans.items() if k[2] == "human_rating" and low <= v <= high}
    thumbs = {k[0]: v >= PASS_THRESHOLD for k, v in humans.items() if k[2] == "human_thumbs"}
    judged = set(rating) | set(thumbs)
    autos = latest([r for r in rows if r["source"] in AUTOMATIC_SOURCES and r["span_id"] in judged])
    metrics: dict[tuple[str, str], list[tuple[str, float]]] = {}
    for (span_id, source, name), value in autos.items():
        metrics.setdefault((name, source), []).append((span_id, 1 - value if name in LOWER_IS_BETTER else value))
    out = []
    for (name, source), values in sorted(metrics.items()):
        rated = [(x, rating[sid]) for sid, x in values if sid in rating]
        voted = [(x, thumbs[sid]) for sid, x in values if sid in thumbs]
        xs, ys = [x for x, _ in rated], [y for _, y in rated]
        out.append({
            "name": name, "source": source, "inverted": name in LOWER_IS_BETTER, "pairs": len(rated),
            "spearman": pearson(average_ranks(xs), average_ranks(ys)),
            "mean_abs_diff": sum(abs(x - y) for x, y in rated) / len(rated) if rated else None,
            "mean_auto": sum(xs) / len(xs) if xs else None, "mean_human": sum(ys) / len(ys) if ys else None,
            "thumbs_pairs": len(voted),
            "thumbs_agreement": (sum(1 for x, up in voted if (x >= PASS_THRESHOLD) == up) / len(voted)
                                 if voted else None),
        })
    return {"human_items": len(judged), "paired_items": len({sid for vs in metrics.values() for sid, _ in vs}),
            "metrics": out}


def assert_same(got: dict[str, Any], want: dict[str, Any]) -> None:
    assert (got["human_items"], got["paired_items"]) == (want["human_items"], want["paired_items"])
    assert [(m["name"], m["source"]) for m in got["metrics"]] == [(m["name"], m["source"]) for m in want["metrics"]]
    for g, w in zip(got["metrics"], want["metrics"]):
        assert g.keys() == w.keys()
        for key, value in w.items():
            assert g[key] == (value if value is None or isinstance(value, (str, bool, int)) else pytest.approx(value)), \
                (g["name"], g["source"], key)


@pytest.fixture
def agreement_store(store: Store) -> tuple[Store, list[dict[str, Any]], list[dict[str, Any]]]:
    spans, scores = agreement_data()
    seed(store.engine(), spans)
    seed_evaluations(store.engine(), scores)
    return store, spans, scores


def test_score_agreement_equals_a_hand_computation_from_the_seeded_rows(agreement_store: Any) -> None:
    store, spans, scores = agreement_store
    got = analytics.score_agreement(RANGE, engine=store.engine())
    want = expected_agreement(spans, scores, RANGE)
    assert_same(got, want)
    assert got["correlation"] == "spearman"
    # The data set exercises what the definition says: ties, superseded scores, an off-scale rating, inversion.
    quality = next(m for m in got["metrics"] if (m["name"], m["source"]) == ("quality", "heuristic"))
    assert quality["pairs"] == 5 and quality["thumbs_pairs"] == 6 and quality["spearman"] is not None
    assert next(m for m in got["metrics"] if m["name"] == "toxicity")["inverted"] is True
    assert {m["source"] for m in got["metrics"]} == {"heuristic", "llm_judge"}


def test_score_agreement_follows_the_span_filters(agreement_store: Any) -> None:
    store, spans, scores = agreement_store
    mini = RANGE.replace(model="gpt-4o-mini")
    assert_same(analytics.score_agreement(mini, engine=store.engine()), expected_agreement(spans, scores, mini))
    assert analytics.score_agreement(mini, engine=store.engine())["paired_items"] == 1
    wider = RANGE.replace(start=T0 - dt.timedelta(hours=1))
    assert_same(analytics.score_agreement(wider, engine=store.engine()), expected_agreement(spans, scores, wider))


def test_score_agreement_on_no_reviews_is_empty_not_an_error(store: Store) -> None:
    seed(store.engine(), [gen(at(1), 100.0, output='"x"')])
    got = analytics.score_agreement(RANGE, engine=store.engine())
    assert (got["human_items"], got["paired_items"], got["metrics"]) == (0, 0, [])
    with pytest.raises(ValueError, match="sources="):
        analytics.score_agreement(RANGE, sources=[], engine=store.engine())


def test_lower_is_better_matches_the_heuristic_quality_penalties() -> None:
    from llmobs.evaluation.heuristic import QUALITY_PENALTIES

    assert LOWER_IS_BETTER == set(QUALITY_PENALTIES)


# --- spans awaiting a score --------------------------------------------------------------------------------------
def test_unscored_spans_and_coverage_follow_filters_span_ids_and_the_evaluator_version(store: Store) -> None:
    a = gen(at(1), 100.0, model="gpt-4o", user_id="u1", tags=["prod"], output='"a"', input='{"q": "?"}')
    b = gen(at(2), 100.0, model="gpt-4o", user_id="u2", output='"b"')
    c = gen(at(3), 100.0, model="gpt-4o-mini", user_id="u1", output='"c"')
    no_output = gen(at(4), 100.0, model="gpt-4o")
    failed = gen(at(5), 100.0, model="gpt-4o", status="error", output='"e"')
    seed(store.engine(), [a, b, c, no_output, failed])
    # b has two metrics of the version (counted once); the failed span's score is not a candidate's
    seed_evaluations(store.engine(), [auto(x, metric, 0.5) | {"evaluator_version": "heuristic-1"}
                                      for x, metric in ((b, "quality"), (b, "relevance"), (failed, "quality"))])
    eng = store.engine()
    ids = lambda rows: [r["id"] for r in rows]  # noqa: E731
    assert ids(analytics.unscored_spans("heuristic-1", RANGE, engine=eng)) == [a["id"], c["id"]]
    assert ids(analytics.unscored_spans("other-1", RANGE, engine=eng)) == [a["id"], b["id"], c["id"]]
    assert ids(analytics.unscored_spans("heuristic-1", RANGE.replace(user_id="u1", model="gpt-4o"),
                                        engine=eng)) == [a["id"]]
    assert ids(analytics.unscored_spans("heuristic-1", RANGE.replace(tag="prod"), engine=eng)) == [a["id"]]
    assert ids(analytics.unscored_spans("heuristic-1", RANGE, span_ids=[c["id"], b["id"]], engine=eng)) == [c["id"]]
    assert ids(analytics.unscored_spans("heuristic-1", RANGE, after=(a["start_time"], a["id"]),
                                        engine=eng)) == [c["id"]]
    assert analytics.unscored_spans("heuristic-1", RANGE, engine=eng)[0]["input"] == {"q": "?"}
    assert analytics.evaluation_coverage("heuristic-1", RANGE, engine=eng) == {"spans": 3, "scored": 1,
                                                                               "unscored": 2}
    assert analytics.evaluation_coverage("heuristic-1", RANGE, span_ids=[b["id"]], engine=eng) == {
        "spans": 1, "scored": 1, "unscored": 0}


def test_list_spans_is_newest_first_and_can_require_an_output(store: Store) -> None:
    a = gen(at(1), 100.0, output='"a"')
    b = gen(at(2), 100.0)
    tool = gen(at(3), 100.0, kind="tool", output='"t"')
    seed(store.engine(), [a, b, tool])
    eng = store.engine()
    assert [s["span_id"] for s in analytics.list_spans(RANGE, engine=eng)] == [b["id"], a["id"]]
    assert [s["span_id"] for s in analytics.list_spans(RANGE, with_output=True, engine=eng)] == [a["id"]]
    assert [s["span_id"] for s in analytics.list_spans(RANGE.replace(kind=None), limit=1, engine=eng)] == [tool["id"]]
    with pytest.raises(ValueError, match="limit=0"):
        analytics.list_spans(RANGE, limit=0, engine=eng)


def test_evaluation_average_reads_the_window_and_the_model_of_the_score_or_its_span(store: Store) -> None:
    a = gen(at(1), 100.0, model="gpt-4o")
    b = gen(at(2), 100.0, model="claude")
    seed(store.engine(), [a, b])
    rows = [auto(a, "quality", 0.2, minutes=10), auto(a, "quality", 0.6, minutes=20),
            auto(b, "quality", 1.0, minutes=20) | {"model_name": "gpt-4o"}, auto(b, "quality", 0.1, minutes=20),
            auto(a, "quality", 0.9, minutes=70)]
    seed_evaluations(store.engine(), rows)
    eng = store.engine()
    in_window = [r["value"] for r in rows if r["created_at"] < RANGE.end]
    avg, n = analytics.evaluation_average("quality", RANGE.start, RANGE.end, engine=eng)
    assert (avg, n) == (pytest.approx(sum(in_window) / len(in_window)), len(in_window))
    model_of = {a["id"]: "gpt-4o", b["id"]: "claude"}
    gpt = [r["value"] for r in rows if r["created_at"] < RANGE.end
           and (r["model_name"] or model_of[r["span_id"]]) == "gpt-4o"]  # the score's model, else its span's
    assert len(gpt) == 3
    assert analytics.evaluation_average("quality", RANGE.start, RANGE.end, model_name="gpt-4o", engine=eng) == (
        pytest.approx(sum(gpt) / len(gpt)), len(gpt))
    assert analytics.evaluation_average("missing", RANGE.start, RANGE.end, engine=eng) == (None, 0)


def test_evaluation_summary_places_a_score_at_its_spans_start_and_model_and_an_unlinked_score_at_its_own(
        store: Store) -> None:
    a, b = gen(at(1), 100.0, model="gpt-4o"), gen(at(2), 100.0, model="claude")
    old = gen(T0 - dt.timedelta(days=2), 100.0, model="gpt-4o")
    seed(store.engine(), [a, b, old])
    llmobs.score("quality", 0.7, span_id=a["id"], source="custom")  # created now, with no model of its own
    no_span = {"id": None, "trace_id": None}
    seed_evaluations(store.engine(), [
        auto(b, "quality", 0.4, minutes=20) | {"model_name": "gpt-4o"},  # its span says claude
        auto(old, "quality", 0.1, minutes=30),  # created in the range, judging a span that started before it
        evaluation(no_span, "quality", 0.9, created_at=at(40), model_name="gpt-4o"),
        evaluation(no_span, "quality", 0.3, created_at=T0 - dt.timedelta(days=1), model_name="gpt-4o"),
        evaluation({"id": "f" * 16, "trace_id": None}, "quality", 0.5, created_at=at(50), model_name="claude"),
    ])
    stored = store.rows("evaluations", order="created_at")
    spans = {s["id"]: s for s in (a, b, old)}

    def placed(row: dict[str, Any]) -> tuple[dt.datetime, str | None]:
        span = spans.get(row["span_id"])
        return (span["start_time"], span["model_name"]) if span else (row["created_at"], row["model_name"])

    for model in (None, "gpt-4o", "claude"):
        for start, end in ((RANGE.start, RANGE.end), (None, None)):
            values = [r["value"] for r in stored if (start is None or start <= placed(r)[0] < end)
                      and model in (None, placed(r)[1])]
            summary = analytics.evaluation_summary(model, start=start, end=end, engine=store.engine())
            assert summary["count"] == len(values)
            assert summary["average_quality"] == (pytest.approx(sum(values) / len(values)) if values else None)
    in_range = analytics.evaluation_summary("gpt-4o", start=RANGE.start, end=RANGE.end, engine=store.engine())
    assert in_range["metrics"]["quality"] == pytest.approx({"count": 2, "mean": 0.8, "p10": 0.7, "min": 0.7,
                                                            "max": 0.9})  # llmobs.score's row and the unlinked one


def test_review_queue_follows_the_filters_and_an_automatic_quality_threshold(store: Store) -> None:
    a = gen(at(1), 100.0, model="gpt-4o", user_id="alice", session_id="s1", tags=["prod"], output='"a"')
    b = gen(at(2), 100.0, model="claude", user_id="bob", output='"b"')
    reviewed = gen(at(3), 100.0, model="gpt-4o", user_id="bob", output='"c"')
    no_output = gen(at(4), 100.0, model="gpt-4o")
    e = gen(at(5), 100.0, model="gpt-4o", source="openai", output='"e"')
    tool = gen(at(6), 100.0, model=None, kind="tool", output='"t"')
    before = gen(T0 - dt.timedelta(minutes=5), 100.0, model="gpt-4o", output='"old"')
    seed(store.engine(), [before, a, b, reviewed, no_output, e, tool])
    seed_evaluations(store.engine(), [
        auto(a, "quality", 0.2), auto(b, "quality", 0.9), auto(b, "quality", 0.3, "llm_judge"),
        auto(reviewed, "quality", 0.1), human(reviewed, "human_rating", 2, 40),
        auto(e, "quality", 0.0, "custom"),  # not an automatic evaluator's score
    ])
    eng = store.engine()

    def queue(filters: Filters = RANGE, **kw: Any) -> list[str]:
        return [s["span_id"] for s in analytics.review_queue(filters, engine=eng, **kw)]

    assert queue() == [e["id"], b["id"], a["id"]]
    assert queue(Filters()) == [e["id"], b["id"], a["id"], before["id"]]
    assert queue(RANGE.replace(model="gpt-4o")) == [e["id"], a["id"]]
    assert queue(RANGE.replace(user_id="bob")) == [b["id"]]
    assert queue(RANGE.replace(session_id="s1")) == queue(RANGE.replace(tag="prod")) == [a["id"]]
    assert queue(RANGE.replace(source="openai")) == [e["id"]]
    assert queue(RANGE.replace(kind="tool")) == [tool["id"]]
    assert queue(quality_below=0.5) == [b["id"], a["id"]]  # b: the judge's 0.3 counts, whatever the heuristic said
    assert queue(quality_below=0.25) == [a["id"]]
    assert queue(RANGE.replace(model="claude"), quality_below=0.5) == [b["id"]]
    assert queue(limit=1, model="gpt-4o") == [e["id"]]
    first = analytics.review_queue(RANGE, limit=1, engine=eng)[0]
    assert (first["trace_id"], first["output"], first["model_name"]) == (e["trace_id"], '"e"', "gpt-4o")
    for bad in ("0.5", True, float("nan")):
        with pytest.raises(ValueError, match="quality_below="):
            analytics.review_queue(RANGE, quality_below=bad, engine=eng)
