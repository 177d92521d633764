"""What every channel shares: the Notifier interface, DeliveryResult, delivery options, secret masking, validation."""

from __future__ import annotations

import logging
import re
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, ClassVar, Iterable
from urllib.parse import parse_qsl, urlsplit

from llmobs.alerts.notification import Notification, utcnow

logger = logging.getLogger("llmobs.alerts")

STATUSES: tuple[str, ...] = ("sent", "failed", "disabled")
MASK = "****"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@#-]{0,63}$")
_PLAIN_SEGMENT_RE = re.compile(r"^[A-Za-z0-9_.-]{1,12}$")


class ChannelConfigError(ValueError):
    """A channel setting llmobs cannot use; names the field, the (masked) value and what is allowed."""

    def __init__(self, owner: str, field_name: str, shown: str, why: str) -> None:
        self.owner, self.field, self.shown, self.why = owner, field_name, shown, why
        super().__init__(f"{owner}.{field_name} = {shown} is invalid: {why}")


@dataclass(frozen=True)
class DeliveryResult:
    """Outcome of one ``send``: never an exception. ``error`` is already masked and safe to log or store."""

    channel: str
    status: str  # "sent" | "failed" | "disabled"
    attempts: int
    error: str | None = None
    sent_at: datetime | None = None
    http_status: int | None = None
    channel_type: str = ""
    duration_ms: float = 0.0

    @property
    def ok(self) -> bool:
        """True when the channel accepted the notification."""
        return self.status == "sent"


@dataclass(frozen=True, kw_only=True)
class DeliveryOptions:
    """Per-request timeout and retry policy shared by every channel config (keyword-only fields).

    Retries wait ``min(backoff_max, backoff_base * 2**(n-1))`` scaled by a random factor in [0.5, 1]; a server's
    Retry-After is honoured exactly unless it exceeds ``max_retry_after``, in which case the send gives up.
    """

    timeout: float = 10.0
    retry_count: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    max_retry_after: float = 60.0

    def _validate_delivery(self) -> None:
        owner = type(self).__name__
        _check_number(owner, "timeout", self.timeout, minimum=0.001, allowed="a number of seconds > 0")
        retries = self.retry_count
        if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 20:
            raise ChannelConfigError(owner, "retry_count", repr(self.retry_count), "must be an integer from 0 to 20")
        _check_number(owner, "backoff_base", self.backoff_base, minimum=0, allowed="a number of seconds >= 0")
        _check_number(owner, "backoff_max", self.backoff_max, minimum=self.backoff_base,
                      allowed=f"a number of seconds >= backoff_base ({self.backoff_base:g})")
        _check_number(owner, "max_retry_after", self.max_retry_after, minimum=0, allowed="a number of seconds >= 0")


def _check_number(owner: str, name: str, value: Any, *, minimum: float, allowed: str) -> None:
    """Raise ChannelConfigError unless ``value`` is a real number >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or value < minimum:
        raise ChannelConfigError(owner, name, repr(value), f"must be {allowed}")


# --- secrets --------------------------------------------------------------------------------------------------------

def _shown_segments(segments: list[str]) -> list[str]:
    """The leading path segments a masked URL may show: at most two, never more than half, and only short plain
    words (a token such as ``bot123456:AAE...`` in the first segment stops the run)."""
    shown: list[str] = []
    for segment in segments[:min(2, len(segments) // 2)]:
        if not _PLAIN_SEGMENT_RE.match(segment):
            break
        shown.append(segment)
    return shown


def mask_url(url: str) -> str:
    """Keep scheme, host, port and at most the first two path segments (never more than half of them, and only
    short plain words).

    >>> mask_url("https://hooks.slack.com/services/T000/B000/XXXX")
    'https://hooks.slack.com/services/T000/****'
    >>> mask_url("https://user:pw@example.com/hook?token=abc")
    'https://example.com/****'
    >>> mask_url("https://api.telegram.org/bot123456:AAE-secret/sendMessage")
    'https://api.telegram.org/****'
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return MASK
    if not parts.scheme or not host:
        return MASK
    keep = _shown_segments([s for s in parts.path.split("/") if s])
    return f"{parts.scheme}://{host}{port}/" + "".join(s + "/" for s in keep) + MASK


def url_secrets(url: str) -> list[str]:
    """Pieces of a URL that must never be shown: the whole URL, its secret path tail, query (and each value in it)
    and password."""
    found = [url]
    try:
        parts = urlsplit(url)
    except ValueError:
        return found
    segments = [s for s in parts.path.split("/") if s]
    tail = segments[len(_shown_segments(segments)):]
    if tail:
        found.append("/".join(tail))
        found.extend(s for s in tail if len(s) >= 6)
    if parts.query:
        found.append(parts.query)
        found.extend(value for _, value in parse_qsl(parts.query) if len(value) >= 6)
    if parts.password:
        found.append(parts.password)
    return found


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret (longest first) in ``text``: URLs by their masked form, anything else by ``****``.

    >>> scrub("POST https://h.example/x/SECRET failed (SECRET)", ["https://h.example/x/SECRET", "SECRET"])
    'POST https://h.example/x/**** failed (****)'
    """
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, mask_url(secret) if "://" in secret else MASK)
    return text


class SecretMaskingFilter(logging.Filter):
    """Rewrites records of a third-party client's logger so URLs and tokens never reach handlers."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record must not break delivery
            text = str(record.msg)
        record.msg = scrub(text, self._secrets)
        record.args = None
        return True


