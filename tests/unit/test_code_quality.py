"""The house rules kept by tools, run by the README's test command (configuration: pyproject.toml).

* ruff: lint (pyflakes, pycodestyle, bugbear, pyupgrade, import order);
* mypy: the type check configured in pyproject.toml (strict for the schemas and the pure layers);
* import-linter: core never imports the job runner, the UI or Streamlit (not even inside a function); the job
  runner never imports the UI; the UI and the job runner both sit on core; the engine and risk are pure.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / args[0]), *args[1:]], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_ruff_finds_nothing():
    done = _run("ruff", "check", ".")
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_layers_hold():
    done = _run("lint-imports")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_mypy_finds_nothing():
    done = _run("mypy")
    assert done.returncode == 0, done.stdout + done.stderr
