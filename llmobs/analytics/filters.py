"""The filter object every analytics function takes, its validation, time parsing, and its SQL conditions.

Times: naive datetimes and ISO strings without an offset are taken as UTC; aware values are converted. A range is
half-open, ``start <= start_time < end``, so adjacent ranges never count a span twice.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Table, cast, exists, func, literal_column, or_, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

from llmobs.store.models import SPAN_KINDS, STATUSES, Evaluation, Span, Trace

UTC = dt.timezone.utc
SPANS: Table = Span.__table__  # type: ignore[assignment]
TRACES: Table = Trace.__table__  # type: ignore[assignment]
EVALUATIONS: Table = Evaluation.__table__  # type: ignore[assignment]
ALL_KINDS = "all"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_time(value: str | dt.datetime | dt.date | float | int, name: str = "time") -> dt.datetime:
    """An aware UTC datetime from a datetime, date, ISO 8601 string or epoch seconds; ValueError otherwise.

    >>> parse_time("2024-01-31T23:59:59").isoformat()
    '2024-01-31T23:59:59+00:00'
    """
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            return parse_time(dt.datetime.fromisoformat(text), name)
        except ValueError:
            pass
    raise ValueError(f"llmobs.analytics: {name}={value!r} is not a time; give a datetime or an ISO 8601 string "
                     "such as '2024-01-31T23:59:59' (UTC) or '2024-01-31T23:59:59+02:00'")


def parse_duration(value: str | dt.timedelta | float | int, name: str = "duration") -> dt.timedelta:
    """A positive timedelta from '90s', '15m', '24h', '7d', '2w', a timedelta or seconds; ValueError otherwise.

    >>> parse_duration("15m")
    datetime.timedelta(seconds=900)
    """
    if isinstance(value, dt.timedelta):
        delta = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        delta = dt.timedelta(seconds=value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        delta = dt.timedelta(seconds=float(m.group(1)) * _UNIT_SECONDS[m.group(2).lower()])
    else:
        raise ValueError(f"llmobs.analytics: {name}={value!r} is not a duration; use a number with a unit "
                         "s, m, h, d or w (e.g. '15m', '24h', '7d') or a timedelta")
    if delta <= dt.timedelta(0):
        raise ValueError(f"llmobs.analytics: {name}={value!r} must be positive")
    return delta


def since(value: str | dt.timedelta, now: dt.datetime | None = None) -> dt.datetime:
    """The UTC time ``value`` ago ('24h', '7d', ...), for relative ranges.

    >>> overview(start=since("24h"))   # doctest: +SKIP
    """
    return (now or dt.datetime.now(UTC)) - parse_duration(value, "since")


@dataclass(frozen=True)
class Filters:
    """Which spans a query covers: a time range and attribute filters, validated on creation.

    ``kind`` defaults to ``generation`` (LLM calls); ``kind=None`` or ``"all"`` covers every kind. ``model`` takes
    one name or a list. ``user_id``, ``session_id`` and ``tag`` are trace attributes.

    >>> Filters(start="2024-01-01", end="2024-02-01", model="gpt-4o", status="error").kind
    'generation'
    """

    start: dt.datetime | None = None
    end: dt.datetime | None = None
    model: tuple[str, ...] | None = None
    kind: str | None = "generation"
    status: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    tag: str | None = None
    source: str | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        start = None if self.start is None else parse_time(self.start, "start")
        end = None if self.end is None else parse_time(self.end, "end")
        if start is not None and end is not None and end < start:
            raise ValueError(f"llmobs.analytics: end={end.isoformat()} is before start={start.isoformat()}")
        set_(self, "start", start)
        set_(self, "end", end)
        set_(self, "model", _models(self.model))
        kind = None if self.kind in (None, ALL_KINDS) else self.kind
        if kind is not None and kind not in SPAN_KINDS:
            raise ValueError(f"llmobs.analytics: kind={self.kind!r} is unknown; allowed: "
                             f"{', '.join(SPAN_KINDS)}, or None/'all' for every kind")
        set_(self, "kind", kind)
        if self.status is not None and self.status not in STATUSES:
            raise ValueError(f"llmobs.analytics: status={self.status!r} is unknown; allowed: "
                             f"{', '.join(STATUSES)}, or None for both")
        for key in ("user_id", "session_id", "tag", "source"):
            value = getattr(self, key)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"llmobs.analytics: {key}={value!r} must be a string or None")

    @property
    def has_trace_filters(self) -> bool:
        """True when user, session or tag narrow the spans to some traces."""
        return any(v is not None for v in (self.user_id, self.session_id, self.tag))

    @property
    def has_span_filters(self) -> bool:
        """True when model, status or source narrow the spans (kind is not counted: see trace-level figures)."""
        return any(v is not None for v in (self.model, self.status, self.source))

    def replace(self, **changes: Any) -> "Filters":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


FILTER_FIELDS = tuple(f.name for f in dataclasses.fields(Filters))


def _models(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    names = (value,) if isinstance(value, str) else tuple(value) if isinstance(value, Sequence) else None
    if not names or not all(isinstance(n, str) and n for n in names):
        raise ValueError(f"llmobs.analytics: model={value!r} must be a model name or a non-empty list of names")
    return names


def resolve(filters: Filters | None = None, start: Any = None, end: Any = None, **fields: Any) -> Filters:
    """Merge ``filters`` with explicit arguments (which win); unknown field names raise ValueError listing allowed.

    >>> resolve(None, "2024-01-01", model="gpt-4o").model
    ('gpt-4o',)
    """
    unknown = set(fields) - set(FILTER_FIELDS)
    if unknown:
        raise ValueError(f"llmobs.analytics: unknown filter {', '.join(sorted(unknown))}; allowed: "
                         + ", ".join(FILTER_FIELDS))
    if filters is not None and not isinstance(filters, Filters):
        raise ValueError(f"llmobs.analytics: filters={filters!r} must be a llmobs.analytics.Filters")
    changes = dict(fields)
    if start is not None:
        changes["start"] = start
    if end is not None:
        changes["end"] = end
    if filters is None:
        return Filters(**changes)
    return filters.replace(**changes) if changes else filters


def span_conditions(f: Filters, dialect: str, *, time: bool = True,
                    unindexed: bool = False) -> list[ColumnElement[bool]]:
    """WHERE conditions on ``spans`` for ``f`` (``time=False`` leaves the range out, for per-bucket queries).

    ``unindexed=True`` is for spans joined to a smaller driving table (evaluations): it keeps SQLite, which has no
    statistics to compare row counts, from walking a spans index for these conditions and probing the other table
    once per span; each span is then reached by its primary key and checked. For the same reason SQLite reaches
    the spans of a user or session through their traces (see ``trace_driven``). A tag is checked on the span's
    own copy of its trace's tags (``spans.trace_tags``): looking each span's trace up cost ~2 µs per span.
    """
    s = SPANS.c
    driven = not unindexed and trace_driven(f, dialect)
    col: Callable[[ColumnElement[Any]], ColumnElement[Any]] = Unindexed if unindexed or driven else _same
    conds: list[ColumnElement[bool]] = []
    if time and f.start is not None:
        conds.append(col(s.start_time) >= f.start)
    if time and f.end is not None:
        conds.append(col(s.start_time) < f.end)
    if f.kind is not None:
        conds.append(col(s.kind) == f.kind)
    if f.model is not None:
        model = col(s.model_name)
        conds.append(model == f.model[0] if len(f.model) == 1 else model.in_(f.model))
    if f.status is not None:
        conds.append(col(s.status) == f.status)
    if f.source is not None:
        conds.append(col(s.source) == f.source)
    if f.tag is not None:
        conds.append(tag_condition(s.trace_tags, f.tag, dialect))
    if f.user_id is not None or f.session_id is not None:
        traces = select(TRACES.c.id).where(*trace_attribute_conditions(f, dialect, tag=False))
        if dialect == "sqlite" and not driven:
            conds.append(traces.where(TRACES.c.id == s.trace_id).exists())
        else:
            conds.append(s.trace_id.in_(traces))
    return conds


def trace_driven(f: Filters, dialect: str) -> bool:
    """True when SQLite reads the matching spans through the traces of the user or session (trace_id index)
    instead of walking every span of the range: a user or session holds few traces, and SQLite, which keeps no
    statistics, would otherwise walk the range and probe the user's traces once per span."""
    return dialect == "sqlite" and (f.user_id is not None or f.session_id is not None)


