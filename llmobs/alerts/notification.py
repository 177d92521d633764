"""The notification every channel renders: one alert transition (firing, resolved, or a test), immutable.

The rule engine builds a :class:`Notification` per transition; each notifier turns it into its own format
(email, Slack blocks, Discord embed, webhook JSON, log line) and escapes the values there, because rule names,
messages and model names come from data and are untrusted.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping

STATES: tuple[str, ...] = ("firing", "resolved", "test")
SEVERITIES: tuple[str, ...] = ("info", "warning", "critical")
PAYLOAD_VERSION = 1


def utcnow() -> datetime:
    """The current time as an aware UTC datetime."""
    return datetime.now(timezone.utc)


def format_number(value: float | None) -> str:
    """Compact human text for a metric value: ``1234.5`` -> ``'1234.5'``, ``None`` -> ``'n/a'``.

    >>> format_number(0.95), format_number(5000.0), format_number(None)
    ('0.95', '5000', 'n/a')
    """
    if value is None:
        return "n/a"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return f"{value:.6g}"


def _finite_or_none(value: float | None) -> float | None:
    """JSON cannot carry NaN or infinity; such values travel as null."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def _as_utc(name: str, value: datetime | None) -> datetime | None:
    """Check a timestamp is timezone-aware and convert it to UTC, so every channel shows the same instant."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise ValueError(f"Notification.{name} = {value!r} is invalid: must be a timezone-aware datetime")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"Notification.{name} = {value!r} is invalid: must be timezone-aware (UTC)")
    return value.astimezone(timezone.utc)


@dataclass(frozen=True)
class Notification:
    """One alert transition as sent to channels; ``idempotency_key`` is stable across retries of the same transition.

    >>> n = Notification(alert_id="a1", rule_id="r1", rule_name="High latency", state="firing",
    ...                  severity="critical", metric="p95_latency_ms", value=7200.0, threshold=5000.0,
    ...                  condition=">", window_minutes=15, transition_seq=1)
    >>> n.idempotency_key, n.condition_text()
    ('a1:firing:1', 'p95_latency_ms > 5000 over 15 min')
    """

    alert_id: str
    rule_id: str
    rule_name: str
    state: str
    severity: str
    metric: str
    value: float | None
    threshold: float
    condition: str
    window_minutes: float
    message: str = ""
    model: str | None = None
    filters: Mapping[str, Any] = field(default_factory=dict, hash=False)
    started_at: datetime = field(default_factory=utcnow)
    resolved_at: datetime | None = None
    dashboard_url: str | None = None
    transition_seq: int = 0

    def __post_init__(self) -> None:
        if self.state not in STATES:
            raise ValueError(f"Notification.state = {self.state!r} is invalid: must be one of {', '.join(STATES)}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"Notification.severity = {self.severity!r} is invalid: "
                             f"must be one of {', '.join(SEVERITIES)}")
        object.__setattr__(self, "alert_id", str(self.alert_id))
        object.__setattr__(self, "rule_id", str(self.rule_id))
        object.__setattr__(self, "filters", dict(self.filters or {}))
        object.__setattr__(self, "started_at", _as_utc("started_at", self.started_at))
        object.__setattr__(self, "resolved_at", _as_utc("resolved_at", self.resolved_at))

    @classmethod
    def test(cls, channel: str = "channel") -> "Notification":
        """A harmless "test" notification, used by ``Notifier.send_test()`` to check a channel end to end."""
        return cls(alert_id=f"test-{uuid.uuid4().hex[:12]}", rule_id="test", rule_name="llmobs test notification",
                   state="test", severity="info", metric="test", value=1.0, threshold=1.0, condition="==",
                   window_minutes=0, message=f"If you can read this, the {channel} channel works.")

    @property
    def idempotency_key(self) -> str:
        """Identifies this transition: receivers drop a second delivery with the same key."""
        return f"{self.alert_id}:{self.state}:{self.transition_seq}"

    def headline(self) -> str:
        """One-line title, e.g. ``'[FIRING] critical: High latency'``."""
        return f"[{self.state.upper()}] {self.severity}: {self.rule_name}"

    def condition_text(self) -> str:
        """The rule condition in words, e.g. ``'p95_latency_ms > 5000 over 15 min'``."""
        text = f"{self.metric} {self.condition} {format_number(self.threshold)}"
        if self.window_minutes:
            text += f" over {format_number(self.window_minutes)} min"
        return text

    def fields(self) -> list[tuple[str, str]]:
        """Ordered (label, value) pairs every channel shows; unescaped, channels escape for their format."""
        rows = [("Metric", self.metric), ("Value", format_number(self.value)),
                ("Threshold", f"{self.condition} {format_number(self.threshold)}"),
                ("Window", f"{format_number(self.window_minutes)} min"), ("Model", self.model or "all models")]
        if self.filters:
            rows.append(("Filters", ", ".join(f"{k}={v}" for k, v in sorted(self.filters.items()))))
        rows.append(("Started", self.started_at.strftime("%Y-%m-%d %H:%M:%S UTC")))
        if self.resolved_at is not None:
            rows.append(("Resolved", self.resolved_at.strftime("%Y-%m-%d %H:%M:%S UTC")))
        return rows

    def plain_text(self) -> str:
        """Multi-line plain summary used by e-mail, the Slack fallback text and the log channel."""
        lines = [self.headline(), self.message or self.condition_text(), ""]
        lines += [f"{label}: {value}" for label, value in self.fields()]
        lines.append(f"Alert: {self.alert_id}  Rule: {self.rule_id}")
        if self.dashboard_url:
            lines.append(f"Dashboard: {self.dashboard_url}")
        return "\n".join(lines)

    def to_payload(self) -> dict[str, Any]:
        """The versioned JSON document the webhook channel posts (schema in docs/alerts_channels.md)."""
        return {
            "version": PAYLOAD_VERSION,
            "event": f"alert.{self.state}",
            "idempotency_key": self.idempotency_key,
            "alert_id": self.alert_id,
            "state": self.state,
            "severity": self.severity,
            "rule": {"id": self.rule_id, "name": self.rule_name},
            "metric": self.metric,
            "condition": self.condition,
            "value": _finite_or_none(self.value),
            "threshold": _finite_or_none(self.threshold),
            "window_minutes": _finite_or_none(self.window_minutes),
            "model": self.model,
            "filters": {str(k): v for k, v in self.filters.items()},
            "message": self.message,
            "started_at": self.started_at.isoformat(),
            "resolved_at": self.resolved_at.isoformat() if self.resolved_at else None,
            "dashboard_url": self.dashboard_url,
            "transition_seq": self.transition_seq,
        }
