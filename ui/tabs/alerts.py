"""Alerts tab: open alerts with acknowledge and the rules list with create / enable / disable / delete; the
history with statistics (``alert_history``) and the notification channels (``alert_channels``) are its other
sections.

Every change goes through ``AlertManager``, which validates a whole rule before saving it, so a bad form leaves
nothing half-saved; the error is shown in the page."""

from __future__ import annotations

from typing import Any

import gradio as gr

from llmobs.alerts import AlertRule
from llmobs.alerts.metrics import metric_names
from llmobs.alerts.rules import CONDITIONS, SEVERITIES
from llmobs.ui.format import cell, fmt_time
from llmobs.ui.health import Loader, listen
from llmobs.ui.state import AppContext, alert_manager
from llmobs.ui.tabs import alert_channels, alert_history

ALERT_HEADERS = ["Alert id", "Rule", "Severity", "State", "Message", "Value", "Threshold", "Started",
                 "Acknowledged"]
RULE_HEADERS = ["Rule id", "Name", "Metric", "Condition", "Threshold", "Severity", "Window (min)", "Enabled"]
RULE_ACTIONS = ("enable", "disable", "delete")


def alert_rows(ctx: AppContext) -> list[list[str]]:
    """Open alerts (pending and firing), newest first, as plain-string rows."""
    return [[cell(a["alert_id"]), cell(a["name"]), cell(a["severity"]), cell(a["state"]), cell(a.get("message")),
             cell(a.get("value")), cell(a.get("threshold")), fmt_time(a.get("started_at")),
             "" if not a.get("acknowledged_at") else f"{fmt_time(a['acknowledged_at'])} by "
                                                     f"{cell(a.get('acknowledged_by')) or '?'}"]
            for a in alert_manager(ctx).get_active_alerts()]


def rule_rows(ctx: AppContext) -> list[list[str]]:
    """Every stored rule as plain-string rows."""
    return [[r.rule_id, r.name, r.metric_name, r.condition, f"{r.threshold:g}", r.severity, f"{r.window_minutes:g}",
             "yes" if r.enabled else "no"] for r in alert_manager(ctx).list_rules()]


def refresh(ctx: AppContext) -> tuple[list[list[str]], list[list[str]], str]:
    """Callback: alerts, rules and a status line."""
    alerts, rules = alert_rows(ctx), rule_rows(ctx)
    status = "No open alerts." if not alerts else f"{len(alerts)} open alert(s)."
    if not rules:
        status += " No alert rules yet: create one below."
    return alerts, rules, status


def acknowledge(ctx: AppContext, alert_id: str, by: str | None = None) -> tuple[list[list[str]], list[list[str]], str]:
    """Callback: acknowledge one open alert, then refresh."""
    alert_id = (alert_id or "").strip()
    done = bool(alert_id) and alert_manager(ctx).acknowledge(alert_id, by=by)
    alerts, rules, _ = refresh(ctx)
    message = f"Acknowledged alert {alert_id}." if done else \
        f"Error: No open, unacknowledged alert with id {alert_id!r}." if alert_id else "Error: Give an alert id."
    return alerts, rules, message


def create_rule(ctx: AppContext, rule_id: str, name: str, metric: str, condition: str, threshold: float | None,
                severity: str, window_minutes: float | None) -> tuple[list[list[str]], list[list[str]], str]:
    """Callback: validate and store a new rule; a validation error is returned in the status and nothing is saved."""
    try:
        if threshold is None:
            raise ValueError("AlertRule.threshold is required: give a number")
        rule_id = (rule_id or "").strip()
        m = alert_manager(ctx)
        if rule_id and m.get_rule(rule_id) is not None:
            raise ValueError(f"a rule with rule_id {rule_id!r} exists already; delete it first or pick another id")
        rule = AlertRule(rule_id=rule_id, name=(name or "").strip() or rule_id, metric_name=metric or "",
                         condition=condition or "", threshold=float(threshold), severity=severity or "warning",
                         window_minutes=15.0 if window_minutes is None else float(window_minutes))
        m.add_rule(rule)
    except (ValueError, TypeError) as exc:
        alerts, rules, _ = refresh(ctx)
        return alerts, rules, f"Error: Rule not saved: {exc}"
    alerts, rules, _ = refresh(ctx)
    return alerts, rules, f"Created rule {rule.rule_id}."


