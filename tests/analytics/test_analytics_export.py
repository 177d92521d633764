"""analytics.export and `llmobs export`: the rows stored come out as CSV/JSON/JSONL, filtered, streamed."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from llmobs import analytics
from tests.support.databases import Store
from tests.support.seed import evaluation, gen, generate_spans, seed, seed_evaluations

UTC = dt.timezone.utc
T0 = dt.datetime(2024, 5, 1, 12, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]


def rows() -> list[dict]:
    return [
        gen(T0, 120.5, model="gpt-4o", trace_id="a" * 32, id="1" * 16, name="first",
            metadata={"temperature": 0.2, "tags": ["x"]},
            input='{"q": "hello, \\"world\\"\\nline two"}', output='"=1+1"', total_tokens=30, cost_usd=0.001,
            user_id="u1", tags=["prod", "eu"]),
        gen(T0 + dt.timedelta(minutes=1), 80.0, model="claude-3", trace_id="b" * 32, id="2" * 16, name="second",
            status="error",
            error_type="RateLimitError", error_message="=HYPERLINK(\"http://x\")"),
        gen(T0 + dt.timedelta(minutes=2), 5.0, model=None, kind="tool", trace_id="b" * 32, name="lookup"),
        gen(T0 + dt.timedelta(days=2), 60.0, model="gpt-4o", trace_id="c" * 32),
    ]


@pytest.fixture
def seeded(store: Store) -> Store:
    spans = rows()
    seed(store.engine(), spans)
    seed_evaluations(store.engine(), [evaluation(spans[0], "quality", 0.75, model_name="gpt-4o"),
                                      evaluation(spans[1], "quality", 0.25)])
    return store


def test_csv_export_opens_as_a_table_with_iso_times_and_json_text(seeded: Store, tmp_path: Path) -> None:
    out = tmp_path / "spans.csv"
    n = analytics.export(out, "csv", "spans", T0, T0 + dt.timedelta(hours=1), engine=seeded.engine())
    with out.open(newline="", encoding="utf-8") as fh:
        table = list(csv.DictReader(fh))
    assert n == 3 and [r["name"] for r in table] == ["first", "second", "lookup"]
    first, second, tool = table
    assert dt.datetime.fromisoformat(first["start_time"]) == T0 and first["start_time"].endswith("+00:00")
    assert json.loads(first["metadata"]) == {"temperature": 0.2, "tags": ["x"]}
    assert json.loads(first["input"]) == {"q": 'hello, "world"\nline two'}
    assert float(first["duration_ms"]) == 120.5 and first["total_tokens"] == "30" and first["parent_id"] == ""
    assert second["error_message"] == "'=HYPERLINK(\"http://x\")"  # a spreadsheet shows it, does not run it
    assert first["output"] == '"=1+1"' and tool["kind"] == "tool"


def test_json_and_jsonl_hold_the_same_rows_as_the_database(seeded: Store) -> None:
    buffer = io.StringIO()
    n = analytics.export(buffer, "json", "spans", T0, T0 + dt.timedelta(hours=1), model="gpt-4o",
                         engine=seeded.engine())
    [row] = json.loads(buffer.getvalue())
    assert n == 1 and row["model_name"] == "gpt-4o" and row["metadata"] == {"temperature": 0.2, "tags": ["x"]}
    stored = [r for r in seeded.spans() if r["model_name"] == "gpt-4o"][0]
    assert dt.datetime.fromisoformat(row["start_time"]) == stored["start_time"] and row["id"] == stored["id"]
    binary = io.BytesIO()
    assert analytics.export(binary, "jsonl", "spans", engine=seeded.engine()) == 4
    lines = binary.getvalue().decode().splitlines()
    assert [json.loads(line)["trace_id"][0] for line in lines] == ["a", "b", "b", "c"]
    empty = io.StringIO()
    assert analytics.export(empty, "json", "spans", T0 - dt.timedelta(days=9), T0, engine=seeded.engine()) == 0
    assert json.loads(empty.getvalue()) == []


def test_traces_and_evaluations_export_with_filters(seeded: Store) -> None:
    traces = io.StringIO()
    assert analytics.export(traces, "jsonl", "traces", T0, T0 + dt.timedelta(hours=1), engine=seeded.engine()) == 2
    first = json.loads(traces.getvalue().splitlines()[0])
    assert first["id"] == "a" * 32 and first["tags"] == ["prod", "eu"] and first["user_id"] == "u1"
    evals = io.StringIO()
    assert analytics.export(evals, "csv", "evaluations", model="gpt-4o", engine=seeded.engine()) == 1
    [row] = list(csv.DictReader(io.StringIO(evals.getvalue())))
    assert (row["name"], float(row["value"]), row["span_id"]) == ("quality", 0.75, "1" * 16)
    by_span_model = io.StringIO()
    assert analytics.export(by_span_model, "csv", "evaluations", model="claude-3", engine=seeded.engine()) == 1


def test_export_streams_with_flat_memory(store: Store, tmp_path: Path) -> None:
    """8,000 rows of ~4 KB: the file is over 30 MB while the export's Python allocations stay a few MB."""
    seed(store.engine(), generate_spans(8_000, T0, days=1, payload_chars=2000))
    out = tmp_path / "big.jsonl"
    tracemalloc.start()
    try:
        n = analytics.export(out, "jsonl", "spans", engine=store.engine(), batch_size=500)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n == 8_000 and out.stat().st_size > 30_000_000
    assert peak < 8_000_000, f"peak {peak / 1e6:.1f} MB"


def llmobs_cli(*args: str, cwd: Path, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMOBS_")}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run([sys.executable, "-m", "llmobs.cli", "--database-url", database_url, *args], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=120)


def test_cli_export_since_24h_writes_a_csv(sqlite_store: Store, tmp_path: Path) -> None:
    now = dt.datetime.now(UTC)
    seed(sqlite_store.engine(), [gen(now - dt.timedelta(hours=1), 10.0, model="gpt-4o"),
                                 gen(now - dt.timedelta(hours=30), 10.0, model="gpt-4o"),
                                 gen(now - dt.timedelta(hours=2), 10.0, model="claude-3")])
    done = llmobs_cli("export", "--format", "csv", "--since", "24h", "--out", "spans.csv", cwd=tmp_path,
                      database_url=sqlite_store.url)
    assert done.returncode == 0, done.stderr
    with (tmp_path / "spans.csv").open(newline="") as fh:
        assert sorted(r["model_name"] for r in csv.DictReader(fh)) == ["claude-3", "gpt-4o"]
    assert "exported 2 spans rows" in done.stderr
    ranged = llmobs_cli("export", "--start", (now - dt.timedelta(days=2)).isoformat(), "--model", "gpt-4o",
                        "--out", "g.jsonl", cwd=tmp_path, database_url=sqlite_store.url)
    assert ranged.returncode == 0, ranged.stderr
    assert len((tmp_path / "g.jsonl").read_text().splitlines()) == 2
    bad = llmobs_cli("export", "--since", "yesterday", cwd=tmp_path, database_url=sqlite_store.url)
    assert bad.returncode == 2 and "since='yesterday' is not a duration" in bad.stderr
