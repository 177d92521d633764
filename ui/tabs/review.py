"""Manual review tab: the newest generation without a human score in the chosen range and filters (model, user,
session, tag, source, and optionally an automatic quality score below a threshold), prompt and response side by
side; a 1-5 rating, thumbs up/down and a comment are stored as ``human`` scores, then the next item of the same
filters loads. Below, how well the automatic scores agree with the human ones (``analytics.score_agreement``),
refreshed after every review."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gradio as gr

import llmobs
from llmobs.analytics import HUMAN_RATING, HUMAN_THUMBS, score_agreement
from llmobs.analytics.traces import review_queue
from llmobs.ui.filters import filter_controls
from llmobs.ui.format import as_text, cell, fmt_int, fmt_pct, fmt_score
from llmobs.ui.health import listen
from llmobs.ui.state import RANGES, AppContext, build_filters

RATING_NAME = HUMAN_RATING
THUMBS_NAME = HUMAN_THUMBS
THUMBS = {"Thumbs up": 1.0, "Thumbs down": 0.0}
EMPTY_QUEUE = ("Nothing to review: every generation with an output in this range and these filters already has a "
               "human score.")
QUEUE_RANGE = "Last 30 days"
AGREEMENT_RANGE = "Last 30 days"
AGREEMENT_HEADERS = ["Metric", "Source", "Rated pairs", "Spearman ρ", "Mean |auto − human|", "Thumbs pairs",
                     "Thumbs agreement"]
AGREEMENT_NOTE = ("Spearman's rank correlation between each automatic score and the 1–5 rating normalised to 0..1 "
                  "((rating − 1) / 4); thumbs agreement: thumbs up with a score ≥ 0.5, thumbs down with < 0.5. "
                  "Toxicity, bias and hallucination are compared as 1 − score.")


def next_item(ctx: AppContext, range_label: str = QUEUE_RANGE, model: str = "", user_id: str = "",
              session_id: str = "", tag: str = "", source: str = "",
              quality_below: str | float | None = None) -> dict[str, Any] | None:
    """The newest generation started in the range, matching the filters, with an output and no human score (and,
    when ``quality_below`` is given, an automatic quality score below it), or None. ValueError for bad filters."""
    f = build_filters(range_label, model, user_id, session_id, tag, source)
    queue = review_queue(f, limit=1, quality_below=threshold(quality_below), engine=ctx.engine)
    return queue[0] if queue else None


def threshold(value: str | float | None) -> float | None:
    """The quality threshold typed in the filter box: blank means none; ValueError for text that is not a number."""
    if value is None or isinstance(value, (int, float)):
        return value
    text = value.strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"quality below = {text!r} is not a number; type e.g. 0.5, or leave it blank") from None


def item_view(item: dict[str, Any] | None) -> tuple[str, str, str, str, str, str]:
    """(span id, trace id, about line, prompt, response, status) for the review widgets."""
    if item is None:
        return "", "", "", "", "", EMPTY_QUEUE
    about = f"{cell(item['name'])} · {cell(item['model_name'])} · {cell(item['start_time'])}"
    return item["span_id"], item["trace_id"], about, as_text(item["input"]), as_text(item["output"]), ""


def load_item(ctx: AppContext, *queue: Any) -> tuple[str, str, str, str, str, str]:
    """Callback: the review widgets for the next item of the queue (``next_item``'s arguments), or the error."""
    try:
        return item_view(next_item(ctx, *queue))
    except ValueError as exc:
        return "", "", "", "", "", f"Error: {exc}"


def submit_review(ctx: AppContext, span_id: str, trace_id: str, rating: float | None, thumbs: str | None,
                  comment: str, author: str | None = None, queue: Sequence[Any] = ()) -> tuple[str, ...]:
    """Store the rating / thumbs (with the comment) as ``human`` scores, wait for the write, load the next item of
    the queue ``queue`` (``next_item``'s arguments after ``ctx``: range, filters, quality threshold).

    Nothing is stored when neither a rating nor thumbs is given (the status says so)."""
    if not span_id:
        view = load_item(ctx, *queue)
        return (*view[:5], view[5] or EMPTY_QUEUE)
    if rating is None and thumbs not in THUMBS:
        view = load_item(ctx, *queue)
        current = span_id == view[0]
        return (*view[:5], "Give a 1–5 rating or thumbs up/down before submitting." if current else view[5])
    text = (comment or "").strip() or None
    trace = trace_id or None
    if rating is not None:
        llmobs.score(RATING_NAME, float(rating), span_id=span_id, trace_id=trace, comment=text, source="human",
                     author=author)
    if thumbs in THUMBS:
        llmobs.score(THUMBS_NAME, THUMBS[thumbs], span_id=span_id, trace_id=trace, label=thumbs,
                     comment=None if rating is not None else text, source="human", author=author)
    llmobs.flush(timeout=10)
    view = load_item(ctx, *queue)
    return (*view[:5], f"Saved review of span {span_id}. " + (view[5] or "Next item loaded."))


def agreement(ctx: AppContext, range_label: str, model: str = "") -> tuple[list[list[str]], str]:
    """Callback: per automatic metric, its agreement with the human scores of generations in the range, and a
    status line with the number of paired items."""
    try:
        result = score_agreement(build_filters(range_label, model), engine=ctx.engine)
    except ValueError as exc:
        return [], f"Error: {exc}"
    rows = [[cell(m["name"]) + (" (1 − score)" if m["inverted"] else ""), cell(m["source"]), fmt_int(m["pairs"]),
             fmt_score(m["spearman"]), fmt_score(m["mean_abs_diff"]), fmt_int(m["thumbs_pairs"]),
             fmt_pct(m["thumbs_agreement"])] for m in result["metrics"]]
    if not result["paired_items"]:
        return rows, (f"No reviewed generation in this range has automatic scores yet ({result['human_items']} "
                      "reviewed). Run evaluators in the Evaluations tab to compare.")
    return rows, (f"Paired items: {result['paired_items']} (reviewed generations with automatic scores; "
                  f"{result['human_items']} reviewed in all). {AGREEMENT_NOTE}")


def build(ctx: AppContext) -> tuple[Any, list[Any], list[Any]]:
    """Render the tab; returns (load fn, inputs, outputs)."""
    controls = filter_controls("review", QUEUE_RANGE)
    with gr.Row():
        quality_below = gr.Textbox(label="Automatic quality score below", placeholder="any (e.g. 0.5)",
                                   elem_id="review-quality-below", scale=1)
        skip = gr.Button("Load queue", elem_id="review-reload", scale=1)
    span_id = gr.Textbox(label="Span id", interactive=False, elem_id="review-span-id")
    trace_id = gr.Textbox(label="Trace id", interactive=False, visible=False)
    about = gr.Textbox(label="Generation", interactive=False, elem_id="review-about")
    with gr.Row():
        prompt = gr.Textbox(label="Prompt", lines=10, max_lines=40, interactive=False, elem_id="review-prompt")
        response = gr.Textbox(label="Response", lines=10, max_lines=40, interactive=False, elem_id="review-response")
    with gr.Row():
        rating = gr.Radio([1, 2, 3, 4, 5], label="Rating (1 = poor, 5 = excellent)", elem_id="review-rating")
        thumbs = gr.Radio(list(THUMBS), label="Thumbs", elem_id="review-thumbs")
    comment = gr.Textbox(label="Comment", lines=2, elem_id="review-comment")
    submit = gr.Button("Submit review", variant="primary", elem_id="review-submit")
    status = gr.Textbox(show_label=False, container=False, interactive=False, elem_id="review-status")
    with gr.Accordion("Agreement between human and automatic scores", open=True):
        with gr.Row():
            agree_range = gr.Dropdown(list(RANGES), value=AGREEMENT_RANGE, label="Generations started in",
                                      elem_id="agreement-range")
            agree_model = gr.Textbox(label="Model", placeholder="any", elem_id="agreement-model")
            agree_refresh = gr.Button("Refresh", elem_id="agreement-refresh")
        agree_status = gr.Textbox(show_label=False, container=False, interactive=False, elem_id="agreement-status")
        agree_table = gr.Dataframe(headers=AGREEMENT_HEADERS, datatype="str", interactive=False,
                                   elem_id="agreement-table", label="Agreement per automatic metric")
    item_outputs = [span_id, trace_id, about, prompt, response, status]
    agree_inputs, agree_outputs = [agree_range, agree_model], [agree_table, agree_status]
    _, queue_inputs, _ = controls.wire(ctx, skip, lambda *queue: load_item(ctx, *queue), item_outputs,
                                       [quality_below])

    def load_agreement(range_label: str, model: str) -> tuple[Any, ...]:
        return agreement(ctx, range_label, model)

    def load(*args: Any) -> tuple[Any, ...]:
        queue, (range_label, model) = args[:len(queue_inputs)], args[len(queue_inputs):]
        return (*load_item(ctx, *queue), *agreement(ctx, range_label, model))

    def on_submit(sid: str, tid: str, r: Any, th: Any, c: str, range_label: str, model: str, user_id: str,
                  session_id: str, tag: str, source: str, below: str, request: gr.Request) -> tuple[Any, ...]:
        author = getattr(request, "username", None) if request is not None else None
        queue = (range_label, model, user_id, session_id, tag, source, below)
        return (*submit_review(ctx, sid, tid, r, th, c, author, queue), None, None, "")

    submitted = listen(ctx, submit.click, on_submit, [span_id, trace_id, rating, thumbs, comment, *queue_inputs],
                       [*item_outputs, rating, thumbs, comment])
    listen(ctx, submitted.then, load_agreement, agree_inputs, agree_outputs)
    listen(ctx, [agree_refresh.click, agree_range.change, agree_model.submit], load_agreement, agree_inputs,
           agree_outputs)
    return load, [*queue_inputs, *agree_inputs], [*item_outputs, *agree_outputs]
