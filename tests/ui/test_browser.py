"""End to end in headless Chromium (Debian's /usr/bin/chromium, never a downloaded browser): the dashboard served on
127.0.0.1 against a seeded SQLite file shows the analytics numbers, renders Plotly charts, opens a trace's span
tree (also from a failed call in the Errors tab), shows an XSS payload as literal text, stores a manual review as a
``human`` score, sends test notifications with every secret masked on the page, and shows the database banner
through a real outage and recovers from it."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import llmobs
from llmobs.store.db import display_url, dispose_engine, get_engine, make_engine
from llmobs.ui.tabs.evaluations import SCOPE_SPAN
from tests.support.databases import PG_SKIP_REASON, postgres_base_url
from tests.support.seed import gen, seed
from tests.support.tcp_proxy import postgres_behind_proxy
from tests.ui.conftest import (
    HTML_ERROR, TAGGED_NAME, XSS, XSS_TRACE, assert_no_secret, channel_receivers, channel_settings,
    evaluable_generations, seed_dashboard,
)

CHROMIUM = "/usr/bin/chromium"
MARKUP_NAME = "<b>bold gen</b><img src=x onerror=alert(5)>"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 45_000  # generous: CI shares two cores with the rest of the suite

pytestmark = pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="Debian chromium not installed "
                                "(apt-get install -y chromium; .ci/run does it)")
sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect
expect.set_options(timeout=TIMEOUT_MS)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The app on a free 127.0.0.1 port over a freshly seeded SQLite file; yields url, engine and seeded data."""
    from llmobs.ui import create_app, serve

    folder = tmp_path_factory.mktemp("dashboard")
    url = f"sqlite:///{folder / 'llmobs.db'}"
    with channel_receivers() as receivers:
        llmobs.configure(reset=True, database_url=url, alerts__channels=channel_settings(receivers))
        engine = make_engine(url)
        data = seed_dashboard(engine, dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=5))
        port = _free_port()
        app = serve(create_app(url, auto_refresh_seconds=0), host="127.0.0.1", port=port, auth="", no_auth=False,
                    block=False)
        try:
            yield {"url": f"http://127.0.0.1:{port}/", "database_url": url, "engine": engine, "data": data,
                   "shots": folder, "receivers": receivers}
        finally:
            app.close()
            llmobs.flush(timeout=10)
            engine.dispose()
            llmobs.configure(reset=True)


