"""Export tab: download the spans, traces or evaluations of the chosen range and filters as CSV, JSON or JSONL,
written by ``analytics.export``."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

import gradio as gr

from llmobs import analytics
from llmobs.ui.filters import filter_controls
from llmobs.ui.health import listen
from llmobs.ui.state import AppContext, build_filters

KINDS = ["all", "generation", "span", "chain", "tool", "retriever", "embedding", "agent", "evaluator"]


def export_file(ctx: AppContext, table: str, fmt: str, kind: str, range_label: str, model: str = "",
                user_id: str = "", session_id: str = "", tag: str = "", source: str = "",
                directory: str | None = None) -> tuple[str | None, str]:
    """Callback: write the export to a new file; returns (path, status line). Errors come back in the status."""
    try:
        f = build_filters(range_label, model, user_id, session_id, tag, source, kind=kind or "all")
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        folder = Path(directory or tempfile.mkdtemp(prefix="llmobs-export-"))
        path = folder / f"llmobs-{table}-{stamp}.{fmt}"
        count = analytics.export(path, fmt, table, filters=f, engine=ctx.engine)
    except ValueError as exc:
        return None, f"Error: {exc}"
    return str(path), f"Exported {count:,} {table} rows to {path.name}."


def build(ctx: AppContext) -> tuple[Any, list[Any], list[Any]]:
    """Render the tab; it loads nothing on page load."""
    controls = filter_controls("export")
    with gr.Row():
        table = gr.Dropdown(list(analytics.EXPORT_TABLES), value="spans", label="Table", elem_id="export-table")
        fmt = gr.Dropdown(list(analytics.EXPORT_FORMATS), value="csv", label="Format", elem_id="export-format")
        kind = gr.Dropdown(KINDS, value="all", label="Span kind (spans only)", elem_id="export-kind")
    button = gr.Button("Export", variant="primary", elem_id="export-go")
    status = gr.Textbox(show_label=False, container=False, interactive=False, elem_id="export-status")
    out = gr.File(label="Download", elem_id="export-file")

    def fn(*args: str) -> tuple[str | None, str]:
        return export_file(ctx, *args)

    listen(ctx, button.click, fn, [table, fmt, kind, *controls.inputs()], [out, status])
    return None, [], []
