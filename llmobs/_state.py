"""Process-wide runtime state: resolved settings and the few flags the hot path reads as plain attributes."""

from __future__ import annotations

import threading
from typing import Any, Callable

from llmobs.config import Settings, resolve

_lock = threading.RLock()


class Runtime:
    """Flags read on every observed call, copied from Settings so the hot path does one attribute read each."""

    enabled: bool = True
    sample_rate: float = 1.0
    capture_input: bool = True
    capture_output: bool = True
    max_field_chars: int = 20000
    redact_secrets: bool = True
    mask: Callable[[Any], Any] | None = None


rt = Runtime()
_current: Settings | None = None
_code_overrides: dict[str, Any] = {}
_config_file: str | None = None


def settings() -> Settings:
    """The resolved settings (resolved on first use, again on every ``configure()``)."""
    global _current
    if _current is None:
        with _lock:
            if _current is None:
                _apply(resolve(_code_overrides, config_file=_config_file))
    assert _current is not None
    return _current


def reconfigure(overrides: dict[str, Any], config_file: str | None = None, reset: bool = False) -> Settings:
    """Merge ``overrides`` into the code layer, re-resolve every layer and apply; raises ConfigError on a bad value."""
    global _config_file
    with _lock:
        merged = {} if reset else dict(_code_overrides)
        merged.update(overrides)
        new_file = config_file if config_file is not None else (None if reset else _config_file)
        resolved = resolve(merged, config_file=new_file)
        _code_overrides.clear()
        _code_overrides.update(merged)
        _config_file = new_file
        _apply(resolved)
        return resolved


def _apply(resolved: Settings) -> None:
    global _current
    _current = resolved
    rt.enabled = resolved.enabled
    rt.sample_rate = resolved.sample_rate
    rt.capture_input = resolved.capture_input
    rt.capture_output = resolved.capture_output
    rt.max_field_chars = resolved.max_field_chars
    rt.redact_secrets = resolved.redact_secrets
