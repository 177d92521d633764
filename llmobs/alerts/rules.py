"""AlertRule: what to watch (metric, filters, window), when it breaches (condition, threshold) and how to tell.

Every field is checked when a rule is built or changed; a bad value raises ValueError naming the field, the
value and what is allowed, so a broken rule never reaches the database.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from llmobs.alerts import metrics

CONDITIONS: tuple[str, ...] = ("gt", "gte", "lt", "lte", "eq", "ne", "anomaly")
SEVERITIES: tuple[str, ...] = ("info", "warning", "critical")
NO_DATA: tuple[str, ...] = ("ok", "keep_state", "alert")
FILTER_KEYS: tuple[str, ...] = ("model_name", "kind", "tags", "user_id")
CONDITION_SYMBOLS: dict[str, str] = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "eq": "==", "ne": "!=",
                                     "anomaly": "|z| >"}
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
_MAX_WINDOW_MINUTES = 31 * 24 * 60.0


def _bad(name: str, value: Any, allowed: str) -> ValueError:
    return ValueError(f"AlertRule.{name} = {value!r} is invalid: must be {allowed}")


def _number(name: str, value: Any, *, minimum: float | None = None, exclusive: bool = False,
            maximum: float | None = None) -> float:
    """A finite real number within limits (bool is not a number here)."""
    limits = ""
    if minimum is not None:
        limits = f" {'>' if exclusive else '>='} {minimum:g}"
    if maximum is not None:
        limits += f" and <= {maximum:g}"
    allowed = "a number" + limits
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        raise _bad(name, value, allowed)
    out = float(value)
    if minimum is not None and (out < minimum or (exclusive and out == minimum)):
        raise _bad(name, value, allowed)
    if maximum is not None and out > maximum:
        raise _bad(name, value, allowed)
    return out


def _integer(name: str, value: Any, *, minimum: int, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise _bad(name, value, f"an integer from {minimum} to {maximum}")
    return value


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise _bad(name, value, "one of " + ", ".join(choices))
    return str(value)


def _text(name: str, value: Any, *, max_len: int, required: bool = True) -> str:
    if not isinstance(value, str) or (required and not value.strip()) or len(value) > max_len:
        raise _bad(name, value, f"a {'non-empty ' if required else ''}string of at most {max_len} characters")
    return value


def _filters(value: Any) -> dict[str, Any]:
    """Normalise filters: ``model_name`` a name or a list of names; ``kind``, ``user_id`` one string each;
    ``tags`` one tag (a string or a one-item list, as analytics filters by one tag)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _bad("filters", value, "a mapping with keys from " + ", ".join(FILTER_KEYS))
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key not in FILTER_KEYS:
            raise ValueError(f"AlertRule.filters has unknown key {key!r} (value {item!r}): allowed keys are "
                             + ", ".join(FILTER_KEYS))
        if item is None:
            continue
        if key == "tags":
            items = [item] if isinstance(item, str) else item
            if not isinstance(items, (list, tuple)) or len(items) != 1 or not isinstance(items[0], str) \
                    or not items[0]:
                raise ValueError(f"AlertRule.filters['tags'] = {item!r} is invalid: must be one tag, a non-empty "
                                 "string or a list of one string")
            out[key] = [items[0]]
        elif key == "model_name" and isinstance(item, (list, tuple)) and item \
                and all(isinstance(v, str) and v for v in item):
            out[key] = item[0] if len(item) == 1 else list(item)
        elif isinstance(item, str) and item:
            out[key] = item
        else:
            allowed = "a non-empty string or a list of them" if key == "model_name" else "a non-empty string"
            raise ValueError(f"AlertRule.filters[{key!r}] = {item!r} is invalid: must be {allowed}")
    if "kind" in out:
        from llmobs.store.models import SPAN_KINDS

        if out["kind"] not in SPAN_KINDS:
            raise ValueError(f"AlertRule.filters['kind'] = {out['kind']!r} is invalid: must be one of "
                             + ", ".join(SPAN_KINDS))
    return out


def _channels(value: Any) -> list[str]:
    if value is None:
        return []
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(c, str) and c.strip() for c in items):
        raise _bad("channels", value, "a list of channel names (empty means every channel)")
    return list(dict.fromkeys(items))


def _aware(name: str, value: Any) -> dt.datetime | None:
    if value is None:
        return None
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        raise _bad(name, value, "a timezone-aware datetime or None")
    return value.astimezone(dt.timezone.utc)


