"""The house rules kept by tools, run by the README's test command (configuration: pyproject.toml).

* ruff: lint (pyflakes, pycodestyle, bugbear, pyupgrade, import order) and format (the one code layout);
* mypy: the type check configured in pyproject.toml (strict for the schemas and the pure layers);
* import-linter: core never imports the command line, the job runner, the UI or Streamlit (not even inside a
  function); the job runner never imports the UI; the layers cli -> ui | jobs -> core.health -> core.services ->
  core.infra -> core.quant hold; core.quant is pure; no import cycles inside a layer.
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


def test_ruff_format_changes_nothing():
    done = _run("ruff", "format", "--check", ".")
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_layers_hold():
    done = _run("lint-imports")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_mypy_finds_nothing(request):
    """mypy was started when the tests were collected (tests/conftest.py): its result is read here."""
    from tests.conftest import MYPY_RUN

    process, output = request.config.stash[MYPY_RUN]
    returncode = process.wait(timeout=600)
    output.seek(0)
    assert returncode == 0, output.read()
