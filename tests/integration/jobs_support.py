"""Shared machinery for the job-queue integration suites: consumer subprocesses, polling, checksums.

Every wait is bounded; every subprocess is killed in ``finally`` (see :class:`Consumers`).
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select, text

ROOT = Path(__file__).resolve().parents[2]
HUEY_CONSUMER = str(Path(sys.executable).with_name("huey_consumer"))


def wait_for(predicate: Callable[[], Any], timeout: float, interval: float = 0.05, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def prices_checksum() -> str:
    """A digest of every stored price (asset, date, close) in a stable order."""
    from core.db import unit_of_work

    digest = hashlib.sha256()
    with unit_of_work() as session:
        rows = session.execute(
            text(
                "SELECT a.symbol, p.date, p.close FROM prices p JOIN assets a ON a.id = p.asset_id "
                "ORDER BY a.symbol, p.date"
            )
        ).all()
    for symbol, day, close in rows:
        digest.update(f"{symbol}|{day}|{close!r};".encode())
    return f"{len(rows)}:{digest.hexdigest()}"


def audit_count(action: str) -> int:
    from core.db import unit_of_work
    from core.models import AuditEvent

    with unit_of_work() as session:
        return len(session.scalars(select(AuditEvent.id).where(AuditEvent.action == action)).all())


class Consumers:
    """Start consumer subprocesses with a given environment; kill them all in :meth:`close`."""

    def __init__(self, env: dict[str, str], log_dir: Path, mode: str) -> None:
        self.env = env
        self.log_dir = log_dir
        self.mode = mode  # "huey_consumer" or "embedded"
        self.procs: list[subprocess.Popen] = []

    def start(self, workers: int = 2, *, wait: bool = True, timeout: float = 20.0) -> subprocess.Popen:
        n = len(self.procs)
        log = open(self.log_dir / f"consumer-{n}.log", "wb")
        if self.mode == "embedded":
            cmd = [sys.executable, "-m", "jobs.embedded"]
        else:
            cmd = [HUEY_CONSUMER, "jobs.huey", "-w", str(workers), "-k", "thread", "-d", "0.05", "-m", "0.5"]
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        self.procs.append(proc)
        if wait:
            self.wait_ready(proc, timeout)
        return proc

    def wait_ready(self, proc: subprocess.Popen, timeout: float = 20.0) -> None:
        """Ready = its heartbeat is in the database (it has also reconciled by then)."""
        from core.services import workers as worker_service

        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"consumer exited with {proc.returncode}:\n{self.logs()}")
            return any(w.pid == proc.pid and w.alive for w in worker_service.workers_status())

        wait_for(ready, timeout, 0.1, f"consumer pid {proc.pid} to beat")

    def kill9(self, proc: subprocess.Popen) -> None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}"
            for p in sorted(self.log_dir.glob("consumer-*.log"))
        )

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(timeout=5)
                except (subprocess.TimeoutExpired, ProcessLookupError):
                    try:
                        os.killpg(proc.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    proc.wait(timeout=5)


def run_history(run_id: int, timeout: float, interval: float = 0.02) -> list[tuple[str, float]]:
    """(state, progress) as observed every ``interval`` seconds until the run is final."""
    from core.services import runs as svc

    seen: list[tuple[str, float]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = svc.get_run(run_id)
        point = (run.state, round(run.progress, 4))
        if not seen or seen[-1] != point:
            seen.append(point)
        if run.is_final:
            return seen
        time.sleep(interval)
    raise AssertionError(f"run {run_id} not final after {timeout} s: {seen}")