def rule_action(ctx: AppContext, action: str, rule_id: str) -> tuple[list[list[str]], list[list[str]], str]:
    """Callback: enable, disable or delete one rule by id."""
    rule_id = (rule_id or "").strip()
    m = alert_manager(ctx)
    try:
        if action not in RULE_ACTIONS:
            raise ValueError(f"action {action!r} is unknown; allowed: {', '.join(RULE_ACTIONS)}")
        if action == "delete":
            if not m.delete_rule(rule_id):
                raise KeyError(f"no alert rule with rule_id {rule_id!r}")
        else:
            (m.enable_rule if action == "enable" else m.disable_rule)(rule_id)
        message = f"Rule {rule_id}: {action}d."
    except (KeyError, ValueError) as exc:
        message = f"Error: {exc.args[0] if exc.args else exc}"
    alerts, rules, _ = refresh(ctx)
    return alerts, rules, message


def build(ctx: AppContext) -> list[Loader]:
    """Render the tab: open alerts and rules, history and statistics, channels; returns their page-load loaders."""
    with gr.Tabs():
        with gr.Tab("Open alerts & rules", elem_id="alerts-open-tab"):
            loaders = [build_open(ctx)]
        with gr.Tab("History & statistics", elem_id="alerts-history-tab"):
            loaders.append(alert_history.build(ctx))
        with gr.Tab("Channels", elem_id="alerts-channels-tab"):
            loaders.append(alert_channels.build(ctx))
    return loaders


def build_open(ctx: AppContext) -> Loader:
    """Render the open alerts and the rules with their forms; returns (load fn, inputs, outputs)."""
    status = gr.Textbox(show_label=False, container=False, interactive=False, elem_id="alerts-status")
    alerts = gr.Dataframe(headers=ALERT_HEADERS, datatype="str", interactive=False, elem_id="alerts-table",
                          label="Open alerts")
    with gr.Row():
        alert_id = gr.Textbox(label="Alert id", elem_id="alerts-ack-id", scale=3)
        ack = gr.Button("Acknowledge", elem_id="alerts-ack", scale=1)
        reload_button = gr.Button("Refresh", elem_id="alerts-refresh", scale=1)
    rules = gr.Dataframe(headers=RULE_HEADERS, datatype="str", interactive=False, elem_id="rules-table",
                         label="Rules")
    with gr.Row():
        rule_ref = gr.Textbox(label="Rule id", elem_id="rules-id", scale=3)
        buttons = {a: gr.Button(a.capitalize(), elem_id=f"rules-{a}", scale=1,
                                variant="stop" if a == "delete" else "secondary") for a in RULE_ACTIONS}
    with gr.Accordion("New rule", open=False):
        with gr.Row():
            new_id = gr.Textbox(label="Rule id", elem_id="new-rule-id")
            new_name = gr.Textbox(label="Name", elem_id="new-rule-name")
            metric = gr.Dropdown(metric_names(), label="Metric", elem_id="new-rule-metric")
        with gr.Row():
            condition = gr.Dropdown(list(CONDITIONS), value="gt", label="Condition", elem_id="new-rule-condition")
            threshold = gr.Number(label="Threshold", elem_id="new-rule-threshold")
            severity = gr.Dropdown(list(SEVERITIES), value="warning", label="Severity", elem_id="new-rule-severity")
            window = gr.Number(value=15, label="Window (minutes)", elem_id="new-rule-window")
        create = gr.Button("Create rule", variant="primary", elem_id="new-rule-create")
    outputs = [alerts, rules, status]

    def load() -> tuple[Any, ...]:
        return refresh(ctx)

    def on_ack(aid: str, request: gr.Request) -> tuple[Any, ...]:
        return acknowledge(ctx, aid, getattr(request, "username", None) if request is not None else None)

    listen(ctx, reload_button.click, load, [], outputs)
    listen(ctx, ack.click, on_ack, [alert_id], outputs)
    listen(ctx, create.click, lambda *a: create_rule(ctx, *a),
           [new_id, new_name, metric, condition, threshold, severity, window], outputs)
    for action, button in buttons.items():
        listen(ctx, button.click, lambda rid, a=action: rule_action(ctx, a, rid), [rule_ref], outputs)
    return load, [], outputs
