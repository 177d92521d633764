"""Traces tab: a searchable, filterable, paginated trace list; selecting a trace shows its span tree, a waterfall
and every span's input, output, metadata, model, tokens, cost and error (always as plain text)."""

from __future__ import annotations

from typing import Any

import gradio as gr
import plotly.graph_objects as go

from llmobs.analytics.traces import list_traces, trace_spans
from llmobs.ui import charts
from llmobs.ui.filters import filter_controls
from llmobs.ui.format import as_text, cell, fmt_int, fmt_ms, fmt_usd
from llmobs.ui.health import listen
from llmobs.ui.state import AppContext, TraceLink, build_filters

TAB_ID = "tab-traces"
PAGE_SIZE = 25
# Counting stops here: over millions of traces an exact count costs seconds, and "10,000+" says enough.
COUNT_LIMIT = 10_000
LIST_HEADERS = ["Trace id", "Name", "User", "Start", "Duration", "Status", "Tokens", "Cost"]
TREE_HEADERS = ["Span", "Kind", "Start offset", "Duration", "Status", "Model", "Tokens", "Cost", "Span id"]
DETAIL_FIELDS = ("input", "output", "metadata", "model", "tokens", "cost", "error")
EMPTY_LIST = "No traces in this range. Widen the time range or clear the filters."


def trace_page(ctx: AppContext, range_label: str, model: str = "", user_id: str = "", session_id: str = "",
               tag: str = "", source: str = "", search: str = "", page: int | float = 1
               ) -> tuple[list[list[str]], str]:
    """Callback: one page of the trace list as plain-string rows, and a status line ('Page 1 of 3 · 60 traces')."""
    try:
        f = build_filters(range_label, model, user_id, session_id, tag, source, kind=None)
        result = list_traces(f, search=search, page=max(1, int(page or 1)), page_size=PAGE_SIZE,
                             count_limit=COUNT_LIMIT, engine=ctx.engine)
    except ValueError as exc:
        return [], f"Error: {exc}"
    if not result["total"]:
        return [], EMPTY_LIST
    rows = [[cell(r["trace_id"]), cell(r["name"]), cell(r["user_id"]), cell(r["start_time"]),
             fmt_ms(r["duration_ms"]), cell(r["status"]), fmt_int(r["total_tokens"]), fmt_usd(r["cost_usd"])]
            for r in result["rows"]]
    more = "+" if result["total_capped"] else ""
    return rows, f"Page {result['page']} of {result['pages']}{more} · {result['total']}{more} traces"


def span_tree_rows(spans: list[dict[str, Any]]) -> list[list[str]]:
    """The span tree as rows, depth shown by indentation of the name."""
    if not spans:
        return []
    origin = min(s["start_time"] for s in spans)
    return [["    " * depth + ("└ " if depth else "") + cell(s["name"]), cell(s["kind"]),
             fmt_ms((s["start_time"] - origin).total_seconds() * 1000), fmt_ms(s["duration_ms"]), cell(s["status"]),
             cell(s["model_name"]), fmt_int(s["total_tokens"]), fmt_usd(s["cost_usd"]), cell(s["id"])]
            for depth, s in charts.tree_order(spans)]


def span_detail(span: dict[str, Any] | None) -> list[str]:
    """Texts for the detail boxes in DETAIL_FIELDS order."""
    if span is None:
        return [""] * len(DETAIL_FIELDS)
    tokens = (f"prompt {fmt_int(span['prompt_tokens'])} · completion {fmt_int(span['completion_tokens'])} · "
              f"total {fmt_int(span['total_tokens'])}")
    error = "" if span["status"] != "error" else "\n".join(
        x for x in (span.get("error_type"), span.get("error_message"), span.get("error_traceback")) if x)
    return [as_text(span["input"]), as_text(span["output"]), as_text(span.get("metadata")),
            " / ".join(x for x in (span.get("model_name"), span.get("provider")) if x), tokens,
            fmt_usd(span["cost_usd"]), error]


def open_trace(ctx: AppContext, trace_id: str) -> tuple[list[list[str]], go.Figure, dict[str, Any], list[str], str]:
    """Callback: span tree rows, waterfall, span picker update, first span's details, and a status line."""
    trace_id = (trace_id or "").strip()
    spans = trace_spans(trace_id, engine=ctx.engine) if trace_id else []
    if not spans:
        message = "Select a trace in the list above." if not trace_id else f"No spans stored for trace {trace_id}."
        return [], charts.empty_figure("Span timeline", "No trace selected"), gr.update(choices=[], value=None), \
            span_detail(None), message
    choices = [(f"{'  ' * d}{s['name']} [{s['id']}]", s["id"]) for d, s in charts.tree_order(spans)]
    first = charts.tree_order(spans)[0][1]
    return (span_tree_rows(spans), charts.waterfall_figure(spans), gr.update(choices=choices, value=first["id"]),
            span_detail(first), f"Trace {trace_id}: {len(spans)} spans")


def show_span(ctx: AppContext, trace_id: str, span_id: str | None) -> list[str]:
    """Callback: the detail texts of one span of the open trace."""
    spans = trace_spans((trace_id or "").strip(), engine=ctx.engine) if trace_id and span_id else []
    return span_detail(next((s for s in spans if s["id"] == span_id), None))


