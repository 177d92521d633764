"""Dashboard tab callbacks on a seeded database (SQLite and PostgreSQL): what each tab shows equals what the
analytics layer and the stores compute for the same range and filters; writes land in the database."""

from __future__ import annotations

import csv
import datetime as dt
from typing import Any

import pytest

import llmobs
from llmobs import analytics
from llmobs.alerts import AlertManager, AlertRule
from llmobs.analytics.traces import list_traces, review_queue, trace_spans
from llmobs.evaluation import get_evaluation_summary
from llmobs.ui.format import fmt_int, fmt_ms, fmt_pct, fmt_score, fmt_usd
from llmobs.ui.state import AppContext, build_filters, previous_period
from llmobs.ui.tabs import alerts, errors, evaluations, export, models, overview, performance, review, traces
from tests.support.databases import Store
from tests.ui.conftest import HTML_ERROR, TAGGED_NAME, XSS, XSS_TRACE, evaluable_generations

DAY = "Last 24 hours"
Seeded = tuple[AppContext, dict[str, Any], Store]


def _table(rows: list[list[str]]) -> dict[str, list[str]]:
    return {r[0]: r[1:] for r in rows}


def test_overview_shows_the_analytics_figures_and_the_change_against_the_previous_period(seeded: Seeded) -> None:
    ctx, _, _ = seeded
    rows, fig, status = overview.refresh(ctx, DAY)
    f = build_filters(DAY)
    cur = analytics.overview(filters=f, engine=ctx.engine)
    prev = analytics.overview(filters=previous_period(f), engine=ctx.engine)
    shown = _table(rows)
    assert cur["total_requests"] == 6 and prev["total_requests"] == 2  # 5 seeded calls + the traced LLM call
    assert shown["Total requests"] == ["6", "2", "+200.0%"]
    assert shown["Success rate"][:2] == [fmt_pct(cur["success_rate"]), fmt_pct(prev["success_rate"])] == \
        ["83.33%", "100.00%"]
    assert shown["p95 latency"][0] == fmt_ms(cur["p95_response_time"])
    assert shown["Total cost"][0] == fmt_usd(cur["total_cost"])
    assert shown["Total tokens"][0] == fmt_int(cur["total_tokens"]) == "1,210"
    assert shown["Average quality"][0] == fmt_score(cur["avg_quality_score"]) == "0.700"
    assert shown["Active alerts"][0] == "0"
    assert status == ""
    assert sum(fig.data[0].y) == 6


def test_overview_filters_narrow_the_figures_like_analytics(seeded: Seeded) -> None:
    ctx, _, _ = seeded
    rows, _, _ = overview.refresh(ctx, DAY, "gpt-4o-mini", "alice")
    expected = analytics.overview(filters=build_filters(DAY, model="gpt-4o-mini", user_id="alice"), engine=ctx.engine)
    assert _table(rows)["Total requests"][0] == fmt_int(expected["total_requests"]) == "1"


def test_overview_counts_open_alerts(seeded: Seeded) -> None:
    ctx, _, _ = seeded
    manager = AlertManager(engine=ctx.engine, channels_from_config=False)
    manager.add_rule(AlertRule(rule_id="errs", name="Errors", metric_name="error_count", condition="gt",
                               threshold=0, window_minutes=120))
    manager.evaluate_rules()
    assert _table(overview.refresh(ctx, DAY)[0])["Active alerts"][0] == "1"


