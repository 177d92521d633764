"""The public entry point is pinned: what `import llmobs` offers is a deliberate decision."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import llmobs

EXPECTED = {
    "ConfigError", "ContextThreadPoolExecutor", "configure", "end_span", "flush", "get_current_span_id",
    "get_current_trace_id", "get_settings", "observe", "score", "shutdown", "span", "start_span", "stats",
    "update_current_span", "update_current_trace", "wrap_context",
}


def test_public_api_is_exactly_the_pinned_names() -> None:
    assert set(llmobs.__all__) == EXPECTED
    for name in llmobs.__all__:
        assert getattr(llmobs, name) is not None


def test_import_llmobs_needs_no_optional_framework() -> None:
    code = ("import sys, llmobs\n"
            "heavy = [m for m in ('openai', 'langchain_core', 'llama_index', 'gradio', 'apscheduler', 'pandas') "
            "if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_folders_are_installed_inside_the_llmobs_namespace_only(tmp_path: Path) -> None:
    code = ("import importlib.util as u\n"
            "for name in ('ui', 'scheduler', 'integrations'):\n"
            "    assert u.find_spec(name) is None, name\n"
            "    spec = u.find_spec('llmobs.' + name)\n"
            "    assert spec is not None and spec.origin.endswith(name + '/__init__.py'), spec\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, cwd=tmp_path,
                   env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})


def test_every_package_folder_is_listed_in_pyproject_so_wheels_carry_it() -> None:
    import tomllib

    root = Path(__file__).resolve().parent.parent
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    mapping = {"llmobs": "llmobs", "integrations": "llmobs.integrations", "scheduler": "llmobs.scheduler",
               "ui": "llmobs.ui"}
    found = set()
    for folder, package in mapping.items():
        for init in (root / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(root / folder).parts
            found.add(".".join((package, *rel)))
    assert found - listed == set(), f"add to pyproject packages: {sorted(found - listed)}"
