"""Nothing lost, memory bounded: locks, outages, several processes, exit, SIGTERM, fork and a full queue."""

from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, Sequence

import pytest
from sqlalchemy import event, make_url
from sqlalchemy.exc import OperationalError

import llmobs
from llmobs.context import SpanRecord, TraceState, new_trace_id
from llmobs.pipeline import InMemoryExporter, RetryingExporter, SQLExporter
from llmobs.store import db
from tests.support.databases import PG_SKIP_REASON, Store, create_pg_schema, drop_pg_schema, postgres_base_url
from tests.support.tcp_proxy import TcpProxy

REPO = Path(__file__).resolve().parent.parent


def run_script(code: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120) -> str:
    """Run Python code in a fresh interpreter (so its exit path is real) and return its stdout."""
    full_env = {**os.environ, **(env or {}), "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def count_sqlite(path: Path, where: str = "1=1") -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute(f"select count(*) from spans where {where}").fetchone()[0]


def test_spans_recorded_while_sqlite_is_locked_all_land_after_release(sqlite_store: Store,
                                                                       monkeypatch: pytest.MonkeyPatch,
                                                                       llmobs_logs: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(db, "SQLITE_BUSY_TIMEOUT_MS", 300)
    with llmobs.span("warmup"):
        pass
    assert llmobs.flush(10)
    assert sqlite_store.path is not None
    locker = sqlite3.connect(sqlite_store.path, timeout=10, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        for i in range(10_000):
            with llmobs.span("locked", input=i):
                pass
        time.sleep(2.5)
        assert count_sqlite_uncommitted(locker) == 1
    finally:
        locker.execute("COMMIT")
        locker.close()
    assert llmobs.flush(60)
    assert count_sqlite(sqlite_store.path, "name = 'locked'") == 10_000
    assert any("holding them and retrying" in r.getMessage() for r in llmobs_logs.records)


def count_sqlite_uncommitted(conn: sqlite3.Connection) -> int:
    return conn.execute("select count(*) from spans").fetchone()[0]


@pytest.mark.skipif(postgres_base_url() is None, reason=PG_SKIP_REASON)
def test_postgres_outage_keeps_queued_spans_and_writes_them_when_it_returns(
        llmobs_logs: pytest.LogCaptureFixture) -> None:
    base = postgres_base_url()
    assert base is not None
    schema, url = create_pg_schema(base)
    parsed = make_url(url)
    try:
        with TcpProxy((parsed.host or "127.0.0.1", parsed.port or 5432)) as proxy:
            proxied = url.replace(f"{parsed.host}:{parsed.port}", f"127.0.0.1:{proxy.port}")
            llmobs.configure(reset=True, database_url=proxied, flush_interval_seconds=0.1)
            with llmobs.span("before"):
                pass
            assert llmobs.flush(10)
            proxy.down()
            for i in range(1000):
                with llmobs.span("during_outage", input=i):
                    pass
            time.sleep(2)
            direct = db.make_engine(url)
            with direct.connect() as conn:
                written = conn.exec_driver_sql("select count(*) from spans").scalar()
            direct.dispose()
            assert written == 1  # the outage is real: nothing got through the proxy
            assert llmobs.stats()["dropped"] == 0
            proxy.up()
            assert llmobs.flush(60)
            reader = Store("postgres", url)
            names = [r["name"] for r in reader.spans()]
            reader.dispose()
            assert names.count("during_outage") == 1000 and names.count("before") == 1
            assert any("retrying" in r.getMessage() for r in llmobs_logs.records)
    finally:
        llmobs.configure(reset=True)
        db.dispose_engine(url)
        drop_pg_schema(base, schema)


def test_four_processes_writing_one_sqlite_file_land_every_span_once(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    code = f"""
        import sys, llmobs
        llmobs.configure(database_url="sqlite:///{path}")
        for i in range(2000):
            with llmobs.span(f"p{{sys.argv[1]}}", input=i):
                pass
    """
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), str(n)], cwd=tmp_path, env=env,
                              stderr=subprocess.PIPE, text=True) for n in range(4)]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    with sqlite3.connect(path) as conn:
        counts = dict(conn.execute("select name, count(*) from spans group by name").fetchall())
        distinct = conn.execute("select count(distinct id) from spans").fetchone()[0]
    assert counts == {"p0": 2000, "p1": 2000, "p2": 2000, "p3": 2000} and distinct == 8000