@pytest.fixture(scope="module")
def browser(dashboard: dict[str, Any]) -> Iterator[Any]:
    """One headless Chromium for the module."""
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any, dashboard: dict[str, Any]) -> Iterator[Any]:
    """A fresh page on the dashboard that records any JavaScript dialog (none may open)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    dialogs: list[str] = []
    pg.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    pg.goto(dashboard["url"])
    yield pg
    context.close()
    assert dialogs == [], f"a JavaScript dialog fired: {dialogs}"


def _open_tab(page: Any, name: str) -> None:
    page.get_by_role("tab", name=name, exact=True).click()


def _shot(page: Any, dashboard: dict[str, Any], name: str) -> None:
    page.screenshot(path=str(Path(dashboard["shots"]) / f"{name}.png"), full_page=True)


def test_overview_shows_the_seeded_numbers_and_a_plotly_chart(page: Any, dashboard: dict[str, Any]) -> None:
    table = page.locator("#overview-table")
    expect(table).to_contain_text("Total requests")
    expect(table).to_contain_text("83.33%")
    expect(table).to_contain_text("1,210")
    expect(table).to_contain_text("+200.0%")
    expect(page.locator("#overview-plot .js-plotly-plot")).to_be_visible()
    _shot(page, dashboard, "overview")


def test_traces_tab_opens_a_span_tree_and_shows_the_xss_payload_as_text(page: Any, dashboard: dict[str, Any]
                                                                        ) -> None:
    _open_tab(page, "Traces")
    table = page.locator("#traces-table")
    expect(table).to_contain_text("checkout-flow")
    expect(page.locator("#traces-status textarea")).to_have_value("Page 1 of 1 · 6 traces")
    expect(table.get_by_test_id("cell-0-0")).to_contain_text(XSS_TRACE)
    table.get_by_test_id("cell-0-0").click()
    tree = page.locator("#traces-tree")
    expect(tree).to_contain_text("answer-llm")
    expect(tree).to_contain_text("lookup-docs")
    expect(page.locator("#traces-waterfall .js-plotly-plot")).to_be_visible()
    expect(tree).to_contain_text(TAGGED_NAME)
    assert TAGGED_NAME in page.locator("#traces-waterfall svg.main-svg").first.text_content()
    expect(tree.get_by_test_id("cell-2-8")).to_contain_text(dashboard["data"]["xss_span"]["id"])
    tree.get_by_test_id("cell-2-8").click()
    output = page.locator("#span-output textarea")
    expect(output).to_have_value(XSS)
    expect(page.locator("#span-tokens textarea, #span-tokens input")).to_have_value(
        "prompt 40 · completion 20 · total 60")
    assert page.locator("img[src='x']").count() == 0
    assert page.evaluate("() => [...document.scripts].some(s => s.textContent.includes('alert(2)'))") is False
    _shot(page, dashboard, "traces")


def test_performance_tab_renders_its_charts(page: Any, dashboard: dict[str, Any]) -> None:
    _open_tab(page, "Performance")
    expect(page.locator("#performance-status textarea")).to_have_value("6 requests · bucket 15m")
    for i in range(5):
        expect(page.locator(f"#performance-plot-{i} .js-plotly-plot")).to_be_visible()
    _shot(page, dashboard, "performance")


def test_models_errors_alerts_evaluations_tabs_show_their_figures(page: Any, dashboard: dict[str, Any]) -> None:
    _open_tab(page, "Models")
    expect(page.locator("#models-table")).to_contain_text("gpt-4o-mini")
    expect(page.locator("#models-table")).to_contain_text("50.00%")
    expect(page.locator("#models-plot .js-plotly-plot")).to_be_visible()
    _shot(page, dashboard, "models")
    _open_tab(page, "Errors")
    expect(page.locator("#errors-summary textarea")).to_have_value("1 errors in 6 requests (error rate 16.67%)")
    expect(page.locator("#errors-types")).to_contain_text("RateLimitError")
    expect(page.locator("#errors-plot .js-plotly-plot")).to_be_visible()
    expect(page.locator("#errors-recent")).to_contain_text(HTML_ERROR)  # markup in a cell stays text
    assert page.locator("#errors-recent b, #errors-recent a[href^='javascript']").count() == 0
    _shot(page, dashboard, "errors")
    _open_tab(page, "Alerts")
    expect(page.locator("#alerts-status textarea")).to_have_value(
        "No open alerts. No alert rules yet: create one below.")
    _shot(page, dashboard, "alerts")
    _open_tab(page, "Evaluations")
    expect(page.locator("#evals-table")).to_contain_text("0.700")
    expect(page.locator("#evals-plot .js-plotly-plot")).to_be_visible()
    _shot(page, dashboard, "evaluations")


def test_evaluations_tab_runs_the_evaluators_on_the_range_and_shows_the_count(page: Any, dashboard: dict[str, Any]
                                                                             ) -> None:
    from sqlalchemy import text

    _open_tab(page, "Evaluations")
    expect(page.locator("#run-span")).to_be_visible()
    page.locator("#run-go").click()
    status = page.locator("#run-status textarea")
    expect(status).to_have_value(re.compile(r"^Scored 5 span\(s\) with heuristic-1: [\d,]+ evaluation rows stored\.$"))
    shown = int(re.search(r"([\d,]+) evaluation rows", status.input_value()).group(1).replace(",", ""))
    with dashboard["engine"].connect() as conn:
        per_span = dict(conn.execute(text("SELECT span_id, count(*) FROM evaluations "
                                          "WHERE evaluator_version = 'heuristic-1' GROUP BY span_id")).all())
    assert set(per_span) == set(evaluable_generations(dashboard["data"])) and sum(per_span.values()) == shown
    expect(page.locator("#evals-table")).to_contain_text("relevance")  # the summary reloads after the run
    _shot(page, dashboard, "evaluations-run")
    page.locator("#run-go").click()
    expect(status).to_have_value(re.compile("5 already scored by heuristic-1 \\(skipped\\)\\.$"))
    with dashboard["engine"].connect() as conn:
        total = conn.execute(text("SELECT count(*) FROM evaluations WHERE evaluator_version = 'heuristic-1'")).scalar()
    assert total == shown


def test_evaluations_tab_lists_generations_as_text_and_scores_the_one_picked(page: Any, dashboard: dict[str, Any]
                                                                             ) -> None:
    import json

    from sqlalchemy import text

    from tests.support.seed import gen, seed

    # Ten days old: outside every 24-hour figure the other tests check, inside "Last 30 days".
    old = gen(dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=10), 100.0, model="gpt-4o", name=MARKUP_NAME,
              input=json.dumps("Is this shown as text?"), output=json.dumps("Yes, as text."))
    seed(dashboard["engine"], [old])
    _open_tab(page, "Evaluations")
    page.locator("#evals-range input").click()
    page.get_by_role("option", name="Last 30 days").click()
    page.locator("#run-span input").click()
    option = page.locator("[role=option]").filter(has_text=MARKUP_NAME)
    expect(option).to_be_visible()
    assert page.locator("[role=option] b, [role=option] img").count() == 0
    option.click()
    page.locator("#run-scope").get_by_text(SCOPE_SPAN, exact=True).click()
    page.locator("#run-go").click()
    expect(page.locator("#run-status textarea")).to_have_value(
        re.compile(r"^Scored 1 span\(s\) with heuristic-1: [\d,]+ evaluation rows stored\.$"))
    with dashboard["engine"].connect() as conn:
        stored = conn.execute(text("SELECT count(*) FROM evaluations WHERE span_id = :s"), {"s": old["id"]}).scalar()
    assert stored > 0
    _shot(page, dashboard, "evaluations-span")


def test_manual_review_stores_a_human_score_and_loads_the_next_item(page: Any, dashboard: dict[str, Any]) -> None:
    from sqlalchemy import text

    from llmobs.ui.state import AppContext
    from llmobs.ui.tabs import review

    xss_span = dashboard["data"]["xss_span"]["id"]
    _open_tab(page, "Manual review")
    expect(page.locator("#review-span-id textarea, #review-span-id input")).to_have_value(xss_span)
    agreement = page.locator("#agreement-status textarea")
    expect(agreement).to_have_value(re.compile("^No reviewed generation in this range has automatic scores yet "
                                               "\\(0 reviewed\\)"))
    expect(page.locator("#review-response textarea")).to_have_value(XSS)
    page.locator("#review-rating").get_by_text("5", exact=True).click()
    page.locator("#review-comment textarea").fill("looks right")
    _shot(page, dashboard, "review")
    page.locator("#review-submit").click()
    expect(page.locator("#review-status textarea")).to_have_value(re.compile(f"^Saved review of span {xss_span}"))
    expect(page.locator("#review-span-id textarea, #review-span-id input")).not_to_have_value(xss_span)
    with dashboard["engine"].connect() as conn:
        rows = conn.execute(text("SELECT name, value, comment, span_id FROM evaluations WHERE source = 'human'")).all()
    assert [tuple(r) for r in rows] == [("human_rating", 5.0, "looks right", xss_span)]
    # The agreement below the form is refreshed after the review, with the analytics figures for its range.
    ctx = AppContext(engine=dashboard["engine"], auto_refresh_seconds=0)
    table, expected = review.agreement(ctx, review.AGREEMENT_RANGE)
    assert re.search(r"\(1 reviewed\)|1 reviewed in all", expected), expected
    expect(agreement).to_have_value(expected)
    for row in table:
        for text_shown in (row[0], row[4]):
            expect(page.locator("#agreement-table")).to_contain_text(text_shown)
    _shot(page, dashboard, "review-agreement")


def test_manual_review_model_filter_changes_the_item_shown(page: Any, dashboard: dict[str, Any]) -> None:
    mini = dashboard["data"]["recent"][2]  # the one gpt-4o-mini generation with an output
    _open_tab(page, "Manual review")
    span_id, model = page.locator("#review-span-id textarea"), page.locator("#review-model textarea, #review-model input")
    expect(span_id).not_to_have_value("")
    model.fill("gpt-4o")
    model.press("Enter")
    expect(page.locator("#review-about textarea")).to_have_value(re.compile(r" · gpt-4o · "))
    assert span_id.input_value() != mini["id"]
    model.fill("gpt-4o-mini")
    model.press("Enter")
    expect(span_id).to_have_value(mini["id"])
    expect(page.locator("#review-response textarea")).to_have_value("ok")
    _shot(page, dashboard, "review-filtered")


def test_export_tab_offers_a_csv_download(page: Any, dashboard: dict[str, Any]) -> None:
    _open_tab(page, "Export")
    page.locator("#export-go").click()
    expect(page.locator("#export-status textarea")).to_have_value(re.compile("^Exported 8 spans rows"))
    expect(page.locator("#export-file")).to_contain_text(".csv")
    _shot(page, dashboard, "export")


def test_a_failed_call_in_errors_opens_its_trace_in_the_traces_tab(page: Any, dashboard: dict[str, Any]) -> None:
    failed = dashboard["data"]["recent"][3]
    _open_tab(page, "Errors")
    recent = page.locator("#errors-recent")
    expect(recent.get_by_test_id("cell-0-1")).to_contain_text(failed["trace_id"])
    recent.get_by_test_id("cell-0-5").click()  # any cell of the row
    expect(page.get_by_role("tab", name="Traces", exact=True)).to_have_attribute("aria-selected", "true")
    expect(page.locator("#traces-trace-id textarea, #traces-trace-id input")).to_have_value(failed["trace_id"])
    expect(page.locator("#traces-trace-status textarea")).to_have_value(f"Trace {failed['trace_id']}: 1 spans")
    tree = page.locator("#traces-tree")
    expect(tree).to_contain_text(failed["name"])
    expect(tree).to_contain_text("error")
    expect(page.locator("#span-error textarea")).to_have_value(f"RateLimitError\n{HTML_ERROR}")
    _shot(page, dashboard, "errors-to-trace")


def _shown_text(page: Any) -> str:
    """Everything the page shows or holds: its HTML, its visible text and every field's value."""
    values = page.evaluate("() => [...document.querySelectorAll('textarea, input')].map(e => e.value)")
    return "\n".join([page.content(), page.inner_text("body"), *values])


