"""Models tab: one row per model (requests, success rate, latency percentiles, tokens, cost, quality, shares)."""

from __future__ import annotations

from typing import Any

import gradio as gr
import plotly.graph_objects as go

from llmobs import analytics
from llmobs.ui import charts
from llmobs.ui.filters import filter_controls
from llmobs.ui.format import cell, fmt_int, fmt_ms, fmt_pct, fmt_score, fmt_usd
from llmobs.ui.state import AppContext, build_filters

HEADERS = ["Model", "Requests", "Success rate", "p50", "p95", "p99", "Tokens", "Cost", "Cost / 1k tokens",
           "Quality", "Share of requests", "Share of cost"]


def model_rows(models: list[dict[str, Any]]) -> list[list[str]]:
    """Table rows for analytics.model_comparison output."""
    return [[cell(m["model_name"]) or "(none)", fmt_int(m["total_requests"]), fmt_pct(m["success_rate"]),
             fmt_ms(m["p50_response_time"]), fmt_ms(m["p95_response_time"]), fmt_ms(m["p99_response_time"]),
             fmt_int(m["total_tokens"]), fmt_usd(m["total_cost"]), fmt_usd(m["cost_per_1k_tokens"]),
             fmt_score(m["avg_quality_score"]), fmt_pct(m["share_of_requests"]), fmt_pct(m["share_of_cost"])]
            for m in models]


def refresh(ctx: AppContext, *args: str) -> tuple[list[list[str]], go.Figure, str]:
    """Callback: the comparison table, a requests-per-model bar chart and a status line."""
    try:
        models = analytics.model_comparison(filters=build_filters(*args), engine=ctx.engine)
    except ValueError as exc:
        return [], charts.empty_figure("Requests by model"), f"Error: {exc}"
    fig = charts.bar_figure([m["model_name"] or "(none)" for m in models], [m["total_requests"] for m in models],
                            "Requests by model")
    return model_rows(models), fig, "" if models else "No LLM calls recorded in this range yet."


def build(ctx: AppContext) -> tuple[Any, list[Any], list[Any]]:
    """Render the tab; returns (load fn, inputs, outputs)."""
    controls = filter_controls("models")
    refresh_button = gr.Button("Refresh", elem_id="models-refresh")
    status = gr.Textbox(show_label=False, container=False, interactive=False, elem_id="models-status")
    table = gr.Dataframe(headers=HEADERS, datatype="str", interactive=False, elem_id="models-table", label="Models")
    plot = gr.Plot(label="Requests by model", elem_id="models-plot")
    return controls.wire(ctx, refresh_button, lambda *args: refresh(ctx, *args), [table, plot, status])
