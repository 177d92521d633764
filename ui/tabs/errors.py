"""Errors tab: failed requests by type, by model and by message, with recent examples; clicking one opens its trace
in the Traces tab."""

from __future__ import annotations

from typing import Any

import gradio as gr

from llmobs import analytics
from llmobs.ui import charts
from llmobs.ui.filters import filter_controls
from llmobs.ui.format import cell, fmt_int, fmt_pct
from llmobs.ui.state import AppContext, build_filters
from llmobs.ui.tabs import traces

TYPE_HEADERS = ["Error type", "Count", "Share", "Last seen"]
MODEL_HEADERS = ["Model", "Requests", "Errors", "Error rate"]
RECENT_HEADERS = ["Time", "Trace id", "Span", "Model", "Error type", "Message"]


def refresh(ctx: AppContext, *args: str) -> tuple[Any, ...]:
    """Callback: summary line, by-type rows, bar chart, by-model rows and recent examples."""
    try:
        b = analytics.error_breakdown(filters=build_filters(*args), engine=ctx.engine)
    except ValueError as exc:
        return f"Error: {exc}", [], charts.empty_figure("Errors by type"), [], []
    summary = (f"{fmt_int(b['total_errors'])} errors in {fmt_int(b['total_requests'])} requests "
               f"(error rate {fmt_pct(b['error_rate'])})") if b["total_errors"] else \
        "No errors in this range." if b["total_requests"] else "No LLM calls recorded in this range yet."
    types = [[cell(t["error_type"]) or "(unknown)", fmt_int(t["count"]), fmt_pct(t["share"]), cell(t["last_seen"])]
             for t in b["by_type"]]
    fig = charts.bar_figure([t[0] for t in types], [t["count"] for t in b["by_type"]], "Errors by type")
    models = [[cell(m["model_name"]) or "(none)", fmt_int(m["requests"]), fmt_int(m["errors"]),
               fmt_pct(m["error_rate"])] for m in b["by_model"]]
    recent = [[cell(r["start_time"]), cell(r["trace_id"]), cell(r["name"]), cell(r["model_name"]),
               cell(r["error_type"]), cell(r["error_message"])] for r in b["recent"]]
    return summary, types, fig, models, recent


def build(ctx: AppContext) -> tuple[Any, list[Any], list[Any]]:
    """Render the tab; returns (load fn, inputs, outputs)."""
    controls = filter_controls("errors")
    refresh_button = gr.Button("Refresh", elem_id="errors-refresh")
    summary = gr.Textbox(show_label=False, container=False, interactive=False, elem_id="errors-summary")
    types = gr.Dataframe(headers=TYPE_HEADERS, datatype="str", interactive=False, elem_id="errors-types",
                         label="By type")
    plot = gr.Plot(label="Errors by type", elem_id="errors-plot")
    models = gr.Dataframe(headers=MODEL_HEADERS, datatype="str", interactive=False, elem_id="errors-models",
                          label="By model")
    recent = gr.Dataframe(headers=RECENT_HEADERS, datatype="str", interactive=False, elem_id="errors-recent",
                          label="Recent errors (click a row to open its trace)")
    traces.open_on_select(ctx, recent, RECENT_HEADERS.index("Trace id"), switch_tab=True)
    return controls.wire(ctx, refresh_button, lambda *args: refresh(ctx, *args), [summary, types, plot, models, recent])