def test_every_tab_shows_a_friendly_empty_state_on_an_empty_database(empty_ctx: AppContext) -> None:
    assert "No LLM calls" in overview.refresh(empty_ctx, DAY)[2]
    assert traces.trace_page(empty_ctx, DAY) == ([], traces.EMPTY_LIST)
    assert "Select a trace" in traces.open_trace(empty_ctx, "")[4]
    assert "No LLM calls" in performance.refresh(empty_ctx, DAY)[-1]
    assert models.refresh(empty_ctx, DAY)[0] == []
    assert "No LLM calls" in errors.refresh(empty_ctx, DAY)[0]
    assert review.item_view(review.next_item(empty_ctx))[-1] == review.EMPTY_QUEUE
    assert "No alert rules yet" in alerts.refresh(empty_ctx)[2]
    assert "No evaluation scores" in evaluations.refresh(empty_ctx, DAY)[2]
    assert evaluations.run_evaluation(empty_ctx, evaluations.SCOPE_RANGE, None, DAY) == \
        "No finished generations with an output in this range and filters."
    assert review.agreement(empty_ctx, DAY) == ([], "No reviewed generation in this range has automatic scores yet "
                                                    "(0 reviewed). Run evaluators in the Evaluations tab to compare.")
    path, status = export.export_file(empty_ctx, "spans", "csv", "all", DAY)
    assert path is not None and status.startswith("Exported 0 spans rows")


def test_a_bad_range_is_reported_in_the_page_not_raised(seeded: Seeded) -> None:
    ctx, _, _ = seeded
    assert overview.refresh(ctx, "Last century")[2].startswith("Error: llmobs.ui: range='Last century' is unknown")
    assert traces.trace_page(ctx, "Last century")[1].startswith("Error:")


def test_trace_list_is_newest_first_searchable_and_paginated(seeded: Seeded) -> None:
    ctx, data, _ = seeded
    rows, status = traces.trace_page(ctx, DAY)
    assert status == "Page 1 of 1 · 6 traces"
    assert rows[0][:3] == [XSS_TRACE, "checkout-flow", "dave"]
    assert [r[5] for r in rows].count("error") == 1
    assert traces.trace_page(ctx, DAY, search="CAROL")[0][0][2] == "carol"
    assert traces.trace_page(ctx, DAY, user_id="alice")[1] == "Page 1 of 1 · 2 traces"
    f = build_filters(DAY, kind=None)
    page2 = list_traces(f, page=2, page_size=4, engine=ctx.engine)
    assert (page2["total"], page2["pages"], len(page2["rows"])) == (6, 2, 2)
    with pytest.raises(ValueError, match="page_size=0"):
        list_traces(f, page_size=0, engine=ctx.engine)