def test_process_exiting_without_flush_writes_all_rows(tmp_path: Path) -> None:
    path = tmp_path / "exit.db"
    run_script(f"""
        import llmobs
        llmobs.configure(database_url="sqlite:///{path}", flush_interval_seconds=60, batch_size=100000)
        @llmobs.observe
        def work(i):
            return i
        for i in range(5000):
            work(i)
        print(llmobs.stats()["queued"])
    """, tmp_path)
    assert count_sqlite(path) == 5000


def test_sigterm_flushes_queued_spans_and_the_process_still_dies_by_sigterm(tmp_path: Path) -> None:
    path = tmp_path / "term.db"
    code = f"""
        import time, llmobs
        llmobs.configure(database_url="sqlite:///{path}", flush_interval_seconds=60, batch_size=100000)
        for i in range(3000):
            with llmobs.span("before_term"):
                pass
        print("ready", llmobs.stats()["queued"], flush=True)
        time.sleep(60)
    """
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("ready"), proc.stderr.read() if proc.stderr else ""
    assert int(line.split()[1]) > 0  # spans really were still queued when the signal came
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGTERM
    assert count_sqlite(path) == 3000


def test_forked_worker_writes_its_own_spans_and_never_duplicates_the_parents(tmp_path: Path) -> None:
    path = tmp_path / "fork.db"
    run_script(f"""
        import os, sys, llmobs
        llmobs.configure(database_url="sqlite:///{path}", flush_interval_seconds=60, batch_size=100000)
        for i in range(500):
            with llmobs.span("parent_before_fork"):
                pass
        pids = []
        for n in range(2):
            pid = os.fork()
            if pid == 0:
                for i in range(300):
                    with llmobs.span(f"child{{n}}"):
                        pass
                sys.exit(0)
            pids.append(pid)
        for pid in pids:
            _, status = os.waitpid(pid, 0)
            assert os.WEXITSTATUS(status) == 0, status
        for i in range(200):
            with llmobs.span("parent_after_fork"):
                pass
    """, tmp_path)
    with sqlite3.connect(path) as conn:
        counts = dict(conn.execute("select name, count(*) from spans group by name").fetchall())
    assert counts == {"parent_before_fork": 500, "child0": 300, "child1": 300, "parent_after_fork": 200}


def test_full_queue_drops_the_oldest_counts_them_and_warns(tmp_path: Path,
                                                           llmobs_logs: pytest.LogCaptureFixture) -> None:
    gate = threading.Event()

    class GatedExporter(InMemoryExporter):
        def export(self, batch: Sequence[SpanRecord]) -> None:
            gate.wait(30)
            super().export(batch)

    exporter = GatedExporter()
    llmobs.configure(reset=True, database_url=f"sqlite:///{tmp_path}/unused.db", exporters=[exporter],
                     queue_size=100, batch_size=10)
    try:
        for i in range(1000):
            with llmobs.span("flood", input=i):
                pass
        stats = llmobs.stats()
        assert stats["queued"] <= 100
        gate.set()
        assert llmobs.flush(30)
        stats = llmobs.stats()
        assert stats["dropped"] + len(exporter.rows) == 1000 and stats["dropped"] >= 880
        kept = [r["input"] for r in exporter.rows]
        assert kept[-1] == "999"  # the newest spans are the ones kept
        assert any("dropped" in r.getMessage() and "queue_size=100" in r.getMessage() for r in llmobs_logs.records)
    finally:
        gate.set()
        llmobs.configure(reset=True, exporters=[llmobs_default_exporter()])


def llmobs_default_exporter() -> Any:
    from llmobs.pipeline import SQLExporter

    return SQLExporter()


