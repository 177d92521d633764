"""Notification channels for alerts: e-mail, Slack, Discord, generic webhook and log.

Every notifier has a ``name`` (used by rules' ``channels`` lists), ``send(notification) -> DeliveryResult`` that
never raises, ``send_test()`` and ``describe()`` with secrets masked::

    from llmobs.alerts.notification_handlers import SlackNotifier, SlackConfig
    alert_manager.add_notification_handler(
        SlackNotifier(SlackConfig(webhook_url=url, channel="#llm-alerts", username="LLM Observer")))

See docs/alerts_channels.md for payloads, retries, signing and the ``alerts.channels`` config.
"""

from llmobs.alerts.notification import Notification
from llmobs.alerts.notification_handlers.base import (
    ChannelConfigError, DeliveryOptions, DeliveryResult, Notifier, mask_url,
)
from llmobs.alerts.notification_handlers.delivery import deliver_all
from llmobs.alerts.notification_handlers.discord import DiscordConfig, DiscordNotifier
from llmobs.alerts.notification_handlers.email_smtp import EmailConfig, EmailNotifier
from llmobs.alerts.notification_handlers.factory import notifiers_from_config
from llmobs.alerts.notification_handlers.log import LogNotifier
from llmobs.alerts.notification_handlers.slack import SlackConfig, SlackNotifier
from llmobs.alerts.notification_handlers.webhook import WebhookConfig, WebhookNotifier, sign

__all__ = [
    "ChannelConfigError",
    "DeliveryOptions",
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
    "mask_url",
    "notifiers_from_config",
    "sign",
]
