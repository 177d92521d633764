"""The `llmobs` command: init writes a usable config, demo records data, stats summarises it."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def llmobs_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMOBS_")}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run([sys.executable, "-m", "llmobs.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=180)


def test_init_writes_a_config_that_llmobs_then_reads(tmp_path: Path) -> None:
    done = llmobs_cli("init", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "config" / "config.yaml").read_text().count("env LLMOBS_") > 20
    again = llmobs_cli("init", cwd=tmp_path)
    assert again.returncode == 1 and "--force" in again.stderr


def test_demo_records_traces_into_the_default_sqlite_file_and_stats_reports_them(tmp_path: Path) -> None:
    done = llmobs_cli("demo", "--requests", "30", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(tmp_path / "data" / "llmobs.db") as conn:
        traces = conn.execute("select count(*) from traces").fetchone()[0]
        kinds = dict(conn.execute("select kind, count(*) from spans group by kind").fetchall())
        priced = conn.execute("select count(*) from spans where kind='generation' and cost_usd > 0").fetchone()[0]
        scored = conn.execute("select count(distinct span_id) from evaluations where source='heuristic'").fetchone()[0]
    assert kinds["chain"] == 30 and kinds["retriever"] == 30 and priced > 20
    assert kinds["agent"] >= 4 and traces == 30 + kinds["agent"]  # the OpenAI-SDK leg: one agent trace per call
    assert scored > 10
    assert f"traces: {traces}" in done.stdout
    stats = llmobs_cli("stats", cwd=tmp_path)
    assert stats.returncode == 0 and f"spans: {sum(kinds.values())}" in stats.stdout and "gpt-4o" in stats.stdout


def test_trace_prints_the_stored_span_tree_and_fails_for_an_unknown_id(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    script = f"""
import llmobs
llmobs.configure(database_url="sqlite:///{db}")
@llmobs.observe(kind="generation")
def generate(q):
    llmobs.update_current_span(model_name="gpt-4o-mini", prompt_tokens=12, completion_tokens=3)
    return "<b>Paris</b>"
@llmobs.observe(kind="chain")
def answer(q):
    print(llmobs.get_current_trace_id())
    return generate(q)
answer("capital?")
"""
    made = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, timeout=60)
    trace_id = made.stdout.strip()
    done = llmobs_cli("--database-url", f"sqlite:///{db}", "trace", trace_id, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines.pop(0).startswith(f"trace {trace_id}: spans=2 errors=0 tokens=15 ")
    assert lines[0].startswith("- answer [chain] ") and lines[0].endswith('output="<b>Paris</b>"')
    assert lines[1].startswith("  - generate [generation] ") and "model=gpt-4o-mini tokens=12/3" in lines[1]
    with sqlite3.connect(db) as conn:
        cost = conn.execute("select cost_usd from spans where name like '%generate'").fetchone()[0]
    assert f"cost_usd={cost:.7f}" in lines[1]
    missing = llmobs_cli("--database-url", f"sqlite:///{db}", "trace", "0" * 32, cwd=tmp_path)
    assert missing.returncode == 1 and "no spans stored" in missing.stderr


def test_a_bad_setting_stops_the_command_with_a_clear_message(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text("sample_rate: lots\n")
    done = llmobs_cli("stats", cwd=tmp_path)
    assert done.returncode != 0
    assert "sample_rate = 'lots'" in done.stderr and "between 0 and 1" in done.stderr


def test_demo_serve_runs_dashboard_and_scheduler_until_ctrl_c(tmp_path: Path) -> None:
    import signal
    import socket
    import time
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMOBS_")}
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.Popen([sys.executable, "-m", "llmobs.cli", "demo", "--requests", "10", "--serve", "--port",
                             str(port)], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        deadline = time.monotonic() + 120
        status = None
        while time.monotonic() < deadline and status != 200:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as page:
                    status = page.status
            except OSError:
                time.sleep(0.5)
        assert status == 200, "the dashboard did not come up"
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out[-2000:]
    assert f"dashboard: http://127.0.0.1:{port}/" in out and "stopped the dashboard and the scheduler" in out
    assert "scheduler: evaluating alert rules every" in out
