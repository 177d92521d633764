"""An unreachable database: every event of the dashboard goes through one guard, so while PostgreSQL is cut off by a
real TCP outage (or a SQLite file's folder is gone) each tab's callbacks (page loads, running the evaluators with
progress, the span picker, the agreement after a review) return the banner with the masked URL instead of raising,
and the same callbacks (and the health timer) return data again when the database is back."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import pytest
from sqlalchemy.engine import make_url

import llmobs
from llmobs.store.db import dispose_engine, get_engine
from llmobs.ui import create_app
from llmobs.ui.health import BANNER_ID, banner_text
from llmobs.ui.tabs import overview
from tests.support.databases import PG_SKIP_REASON, postgres_base_url
from tests.support.tcp_proxy import TcpProxy, postgres_behind_proxy
from tests.ui.conftest import seed_dashboard

UTC = dt.timezone.utc


def events(app: gr.Blocks, kind: str) -> list[Any]:
    """The registered functions triggered by ``kind`` events ("load", "tick", ...)."""
    return [f for f in app.fns.values() if any(t[1] == kind for t in f.targets)]


def triggered_by(app: gr.Blocks, elem_id: str, kind: str) -> Any:
    """The registered function that a ``kind`` event of the component ``elem_id`` triggers."""
    (fn,) = [f for f in app.fns.values() if any(getattr(app.blocks.get(t[0]), "elem_id", None) == elem_id
                                               and t[1] == kind for t in f.targets)]
    return fn


def then_of(app: gr.Blocks, first: Any) -> Any:
    """The function chained with ``.then`` after ``first``."""
    (fn,) = [f for f in app.fns.values() if f.trigger_after == first._id]
    return fn


def run(fn: Any, *values: Any) -> tuple[Any, ...]:
    """Call a registered (guarded) function with its inputs' default values unless values are given."""
    return fn.fn(*(values or [c.value for c in fn.inputs]))


def banner(outputs: tuple[Any, ...]) -> dict[str, Any]:
    """The banner update every guarded callback returns last."""
    update = outputs[-1]
    assert isinstance(update, dict) and update.get("__type__") == "update", update
    return update


def health_tick(app: gr.Blocks) -> Any:
    """The health timer's function (its first input is the banner)."""
    (tick,) = [f for f in events(app, "tick") if f.inputs and f.inputs[0].elem_id == BANNER_ID]
    return tick


def load_all(app: gr.Blocks) -> list[tuple[Any, ...]]:
    loads = events(app, "load")
    assert len(loads) == 10  # 8 tabs with a loader + the Alerts tab's history and channels sections
    return [run(fn) for fn in loads]


def overview_rows(app: gr.Blocks) -> list[list[str]]:
    """The overview table a page load shows (the first load event is the Overview tab's)."""
    return run(events(app, "load")[0])[0]


def test_every_event_of_the_app_reports_to_the_database_banner(sqlite_store: Any) -> None:
    app = create_app(sqlite_store.url, auto_refresh_seconds=5)
    assert len(app.fns) > 30
    for fn in app.fns.values():
        assert fn.outputs[-1].elem_id == BANNER_ID, f"{fn.name} on {fn.targets} is not guarded"
    assert len(events(app, "tick")) == 2  # Performance's auto-refresh and the health check
    # The Evaluations and Review events of the evaluation work are among them, chained steps included.
    for elem_id, kind in [("run-go", "click"), ("run-user", "submit"), ("run-session", "submit"),
                          ("run-tag", "submit"), ("evals-refresh", "click"), ("play-run", "click"),
                          ("agreement-refresh", "click"), ("agreement-range", "change"), ("agreement-model", "submit"),
                          ("review-submit", "click"), ("review-reload", "click")]:
        assert triggered_by(app, elem_id, kind).outputs[-1].elem_id == BANNER_ID, (elem_id, kind)
    run_button = triggered_by(app, "run-go", "click")
    assert run_button.tracks_progress and run_button.concurrency_limit == 1  # gr.Progress is seen through the guard
    assert then_of(app, run_button).outputs[-1].elem_id == BANNER_ID
    assert then_of(app, triggered_by(app, "review-submit", "click")).outputs[-1].elem_id == BANNER_ID


@pytest.fixture
def pg_outage() -> Iterator[tuple[str, TcpProxy]]:
    """A seeded PostgreSQL schema reached through a loopback TCP proxy that the test can switch off."""
    base = postgres_base_url()
    if base is None:
        pytest.skip(PG_SKIP_REASON)
    try:
        with postgres_behind_proxy(base) as (url, _, proxy):
            seed_dashboard(get_engine(url), dt.datetime.now(UTC) - dt.timedelta(seconds=5))
            yield url, proxy
            dispose_engine(url)
    finally:
        llmobs.configure(reset=True)


@pytest.fixture(params=["sqlite", "postgres"])
def outage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Callable[[], None],
                                                                             Callable[[], None]]]:
    """A seeded database the test can take away and give back: (URL, down, up). SQLite loses its folder (and the
    app its pooled handles); PostgreSQL is reached through a TCP proxy that is switched off."""
    if request.param == "postgres":
        url, proxy = request.getfixturevalue("pg_outage")
        yield url, proxy.down, proxy.up
        return
    folder = tmp_path / "data"
    folder.mkdir()
    url = f"sqlite:///{folder / 'llmobs.db'}"

    def down() -> None:
        folder.rename(tmp_path / "unmounted")
        get_engine(url).dispose()

    try:
        seed_dashboard(get_engine(url), dt.datetime.now(UTC) - dt.timedelta(seconds=5))
        yield url, down, lambda: (tmp_path / "unmounted").rename(folder)
    finally:
        llmobs.configure(reset=True)
        dispose_engine(url)


