"""Run independent read queries at the same time, each on its own connection.

SQLite and PostgreSQL drivers release the GIL while the database works, so an overview's four queries take about
as long as the slowest one on a multi-core machine. In-memory SQLite (one database per connection) runs them in
turn on one connection.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import SingletonThreadPool, StaticPool

MAX_WORKERS = max(1, min(4, os.cpu_count() or 1))
_executor: ThreadPoolExecutor | None = None
_lock = threading.Lock()


def run_all(engine: Engine, tasks: dict[str, Callable[[Connection], Any]]) -> dict[str, Any]:
    """Run each task with a connection of ``engine``; returns {name: result}. The first failure is raised."""
    if len(tasks) <= 1 or MAX_WORKERS == 1 or not _shares_database(engine):
        with engine.connect() as conn:
            return {name: task(conn) for name, task in tasks.items()}
    futures = {name: _pool().submit(_run, engine, task) for name, task in tasks.items()}
    return {name: future.result() for name, future in futures.items()}


def _run(engine: Engine, task: Callable[[Connection], Any]) -> Any:
    with engine.connect() as conn:
        return task(conn)


def _shares_database(engine: Engine) -> bool:
    """False when each connection would see its own database (in-memory SQLite) or there is one connection."""
    if isinstance(engine.pool, (SingletonThreadPool, StaticPool)):
        return False
    database = engine.url.database or ""
    return not (engine.dialect.name == "sqlite" and (database in ("", ":memory:") or "mode=memory" in database))


def _pool() -> ThreadPoolExecutor:
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(MAX_WORKERS, thread_name_prefix="llmobs-analytics")
        return _executor
