"""Shared dashboard state: the time ranges on offer, their bucket sizes, and turning control values into
``analytics.Filters`` for the chosen range and the period before it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from llmobs.alerts import AlertManager
from llmobs.analytics import Filters

UTC = dt.timezone.utc
# Range label -> (length, timeseries bucket). Buckets keep every chart between ~30 and ~170 points.
RANGES: dict[str, tuple[dt.timedelta, str]] = {
    "Last 15 minutes": (dt.timedelta(minutes=15), "30s"),
    "Last 1 hour": (dt.timedelta(hours=1), "1m"),
    "Last 24 hours": (dt.timedelta(hours=24), "15m"),
    "Last 7 days": (dt.timedelta(days=7), "1h"),
    "Last 30 days": (dt.timedelta(days=30), "6h"),
}
DEFAULT_RANGE = "Last 24 hours"


@dataclass
class TraceLink:
    """How another tab opens a trace in the Traces tab: put the id in ``trace_id``, select the tab ``tab_id``, then
    run ``open`` (register it with ``health.listen``) on ``trace_id`` into ``outputs``."""

    trace_id: Any
    open: Callable[..., Any]
    outputs: list[Any]
    tab_id: str


@dataclass
class Shared:
    """The mutable part of one app: components several tabs wire to (filled while the app is built) and when the
    database stopped answering (None while it answers)."""

    banner: Any = None
    tabs: Any = None
    trace_link: TraceLink | None = None
    down_since: dt.datetime | None = None


@dataclass(frozen=True)
class AppContext:
    """What every tab callback needs: the database engine, the dashboard settings, and the shared components."""

    engine: Engine
    auto_refresh_seconds: float = 30.0
    retry_seconds: float = 5.0
    shared: Shared = field(default_factory=Shared, compare=False, repr=False)

    @property
    def database_url(self) -> str:
        """The engine's URL with its password, for store functions that take a URL."""
        return self.engine.url.render_as_string(hide_password=False)


def alert_manager(ctx: AppContext, *, with_channels: bool = False) -> AlertManager:
    """An AlertManager on the dashboard's database. Only ``with_channels`` loads the channels of ``alerts.channels``
    (raising ConfigError when they are invalid): the dashboard sends nothing but the test notifications asked for."""
    return AlertManager(engine=ctx.engine, channels_from_config=with_channels)


def range_bounds(range_label: str, now: dt.datetime | None = None) -> tuple[dt.datetime, dt.datetime]:
    """(start, end) of a range label ending now; ValueError naming the allowed labels otherwise."""
    if range_label not in RANGES:
        raise ValueError(f"llmobs.ui: range={range_label!r} is unknown; allowed: {', '.join(RANGES)}")
    end = now or dt.datetime.now(UTC)
    return end - RANGES[range_label][0], end


def bucket_for(range_label: str) -> str:
    """The timeseries bucket that suits a range label."""
    return RANGES[range_label][1]


def build_filters(range_label: str, model: str | None = None, user_id: str | None = None,
                  session_id: str | None = None, tag: str | None = None, source: str | None = None, *,
                  kind: str | None = "generation", now: dt.datetime | None = None) -> Filters:
    """Filters for the range ending ``now`` and the filter boxes (blank boxes mean no filter).

    >>> build_filters("Last 1 hour", model="gpt-4o").model
    ('gpt-4o',)
    """
    start, end = range_bounds(range_label, now)
    return Filters(start=start, end=end, kind=kind, model=_blank(model), user_id=_blank(user_id),
                   session_id=_blank(session_id), tag=_blank(tag), source=_blank(source))


def previous_period(f: Filters) -> Filters:
    """The same filters over the period of equal length just before ``f``'s range."""
    assert f.start is not None and f.end is not None
    return f.replace(start=f.start - (f.end - f.start), end=f.start)


def _blank(value: str | None) -> str | None:
    text = (value or "").strip()
    return text or None