def test_running_evaluators_the_span_picker_and_the_agreement_show_the_banner_in_an_outage_and_work_after_it(
        outage: Any) -> None:
    from sqlalchemy import text

    url, down, up = outage
    app = create_app(url, auto_refresh_seconds=0, retry_seconds=5)
    run_button = triggered_by(app, "run-go", "click")
    run_values = [c.value for c in run_button.inputs]  # every generation of the last 24 hours, heuristic backend
    after_run = then_of(app, run_button)  # the summary and the span picker reload after a run
    after_review = then_of(app, triggered_by(app, "review-submit", "click"))  # the agreement reloads after a review
    agreement = triggered_by(app, "agreement-refresh", "click")
    progress: list[float] = []

    def record(fraction: float, desc: str | None = None) -> None:
        progress.append(fraction)

    down()
    for out in (run(run_button, *run_values, record), run(after_run), run(after_review), run(agreement)):
        assert banner(out)["visible"] is True and banner(out)["value"].startswith("Database unreachable: ")
        assert all(v == gr.skip() for v in out[:-1])
    up()
    status, shown = run(run_button, *run_values, record)
    assert shown["visible"] is False and progress[-1] == 1.0
    with get_engine(url).connect() as conn:
        stored = conn.execute(text("SELECT span_id, count(*) FROM evaluations WHERE evaluator_version = 'heuristic-1' "
                                   "GROUP BY span_id")).all()
    assert status == f"Scored {len(stored)} span(s) with heuristic-1: {sum(n for _, n in stored)} evaluation rows " \
                     "stored." and len(stored) == 5
    rows, _, _, picker, shown = run(after_run)
    assert shown["visible"] is False and "relevance" in [r[0] for r in rows]
    assert {sid for _, sid in picker.choices} == {sid for sid, _ in stored}  # the generations just scored
    table, agreement_status, shown = run(after_review)
    assert shown["visible"] is False and table == [] and "(0 reviewed)" in agreement_status


def test_postgres_outage_shows_the_banner_on_every_tab_and_data_when_it_returns(pg_outage: Any) -> None:
    url, proxy = pg_outage
    app = create_app(url, auto_refresh_seconds=0, retry_seconds=5)
    assert all(banner(out)["visible"] is False for out in load_all(app))
    assert dict((r[0], r[1]) for r in overview_rows(app))["Total requests"] == "6"
    proxy.down()
    expected = f"Database unreachable: postgresql+psycopg://{make_url(url).username}@127.0.0.1:{proxy.port}/" \
               f"{make_url(url).database} — retrying every 5 s; figures shown may be out of date."
    for out in load_all(app):
        assert banner(out) == {"__type__": "update", "value": expected, "visible": True}
        assert all(v == gr.skip() for v in out[:-1])  # the figures already shown stay as they were
    assert "search_path" not in expected and "options" not in expected
    tick = health_tick(app)
    assert banner(run(tick, expected, *[c.value for c in tick.inputs[1:]]))["visible"] is True
    proxy.up()
    recovered = run(tick, expected, *[c.value for c in tick.inputs[1:]])
    assert banner(recovered)["visible"] is False
    assert dict((r[0], r[1]) for r in recovered[0])["Total requests"] == "6"  # every tab reloaded by the timer
    assert len(recovered) == len(tick.outputs)
    assert all(banner(out)["visible"] is False for out in load_all(app))


def test_sqlite_folder_gone_shows_the_banner_and_data_when_it_is_back(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    url = f"sqlite:///{folder / 'llmobs.db'}"
    try:
        app = create_app(url, auto_refresh_seconds=0, retry_seconds=5)
        seed_dashboard(get_engine(url), dt.datetime.now(UTC) - dt.timedelta(seconds=5))
        assert dict((r[0], r[1]) for r in overview_rows(app))["Total requests"] == "6"
        folder.rename(tmp_path / "unmounted")
        get_engine(url).dispose()  # open handles would keep reading the moved file; new connections cannot open it
        for out in load_all(app):
            assert banner(out)["visible"] is True
            assert banner(out)["value"].startswith(f"Database unreachable: {url} — retrying every 5 s")
        (tmp_path / "unmounted").rename(folder)
        assert dict((r[0], r[1]) for r in overview_rows(app))["Total requests"] == "6"
        assert all(banner(out)["visible"] is False for out in load_all(app))
    finally:
        llmobs.configure(reset=True)
        dispose_engine(url)


def test_the_dashboard_starts_with_the_database_down_and_creates_its_tables_when_it_is_back(tmp_path: Path) -> None:
    path = tmp_path / "llmobs.db"
    path.mkdir()  # a folder where the database file should be: SQLite cannot open it
    url = f"sqlite:///{path}"
    try:
        app = create_app(url, auto_refresh_seconds=0, retry_seconds=0)
        out = run(events(app, "load")[0])
        assert banner(out)["value"] == f"Database unreachable: {url} — retrying at the next refresh; figures " \
                                       "shown may be out of date."
        shutil.rmtree(path)
        out = run(events(app, "load")[0])
        assert banner(out)["visible"] is False and out[2] == overview.EMPTY_MESSAGE
    finally:
        llmobs.configure(reset=True)
        dispose_engine(url)


def test_other_errors_are_not_mistaken_for_an_outage(sqlite_store: Any) -> None:
    from llmobs.ui.health import guarded
    from llmobs.ui.state import AppContext

    ctx = AppContext(get_engine(sqlite_store.url))

    def broken() -> None:
        with ctx.engine.connect() as conn:
            conn.exec_driver_sql("SELECT * FROM no_such_table")

    with pytest.raises(Exception, match="no such table"):
        guarded(ctx, broken, 1)()
    assert banner_text(ctx).startswith(f"Database unreachable: {sqlite_store.url} — retrying every 5 s")