def checked_by_index(f: Filters) -> bool:
    """True when every condition of ``f`` is on kind, model or time, which the indexes on ``spans`` hold: a walk
    of an index in value order (percentiles) then reads no table row to check a span."""
    return f.status is None and f.source is None and not f.has_trace_filters


def _same(column: ColumnElement[Any]) -> ColumnElement[Any]:
    return column


def trace_attribute_conditions(f: Filters, dialect: str, *, tag: bool = True) -> list[ColumnElement[bool]]:
    """Conditions on ``traces`` for user, session and (unless ``tag=False``) tag."""
    t = TRACES.c
    conds: list[ColumnElement[bool]] = []
    if f.user_id is not None:
        conds.append(t.user_id == f.user_id)
    if f.session_id is not None:
        conds.append(t.session_id == f.session_id)
    if tag and f.tag is not None:
        conds.append(_has_tag(f.tag, dialect))
    return conds


def tag_condition(column: ColumnElement[Any], tag: str, dialect: str) -> ColumnElement[bool]:
    """True where ``column``, a JSON list of strings stored as text (``spans.trace_tags``), holds ``tag`` as a whole
    element, case-sensitively, by substring search: no JSON is parsed per row.

    Inside a JSON string a quote is always escaped, so ``,"tag",`` can only match at element boundaries.
    """
    item = orjson.dumps(tag).decode()
    find = func.strpos if dialect == "postgresql" else func.instr
    return or_(column == f"[{item}]", find(column, f"[{item},") == 1, find(column, f",{item},") > 0,
               find(column, f",{item}]") > 0)


