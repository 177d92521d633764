"""Evaluations tab: stored score distributions (count, mean, p10, min, max per metric) for the range and model;
running the evaluators on one span or on every generation of the filtered range, with progress; and a playground
that scores a pasted prompt/response with explanations (nothing is stored)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gradio as gr
import plotly.graph_objects as go

from llmobs.analytics import Filters, list_spans
from llmobs.evaluation import LLMEvaluator, evaluate_spans, get_evaluation_summary
from llmobs.evaluation.evaluator import available_backends
from llmobs.evaluation.heuristic import TASK_TYPES
from llmobs.ui import charts
from llmobs.ui.format import cell, fmt_int, fmt_score
from llmobs.ui.health import listen
from llmobs.ui.state import RANGES, DEFAULT_RANGE, AppContext, build_filters, range_bounds

SUMMARY_HEADERS = ["Metric", "Count", "Mean", "p10", "Min", "Max"]
PLAYGROUND_HEADERS = ["Metric", "Score", "Label", "Explanation"]
SCOPE_SPAN = "Selected span"
SCOPE_RANGE = "All generations in the filtered range"
MAX_SPAN_CHOICES = 200
# Progress(fraction, desc=...): gr.Progress in the app, any callable in tests.
ProgressFn = Callable[..., Any]


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


def span_choices(ctx: AppContext, range_label: str, model: str = "", user_id: str = "", session_id: str = "",
                 tag: str = "") -> list[tuple[str, str]]:
    """(label, span id) of the newest generations with an output in the filtered range, for the span picker."""
    f = build_filters(range_label, model, user_id, session_id, tag)
    spans = list_spans(f, limit=MAX_SPAN_CHOICES, with_output=True, engine=ctx.engine)
    return [(f"{cell(s['name'])} · {cell(s['model_name']) or 'no model'} · {cell(s['start_time'])} · {s['span_id']}",
             s["span_id"]) for s in spans]


def run_evaluation(ctx: AppContext, scope: str, span_id: str | None, range_label: str, model: str = "",
                   user_id: str = "", session_id: str = "", tag: str = "", backend: str = "heuristic",
                   task_type: str = "general", progress: ProgressFn | None = None) -> str:
    """Callback: score the selected span, or every generation of the filtered range, that ``backend`` has not
    scored yet (``llmobs.evaluation.evaluate_spans``, the code path of ``llmobs evaluate --spans`` and the
    scheduler), reporting progress as a fraction; returns the status line with the counts."""
    report_progress = progress or (lambda *_a, **_k: None)
    try:
        if scope == SCOPE_SPAN:
            chosen = (span_id or "").strip().lower()
            if not chosen:
                return "Error: Pick a generation from the list (or paste a span id) first."
            # A span named by id is scored whatever its kind and start time.
            selection: dict[str, Any] = {"filters": Filters(kind=None), "span_ids": [chosen]}
        elif scope == SCOPE_RANGE:
            selection = {"filters": build_filters(range_label, model, user_id, session_id, tag)}
        else:
            return f"Error: scope={scope!r} is unknown; choose {SCOPE_SPAN!r} or {SCOPE_RANGE!r}."
        report_progress(0.0, desc="Finding spans to score")
        report = evaluate_spans(backend=backend or None, task_type=task_type or "general",
                                progress=lambda done, total: report_progress(done / total if total else 1.0,
                                                                             desc=f"Scored {done} of {total} spans"),
                                **selection)
    except (ValueError, ImportError) as exc:
        return f"Error: {exc}"
    report_progress(1.0, desc="Done")
    return run_status(report, scope)


def run_status(report: Any, scope: str) -> str:
    """What a run did, in one line: spans scored and rows stored, spans skipped as already scored, failures."""
    version = report.evaluator_version
    if report.considered == 0 and report.already_scored == 0:
        return ("No finished span with an output has that id." if scope == SCOPE_SPAN else
                "No finished generations with an output in this range and filters.")
    parts = [f"Scored {fmt_int(report.scored)} span(s) with {version}: {fmt_int(report.rows)} evaluation rows stored"]
    if report.already_scored:
        parts.append(f"{fmt_int(report.already_scored)} already scored by {version} (skipped)")
    if report.sampled_out:
        parts.append(f"{fmt_int(report.sampled_out)} left out by sampling")
    if report.failed:
        parts.append(f"{fmt_int(report.failed)} failed (see the llmobs log)")
    return "; ".join(parts) + "."


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
    with gr.Accordion("Run evaluators on stored generations", open=True):
        gr.Markdown("Scores spans the chosen backend has not scored yet (re-running adds nothing twice). The range "
                    "and model above apply, with these filters.")
        with gr.Row():
            user = gr.Textbox(label="User", placeholder="any", elem_id="run-user")
            session = gr.Textbox(label="Session", placeholder="any", elem_id="run-session")
            tag = gr.Textbox(label="Tag", placeholder="any", elem_id="run-tag")
        with gr.Row():
            scope = gr.Radio([SCOPE_RANGE, SCOPE_SPAN], value=SCOPE_RANGE, label="Evaluate", elem_id="run-scope")
            span = gr.Dropdown([], value=None, label="Generation (or paste a span id)", allow_custom_value=True,
                               elem_id="run-span", scale=2)
        with gr.Row():
            backends = available_backends()
            backend = gr.Dropdown(backends, value=backends[0], label="Backend", elem_id="run-backend")
            run_task = gr.Dropdown(list(TASK_TYPES), value="general", label="Task type (unless the span says)",
                                   elem_id="run-task")
            run = gr.Button("Run evaluators", variant="primary", elem_id="run-go")
        run_status_box = gr.Textbox(show_label=False, container=False, interactive=False, elem_id="run-status")
    with gr.Accordion("Playground", open=True):
        with gr.Row():
            prompt = gr.Textbox(label="Prompt", lines=4, elem_id="play-prompt")
            response = gr.Textbox(label="Response", lines=4, elem_id="play-response")
        with gr.Row():
            task = gr.Dropdown(list(TASK_TYPES), value="general", label="Task type", elem_id="play-task")
            play_model = gr.Textbox(label="Model (optional)", elem_id="play-model")
            run_play = gr.Button("Evaluate", variant="primary", elem_id="play-run")
        play_status = gr.Textbox(show_label=False, container=False, interactive=False, elem_id="play-status")
        scores = gr.Dataframe(headers=PLAYGROUND_HEADERS, datatype="str", interactive=False, elem_id="play-table",
                              label="Scores", wrap=True)
    inputs, outputs = [rng, model, source, user, session, tag], [table, plot, status, span]

    def fn(range_label: str, model_name: str, source_name: str, user_id: str, session_id: str,
           tag_name: str) -> tuple[Any, ...]:
        shown = refresh(ctx, range_label, model_name, source_name)
        try:
            choices = span_choices(ctx, range_label, model_name, user_id, session_id, tag_name)
        except ValueError:
            choices = []
        return (*shown, gr.Dropdown(choices=choices))

    def on_run(scope_value: str, span_value: str | None, range_label: str, model_name: str, user_id: str,
               session_id: str, tag_name: str, backend_name: str, task_type: str,
               progress: gr.Progress = gr.Progress()) -> str:
        return run_evaluation(ctx, scope_value, span_value, range_label, model_name, user_id, session_id, tag_name,
                              backend_name, task_type, progress)

    listen(ctx, [refresh_button.click, rng.change, model.submit, source.change, user.submit, session.submit,
                 tag.submit], fn, inputs, outputs)
    # One run at a time: two overlapping runs over one range could both score a span before either stored it.
    ran = listen(ctx, run.click, on_run, [scope, span, rng, model, user, session, tag, backend, run_task],
                 [run_status_box], concurrency_limit=1, concurrency_id="llmobs-evaluate-spans")
    listen(ctx, ran.then, fn, inputs, outputs)
    listen(ctx, run_play.click, playground, [prompt, response, task, play_model], [scores, play_status])
    return fn, inputs, outputs
