"""Performance tab: time series of requests, error rate, latency p50/p95/p99, tokens and cost, with a bucket size
matching the range and optional auto-refresh (gr.Timer)."""

from __future__ import annotations

from typing import Any

import gradio as gr
import plotly.graph_objects as go

from llmobs import analytics
from llmobs.ui import charts
from llmobs.ui.filters import filter_controls
from llmobs.ui.health import listen
from llmobs.ui.state import AppContext, bucket_for, build_filters

METRICS = ["requests", "errors", "error_rate", "latency_p50", "latency_p95", "latency_p99", "tokens", "cost"]
# (title, metrics, legend names)
CHARTS: list[tuple[str, list[str], dict[str, str]]] = [
    ("Requests", ["requests", "errors"], {}),
    ("Error rate", ["error_rate"], {"error_rate": "error rate"}),
    ("Latency (ms)", ["latency_p50", "latency_p95", "latency_p99"], {"latency_p50": "p50", "latency_p95": "p95",
                                                                     "latency_p99": "p99"}),
    ("Tokens", ["tokens"], {}),
    ("Cost (USD)", ["cost"], {}),
]


def series(ctx: AppContext, range_label: str, model: str = "", user_id: str = "", session_id: str = "",
           tag: str = "", source: str = "") -> list[dict[str, Any]]:
    """analytics.timeseries rows of every charted metric for the range, bucketed to suit it."""
    f = build_filters(range_label, model, user_id, session_id, tag, source)
    return analytics.timeseries(METRICS, filters=f, bucket=bucket_for(range_label), engine=ctx.engine)


def refresh(ctx: AppContext, *args: str) -> tuple[Any, ...]:
    """Callback: one figure per chart plus a status line (empty state or a filter error)."""
    try:
        rows = series(ctx, *args)
    except ValueError as exc:
        return (*(charts.empty_figure(t) for t, _, _ in CHARTS), f"Error: {exc}")
    figs: list[go.Figure] = [charts.timeseries_figure(rows, m, t, n) for t, m, n in CHARTS]
    total = sum(r["requests"] for r in rows)
    status = (f"{total:,} requests · bucket {bucket_for(args[0])}" if total else
              "No LLM calls recorded in this range yet.")
    return (*figs, status)


def build(ctx: AppContext) -> tuple[Any, list[Any], list[Any]]:
    """Render the tab with its auto-refresh timer; returns (load fn, inputs, outputs)."""
    controls = filter_controls("performance")
    period = ctx.auto_refresh_seconds
    with gr.Row():
        label = f"Auto-refresh every {period:g} s" if period > 0 else \
            "Auto-refresh off (dashboard.auto_refresh_seconds is 0)"
        auto = gr.Checkbox(value=period > 0, label=label, interactive=period > 0, elem_id="performance-auto")
        refresh_button = gr.Button("Refresh", elem_id="performance-refresh")
    status = gr.Textbox(show_label=False, container=False, interactive=False, elem_id="performance-status")
    plots = [gr.Plot(label=title, elem_id=f"performance-plot-{i}") for i, (title, _, _) in enumerate(CHARTS)]
    timer = gr.Timer(value=period if period > 0 else 1.0, active=period > 0)
    inputs, outputs = controls.inputs(), [*plots, status]

    def fn(*args: str) -> tuple[Any, ...]:
        return refresh(ctx, *args)

    listen(ctx, [refresh_button.click, timer.tick, *controls.triggers()], fn, inputs, outputs)
    listen(ctx, auto.change, lambda on: gr.Timer(active=bool(on) and period > 0), [auto], [timer])
    return fn, inputs, outputs