def test_alert_channels_send_test_notifications_and_show_only_masked_secrets(page: Any, dashboard: dict[str, Any]
                                                                             ) -> None:
    receivers = dashboard["receivers"]
    _open_tab(page, "Alerts")
    page.get_by_role("tab", name="Channels", exact=True).click()
    table = page.locator("#channels-table")
    expect(table).to_contain_text(f"url={receivers['hook'].url}/hooks/****")
    expect(table).to_contain_text("password=****")
    expect(page.locator("#channels-status textarea")).to_have_value("3 channel(s) configured.")
    expect(page.locator("#channel-name-0 textarea, #channel-name-0 input")).to_have_value("hook (webhook)")
    page.locator("#channel-test-0").click()
    expect(page.locator("#channel-result-0 textarea")).to_have_value(re.compile(r"^Sent at .* HTTP 200\)\.$"))
    received = receivers["hook"].wait_for(1)
    assert len(received) == 1 and received[0].json()["state"] == "test"
    page.locator("#channel-test-1").click()
    expect(page.locator("#channel-result-1 textarea")).to_have_value(
        re.compile(r"^Failed after 1 attempt\(s\) .*HTTP 500: no such hook /hooks/\*\*\*\* \(\*\*\*\*\)$"))
    page.locator("#channel-test-2").click()
    expect(page.locator("#channel-result-2 textarea")).to_have_value(re.compile(r"^Sent at "))
    assert receivers["smtp"].wait_for(1)[0].login == "alerts"
    _shot(page, dashboard, "alerts-channels")
    assert_no_secret(_shown_text(page), page.request.get(dashboard["url"] + "config").text())