def selected_cell(evt: gr.SelectData, rows: Any, column: int) -> str:
    """The value in ``column`` of the row a Dataframe select event points at ('' when it points nowhere)."""
    row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
    try:
        return str(rows.iloc[row, column])
    except (AttributeError, IndexError, TypeError):
        return ""


def open_on_select(ctx: AppContext, table: gr.Dataframe, column: int, *, switch_tab: bool = False) -> None:
    """Clicking a row of ``table`` opens the trace whose id is in ``column`` in the Traces tab, selecting that tab
    first when ``switch_tab`` (for links from other tabs)."""
    link = ctx.shared.trace_link
    if link is None:
        raise RuntimeError("llmobs.ui: the Traces tab must be built before a tab that links to it")
    tabs = [ctx.shared.tabs] if switch_tab and ctx.shared.tabs is not None else []

    def pick(evt: gr.SelectData, rows: Any) -> Any:
        trace_id = selected_cell(evt, rows, column)
        if not tabs:
            return trace_id
        return (trace_id, gr.Tabs(selected=link.tab_id)) if trace_id else (gr.skip(), gr.skip())

    chosen = listen(ctx, table.select, pick, [table], [link.trace_id, *tabs])
    listen(ctx, chosen.then, link.open, [link.trace_id], link.outputs)


def build(ctx: AppContext) -> tuple[Any, list[Any], list[Any]]:
    """Render the tab; returns (load fn, inputs, outputs) for the page-load event."""
    controls = filter_controls("traces")
    with gr.Row():
        search = gr.Textbox(label="Search (id, name, user, session)", elem_id="traces-search", scale=4)
        page = gr.Number(value=1, minimum=1, precision=0, label="Page", elem_id="traces-page", scale=1)
        go_button = gr.Button("Search", elem_id="traces-go", scale=1)
    status = gr.Textbox(show_label=False, container=False, interactive=False, elem_id="traces-status")
    table = gr.Dataframe(headers=LIST_HEADERS, datatype="str", interactive=False, elem_id="traces-table",
                         label="Traces (click a row to open it)")
    with gr.Row():
        trace_id = gr.Textbox(label="Trace id", elem_id="traces-trace-id", scale=4)
        open_button = gr.Button("Open trace", elem_id="traces-open", scale=1)
    trace_status = gr.Textbox(show_label=False, container=False, interactive=False, elem_id="traces-trace-status")
    tree = gr.Dataframe(headers=TREE_HEADERS, datatype="str", interactive=False, elem_id="traces-tree",
                        label="Span tree")
    waterfall = gr.Plot(label="Timeline", elem_id="traces-waterfall")
    span_pick = gr.Dropdown(choices=[], label="Span", elem_id="traces-span", interactive=True)
    with gr.Row():
        span_input = gr.Textbox(label="Input", lines=8, max_lines=30, interactive=False, elem_id="span-input")
        span_output = gr.Textbox(label="Output", lines=8, max_lines=30, interactive=False, elem_id="span-output")
    with gr.Row():
        span_meta = gr.Textbox(label="Metadata", lines=4, max_lines=20, interactive=False, elem_id="span-metadata")
        with gr.Column():
            span_model = gr.Textbox(label="Model", interactive=False, elem_id="span-model")
            span_tokens = gr.Textbox(label="Tokens", interactive=False, elem_id="span-tokens")
            span_cost = gr.Textbox(label="Cost", interactive=False, elem_id="span-cost")
    span_error = gr.Textbox(label="Error", lines=3, max_lines=20, interactive=False, elem_id="span-error")
    details = [span_input, span_output, span_meta, span_model, span_tokens, span_cost, span_error]

    inputs, outputs = [*controls.inputs(), search, page], [table, status]

    def list_fn(*args: Any) -> tuple[list[list[str]], str]:
        return trace_page(ctx, *args)

    def open_fn(tid: str) -> tuple[Any, ...]:
        rows, fig, pick, detail, message = open_trace(ctx, tid)
        return (rows, fig, pick, *detail, message)

    def tree_select_fn(evt: gr.SelectData, rows: Any, tid: str) -> tuple[Any, ...]:
        sid = selected_cell(evt, rows, len(TREE_HEADERS) - 1)
        return (gr.update(value=sid or None), *show_span(ctx, tid, sid))

    listen(ctx, [go_button.click, search.submit, page.submit, *controls.triggers()], list_fn, inputs, outputs)
    open_outputs = [tree, waterfall, span_pick, *details, trace_status]
    ctx.shared.trace_link = TraceLink(trace_id, open_fn, open_outputs, TAB_ID)
    open_on_select(ctx, table, 0)
    listen(ctx, [open_button.click, trace_id.submit], open_fn, [trace_id], open_outputs)
    listen(ctx, tree.select, tree_select_fn, [tree, trace_id], [span_pick, *details])
    listen(ctx, span_pick.input, lambda tid, sid: show_span(ctx, tid, sid), [trace_id, span_pick], details)
    return list_fn, inputs, outputs
