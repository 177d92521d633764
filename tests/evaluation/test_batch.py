"""Batch evaluation from files and DataFrames (with resume), online evaluation of stored spans, and `llmobs evaluate`."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import llmobs
from llmobs.analytics import Filters
from llmobs.evaluation import LLMEvaluator, evaluate_spans
from llmobs.evaluation.batch import _ProgressLine, span_texts
from tests.support.databases import Store
from tests.support.seed import gen, seed

REPO = Path(__file__).resolve().parents[2]
CORE = ["quality", "relevance", "coherence", "accuracy", "toxicity", "bias", "hallucination"]
ROWS = [
    {"id": "q1", "model": "gpt-4", "prompt": "What is the capital of France?", "response": "Paris is the capital.",
     "task_type": "qa", "expected_response": "Paris", "context": ""},
    {"id": "q2", "model": "gpt-4", "prompt": "How many legs does a spider have?", "response": "Eight legs.",
     "task_type": "qa", "expected_response": "", "context": ""},
    {"id": "s1", "model": "claude", "prompt": "Summarise the text.", "response": "The bridge reopened on Monday.",
     "task_type": "summarization", "expected_response": "",
     "context": "The bridge reopened on Monday after an 18-month renovation."},
]


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def evaluations(store: Store, where: str = "") -> list[dict[str, Any]]:
    return store.rows("evaluations", order="name", where=where)


# --- evaluate_batch -------------------------------------------------------------------------------------------
def test_csv_batch_gives_one_row_per_input_with_metric_columns_and_stores_every_score(
        store: Store, tmp_path: Path) -> None:
    frame = LLMEvaluator().evaluate_batch(write_csv(tmp_path / "data.csv", ROWS), progress=False)
    assert isinstance(frame, pd.DataFrame) and list(frame["id"]) == ["q1", "q2", "s1"]
    assert list(frame.columns[:6]) == ["id", "row_key", "model", "task_type", "span_id", "status"]
    assert set(CORE + ["directness", "completeness", "conciseness", "coverage", "errors"]) <= set(frame.columns)
    assert list(frame["status"]) == ["evaluated"] * 3 and list(frame["errors"]) == ["", "", ""]
    assert frame.loc[0, "accuracy"] > 0 and pd.isna(frame.loc[1, "accuracy"])  # empty CSV cell = no reference
    assert pd.isna(frame.loc[0, "coverage"]) and frame.loc[2, "coverage"] >= 0
    rows = evaluations(store)
    assert len(rows) == 9 + 9 + 9
    keys = {r["metadata"]["row_key"] for r in rows}
    assert keys == {"id:q1", "id:q2", "id:s1"}
    q1_quality = [r for r in rows if r["name"] == "quality" and r["metadata"]["row_key"] == "id:q1"]
    assert q1_quality[0]["value"] == pytest.approx(frame.loc[0, "quality"])
    assert {(r["model_name"], r["task_type"]) for r in rows} == {("gpt-4", "qa"), ("claude", "summarization")}


def test_jsonl_batch_resume_skips_rows_already_scored_and_fills_them_from_the_database(
        sqlite_store: Store, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "data.jsonl", [{k: v for k, v in r.items() if k != "id"} for r in ROWS[:2]])
    first = LLMEvaluator().evaluate_batch(path, progress=False)
    assert len(evaluations(sqlite_store)) == 18
    write_jsonl(path, [{k: v for k, v in r.items() if k != "id"} for r in ROWS])
    second = LLMEvaluator().evaluate_batch(path, resume=True, progress=False)
    assert list(second["status"]) == ["skipped", "skipped", "evaluated"]
    assert list(second["row_key"][:2]) == list(first["row_key"]) and second["row_key"][0].startswith("sha256:")
    assert second.loc[0, "quality"] == pytest.approx(first.loc[0, "quality"])
    assert len(evaluations(sqlite_store)) == 27  # nothing scored twice
    third = LLMEvaluator().evaluate_batch(path, resume=True, progress=False)
    assert list(third["status"]) == ["skipped"] * 3 and len(evaluations(sqlite_store)) == 27


def test_resume_runs_only_a_custom_evaluator_added_since_the_last_run(sqlite_store: Store, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "data.csv", ROWS[:2])
    LLMEvaluator().evaluate_batch(path, progress=False)
    ev = LLMEvaluator()
    ev.add_custom_evaluator("qa", lambda response, prompt, metrics: {"short": 1.0 if len(response) < 40 else 0.0})
    frame = ev.evaluate_batch(path, resume=True, progress=False)
    assert list(frame["status"]) == ["evaluated", "evaluated"] and list(frame["short"]) == [1.0, 1.0]
    rows = evaluations(sqlite_store)
    assert len([r for r in rows if r["name"] == "quality"]) == 2 and len([r for r in rows if r["name"] == "short"]) == 2


def test_dataframe_rows_with_bad_input_report_their_error_and_the_rest_are_scored(sqlite_store: Store) -> None:
    frame = pd.DataFrame([
        {"prompt": "Hi?", "response": "Hello!", "task_type": "general"},
        {"prompt": "Hi?", "response": None, "task_type": "general"},
        {"prompt": "Hi?", "response": "Hello!", "task_type": "poetry"},
    ])
    out = LLMEvaluator().evaluate_batch(frame, progress=False, workers=2)
    assert list(out["status"]) == ["evaluated", "error", "error"]
    assert out.loc[1, "errors"] == "input: response must be a string, got None"
    assert "task_type='poetry' is not allowed" in out.loc[2, "errors"]
    assert len(evaluations(sqlite_store)) == 7


def test_progress_is_reported_to_a_callback_and_drawn_on_a_terminal(sqlite_store: Store) -> None:
    seen: list[tuple[int, int]] = []
    LLMEvaluator().evaluate_batch([{"prompt": "a?", "response": "b"}, {"prompt": "c?", "response": "d"}],
                                  progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 2), (2, 2)]

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    line = _ProgressLine(2, None, stream=screen)
    line.advance()
    line.advance()
    line.close()
    assert "\revaluating 2/2 (100%)" in screen.getvalue() and screen.getvalue().endswith("\n")
    assert len(evaluations(sqlite_store)) == 14


def test_unreadable_batch_input_is_a_value_error_naming_the_problem(sqlite_store: Store, tmp_path: Path) -> None:
    ev = LLMEvaluator()
    (tmp_path / "bad.jsonl").write_text('{"prompt": "a", "response": "b"}\nnot json\n')
    with pytest.raises(ValueError, match="line 2 is not JSON"):
        ev.evaluate_batch(tmp_path / "bad.jsonl")
    with pytest.raises(ValueError, match="unsupported file type '.txt'"):
        (tmp_path / "x.txt").write_text("hi")
        ev.evaluate_batch(tmp_path / "x.txt")
    with pytest.raises(ValueError, match="rows need a 'response' column"):
        ev.evaluate_batch([{"prompt": "a", "text": "b"}])
    assert evaluations(sqlite_store) == []


# --- evaluate_spans --------------------------------------------------------------------------------------------
def _record_generations() -> list[str]:
    """Three generation spans (an @observe function twice, one chat-shaped span) and one tool span."""
    @llmobs.observe(kind="generation")
    def answer(question: str, context: str | None = None) -> str:
        return {"capital": "The capital of France is Paris.", "legs": "Spiders have eight legs."}[question.split()[0]]

    @llmobs.observe(kind="tool")
    def lookup(q: str) -> str:
        return "result"

    with llmobs.span("request") as root:
        answer("capital of France?", context="Paris is the capital and largest city of France.")
        answer("legs of a spider?")
        lookup("x")
        with llmobs.span("chat", kind="generation", input=[{"role": "system", "content": "Be brief."},
                                                           {"role": "user", "content": "Name a primary colour."}],
                         model_name="gpt-4o") as chat:
            chat.update(output={"role": "assistant", "content": "Red is a primary colour."})
    return [root.trace_id]


def test_evaluate_spans_scores_each_generation_once_with_scores_linked_to_span_and_trace(store: Store) -> None:
    [trace_id] = _record_generations()
    llmobs.flush()
    report = evaluate_spans()
    assert (report.considered, report.scored, report.failed) == (3, 3, 0)
    generations = {s["id"]: s for s in store.spans() if s["kind"] == "generation"}
    rows = evaluations(store)
    assert {r["span_id"] for r in rows} == set(generations) and {r["trace_id"] for r in rows} == {trace_id}
    assert len(rows) == 3 * 7 and {r["evaluator_version"] for r in rows} == {"heuristic-1"}
    chat_id = next(i for i, s in generations.items() if s["name"] == "chat")
    chat_quality = [r for r in rows if r["span_id"] == chat_id and r["name"] == "quality"][0]
    assert chat_quality["model_name"] == "gpt-4o" and chat_quality["value"] > 0.3
    capital_id = next(i for i, s in generations.items() if "capital" in (s["input"] or ""))
    grounded = [r for r in rows if r["span_id"] == capital_id and r["name"] == "hallucination"][0]
    assert "context" in grounded["comment"]
    again = evaluate_spans()
    assert (again.considered, again.scored) == (0, 0) and len(evaluations(store)) == 21


def test_overlapping_evaluate_spans_runs_store_each_metric_of_a_span_once(store: Store) -> None:
    """Runs that select the same unscored spans before either's rows land (the scheduler's tick, a CLI run, the
    dashboard's button) store one row per span, metric and evaluator version."""
    from llmobs.evaluation.batch import _score_span

    rows = _seeded_generations(store)
    spans = [s for s in store.spans() if s["output"]]
    evaluator = LLMEvaluator(store=False)
    for _ in range(2):  # both runs scored every span before either's rows were written
        assert all(_score_span(evaluator, span, "general") == 7 for span in spans)
    llmobs.flush()
    stored = evaluations(store)
    assert len(stored) == 7 * len(spans) == 7 * sum(1 for r in rows if r["output"])
    assert len({(r["span_id"], r["name"]) for r in stored}) == len(stored)
    with ThreadPoolExecutor(2) as pool:  # two whole runs at once: together they still add nothing twice
        reports = list(pool.map(lambda _: evaluate_spans(), range(2)))
    assert sum(r.scored for r in reports) == 0 and len(evaluations(store)) == len(stored)
    human = [llmobs.score("quality", 0.9, span_id=spans[0]["id"]) for _ in range(2)]
    llmobs.flush()
    assert len(set(human)) == 2 and len(evaluations(store)) == len(stored) + 2  # people may score a span twice