@pytest.fixture(params=["sqlite", "postgres"])
def outage(request: pytest.FixtureRequest, tmp_path: Path, dashboard: dict[str, Any]
           ) -> Iterator[tuple[str, str, Callable[[], None], Callable[[], None], Any]]:
    """A seeded database the test can take away and give back: (database URL, app URL, down, up, an engine that
    still reaches the data). SQLite loses its folder (and the app its pooled handles); PostgreSQL is reached through
    a TCP proxy that is switched off."""
    from llmobs.ui import create_app, serve

    try:
        if request.param == "sqlite":
            folder = tmp_path / "data"
            url = f"sqlite:///{folder / 'llmobs.db'}"

            def down() -> None:
                folder.rename(tmp_path / "unmounted")
                get_engine(url).dispose()

            def up() -> None:
                (tmp_path / "unmounted").rename(folder)

            moved = make_engine(f"sqlite:///{tmp_path / 'unmounted' / 'llmobs.db'}")
            yield from _served_outage(create_app, serve, url, down, up, moved)
            moved.dispose()
        else:
            base = postgres_base_url()
            if base is None:
                pytest.skip(PG_SKIP_REASON)
            with postgres_behind_proxy(base) as (url, direct, proxy):
                behind = make_engine(direct)
                yield from _served_outage(create_app, serve, url, proxy.down, proxy.up, behind)
                behind.dispose()
    finally:
        llmobs.configure(database_url=dashboard["database_url"])  # the module's dashboard writes there


