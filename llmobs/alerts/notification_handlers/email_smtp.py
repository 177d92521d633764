"""E-mail channel over SMTP (stdlib ``smtplib``): a plain-text part and an HTML part with every data value escaped."""

from __future__ import annotations

import hashlib
import html
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any, Iterable

from llmobs.alerts.notification import Notification
from llmobs.alerts.notification_handlers.base import (
    MASK, ChannelConfigError, DeliveryOptions, DeliveryResult, Notifier, check_text,
)
from llmobs.alerts.notification_handlers.retry import Attempt, run_with_retries

_COLOURS = {"info": "#3498db", "warning": "#f39c12", "critical": "#e74c3c", "resolved": "#2ecc71", "test": "#95a5a6"}


@dataclass(frozen=True)
class EmailConfig(DeliveryOptions):
    """SMTP server settings. ``use_tls`` upgrades with STARTTLS (port 587); ``use_ssl`` connects with TLS (465).

    >>> EmailConfig(smtp_server="smtp.example.com", from_address="alerts@example.com").smtp_port
    587
    """

    smtp_server: str
    smtp_port: int = 587
    username: str | None = None
    password: str | None = None
    from_address: str = ""
    use_tls: bool = True
    use_ssl: bool = False
    subject_prefix: str = "[llmobs]"

    def __post_init__(self) -> None:
        check_text("EmailConfig", "smtp_server", self.smtp_server, required=True)
        port = self.smtp_port
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise ChannelConfigError("EmailConfig", "smtp_port", repr(port), "must be an integer from 1 to 65535")
        check_text("EmailConfig", "username", self.username)
        check_text("EmailConfig", "password", self.password, secret=True)
        check_address("EmailConfig", "from_address", self.from_address)
        for flag in ("use_tls", "use_ssl"):
            if not isinstance(getattr(self, flag), bool):
                raise ChannelConfigError("EmailConfig", flag, repr(getattr(self, flag)), "must be true or false")
        if self.use_tls and self.use_ssl:
            raise ChannelConfigError("EmailConfig", "use_ssl", "True",
                                     "cannot be combined with use_tls (STARTTLS); choose one")
        check_text("EmailConfig", "subject_prefix", self.subject_prefix)
        self._validate_delivery()


def check_address(owner: str, name: str, value: Any) -> None:
    """Raise ChannelConfigError unless ``value`` looks like a single e-mail address."""
    check_text(owner, name, value, required=True)
    if "@" not in value or "," in value:
        raise ChannelConfigError(owner, name, repr(value), "must be one e-mail address like alerts@example.com")


def build_message(notification: Notification, config: EmailConfig, recipients: list[str]) -> EmailMessage:
    """The MIME message: subject, Message-ID derived from the idempotency key, plain and HTML alternatives."""
    n = notification
    msg = EmailMessage()
    msg["Subject"] = _one_line(f"{config.subject_prefix} {n.headline()}".strip())[:250]
    msg["From"] = config.from_address
    msg["To"] = ", ".join(recipients)
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    digest = hashlib.sha256(n.idempotency_key.encode("utf-8")).hexdigest()[:32]
    msg["Message-ID"] = f"<{digest}@llmobs.alerts>"
    msg["X-LLMObs-Idempotency-Key"] = _one_line(n.idempotency_key)[:200]
    msg.set_content(n.plain_text())
    msg.add_alternative(render_html(n), subtype="html")
    return msg


def _one_line(text: str) -> str:
    """Header values must not contain line breaks (header injection)."""
    return " ".join(text.split())


def render_html(notification: Notification) -> str:
    """The HTML body; every value that comes from data is escaped with ``html.escape``."""
    n = notification
    e = html.escape
    colour = _COLOURS.get(n.state if n.state != "firing" else n.severity, "#95a5a6")
    rows = "".join(f"<tr><th align=\"left\" style=\"padding:2px 12px 2px 0\">{e(label)}</th><td>{e(value)}</td></tr>"
                   for label, value in n.fields())
    link = ""
    if n.dashboard_url and n.dashboard_url.startswith(("http://", "https://")):
        link = f"<p><a href=\"{e(n.dashboard_url, quote=True)}\">Open the dashboard</a></p>"
    return (
        "<!DOCTYPE html><html><body style=\"font-family:sans-serif\">"
        f"<h2 style=\"color:{colour};margin:0 0 8px\">{e(n.headline())}</h2>"
        f"<p>{e(n.message or n.condition_text())}</p>"
        f"<table>{rows}</table>"
        f"<p style=\"color:#777;font-size:12px\">alert {e(n.alert_id)} | rule {e(n.rule_id)}</p>{link}"
        "</body></html>"
    )


