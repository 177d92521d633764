"""Alerts tab, channels section: the channels of ``alerts.channels`` with their settings, a "Send test
notification" button per channel that sends through that channel's own code, and the latest delivery attempts from
``alert_notifications``. Every text shown passes through each channel's ``mask``, so webhook URLs, tokens, SMTP
passwords and header values never reach the page."""

from __future__ import annotations

from typing import Any

import gradio as gr

from llmobs.alerts import DeliveryResult, Notifier
from llmobs.config import ConfigError
from llmobs.ui.format import DASH, cell, fmt_time
from llmobs.ui.health import Loader, listen
from llmobs.ui.state import AppContext, alert_manager

CHANNEL_HEADERS = ["Channel", "Type", "Settings", "Last delivery", "Last status", "Last error"]
DELIVERY_HEADERS = ["Time", "Channel", "Type", "Rule", "Alert id", "State", "Status", "Attempts", "HTTP",
                    "Duration", "Error"]
RECENT_DELIVERIES = 50
NO_CHANNELS = ("No notification channels configured: add them under alerts.channels in the config "
               "(see docs/alerts_channels.md).")


def configured_channels(ctx: AppContext) -> tuple[dict[str, Notifier], str]:
    """(channels by name, '') from ``alerts.channels``, or ({}, 'Error: ...') when that setting is invalid."""
    try:
        return alert_manager(ctx, with_channels=True).notification_handlers, ""
    except ConfigError as exc:  # the message names the key and shows the value masked
        return {}, f"Error: {exc}"


def masked(text: Any, channels: dict[str, Notifier]) -> str:
    """``text`` as a string with the secrets of every configured channel masked."""
    shown = cell(text)
    for notifier in channels.values():
        shown = notifier.mask(shown)
    return shown


def settings_text(notifier: Notifier) -> str:
    """A channel's settings from ``describe()`` (already masked) as 'key=value, ...'."""
    described = {k: v for k, v in notifier.describe().items() if k not in ("name", "type") and v not in (None, {})}
    return ", ".join(f"{k}={', '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in described.items())


def refresh(ctx: AppContext) -> tuple[list[list[str]], list[list[str]], str]:
    """Callback: the channel rows (with each one's last delivery), the latest deliveries (newest first), a status."""
    channels, error = configured_channels(ctx)
    m = alert_manager(ctx)
    rows = []
    for name, notifier in channels.items():
        last = m.get_notifications(channel=name, latest=1)
        row = [name, notifier.channel_type, settings_text(notifier)]
        row += [fmt_time(last[0]["created_at"]), cell(last[0]["status"]), cell(last[0]["error"])] if last else \
            ["never", DASH, ""]
        rows.append([masked(x, channels) for x in row])
    deliveries = [[masked(x, channels) for x in (
        fmt_time(n["created_at"]), n["channel"], n.get("channel_type"), n["rule_id"], n["alert_id"], n["state"],
        n["status"], n["attempts"], n.get("http_status"),
        f"{n['duration_ms']:,.0f} ms" if n.get("duration_ms") is not None else "", n.get("error"))]
        for n in reversed(m.get_notifications(latest=RECENT_DELIVERIES))]
    status = error or (f"{len(channels)} channel(s) configured." if channels else NO_CHANNELS)
    return rows, deliveries, status


def result_text(result: DeliveryResult) -> str:
    """One line about a test delivery: 'Sent at ... in 12 ms (1 attempt(s), HTTP 200).' or 'Failed after ...: error'
    (the channel's error names the HTTP status)."""
    took = f"{result.duration_ms:,.0f} ms"
    if result.ok:
        http = f", HTTP {result.http_status}" if result.http_status else ""
        return f"Sent at {fmt_time(result.sent_at)} in {took} ({result.attempts} attempt(s){http})."
    return f"{result.status.capitalize()} after {result.attempts} attempt(s) in {took}: {result.error or '?'}"


def send_test(ctx: AppContext, name: str) -> str:
    """Callback: send a test notification through channel ``name`` (as configured now) and describe the outcome."""
    try:
        m = alert_manager(ctx, with_channels=True)
    except ConfigError as exc:
        return f"Error: {exc}"
    channels = m.notification_handlers
    if name not in channels:
        return f"Error: no channel named {name!r} in alerts.channels any more; reload the page."
    results = m.send_test_notification(name)
    return masked(result_text(results[0]), channels) if results else "Error: the channel returned no result."


def build(ctx: AppContext) -> Loader:
    """Render the section with one test button per channel configured when the app was built."""
    status = gr.Textbox(show_label=False, container=False, interactive=False, elem_id="channels-status")
    table = gr.Dataframe(headers=CHANNEL_HEADERS, datatype="str", interactive=False, elem_id="channels-table",
                         label="Channels (secrets masked)", wrap=True,
                         column_widths=["9%", "7%", "44%", "15%", "8%", "17%"])
    channels, _ = configured_channels(ctx)
    for i, (name, notifier) in enumerate(channels.items()):
        with gr.Row():
            gr.Textbox(value=f"{name} ({notifier.channel_type})", label="Channel", interactive=False, scale=1,
                       elem_id=f"channel-name-{i}")
            button = gr.Button("Send test notification", elem_id=f"channel-test-{i}", scale=1)
            result = gr.Textbox(label="Test result", interactive=False, scale=3, elem_id=f"channel-result-{i}")
        listen(ctx, button.click, lambda n=name: send_test(ctx, n), [], [result])
    deliveries = gr.Dataframe(headers=DELIVERY_HEADERS, datatype="str", interactive=False,
                              elem_id="channels-deliveries", label="Latest deliveries (newest first)", wrap=True)
    reload_button = gr.Button("Refresh", elem_id="channels-refresh")
    outputs = [table, deliveries, status]

    def load() -> tuple[Any, ...]:
        return refresh(ctx)

    listen(ctx, reload_button.click, load, [], outputs)
    return load, [], outputs
