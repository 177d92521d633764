"""A seeded dashboard database: generations over the last day and the day before, one multi-span trace whose
output is an XSS payload, errors and quality scores; plus the AppContext the tab callbacks take, and notification
channels (with secrets to keep off the screen) pointing at local receivers."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest

from llmobs.ui.state import AppContext
from tests.support.databases import Store
from tests.support.receivers import HttpReceiver, Reply, SmtpReceiver
from tests.support.seed import evaluation, gen, seed, seed_evaluations

UTC = dt.timezone.utc
XSS = "<img src=x onerror=alert(1)><script>alert(2)</script>"
XSS_TRACE = "abcdef0123456789abcdef0123456789"
TAGGED_NAME = "lookup-docs <b>bold</b>"
HTML_ERROR = "429 <b>Too Many</b> Requests <a href=\"javascript:alert(3)\">retry</a>"


def seed_dashboard(engine: Any, now: dt.datetime) -> dict[str, Any]:
    """Insert the dashboard data set relative to ``now``; returns handles the tests assert on."""
    ago = lambda **kw: now - dt.timedelta(**kw)  # noqa: E731
    recent = [
        gen(ago(minutes=50), 120.0, model="gpt-4o", user_id="alice", session_id="s1", tags=["prod"],
            total_tokens=300, prompt_tokens=200, completion_tokens=100, cost_usd=0.003,
            input=json.dumps("What is 2+2?"), output=json.dumps("4")),
        gen(ago(minutes=40), 480.0, model="gpt-4o", user_id="bob", total_tokens=500, cost_usd=0.005,
            input=json.dumps("Summarise the report"), output=json.dumps("The report says...")),
        gen(ago(minutes=30), 90.0, model="gpt-4o-mini", user_id="alice", total_tokens=100, cost_usd=0.0001,
            output=json.dumps("ok")),
        gen(ago(minutes=20), 1500.0, model="gpt-4o-mini", user_id="carol", status="error",
            error_type="RateLimitError", error_message=HTML_ERROR, total_tokens=0, cost_usd=0.0),
        gen(ago(hours=5), 200.0, model="gpt-4o", user_id="bob", total_tokens=250, cost_usd=0.0025,
            output=json.dumps("an older answer")),
    ]
    root_start = ago(minutes=10)
    root = gen(root_start, 900.0, model=None, kind="chain", trace_id=XSS_TRACE, name="checkout-flow",
               user_id="dave", session_id="s9", input=json.dumps({"cart": [1, 2]}), output=json.dumps("done"))
    retr = gen(root_start + dt.timedelta(milliseconds=50), 150.0, model=None, kind="retriever", trace_id=XSS_TRACE,
               parent_id=root["id"], name=TAGGED_NAME, output=json.dumps(["doc-1", "doc-2"]))
    llm = gen(root_start + dt.timedelta(milliseconds=250), 600.0, model="gpt-4o", trace_id=XSS_TRACE,
              parent_id=root["id"], name="answer-llm", input=json.dumps([{"role": "user", "content": "hi"}]),
              output=json.dumps(XSS), metadata={"note": XSS}, prompt_tokens=40, completion_tokens=20,
              total_tokens=60, cost_usd=0.0006)
    previous = [gen(ago(hours=30), 100.0, model="gpt-4o", user_id="alice", total_tokens=100, cost_usd=0.001),
                gen(ago(hours=40), 300.0, model="gpt-4o", user_id="bob", total_tokens=200, cost_usd=0.002)]
    seed(engine, [*previous, *recent, root, retr, llm])
    seed_evaluations(engine, [evaluation(recent[0], "quality", 0.9, source="heuristic"),
                              evaluation(recent[1], "quality", 0.5, source="heuristic")])
    return {"recent": recent, "previous": previous, "xss_span": llm, "root": root, "retriever": retr}


def evaluable_generations(data: dict[str, Any], model: str | None = None) -> dict[str, dict[str, Any]]:
    """The seeded generations of the last 24 hours that evaluators score: finished, with an output (by span id)."""
    since = dt.datetime.now(UTC) - dt.timedelta(days=1)
    spans = [*data["recent"], *data["previous"], data["xss_span"]]
    return {s["id"]: s for s in spans if s["status"] == "ok" and s["output"] is not None and s["start_time"] >= since
            and model in (None, s["model_name"])}


@pytest.fixture
def seeded(store: Store) -> tuple[AppContext, dict[str, Any], Store]:
    """The seeded data set in the test's database (SQLite and PostgreSQL) and an AppContext on it."""
    engine = store.engine()
    data = seed_dashboard(engine, dt.datetime.now(UTC) - dt.timedelta(seconds=5))
    return AppContext(engine=engine, auto_refresh_seconds=0), data, store


@pytest.fixture
def empty_ctx(store: Store) -> AppContext:
    """An AppContext on an empty database (schema only)."""
    from llmobs.store.db import ensure_schema

    engine = store.engine()
    ensure_schema(engine)
    return AppContext(engine=engine, auto_refresh_seconds=0)


# --- notification channels with secrets -------------------------------------------------------------------------------

PATH_TOKEN = "pathTOKENsecret91"
QUERY_TOKEN = "querySECRETtoken72"
HEADER_TOKEN = "Bearer headerSECRET63"
SIGNING_KEY = "whsec-SIGNINGkey-54"
SMTP_PASSWORD = "smtpPASSWORD-45"
BROKEN_TOKEN = "brokenHOOKtoken36"
SECRETS = (PATH_TOKEN, QUERY_TOKEN, "headerSECRET63", SIGNING_KEY, SMTP_PASSWORD, BROKEN_TOKEN)


def assert_no_secret(*shown: Any) -> None:
    """No secret substring anywhere in what was shown (callback values or page text)."""
    text = repr(shown)
    leaked = [s for s in SECRETS if s in text]
    assert not leaked, f"secrets on screen: {leaked}"


@contextlib.contextmanager
def channel_receivers() -> Iterator[dict[str, Any]]:
    """A webhook receiver answering 200, a broken one answering 500 with the secrets echoed, and aiosmtpd with AUTH."""
    with HttpReceiver() as hook, \
            HttpReceiver(default=Reply(500, f"no such hook /hooks/{BROKEN_TOKEN} ({QUERY_TOKEN})")) as broken, \
            SmtpReceiver(credentials=("alerts", SMTP_PASSWORD)) as smtp:
        yield {"hook": hook, "broken": broken, "smtp": smtp}


@pytest.fixture
def receivers() -> Iterator[dict[str, Any]]:
    """The channel receivers for one test."""
    with channel_receivers() as found:
        yield found


def channel_settings(receivers: dict[str, Any]) -> dict[str, Any]:
    """alerts.channels with a signed webhook (token in path, query and header), a broken webhook and e-mail."""
    fast = {"retry_count": 0, "timeout": 5}
    return {
        "hook": {"type": "webhook", "url": f"{receivers['hook'].url}/hooks/{PATH_TOKEN}?token={QUERY_TOKEN}",
                 "headers": {"Authorization": HEADER_TOKEN}, "secret": SIGNING_KEY, **fast},
        "broken": {"type": "webhook", "url": f"{receivers['broken'].url}/hooks/{BROKEN_TOKEN}", **fast},
        "mail": {"type": "email", "smtp_server": "127.0.0.1", "smtp_port": receivers["smtp"].port, "use_tls": False,
                 "username": "alerts", "password": SMTP_PASSWORD, "from_address": "alerts@example.com",
                 "recipients": ["oncall@example.com"], **fast},
    }
