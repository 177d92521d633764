"""Number and text formatting for the dashboard: one place decides how a figure is written."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

DASH = "—"


def fmt_int(value: float | int | None) -> str:
    """1234 -> '1,234'; None -> '—'."""
    return DASH if value is None else f"{int(round(value)):,}"


def fmt_pct(value: float | None) -> str:
    """0.9876 -> '98.76%'; None -> '—'."""
    return DASH if value is None else f"{value * 100:.2f}%"


def fmt_ms(value: float | None) -> str:
    """Milliseconds with one decimal: 1234.56 -> '1,234.6 ms'."""
    return DASH if value is None else f"{value:,.1f} ms"


def fmt_usd(value: float | None) -> str:
    """Dollars with four decimals: 0.12345 -> '$0.1235'."""
    return DASH if value is None else f"${value:,.4f}"


def fmt_score(value: float | None) -> str:
    """A 0..1 score with three decimals."""
    return DASH if value is None else f"{value:.3f}"


def fmt_duration(seconds: float | None) -> str:
    """A duration in the largest unit that keeps it readable: 42 -> '42 s', 2400 -> '40 min', 9000 -> '2.5 h'."""
    if seconds is None:
        return DASH
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def fmt_time(value: dt.datetime | None) -> str:
    """A UTC timestamp to the second, ISO-like."""
    return DASH if value is None else value.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def fmt_change(current: float | None, previous: float | None) -> str:
    """The change against the previous period: '+12.5%', 'new', or '—' when it cannot be said."""
    if current is None or previous is None:
        return DASH
    if previous == 0:
        return DASH if current == 0 else "new"
    return f"{(current - previous) / abs(previous) * 100:+.1f}%"


def as_text(value: Any) -> str:
    """Any stored value as plain text for a textbox: JSON text is pretty-printed, None is empty."""
    if value is None:
        return ""
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return value
        return parsed if isinstance(parsed, str) else json.dumps(parsed, indent=2, ensure_ascii=False)
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def cell(value: Any) -> str:
    """A Dataframe cell as a plain string (untrusted text is never given a chance to be markup)."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return fmt_time(value)
    return str(value)
