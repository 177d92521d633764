"""The Alerts tab's history, statistics and channels sections on a real database (SQLite and PostgreSQL): filters
narrow the history like ``AlertManager.get_alert_history``, statistics equal ``get_alert_statistics``, and a test
notification goes through the real channel code to a local HTTP receiver and aiosmtpd while the page shows every
secret masked."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

import llmobs
from llmobs.alerts import AlertManager, AlertRule
from llmobs.alerts.notification_handlers import sign
from llmobs.ui.format import fmt_duration, fmt_int
from llmobs.ui.state import AppContext, range_bounds
from llmobs.ui.tabs import alert_channels, alert_history
from tests.support.databases import Store
from tests.support.seed import seed_alert
from tests.ui.conftest import (
    BROKEN_TOKEN, HEADER_TOKEN, PATH_TOKEN, QUERY_TOKEN, SIGNING_KEY, assert_no_secret, channel_settings,
)

UTC = dt.timezone.utc
DAY = "Last 24 hours"
# --- history and statistics -----------------------------------------------------------------------------------------

@pytest.fixture
def alerts_ctx(store: Store) -> tuple[AppContext, dict[str, dict[str, Any]]]:
    """Four stored alerts relative to now: 'slow' (critical) resolved after 40 min 3 h ago and firing since 30 min;
    'errs' (warning) resolved after 10 min 5 h ago; 'old' (info) 3 days ago; plus a rule 'quiet' with none."""
    engine = store.engine()
    now = dt.datetime.now(UTC)
    ago = lambda **kw: now - dt.timedelta(**kw)  # noqa: E731
    rows = {"slow_then": seed_alert(engine, "slow", ago(hours=3), ago(hours=3) + dt.timedelta(minutes=40),
                                    severity="critical"),
            "slow_now": seed_alert(engine, "slow", ago(minutes=30), severity="critical"),
            "errs": seed_alert(engine, "errs", ago(hours=5), ago(hours=5) + dt.timedelta(minutes=10)),
            "old": seed_alert(engine, "old", ago(days=3), ago(days=3) + dt.timedelta(minutes=5), severity="info")}
    AlertManager(engine=engine, channels_from_config=False).add_rule(
        AlertRule(rule_id="quiet", name="Quiet", metric_name="error_count", condition="gt", threshold=100))
    return AppContext(engine=engine, auto_refresh_seconds=0), rows


def ids(rows: list[list[str]]) -> list[str]:
    return [r[0] for r in rows]


def test_alert_history_is_newest_first_and_filters_by_range_rule_severity_and_state(alerts_ctx: Any) -> None:
    ctx, a = alerts_ctx
    rows, *_ = alert_history.refresh(ctx, DAY)
    assert ids(rows) == [a["slow_now"]["id"], a["slow_then"]["id"], a["errs"]["id"]]
    resolved = rows[1]
    assert resolved[alert_history.HISTORY_HEADERS.index("State")] == "resolved"
    assert resolved[alert_history.HISTORY_HEADERS.index("Time to resolve")] == "40 min"
    assert rows[0][alert_history.HISTORY_HEADERS.index("Resolved")] == ""
    assert ids(alert_history.refresh(ctx, DAY, "slow")[0]) == [a["slow_now"]["id"], a["slow_then"]["id"]]
    assert ids(alert_history.refresh(ctx, DAY, "All", "warning")[0]) == [a["errs"]["id"]]
    assert ids(alert_history.refresh(ctx, DAY, "All", "All", "firing")[0]) == [a["slow_now"]["id"]]
    assert ids(alert_history.refresh(ctx, DAY, "slow", "critical", "resolved")[0]) == [a["slow_then"]["id"]]
    assert ids(alert_history.refresh(ctx, "Last 1 hour")[0]) == [a["slow_now"]["id"]]
    assert a["old"]["id"] in ids(alert_history.refresh(ctx, "Last 7 days")[0])
    start, end = range_bounds(DAY)
    expected = AlertManager(engine=ctx.engine, channels_from_config=False).get_alert_history(start, end,
                                                                                            severity="critical")
    assert ids(alert_history.refresh(ctx, DAY, "All", "critical")[0]) == [x["alert_id"] for x in reversed(expected)]


def test_alert_statistics_show_fired_firing_and_mean_time_to_resolve_per_rule_and_severity(alerts_ctx: Any) -> None:
    ctx, _ = alerts_ctx
    _, summary, by_rule, by_severity, choices = alert_history.refresh(ctx, DAY, "slow", "All", "firing")
    start, end = range_bounds(DAY)
    stats = AlertManager(engine=ctx.engine, channels_from_config=False).get_alert_statistics(start, end)
    assert stats["mean_time_to_resolve_seconds"] == pytest.approx(25 * 60)  # (40 + 10) / 2 minutes
    assert by_rule == [["errs", "errs", "1", "0", "1", "10 min"], ["slow", "slow", "2", "1", "1", "40 min"]]
    assert by_severity == [["info", "0", "0", "0", "—"], ["warning", "1", "0", "1", "10 min"],
                           ["critical", "2", "1", "1", "40 min"]]
    for row in by_severity:
        entry = stats["by_severity"][row[0]]
        assert row[1:] == [fmt_int(entry["alerts"]), fmt_int(entry["open"]), fmt_int(entry["resolved"]),
                           fmt_duration(entry["mean_time_to_resolve_seconds"])]
    assert summary == ("3 alert(s) fired or firing in this range · 1 firing now · mean time to resolve 25 min · "
                       "1 shown")
    assert choices["choices"] == ["All", "errs", "quiet", "slow"]


def test_a_long_alert_history_lists_the_newest_while_statistics_count_them_all(
        alerts_ctx: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx, a = alerts_ctx
    monkeypatch.setattr(alert_history, "HISTORY_LIMIT", 2)
    rows, summary, by_rule, *_ = alert_history.refresh(ctx, DAY)
    assert ids(rows) == [a["slow_now"]["id"], a["slow_then"]["id"]]
    assert summary.startswith("3 alert(s) fired or firing") and summary.endswith("newest 2 shown")
    assert [r[2] for r in by_rule] == ["1", "2"]


def test_alert_history_reports_a_bad_filter_in_the_page(alerts_ctx: Any) -> None:
    ctx, _ = alerts_ctx
    rows, summary, *_ = alert_history.refresh(ctx, DAY, "All", "All", "pending")
    assert rows == [] and summary == "Error: state = 'pending' is invalid: must be one of firing, resolved"
    assert alert_history.refresh(ctx, DAY, "All", "urgent")[1].startswith("Error: severity = 'urgent' is invalid")


def test_an_empty_alert_history_says_so(empty_ctx: AppContext) -> None:
    rows, summary, by_rule, by_severity, _ = alert_history.refresh(empty_ctx, DAY)
    assert (rows, summary, by_rule) == ([], "No alert fired in this range.", [])
    assert [r[1:] for r in by_severity] == [["0", "0", "0", "—"]] * 3


# --- channels ---------------------------------------------------------------------------------------------------------

@pytest.fixture
def channels_ctx(seeded: Any, receivers: dict[str, Any]) -> tuple[AppContext, dict[str, Any]]:
    """The seeded dashboard database with the three channels configured."""
    llmobs.configure(alerts__channels=channel_settings(receivers))
    return seeded[0], receivers


def test_channels_are_listed_with_their_secrets_masked(channels_ctx: Any) -> None:
    ctx, r = channels_ctx
    rows, deliveries, status = alert_channels.refresh(ctx)
    assert status == "3 channel(s) configured." and deliveries == []
    shown = {row[0]: row for row in rows}
    assert list(shown) == ["hook", "broken", "mail"]
    assert shown["hook"][1] == "webhook" and f"url={r['hook'].url}/hooks/****" in shown["hook"][2]
    assert "'Authorization': '****'" in shown["hook"][2] and "signed=True" in shown["hook"][2]
    assert "password=****" in shown["mail"][2] and "smtp_server=127.0.0.1" in shown["mail"][2]
    assert [row[3:5] for row in rows] == [["never", "—"]] * 3
    assert_no_secret(rows, deliveries, status)


def test_send_test_posts_a_signed_webhook_through_the_real_channel_and_shows_the_result(channels_ctx: Any) -> None:
    ctx, r = channels_ctx
    result = alert_channels.send_test(ctx, "hook")
    got = r["hook"].wait_for(1)
    assert len(got) == 1
    request = got[0]
    assert request.path == f"/hooks/{PATH_TOKEN}?token={QUERY_TOKEN}"
    assert request.headers["authorization"] == HEADER_TOKEN
    assert request.headers["x-llmobs-signature"] == sign(SIGNING_KEY, request.headers["x-llmobs-timestamp"],
                                                         request.body)
    payload = json.loads(request.body)
    assert payload["state"] == "test" and payload["event"] == "alert.test"
    assert payload["message"] == "If you can read this, the hook channel works."
    assert result.startswith("Sent at ") and result.endswith("(1 attempt(s), HTTP 200).")
    assert_no_secret(result)


def test_send_test_mails_through_smtp_with_the_configured_login(channels_ctx: Any) -> None:
    ctx, r = channels_ctx
    result = alert_channels.send_test(ctx, "mail")
    mail = r["smtp"].wait_for(1)
    assert len(mail) == 1 and mail[0].login == "alerts" and mail[0].rcpt_tos == ["oncall@example.com"]
    assert "[TEST] info: llmobs test notification" in mail[0].message["Subject"]
    assert result.startswith("Sent at ")
    assert_no_secret(result)


def test_a_failing_channel_shows_its_error_with_the_echoed_secrets_masked(channels_ctx: Any) -> None:
    ctx, r = channels_ctx
    result = alert_channels.send_test(ctx, "broken")
    assert len(r["broken"].wait_for(1)) == 1
    assert result.startswith("Failed after 1 attempt(s) in ")
    assert result.endswith(": HTTP 500: no such hook /hooks/**** (****)")
    assert_no_secret(result)
    assert alert_channels.send_test(ctx, "gone").startswith("Error: no channel named 'gone'")


def test_delivery_results_of_real_alerts_are_listed_newest_first_and_masked(channels_ctx: Any) -> None:
    ctx, r = channels_ctx
    manager = AlertManager(engine=ctx.engine)  # the configured channels, like the scheduler
    manager.add_rule(AlertRule(rule_id="errs", name="Errors", metric_name="error_count", condition="gt",
                               threshold=0, window_minutes=120, channels=["hook", "broken"]))
    assert [t.event for t in manager.evaluate_rules()] == ["firing"]
    assert len(r["hook"].wait_for(1)) == 1 and len(r["broken"].wait_for(1)) == 1
    stored = manager.get_notifications()
    rows, deliveries, _ = alert_channels.refresh(ctx)
    assert len(deliveries) == len(stored) == 2
    assert [d[1] for d in deliveries] == [n["channel"] for n in reversed(stored)]
    by_channel = {d[1]: d for d in deliveries}
    headers = alert_channels.DELIVERY_HEADERS
    assert by_channel["hook"][headers.index("Status")] == "sent"
    assert by_channel["hook"][headers.index("HTTP")] == "200"
    assert by_channel["broken"][headers.index("Status")] == "failed"
    assert by_channel["broken"][headers.index("Error")] == "HTTP 500: no such hook /hooks/**** (****)"
    assert {d[headers.index("Rule")] for d in deliveries} == {"errs"}
    last = {row[0]: row[4] for row in rows}
    assert last == {"hook": "sent", "broken": "failed", "mail": "—"}
    assert_no_secret(rows, deliveries)


def test_an_invalid_channel_setting_is_shown_in_the_page(seeded: Any) -> None:
    ctx = seeded[0]
    llmobs.configure(alerts__channels={"ops": {"type": "slack", "webhook_url": f"ftp://h.example/x/y/{PATH_TOKEN}"}})
    rows, _, status = alert_channels.refresh(ctx)
    assert rows == [] and status == ("Error: llmobs config: alerts.channels.ops.webhook_url = ftp://h.example/x/**** "
                                     "is invalid: must be an http:// or https:// URL with a host")
    assert alert_channels.send_test(ctx, "ops") == status
    assert_no_secret(rows, status)


def test_no_channels_configured_says_where_to_add_them(seeded: Any) -> None:
    assert alert_channels.refresh(seeded[0]) == ([], [], alert_channels.NO_CHANNELS)