def test_trace_counting_stops_at_the_limit_and_the_page_says_so(seeded: Seeded,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    ctx, _, _ = seeded
    f = build_filters(DAY, kind=None)
    capped = list_traces(f, page_size=2, count_limit=4, engine=ctx.engine)
    assert (capped["total"], capped["total_capped"], capped["pages"], len(capped["rows"])) == (4, True, 2, 2)
    exact = list_traces(f, page_size=2, count_limit=6, engine=ctx.engine)
    assert (exact["total"], exact["total_capped"], exact["pages"]) == (6, False, 3)
    assert list_traces(f, page=4, page_size=2, count_limit=4, engine=ctx.engine)["rows"] == []
    with pytest.raises(ValueError, match="count_limit=0"):
        list_traces(f, count_limit=0, engine=ctx.engine)
    monkeypatch.setattr(traces, "COUNT_LIMIT", 5)
    rows, status = traces.trace_page(ctx, DAY)
    assert status == "Page 1 of 1+ · 5+ traces" and len(rows) == 6  # the page itself is not cut


def test_opening_a_trace_shows_its_span_tree_waterfall_and_untrusted_output_verbatim(seeded: Seeded) -> None:
    ctx, data, _ = seeded
    tree, fig, pick, detail, status = traces.open_trace(ctx, XSS_TRACE)
    assert [r[0].strip() for r in tree] == ["checkout-flow", f"└ {TAGGED_NAME}", "└ answer-llm"]
    # Plotly would read <b> as markup; entities make it draw the characters.
    assert fig.data[0].y[1] == f"· lookup-docs &lt;b&gt;bold&lt;/b&gt; [{data['retriever']['id'][-6:]}]"
    assert status == f"Trace {XSS_TRACE}: 3 spans"
    assert len(fig.data[0].x) == 3 and list(fig.data[0].base) == [0.0, 50.0, 250.0]
    llm = data["xss_span"]["id"]
    shown = dict(zip(traces.DETAIL_FIELDS, traces.show_span(ctx, XSS_TRACE, llm)))
    assert shown["output"] == XSS
    assert XSS in shown["metadata"]
    assert shown["tokens"] == "prompt 40 · completion 20 · total 60"
    assert shown["cost"] == "$0.0006"
    assert [s["id"] for s in trace_spans(XSS_TRACE, engine=ctx.engine)] == [c[1] for c in pick["choices"]]


def test_an_error_span_shows_its_error(seeded: Seeded) -> None:
    ctx, data, _ = seeded
    failed = data["recent"][3]
    detail = dict(zip(traces.DETAIL_FIELDS, traces.show_span(ctx, failed["trace_id"], failed["id"])))
    assert detail["error"] == f"RateLimitError\n{HTML_ERROR}"


def test_performance_charts_plot_the_analytics_timeseries(seeded: Seeded) -> None:
    ctx, _, _ = seeded
    *figs, status = performance.refresh(ctx, DAY)
    series = analytics.timeseries(performance.METRICS, filters=build_filters(DAY), bucket="15m", engine=ctx.engine)
    assert status == "6 requests · bucket 15m"
    requests, latency = figs[0], figs[2]
    assert list(requests.data[0].y) == [r["requests"] for r in series]
    assert [t.name for t in latency.data] == ["p50", "p95", "p99"]
    assert list(latency.data[1].y) == [r["latency_p95"] for r in series]
    assert sum(v or 0 for v in figs[4].data[0].y) == pytest.approx(sum(r["cost"] for r in series))


def test_models_tab_rows_equal_model_comparison(seeded: Seeded) -> None:
    ctx, _, _ = seeded
    rows, fig, _ = models.refresh(ctx, DAY)
    expected = analytics.model_comparison(filters=build_filters(DAY), engine=ctx.engine)
    assert [r[0] for r in rows] == [m["model_name"] for m in expected] == ["gpt-4o", "gpt-4o-mini"]
    assert rows[1][1:3] == [fmt_int(expected[1]["total_requests"]), fmt_pct(expected[1]["success_rate"])] == \
        ["2", "50.00%"]
    assert rows[0][4] == fmt_ms(expected[0]["p95_response_time"])
    assert list(fig.data[0].y) == [4, 2]


def test_errors_tab_equals_error_breakdown(seeded: Seeded) -> None:
    ctx, _, _ = seeded
    summary, types, _, by_model, recent = errors.refresh(ctx, DAY)
    b = analytics.error_breakdown(filters=build_filters(DAY), engine=ctx.engine)
    assert summary == "1 errors in 6 requests (error rate 16.67%)"
    assert types[0][:2] == ["RateLimitError", str(b["by_type"][0]["count"])]
    assert by_model == [["gpt-4o-mini", "2", "1", "50.00%"]]
    assert recent[0][5] == HTML_ERROR


def test_selecting_a_failed_call_in_errors_selects_the_traces_tab_and_opens_its_trace(seeded: Seeded) -> None:
    import gradio as gr
    import pandas as pd

    from llmobs.ui import create_app

    ctx, data, store = seeded
    app = create_app(store.url, auto_refresh_seconds=0, retry_seconds=0)
    table = next(b for b in app.blocks.values() if getattr(b, "elem_id", None) == "errors-recent")
    pick = next(f for f in app.fns.values() if (table._id, "select") in f.targets)
    (opener,) = [f for f in app.fns.values() if f.trigger_after == pick._id]
    recent = errors.refresh(ctx, DAY)[4]
    failed = data["recent"][3]
    trace_id, tab, banner = pick.fn(gr.SelectData(None, {"index": [0, 5], "value": recent[0][5]}),
                                    pd.DataFrame(recent, columns=errors.RECENT_HEADERS))
    assert trace_id == failed["trace_id"] and tab.selected == traces.TAB_ID and banner["visible"] is False
    tree, _, _, *details, status, _ = opener.fn(trace_id)
    assert status == f"Trace {failed['trace_id']}: 1 spans"
    assert tree[0][0].strip() == failed["name"] and tree[0][4] == "error"
    assert details[traces.DETAIL_FIELDS.index("error")] == f"RateLimitError\n{HTML_ERROR}"


def test_review_submission_stores_human_scores_and_loads_the_next_item(seeded: Seeded) -> None:
    ctx, data, store = seeded
    first = review.item_view(review.next_item(ctx))
    assert first[0] == data["xss_span"]["id"] and first[4] == XSS
    after = review.submit_review(ctx, first[0], first[1], 4, "Thumbs up", "  clear answer ")
    assert after[0] != first[0] and after[0] == review_queue(limit=1, engine=ctx.engine)[0]["span_id"]
    assert after[5].startswith(f"Saved review of span {first[0]}")
    stored = {r["name"]: r for r in store.rows("evaluations", order="created_at", where="source = 'human'")}
    assert stored["human_rating"]["value"] == 4.0 and stored["human_rating"]["comment"] == "clear answer"
    assert stored["human_thumbs"]["value"] == 1.0 and stored["human_thumbs"]["label"] == "Thumbs up"
    assert {r["span_id"] for r in stored.values()} == {first[0]}
    assert {r["trace_id"] for r in stored.values()} == {XSS_TRACE}


def test_review_queue_follows_its_filters_and_the_next_item_after_a_review_keeps_them(seeded: Seeded) -> None:
    ctx, data, store = seeded
    recent, xss = data["recent"], data["xss_span"]["id"]
    assert review.load_item(ctx)[0] == xss  # the newest generation with an output
    assert review.load_item(ctx, DAY, "gpt-4o-mini")[0] == recent[2]["id"]
    assert review.load_item(ctx, DAY, "", "", "", "prod")[0] == recent[0]["id"]  # tagged trace
    assert review.load_item(ctx, DAY, "", "", "", "", "", " 0.6 ")[0] == recent[1]["id"]  # heuristic quality 0.5
    assert review.load_item(ctx, DAY, "", "", "", "", "", "0.5")[5] == review.EMPTY_QUEUE  # below, not equal
    assert review.load_item(ctx, DAY, "", "", "", "", "", "low")[5] == (
        "Error: quality below = 'low' is not a number; type e.g. 0.5, or leave it blank")
    bob = (DAY, "", "bob")
    first = review.load_item(ctx, *bob)
    assert first[0] == recent[1]["id"] and first[3] == "Summarise the report"
    after = review.submit_review(ctx, first[0], first[1], 3, None, "", queue=bob)
    assert after[0] == recent[4]["id"] and after[5] == f"Saved review of span {first[0]}. Next item loaded."
    assert review.load_item(ctx, "Last 1 hour", "", "bob")[5] == review.EMPTY_QUEUE  # his other one is 5 hours old
    assert review.submit_review(ctx, after[0], after[1], None, "Thumbs up", "", queue=bob)[:6] == (
        "", "", "", "", "", f"Saved review of span {after[0]}. {review.EMPTY_QUEUE}")  # bob has nothing left
    stored = store.rows("evaluations", order="created_at", where="source = 'human'")
    assert [(r["span_id"], r["name"], r["value"]) for r in stored] == [(recent[1]["id"], "human_rating", 3.0),
                                                                       (recent[4]["id"], "human_thumbs", 1.0)]
    assert review.load_item(ctx, "Last year")[5].startswith("Error: llmobs.ui: range='Last year' is unknown")


def test_review_without_rating_or_thumbs_stores_nothing(seeded: Seeded) -> None:
    ctx, data, store = seeded
    span_id = data["xss_span"]["id"]
    result = review.submit_review(ctx, span_id, XSS_TRACE, None, None, "hmm")
    assert result[0] == span_id and "rating" in result[5]
    assert store.rows("evaluations", order="created_at", where="source = 'human'") == []


def test_alert_rules_are_created_validated_toggled_and_deleted(seeded: Seeded) -> None:
    ctx, _, _ = seeded
    manager = AlertManager(engine=ctx.engine, channels_from_config=False)
    _, rules, status = alerts.create_rule(ctx, "slow", "Slow p95", "response_time_p95", "gt", 1000, "critical", 30)
    assert status == "Created rule slow."
    assert rules == [["slow", "Slow p95", "response_time_p95", "gt", "1000", "critical", "30", "yes"]]
    assert manager.get_rule("slow").severity == "critical"
    _, rules, status = alerts.create_rule(ctx, "broken", "Broken", "no_such_metric", "gt", 1, "warning", 15)
    assert status.startswith("Error: Rule not saved: AlertRule.metric_name = 'no_such_metric' is invalid")
    _, _, status = alerts.create_rule(ctx, "slow", "Again", "error_rate", "gt", 1, "warning", 15)
    assert "exists already" in status
    assert [r.rule_id for r in manager.list_rules()] == ["slow"] and manager.get_rule("slow").name == "Slow p95"
    assert alerts.rule_action(ctx, "disable", "slow")[2] == "Rule slow: disabled."
    assert manager.get_rule("slow").enabled is False
    assert alerts.rule_action(ctx, "enable", "slow")[1][0][-1] == "yes"
    assert alerts.rule_action(ctx, "delete", "nope")[2] == "Error: no alert rule with rule_id 'nope'"
    assert alerts.rule_action(ctx, "delete", "slow")[1] == []
    assert manager.list_rules() == []


def test_acknowledging_an_open_alert_is_stored(seeded: Seeded) -> None:
    ctx, _, _ = seeded
    manager = AlertManager(engine=ctx.engine, channels_from_config=False)
    manager.add_rule(AlertRule(rule_id="errs", name="Errors", metric_name="error_count", condition="gt",
                               threshold=0, window_minutes=120))
    manager.evaluate_rules()
    shown, _, status = alerts.refresh(ctx)
    alert_id = shown[0][0]
    assert status == "1 open alert(s)." and shown[0][1] == "Errors"
    _, _, status = alerts.acknowledge(ctx, alert_id, by="reviewer")
    assert status == f"Acknowledged alert {alert_id}."
    stored = manager.get_alert(alert_id)
    assert stored["acknowledged_by"] == "reviewer" and stored["acknowledged_at"] is not None
    assert alerts.acknowledge(ctx, alert_id)[2].startswith("Error: No open, unacknowledged alert")


def test_evaluations_tab_equals_the_evaluation_summary_and_playground_explains(seeded: Seeded) -> None:
    ctx, _, _ = seeded
    rows, fig, _ = evaluations.refresh(ctx, DAY)
    summary = get_evaluation_summary(start=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1),
                                     database_url=ctx.database_url)
    assert rows == [["quality", "2", fmt_score(summary["metrics"]["quality"]["mean"]), "0.500", "0.500", "0.900"]]
    assert list(fig.data[1].y) == [pytest.approx(0.7)]
    scores, status = evaluations.playground("What is the capital of France?", "Paris is the capital of France.",
                                            "qa")
    named = {r[0]: r for r in scores}
    assert status.startswith("Quality ") and named["relevance"][3]
    assert evaluations.playground("q", "  ", "qa") == ([], "Error: Paste a response to evaluate.")