def trace_conditions(f: Filters, dialect: str, *, time_unindexed: bool = False) -> list[ColumnElement[bool]]:
    """Conditions on ``traces`` for trace-level figures: traces started in the range with the trace attributes,
    narrowed to traces holding a matching span when model, status or source is given.

    ``time_unindexed`` stops SQLite from using the start_time index, so that it can walk another index instead.
    """
    t = TRACES.c
    conds = trace_attribute_conditions(f, dialect)
    start_time: ColumnElement[Any] = Unindexed(t.start_time) if time_unindexed else t.start_time
    if f.start is not None:
        conds.append(start_time >= f.start)
    if f.end is not None:
        conds.append(start_time < f.end)
    if f.has_span_filters:
        inner = f.replace(user_id=None, session_id=None, tag=None)
        if dialect == "sqlite":
            # SQLite would list the trace ids of every matching span of the range before reading a trace; checking
            # each trace's own spans (trace_id index) lets a page of the newest traces stop after a few.
            conds.append(select(SPANS.c.id).where(SPANS.c.trace_id == t.id,
                                                  *span_conditions(inner, dialect, unindexed=True)).exists())
        else:
            conds.append(t.id.in_(select(SPANS.c.trace_id).where(*span_conditions(inner, dialect))))
    return conds


def _has_tag(tag: str, dialect: str) -> ColumnElement[bool]:
    tags = TRACES.c.tags
    if dialect == "postgresql":
        return cast(tags, JSONB).contains([tag])
    each = func.json_each(tags).table_valued("value")
    return exists(select(literal_column("1")).select_from(each).where(each.c.value == tag))


class Unindexed(ColumnElement[Any]):
    """A column SQLite may not look up through an index (rendered ``+column``); plain on other engines."""

    inherit_cache = True
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement)]

    def __init__(self, column: ColumnElement[Any]) -> None:
        self.column = column
        self.type = column.type


@compiles(Unindexed)
def _unindexed_default(element: Unindexed, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.column, **kw))


@compiles(Unindexed, "sqlite")
def _unindexed_sqlite(element: Unindexed, compiler: Any, **kw: Any) -> str:
    return "+" + str(compiler.process(element.column, **kw))
