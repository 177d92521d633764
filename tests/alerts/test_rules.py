"""AlertRule validation, rule storage (CRUD, default rules), and every metric and condition against hand-computed data.

Spans and evaluations are seeded at fixed times into a real database (SQLite file and PostgreSQL schema); the
figures a rule reads are compared with values worked out by hand below.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from sqlalchemy import insert

from llmobs.alerts.manager import AlertManager, default_rules
from llmobs.alerts.rules import AlertRule
from llmobs.config import DEFAULT_THRESHOLDS, ConfigError
from llmobs.store.models import Evaluation
from tests.support.databases import Store
from tests.support.seed import gen, seed

UTC = dt.timezone.utc
NOW = dt.datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def rule(**overrides: Any) -> AlertRule:
    values: dict[str, Any] = dict(rule_id="r1", name="Rule one", metric_name="error_rate", condition="gt",
                                  threshold=0.1)
    values.update(overrides)
    return AlertRule(**values)


def manager(store: Store) -> AlertManager:
    return AlertManager(store.url, clock=lambda: NOW)


def ago(minutes: float) -> dt.datetime:
    return NOW - dt.timedelta(minutes=minutes)


def add_evaluations(store: Store, rows: list[tuple[str, float, dt.datetime, str | None]]) -> None:
    """Insert evaluations (name, value, created_at, model_name) straight into the table."""
    engine = store.engine()
    from llmobs.store.db import ensure_schema

    ensure_schema(engine)
    with engine.begin() as conn:
        conn.execute(insert(Evaluation.__table__), [
            {"id": uuid.uuid4().hex, "span_id": None, "trace_id": None, "name": name, "value": value, "label": None,
             "comment": None, "source": "heuristic", "evaluator_version": None, "model_name": model,
             "task_type": None, "author": None, "metadata": None, "created_at": at}
            for name, value, at, model in rows])


# --- validation -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("field", "value", "allowed"), [
    ("metric_name", "latency_p95", "response_time_p95"),
    ("condition", "above", "gt, gte, lt, lte, eq, ne, anomaly"),
    ("window_minutes", -5, "a number > 0"),
    ("threshold", "0.1", "a number"),
    ("threshold", True, "a number"),
    ("severity", "page", "info, warning, critical"),
    ("no_data", "ignore", "ok, keep_state, alert"),
    ("for_minutes", -1, "a number >= 0"),
    ("min_requests", 2.5, "an integer"),
    ("rule_id", "has space", "letters, digits"),
])
def test_invalid_rule_raises_value_error_naming_field_value_and_allowed(field: str, value: Any,
                                                                        allowed: str) -> None:
    with pytest.raises(ValueError) as info:
        rule(**{field: value})
    text = str(info.value)
    assert f"AlertRule.{field} = {value!r}" in text and allowed in text


def test_anomaly_threshold_must_be_positive_and_filters_keys_are_checked() -> None:
    with pytest.raises(ValueError, match=r"AlertRule.threshold = 0 .*> 0"):
        rule(condition="anomaly", threshold=0)
    with pytest.raises(ValueError, match=r"unknown key 'region'.*model_name, kind, tags, user_id"):
        rule(filters={"region": "eu"})
    with pytest.raises(ValueError, match=r"filters\['kind'\] = 'llm'"):
        rule(filters={"kind": "llm"})
    with pytest.raises(ValueError, match="only model_name filters scores"):
        rule(metric_name="quality_score", filters={"user_id": "u1"})


def test_evaluation_metric_names_map_to_evaluation_names() -> None:
    from llmobs.alerts.metrics import evaluation_name

    assert evaluation_name("quality_score") == "quality"
    assert evaluation_name("toxicity_score") == "toxicity"
    assert evaluation_name("hallucination_score") == "hallucination"
    assert evaluation_name("helpfulness_score") == "helpfulness"
    assert evaluation_name("eval:Exact Match") == "Exact Match"
    assert evaluation_name("error_rate") is None and evaluation_name("cost_per_token") is None


# --- storage: CRUD, atomic updates, default rules -------------------------------------------------------------------

def test_rules_are_stored_upserted_listed_disabled_and_deleted(store: Store) -> None:
    m = manager(store)
    m.add_rule(rule(channels=["ops"], filters={"model_name": "gpt-4o", "tags": "prod"}))
    m.add_rule(rule(rule_id="r2", name="Second", metric_name="cost_usd", threshold=5))
    m.add_rule(rule(threshold=0.2, description="raised"))  # upsert replaces r1
    rows = {r["rule_id"]: r for r in store.rows("alert_rules", order="rule_id")}
    assert set(rows) == {"r1", "r2"}
    assert rows["r1"]["threshold"] == 0.2 and rows["r1"]["description"] == "raised"
    assert rows["r1"]["channels"] == [] and rows["r1"]["filters"] == {}
    assert rows["r2"]["cooldown_minutes"] == 10.0  # alerts.default_cooldown_minutes filled in
    m.disable_rule("r2")
    assert [r.rule_id for r in m.list_rules(enabled=True)] == ["r1"]
    assert store.rows("alert_rules", order="rule_id")[1]["enabled"] is False
    assert m.delete_rule("r2") is True and m.delete_rule("r2") is False
    assert [r["rule_id"] for r in store.rows("alert_rules", order="rule_id")] == ["r1"]


def test_update_rule_with_an_invalid_change_saves_nothing(store: Store) -> None:
    m = manager(store)
    m.add_rule(rule())
    with pytest.raises(ValueError, match="AlertRule.window_minutes = -1"):
        m.update_rule("r1", threshold=0.5, window_minutes=-1)
    with pytest.raises(ValueError, match="has no field 'treshold'"):
        m.update_rule("r1", treshold=0.5)
    (row,) = store.rows("alert_rules", order="rule_id")
    assert row["threshold"] == 0.1 and row["window_minutes"] == 15.0
    updated = m.update_rule("r1", threshold=0.5, severity="critical")
    (row,) = store.rows("alert_rules", order="rule_id")
    assert (row["threshold"], row["severity"]) == (0.5, "critical") == (updated.threshold, updated.severity)


def test_default_rules_come_from_thresholds_are_created_once_and_keep_edits(store: Store) -> None:
    m = manager(store)
    created = m.ensure_default_rules()
    assert sorted(r.rule_id for r in created) == ["default_response_time_ms_critical",
                                                  "default_response_time_ms_warning",
                                                  "default_success_rate_critical", "default_success_rate_warning"]
    m.update_rule("default_success_rate_warning", threshold=0.9)
    assert m.ensure_default_rules() == []
    rows = {r["rule_id"]: r for r in store.rows("alert_rules", order="rule_id")}
    assert (rows["default_response_time_ms_critical"]["metric_name"],
            rows["default_response_time_ms_critical"]["condition"],
            rows["default_response_time_ms_critical"]["threshold"]) == ("response_time_p95", "gt", 15000)
    assert (rows["default_success_rate_critical"]["condition"],
            rows["default_success_rate_critical"]["threshold"]) == ("lt", 0.85)
    assert rows["default_success_rate_warning"]["threshold"] == 0.9


def test_bad_thresholds_setting_raises_config_error_naming_the_key() -> None:
    assert len(default_rules(DEFAULT_THRESHOLDS, 10)) == 4
    with pytest.raises(ConfigError, match=r"alerts.thresholds.error_rate has unknown key 'page'"):
        default_rules({"error_rate": {"page": 0.5}}, 10)
    with pytest.raises(ConfigError, match=r"alerts.thresholds.latency_ms.warning = 5 makes an invalid rule"):
        default_rules({"latency_ms": {"warning": 5}}, 10)


# --- metrics against hand-computed data -----------------------------------------------------------------------------

def seed_window(store: Store) -> None:
    """Five gpt-4o calls in the last 15 minutes, one failed; decoys outside the window and of another model."""
    durations = [100.0, 200.0, 300.0, 400.0, 1000.0]
    tokens = [10, 20, 30, 40, 100]
    costs = [0.01, 0.02, 0.03, 0.04, 0.1]
    rows = [gen(ago(10 - i), d, model="gpt-4o", total_tokens=t, cost_usd=c, status="error" if i == 4 else "ok",
                user_id="alice", tags=["prod"])
            for i, (d, t, c) in enumerate(zip(durations, tokens, costs))]
    rows.append(gen(ago(20), 99999.0, model="gpt-4o", total_tokens=9999, cost_usd=99.0, status="error"))  # too old
    rows.append(gen(NOW, 99999.0, model="gpt-4o", total_tokens=9999, cost_usd=99.0))  # at the end: excluded
    rows.append(gen(ago(5), 5000.0, model="claude", total_tokens=1, cost_usd=1.0, user_id="bob"))  # other model
    rows.append(gen(ago(5), 7000.0, model="gpt-4o", kind="tool", user_id="alice"))  # not a generation
    seed(store.engine(), rows)
    add_evaluations(store, [("quality", 0.5, ago(3), "gpt-4o"), ("quality", 0.7, ago(2), "gpt-4o"),
                            ("quality", 0.9, ago(1), "gpt-4o"), ("quality", 0.0, ago(30), "gpt-4o"),
                            ("quality", 0.1, ago(1), "claude"), ("toxicity", 0.4, ago(1), "gpt-4o"),
                            ("toxicity", 0.2, ago(2), "gpt-4o")])


# p95 and p99 by linear interpolation between closest ranks of [100, 200, 300, 400, 1000]:
# rank 0.95*4 = 3.8 -> 400 + 0.8*600 = 880; rank 0.99*4 = 3.96 -> 400 + 0.96*600 = 976.
EXPECTED: dict[str, float] = {
    "request_count": 5, "error_count": 1, "error_rate": 0.2, "success_rate": 0.8,
    "response_time_avg": 400.0, "response_time_p50": 300.0, "response_time_p95": 880.0, "response_time_p99": 976.0,
    "response_time_min": 100.0, "response_time_max": 1000.0,
    "cost_usd": 0.2, "cost_per_request": 0.04, "cost_per_token": 0.001, "total_tokens": 200.0,
    "tokens_per_second": 100.0,  # 200 tokens over 2.0 s of model time
    "quality_score": 0.7, "toxicity_score": 0.3, "eval:quality": 0.7,
}


def test_every_metric_reads_the_hand_computed_value_of_its_window(store: Store) -> None:
    seed_window(store)
    m = manager(store)
    for metric, expected in EXPECTED.items():
        checked = m.check_rule(rule(metric_name=metric, threshold=0, filters={"model_name": "gpt-4o"}))
        assert checked["value"] == pytest.approx(expected), metric
    everyone = m.check_rule(rule(metric_name="request_count", threshold=0))
    assert everyone["value"] == 6  # the claude call counts without a model filter
    tools = m.check_rule(rule(metric_name="response_time_max", threshold=0, filters={"kind": "tool"}))
    assert tools["value"] == 7000.0
    bob = m.check_rule(rule(metric_name="response_time_avg", threshold=0, filters={"user_id": "bob"}))
    assert bob["value"] == 5000.0
    tagged = m.check_rule(rule(metric_name="request_count", threshold=0, filters={"tags": ["prod"]}))
    assert tagged["value"] == 5
    claude_quality = m.check_rule(rule(metric_name="quality_score", threshold=0, filters={"model_name": "claude"}))
    assert claude_quality["value"] == pytest.approx(0.1)


CONDITION_CASES = [("gt", 0.2, False), ("gt", 0.19, True), ("gte", 0.2, True), ("gte", 0.21, False),
                   ("lt", 0.2, False), ("lt", 0.21, True), ("lte", 0.2, True), ("lte", 0.19, False),
                   ("eq", 0.2, True), ("eq", 0.3, False), ("ne", 0.2, False), ("ne", 0.3, True)]


def test_threshold_conditions_open_an_alert_exactly_when_they_hold(store: Store) -> None:
    seed_window(store)  # error_rate of gpt-4o is exactly 0.2
    m = manager(store)
    for i, (condition, threshold, _) in enumerate(CONDITION_CASES):
        m.add_rule(rule(rule_id=f"c{i}-{condition}-{threshold}", condition=condition, threshold=threshold,
                        filters={"model_name": "gpt-4o"}))
    m.evaluate_rules()
    alerts = store.rows("alerts", order="started_at")
    expected = {f"c{i}-{c}-{t}" for i, (c, t, breached) in enumerate(CONDITION_CASES) if breached}
    assert {a["rule_id"] for a in alerts} == expected
    assert all(a["state"] == "firing" and a["value"] == pytest.approx(0.2) for a in alerts)


def test_anomaly_fires_on_a_robust_outlier_against_previous_windows_only(store: Store) -> None:
    # Six previous 5-minute windows with a mean latency of 100-110 ms; the current one at 400 ms.
    rows = []
    for k, mean in enumerate([100, 104, 98, 110, 102, 106], start=1):
        for j in range(3):
            rows.append(gen(ago(5 * k + 1 + j), float(mean), model="gpt-4o"))
    rows += [gen(ago(1 + j), 400.0, model="gpt-4o") for j in range(3)]
    seed(store.engine(), rows)
    m = manager(store)
    m.add_rule(rule(rule_id="spike", metric_name="response_time_avg", condition="anomaly", threshold=3,
                    window_minutes=5))
    m.add_rule(rule(rule_id="calm", metric_name="response_time_avg", condition="anomaly", threshold=500,
                    window_minutes=5))
    m.add_rule(rule(rule_id="short", metric_name="response_time_avg", condition="anomaly", threshold=3,
                    window_minutes=60, baseline_windows=3))  # nothing stored before the last hour
    checked = m.check_rule("spike")
    # baseline median 103, MAD 3 -> scale 4.4478; (400 - 103) / 4.4478 = 66.77
    assert checked["outcome"] == "breach" and "+66.77 robust deviations" in checked["message"]
    m.evaluate_rules()
    assert [(a["rule_id"], a["state"]) for a in store.rows("alerts", order="started_at")] == [("spike", "firing")]
    assert m.check_rule("calm")["outcome"] == "clear"
    short = m.check_rule("short")
    assert short["outcome"] == "hold" and "only 0 of 3 baseline windows have data" in short["message"]