def test_evaluations_tab_filters_scores_by_the_model_and_start_of_the_span_they_judge(seeded: Seeded) -> None:
    ctx, data, store = seeded
    llmobs.score("user_feedback", 1, span_id=data["recent"][0]["id"])  # stored with no model of its own
    assert store.rows("evaluations", order="created_at", where="name = 'user_feedback'")[0]["model_name"] is None
    rows = {r[0]: r for r in evaluations.refresh(ctx, DAY, "gpt-4o")[0]}  # the seeded quality scores have none either
    assert rows["user_feedback"][:2] == ["user_feedback", "1"] and rows["quality"][1] == "2"
    assert evaluations.refresh(ctx, DAY, "gpt-4o-mini")[0] == []
    assert [r[0] for r in evaluations.refresh(ctx, DAY, "gpt-4o", "human")[0]] == ["user_feedback"]


def test_export_writes_the_filtered_range_like_analytics_export(seeded: Seeded, tmp_path: Any) -> None:
    ctx, _, _ = seeded
    path, status = export.export_file(ctx, "spans", "csv", "generation", DAY, model="gpt-4o", directory=str(tmp_path))
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert status.startswith("Exported 4 spans rows")
    assert len(rows) == 4 and {r["model_name"] for r in rows} == {"gpt-4o"}
    expected = tmp_path / "expected.csv"
    assert analytics.export(expected, "csv", "spans", filters=build_filters(DAY, "gpt-4o"), engine=ctx.engine) == 4
    path, status = export.export_file(ctx, "nope", "csv", "all", DAY, directory=str(tmp_path))
    assert path is None and "table='nope' is unknown" in status


