"""Slack channel: a Block Kit message through ``slack_sdk.webhook.WebhookClient`` and its retry handlers.

slack_sdk is optional (``pip install 'llmobs[scheduler]'``); it is imported when a SlackNotifier is created.
"""

from __future__ import annotations

import logging
import re
import ssl
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llmobs.alerts.notification import Notification
from llmobs.alerts.notification_handlers.base import (
    ChannelConfigError, DeliveryOptions, DeliveryResult, Notifier, SecretMaskingFilter, check_http_url, check_text,
    logger, mask_url, url_secrets,
)
from llmobs.alerts.notification_handlers.retry import backoff_delay, is_retryable_status, parse_retry_after

if TYPE_CHECKING:
    from slack_sdk.http_retry import RetryHandler

_EMOJI_RE = re.compile(r"^:[a-z0-9_+\-]+:$")
_ICONS = {"critical": ":rotating_light:", "warning": ":warning:", "info": ":information_source:"}


@dataclass(frozen=True)
class SlackConfig(DeliveryOptions):
    """An incoming-webhook URL (secret) and optional legacy overrides of channel, username and icon.

    >>> SlackConfig(webhook_url="https://hooks.slack.com/services/T0/B0/X", channel="#llm-alerts").channel
    '#llm-alerts'
    """

    webhook_url: str
    channel: str | None = None
    username: str | None = None
    icon_emoji: str | None = None

    def __post_init__(self) -> None:
        check_http_url("SlackConfig", "webhook_url", self.webhook_url)
        check_text("SlackConfig", "channel", self.channel)
        check_text("SlackConfig", "username", self.username)
        if self.icon_emoji is not None and (not isinstance(self.icon_emoji, str)
                                            or not _EMOJI_RE.match(self.icon_emoji)):
            raise ChannelConfigError("SlackConfig", "icon_emoji", repr(self.icon_emoji),
                                     "must look like :emoji_name: (lowercase letters, digits, _ + -)")
        self._validate_delivery()


def escape_mrkdwn(text: str) -> str:
    """Escape Slack's control characters (&, <, >) so data cannot create links or mentions.

    >>> escape_mrkdwn("<!channel> & <https://evil|click>")
    '&lt;!channel&gt; &amp; &lt;https://evil|click&gt;'
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _icon(notification: Notification) -> str:
    if notification.state == "resolved":
        return ":white_check_mark:"
    if notification.state == "test":
        return ":test_tube:"
    return _ICONS[notification.severity]


def _link(url: str | None) -> str:
    """A Slack link to the dashboard, or nothing when the URL could break the ``<url|text>`` syntax."""
    if not url or not re.match(r"^https?://[^\s<>|]+$", url):
        return ""
    return f" | <{url}|Open dashboard>"


def build_message(notification: Notification, config: SlackConfig) -> dict[str, Any]:
    """The webhook body: header, summary, fields (metric, value, threshold, window, model), context, fallback text."""
    n = notification
    fields = [{"type": "mrkdwn", "text": f"*{label}*\n{escape_mrkdwn(value)}"[:2000]} for label, value in n.fields()]
    context = (f"alert `{escape_mrkdwn(n.alert_id)}` | rule `{escape_mrkdwn(n.rule_id)}` | "
               f"{escape_mrkdwn(n.condition_text())}{_link(n.dashboard_url)}")
    body: dict[str, Any] = {
        "text": escape_mrkdwn(f"{n.headline()}: {n.message or n.condition_text()}")[:3000],
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": f"{_icon(n)} {n.headline()}"[:150],
                                        "emoji": True}},
            {"type": "section", "text": {"type": "mrkdwn",
                                         "text": escape_mrkdwn(n.message or n.condition_text())[:3000] or "-"}},
            {"type": "section", "fields": fields[:10]},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": context[:3000]}]},
        ],
    }
    for key in ("channel", "username", "icon_emoji"):
        if getattr(config, key):
            body[key] = getattr(config, key)
    return body


def _retry_handlers(options: DeliveryOptions, attempts: list[int]) -> list[RetryHandler]:
    """slack_sdk's builtin handlers (connection errors, 429, 5xx) with our capped backoff, counting retries."""
    from http.client import RemoteDisconnected
    from urllib.error import URLError

    from slack_sdk.http_retry import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler, RetryIntervalCalculator
    from slack_sdk.http_retry.builtin_handlers import ServerErrorRetryHandler

    class Backoff(RetryIntervalCalculator):
        def calculate_sleep_duration(self, current_attempt: int) -> float:
            attempts[0] += 1
            return backoff_delay(options, current_attempt + 1)

    class ServerErrors(ServerErrorRetryHandler):
        """Every 5xx and 408, not only 500/503."""

        def _can_retry(self, *, state: Any, request: Any, response: Any = None, error: Any = None) -> bool:
            return response is not None and is_retryable_status(response.status_code) and response.status_code != 429

    class RateLimit(RateLimitErrorRetryHandler):
        """Honours Retry-After (seconds or date) exactly, and gives up when it exceeds ``max_retry_after``."""

        def _can_retry(self, *, state: Any, request: Any, response: Any = None, error: Any = None) -> bool:
            return (super()._can_retry(state=state, request=request, response=response, error=error)
                    and self._wait(response) <= options.max_retry_after)

        def prepare_for_next_attempt(self, *, state: Any, request: Any, response: Any = None,
                                     error: Any = None) -> None:
            state.next_attempt_requested = True
            attempts[0] += 1
            time.sleep(self._wait(response))
            state.increment_current_attempt()

        @staticmethod
        def _wait(response: Any) -> float:
            values = {k.lower(): v for k, v in (response.headers or {}).items()}.get("retry-after") or [None]
            seconds = parse_retry_after(values[0] if isinstance(values, list) else values)
            return seconds if seconds is not None else backoff_delay(options, 1)

    class NetworkErrors(ConnectionErrorRetryHandler):
        """Connection problems and timeouts, but not a rejected TLS certificate (retrying cannot fix it)."""

        def _can_retry(self, *, state: Any, request: Any, response: Any = None, error: Any = None) -> bool:
            if isinstance(getattr(error, "reason", None), ssl.SSLCertVerificationError):
                return False
            return super()._can_retry(state=state, request=request, response=response, error=error)

    backoff = Backoff()
    retries = options.retry_count
    network = [URLError, ConnectionResetError, RemoteDisconnected, TimeoutError]
    return [NetworkErrors(retries, backoff, error_types=network), RateLimit(retries, backoff),
            ServerErrors(retries, backoff)]


