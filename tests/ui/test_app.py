"""Running the dashboard: create_app builds every tab, and serving a public address without auth is refused."""

from __future__ import annotations

import gradio as gr
import pytest

from llmobs import cli
from llmobs.config import ConfigError
from llmobs.ui import create_app
from llmobs.ui.app import TABS, check_bind, parse_auth
from tests.support.databases import Store


def test_create_app_returns_blocks_with_every_tab(sqlite_store: Store) -> None:
    app = create_app(sqlite_store.url, auto_refresh_seconds=0)
    assert isinstance(app, gr.Blocks)
    outer = next(b for b in app.blocks.values() if isinstance(b, gr.Tabs))
    assert [t.label for t in outer.children] == [label for label, _, _ in TABS]
    alerts = next(t for t in outer.children if t.label == "Alerts")
    inner = next(b for b in alerts.children if isinstance(b, gr.Tabs))
    assert [t.label for t in inner.children] == ["Open alerts & rules", "History & statistics", "Channels"]


def test_auth_is_parsed_from_user_colon_password() -> None:
    assert parse_auth("admin:s3cr:et") == ("admin", "s3cr:et")
    assert parse_auth(None) is None and parse_auth("") is None
    with pytest.raises(ConfigError, match="must be 'user:password'"):
        parse_auth("admin")


def test_a_public_address_without_auth_is_refused_unless_no_auth() -> None:
    check_bind("127.0.0.1", None)
    check_bind("::1", None)
    check_bind("localhost", None)
    check_bind("0.0.0.0", ("u", "p"))
    check_bind("0.0.0.0", None, no_auth=True)
    with pytest.raises(ConfigError, match="refusing to bind '0.0.0.0' without authentication"):
        check_bind("0.0.0.0", None)


def test_cli_ui_refuses_a_public_address_without_auth(sqlite_store: Store, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("LLMOBS_UI_AUTH", raising=False)
    assert cli.main(["ui", "--database-url", sqlite_store.url, "--host", "0.0.0.0", "--port", "0"]) == 2
    assert "refusing to bind '0.0.0.0' without authentication" in capsys.readouterr().err
    assert cli.main(["ui", "--host", "0.0.0.0", "--auth", "nopassword"]) == 2
    assert "--auth = '***' is invalid" in capsys.readouterr().err


def test_served_app_with_auth_answers_401_until_the_user_logs_in(sqlite_store: Store) -> None:
    import http.cookiejar
    import socket
    import urllib.error
    import urllib.parse
    import urllib.request

    from llmobs.ui import serve

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = serve(lambda: create_app(sqlite_store.url, auto_refresh_seconds=0), host="127.0.0.1", port=port,
                auth="reviewer:s3cret", block=False)
    base = f"http://127.0.0.1:{port}"
    try:
        with pytest.raises(urllib.error.HTTPError) as denied:
            urllib.request.urlopen(base + "/config", timeout=10)
        assert denied.value.code == 401
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        login = urllib.parse.urlencode({"username": "reviewer", "password": "wrong"}).encode()
        with pytest.raises(urllib.error.HTTPError):
            opener.open(base + "/login", data=login, timeout=10)
        login = urllib.parse.urlencode({"username": "reviewer", "password": "s3cret"}).encode()
        assert opener.open(base + "/login", data=login, timeout=10).status == 200
        assert opener.open(base + "/config", timeout=10).status == 200
    finally:
        app.close()


def test_performance_auto_refresh_timer_follows_the_setting(sqlite_store: Store) -> None:
    def timers(app: gr.Blocks) -> list[tuple[float, bool]]:
        return [(b.value, b.active) for b in app.blocks.values() if isinstance(b, gr.Timer)]

    assert timers(create_app(sqlite_store.url, auto_refresh_seconds=5, retry_seconds=0)) == [(5, True)]
    # the second timer is the database health check
    assert timers(create_app(sqlite_store.url, auto_refresh_seconds=0, retry_seconds=7)) == [(1.0, False), (7, True)]