# --- running evaluators and the agreement of human and automatic scores -------------------------------------------
def _run_rows(store: Store) -> list[dict[str, Any]]:
    return store.rows("evaluations", order="created_at", where="evaluator_version = 'heuristic-1'")


def test_running_evaluators_on_the_range_stores_rows_per_span_reports_progress_and_never_scores_twice(
        seeded: Seeded) -> None:
    ctx, data, store = seeded
    fractions: list[float] = []
    status = evaluations.run_evaluation(ctx, evaluations.SCOPE_RANGE, None, DAY,
                                        progress=lambda fraction, desc=None: fractions.append(fraction))
    expected = evaluable_generations(data)
    rows = _run_rows(store)
    per_span = {sid: [r for r in rows if r["span_id"] == sid] for sid in expected}
    assert set(r["span_id"] for r in rows) == set(expected) and len(expected) == 5
    assert all(len(v) == len(rows) // len(expected) and {r["trace_id"] for r in v} == {expected[sid]["trace_id"]}
               for sid, v in per_span.items())
    assert {r["name"] for r in rows} >= {"quality", "relevance", "toxicity"}
    assert status == f"Scored 5 span(s) with heuristic-1: {len(rows)} evaluation rows stored."
    assert fractions[0] == 0.0 and fractions[-1] == 1.0 and fractions == sorted(fractions)
    assert [f for f in fractions if 0 < f < 1] == [k / len(expected) for k in range(1, len(expected))]
    again = evaluations.run_evaluation(ctx, evaluations.SCOPE_RANGE, None, DAY)
    assert again == f"Scored 0 span(s) with heuristic-1: 0 evaluation rows stored; 5 already scored by heuristic-1 " \
                    "(skipped)."
    assert len(_run_rows(store)) == len(rows)


