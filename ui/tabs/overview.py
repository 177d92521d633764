"""Overview tab: headline figures for the range and filters, with the change against the previous period."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import gradio as gr
import plotly.graph_objects as go

from llmobs import analytics
from llmobs.ui import charts
from llmobs.ui.filters import filter_controls
from llmobs.ui.format import fmt_change, fmt_int, fmt_ms, fmt_pct, fmt_score, fmt_usd
from llmobs.ui.state import AppContext, alert_manager, bucket_for, build_filters, previous_period

log = logging.getLogger("llmobs")
HEADERS = ["Metric", "Value", "Previous period", "Change"]
EMPTY_MESSAGE = ("No LLM calls recorded in this range yet. Instrument your code with @llmobs.observe, "
                 "or run `llmobs demo`.")
# (label, overview key, formatter)
CARDS: list[tuple[str, str, Any]] = [
    ("Total requests", "total_requests", fmt_int),
    ("Success rate", "success_rate", fmt_pct),
    ("p95 latency", "p95_response_time", fmt_ms),
    ("Total cost", "total_cost", fmt_usd),
    ("Total tokens", "total_tokens", fmt_int),
    ("Average quality", "avg_quality_score", fmt_score),
]


def overview_data(ctx: AppContext, range_label: str, model: str = "", user_id: str = "", session_id: str = "",
                  tag: str = "", source: str = "", now: dt.datetime | None = None) -> dict[str, Any]:
    """The analytics overview of the range and of the period before it, plus the number of active alerts."""
    f = build_filters(range_label, model, user_id, session_id, tag, source, now=now)
    current = analytics.overview(filters=f, engine=ctx.engine, include_traces=False)  # no trace counts shown
    previous = analytics.overview(filters=previous_period(f), engine=ctx.engine, include_traces=False)
    series = analytics.timeseries(["requests", "errors"], filters=f, bucket=bucket_for(range_label),
                                  engine=ctx.engine)
    return {"current": current, "previous": previous, "active_alerts": active_alert_count(ctx), "series": series}


def active_alert_count(ctx: AppContext) -> int | None:
    """Open (pending or firing) alerts; None when the alert tables cannot be read."""
    try:
        return len(alert_manager(ctx).get_active_alerts())
    except Exception:  # noqa: BLE001 - the overview must render even if the alert store is unavailable
        log.exception("llmobs.ui: could not read active alerts")
        return None


def overview_rows(data: dict[str, Any]) -> list[list[str]]:
    """Table rows [metric, value, previous, change] for the overview data."""
    cur, prev = data["current"], data["previous"]
    rows = [[label, fmt(cur.get(key)), fmt(prev.get(key)), fmt_change(cur.get(key), prev.get(key))]
            for label, key, fmt in CARDS]
    rows.append(["Active alerts", fmt_int(data["active_alerts"]), "", ""])
    return rows


def refresh(ctx: AppContext, range_label: str, model: str = "", user_id: str = "", session_id: str = "",
            tag: str = "", source: str = "") -> tuple[list[list[str]], go.Figure, str]:
    """Callback: the overview table, the requests chart and a status line (empty state or error message)."""
    try:
        data = overview_data(ctx, range_label, model, user_id, session_id, tag, source)
    except ValueError as exc:
        return [], charts.empty_figure("Requests"), f"Error: {exc}"
    status = EMPTY_MESSAGE if not data["current"]["total_requests"] else ""
    fig = charts.timeseries_figure(data["series"], ["requests", "errors"], "Requests and errors")
    return overview_rows(data), fig, status


def build(ctx: AppContext) -> tuple[Any, list[Any], list[Any]]:
    """Render the tab; returns (load event fn, inputs, outputs) so the app can fill it on page load."""
    controls = filter_controls("overview")
    status = gr.Textbox(label="Status", interactive=False, elem_id="overview-status", show_label=False,
                        placeholder="", container=False)
    table = gr.Dataframe(headers=HEADERS, datatype="str", interactive=False, elem_id="overview-table",
                         label="Overview")
    plot = gr.Plot(label="Requests", elem_id="overview-plot")
    refresh_button = gr.Button("Refresh", elem_id="overview-refresh")
    return controls.wire(ctx, refresh_button, lambda *args: refresh(ctx, *args), [table, plot, status])
