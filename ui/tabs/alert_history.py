"""Alerts tab, history section: the alerts that fired in (or were firing during) a time range, filtered by rule,
severity and state, and per rule / per severity statistics from ``AlertManager.get_alert_statistics``."""

from __future__ import annotations

from typing import Any

import gradio as gr

from llmobs.alerts.manager import HISTORY_STATES
from llmobs.alerts.rules import SEVERITIES
from llmobs.ui.format import cell, fmt_duration, fmt_int, fmt_time
from llmobs.ui.health import Loader, listen
from llmobs.ui.state import DEFAULT_RANGE, RANGES, AppContext, alert_manager, range_bounds

ALL = "All"
HISTORY_LIMIT = 500  # rows listed; the statistics always cover the whole range
HISTORY_HEADERS = ["Alert id", "Rule id", "Name", "Severity", "State", "Fired", "Resolved", "Time to resolve",
                   "Peak value", "Threshold", "Acknowledged", "Message"]
STAT_HEADERS = ["Fired", "Firing now", "Resolved", "Mean time to resolve"]
RULE_STAT_HEADERS = ["Rule id", "Name", *STAT_HEADERS]
SEVERITY_STAT_HEADERS = ["Severity", *STAT_HEADERS]


def history_rows(alerts: list[dict[str, Any]]) -> list[list[str]]:
    """Alerts as plain-string rows, newest first."""
    rows = []
    for a in reversed(alerts):
        took = (a["resolved_at"] - a["fired_at"]).total_seconds() if a.get("resolved_at") else None
        rows.append([cell(a["alert_id"]), cell(a["rule_id"]), cell(a["name"]), cell(a["severity"]), cell(a["state"]),
                     fmt_time(a.get("fired_at")), fmt_time(a.get("resolved_at")) if a.get("resolved_at") else "",
                     fmt_duration(took) if took is not None else "", cell(a.get("peak_value")),
                     cell(a.get("threshold")), fmt_time(a["acknowledged_at"]) if a.get("acknowledged_at") else "",
                     cell(a.get("message"))])
    return rows


def stat_cells(entry: dict[str, Any]) -> list[str]:
    """[fired, firing now, resolved, mean time to resolve] of one statistics entry."""
    return [fmt_int(entry["alerts"]), fmt_int(entry["open"]), fmt_int(entry["resolved"]),
            fmt_duration(entry["mean_time_to_resolve_seconds"])]


def refresh(ctx: AppContext, range_label: str, rule_id: str | None = ALL, severity: str | None = ALL,
            state: str | None = ALL) -> tuple[Any, ...]:
    """Callback: history rows, a summary line, per-rule and per-severity statistics, and the rule choices.

    The statistics cover the whole range (every rule, severity and state); the filters narrow the history list.
    """
    m = alert_manager(ctx)
    try:
        start, end = range_bounds(range_label)
        history = m.get_alert_history(start, end, rule_id=_chosen(rule_id), severity=_chosen(severity),
                                      state=_chosen(state), latest=HISTORY_LIMIT)
        stats = m.get_alert_statistics(start, end)
    except ValueError as exc:
        return [], f"Error: {exc}", [], [], gr.skip()
    by_rule = [[cell(rid), cell(e["name"]), *stat_cells(e)] for rid, e in sorted(stats["by_rule"].items())]
    by_severity = [[s, *stat_cells(stats["by_severity"][s])] for s in SEVERITIES]
    if stats["total_alerts"]:
        summary = (f"{fmt_int(stats['total_alerts'])} alert(s) fired or firing in this range · "
                   f"{fmt_int(stats['open_alerts'])} firing now · mean time to resolve "
                   f"{fmt_duration(stats['mean_time_to_resolve_seconds'])} · "
                   + (f"newest {HISTORY_LIMIT} shown" if len(history) == HISTORY_LIMIT else f"{len(history)} shown"))
    else:
        summary = "No alert fired in this range."
    rules = sorted({r.rule_id for r in m.list_rules()} | set(stats["by_rule"]) | ({rule_id} - {None, ALL, ""}))
    return history_rows(history), summary, by_rule, by_severity, gr.update(choices=[ALL, *rules])


def _chosen(value: str | None) -> str | None:
    """A filter value, or None for 'All' / blank."""
    text = (value or "").strip()
    return None if text in ("", ALL) else text


def build(ctx: AppContext) -> Loader:
    """Render the section; returns (load fn, inputs, outputs)."""
    with gr.Row():
        rng = gr.Dropdown(list(RANGES), value=DEFAULT_RANGE, label="Time range", elem_id="alert-history-range")
        rule = gr.Dropdown([ALL], value=ALL, label="Rule", elem_id="alert-history-rule")
        severity = gr.Dropdown([ALL, *SEVERITIES], value=ALL, label="Severity", elem_id="alert-history-severity")
        state = gr.Dropdown([ALL, *HISTORY_STATES], value=ALL, label="State", elem_id="alert-history-state")
        refresh_button = gr.Button("Refresh", elem_id="alert-history-refresh")
    summary = gr.Textbox(show_label=False, container=False, interactive=False, elem_id="alert-history-summary")
    with gr.Row():
        by_rule = gr.Dataframe(headers=RULE_STAT_HEADERS, datatype="str", interactive=False,
                               elem_id="alert-stats-rules", label="Per rule")
        by_severity = gr.Dataframe(headers=SEVERITY_STAT_HEADERS, datatype="str", interactive=False,
                                   elem_id="alert-stats-severity", label="Per severity")
    history = gr.Dataframe(headers=HISTORY_HEADERS, datatype="str", interactive=False, elem_id="alert-history",
                           label="History (newest first)")
    inputs, outputs = [rng, rule, severity, state], [history, summary, by_rule, by_severity, rule]

    def fn(*args: str) -> tuple[Any, ...]:
        return refresh(ctx, *args)

    listen(ctx, [refresh_button.click, rng.input, rule.input, severity.input, state.input], fn, inputs, outputs)
    return fn, inputs, outputs
