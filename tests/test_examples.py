"""Every example runs offline as it is, exits 0, and records into its database what it says it recorded."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(p for p in (REPO / "examples").glob("*.py") if not p.name.startswith("_"))  # _x.py: shared helpers


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs_offline_and_records_spans(example: Path, tmp_path: Path) -> None:
    db = tmp_path / "example.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLMOBS_", "OPENAI_"))}
    env.update(PYTHONPATH=str(REPO), LLMOBS_DATABASE_URL=f"sqlite:///{db}")
    done = subprocess.run([sys.executable, str(example)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip(), "an example prints what it recorded"
    with sqlite3.connect(db) as conn:
        spans = conn.execute("select count(*) from spans").fetchone()[0]
    assert spans > 0
