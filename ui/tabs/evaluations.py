"""Evaluations tab: stored score distributions (count, mean, p10, min, max per metric) for the range and model,
and a playground that scores a pasted prompt/response with explanations (nothing is stored)."""

from __future__ import annotations

from typing import Any

import gradio as gr
import plotly.graph_objects as go

from llmobs.evaluation import LLMEvaluator, get_evaluation_summary
from llmobs.evaluation.heuristic import TASK_TYPES
from llmobs.ui import charts
from llmobs.ui.format import cell, fmt_int, fmt_score
from llmobs.ui.health import listen
from llmobs.ui.state import RANGES, DEFAULT_RANGE, AppContext, range_bounds

SUMMARY_HEADERS = ["Metric", "Count", "Mean", "p10", "Min", "Max"]
PLAYGROUND_HEADERS = ["Metric", "Score", "Label", "Explanation"]


def summary_rows(summary: dict[str, Any]) -> list[list[str]]:
    """Rows per metric of a get_evaluation_summary result."""
    return [[name, fmt_int(m["count"]), fmt_score(m["mean"]), fmt_score(m["p10"]), fmt_score(m["min"]),
             fmt_score(m["max"])] for name, m in summary["metrics"].items()]


def distribution_figure(summary: dict[str, Any]) -> go.Figure:
    """Mean per metric with a bar from min to max and a marker at p10."""
    metrics = summary["metrics"]
    if not metrics:
        return charts.empty_figure("Score distributions", "No scores in this range")
    names = list(metrics)
    fig = go.Figure(layout={**charts.LAYOUT, "title": "Score distributions (bar: min–max, ◆ mean, ▼ p10)"})
    fig.add_trace(go.Bar(x=names, y=[m["max"] - m["min"] for m in metrics.values()],
                         base=[m["min"] for m in metrics.values()], name="min–max", opacity=0.4))
    fig.add_trace(go.Scatter(x=names, y=[m["mean"] for m in metrics.values()], mode="markers", name="mean",
                             marker={"symbol": "diamond", "size": 11}))
    fig.add_trace(go.Scatter(x=names, y=[m["p10"] for m in metrics.values()], mode="markers", name="p10",
                             marker={"symbol": "triangle-down", "size": 10}))
    return fig


def refresh(ctx: AppContext, range_label: str, model: str = "", source: str = "") -> tuple[Any, ...]:
    """Callback: summary rows, the distribution figure and a status line."""
    try:
        start, end = range_bounds(range_label)
        summary = get_evaluation_summary(model_name=(model or "").strip() or None, start=start, end=end,
                                         source=(source or "").strip() or None, database_url=ctx.database_url)
    except ValueError as exc:
        return [], charts.empty_figure("Score distributions"), f"Error: {exc}"
    rows = summary_rows(summary)
    status = f"{len(rows)} metrics" if rows else "No evaluation scores in this range yet."
    return rows, distribution_figure(summary), status


def playground(prompt: str, response: str, task_type: str, model: str = "") -> tuple[list[list[str]], str]:
    """Callback: score one prompt/response with the configured evaluator, without storing anything."""
    if not (response or "").strip():
        return [], "Error: Paste a response to evaluate."
    try:
        result = LLMEvaluator().evaluate_response((model or "").strip() or None, prompt or "", response,
                                                  task_type=task_type or "general", store=False)
    except ValueError as exc:
        return [], f"Error: {exc}"
    rows = [[name, fmt_score(ms.value), cell(ms.label), cell(ms.explanation)]
            for name, ms in result.metric_scores().items()]
    return rows, f"Quality {fmt_score(result.quality_score)} ({result.backend})"


def build(ctx: AppContext) -> tuple[Any, list[Any], list[Any]]:
    """Render the tab; returns (load fn, inputs, outputs)."""
    with gr.Row():
        rng = gr.Dropdown(list(RANGES), value=DEFAULT_RANGE, label="Time range", elem_id="evals-range")
        model = gr.Textbox(label="Model", placeholder="any", elem_id="evals-model")
        source = gr.Dropdown(["", "heuristic", "embedding", "llm_judge", "human", "custom"], value="",
                             label="Source", elem_id="evals-source")
        refresh_button = gr.Button("Refresh", elem_id="evals-refresh")
    status = gr.Textbox(show_label=False, container=False, interactive=False, elem_id="evals-status")
    table = gr.Dataframe(headers=SUMMARY_HEADERS, datatype="str", interactive=False, elem_id="evals-table",
                         label="Stored scores")
    plot = gr.Plot(label="Score distributions", elem_id="evals-plot")
    with gr.Accordion("Playground", open=True):
        with gr.Row():
            prompt = gr.Textbox(label="Prompt", lines=4, elem_id="play-prompt")
            response = gr.Textbox(label="Response", lines=4, elem_id="play-response")
        with gr.Row():
            task = gr.Dropdown(list(TASK_TYPES), value="general", label="Task type", elem_id="play-task")
            play_model = gr.Textbox(label="Model (optional)", elem_id="play-model")
            run = gr.Button("Evaluate", variant="primary", elem_id="play-run")
        play_status = gr.Textbox(show_label=False, container=False, interactive=False, elem_id="play-status")
        scores = gr.Dataframe(headers=PLAYGROUND_HEADERS, datatype="str", interactive=False, elem_id="play-table",
                              label="Scores", wrap=True)
    inputs, outputs = [rng, model, source], [table, plot, status]

    def fn(*args: str) -> tuple[Any, ...]:
        return refresh(ctx, *args)

    listen(ctx, [refresh_button.click, rng.change, model.submit, source.change], fn, inputs, outputs)
    listen(ctx, run.click, playground, [prompt, response, task, play_model], [scores, play_status])
    return fn, inputs, outputs
