"""Log channel: writes each notification on the ``llmobs.alerts`` logger (local use, demos, tests)."""

from __future__ import annotations

import logging
from typing import Any

from llmobs.alerts.notification import Notification
from llmobs.alerts.notification_handlers.base import ChannelConfigError, DeliveryResult, Notifier, logger

_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "critical": logging.ERROR}
LEVEL_NAMES: tuple[str, ...] = ("debug", "info", "warning", "error", "critical")


class LogNotifier(Notifier):
    """Logs one line per notification; level follows severity (resolved and test at INFO) unless ``level`` is set.

    >>> LogNotifier().send(Notification.test()).status
    'sent'
    """

    channel_type = "log"

    def __init__(self, name: str | None = None, level: str | None = None) -> None:
        super().__init__(name)
        if level is not None and (not isinstance(level, str) or level.lower() not in LEVEL_NAMES):
            raise ChannelConfigError("LogNotifier", "level", repr(level), "must be one of " + ", ".join(LEVEL_NAMES))
        self.level = level.lower() if level else None

    def _level_for(self, notification: Notification) -> int:
        if self.level:
            return logging.getLevelName(self.level.upper())  # type: ignore[no-any-return]
        if notification.state != "firing":
            return logging.INFO
        return _LEVELS[notification.severity]

    def _deliver(self, notification: Notification) -> DeliveryResult:
        n = notification
        # Values go through %-args, never into the format string: rule names are untrusted.
        logger.log(self._level_for(n), "ALERT %s | %s | value=%s | alert=%s rule=%s key=%s",
                   n.headline(), n.message or n.condition_text(),
                   dict(n.fields()).get("Value"), n.alert_id, n.rule_id, n.idempotency_key,
                   extra={"llmobs_alert": n.to_payload()})
        return self._result("sent", 1)

    def _describe_config(self) -> dict[str, Any]:
        return {"level": self.level or "by severity"}
