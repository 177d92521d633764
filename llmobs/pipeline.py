"""Finished spans -> bounded queue -> writer thread -> processors (mask, price, ...) -> exporters (SQL by default).

The caller pays for one deque append. The writer thread drains in batches, runs the processors, and hands the
batch to each exporter behind a retry wrapper that keeps the batch through a database outage. Past
``queue_size`` the oldest spans are dropped, counted and reported; memory never grows without bound.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import sqlite3
import threading
import time
import weakref
from collections import deque
from itertools import chain
from typing import Any, Callable, NamedTuple, Protocol, Sequence

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from llmobs._state import rt, settings
import orjson

from llmobs.context import SpanRecord, refresh_clock_offset
from llmobs.processors import warm_up
from llmobs.scores import SCORE_COLUMNS, ScoreRecord
from llmobs.store.db import (
    ensure_schema,
    forget_engines_after_fork,
    forget_schema_if_missing,
    get_engine,
    reopen_if_replaced,
    sqlite_file,
)
from llmobs.store.rows import (
    COUNTED_KINDS,
    JSON_COLUMNS,
    SPAN_COLUMNS,
    TRACE_COLUMNS,
    TRACE_TOTALS,
    as_dicts,
    aware_time,
    retagged_traces,
    span_tuple,
    split_lone_roots,
    sqlite_time,
    trace_tuples,
    yielding,
)

log = logging.getLogger("llmobs")
Processor = Callable[[SpanRecord], "SpanRecord | None"]
class SchemaMissing(Exception):
    """The llmobs tables went missing while the process ran; the retry creates them again (so it is transient)."""


TRANSIENT_ERRORS = (OperationalError, InterfaceError, DisconnectionError, PoolTimeout, ConnectionError, TimeoutError,
                    SchemaMissing)


class Exporter(Protocol):
    """Where processed batches go; ``export`` raises on failure so the retry wrapper can try again."""

    def export(self, batch: Sequence[SpanRecord]) -> None:
        """Persist one batch (all or nothing)."""

    def shutdown(self) -> None:
        """Release resources."""


class SQLExporter:
    """Bulk-inserts spans and upserts trace totals into the configured database in one transaction.

    Rows arrive as tuples already in the driver's format, so each table gets one ``executemany`` through
    SQLAlchemy Core's ``exec_driver_sql`` with no per-value processing.
    """

    def __init__(self, database_url: str | None = None) -> None:
        self.database_url = database_url
        # Span ids of the batch whose COMMIT raised: the database may have stored it all the same (a connection cut
        # after the server committed), and adding its trace totals again on the retry would count them twice.
        self.unsure: frozenset[str] = frozenset()

    def engine(self) -> Engine:
        """The engine for the explicit URL or, when none was given, for the currently configured one."""
        return get_engine(self.database_url)

    def export(self, batch: Sequence[SpanRecord]) -> None:
        """Insert the batch's span rows (ignoring ids already stored), add its totals to the trace rows, and insert
        its scores (their trace id looked up from the span when not given)."""
        engine = self.engine()
        if reopen_if_replaced(engine):
            log.warning("llmobs: the database file %s was deleted or replaced while this process ran; writing to "
                        "the file now at that path", sqlite_file(engine))
        ensure_schema(engine)
        try:
            self._export(engine, batch)
        except DBAPIError as exc:
            if forget_schema_if_missing(engine, exc):  # the tables were dropped: the retry creates them again
                raise SchemaMissing("the llmobs tables are missing (dropped?); creating them again") from exc
            raise

    def _export(self, engine: Engine, batch: Sequence[SpanRecord]) -> None:
        postgres = engine.dialect.name == "postgresql"
        fmt_time = aware_time if postgres else sqlite_time
        max_chars, redact_on = rt.max_field_chars, rt.redact_secrets
        records, scores = split_batch(batch)
        spans = [span_tuple(r, max_chars, redact_on, fmt_time) for r in yielding(records)]
        if self.unsure:
            records, spans = self._not_stored_yet(engine, records, spans)
        sql = _statements(engine)
        copied: list[tuple[str]] = []
        aggregated_records, aggregated_spans = records, spans
        if sql.copy_traces is not None:
            aggregated_records, aggregated_spans, copied = split_lone_roots(records, spans)
        traces = trace_tuples(aggregated_records, aggregated_spans, max_chars, redact_on)
        retagged = retagged_traces(records)
        with engine.connect() as conn:
            with conn.begin() as transaction:
                if spans:
                    _insert(conn, sql.spans, spans)
                    _insert(conn, sql.traces, traces)
                    if copied:
                        _insert(conn, sql.copy_traces, copied)  # type: ignore[arg-type]
                if retagged:
                    conn.exec_driver_sql(sql.retag_spans, retagged)
                if scores:
                    _fill_trace_ids(conn, scores)
                    _insert(conn, sql.scores, [score_tuple(s, postgres) for s in scores])
                try:
                    self.commit(transaction)
                except BaseException:
                    self.unsure = frozenset(row[0] for row in spans)
                    raise

    @staticmethod
    def commit(transaction: Any) -> None:
        """Commit the batch's transaction (a method of its own so tests can make a stored batch report failure)."""
        transaction.commit()

    def _not_stored_yet(self, engine: Engine, records: list[SpanRecord],
                        spans: list[tuple[Any, ...]]) -> tuple[list[SpanRecord], list[tuple[Any, ...]]]:
        """After a failed COMMIT, keep only the spans the database does not hold: a batch that was stored after all
        is not counted into its traces' totals a second time. Span ids are unique, so this asks by primary key."""
        if not self.unsure.intersection(row[0] for row in spans):
            return records, spans
        from sqlalchemy import select

        from llmobs.store.models import Span

        ids = [row[0] for row in spans]
        column = Span.__table__.c.id
        stored: set[str] = set()
        with engine.connect() as conn:
            for i in range(0, len(ids), 500):
                stored.update(conn.execute(select(column).where(column.in_(ids[i:i + 500]))).scalars())
        self.unsure = frozenset()
        if stored:
            log.warning("llmobs: %d spans of a batch whose commit failed were stored after all; not counted twice",
                        len(stored))
        kept = [(r, row) for r, row in zip(records, spans) if row[0] not in stored]
        return [r for r, _ in kept], [row for _, row in kept]

    def shutdown(self) -> None:
        """Nothing to release: engines are shared and disposed at process exit."""