def _served_outage(create_app: Any, serve: Any, url: str, down: Callable[[], None], up: Callable[[], None],
                   behind: Any) -> Iterator[tuple[str, str, Callable[[], None], Callable[[], None], Any]]:
    """Serve a dashboard (health check every second) over ``url`` seeded with the dashboard data set; ``behind`` is
    an engine that reaches the same data while the app cannot."""
    seed_dashboard(get_engine(url), dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=5))
    port = _free_port()
    app = serve(create_app(url, auto_refresh_seconds=0, retry_seconds=1), host="127.0.0.1", port=port, auth="",
                block=False)
    try:
        yield url, f"http://127.0.0.1:{port}/", down, up, behind
    finally:
        app.close()
        dispose_engine(url)


def test_an_unreachable_database_shows_a_banner_on_every_tab_and_the_page_recovers_by_itself(
        browser: Any, dashboard: dict[str, Any], outage: Any) -> None:
    url, app_url, down, up, behind = outage
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        page.goto(app_url)
        expect(page.locator("#overview-table")).to_contain_text("83.33%")
        expect(page.locator("#db-banner")).to_be_hidden()
        down()
        banner = page.locator("#db-banner textarea")
        expected = f"Database unreachable: {display_url(url)} — retrying every 1 s; figures shown may be out of date."
        expect(banner).to_have_value(expected)  # the health check found the outage without a click
        for tab in ("Traces", "Errors", "Alerts"):
            _open_tab(page, tab)
            expect(banner).to_be_visible()
        _open_tab(page, "Evaluations")
        page.locator("#run-go").click()  # the evaluator run (with its progress) goes through the same guard
        _open_tab(page, "Manual review")
        page.locator("#agreement-refresh").click()
        _open_tab(page, "Traces")  # the tab shown while the database comes back
        page.locator("#traces-go").click()
        page.wait_for_timeout(1500)
        expect(banner).to_have_value(expected)
        assert page.locator(".toast-body.error").count() == 0  # no Gradio error toast
        expect(page.locator("#run-status textarea")).to_have_value("")
        with behind.connect() as conn:  # the run scored nothing while the app could not reach the database
            assert conn.exec_driver_sql("SELECT count(*) FROM evaluations WHERE evaluator_version = 'heuristic-1'"
                                        ).scalar() == 0
        _shot(page, dashboard, f"outage-{'pg' if url.startswith('postgresql') else 'sqlite'}")
        seed(behind, [gen(dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1), 50.0, name="after-outage",
                          output='"written while the dashboard could not reach the database"')])
        up()
        expect(page.locator("#db-banner")).to_be_hidden()
        expect(page.locator("#traces-table")).to_contain_text("after-outage")  # reloaded by the health check
        _open_tab(page, "Overview")
        expect(page.locator("#overview-table")).to_contain_text("85.71%")  # 6 of 7 calls succeeded
        _open_tab(page, "Evaluations")
        page.locator("#run-go").click()
        # the 5 seeded generations and the one written during the outage
        expect(page.locator("#run-status textarea")).to_have_value(re.compile(r"^Scored 6 span\(s\) with heuristic-1"))
    finally:
        context.close()
