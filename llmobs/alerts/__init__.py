"""Alerts: rules evaluated by the scheduler, and the channels that notify people.

The rule engine (``AlertManager``, ``AlertRule``) lives in ``llmobs.alerts.manager`` and ``llmobs.alerts.rules``;
the channels in ``llmobs.alerts.notification_handlers``.
"""

from llmobs.alerts.manager import AlertManager, Transition
from llmobs.alerts.notification import Notification
from llmobs.alerts.notification_handlers import (
    DeliveryResult, DiscordConfig, DiscordNotifier, EmailConfig, EmailNotifier, LogNotifier, Notifier, SlackConfig,
    SlackNotifier, WebhookConfig, WebhookNotifier, deliver_all, notifiers_from_config,
)
from llmobs.alerts.rules import AlertRule

__all__ = [
    "AlertManager",
    "AlertRule",
    "Transition",
    "DeliveryResult",
    "DiscordConfig",
    "DiscordNotifier",
    "EmailConfig",
    "EmailNotifier",
    "LogNotifier",
    "Notification",
    "Notifier",
    "SlackConfig",
    "SlackNotifier",
    "WebhookConfig",
    "WebhookNotifier",
    "deliver_all",
    "notifiers_from_config",
]