class InMemoryExporter:
    """Keeps span rows as dicts: for tests, benchmarks and users who want spans without a database."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.trace_rows: list[dict[str, Any]] = []
        self.score_rows: list[dict[str, Any]] = []

    def export(self, batch: Sequence[SpanRecord]) -> None:
        """Convert and keep the batch."""
        records, scores = split_batch(batch)
        spans = [span_tuple(r, rt.max_field_chars, rt.redact_secrets, aware_time) for r in records]
        self.rows.extend(as_dicts(SPAN_COLUMNS, spans))
        self.trace_rows.extend(as_dicts(TRACE_COLUMNS, trace_tuples(records, spans, rt.max_field_chars,
                                                                     rt.redact_secrets)))
        for tags, trace_id in retagged_traces(records):  # the in-memory twin of the retag UPDATE
            decoded = None if tags is None else orjson.loads(tags)
            for row in self.rows:
                if row["trace_id"] == trace_id:
                    row["trace_tags"] = decoded
        self.score_rows.extend(dict(zip(SCORE_COLUMNS, s.as_tuple())) for s in scores)

    def shutdown(self) -> None:
        """Nothing to release."""


def split_batch(batch: Sequence[Any]) -> tuple[list[SpanRecord], list[ScoreRecord]]:
    """Separate spans from scores (both travel through the one queue)."""
    spans: list[SpanRecord] = []
    scores: list[ScoreRecord] = []
    for item in batch:
        (scores if type(item) is ScoreRecord else spans).append(item)
    return spans, scores


def score_tuple(score: ScoreRecord, postgres: bool) -> tuple[Any, ...]:
    """A score's ``evaluations`` row in SCORE_COLUMNS order, times and JSON in the driver's format."""
    values = list(score.as_tuple())
    created = values[-1]
    values[-1] = created if postgres else sqlite_time(int(created.timestamp() * 1_000_000))
    i_meta = SCORE_COLUMNS.index("metadata")
    values[i_meta] = None if values[i_meta] is None else orjson.dumps(values[i_meta]).decode()
    return tuple(values)


def _fill_trace_ids(conn: Any, scores: Sequence[ScoreRecord]) -> None:
    """Scores given only a span id get that span's trace id (when the span is stored)."""
    missing = sorted({s.span_id for s in scores if s.trace_id is None and s.span_id is not None})
    if not missing:
        return
    from sqlalchemy import select

    from llmobs.store.models import Span

    table = Span.__table__
    found = dict(conn.execute(select(table.c.id, table.c.trace_id).where(table.c.id.in_(missing))).all())
    for s in scores:
        if s.trace_id is None and s.span_id in found:
            s.trace_id = found[s.span_id]


