"""Two test runs against one Redis never overlap: the second waits for the first (tests/conftest.py)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import hold_test_run_lock, run_lock_path

ROOT = Path(__file__).resolve().parents[2]

HOLDER = """
import sys, time
sys.path.insert(0, {root!r})
from pathlib import Path
from tests.conftest import hold_test_run_lock
handle = hold_test_run_lock(Path({path!r}), 5.0, print)
print("held", flush=True)
time.sleep({hold_s})
"""


def _holder(path, hold_s: float) -> subprocess.Popen:  # type: ignore[no-untyped-def]
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER.format(root=str(ROOT), path=str(path), hold_s=hold_s)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "held"
    return process


def test_a_second_run_waits_and_is_told_who_holds_the_lock(tmp_path) -> None:
    path = tmp_path / "run.lock"
    holder = _holder(path, hold_s=30)
    told: list[str] = []
    try:
        started = time.monotonic()
        assert hold_test_run_lock(path, 0.6, told.append) is None  # gave up after waiting
        assert time.monotonic() - started >= 0.5
        assert len(told) == 1 and f"pid {holder.pid}" in told[0] and "waiting" in told[0]
    finally:
        holder.kill()
        holder.wait()
    handle = hold_test_run_lock(path, 5.0, told.append)  # the holder ended: the lock is free again
    assert handle is not None
    handle.close()


def test_the_lock_is_taken_as_soon_as_the_other_run_ends(tmp_path) -> None:
    path = tmp_path / "run.lock"
    holder = _holder(path, hold_s=1.0)
    started = time.monotonic()
    handle = hold_test_run_lock(path, 20.0, lambda message: None)
    waited = time.monotonic() - started
    holder.wait()
    assert handle is not None and 0.3 < waited < 10.0
    handle.close()


def test_one_lock_per_redis_server() -> None:
    assert run_lock_path("redis://127.0.0.1:6379") != run_lock_path("redis://127.0.0.1:6390")
    assert run_lock_path("redis://127.0.0.1:6379") == run_lock_path("redis://127.0.0.1:6379")
