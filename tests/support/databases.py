"""Real databases for tests: a fresh SQLite file, or a fresh PostgreSQL schema on the CI server."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import create_engine, text

PG_ENV = "LLMOBS_TEST_POSTGRES_URL"
PG_SKIP_REASON = f"{PG_ENV} is not set; set it to a PostgreSQL URL (CI sets it) to run the PostgreSQL tests"


def postgres_base_url() -> str | None:
    """The PostgreSQL URL the tests may use, or None."""
    return os.environ.get(PG_ENV) or None


def create_pg_schema(base_url: str) -> tuple[str, str]:
    """Create an empty schema and return (schema name, URL whose connections use it as search_path)."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    sep = "&" if "?" in base_url else "?"
    return schema, f"{base_url}{sep}options={quote(f'-csearch_path={schema}')}"


def drop_pg_schema(base_url: str, schema: str) -> None:
    """Drop a schema made by create_pg_schema."""
    engine = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


@dataclass
class Store:
    """A database under test plus readers that flush llmobs first and return plain row dicts."""

    kind: str
    url: str
    path: Path | None = None
    _engine: Any = field(default=None, repr=False)

    def engine(self) -> Any:
        """A separate engine for reading (never the writer's)."""
        if self._engine is None:
            from llmobs.store.db import make_engine

            self._engine = make_engine(self.url)
        return self._engine

    def rows(self, table: str, order: str = "start_time", where: str = "") -> list[dict[str, Any]]:
        """Flush llmobs, then read every row of ``table`` as dicts (through the SQLModel tables' types)."""
        import llmobs
        from llmobs.store import db

        assert llmobs.flush(timeout=30), "llmobs.flush timed out"
        engine = self.engine()
        db.ensure_schema(engine)
        from sqlmodel import SQLModel

        tbl = SQLModel.metadata.tables[table]
        stmt = tbl.select()
        if where:
            stmt = stmt.where(text(where))
        if order:
            stmt = stmt.order_by(tbl.c[order])
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(stmt)]

    def spans(self, **kw: Any) -> list[dict[str, Any]]:
        """All span rows, oldest first."""
        return self.rows("spans", **kw)

    def traces(self, **kw: Any) -> list[dict[str, Any]]:
        """All trace rows, oldest first."""
        return self.rows("traces", **kw)

    def span(self, name: str) -> dict[str, Any]:
        """The one span row called ``name``."""
        found = [r for r in self.spans() if r["name"] == name]
        assert len(found) == 1, f"expected one span {name!r}, found {len(found)}: {[r['name'] for r in self.spans()]}"
        return found[0]

    def dispose(self) -> None:
        """Close the reading engine."""
        if self._engine is not None:
            self._engine.dispose()