def test_evaluate_spans_honours_sample_rate_limit_and_time_window(sqlite_store: Store) -> None:
    _record_generations()
    llmobs.flush()
    future = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    assert evaluate_spans(start=future).considered == 0
    nothing = evaluate_spans(sample_rate=0.0)
    assert (nothing.considered, nothing.sampled_out, nothing.scored) == (3, 3, 0)
    one = evaluate_spans(limit=1)
    assert one.scored == 1 and len({r["span_id"] for r in evaluations(sqlite_store)}) == 1
    rest = evaluate_spans(end=future)
    assert rest.scored == 2 and len({r["span_id"] for r in evaluations(sqlite_store)}) == 3


def _seeded_generations(store: Store) -> list[dict[str, Any]]:
    """Five finished generations in the last hour (users alice/bob, models gpt-4o/gpt-4o-mini), one without output."""
    now = dt.datetime.now(dt.timezone.utc)
    rows = [gen(now - dt.timedelta(minutes=50 - i), 100.0, model="gpt-4o-mini" if i == 3 else "gpt-4o",
                user_id="bob" if i == 1 else "alice", input=json.dumps(f"Question {i}?"),
                output=json.dumps(f"Answer number {i}.")) for i in range(5)]
    rows.append(gen(now - dt.timedelta(minutes=5), 100.0, model="gpt-4o", user_id="alice"))
    seed(store.engine(), rows)
    return rows


