"""Plotly figures for the dashboard: time series, the span waterfall, bars and score distributions.

Stored text (span, model and error names) is escaped with ``plot_text`` before it reaches a figure: Plotly reads a
few HTML tags (<a href>, <b>, <br>) in labels, and escaped entities make it draw them literally instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import html

import plotly.graph_objects as go

LAYOUT: dict[str, Any] = {"margin": {"l": 50, "r": 20, "t": 40, "b": 40}, "height": 320, "template": "plotly_white"}
KIND_COLORS = {"generation": "#636efa", "chain": "#00cc96", "tool": "#ffa15a", "retriever": "#19d3f3",
               "embedding": "#ab63fa", "agent": "#b6e880", "evaluator": "#ff97ff", "span": "#8c8c8c"}


def plot_text(value: Any) -> str:
    """Untrusted text as a Plotly label that shows literally (tags become entities Plotly draws as characters)."""
    return html.escape("" if value is None else str(value), quote=False)


def empty_figure(title: str, message: str = "No data in this range") -> go.Figure:
    """A figure that says there is nothing to draw (instead of an empty axis)."""
    fig = go.Figure(layout={**LAYOUT, "title": title})
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper", font={"size": 16})
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def timeseries_figure(rows: Sequence[dict[str, Any]], metrics: Sequence[str], title: str,
                      names: dict[str, str] | None = None) -> go.Figure:
    """Lines of ``metrics`` over the ``time`` of each analytics.timeseries row."""
    if not rows or not any(r.get(m) for r in rows for m in metrics):
        return empty_figure(title)
    fig = go.Figure(layout={**LAYOUT, "title": title})
    times = [r["time"] for r in rows]
    for m in metrics:
        fig.add_trace(go.Scatter(x=times, y=[r.get(m) for r in rows], mode="lines+markers",
                                 name=(names or {}).get(m, m),
                                 connectgaps=False))
    return fig


def bar_figure(labels: Sequence[str], values: Sequence[float | None], title: str) -> go.Figure:
    """A bar chart (models by requests, error types by count, ...)."""
    if not labels:
        return empty_figure(title)
    return go.Figure(go.Bar(x=[plot_text(x) for x in labels], y=[v or 0 for v in values]),
                     layout={**LAYOUT, "title": title})


def histogram_figure(values_by_name: dict[str, Sequence[float]], title: str) -> go.Figure:
    """Overlaid histograms of score values per metric name."""
    if not any(values_by_name.values()):
        return empty_figure(title, "No scores in this range")
    fig = go.Figure(layout={**LAYOUT, "title": title, "barmode": "overlay"})
    for name, values in values_by_name.items():
        fig.add_trace(go.Histogram(x=list(values), name=name, opacity=0.6, xbins={"start": 0, "end": 1.0001,
                                                                                   "size": 0.05}))
    return fig


def waterfall_figure(spans: Sequence[dict[str, Any]], title: str = "Span timeline") -> go.Figure:
    """A horizontal bar per span from its start offset to its end, indented by depth, in tree order."""
    if not spans:
        return empty_figure(title, "No spans")
    origin = min(s["start_time"] for s in spans)
    ordered = tree_order(spans)
    labels, starts, widths, colors, hover = [], [], [], [], []
    for depth, s in ordered:
        offset = (s["start_time"] - origin).total_seconds() * 1000
        labels.append(f"{'· ' * depth}{plot_text(s['name'])} [{s['id'][-6:]}]")
        starts.append(offset)
        widths.append(max(s.get("duration_ms") or 0.0, 0.5))
        colors.append("#ef553b" if s.get("status") == "error" else KIND_COLORS.get(s.get("kind") or "", "#8c8c8c"))
        hover.append(plot_text(f"{s.get('kind')} · {s.get('duration_ms') or 0:.1f} ms · {s.get('status')}"))
    fig = go.Figure(go.Bar(y=labels, x=widths, base=starts, orientation="h", marker_color=colors,
                           hovertext=hover, hoverinfo="text"),
                    layout={**LAYOUT, "title": title, "height": max(200, 40 + 28 * len(spans))})
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(title_text="ms since trace start")
    return fig


def tree_order(spans: Sequence[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """Spans depth-first from the roots (children by start time), each with its depth; orphans become roots."""
    ids = {s["id"] for s in spans}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for s in sorted(spans, key=lambda s: (s["start_time"], s["id"])):
        parent = s.get("parent_id") if s.get("parent_id") in ids else None
        children.setdefault(parent, []).append(s)
    out: list[tuple[int, dict[str, Any]]] = []
    stack = [(0, s) for s in reversed(children.get(None, []))]
    while stack:
        depth, s = stack.pop()
        out.append((depth, s))
        stack.extend((depth + 1, c) for c in reversed(children.get(s["id"], [])))
    return out
