"""Build notifiers from the ``alerts.channels`` setting; errors name the channel and the field."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from typing import Any, Callable

from llmobs.alerts.notification_handlers.base import MASK, ChannelConfigError, Notifier, mask_url
from llmobs.alerts.notification_handlers.discord import DiscordConfig, DiscordNotifier
from llmobs.alerts.notification_handlers.email_smtp import EmailConfig, EmailNotifier
from llmobs.alerts.notification_handlers.log import LogNotifier
from llmobs.alerts.notification_handlers.slack import SlackConfig, SlackNotifier
from llmobs.alerts.notification_handlers.webhook import WebhookConfig, WebhookNotifier
from llmobs.config import ConfigError, expand_env_refs

CONFIGS: dict[str, type | None] = {"email": EmailConfig, "slack": SlackConfig, "discord": DiscordConfig,
                                   "webhook": WebhookConfig, "log": None}
SECRET_KEYS = frozenset({"webhook_url", "url", "password", "secret", "headers"})
_EXTRA_KEYS: dict[str, tuple[str, ...]] = {"email": ("recipients",), "log": ("level",)}
_TRUE, _FALSE = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}


def notifiers_from_config(channels: Mapping[str, Any] | None = None) -> dict[str, Notifier]:
    """Notifiers by channel name from a mapping like the ``alerts.channels`` setting (the current one when None).

    ``${ENV}`` references are expanded; values are converted to the field types (ports from strings, booleans
    from "true"/"false"); any problem raises ConfigError naming ``alerts.channels.<name>.<field>``.

    >>> sorted(notifiers_from_config({"local": {"type": "log"}}))
    ['local']
    """
    if channels is None:
        from llmobs import _state

        channels = _state.settings().alerts.channels
    if not isinstance(channels, Mapping):
        raise ConfigError(f"llmobs config: alerts.channels = {type(channels).__name__} is invalid: "
                          "must be a mapping of channel name to settings")
    expanded = expand_env_refs(dict(channels), "alerts.channels", "alerts.channels")
    built: dict[str, Notifier] = {}
    for name, spec in expanded.items():
        notifier = _build_one(str(name), spec)
        if notifier is not None:
            built[notifier.name] = notifier
    return built


def _build_one(name: str, spec: Any) -> Notifier | None:
    """One channel; None when ``enabled: false``."""
    where = f"alerts.channels.{name}"
    if not isinstance(spec, Mapping):
        raise ConfigError(f"llmobs config: {where} = {type(spec).__name__} is invalid: must be a mapping with "
                          f"'type' ({', '.join(CONFIGS)}) and that channel's settings")
    kind = spec.get("type")
    if kind not in CONFIGS:
        raise ConfigError(f"llmobs config: {where}.type = {kind!r} is invalid: must be one of {', '.join(CONFIGS)}")
    options = {k: v for k, v in spec.items() if k not in ("type", "enabled")}
    if not _to_bool(f"{where}.enabled", spec.get("enabled", True)):
        return None
    try:
        return _construct(name, kind, options, where)
    except ChannelConfigError as exc:
        raise ConfigError(f"llmobs config: {where}.{exc.field} = {exc.shown} is invalid: {exc.why}") from None


def _construct(name: str, kind: str, options: dict[str, Any], where: str) -> Notifier:
    """Validate keys, coerce values and call the channel's constructor."""
    config_cls = CONFIGS[kind]
    field_types = _field_types(config_cls) if config_cls else {}
    extra = _EXTRA_KEYS.get(kind, ())
    unknown = sorted(k for k in options if k not in field_types and k not in extra)
    if unknown:
        allowed = ", ".join(["type", "enabled", *field_types, *extra])
        raise ConfigError(f"llmobs config: unknown key {where}.{unknown[0]} for a {kind} channel; allowed: {allowed}")
    values = {k: _coerce(f"{where}.{k}", field_types[k], v) for k, v in options.items() if k in field_types}
    missing = [f.name for f in dataclasses.fields(config_cls) if _required(f) and f.name not in values] \
        if config_cls else []
    if kind == "email" and "recipients" not in options:
        missing.append("recipients")
    if missing:
        raise ConfigError(f"llmobs config: {where}.{missing[0]} is required for a {kind} channel")
    builders: dict[str, Callable[[], Notifier]] = {
        "email": lambda: EmailNotifier(EmailConfig(**values), options["recipients"], name=name),
        "slack": lambda: SlackNotifier(SlackConfig(**values), name=name),
        "discord": lambda: DiscordNotifier(DiscordConfig(**values), name=name),
        "webhook": lambda: WebhookNotifier(WebhookConfig(**values), name=name),
        "log": lambda: LogNotifier(name=name, level=options.get("level")),
    }
    return builders[kind]()


def _required(f: dataclasses.Field[Any]) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def _field_types(config_cls: type) -> dict[str, Any]:
    """Field name -> resolved type annotation of a config dataclass."""
    hints = typing.get_type_hints(config_cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(config_cls)}


def _shown(key: str, value: Any) -> str:
    if key.rsplit(".", 1)[-1] not in SECRET_KEYS:
        return repr(value)
    return mask_url(value) if isinstance(value, str) and "://" in value else MASK


def _coerce(key: str, annotation: Any, value: Any) -> Any:
    """Convert YAML/env text to the annotated type; ``${ENV}`` expansion always yields strings."""
    args = typing.get_args(annotation)
    if value is None and type(None) in args:
        return None
    base = next((a for a in args if a is not type(None)), annotation) if args and type(None) in args else annotation
    origin = typing.get_origin(base) or base
    try:
        if base is bool:
            return _to_bool(key, value)
        if base is int and not isinstance(value, bool):
            number = float(value) if isinstance(value, str) else value
            if isinstance(number, (int, float)) and float(number).is_integer():
                return int(number)
        elif base is float and not isinstance(value, bool):
            return float(value)
        elif base is str and isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        elif origin is Mapping and isinstance(value, Mapping):
            return {str(k): str(v) for k, v in value.items()}
    except (TypeError, ValueError):
        pass
    kind = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(base, "a mapping")
    raise ConfigError(f"llmobs config: {key} = {_shown(key, value)} is invalid: must be {kind}")


def _to_bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ConfigError(f"llmobs config: {key} = {value!r} is invalid: must be true or false")