def test_evaluate_spans_scores_the_filtered_range_with_progress_and_never_twice(store: Store) -> None:
    rows = _seeded_generations(store)
    hour = Filters(start=dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1), model="gpt-4o", user_id="alice")
    seen: list[tuple[int, int]] = []
    report = evaluate_spans(filters=hour, progress=lambda done, total: seen.append((done, total)))
    chosen = {r["id"] for r in rows if r["model_name"] == "gpt-4o" and r["user_id"] == "alice" and r["output"]}
    stored = evaluations(store)
    assert {r["span_id"] for r in stored} == chosen and len(chosen) == 3
    assert (report.scored, report.already_scored, report.failed, report.rows) == (3, 0, 0, len(stored))
    assert all(n == len(stored) // 3 for n in (sum(r["span_id"] == i for r in stored) for i in chosen))
    assert seen == [(1, 3), (2, 3), (3, 3)]
    again = evaluate_spans(filters=hour.replace(model=None), progress=lambda done, total: seen.append((done, total)))
    alice = {r["id"] for r in rows if r["user_id"] == "alice" and r["output"]}
    assert (again.scored, again.already_scored) == (len(alice - chosen), len(chosen)) == (1, 3)
    assert len(evaluations(store)) == len(stored) + again.rows


def test_evaluate_spans_by_span_id_scores_that_span_once(store: Store) -> None:
    rows = _seeded_generations(store)
    target = rows[1]
    first = evaluate_spans(span_ids=[target["id"].upper()])
    assert first.scored == 1 and {r["span_id"] for r in evaluations(store)} == {target["id"]}
    assert {r["trace_id"] for r in evaluations(store)} == {target["trace_id"]}
    second = evaluate_spans(span_ids=[target["id"]])
    assert (second.scored, second.already_scored, second.rows) == (0, 1, 0)
    assert len(evaluations(store)) == first.rows


def test_cli_evaluate_spans_scores_stored_generations_of_the_filters_once(tmp_path: Path) -> None:
    db = tmp_path / "data" / "llmobs.db"
    db.parent.mkdir()
    from llmobs.store.db import make_engine

    engine = make_engine(f"sqlite:///{db}")
    rows = _seeded_generations(Store("sqlite", f"sqlite:///{db}", db, engine))
    engine.dispose()
    done = run_cli("evaluate", "--spans", "--since", "2h", "--user-id", "alice", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    alice = [r for r in rows if r["user_id"] == "alice" and r["output"]]
    with sqlite3.connect(db) as conn:
        scored = {span for (span,) in conn.execute("select distinct span_id from evaluations")}
        count = conn.execute("select count(*) from evaluations").fetchone()[0]
    assert scored == {r["id"] for r in alice}
    assert done.stdout.startswith(f"{len(alice)} spans scored with heuristic-1 ({count} evaluation rows stored), "
                                  "0 already scored (skipped), 0 failed")
    again = run_cli("evaluate", "--spans", "--since", "2h", cwd=tmp_path)
    everyone = [r for r in rows if r["output"]]
    assert again.stdout.startswith(f"{len(everyone) - len(alice)} spans scored with heuristic-1")
    assert f"{len(alice)} already scored" in again.stdout
    assert run_cli("evaluate", cwd=tmp_path).returncode == 2


def test_span_texts_reads_prompts_and_responses_of_common_shapes() -> None:
    openai_like = {"choices": [{"message": {"role": "assistant", "content": "Hi there"}}]}
    assert span_texts({"messages": [{"role": "user", "content": [{"type": "text", "text": "Hello?"}]}]},
                      openai_like) == ("Hello?", "Hi there", None)
    assert span_texts({"question": "Why?", "documents": ["a", "b"]}, {"answer": "Because."}) == ("Why?", "Because.",
                                                                                                "a\n\nb")
    assert span_texts({"x": 1, "y": [2]}, 42) == ('{"x": 1, "y": [2]}', "42", None)


# --- CLI -------------------------------------------------------------------------------------------------------
def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLMOBS_", "OPENAI_"))}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run([sys.executable, "-m", "llmobs.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def test_cli_evaluate_stores_scores_writes_results_and_prints_a_summary(tmp_path: Path) -> None:
    write_csv(tmp_path / "data.csv", [{k: v for k, v in r.items() if k != "task_type"} for r in ROWS])
    done = run_cli("evaluate", "data.csv", "--task-type", "qa", "--backend", "heuristic", "--out", "results.csv",
                   cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "3 rows (backend heuristic, heuristic-1): 3 evaluated, 0 skipped" in done.stdout
    assert "quality" in done.stdout and "p10" in done.stdout and "wrote results.csv" in done.stdout
    results = pd.read_csv(tmp_path / "results.csv")
    assert list(results["id"]) == ["q1", "q2", "s1"] and set(results["task_type"]) == {"qa"}
    with sqlite3.connect(tmp_path / "data" / "llmobs.db") as conn:
        count, sources = conn.execute("select count(*), group_concat(distinct source) from evaluations").fetchone()
    assert count == 3 * 9 and sources == "heuristic"
    again = run_cli("evaluate", "data.csv", "--task-type", "qa", "--resume", cwd=tmp_path)
    assert again.returncode == 0 and "0 evaluated, 3 skipped" in again.stdout
    missing = run_cli("evaluate", "nope.csv", cwd=tmp_path)
    assert missing.returncode == 1 and "nope.csv is not a file" in missing.stderr
