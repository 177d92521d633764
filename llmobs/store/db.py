"""Engine and schema set-up for SQLite (WAL, busy timeout) and PostgreSQL, shared by the writer and every reader."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
import weakref
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import orjson
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import (
    DatabaseError, DBAPIError, DisconnectionError, InterfaceError, OperationalError, ProgrammingError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlmodel import Session, SQLModel, create_engine

log = logging.getLogger("llmobs")
SQLITE_BUSY_TIMEOUT_MS = 5000
SQLITE_PAGE_SIZE = 8192
_engines: dict[str, Engine] = {}
# Engines whose tables are in place, with the SQLite file they were put in (device, inode; None for other engines).
_schema_ready: "weakref.WeakKeyDictionary[Engine, tuple[int, int] | None]" = weakref.WeakKeyDictionary()
_lock = threading.Lock()
# SQLite reports bad SQL and a missing file alike as OperationalError; only these messages mean "cannot reach it".
_PG_CONNECT_ARGS = {"connect_timeout": 10, "keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10,
                    "keepalives_count": 3}
_SQLITE_UNREACHABLE = ("unable to open database", "disk i/o error", "database is locked", "file is not a database")


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    try:
        # Only a new file takes it (before WAL fixes the size): 8 KiB pages halve the WAL frames a commit writes
        # and the page splits of the append-mostly indexes; the writer stores ~6% more spans per second.
        cur.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
    finally:
        cur.close()


def _bind_none_directly() -> None:
    """Give ``None`` an adapter in the stdlib sqlite3 module, so binding it skips the adapter protocol search.

    Without one, every NULL parameter makes sqlite3 look up ``__adapt__`` on its protocol type and build and drop an
    AttributeError: about 2,000 instructions each, a fifth of the time of inserting a span row with eight NULLs.
    ``{}.get`` is a C callable that returns None for None, so NULL is still bound as NULL, for any sqlite3 user.
    """
    sqlite3.register_adapter(type(None), {}.get)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for ``url``: SQLite gets WAL, a busy timeout and its folder created; PostgreSQL a pre-ping pool.

    >>> make_engine("sqlite:///:memory:").dialect.name
    'sqlite'
    """
    parsed = make_url(url)
    options: dict[str, Any] = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}
    if parsed.get_backend_name() == "sqlite":
        _bind_none_directly()
        path = _file_path(parsed.database)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        options["connect_args"] = {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
    else:
        options["pool_pre_ping"] = True
        if parsed.get_driver_name() in ("psycopg", "psycopg2"):
            # A server that drops packets (rather than refusing) must not hold the writer or a dashboard callback
            # for the operating system's TCP timeout; the URL's own libpq parameters win.
            options["connect_args"] = {k: v for k, v in _PG_CONNECT_ARGS.items() if k not in parsed.query}
    options.update(kwargs)
    engine = create_engine(url, **options)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def get_engine(url: str | None = None) -> Engine:
    """The shared engine for ``url`` (default: the configured ``database_url``), created once per process."""
    if url is None:
        from llmobs._state import settings

        url = settings().database_url
    key = f"{os.getpid()}:{url}"
    engine = _engines.get(key)
    if engine is None:
        with _lock:
            engine = _engines.get(key)
            if engine is None:
                engine = make_engine(url)
                _engines[key] = engine
    return engine


def ensure_schema(engine: Engine, attempts: int = 5) -> None:
    """Create the llmobs tables if missing; tolerant of several processes racing to create them."""
    if engine in _schema_ready:
        return
    import llmobs.store.alert_models  # noqa: F401  (registers the alert tables; imports db, so not at the top)
    import llmobs.store.models  # noqa: F401  (registers the tables)

    for attempt in range(attempts):
        try:
            SQLModel.metadata.create_all(engine)
            _add_missing_columns(engine)
            _create_missing_indexes(engine)
            _create_statistics(engine)
            path = sqlite_file(engine)
            _schema_ready[engine] = None if path is None else _file_id(path)
            return
        except (OperationalError, ProgrammingError, DBAPIError) as exc:
            if attempt == attempts - 1:
                raise
            log.debug("llmobs: schema creation raced or failed (%s); retrying", type(exc).__name__)
            time.sleep(0.05 * (attempt + 1))


# Columns added in a later release, and how to fill them in the rows an earlier release wrote (per dialect).
# spans.trace_tags is compact JSON text (as rows.tags_json writes it), whatever spacing traces.tags was stored with.
COLUMN_BACKFILLS: dict[tuple[str, str], dict[str, str]] = {
    ("spans", "trace_tags"): {
        "sqlite": "UPDATE spans SET trace_tags = (SELECT json(tags) FROM traces WHERE traces.id = spans.trace_id) "
                  "WHERE trace_id IN (SELECT id FROM traces WHERE tags IS NOT NULL AND tags != '[]')",
        "postgresql": "UPDATE spans SET trace_tags = t.tags_text FROM ("
                      "SELECT traces.id, '[' || string_agg(to_json(e.value)::text, ',' ORDER BY e.n) || ']' AS tags_text "
                      "FROM traces, json_array_elements_text(traces.tags) WITH ORDINALITY AS e(value, n) "
                      "WHERE traces.tags IS NOT NULL GROUP BY traces.id) AS t WHERE spans.trace_id = t.id",
    },
}


def _add_missing_columns(engine: Engine) -> None:
    """create_all skips tables that exist; a column added in a later release is added here (nullable) and filled
    by its COLUMN_BACKFILLS statement, in one transaction, once, when a process first opens the database."""
    from sqlalchemy import inspect

    inspector = inspect(engine)
    for table in SQLModel.metadata.sorted_tables:
        present = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            log.info("llmobs: adding column %s.%s to a database written by an earlier version", table.name,
                     column.name)
            with engine.begin() as conn:
                conn.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {column.name} "
                                     f"{column.type.compile(dialect=engine.dialect)}")
                backfill = COLUMN_BACKFILLS.get((table.name, column.name), {}).get(engine.dialect.name)
                if backfill:
                    conn.exec_driver_sql(backfill)