@dataclass
class AlertRule:
    """A threshold (or anomaly) rule over one metric in a sliding window, with filters and notification channels.

    >>> AlertRule(rule_id="slow", name="Slow p95", metric_name="response_time_p95", condition="gt",
    ...           threshold=5000, severity="critical").breached(7200.0)
    True
    """

    rule_id: str
    name: str
    metric_name: str
    condition: str
    threshold: float
    severity: str = "warning"
    window_minutes: float = 15.0
    for_minutes: float = 0.0
    cooldown_minutes: float | None = None
    min_requests: int = 1
    filters: dict[str, Any] = field(default_factory=dict)
    channels: list[str] = field(default_factory=list)
    enabled: bool = True
    description: str = ""
    no_data: str = "ok"
    baseline_windows: int = 6
    silenced_until: dt.datetime | None = None

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check and normalise every field; raises ValueError naming the field, the value and what is allowed."""
        if not isinstance(self.rule_id, str) or not _ID_RE.match(self.rule_id):
            raise _bad("rule_id", self.rule_id, "1-128 characters: letters, digits and _ . : - (starting alphanumeric)")
        self.name = _text("name", self.name, max_len=256)
        if not isinstance(self.metric_name, str) or not metrics.is_known(self.metric_name):
            raise _bad("metric_name", self.metric_name, metrics.allowed_text())
        self.condition = _choice("condition", self.condition, CONDITIONS)
        self.threshold = _number("threshold", self.threshold,
                                 minimum=0.0 if self.condition == "anomaly" else None,
                                 exclusive=self.condition == "anomaly")
        self.severity = _choice("severity", self.severity, SEVERITIES)
        self.window_minutes = _number("window_minutes", self.window_minutes, minimum=0.0, exclusive=True,
                                      maximum=_MAX_WINDOW_MINUTES)
        self.for_minutes = _number("for_minutes", self.for_minutes, minimum=0.0, maximum=_MAX_WINDOW_MINUTES)
        if self.cooldown_minutes is not None:
            self.cooldown_minutes = _number("cooldown_minutes", self.cooldown_minutes, minimum=0.0,
                                            maximum=_MAX_WINDOW_MINUTES)
        self.min_requests = _integer("min_requests", self.min_requests, minimum=0, maximum=10**9)
        self.filters = _filters(self.filters)
        extra = sorted(set(self.filters) - {"model_name"})
        if metrics.evaluation_name(self.metric_name) is not None and extra:
            raise ValueError(f"AlertRule.filters has key {extra[0]!r} (value {self.filters[extra[0]]!r}), which "
                             f"evaluation metric {self.metric_name!r} cannot use: only model_name filters scores")
        self.channels = _channels(self.channels)
        if not isinstance(self.enabled, bool):
            raise _bad("enabled", self.enabled, "true or false")
        self.description = _text("description", self.description or "", max_len=4000, required=False)
        self.no_data = _choice("no_data", self.no_data, NO_DATA)
        self.baseline_windows = _integer("baseline_windows", self.baseline_windows, minimum=3, maximum=100)
        self.silenced_until = _aware("silenced_until", self.silenced_until)

    def breached(self, value: float) -> bool:
        """Whether ``value`` meets the threshold condition (not for ``anomaly``, which needs a baseline)."""
        t = self.threshold
        if self.condition == "gt":
            return value > t
        if self.condition == "gte":
            return value >= t
        if self.condition == "lt":
            return value < t
        if self.condition == "lte":
            return value <= t
        if self.condition == "eq":
            return math.isclose(value, t, rel_tol=1e-9, abs_tol=1e-12)
        if self.condition == "ne":
            return not math.isclose(value, t, rel_tol=1e-9, abs_tol=1e-12)
        raise ValueError(f"AlertRule.breached: condition {self.condition!r} needs a baseline, use anomaly.evaluate")

    def condition_symbol(self) -> str:
        """The condition as shown to people, e.g. ``'>'``."""
        return CONDITION_SYMBOLS[self.condition]

    def describe(self) -> str:
        """One line in words, e.g. ``'response_time_p95 > 5000 over 15 min'``."""
        return f"{self.metric_name} {self.condition_symbol()} {self.threshold:g} over {self.window_minutes:g} min"

    def silenced(self, now: dt.datetime) -> bool:
        """True while ``silence(until=...)`` mutes this rule."""
        return self.silenced_until is not None and now < self.silenced_until

    def replace(self, **changes: Any) -> "AlertRule":
        """A validated copy with ``changes`` applied; unknown field names raise ValueError listing the fields."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ValueError(f"AlertRule has no field {unknown[0]!r}: fields are " + ", ".join(sorted(names)))
        if "rule_id" in changes and changes["rule_id"] != self.rule_id:
            raise ValueError(f"AlertRule.rule_id = {changes['rule_id']!r} is invalid: the id of a rule cannot change")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain data of every field (the ``alert_rules`` columns)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "AlertRule":
        """Build from plain data (a row or a parsed config); extra keys raise ValueError naming them."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"AlertRule has no field {unknown[0]!r}: fields are " + ", ".join(sorted(names)))
        return cls(**dict(data))