def test_running_evaluators_follows_the_model_filter_and_a_selected_span(seeded: Seeded) -> None:
    ctx, data, store = seeded
    mini = evaluable_generations(data, "gpt-4o-mini")
    evaluations.run_evaluation(ctx, evaluations.SCOPE_RANGE, None, DAY, "gpt-4o-mini")
    assert {r["span_id"] for r in _run_rows(store)} == set(mini) and len(mini) == 1
    choices = evaluations.span_choices(ctx, DAY)
    assert [sid for _, sid in choices] == [s["span_id"] for s in analytics.list_spans(
        build_filters(DAY), with_output=True, engine=ctx.engine)]
    xss = data["xss_span"]["id"]
    label = next(label for label, sid in choices if sid == xss)
    assert label.startswith("answer-llm · gpt-4o · ") and label.endswith(xss)
    status = evaluations.run_evaluation(ctx, evaluations.SCOPE_SPAN, xss, DAY, "gpt-4o-mini")  # filters do not apply
    assert status.startswith("Scored 1 span(s) with heuristic-1")
    assert {r["span_id"] for r in _run_rows(store)} == {*mini, xss}
    assert evaluations.run_evaluation(ctx, evaluations.SCOPE_SPAN, xss, DAY).endswith(
        "1 already scored by heuristic-1 (skipped).")
    assert evaluations.run_evaluation(ctx, evaluations.SCOPE_SPAN, "f" * 16, DAY) == \
        "No finished span with an output has that id."
    assert evaluations.run_evaluation(ctx, evaluations.SCOPE_SPAN, "", DAY).startswith("Error: Pick a generation")
    assert evaluations.run_evaluation(ctx, evaluations.SCOPE_RANGE, None, DAY, backend="nope").startswith(
        "Error: backend='nope' is not allowed")