def _create_missing_indexes(engine: Engine) -> None:
    """create_all skips tables that exist; indexes added in a later release are created here, and an index whose
    columns a later release changed is rebuilt (once, when a process first opens the database)."""
    from sqlalchemy import inspect

    inspector = inspect(engine)
    for table in SQLModel.metadata.sorted_tables:
        present = {ix["name"]: list(ix["column_names"]) for ix in inspector.get_indexes(table.name)}
        for index in table.indexes:
            columns = [c.name for c in index.columns]
            if index.name in present and present[index.name] != columns:
                log.info("llmobs: rebuilding index %s on %s with columns %s", index.name, table.name, columns)
                index.drop(engine, checkfirst=True)
            if present.get(index.name) != columns:
                index.create(engine, checkfirst=True)


# PostgreSQL statistics on expressions the analytics filter by (gathered by ANALYZE; nothing to maintain on insert).
# Without them PostgreSQL guesses that a tag holds 0.1% of traces and reads every span of a common tag through the
# trace_id index (1.6 s for a 30-day range of 1M spans instead of 0.5 s with a hash join).
PG_STATISTICS = {"llmobs_traces_tags_jsonb": "CREATE STATISTICS IF NOT EXISTS llmobs_traces_tags_jsonb "
                                             "ON ((tags::jsonb)) FROM traces"}


def _create_statistics(engine: Engine) -> None:
    """Create PG_STATISTICS on PostgreSQL 14+ (expression statistics); older servers and SQLite go without."""
    if engine.dialect.name != "postgresql" or (engine.dialect.server_version_info or (0,)) < (14,):
        return
    with engine.begin() as conn:
        for ddl in PG_STATISTICS.values():
            conn.exec_driver_sql(ddl)


@contextmanager
def session_scope(engine: Engine | None = None) -> Iterator[Session]:
    """A SQLModel session on the (configured) engine with the schema in place; commits on success.

    >>> with session_scope(make_engine("sqlite:///:memory:")) as s:
    ...     s.exec(__import__("sqlmodel").select(__import__("llmobs").store.Span)).all()
    []
    """
    engine = engine or get_engine()
    ensure_schema(engine)
    with Session(engine) as session:
        yield session
        session.commit()