class Insert:
    """One INSERT ... ON CONFLICT, in a version for each block size (that many rows in one statement)."""

    def __init__(self, head: str, row: str, tail: str, blocks: tuple[int, ...]) -> None:
        self.blocks = blocks
        self.sql = {n: head + ", ".join([row] * n) + tail for n in blocks}


# Each run of an INSERT opens a cursor on the table and on every index (nine for spans) and closes them again, and
# sqlite3 lets go of the GIL around it twice. Next to a busy application thread every let-go costs the writer up
# to a switch interval (5 ms) before it runs again, so a SQLite batch runs as few statements as it can: up to 1,000
# rows each (24,000 parameters: SQLite allows 32,766 since 3.32), the rest in blocks of 100, 10 and 1; a library
# built with a lower limit gets smaller blocks. PostgreSQL plans statements that large slowly (half the spans per
# second): 50 rows there.
SQLITE_ROW_BLOCKS = (1000, 100, 10, 1)
POSTGRES_ROW_BLOCKS = (50, 10, 1)


def sqlite_variable_limit(engine: Engine) -> int:
    """The most ``?`` parameters one statement may have on ``engine``'s SQLite connections."""
    raw = engine.raw_connection()
    try:
        getlimit = getattr(raw.dbapi_connection, "getlimit", None)  # Python 3.11+
        if getlimit is not None:
            return int(getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
        return 32766 if sqlite3.sqlite_version_info >= (3, 32) else 999
    finally:
        raw.close()


def row_blocks(blocks: tuple[int, ...], columns: int, limit: int) -> tuple[int, ...]:
    """``blocks`` with every size over ``limit // columns`` rows replaced by that largest size that fits.

    >>> row_blocks((1000, 100, 10, 1), 24, 999)
    (41, 10, 1)
    """
    top = max(1, limit // columns)
    return tuple(dict.fromkeys(min(size, top) for size in blocks))


def _insert(conn: Any, statement: Insert, rows: Sequence[tuple[Any, ...]]) -> None:
    """Execute ``statement`` for ``rows`` in as few executions as its block sizes allow."""
    start, total = 0, len(rows)
    for size in statement.blocks:
        end = start + (total - start) // size * size
        if end > start:
            conn.exec_driver_sql(statement.sql[size], rows[start:end] if size == 1 else
                                 [tuple(chain.from_iterable(rows[i:i + size])) for i in range(start, end, size)])
            start = end


class Statements(NamedTuple):
    """The writer's SQL for one dialect."""

    spans: Insert
    traces: Insert
    copy_traces: Insert | None  # SQLite only (see _statements)
    scores: Insert
    retag_spans: str


_STATEMENTS: weakref.WeakKeyDictionary[Engine, Statements] = weakref.WeakKeyDictionary()


def _statements(engine: Engine) -> Statements:
    """INSERT ... ON CONFLICT for spans (do nothing), traces (add totals, keep known attributes) and scores, and the
    UPDATE that rewrites the tags of a retagged trace's spans."""
    known = _STATEMENTS.get(engine)
    if known is not None:
        return known
    name = engine.dialect.name
    postgres = name == "postgresql"
    mark = "%s" if engine.dialect.paramstyle in ("format", "pyformat") else "?"
    sqlite_limit = None if postgres else sqlite_variable_limit(engine)

    def placeholder(column: str) -> str:
        return f"CAST({mark} AS JSON)" if postgres and column in JSON_COLUMNS else mark

    def insert(table: str, columns: Sequence[str], on_conflict: str) -> Insert:
        row = f"({', '.join(placeholder(c) for c in columns)})"
        head, tail = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ", f" ON CONFLICT (id) DO {on_conflict}"
        blocks = (POSTGRES_ROW_BLOCKS if sqlite_limit is None
                  else row_blocks(SQLITE_ROW_BLOCKS, len(columns), sqlite_limit))
        return Insert(head, row, tail, blocks)

    updates = []
    for column in TRACE_COLUMNS[1:]:
        if column in TRACE_TOTALS:
            updates.append(f"{column} = CASE WHEN traces.{column} IS NULL AND excluded.{column} IS NULL THEN NULL "
                           f"ELSE COALESCE(traces.{column}, 0) + COALESCE(excluded.{column}, 0) END")
        else:
            updates.append(f"{column} = COALESCE(excluded.{column}, traces.{column})")
    upsert = "UPDATE SET " + ", ".join(updates)
    counted = ", ".join(f"'{k}'" for k in COUNTED_KINDS)
    copied = {"span_count": "1", "error_count": "CASE WHEN status = 'error' THEN 1 ELSE 0 END",
              "user_id": "NULL", "session_id": "NULL", "tags": "NULL", "metadata": "NULL", "id": "trace_id",
              **{c: f"CASE WHEN kind IN ({counted}) THEN {c} END" for c in TRACE_TOTALS if c not in (
                  "span_count", "error_count")}}
    copy_head = (f"INSERT INTO traces ({', '.join(TRACE_COLUMNS)}) SELECT "
                 f"{', '.join(copied.get(c, c) for c in TRACE_COLUMNS)} FROM spans WHERE id IN (")
    # PostgreSQL is left to aggregate in Python: there the copy made the writer ten times slower (3,800 against
    # 36,000 spans/s over 20,000 single-span traces), each statement taking longer as the table grew.
    copy_traces = None if sqlite_limit is None else Insert(copy_head, mark, f") ON CONFLICT (id) DO {upsert}",
                                                           row_blocks(SQLITE_ROW_BLOCKS, 1, sqlite_limit))
    statements = Statements(insert("spans", SPAN_COLUMNS, "NOTHING"),
                            insert("traces", TRACE_COLUMNS, upsert),
                            copy_traces,
                            insert("evaluations", SCORE_COLUMNS, "NOTHING"),
                            f"UPDATE spans SET trace_tags = {mark} WHERE trace_id = {mark}")
    _STATEMENTS[engine] = statements
    return statements


class RetryingExporter:
    """Retries a failing exporter with capped exponential backoff while the failure is transient.

    Transient errors (connection refused, database locked) are retried until ``give_up()`` says stop, so a batch
    survives an outage. Other database errors are retried a few times, then the batch is written row by row so one
    bad row cannot block the rest; rows that still fail are dropped, logged and counted.
    """

    def __init__(self, inner: Exporter, give_up: Callable[[], bool], base_delay: float = 0.05,
                 max_delay: float = 2.0) -> None:
        self.inner = inner
        self.give_up = give_up
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.failures = 0
        self.rejected = 0
        self.lost = 0

    def export(self, batch: Sequence[SpanRecord]) -> None:
        """Export ``batch``, waiting through transient failures; never raises."""
        delay = self.base_delay
        attempts = 0
        while True:
            try:
                self.inner.export(batch)
                if self.failures:
                    log.warning("llmobs: database reachable again after %d failed attempts", self.failures)
                    self.failures = 0
                return
            except TRANSIENT_ERRORS as exc:
                self.failures += 1
                if self.failures == 1 or self.failures % 50 == 0:
                    log.warning("llmobs: cannot write %d spans yet (%s: %s); holding them and retrying",
                                len(batch), type(exc).__name__, str(exc).splitlines()[0][:200])
            except Exception as exc:  # noqa: BLE001 - a non-transient error: retry a little, then isolate rows
                attempts += 1
                if attempts >= 3:
                    self._export_one_by_one(batch, exc)
                    return
            if self.give_up():
                self.lost += len(batch)
                log.error("llmobs: gave up writing %d spans at shutdown: the database stayed unreachable", len(batch))
                return
            time.sleep(delay)
            delay = min(delay * 2, self.max_delay)

    def _export_one_by_one(self, batch: Sequence[SpanRecord], first: Exception) -> None:
        log.warning("llmobs: batch of %d spans failed (%s); writing rows one by one", len(batch), first)
        for record in batch:
            try:
                self.inner.export([record])
            except Exception as exc:  # noqa: BLE001
                if isinstance(exc, TRANSIENT_ERRORS) and not self.give_up():
                    self.export([record])
                    continue
                self.rejected += 1
                log.error("llmobs: span %r rejected by the exporter and dropped: %s", record.name,
                          str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__)

    def shutdown(self) -> None:
        """Shut the inner exporter down."""
        self.inner.shutdown()


class Pipeline:
    """The bounded queue and the writer thread that drains it."""

    def __init__(self) -> None:
        self.queue: deque[SpanRecord] = deque()
        self.thread: threading.Thread | None = None
        self.wake = threading.Event()
        self.idle = threading.Condition()
        self.busy = False
        self.stopping = False
        self.stop_deadline: float | None = None
        self.dropped = 0
        self.dropped_reported = 0
        self.written = 0
        self.maxlen = 100_000
        # Callers may append without calling submit() while the queue is shorter than wake_at; it stays 0 while no
        # writer runs, so the first span starts one. start() keeps it at or below maxlen // 2.
        self.wake_at = 0
        self.processors: list[Processor] = []
        self.exporters: list[RetryingExporter] = []
        self._drop_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self.pid = os.getpid()

    # --- caller side -------------------------------------------------------------------------------------------
    def submit(self, record: SpanRecord) -> None:
        """Queue a finished span; drops (and counts) the oldest when the queue is full. Never blocks on I/O."""
        if self.thread is None:
            self.start()
        queue = self.queue
        if len(queue) >= self.maxlen:
            self._drop_oldest()
        queue.append(record)
        if len(queue) >= self.wake_at and not self.wake.is_set():  # set() takes a lock: once is enough
            self.wake.set()

    def _drop_oldest(self) -> None:
        with self._drop_lock:
            while len(self.queue) >= self.maxlen:
                try:
                    self.queue.popleft()
                except IndexError:
                    return
                self.dropped += 1

    # --- lifecycle ---------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the writer thread (once per process)."""
        with self._start_lock:
            if self.thread is not None:
                return
            conf = settings()
            if not self.exporters:
                self.exporters = [RetryingExporter(SQLExporter(), self._should_give_up)]
            thread = threading.Thread(target=self._run, name="llmobs-writer", daemon=True)
            self.stopping = False
            self.thread = thread
            self.apply_limits(conf.queue_size, conf.batch_size)
            thread.start()
            install_sigterm_handler()

    def apply_limits(self, queue_size: int, batch_size: int) -> None:
        """Bound the queue at ``queue_size`` and wake the writer once a batch is waiting (no fast path without it)."""
        self.maxlen = queue_size
        self.wake_at = max(1, min(batch_size, queue_size // 2 or 1)) if self.thread is not None else 0

    def set_exporters(self, exporters: Sequence[Exporter]) -> None:
        """Replace the exporters (each wrapped for retries)."""
        self.exporters = [RetryingExporter(e, self._should_give_up) for e in exporters]

    def _should_give_up(self) -> bool:
        return self.stopping and self.stop_deadline is not None and time.monotonic() >= self.stop_deadline

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every span queued so far is written (or ``timeout`` seconds pass); True when all were."""
        if self.thread is None or not self.thread.is_alive():
            return not self.queue
        deadline = None if timeout is None else time.monotonic() + timeout
        self.wake.set()
        with self.idle:
            while self.queue or self.busy:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self.wake.set()
                self.idle.wait(0.05 if remaining is None else min(0.05, remaining))
        self._report_drops()
        return True

    def shutdown(self, timeout: float | None = None) -> bool:
        """Flush, then stop the writer; spans still unwritable after ``timeout`` are reported lost."""
        if timeout is None:
            timeout = settings().shutdown_timeout_seconds
        self.stopping = True
        self.stop_deadline = time.monotonic() + timeout
        done = self.flush(timeout)
        thread = self.thread
        self.wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(0.0, self.stop_deadline - time.monotonic()) + 0.5)
        self.thread = None
        self.wake_at = 0
        for exporter in self.exporters:
            exporter.shutdown()
        if self.queue:
            log.error("llmobs: %d spans were still queued at shutdown and are lost", len(self.queue))
        self._report_drops()
        return done

    def stats(self) -> dict[str, int]:
        """Counters: queued, written, dropped (queue full), rejected (bad rows), lost (unwritable at shutdown)."""
        return {"queued": len(self.queue), "written": self.written, "dropped": self.dropped,
                "rejected": sum(e.rejected for e in self.exporters), "lost": sum(e.lost for e in self.exporters)}

    def _report_drops(self) -> None:
        if self.dropped > self.dropped_reported:
            log.warning("llmobs: queue full (queue_size=%d): dropped %d spans so far (the oldest first)",
                        self.maxlen, self.dropped)
            self.dropped_reported = self.dropped

    # --- writer side -------------------------------------------------------------------------------------------
    def _run(self) -> None:
        warm_up(self.processors)
        while True:
            self.wake.wait(settings().flush_interval_seconds)
            self.wake.clear()
            try:
                self._drain(settings().batch_size)  # read after the wait: configure() may have changed it
            except Exception:  # noqa: BLE001 - the writer must survive anything
                log.exception("llmobs: writer error")
            if self.dropped > self.dropped_reported:
                self._report_drops()
            if self.stopping and not self.queue:
                with self.idle:
                    self.idle.notify_all()
                return

    def _drain(self, batch_size: int) -> None:
        queue = self.queue
        while True:
            with self.idle:
                self.busy = True
            try:
                batch: list[SpanRecord] = []
                popleft = queue.popleft
                try:
                    for _ in range(batch_size):
                        batch.append(popleft())
                except IndexError:
                    pass
                if not batch:
                    return
                refresh_clock_offset()
                processed = self._process(batch)
                for exporter in self.exporters:
                    exporter.export(processed)
                self.written += len(batch)
            finally:
                with self.idle:
                    self.busy = False
                    self.idle.notify_all()

    def _process(self, batch: list[SpanRecord]) -> list[SpanRecord]:
        if not self.processors:
            return batch
        out: list[SpanRecord] = []
        for record in yielding(batch):
            if type(record) is ScoreRecord:
                out.append(record)
                continue
            current: SpanRecord | None = record
            for processor in self.processors:
                try:
                    current = processor(current)
                except Exception:  # noqa: BLE001 - one failing processor must not lose the span
                    log.warning("llmobs: processor %r failed on span %r", processor, record.name, exc_info=True)
                if current is None:
                    break
            if current is not None:
                out.append(current)
        return out


pipeline = Pipeline()


def _after_fork_in_child() -> None:
    """The child starts with an empty queue (the parent writes its own spans) and a fresh writer on first use."""
    global pipeline
    old = pipeline
    fresh = Pipeline()
    fresh.processors = list(old.processors)
    fresh.exporters = [RetryingExporter(e.inner, fresh._should_give_up) for e in old.exporters]
    pipeline = fresh
    forget_engines_after_fork()


def submit(record: SpanRecord) -> None:
    """Hand a finished span to the pipeline of this process (an append while the queue is short of a batch)."""
    pipe = pipeline
    queue = pipe.queue
    if len(queue) < pipe.wake_at:
        queue.append(record)
    else:
        pipe.submit(record)


def current_pipeline() -> Pipeline:
    """The pipeline of this process (a new one after fork)."""
    return pipeline


def _at_exit() -> None:
    p = pipeline
    if p.thread is not None and p.pid == os.getpid() or p.queue:
        try:
            p.shutdown()
        except Exception:  # noqa: BLE001
            log.exception("llmobs: flush at exit failed")


_sigterm_installed = False


def install_sigterm_handler() -> None:
    """Flush on SIGTERM, then die by SIGTERM as before; only when no handler is installed and in the main thread."""
    global _sigterm_installed
    if _sigterm_installed or not settings().install_signal_handlers:
        return
    if threading.current_thread() is not threading.main_thread():
        return
    try:
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return
        signal.signal(signal.SIGTERM, _on_sigterm)
        _sigterm_installed = True
    except (ValueError, OSError):  # not the main interpreter, or signals unavailable
        return


def _on_sigterm(signum: int, _frame: Any) -> None:
    try:
        pipeline.shutdown()
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_at_exit)
