"""The dashboard: ``create_app`` builds the gr.Blocks from one module per tab; ``serve`` checks the bind address
against authentication and launches it.

>>> app = create_app(database_url="sqlite:///data/llmobs.db")   # doctest: +SKIP
>>> serve(app, host="127.0.0.1", port=7860)                       # doctest: +SKIP
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from typing import Any

import gradio as gr

import llmobs
from llmobs.config import ConfigError
from llmobs.store.db import display_url, ensure_schema, get_engine, is_unreachable
from llmobs.ui import health
from llmobs.ui.state import AppContext
from llmobs.ui.tabs import alerts, errors, evaluations, export, models, overview, performance, review, traces

TITLE = "llmobs dashboard"
# (tab label, module, elem id) in display order; the elem id is also the gr.Tab id other tabs select.
TABS = [("Overview", overview, "tab-overview"), ("Traces", traces, traces.TAB_ID),
        ("Performance", performance, "tab-performance"), ("Models", models, "tab-models"),
        ("Errors", errors, "tab-errors"), ("Manual review", review, "tab-review"),
        ("Alerts", alerts, "tab-alerts"), ("Evaluations", evaluations, "tab-evaluations"),
        ("Export", export, "tab-export")]
CSS = f"#{health.BANNER_ID} textarea {{ background: #fdecea; color: #8a1c12; font-weight: 600; }}"
log = logging.getLogger("llmobs")


def create_app(database_url: str | None = None, *, auto_refresh_seconds: float | None = None,
               retry_seconds: float = 5.0) -> gr.Blocks:
    """The dashboard as a gr.Blocks reading ``database_url`` (default: the configured database).

    A given ``database_url`` is also configured for llmobs, so human scores entered in the app land there. While
    the database cannot be reached every tab shows a banner; the app checks it every ``retry_seconds`` (0: only
    when a tab refreshes) and reloads every tab when it answers again. It also starts with the database down.

    >>> create_app("sqlite:///data/llmobs.db").launch()   # doctest: +SKIP
    """
    if database_url:
        llmobs.configure(database_url=database_url)
    settings = llmobs.get_settings()
    engine = get_engine(database_url)
    try:
        ensure_schema(engine)
    except Exception as exc:
        if not is_unreachable(exc):
            raise
        log.warning("llmobs.ui: database %s unreachable at start (%s); the dashboard shows a banner until it "
                    "answers", display_url(engine.url), type(exc).__name__)
    period = settings.get("dashboard.auto_refresh_seconds") if auto_refresh_seconds is None else auto_refresh_seconds
    ctx = AppContext(engine=engine, auto_refresh_seconds=float(period), retry_seconds=float(retry_seconds))
    with gr.Blocks(title=TITLE, analytics_enabled=False) as app:
        gr.Markdown(f"# {TITLE}")  # static, trusted text only
        ctx.shared.banner = gr.Textbox(visible=False, show_label=False, interactive=False, container=False,
                                       elem_id=health.BANNER_ID)
        loaders: list[health.Loader] = []
        with gr.Tabs() as tabs:
            ctx.shared.tabs = tabs
            for label, module, elem_id in TABS:
                with gr.Tab(label, id=elem_id, elem_id=elem_id):
                    built = module.build(ctx)
                    loaders.extend(built if isinstance(built, list) else [built])
        for fn, inputs, outputs in loaders:
            if fn is not None:
                health.listen(ctx, app.load, fn, inputs, outputs)
        health.watch(ctx, loaders)
    return app


def parse_auth(value: str | None, name: str = "auth") -> tuple[str, str] | None:
    """('user', 'password') from 'user:password'; None for None/''; ConfigError naming the key otherwise."""
    if value is None or value == "":
        return None
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise ConfigError(f"llmobs config: {name} = '***' is invalid: must be 'user:password' "
                          "(both non-empty, separated by the first ':')")
    return user, password


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, auth: tuple[str, str] | None, no_auth: bool = False) -> None:
    """Refuse (ConfigError) to serve a non-loopback address without authentication unless ``no_auth`` says so."""
    if auth is None and not no_auth and not is_loopback(host):
        raise ConfigError(f"llmobs ui: refusing to bind {host!r} without authentication: anyone who can reach it "
                          "would see your prompts and responses. Set --auth user:password (or LLMOBS_UI_AUTH / "
                          "dashboard.auth), bind 127.0.0.1, or pass --no-auth to accept the risk.")


def serve(app: gr.Blocks | Callable[[], gr.Blocks], *, host: str | None = None, port: int | None = None,
          auth: str | None = None, no_auth: bool = False, block: bool = True) -> gr.Blocks:
    """Launch ``app`` (or the app a factory builds, after the checks) on host:port (defaults: dashboard.host /
    dashboard.port) with auth from the argument or dashboard.auth; raises ConfigError for a public address without
    auth (unless ``no_auth``)."""
    settings = llmobs.get_settings()
    host = host or settings.get("dashboard.host")
    port = settings.get("dashboard.port") if port is None else port
    credentials = None if no_auth else parse_auth(auth if auth is not None else settings.get("dashboard.auth"),
                                                  "--auth" if auth is not None else "dashboard.auth")
    check_bind(host, credentials, no_auth)
    if not isinstance(app, gr.Blocks):
        app = app()
    app.queue(default_concurrency_limit=4)
    app.launch(server_name=host, server_port=port, auth=credentials, prevent_thread_lock=not block, quiet=not block,
               share=False, footer_links=[], show_error=False, css=CSS)
    return app
