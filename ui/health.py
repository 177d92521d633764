"""Database health for the dashboard: every callback is registered through ``listen``, whose guard turns "the
database cannot be reached" into a banner above the tabs (instead of Gradio's error toast), and ``watch`` pings the
database on a timer so the banner appears by itself and, when the database is back, goes away with every tab
reloaded.

>>> listen(ctx, button.click, refresh, inputs, outputs)   # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Callable, Sequence
from typing import Any

import gradio as gr

from llmobs.store.db import display_url, ensure_schema, is_unreachable, ping
from llmobs.ui.state import AppContext

log = logging.getLogger("llmobs")
BANNER_ID = "db-banner"
Loader = tuple[Callable[..., Any] | None, list[Any], list[Any]]


def banner_text(ctx: AppContext) -> str:
    """The banner shown while the database cannot be reached (password and query parameters masked).

    >>> banner_text(AppContext(make_engine("sqlite:////data/llmobs.db"), retry_seconds=5))   # doctest: +SKIP
    'Database unreachable: sqlite:////data/llmobs.db — retrying every 5 s; figures shown may be out of date.'
    """
    retry = f"retrying every {ctx.retry_seconds:g} s" if ctx.retry_seconds > 0 else "retrying at the next refresh"
    return f"Database unreachable: {display_url(ctx.engine.url)} — {retry}; figures shown may be out of date."


def banner_shown(ctx: AppContext) -> dict[str, Any]:
    """The update that shows the banner."""
    return gr.update(value=banner_text(ctx), visible=True)


def banner_hidden() -> dict[str, Any]:
    """The update that hides the banner."""
    return gr.update(value="", visible=False)


def guarded(ctx: AppContext, fn: Callable[..., Any], n_outputs: int) -> Callable[..., tuple[Any, ...]]:
    """``fn`` returning its ``n_outputs`` values plus a banner update: hidden on success; when the database cannot
    be reached, shown, with every other output left as it was. Other errors still raise.

    >>> guarded(ctx, lambda r: overview.refresh(ctx, r), 3)("Last 24 hours")[-1]["visible"]   # doctest: +SKIP
    False
    """

    @functools.wraps(fn)  # keeps the signature Gradio reads for gr.Request / gr.SelectData arguments
    def call(*args: Any, **kwargs: Any) -> tuple[Any, ...]:
        try:
            ensure_schema(ctx.engine)  # no-op once done; creates the tables of a database that was down at start
            result = fn(*args, **kwargs)
        except Exception as exc:
            if not is_unreachable(exc):
                raise
            _went_down(ctx, exc)
            return (*[gr.skip()] * n_outputs, banner_shown(ctx))
        _came_back(ctx)
        values: tuple[Any, ...] = () if n_outputs == 0 else (result,) if n_outputs == 1 else tuple(result)
        return (*values, banner_hidden())

    return call


def listen(ctx: AppContext, triggers: Any | Sequence[Any], fn: Callable[..., Any], inputs: list[Any],
           outputs: list[Any], **kwargs: Any) -> Any:
    """Register ``fn`` on one trigger (e.g. ``button.click``) or several, guarded, with the banner as an extra
    output; returns the Gradio dependency (for ``.then``)."""
    banner = ctx.shared.banner
    if banner is None:
        raise RuntimeError("llmobs.ui: the database banner must be created before tabs register events")
    wrapped = guarded(ctx, fn, len(outputs))
    if isinstance(triggers, (list, tuple)):
        return gr.on(list(triggers), wrapped, inputs, [*outputs, banner], **kwargs)
    return triggers(wrapped, inputs, [*outputs, banner], **kwargs)


def watch(ctx: AppContext, loaders: Sequence[Loader]) -> None:
    """Every ``ctx.retry_seconds`` ping the database: unreachable shows the banner; reachable again (banner shown)
    hides it and reruns every tab's loader, so the page recovers without a click."""
    if ctx.retry_seconds <= 0:
        return
    active = [(fn, ins, outs) for fn, ins, outs in loaders if fn is not None]
    inputs = [x for _, ins, _ in active for x in ins]
    outputs = [x for _, _, outs in active for x in outs]

    def tick(banner_value: str | None, *values: Any) -> tuple[Any, ...]:
        ping(ctx.engine)
        if not banner_value:
            return tuple(gr.skip() for _ in outputs)
        return reload_all(active, values)

    timer = gr.Timer(ctx.retry_seconds)
    listen(ctx, timer.tick, tick, [ctx.shared.banner, *inputs], outputs, show_progress="hidden")


def reload_all(loaders: Sequence[Loader], values: Sequence[Any]) -> tuple[Any, ...]:
    """Run each loader on its slice of ``values`` and concatenate their outputs."""
    out: list[Any] = []
    at = 0
    for fn, ins, outs in loaders:
        assert fn is not None
        result = fn(*values[at:at + len(ins)])
        at += len(ins)
        out.extend((result,) if len(outs) == 1 else result)
    return tuple(out)


def _went_down(ctx: AppContext, exc: BaseException) -> None:
    """Log the start of an outage once (not at every retry)."""
    if ctx.shared.down_since is None:
        ctx.shared.down_since = dt.datetime.now(dt.timezone.utc)
        log.warning("llmobs.ui: database %s unreachable (%s: %s); showing the banner and retrying",
                    display_url(ctx.engine.url), type(exc).__name__, str(exc).splitlines()[0][:300] if str(exc) else "")


def _came_back(ctx: AppContext) -> None:
    """Log the end of an outage once."""
    since = ctx.shared.down_since
    if since is not None:
        ctx.shared.down_since = None
        log.warning("llmobs.ui: database %s reachable again after %.0f s", display_url(ctx.engine.url),
                    (dt.datetime.now(dt.timezone.utc) - since).total_seconds())
