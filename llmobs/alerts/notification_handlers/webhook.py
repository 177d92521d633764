"""Generic webhook channel: a stable, versioned JSON body, an Idempotency-Key, and an optional HMAC-SHA256 signature.

A receiver verifies ``X-LLMObs-Signature: sha256=<hex>`` by computing
``hmac.new(secret, f"{X-LLMObs-Timestamp}.".encode() + raw_body, sha256).hexdigest()`` and comparing with
``hmac.compare_digest`` (and rejecting old timestamps). See docs/alerts_channels.md.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

from llmobs.alerts.notification import Notification
from llmobs.alerts.notification_handlers.base import (
    MASK, ChannelConfigError, DeliveryOptions, DeliveryResult, Notifier, check_http_url, check_text, mask_url,
    url_secrets,
)
from llmobs.alerts.notification_handlers.retry import Attempt, run_with_retries
from llmobs.alerts.notification_handlers.transport import build_opener, classify, request

METHODS: tuple[str, ...] = ("POST", "PUT", "PATCH")
IDEMPOTENCY_HEADER = "Idempotency-Key"
TIMESTAMP_HEADER = "X-LLMObs-Timestamp"
SIGNATURE_HEADER = "X-LLMObs-Signature"
EVENT_HEADER = "X-LLMObs-Event"
_RESERVED = {h.lower() for h in ("Content-Type", "Content-Length", "Host", IDEMPOTENCY_HEADER, TIMESTAMP_HEADER,
                                 SIGNATURE_HEADER, EVENT_HEADER)}


@dataclass(frozen=True)
class WebhookConfig(DeliveryOptions):
    """Where and how to post; ``secret`` turns on request signing. Header values are treated as secrets.

    >>> WebhookConfig(url="https://example.com/hooks/llmobs", secret="s3cret", retry_count=2).method
    'POST'
    """

    url: str
    method: str = "POST"
    headers: Mapping[str, str] = field(default_factory=dict, hash=False)
    secret: str | None = None

    def __post_init__(self) -> None:
        check_http_url("WebhookConfig", "url", self.url)
        if not isinstance(self.method, str) or self.method.upper() not in METHODS:
            raise ChannelConfigError("WebhookConfig", "method", repr(self.method),
                                     f"must be one of {', '.join(METHODS)}")
        object.__setattr__(self, "method", self.method.upper())
        if not isinstance(self.headers, Mapping):
            raise ChannelConfigError("WebhookConfig", "headers", MASK, "must be a mapping of header name to value")
        for name, value in self.headers.items():
            check_text("WebhookConfig", f"headers[{name!r}]", name, required=True)
            check_text("WebhookConfig", f"headers[{name!r}]", value, required=True, secret=True)
            if name.lower() in _RESERVED:
                raise ChannelConfigError("WebhookConfig", f"headers[{name!r}]", MASK,
                                         "is set by llmobs; do not override " + ", ".join(sorted(_RESERVED)))
        object.__setattr__(self, "headers", dict(self.headers))
        check_text("WebhookConfig", "secret", self.secret, secret=True)
        self._validate_delivery()


def canonical_body(notification: Notification) -> bytes:
    """The exact bytes posted: compact, key-sorted UTF-8 JSON, identical on every retry."""
    return json.dumps(notification.to_payload(), sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str).encode("utf-8")


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header value: ``sha256=`` + hex HMAC-SHA256 of ``f"{timestamp}.".encode() + body``.

    >>> sign("k", "1700000000", b"{}")[:7]
    'sha256='
    """
    digest = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    return "sha256=" + digest


class WebhookNotifier(Notifier):
    """Posts the versioned JSON payload to any HTTP endpoint.

    >>> WebhookNotifier(WebhookConfig(url="https://example.com/hook"), name="ops-hook").name
    'ops-hook'
    """

    channel_type = "webhook"

    def __init__(self, config: WebhookConfig, name: str | None = None) -> None:
        super().__init__(name)
        self.config = config
        self._opener = build_opener()

    def _deliver(self, notification: Notification) -> DeliveryResult:
        body = canonical_body(notification)
        fixed = {**self.config.headers, "Content-Type": "application/json; charset=utf-8",
                 IDEMPOTENCY_HEADER: notification.idempotency_key, EVENT_HEADER: f"alert.{notification.state}"}

        def attempt(number: int) -> Attempt:
            headers = dict(fixed)
            if self.config.secret:
                timestamp = str(int(time.time()))
                headers[TIMESTAMP_HEADER] = timestamp
                headers[SIGNATURE_HEADER] = sign(self.config.secret, timestamp, body)
            reply = request(self._opener, self.config.url, self.config.method, body, headers, self.config.timeout)
            return classify(reply)

        outcome, attempts = run_with_retries(attempt, self.config)
        return self._result("sent" if outcome.ok else "failed", attempts, error=outcome.error,
                            http_status=outcome.http_status)

    def _secrets(self) -> list[str]:
        found = url_secrets(self.config.url) + list(self.config.headers.values())
        return found + ([self.config.secret] if self.config.secret else [])

    def _describe_config(self) -> dict[str, Any]:
        c = self.config
        return {"url": mask_url(c.url), "method": c.method, "headers": {k: MASK for k in c.headers},
                "signed": bool(c.secret), "timeout": c.timeout, "retry_count": c.retry_count}