# --- validation helpers ---------------------------------------------------------------------------------------------

def check_http_url(owner: str, name: str, value: Any, *, secret: bool = True) -> None:
    """Raise ChannelConfigError unless ``value`` is an absolute http(s) URL with a host."""
    shown = (mask_url(value) if secret else repr(value)) if isinstance(value, str) and value else repr(value)
    if not isinstance(value, str) or not value.strip():
        raise ChannelConfigError(owner, name, shown, "is required: an http:// or https:// URL")
    try:
        parts = urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ChannelConfigError(owner, name, shown, "must be an http:// or https:// URL with a valid host and port") \
            from None
    if parts.scheme not in ("http", "https") or not host:
        raise ChannelConfigError(owner, name, shown, "must be an http:// or https:// URL with a host")
    if any(c in value for c in "\r\n\t "):
        raise ChannelConfigError(owner, name, shown, "must not contain spaces or line breaks")


def check_text(owner: str, name: str, value: Any, *, required: bool = False, secret: bool = False) -> None:
    """Raise ChannelConfigError unless ``value`` is a single-line string (or None when optional)."""
    shown = MASK if secret and value else repr(value)
    if value is None and not required:
        return
    if not isinstance(value, str) or (required and not value.strip()):
        raise ChannelConfigError(owner, name, shown, "must be a non-empty string" if required else "must be a string")
    if "\r" in value or "\n" in value:
        raise ChannelConfigError(owner, name, shown, "must be a single line (no line breaks)")


def check_channel_name(name: Any) -> str:
    """A channel name as used by rules' ``channels`` lists: 1-64 letters, digits and ``_.:@#-``."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ChannelConfigError("Notifier", "name", repr(name),
                                 "must be 1-64 characters: letters, digits and _ . : @ # - (starting alphanumeric)")
    return name


# --- the interface --------------------------------------------------------------------------------------------------

class Notifier(ABC):
    """A notification channel. ``send`` never raises; failures come back as a DeliveryResult with a masked error.

    Subclasses implement ``_deliver`` (may raise; the base turns exceptions into a failed result), ``_secrets``
    and ``_describe_config``.
    """

    channel_type: ClassVar[str] = "custom"

    def __init__(self, name: str | None = None) -> None:
        self.name = check_channel_name(name if name is not None else self.channel_type)

    def send(self, notification: Notification) -> DeliveryResult:
        """Deliver one notification, with retries, and report the outcome (never raises).

        >>> LogNotifier().send(Notification.test()).status   # doctest: +SKIP
        'sent'
        """
        started = time.monotonic()
        try:
            result = self._deliver(notification)
        except Exception as exc:  # noqa: BLE001 - the boundary: a channel must never break the caller
            result = self._result("failed", 1, error=f"{type(exc).__name__}: {exc}")
        result = _with_duration(result, (time.monotonic() - started) * 1000)
        self._log_outcome(notification, result)
        return result

    def send_test(self) -> DeliveryResult:
        """Send a "test" notification so an operator can check the channel end to end."""
        return self.send(Notification.test(self.name))

    def describe(self) -> dict[str, Any]:
        """Channel name, type and settings with secrets masked, for the dashboard and logs."""
        return {"name": self.name, "type": self.channel_type, **self._describe_config()}

    def mask(self, text: str) -> str:
        """``text`` with this channel's secrets masked (URLs by their masked form), e.g. before showing it.

        >>> WebhookNotifier(WebhookConfig(url="https://h.example/hook/T0KEN123")).mask("POST /hook/T0KEN123")  # doctest: +SKIP
        'POST /hook/****'
        """
        return scrub(text, self._secrets())

    @abstractmethod
    def _deliver(self, notification: Notification) -> DeliveryResult:
        """Do the channel-specific delivery with retries."""

    def _secrets(self) -> list[str]:
        """Strings that must never appear in logs, errors or describe() output."""
        return []

    def _describe_config(self) -> dict[str, Any]:
        """Masked channel settings."""
        return {}

    def _result(self, status: str, attempts: int, *, error: str | None = None,
                http_status: int | None = None) -> DeliveryResult:
        """Build a DeliveryResult for this channel, masking secrets in ``error``."""
        shown = self.mask(error)[:1000] if error else None
        return DeliveryResult(channel=self.name, channel_type=self.channel_type, status=status, attempts=attempts,
                              error=shown, sent_at=utcnow() if status == "sent" else None, http_status=http_status)

    def _log_outcome(self, notification: Notification, result: DeliveryResult) -> None:
        """One log line per send on ``llmobs.alerts``: debug when sent, warning when not."""
        level = logging.DEBUG if result.ok else logging.WARNING
        logger.log(level, "alert notification %s via %s (%s): %s after %d attempt(s)%s",
                   notification.idempotency_key, self.name, self.channel_type, result.status, result.attempts,
                   f": {result.error}" if result.error else "")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def _with_duration(result: DeliveryResult, duration_ms: float) -> DeliveryResult:
    """Copy of ``result`` with the measured duration."""
    return replace(result, duration_ms=round(duration_ms, 3))