def _classify(exc: Exception) -> Attempt:
    """SMTP 4xx replies and network errors are transient; 5xx replies, TLS and protocol problems are permanent."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        detail = "; ".join(f"{rcpt}: {code} {msg.decode('utf-8', 'replace') if isinstance(msg, bytes) else msg}"
                           for rcpt, (code, msg) in exc.recipients.items())
        return Attempt(ok=False, retryable=all(400 <= c < 500 for c in codes), error=f"recipients refused: {detail}")
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        return Attempt(ok=False, retryable=400 <= exc.smtp_code < 500,
                       error=f"{type(exc).__name__}: {exc.smtp_code} {text}")
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return Attempt(ok=False, retryable=True, error=f"server disconnected: {exc}")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return Attempt(ok=False, error=f"TLS certificate rejected: {exc.verify_message}")
    if isinstance(exc, (smtplib.SMTPException, ssl.SSLError)):
        return Attempt(ok=False, error=f"{type(exc).__name__}: {exc}")
    if isinstance(exc, TimeoutError):
        return Attempt(ok=False, retryable=True, error="timed out waiting for the SMTP server")
    if isinstance(exc, ConnectionRefusedError):
        return Attempt(ok=False, retryable=True, error="connection refused")
    if isinstance(exc, OSError):
        return Attempt(ok=False, retryable=True, error=f"{type(exc).__name__}: {exc}")
    raise exc


class EmailNotifier(Notifier):
    """Sends a multipart e-mail per notification to ``recipients``.

    >>> EmailNotifier(EmailConfig(smtp_server="smtp.example.com", from_address="a@example.com",
    ...                           password="hunter22"), ["oncall@example.com"]).describe()["password"]
    '****'
    """

    channel_type = "email"

    def __init__(self, config: EmailConfig, recipients: Iterable[str] | str, name: str | None = None) -> None:
        super().__init__(name)
        self.config = config
        self.recipients = parse_recipients(recipients)

    def _deliver(self, notification: Notification) -> DeliveryResult:
        message = build_message(notification, self.config, self.recipients)
        refused: dict[str, Any] = {}

        def attempt(number: int) -> Attempt:
            try:
                refused.clear()
                refused.update(self._send_once(message))
            except Exception as exc:  # noqa: BLE001 - classified, unknown kinds re-raised by _classify
                return _classify(exc)
            return Attempt(ok=True)

        outcome, attempts = run_with_retries(attempt, self.config)
        error = outcome.error
        if outcome.ok and refused:
            error = "some recipients refused: " + ", ".join(sorted(refused))
        return self._result("sent" if outcome.ok else "failed", attempts, error=error)

    def _send_once(self, message: EmailMessage) -> dict[str, Any]:
        """One SMTP session: connect, optional STARTTLS and login, send; returns refused recipients."""
        c = self.config
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if c.use_ssl:
            smtp = smtplib.SMTP_SSL(c.smtp_server, c.smtp_port, timeout=c.timeout, context=context)
        else:
            smtp = smtplib.SMTP(c.smtp_server, c.smtp_port, timeout=c.timeout)
        with smtp:
            if c.use_tls:
                smtp.starttls(context=context)
            if c.username:
                smtp.login(c.username, c.password or "")
            return smtp.send_message(message, from_addr=c.from_address, to_addrs=self.recipients)

    def _secrets(self) -> list[str]:
        return [self.config.password] if self.config.password else []

    def _describe_config(self) -> dict[str, Any]:
        c = self.config
        return {"smtp_server": c.smtp_server, "smtp_port": c.smtp_port, "username": c.username,
                "password": MASK if c.password else None, "from_address": c.from_address,
                "recipients": list(self.recipients), "use_tls": c.use_tls, "use_ssl": c.use_ssl,
                "timeout": c.timeout, "retry_count": c.retry_count}


def parse_recipients(recipients: Iterable[str] | str) -> list[str]:
    """A non-empty list of addresses from a list or a comma-separated string (as ``${ENV}`` expansion gives)."""
    items = recipients.split(",") if isinstance(recipients, str) else list(recipients)
    cleaned = [r.strip() if isinstance(r, str) else r for r in items]
    cleaned = [r for r in cleaned if r != ""]
    if not cleaned:
        raise ChannelConfigError("EmailNotifier", "recipients", repr(recipients), "must name at least one address")
    for address in cleaned:
        check_address("EmailNotifier", "recipients", address)
    return cleaned
