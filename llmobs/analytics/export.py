"""Export rows of a table to CSV, JSON or JSON Lines, streamed (server-side cursor, ``yield_per``), oldest first.

CSV opens in a spreadsheet as is: a header row, ISO 8601 timestamps with their UTC offset, JSON columns as JSON
text, empty cells for NULL, and text cells that a spreadsheet would run as a formula prefixed with ``'``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

import orjson
from sqlalchemy import Table, and_, or_, select
from sqlalchemy.engine import Engine
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import SQLModel

from llmobs.analytics.filters import EVALUATIONS, SPANS, TRACES, Filters, Unindexed, resolve, span_conditions, \
    trace_attribute_conditions, trace_conditions
from llmobs.analytics.queries import connect

EXPORT_FORMATS = ("csv", "json", "jsonl")
DEFAULT_BATCH = 2000
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class ExportTable:
    """A table ``export`` can stream: its name, the column the time range applies to, and its WHERE builder."""

    name: str
    time_column: str
    conditions: Callable[[Filters, str], list[ColumnElement[bool]]]

    def table(self) -> Table:
        """The SQLAlchemy table (ValueError when it is not defined in this version)."""
        table = SQLModel.metadata.tables.get(self.name)
        if table is None:
            raise ValueError(f"llmobs.analytics: table {self.name!r} does not exist in this version of llmobs")
        return table


def evaluation_conditions(f: Filters, dialect: str) -> list[ColumnElement[bool]]:
    """Evaluations created in the range; ``model`` matches the evaluation's model or else its span's; ``source`` is
    the evaluation source (heuristic, llm_judge, human, ...); user, session and tag select traces; kind and status
    do not apply."""
    e = EVALUATIONS.c
    conds: list[ColumnElement[bool]] = []
    if f.start is not None:
        conds.append(e.created_at >= f.start)
    if f.end is not None:
        conds.append(e.created_at < f.end)
    if f.model is not None:
        # Each score's span by primary key: a list of every span of the model would be built first on SQLite.
        span_of_model = select(SPANS.c.id).where(SPANS.c.id == e.span_id, Unindexed(SPANS.c.model_name).in_(f.model))
        conds.append(or_(e.model_name.in_(f.model), and_(e.model_name.is_(None), span_of_model.exists())))
    if f.source is not None:
        conds.append(e.source == f.source)
    if f.has_trace_filters:
        conds.append(select(TRACES.c.id).where(TRACES.c.id == e.trace_id, *trace_attribute_conditions(f, dialect))
                     .exists())
    return conds


# Adding a table is one entry here: its name, the column the range applies to, and its WHERE builder.
EXPORT_TABLES: dict[str, ExportTable] = {
    "spans": ExportTable("spans", "start_time", span_conditions),
    "traces": ExportTable("traces", "start_time", trace_conditions),
    "evaluations": ExportTable("evaluations", "created_at", evaluation_conditions),
}
_PLANNED: dict[str, str] = {}  # tables announced but not defined yet: name -> why (raises a clear ValueError)


def export(dest: str | os.PathLike[str] | IO[Any], format: str = "csv", table: str = "spans", start: Any = None,
           end: Any = None, filters: Filters | None = None, *, engine: Engine | str | None = None,
           batch_size: int = DEFAULT_BATCH, **fields: Any) -> int:
    """Write the rows of ``table`` in [start, end) matching the filters to a path or an open file; returns the row
    count. Span exports cover every kind unless ``kind`` is given. Memory stays flat: rows are streamed.

    >>> export("spans.csv", "csv", "spans", start=since("24h"))   # doctest: +SKIP
    1234
    """
    if format not in EXPORT_FORMATS:
        raise ValueError(f"llmobs.analytics: format={format!r} is unknown; allowed: {', '.join(EXPORT_FORMATS)}")
    spec = _table_spec(table)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"llmobs.analytics: batch_size={batch_size!r} must be a positive integer")
    if filters is None and "kind" not in fields:
        fields["kind"] = None
    f = resolve(filters, start, end, **fields)
    tbl = spec.table()
    with connect(engine) as conn, _text_out(dest) as out:
        stmt = (select(tbl).where(*spec.conditions(f, conn.dialect.name))
                .order_by(tbl.c[spec.time_column], tbl.c[tbl.primary_key.columns.keys()[0]]))
        result = conn.execution_options(stream_results=True, yield_per=batch_size).execute(stmt)
        columns = list(result.keys())
        writer = {"csv": _write_csv, "json": _write_json, "jsonl": _write_jsonl}[format]
        return writer(out, columns, (tuple(r) for r in result))


def _table_spec(table: str) -> ExportTable:
    spec = EXPORT_TABLES.get(table)
    if spec is not None:
        return spec
    allowed = ", ".join(EXPORT_TABLES)
    if table in _PLANNED:
        raise ValueError(f"llmobs.analytics: table={table!r} cannot be exported: {_PLANNED[table]}; "
                         f"allowed now: {allowed}")
    raise ValueError(f"llmobs.analytics: table={table!r} is unknown; allowed: {allowed}")


@contextmanager
def _text_out(dest: str | os.PathLike[str] | IO[Any]) -> Iterator[IO[str]]:
    """A text stream for a path (created, UTF-8), a text file, or a binary file (wrapped, left open)."""
    if isinstance(dest, (str, os.PathLike)):
        with open(dest, "w", encoding="utf-8", newline="") as fh:
            yield fh
        return
    if isinstance(dest, (io.RawIOBase, io.BufferedIOBase)) or "b" in getattr(dest, "mode", ""):
        wrapper = io.TextIOWrapper(dest, encoding="utf-8", newline="", write_through=True)  # type: ignore[arg-type]
        try:
            yield wrapper
            wrapper.flush()
        finally:
            wrapper.detach()
        return
    if not hasattr(dest, "write"):
        raise ValueError(f"llmobs.analytics: cannot write to {dest!r}; give a path or an open file")
    yield dest  # type: ignore[misc]


def _write_csv(out: IO[str], columns: list[str], rows: Iterator[tuple[Any, ...]]) -> int:
    writer = csv.writer(out)
    writer.writerow(columns)
    n = 0
    for row in rows:
        writer.writerow([_cell(v) for v in row])
        n += 1
    return n


def _cell(value: Any) -> Any:
    """A CSV cell: ISO times, JSON text for dicts/lists, '' for NULL, formula-looking text made inert."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode()
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _is_number(value):
        return "'" + value
    return value


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _json_bytes(columns: list[str], row: tuple[Any, ...]) -> bytes:
    return orjson.dumps(dict(zip(columns, row)), option=orjson.OPT_NON_STR_KEYS)


def _write_jsonl(out: IO[str], columns: list[str], rows: Iterator[tuple[Any, ...]]) -> int:
    n = 0
    for row in rows:
        out.write(_json_bytes(columns, row).decode())
        out.write("\n")
        n += 1
    return n


def _write_json(out: IO[str], columns: list[str], rows: Iterator[tuple[Any, ...]]) -> int:
    out.write("[")
    n = 0
    for row in rows:
        out.write(",\n" if n else "\n")
        out.write(_json_bytes(columns, row).decode())
        n += 1
    out.write("\n]\n" if n else "]\n")
    return n