class SlackNotifier(Notifier):
    """Posts a Block Kit message to a Slack incoming webhook; success means HTTP 200 with body ``ok``.

    >>> url = "https://hooks.slack.com/services/T000/B000/XXXX"
    >>> SlackNotifier(SlackConfig(webhook_url=url, channel="#llm-alerts")).describe()["webhook_url"]
    'https://hooks.slack.com/services/T000/****'
    """

    channel_type = "slack"

    def __init__(self, config: SlackConfig, name: str | None = None) -> None:
        try:
            import slack_sdk.webhook  # noqa: F401
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("SlackNotifier needs slack_sdk: pip install 'llmobs[scheduler]' "
                              "(or pip install slack-sdk)") from exc
        super().__init__(name)
        self.config = config
        self._client_logger = self._make_client_logger()

    def _make_client_logger(self) -> logging.Logger:
        """A private child logger of ``llmobs.alerts`` for slack_sdk (its messages include the URL): masked, no
        debug dumps of bodies and headers."""
        client_logger = logging.Logger("llmobs.alerts.slack_sdk", logging.INFO)
        client_logger.parent = logger
        client_logger.addFilter(SecretMaskingFilter(self._secrets()))
        return client_logger

    def _deliver(self, notification: Notification) -> DeliveryResult:
        from slack_sdk.webhook import WebhookClient

        retries = [0]
        client = WebhookClient(self.config.webhook_url, timeout=self.config.timeout,  # type: ignore[arg-type]
                               logger=self._client_logger, retry_handlers=_retry_handlers(self.config, retries))
        try:
            response = client.send_dict(build_message(notification, self.config))
        except Exception as exc:  # noqa: BLE001 - network errors after the retries are spent
            return self._result("failed", retries[0] + 1, error=_describe_error(exc))
        body = (response.body or "").strip()
        if response.status_code == 200 and body == "ok":
            return self._result("sent", retries[0] + 1, http_status=200)
        return self._result("failed", retries[0] + 1, http_status=response.status_code,
                            error=f"HTTP {response.status_code}: {body[:300] or '(empty body)'}")

    def _secrets(self) -> list[str]:
        return url_secrets(self.config.webhook_url)

    def _describe_config(self) -> dict[str, Any]:
        c = self.config
        return {"webhook_url": mask_url(c.webhook_url), "channel": c.channel, "username": c.username,
                "icon_emoji": c.icon_emoji, "timeout": c.timeout, "retry_count": c.retry_count}


def _describe_error(exc: Exception) -> str:
    """Short text for a network failure raised by slack_sdk."""
    reason = getattr(exc, "reason", None)
    if isinstance(exc, TimeoutError) or isinstance(reason, TimeoutError):
        return "timed out waiting for the server"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, ssl.SSLCertVerificationError):
        return f"TLS certificate rejected: {reason.verify_message}"
    return f"{type(exc).__name__}: {reason or exc}"