def test_a_row_the_exporter_rejects_is_dropped_alone_and_counted(llmobs_logs: pytest.LogCaptureFixture) -> None:
    class PickyExporter(InMemoryExporter):
        def export(self, batch: Sequence[SpanRecord]) -> None:
            if any(r.name == "poison" for r in batch):
                raise ValueError("value too long for column")
            super().export(batch)

    inner = PickyExporter()
    retrying = RetryingExporter(inner, give_up=lambda: False, base_delay=0.001)
    records = []
    for name in ("a", "poison", "b"):
        span = llmobs.start_span(name)
        records.append(span)
    for record in records:
        record.ended = True
    retrying.export(records)
    assert [r["name"] for r in inner.rows] == ["a", "b"] and retrying.rejected == 1
    assert any("rejected" in r.getMessage() for r in llmobs_logs.records)


def _generation_batch(spans: int, per_trace: int) -> tuple[list[SpanRecord], list[TraceState]]:
    """Finished generation spans with distinct token counts and costs, ``per_trace`` spans per trace."""
    traces = [TraceState(new_trace_id(), True) for _ in range(-(-spans // per_trace))]
    records = []
    for i in range(spans):
        record = SpanRecord(f"s{i}", "generation", traces[i // per_trace], None, "observe")
        record.prompt_tokens, record.completion_tokens, record.cost_usd = i, 2 * i, i / 1000
        record.status = "error" if i % 10 == 0 else "ok"
        record.perf_end, record.ended = record.perf_start + 1_000_000, True
        records.append(record)
    return records, traces


def test_batches_crossing_multi_row_inserts_land_each_span_once_with_exact_trace_totals(store: Store) -> None:
    """Rows go in blocks (SQLite 1,000/100/10/1 rows per statement, PostgreSQL 50/10/1); batches of 1,234 and 1,111
    spans use every block size, traces straddle blocks and the two batches, and every row lands once, with trace
    totals equal to the sums over their spans from both batches."""
    records, traces = _generation_batch(2345, 7)  # traces cross the blocks and the two batches
    exporter = SQLExporter(store.url)
    exporter.export(records[:1234])
    exporter.export(records[1234:])
    assert sorted(r["name"] for r in store.spans()) == sorted(f"s{i}" for i in range(2345))
    rows = {t["id"]: t for t in store.traces()}
    assert len(rows) == 335
    for trace in traces:
        mine = [r for r in records if r.trace is trace]
        row = rows[trace.id]
        assert row["span_count"] == 7 and row["error_count"] == sum(r.status == "error" for r in mine)
        assert row["prompt_tokens"] == sum(r.prompt_tokens for r in mine)
        assert row["total_tokens"] == sum(3 * r.prompt_tokens for r in mine)
        assert row["cost_usd"] == pytest.approx(sum(r.cost_usd for r in mine))


@pytest.mark.parametrize("stored_before_failing", [True, False], ids=["commit-went-through", "commit-failed"])
def test_a_batch_whose_commit_reports_failure_is_retried_without_counting_its_traces_twice(
        store: Store, stored_before_failing: bool, llmobs_logs: pytest.LogCaptureFixture) -> None:
    """A connection cut while COMMIT is answered leaves it unknown whether the batch was stored; the retry must land
    each span once and add each span to its trace's totals once, whichever way the commit actually went."""
    from sqlalchemy.exc import OperationalError

    class CutAtCommit(SQLExporter):
        cuts = 1

        def commit(self, transaction: Any) -> None:
            if self.cuts:
                self.cuts -= 1
                if stored_before_failing:
                    transaction.commit()
                raise OperationalError("COMMIT", {}, ConnectionError("server closed the connection unexpectedly"))
            transaction.commit()

    traces = [TraceState(new_trace_id(), True) for _ in range(3)]
    records = []
    for i in range(12):
        record = SpanRecord(f"s{i}", "generation", traces[i % 3], None, "observe")
        record.prompt_tokens, record.completion_tokens = 10, 5
        record.perf_end, record.ended = record.perf_start + 1_000_000, True
        records.append(record)
    inner = CutAtCommit(store.url)
    RetryingExporter(inner, give_up=lambda: False, base_delay=0.001).export(records)

    assert sorted(r["name"] for r in store.spans()) == sorted(f"s{i}" for i in range(12))
    totals = {t["id"]: (t["span_count"], t["prompt_tokens"], t["total_tokens"]) for t in store.traces()}
    assert totals == {trace.id: (4, 40, 60) for trace in traces}
    said_stored = any("stored after all" in r.getMessage() for r in llmobs_logs.records)
    assert said_stored is stored_before_failing


def test_spans_written_after_the_tables_were_dropped_land_in_tables_created_again(
        store: Store, llmobs_logs: pytest.LogCaptureFixture) -> None:
    with llmobs.span("before"):
        pass
    assert llmobs.flush(10)
    dropper = db.make_engine(store.url)
    try:
        with dropper.begin() as conn:
            conn.exec_driver_sql("DROP TABLE spans")
            conn.exec_driver_sql("DROP TABLE traces")
    finally:
        dropper.dispose()
    with llmobs.span("after"):
        pass
    assert llmobs.flush(10)
    assert [r["name"] for r in store.spans()] == ["after"]
    assert [t["span_count"] for t in store.traces()] == [1]
    assert llmobs.stats()["lost"] == 0
    assert any("tables are missing" in r.getMessage() for r in llmobs_logs.records)


@pytest.mark.parametrize("how", ["file", "folder", "replaced"])
def test_spans_written_after_the_sqlite_file_was_deleted_or_replaced_land_in_the_file_at_that_path(
        tmp_path: Path, how: str, llmobs_logs: pytest.LogCaptureFixture) -> None:
    """Deleting the database (or its folder) while the app runs, or moving another database into its place, must not
    send later spans into the old file, which nobody can open any more."""
    path = tmp_path / "data" / "llmobs.db"
    llmobs.configure(reset=True, database_url=f"sqlite:///{path}")
    with llmobs.span("before"):
        pass
    assert llmobs.flush(10)
    if how == "folder":
        for leftover in path.parent.iterdir():
            leftover.unlink()
        path.parent.rmdir()
    elif how == "file":
        path.unlink()
    else:
        other = tmp_path / "other.db"
        with sqlite3.connect(other) as conn:
            conn.execute("CREATE TABLE notes (x TEXT)")
        other.replace(path)
    with llmobs.span("after"):
        pass
    assert llmobs.flush(10)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT name FROM spans").fetchall() == [("after",)]
        assert conn.execute("SELECT span_count FROM traces").fetchall() == [(1,)]
        if how == "replaced":
            assert conn.execute("SELECT count(*) FROM notes").fetchone() == (0,)
    assert llmobs.stats()["lost"] == 0
    assert any("deleted or replaced" in r.getMessage() for r in llmobs_logs.records)
    with llmobs.span("later"):  # the new file is now the known one: no second reopening
        pass
    assert llmobs.flush(10)
    assert sum("deleted or replaced" in r.getMessage() for r in llmobs_logs.records) == 1


@pytest.mark.skipif(sys.version_info < (3, 11), reason="Connection.setlimit needs Python 3.11")
def test_a_sqlite_allowing_fewer_parameters_per_statement_gets_smaller_blocks(sqlite_store: Store) -> None:
    """A SQLite library built with the old limit of 999 parameters refuses 1,000-row statements (24,000
    parameters); the writer reads the limit from its connection and writes 41-row blocks instead."""
    engine = db.get_engine(sqlite_store.url)
    event.listen(engine, "connect",
                 lambda conn, _record: conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999))
    engine.dispose()  # connections made from now on have the lower limit
    with engine.connect() as conn, pytest.raises(OperationalError, match="too many SQL variables"):
        conn.exec_driver_sql("SELECT " + ", ".join(["?"] * 1000), tuple(range(1000)))
    records, traces = _generation_batch(1234, 3)
    SQLExporter(sqlite_store.url).export(records)
    assert len(sqlite_store.spans()) == 1234 and len(sqlite_store.traces()) == len(traces)
    assert sum(t["prompt_tokens"] for t in sqlite_store.traces()) == sum(range(1234))


def test_the_writer_warms_up_its_processors_when_it_starts_and_survives_a_failing_warm_up(tmp_path: Path) -> None:
    """The writer runs each processor's ``warm_up`` (the price table's import, say) on its own thread before the
    first batch, so that batch does not stall on it; a warm-up that raises is logged and the spans still land."""
    path = tmp_path / "warm.db"
    out = run_script(f"""
        import json, logging, sys, threading, llmobs
        logging.basicConfig(stream=sys.stdout, format="%(name)s %(levelname)s %(message)s")
        events = []
        def tag(record):
            events.append(("process", threading.current_thread().name))
            record.metadata = {{"tagged": True}}
            return record
        tag.warm_up = lambda: events.append(("warm_up", threading.current_thread().name))
        def broken(record):
            return record
        def fail():
            raise RuntimeError("no table here")
        broken.warm_up = fail
        llmobs.configure(database_url="sqlite:///{path}", processors=[broken, tag])
        with llmobs.span("first"):
            pass
        llmobs.flush()
        print(json.dumps(events))
    """, tmp_path)
    events = [tuple(e) for e in json.loads(out.strip().splitlines()[-1])]
    assert events[0] == ("warm_up", "llmobs-writer") and events[1] == ("process", "llmobs-writer")
    assert "llmobs WARNING llmobs: warming up processor" in out and "RuntimeError: no table here" in out
    with sqlite3.connect(path) as conn:
        assert conn.execute("select name, metadata from spans").fetchall() == [("first", '{"tagged":true}')]


def _trace_batch() -> list[SpanRecord]:
    """Lone roots of every shape the writer copies (ok/error, counted/uncounted kinds, with and without usage), a
    lone root of a trace with attributes, a two-span trace and a late child alone in the batch."""
    records = []

    def span(name: str, kind: str, trace: TraceState, parent: int | None = None, root: bool = True,
             **fields: Any) -> SpanRecord:
        record = SpanRecord(name, kind, trace, parent, "observe")
        record.is_root = root
        record.arg_values, record.arg_names = (f"input of {name}",), ("prompt",)
        record.output = f"output of {name}"
        for key, value in fields.items():
            setattr(record, key, value)
        record.perf_end, record.ended = record.perf_start + 2_500_000, True
        records.append(record)
        return record

    def trace() -> TraceState:
        return TraceState(new_trace_id(), True)

    span("generation", "generation", trace(), prompt_tokens=7, completion_tokens=3, cost_usd=0.25)
    span("no usage", "generation", trace())
    span("failed", "embedding", trace(), status="error", error_type="ValueError", prompt_tokens=4)
    span("a chain with tokens", "chain", trace(), prompt_tokens=9, completion_tokens=1)
    span("no input", "tool", trace(), arg_values=None, output=None)
    named = trace()
    named.name, named.user_id, named.session_id, named.metadata = "named trace", "u-1", "s-1", {"team": "x"}
    span("root of a named trace", "generation", named, prompt_tokens=1, completion_tokens=1)
    pair = trace()
    root = span("root of two", "chain", pair)
    span("child of two", "generation", pair, parent=root.span_id, root=False, prompt_tokens=2, completion_tokens=5)
    span("late child", "generation", trace(), parent=12345, root=False, prompt_tokens=3, completion_tokens=3)
    return records


def test_trace_rows_the_database_copies_from_lone_root_spans_equal_the_aggregated_ones(store: Store) -> None:
    """On SQLite a plain trace whose only span is in the batch gets its row by INSERT ... SELECT from the span row;
    that row must be what the aggregating path (the in-memory exporter's) builds, column for column. PostgreSQL
    aggregates every trace in Python, and its rows must be the same too."""
    records = _trace_batch()
    memory = InMemoryExporter()
    memory.export(records)
    for record in records:  # the second exporter sees the records as the writer would: tags not yet noted
        record.trace.tags_written = TraceState.tags_written
    SQLExporter(store.url).export(records)
    stored = {row["id"]: row for row in store.traces()}
    expected = {row["id"]: row for row in memory.trace_rows}
    assert stored.keys() == expected.keys() and len(stored) == 8
    for trace_id, want in expected.items():
        got = stored[trace_id]
        for column, value in want.items():
            if isinstance(value, float):
                assert got[column] == pytest.approx(value), (want["name"], column)
            else:
                assert got[column] == value, (want["name"], column)
