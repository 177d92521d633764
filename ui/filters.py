"""The shared controls: time range and the model/user/session/tag/source filter boxes, built once per tab."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import gradio as gr

from llmobs.ui.health import listen
from llmobs.ui.state import DEFAULT_RANGE, RANGES, AppContext


@dataclass
class FilterControls:
    """The Gradio components holding one tab's range and filters (in ``inputs()`` order)."""

    range: gr.Dropdown
    model: gr.Textbox
    user_id: gr.Textbox
    session_id: gr.Textbox
    tag: gr.Textbox
    source: gr.Textbox

    def inputs(self) -> list[gr.components.Component]:
        """The components in the argument order of ``state.build_filters``."""
        return [self.range, self.model, self.user_id, self.session_id, self.tag, self.source]

    def triggers(self) -> list[Any]:
        """The events that re-apply the filters: a range change and Enter in any filter box."""
        return [self.range.change, *(box.submit for box in self.inputs()[1:])]

    def wire(self, ctx: AppContext, refresh_button: gr.Button, refresh: Callable[..., Any], outputs: list[Any],
             extra: Sequence[gr.Textbox] = ()) -> tuple[Callable[..., Any], list[Any], list[Any]]:
        """Re-run ``refresh`` (guarded) on the button, the filter triggers or Enter in an ``extra`` box (passed to
        ``refresh`` after the filters); returns (fn, inputs, outputs)."""
        inputs = [*self.inputs(), *extra]
        listen(ctx, [refresh_button.click, *self.triggers(), *(box.submit for box in extra)], refresh, inputs,
               outputs)
        return refresh, inputs, outputs


def filter_controls(prefix: str, default_range: str = DEFAULT_RANGE) -> FilterControls:
    """Render a row of range + filter controls; ``prefix`` keeps element ids unique per tab."""
    with gr.Row():
        rng = gr.Dropdown(list(RANGES), value=default_range, label="Time range", elem_id=f"{prefix}-range",
                          scale=2)
        boxes = [gr.Textbox(label=label, placeholder="any", elem_id=f"{prefix}-{key}", scale=1)
                 for key, label in (("model", "Model"), ("user", "User"), ("session", "Session"), ("tag", "Tag"),
                                    ("source", "Source"))]
    return FilterControls(rng, *boxes)
