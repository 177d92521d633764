"""Discord channel: an embed coloured by severity, mentions switched off, 429 ``retry_after`` honoured, 404 disables."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from typing import Any

from llmobs.alerts.notification import Notification
from llmobs.alerts.notification_handlers.base import (
    DeliveryOptions, DeliveryResult, Notifier, check_http_url, check_text, logger, mask_url, url_secrets,
)
from llmobs.alerts.notification_handlers.retry import Attempt, run_with_retries
from llmobs.alerts.notification_handlers.transport import HttpReply, build_opener, classify, request

COLOURS: dict[str, int] = {"info": 0x3498DB, "warning": 0xF39C12, "critical": 0xE74C3C}
RESOLVED_COLOUR = 0x2ECC71
TEST_COLOUR = 0x95A5A6
_MARKDOWN = re.compile(r"([\\*_~`|>#\[\]])")


@dataclass(frozen=True)
class DiscordConfig(DeliveryOptions):
    """The webhook URL (a secret: it embeds the token) and the display name of the bot.

    >>> DiscordConfig(webhook_url="https://discord.com/api/webhooks/1/abc").username
    'LLM Observer'
    """

    webhook_url: str
    username: str = "LLM Observer"
    avatar_url: str | None = None

    def __post_init__(self) -> None:
        check_http_url("DiscordConfig", "webhook_url", self.webhook_url)
        check_text("DiscordConfig", "username", self.username, required=True)
        if self.avatar_url is not None:
            check_http_url("DiscordConfig", "avatar_url", self.avatar_url, secret=False)
        self._validate_delivery()


def escape_markdown(text: str) -> str:
    r"""Backslash-escape Discord markdown so untrusted values cannot format text or forge links.

    >>> print(escape_markdown("**bold** [x](http://e)"))
    \*\*bold\*\* \[x\](http://e)
    """
    return _MARKDOWN.sub(r"\\\1", text)


def colour(notification: Notification) -> int:
    """Embed colour: green when resolved, grey for a test, otherwise by severity."""
    if notification.state == "resolved":
        return RESOLVED_COLOUR
    if notification.state == "test":
        return TEST_COLOUR
    return COLOURS[notification.severity]


def build_payload(notification: Notification, config: DiscordConfig) -> dict[str, Any]:
    """The execute-webhook JSON: one embed with inline fields, within Discord's length limits."""
    embed: dict[str, Any] = {
        "title": escape_markdown(notification.headline())[:256],
        "description": escape_markdown(notification.message or notification.condition_text())[:4096],
        "color": colour(notification),
        "fields": [{"name": label, "value": escape_markdown(value)[:1024] or "-", "inline": True}
                   for label, value in notification.fields()][:25],
        "timestamp": (notification.resolved_at or notification.started_at).isoformat(),
        "footer": {"text": f"alert {notification.alert_id} | rule {notification.rule_id}"[:2048]},
    }
    if notification.dashboard_url:
        embed["url"] = notification.dashboard_url
    payload: dict[str, Any] = {"username": config.username[:80], "embeds": [embed],
                               "allowed_mentions": {"parse": []}}
    if config.avatar_url:
        payload["avatar_url"] = config.avatar_url
    return payload


def _discord_retry_after(reply: HttpReply, outcome: Attempt) -> Attempt:
    """On 429 prefer the JSON body's ``retry_after`` (seconds, may be fractional) over the header."""
    try:
        seconds = float(json.loads(reply.body.decode("utf-8"))["retry_after"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return outcome
    return Attempt(ok=False, retryable=True, error=outcome.error, http_status=429, retry_after=max(0.0, seconds))


class DiscordNotifier(Notifier):
    """Posts an embed to a Discord webhook; a 404 (webhook deleted) disables the channel until ``enable()``.

    >>> DiscordNotifier(DiscordConfig(webhook_url="https://discord.com/api/webhooks/1/abc")).describe()["webhook_url"]
    'https://discord.com/api/webhooks/****'
    """

    channel_type = "discord"

    def __init__(self, config: DiscordConfig, name: str | None = None) -> None:
        super().__init__(name)
        self.config = config
        self._opener = build_opener()
        self._lock = threading.Lock()
        self._disabled: str | None = None

    @property
    def disabled(self) -> str | None:
        """Why the channel is disabled, or None when it is active."""
        return self._disabled

    def enable(self) -> None:
        """Re-enable the channel after its webhook URL was fixed."""
        with self._lock:
            self._disabled = None

    def _deliver(self, notification: Notification) -> DeliveryResult:
        if self._disabled:
            return self._result("disabled", 0, error=self._disabled)
        body = json.dumps(build_payload(notification, self.config), ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json"}

        def attempt(number: int) -> Attempt:
            reply = request(self._opener, self.config.webhook_url, "POST", body, headers, self.config.timeout)
            outcome = classify(reply)
            if reply.status == 429:
                return _discord_retry_after(reply, outcome)
            if reply.status == 404:
                return Attempt(ok=False, error=outcome.error, http_status=404, disable=True)
            return outcome

        outcome, attempts = run_with_retries(attempt, self.config)
        if outcome.disable:
            self._disable(f"Discord webhook not found (HTTP 404) at {mask_url(self.config.webhook_url)}; "
                          "channel disabled until enable() is called")
        return self._result("sent" if outcome.ok else "failed", attempts, http_status=outcome.http_status,
                            error=self._disabled if outcome.disable else outcome.error)

    def _disable(self, reason: str) -> None:
        """Stop sending to a webhook that no longer exists, and say so once on the log."""
        with self._lock:
            first = self._disabled is None
            self._disabled = reason
        if first:
            logger.error("alert channel %s (discord): %s", self.name, reason)

    def _secrets(self) -> list[str]:
        return url_secrets(self.config.webhook_url)

    def _describe_config(self) -> dict[str, Any]:
        return {"webhook_url": mask_url(self.config.webhook_url), "username": self.config.username,
                "disabled": self._disabled, "timeout": self.config.timeout, "retry_count": self.config.retry_count}