def dispose_engine(url: str) -> None:
    """Close and forget this process's shared engine for ``url`` (tests and ``configure`` use it)."""
    engine = _engines.pop(f"{os.getpid()}:{url}", None)
    if engine is not None:
        engine.dispose()


def forget_engines_after_fork() -> None:
    """Drop pooled connections inherited from the parent without closing them (they belong to the parent)."""
    for engine in list(_engines.values()):
        engine.dispose(close=False)
    _engines.clear()
    _schema_ready.clear()


def ping(engine: Engine) -> None:
    """Open a connection and run ``SELECT 1``; raises the driver's error when the database cannot be reached.

    >>> ping(make_engine("sqlite:///:memory:"))
    """
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")


def forget_schema_if_missing(engine: Engine, exc: BaseException) -> bool:
    """When ``exc`` says an llmobs table is missing (dropped while the process ran), forget that the schema is in
    place, so the next ``ensure_schema`` creates it again; True when it did.

    >>> forget_schema_if_missing(None, ValueError("no such table: spans"))
    False
    """
    orig = getattr(exc, "orig", None)
    if not isinstance(exc, DBAPIError) or orig is None:
        return False
    text = str(orig).lower()
    missing = "no such table" in text or getattr(orig, "sqlstate", None) == "42P01"  # PostgreSQL: undefined_table
    if missing:
        _schema_ready.pop(engine, None)
    return missing


def sqlite_file(engine: Engine) -> Path | None:
    """The database file of a SQLite engine (None for other engines, ``:memory:`` and ``file:`` URIs)."""
    return _file_path(engine.url.database) if engine.dialect.name == "sqlite" else None


def _file_path(database: str | None) -> Path | None:
    """The file a SQLite URL's database part names (None for ``:memory:``, ``file:`` URIs and no name)."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).expanduser()


def _file_id(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the file at ``path``, None when there is none."""
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_dev, info.st_ino


def reopen_if_replaced(engine: Engine) -> bool:
    """When the SQLite file was deleted or replaced since the schema was put in place, close the engine's pooled
    connections (they still write to the old file, which nobody can read any more), create the folder again if
    needed and forget the schema, so the next ``ensure_schema`` sets up the file now at the path; True when it did.

    A file is known by its device and inode, noted when ``ensure_schema`` has set it up; one ``stat`` per batch.
    """
    known = _schema_ready.get(engine)
    if known is None:
        return False
    path = sqlite_file(engine)
    if path is None or _file_id(path) == known:
        return False
    engine.dispose()
    # The old file's write-ahead log outlives it (SQLite keeps -wal and -shm of a moved or deleted database): left
    # there, it would be replayed into the file now at the path.
    for suffix in ("-wal", "-shm"):
        try:
            path.with_name(path.name + suffix).unlink()
        except OSError:
            pass
    _schema_ready.pop(engine, None)
    path.parent.mkdir(parents=True, exist_ok=True)
    return True


def is_unreachable(exc: BaseException) -> bool:
    """True when ``exc`` says the database cannot be reached (connection refused or cut, pool timeout, SQLite file
    missing, locked or unreadable), as opposed to a bad query or a missing table.

    >>> is_unreachable(ValueError("x"))
    False
    """
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, (DisconnectionError, PoolTimeout)):
        return True
    if not isinstance(exc, (OperationalError, InterfaceError, DatabaseError)):
        return False
    orig = getattr(exc, "orig", None)
    if type(orig).__module__ == "sqlite3":
        text = str(orig).lower()
        return any(marker in text for marker in _SQLITE_UNREACHABLE)
    return isinstance(exc, (OperationalError, InterfaceError))


def display_url(url: Any) -> str:
    """A database URL safe to show: password replaced by ``***``, query parameters dropped.

    >>> display_url("postgresql+psycopg://app:s3cret@db.example:5432/llm?sslpassword=x")
    'postgresql+psycopg://app:***@db.example:5432/llm'
    """
    try:
        parsed = make_url(url) if isinstance(url, str) else url
        return str(parsed.set(query={}).render_as_string(hide_password=True))
    except Exception:  # noqa: BLE001 - an unparsable URL is shown as nothing rather than leaked
        return "(database URL hidden)"
