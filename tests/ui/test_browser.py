"""End to end in headless Chromium (Debian's /usr/bin/chromium, never a downloaded browser): the dashboard served on
127.0.0.1 against a seeded SQLite file shows the analytics numbers, renders Plotly charts, opens a trace's span
tree, shows an XSS payload as literal text, and stores a manual review as a ``human`` score."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import llmobs
from llmobs.store.db import make_engine
from llmobs.ui.tabs.evaluations import SCOPE_SPAN
from tests.ui.conftest import HTML_ERROR, TAGGED_NAME, XSS, XSS_TRACE, evaluable_generations, seed_dashboard

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
    llmobs.configure(reset=True, database_url=url)
    engine = make_engine(url)
    data = seed_dashboard(engine, dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=5))
    port = _free_port()
    app = serve(create_app(url, auto_refresh_seconds=0), host="127.0.0.1", port=port, auth="", no_auth=False,
                block=False)
    try:
        yield {"url": f"http://127.0.0.1:{port}/", "engine": engine, "data": data, "shots": folder}
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


def test_export_tab_offers_a_csv_download(page: Any, dashboard: dict[str, Any]) -> None:
    _open_tab(page, "Export")
    page.locator("#export-go").click()
    expect(page.locator("#export-status textarea")).to_have_value(re.compile("^Exported 8 spans rows"))
    expect(page.locator("#export-file")).to_contain_text(".csv")
    _shot(page, dashboard, "export")