def test_review_tab_shows_the_agreement_of_human_and_automatic_scores_after_reviews(seeded: Seeded) -> None:
    ctx, data, store = seeded
    rows, status = review.agreement(ctx, review.AGREEMENT_RANGE)
    assert rows == [] and status.startswith("No reviewed generation in this range has automatic scores")
    first, second = data["recent"][0], data["recent"][1]  # seeded with heuristic quality 0.9 and 0.5
    review.submit_review(ctx, first["id"], first["trace_id"], 5, "Thumbs up", "")
    review.submit_review(ctx, second["id"], second["trace_id"], 2, "Thumbs down", "")
    rows, status = review.agreement(ctx, review.AGREEMENT_RANGE)
    expected = analytics.score_agreement(build_filters(review.AGREEMENT_RANGE), engine=ctx.engine)
    quality = expected["metrics"][0]
    assert expected["paired_items"] == 2 and status.startswith("Paired items: 2 (reviewed generations with automatic "
                                                               "scores; 2 reviewed in all). Spearman's rank correlation")
    assert rows == [["quality", "heuristic", "2", fmt_score(quality["spearman"]), fmt_score(quality["mean_abs_diff"]),
                     "2", fmt_pct(quality["thumbs_agreement"])]]
    auto = {e["span_id"]: e["value"] for e in store.rows("evaluations", order="created_at",
                                                         where="source = 'heuristic'")}
    assert quality["mean_abs_diff"] == pytest.approx((abs(auto[first["id"]] - 1.0) + abs(auto[second["id"]] - 0.25))
                                                     / 2)
    agree = [(auto[first["id"]] >= 0.5) is True, (auto[second["id"]] >= 0.5) is False]  # up, then down
    assert quality["thumbs_agreement"] == sum(agree) / 2 == 0.5  # 0.5 counts as a pass: the thumbs down disagrees


def test_the_judge_backend_is_offered_only_when_a_judge_is_configured(sqlite_store: Store,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import llmobs
    from llmobs.evaluation.embedding import require_embedding_extra
    from llmobs.evaluation.evaluator import available_backends

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("LLMOBS_EVALUATION__JUDGE__BASE_URL", raising=False)
    monkeypatch.delenv("LLMOBS_EVALUATION__JUDGE__API_KEY", raising=False)
    llmobs.configure(database_url=sqlite_store.url)
    offered = available_backends()
    assert offered[0] == "heuristic" and "llm_judge" not in offered
    try:
        require_embedding_extra()
        assert "embedding" in offered
    except ImportError:
        assert "embedding" not in offered
    llmobs.configure(evaluation__judge__base_url="http://127.0.0.1:9/v1")
    assert available_backends()[-1] == "llm_judge"
    llmobs.configure(reset=True, database_url=sqlite_store.url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert "llm_judge" in available_backends()
