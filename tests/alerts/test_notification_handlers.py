"""Notification channels against real local peers: aiosmtpd for e-mail, ThreadingHTTPServer for Slack/Discord/webhooks.

Each test asserts on the bytes a server received (or, for configuration errors, on the message raised).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from llmobs.alerts.notification import Notification
from llmobs.alerts.notification_handlers import (
    DiscordConfig, DiscordNotifier, EmailConfig, EmailNotifier, LogNotifier, SlackConfig,
    SlackNotifier, WebhookConfig, WebhookNotifier, deliver_all, notifiers_from_config,
)
from llmobs.config import ConfigError
from tests.support.receivers import (  # noqa: F401 - http_receiver is a fixture
    HttpReceiver, Reply, SmtpReceiver, http_receiver, json_reply, refused_port, self_signed_tls,
)

FAST: dict[str, Any] = {"timeout": 2.0, "retry_count": 2, "backoff_base": 0.01, "backoff_max": 0.05}
STARTED = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
SLACK_PATH = "/services/T000/B000/slackTOKENxyz123"
DISCORD_PATH = "/api/webhooks/123456/discordTOKENabc987"


def make_notification(**overrides: Any) -> Notification:
    values: dict[str, Any] = dict(alert_id="al-42", rule_id="rule-7", rule_name="High p95 latency", state="firing",
                                  severity="critical", metric="p95_latency_ms", value=7250.5, threshold=5000.0,
                                  condition=">", window_minutes=15, model="gpt-4o-mini",
                                  filters={"environment": "prod"}, message="p95 latency is 7250.5 ms",
                                  started_at=STARTED, dashboard_url="http://127.0.0.1:7860/?alert=al-42",
                                  transition_seq=3)
    values.update(overrides)
    return Notification(**values)


def expected_signature(secret: str, headers: dict[str, str], body: bytes) -> str:
    """The receiver-side check documented in docs/alerts_channels.md, written independently of llmobs."""
    mac = hmac.new(secret.encode(), headers["x-llmobs-timestamp"].encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


# --- e-mail -----------------------------------------------------------------------------------------------------------

def email_notifier(port: int, **overrides: Any) -> EmailNotifier:
    config = dict(smtp_server="127.0.0.1", smtp_port=port, from_address="llmobs@example.com", use_tls=False, **FAST)
    config.update(overrides)
    return EmailNotifier(EmailConfig(**config), ["oncall@example.com", "sre@example.com"], name="oncall")


def test_email_arrives_with_subject_recipients_plain_and_escaped_html_parts() -> None:
    hostile = make_notification(rule_name="<script>alert(1)</script> latency", model="<b>m</b>",
                                message="value & <img src=x onerror=1>")
    with SmtpReceiver() as smtp:
        result = email_notifier(smtp.port).send(hostile)
        mail = smtp.wait_for(1)[0]
    assert result.status == "sent" and result.attempts == 1 and result.channel == "oncall"
    assert mail.mail_from == "llmobs@example.com"
    assert mail.rcpt_tos == ["oncall@example.com", "sre@example.com"]
    msg = mail.message
    assert msg["Subject"] == "[llmobs] [FIRING] critical: <script>alert(1)</script> latency"
    assert msg["To"] == "oncall@example.com, sre@example.com"
    assert msg["X-LLMObs-Idempotency-Key"] == "al-42:firing:3"
    plain = msg.get_body(("plain",)).get_content()
    html_part = msg.get_body(("html",)).get_content()
    assert "Value: 7250.5" in plain and "Threshold: > 5000" in plain and "Model: <b>m</b>" in plain
    assert "&lt;script&gt;alert(1)&lt;/script&gt; latency" in html_part
    assert "<script>" not in html_part and "<img" not in html_part and "<b>m</b>" not in html_part
    assert "value &amp; &lt;img src=x onerror=1&gt;" in html_part
    assert "<td>7250.5</td>" in html_part


def test_email_retries_a_transient_451_and_keeps_the_same_message_id() -> None:
    with SmtpReceiver("451 4.3.0 Try again later") as smtp:
        result = email_notifier(smtp.port).send(make_notification())
        mails = smtp.wait_for(1)
    assert result.status == "sent" and result.attempts == 2 and smtp.attempts == 2
    assert len(mails) == 1 and mails[0].message["Message-ID"].endswith("@llmobs.alerts>")


def test_email_permanent_554_is_not_retried() -> None:
    with SmtpReceiver("554 5.7.1 Rejected by policy") as smtp:
        result = email_notifier(smtp.port).send(make_notification())
        assert smtp.wait_for(1, timeout=0.2) == []
    assert result.status == "failed" and result.attempts == 1 and smtp.attempts == 1
    assert result.error is not None and "554" in result.error


def test_email_login_works_and_a_wrong_password_fails_without_leaking_it(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="llmobs")
    with SmtpReceiver(credentials=("alerts", "right-Pass-123")) as smtp:
        good = email_notifier(smtp.port, username="alerts", password="right-Pass-123").send(make_notification())
        mails = smtp.wait_for(1)
        bad_notifier = email_notifier(smtp.port, username="alerts", password="wrong-PASS-987654")
        bad = bad_notifier.send(make_notification())
    assert good.status == "sent" and mails[0].login == "alerts"
    assert bad.status == "failed" and bad.attempts == 1 and "535" in (bad.error or "")
    assert len(smtp.messages) == 1
    for text in (bad.error or "", caplog.text, str(bad_notifier.describe()), repr(bad_notifier)):
        assert "wrong-PASS-987654" not in text and "right-Pass-123" not in text
    assert bad_notifier.describe()["password"] == "****"


def test_email_to_a_refused_port_fails_cleanly_after_the_retries() -> None:
    with refused_port() as port:
        result = email_notifier(port).send(make_notification())
    assert result.status == "failed" and result.attempts == 3 and result.error == "connection refused"


# --- Slack ------------------------------------------------------------------------------------------------------------

def slack_notifier(base: str, **overrides: Any) -> SlackNotifier:
    config: dict[str, Any] = dict(webhook_url=base + SLACK_PATH, channel="#llm-alerts", username="LLM Observer",
                                  icon_emoji=":robot_face:", **FAST)
    config.update(overrides)
    return SlackNotifier(SlackConfig(**config), name="ops-slack")


def test_slack_posts_block_kit_with_fields_context_and_escaped_fallback(http_receiver: HttpReceiver) -> None:
    hostile = make_notification(rule_name="<!channel> & <https://evil.example|click>", model="gpt<4>")
    result = slack_notifier(http_receiver.url).send(hostile)
    request = http_receiver.wait_for(1)[0]
    assert result.status == "sent" and result.http_status == 200 and result.attempts == 1
    assert request.path == SLACK_PATH and request.headers["content-type"].startswith("application/json")
    body = request.json()
    assert body["channel"] == "#llm-alerts" and body["username"] == "LLM Observer"
    assert body["icon_emoji"] == ":robot_face:"
    assert [b["type"] for b in body["blocks"]] == ["header", "section", "section", "context"]
    assert "&lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;" in body["text"]
    assert "<!channel>" not in body["text"]
    fields = [f["text"] for f in body["blocks"][2]["fields"]]
    assert fields[:5] == ["*Metric*\np95_latency_ms", "*Value*\n7250.5", "*Threshold*\n&gt; 5000",
                          "*Window*\n15 min", "*Model*\ngpt&lt;4&gt;"]
    context = body["blocks"][3]["elements"][0]["text"]
    assert "al-42" in context and "<http://127.0.0.1:7860/?alert=al-42|Open dashboard>" in context


def test_slack_retries_500_and_429_honouring_retry_after(http_receiver: HttpReceiver) -> None:
    http_receiver.script(Reply(500, "internal_error"), Reply(429, "rate_limited", {"Retry-After": "1"}))
    result = slack_notifier(http_receiver.url).send(make_notification())
    requests = http_receiver.wait_for(3)
    assert result.status == "sent" and result.attempts == 3 and len(requests) == 3
    assert requests[2].received_at - requests[1].received_at >= 0.95
    assert requests[0].body == requests[2].body


def test_slack_400_is_not_retried_and_a_non_ok_body_fails(http_receiver: HttpReceiver) -> None:
    http_receiver.script(Reply(400, "invalid_payload"), Reply(200, "no_text"))
    notifier = slack_notifier(http_receiver.url)
    first, second = notifier.send(make_notification()), notifier.send(make_notification())
    assert len(http_receiver.wait_for(2)) == 2
    assert first.status == "failed" and first.attempts == 1 and first.http_status == 400
    assert first.error == "HTTP 400: invalid_payload"
    assert second.status == "failed" and second.error == "HTTP 200: no_text"


def test_slack_timeout_and_refused_port_fail_cleanly() -> None:
    with HttpReceiver(default=Reply(200, "ok", delay=1.5)) as slow:
        result = slack_notifier(slow.url, timeout=0.2, retry_count=1).send(make_notification())
        assert len(slow.wait_for(2)) == 2
    assert result.status == "failed" and result.attempts == 2 and result.error == "timed out waiting for the server"
    with refused_port() as port:
        refused = slack_notifier(f"http://127.0.0.1:{port}").send(make_notification())
    assert refused.status == "failed" and refused.attempts == 3 and refused.error == "connection refused"


# --- Discord ----------------------------------------------------------------------------------------------------------

def discord_notifier(base: str, **overrides: Any) -> DiscordNotifier:
    config: dict[str, Any] = dict(webhook_url=base + DISCORD_PATH, username="LLM Observer", **FAST)
    config.update(overrides)
    return DiscordNotifier(DiscordConfig(**config), name="discord")


def test_discord_posts_an_embed_with_severity_colour_and_no_mentions(http_receiver: HttpReceiver) -> None:
    http_receiver.script(Reply(204, ""))
    hostile = make_notification(rule_name="@everyone **urgent** [login](http://phish.example)")
    result = discord_notifier(http_receiver.url).send(hostile)
    body = http_receiver.wait_for(1)[0].json()
    assert result.status == "sent" and result.http_status == 204
    assert body["username"] == "LLM Observer" and body["allowed_mentions"] == {"parse": []}
    embed = body["embeds"][0]
    assert embed["color"] == 0xE74C3C and embed["url"] == "http://127.0.0.1:7860/?alert=al-42"
    assert embed["title"] == r"\[FIRING\] critical: @everyone \*\*urgent\*\* \[login\](http://phish.example)"
    assert {"name": "Value", "value": "7250.5", "inline": True} in embed["fields"]
    assert embed["timestamp"] == "2025-03-01T12:00:00+00:00"
    resolved = discord_notifier(http_receiver.url).send(
        make_notification(state="resolved", resolved_at=STARTED + timedelta(minutes=9)))
    assert resolved.ok and http_receiver.wait_for(2)[1].json()["embeds"][0]["color"] == 0x2ECC71


def test_discord_honours_retry_after_from_the_429_json_body(http_receiver: HttpReceiver) -> None:
    http_receiver.script(json_reply(429, {"message": "You are being rate limited.", "retry_after": 0.4,
                                          "global": False}), Reply(204, ""))
    result = discord_notifier(http_receiver.url).send(make_notification())
    first, second = http_receiver.wait_for(2)
    assert result.status == "sent" and result.attempts == 2
    assert second.received_at - first.received_at >= 0.38


def test_discord_404_disables_the_channel_until_enabled(http_receiver: HttpReceiver,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="llmobs")
    http_receiver.script(json_reply(404, {"message": "Unknown Webhook", "code": 10015}))
    notifier = discord_notifier(http_receiver.url)
    first = notifier.send(make_notification())
    later = notifier.send(make_notification())
    assert first.status == "failed" and first.http_status == 404 and first.attempts == 1
    assert later.status == "disabled" and later.attempts == 0 and "HTTP 404" in (later.error or "")
    assert len(http_receiver.wait_for(2, timeout=0.3)) == 1
    errors = [r for r in caplog.records if r.levelno == logging.ERROR and "disabled" in r.getMessage()]
    assert len(errors) == 1 and notifier.describe()["disabled"]
    notifier.enable()
    assert notifier.send(make_notification()).status == "sent" and len(http_receiver.wait_for(2)) == 2


# --- generic webhook --------------------------------------------------------------------------------------------------

def webhook_notifier(base: str, **overrides: Any) -> WebhookNotifier:
    config: dict[str, Any] = dict(url=base + "/hooks/llmobs", secret="whsec-SIGNING-key-55", **FAST)
    config.update(overrides)
    return WebhookNotifier(WebhookConfig(**config), name="ops-hook")


def test_webhook_posts_the_versioned_payload_signed_with_hmac(http_receiver: HttpReceiver) -> None:
    notifier = webhook_notifier(http_receiver.url, method="put", headers={"Authorization": "Bearer tok-ABCDEF-99"})
    result = notifier.send(make_notification(state="resolved", resolved_at=STARTED + timedelta(minutes=20)))
    request = http_receiver.wait_for(1)[0]
    assert result.status == "sent" and result.http_status == 200 and result.sent_at is not None
    assert request.method == "PUT" and request.path == "/hooks/llmobs"
    assert request.headers["authorization"] == "Bearer tok-ABCDEF-99"
    assert request.headers["idempotency-key"] == "al-42:resolved:3"
    assert request.headers["x-llmobs-event"] == "alert.resolved"
    assert hmac.compare_digest(request.headers["x-llmobs-signature"],
                               expected_signature("whsec-SIGNING-key-55", request.headers, request.body))
    assert abs(int(request.headers["x-llmobs-timestamp"]) - time.time()) < 60
    assert request.json() == {
        "version": 1, "event": "alert.resolved", "idempotency_key": "al-42:resolved:3", "alert_id": "al-42",
        "state": "resolved", "severity": "critical", "rule": {"id": "rule-7", "name": "High p95 latency"},
        "metric": "p95_latency_ms", "condition": ">", "value": 7250.5, "threshold": 5000.0, "window_minutes": 15.0,
        "model": "gpt-4o-mini", "filters": {"environment": "prod"}, "message": "p95 latency is 7250.5 ms",
        "started_at": "2025-03-01T12:00:00+00:00", "resolved_at": "2025-03-01T12:20:00+00:00",
        "dashboard_url": "http://127.0.0.1:7860/?alert=al-42", "transition_seq": 3}


def test_webhook_retries_500_and_429_with_the_same_key_and_body(http_receiver: HttpReceiver) -> None:
    http_receiver.script(Reply(500, "boom"), Reply(429, "slow down", {"Retry-After": "0.5"}))
    result = webhook_notifier(http_receiver.url).send(make_notification())
    requests = http_receiver.wait_for(3)
    assert result.status == "sent" and result.attempts == 3 and len(requests) == 3
    assert {r.headers["idempotency-key"] for r in requests} == {"al-42:firing:3"}
    assert len({r.body for r in requests}) == 1
    for r in requests:
        assert r.headers["x-llmobs-signature"] == expected_signature("whsec-SIGNING-key-55", r.headers, r.body)
    assert requests[2].received_at - requests[1].received_at >= 0.48


def test_webhook_400_and_redirects_are_not_retried(http_receiver: HttpReceiver) -> None:
    with HttpReceiver() as elsewhere:
        http_receiver.script(Reply(400, '{"error":"bad schema"}'), Reply(302, "", {"Location": elsewhere.url}))
        notifier = webhook_notifier(http_receiver.url)
        bad, moved = notifier.send(make_notification()), notifier.send(make_notification())
        assert elsewhere.wait_for(1, timeout=0.2) == []
    assert len(http_receiver.wait_for(2)) == 2
    assert bad.status == "failed" and bad.attempts == 1 and bad.error == 'HTTP 400: {"error":"bad schema"}'
    assert moved.status == "failed" and moved.attempts == 1 and moved.http_status == 302


def test_webhook_timeout_and_refused_port_fail_cleanly() -> None:
    with HttpReceiver(default=Reply(200, "ok", delay=1.5)) as slow:
        started = time.monotonic()
        result = webhook_notifier(slow.url, timeout=0.2, retry_count=1).send(make_notification())
        assert time.monotonic() - started < 1.2 and len(slow.wait_for(2)) == 2
    assert result.status == "failed" and result.attempts == 2 and result.error == "timed out waiting for the server"
    with refused_port() as port:
        refused = webhook_notifier(f"http://127.0.0.1:{port}").send(make_notification())
    assert refused.status == "failed" and refused.attempts == 3 and refused.error == "connection refused"


def test_send_test_delivers_a_test_notification(http_receiver: HttpReceiver) -> None:
    result = webhook_notifier(http_receiver.url).send_test()
    body = http_receiver.wait_for(1)[0].json()
    assert result.ok and body["state"] == "test" and body["event"] == "alert.test"
    assert "ops-hook channel works" in body["message"]


def test_untrusted_tls_certificates_are_rejected_without_retries(tmp_path: Path) -> None:
    tls = self_signed_tls(tmp_path)
    with HttpReceiver(tls=tls) as https, SmtpReceiver(starttls=tls) as smtp:
        results = [webhook_notifier(https.url).send(make_notification()),
                   slack_notifier(https.url).send(make_notification()),
                   email_notifier(smtp.port, use_tls=True).send(make_notification())]
        assert https.requests == [] and smtp.messages == [] and smtp.attempts == 0
    for result in results:
        assert result.status == "failed" and result.attempts == 1
        assert (result.error or "").startswith("TLS certificate rejected: "), result.error


# --- secrets ----------------------------------------------------------------------------------------------------------

def test_secrets_stay_out_of_logs_errors_and_describe_even_when_the_server_echoes_them(
        http_receiver: HttpReceiver, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    base = http_receiver.url
    echoes = [f"no such hook: {base}{SLACK_PATH} (slackTOKENxyz123)", f"unknown: {base}{DISCORD_PATH}",
              "bad signature for whsec-SIGNING-key-55 / apikey-SECRET-77"]
    http_receiver.script(*[Reply(500, echo) for echo in echoes for _ in range(2)])
    notifiers = [slack_notifier(base, retry_count=1), discord_notifier(base, retry_count=1),
                 webhook_notifier(base, retry_count=1, headers={"X-Api-Key": "apikey-SECRET-77"})]
    results = [n.send(make_notification()) for n in notifiers]
    assert len(http_receiver.wait_for(6)) == 6
    assert all(r.status == "failed" and r.attempts == 2 and r.http_status == 500 for r in results)
    secrets = ("slackTOKENxyz123", "discordTOKENabc987", "whsec-SIGNING-key-55", "apikey-SECRET-77")
    shown = [caplog.text] + [r.error or "" for r in results] + [str(n.describe()) + repr(n) for n in notifiers]
    for text in shown:
        for secret in secrets:
            assert secret not in text
    assert notifiers[0].describe()["webhook_url"] == "http://127.0.0.1:%d/services/T000/****" % http_receiver.port
    assert results[0].error == f"HTTP 500: no such hook: {base}/services/T000/**** (****)"
    assert results[2].error == "HTTP 500: bad signature for **** / ****"


def test_a_token_in_the_first_path_segment_is_masked_in_describe_and_errors(http_receiver: HttpReceiver) -> None:
    token = "bot123456:AAE-tokenSECRET"
    http_receiver.script(Reply(500, f"unknown bot {token}"))
    notifier = WebhookNotifier(WebhookConfig(url=f"{http_receiver.url}/{token}/sendMessage", **{**FAST,
                                                                                              "retry_count": 0}))
    result = notifier.send(make_notification())
    assert http_receiver.wait_for(1)[0].path == f"/{token}/sendMessage"  # the real URL was used
    assert notifier.describe()["url"] == f"{http_receiver.url}/****"
    assert result.error == "HTTP 500: unknown bot ****"
    assert notifier.mask(f"POST {http_receiver.url}/{token}/sendMessage") == f"POST {http_receiver.url}/****"


# --- fan-out ----------------------------------------------------------------------------------------------------------

def test_deliver_all_with_one_hanging_channel_delivers_the_others_within_the_timeout(
        http_receiver: HttpReceiver) -> None:
    with HttpReceiver(default=Reply(200, "ok", delay=4)) as hanging:
        notifiers = [webhook_notifier(hanging.url, timeout=10, retry_count=0),
                     slack_notifier(http_receiver.url), webhook_notifier(http_receiver.url), LogNotifier()]
        started = time.monotonic()
        results = deliver_all(notifiers, make_notification(), timeout=1.0)
        elapsed = time.monotonic() - started
        assert len(hanging.wait_for(1)) == 1
    assert elapsed < 1.5
    assert [r.channel for r in results] == ["ops-hook", "ops-slack", "ops-hook", "log"]
    assert [r.status for r in results] == ["failed", "sent", "sent", "sent"]
    assert "no result within 1 s" in (results[0].error or "")
    paths = sorted(r.path for r in http_receiver.wait_for(2))
    assert paths == ["/hooks/llmobs", SLACK_PATH]


# --- log channel ------------------------------------------------------------------------------------------------------

def test_log_notifier_writes_one_line_on_the_llmobs_alerts_logger(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="llmobs")
    result = LogNotifier(name="local").send(make_notification(rule_name="%s %(boom)s"))
    lines = [r for r in caplog.records if r.name == "llmobs.alerts" and r.getMessage().startswith("ALERT")]
    assert result.status == "sent" and len(lines) == 1 and lines[0].levelno == logging.ERROR
    assert "[FIRING] critical: %s %(boom)s" in lines[0].getMessage() and "key=al-42:firing:3" in lines[0].getMessage()


# --- configuration ----------------------------------------------------------------------------------------------------

def test_notifiers_from_config_expands_env_and_converts_strings(http_receiver: HttpReceiver,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_SLACK_WEBHOOK_URL", http_receiver.url + SLACK_PATH)
    with SmtpReceiver() as smtp:
        monkeypatch.setenv("TEST_SMTP_PORT", str(smtp.port))
        channels = {
            "ops-slack": {"type": "slack", "webhook_url": "${TEST_SLACK_WEBHOOK_URL}", "channel": "#llm-alerts",
                          "retry_count": "1", "timeout": "2"},
            "oncall": {"type": "email", "smtp_server": "127.0.0.1", "smtp_port": "${TEST_SMTP_PORT}",
                       "use_tls": "false", "from_address": "llmobs@example.com",
                       "recipients": "a@example.com, b@example.com"},
            "muted": {"type": "log", "enabled": "false"},
            "local": {"type": "log", "level": "warning"},
        }
        built = notifiers_from_config(channels)
        assert list(built) == ["ops-slack", "oncall", "local"]
        results = deliver_all(list(built.values()), make_notification(), timeout=5)
        mail = smtp.wait_for(1)[0]
    assert [r.status for r in results] == ["sent", "sent", "sent"]
    assert http_receiver.wait_for(1)[0].json()["channel"] == "#llm-alerts"
    assert mail.rcpt_tos == ["a@example.com", "b@example.com"]
    assert built["ops-slack"].describe()["retry_count"] == 1


@pytest.mark.parametrize(("build", "expected", "hidden"), [
    (lambda: SlackConfig(webhook_url=""), "SlackConfig.webhook_url = '' is invalid: is required", None),
    (lambda: SlackConfig(webhook_url="ftp://hooks.example/a/b/SECRETtoken1"),
     "SlackConfig.webhook_url = ftp://hooks.example/a/**** is invalid: must be an http:// or https:// URL",
     "SECRETtoken1"),
    (lambda: EmailConfig(smtp_server="smtp.example.com", smtp_port=70000, from_address="a@example.com"),
     "EmailConfig.smtp_port = 70000 is invalid: must be an integer from 1 to 65535", None),
    (lambda: WebhookConfig(url="https://example.com/h", method="DELETE"),
     "WebhookConfig.method = 'DELETE' is invalid: must be one of POST, PUT, PATCH", None),
    (lambda: WebhookConfig(url="https://example.com/h", secret="line\nbreak-SECRET"),
     "WebhookConfig.secret = **** is invalid: must be a single line", "break-SECRET"),
    (lambda: notifiers_from_config({"ops": {"type": "slack", "webhook_url": "ftp://h.example/x/y/TOKENzz99"}}),
     "alerts.channels.ops.webhook_url = ftp://h.example/x/**** is invalid", "TOKENzz99"),
    (lambda: notifiers_from_config({"ops": {"type": "pager"}}),
     "alerts.channels.ops.type = 'pager' is invalid: must be one of email, slack, discord, webhook, log", None),
    (lambda: notifiers_from_config({"ops": {"type": "slack", "webhok_url": "https://x.example/a"}}),
     "unknown key alerts.channels.ops.webhok_url for a slack channel; allowed: type, enabled", None),
    (lambda: notifiers_from_config({"mail": {"type": "email", "smtp_server": "s", "from_address": "a@b.c"}}),
     "alerts.channels.mail.recipients is required for a email channel", None),
    (lambda: notifiers_from_config({"mail": {"type": "email", "smtp_server": "s", "from_address": "a@b.c",
                                             "recipients": ["x@y.z"], "smtp_port": "smtp"}}),
     "alerts.channels.mail.smtp_port = 'smtp' is invalid: must be an integer", None),
    (lambda: notifiers_from_config({"ops": {"type": "slack", "webhook_url": "${LLMOBS_TEST_UNSET_VAR_X}"}}),
     "refers to ${LLMOBS_TEST_UNSET_VAR_X}, which is not set", None),
    (lambda: make_notification(started_at=datetime(2025, 1, 1)), "Notification.started_at", None),
    (lambda: make_notification(severity="fatal"), "Notification.severity = 'fatal' is invalid", None),
])
def test_invalid_configs_raise_value_errors_naming_field_value_and_allowed(build: Any, expected: str,
                                                                           hidden: str | None) -> None:
    with pytest.raises(ValueError) as info:
        build()
    assert expected in str(info.value)
    if hidden:
        assert hidden not in str(info.value)
    if "alerts.channels" in expected:
        assert isinstance(info.value, ConfigError)

