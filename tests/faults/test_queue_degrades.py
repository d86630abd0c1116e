"""The queue degrades cleanly (issue 11, case 15), with real ``python -m core worker`` processes and Redis:

* Redis unreachable (a closed port) when the worker starts: one log line per retry, exponential backoff
  (1, 2, 4, 8 ... 30 s), no traceback;
* Redis going away while the worker runs (a TCP proxy in front of the real Redis is closed, then reopened):
  one line per retry round for the whole process, one "reachable again" line, and queued work runs after;
* a queued run whose Redis message is lost is marked failed ("lost: ...") by the running worker;
* ``jobs enqueue --wait`` with no worker alive says so at once; ``--timeout`` stops waiting; the run stays queued.

Redis db 11 (AUTOINDEX_TEST_FAULTS_REDIS) and SQLite in the test's DATA_DIR; every subprocess is killed in a
``finally``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from sqlalchemy import update

from jobs.queue import set_immediate
from tests.faults.conftest import CLOSED_PORT, FAULTS_REDIS_URL
from tests.integration.conftest import flush_job_keys
from tests.integration.jobs_support import wait_for

ROOT = Path(__file__).resolve().parents[2]
OUTAGE_LINE = re.compile(
    r"the job queue is unreachable \((?P<doing>[^,]+), attempt (?P<n>\d+)\): .*; "
    r"retrying in (?P<wait>\d+) s"
)

pytestmark = pytest.mark.timeout(180)


class TcpProxy:
    """127.0.0.1:<port> -> the real Redis; :meth:`close` drops the listener and every connection (Redis "goes
    away"), :meth:`open` listens on the same port again (Redis "comes back")."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.listener: socket.socket | None = None
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()

    def open(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.conns += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while True:
                ready, _, _ = select.select([a, b], [], [], 1.0)
                for src in ready:
                    data = src.recv(65536)
                    if not data:
                        return
                    (b if src is a else a).sendall(data)
        except OSError:
            return
        finally:
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.close()

    def close(self) -> None:
        if self.listener is not None:
            with contextlib.suppress(OSError):
                self.listener.shutdown(socket.SHUT_RDWR)
            self.listener.close()
            self.listener = None
        with self.lock:
            conns, self.conns = self.conns, []
        for s in conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


def _redis_target(url: str) -> tuple[str, int, str]:
    parsed = urlparse(url)
    return parsed.hostname or "127.0.0.1", parsed.port or 6379, parsed.path or "/0"


@pytest.fixture
def queue_env(data_dir, monkeypatch) -> Iterator[dict]:
    """SQLite in DATA_DIR, RedisHuey on db 11 through a proxy that the test can close; yields helpers."""
    import jobs
    from core.db import migrate
    from tests.conftest import _reset_caches

    host, port, path = _redis_target(FAULTS_REDIS_URL)
    proxy = TcpProxy((host, port))
    proxy.open()
    url = f"redis://127.0.0.1:{proxy.port}{path}"
    flush_job_keys(FAULTS_REDIS_URL)
    monkeypatch.setenv("REDIS_URL", url)
    monkeypatch.setenv("EMBEDDED_WORKER", "false")
    monkeypatch.setenv("LOG_LEVEL", "INFO")
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    _reset_caches()
    migrate(timeout_s=10)
    saved = jobs.huey.storage, jobs.huey.immediate
    jobs.reconfigure()
    procs: list[subprocess.Popen] = []

    def start_worker(log: Path, redis_url: str = url, workers: int = 2) -> subprocess.Popen:
        env = {**os.environ, "REDIS_URL": redis_url}
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "core", "worker", "-w", str(workers)],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        procs.append(proc)
        return proc

    try:
        yield {"proxy": proxy, "url": url, "huey": jobs.huey, "start_worker": start_worker}
    finally:
        for proc in procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        proxy.close()
        flush_job_keys(FAULTS_REDIS_URL)
        set_immediate(jobs.huey, saved[1], storage=saved[0])


def _stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def _alive(proc: subprocess.Popen) -> bool:
    from core.services import workers as worker_service

    return any(w.pid == proc.pid and w.alive for w in worker_service.workers_status())


def test_worker_started_with_redis_unreachable_logs_one_line_per_retry(queue_env, tmp_path):
    log = tmp_path / "worker.log"
    proc = queue_env["start_worker"](log, redis_url=f"redis://127.0.0.1:{CLOSED_PORT}/11")
    # tries at 0, 1, 3 and 7 s after start-up; the fifth is due 8 s after the fourth
    wait_for(lambda: len(OUTAGE_LINE.findall(log.read_text())) >= 4, 30, 0.2, "four retry lines")
    time.sleep(2)
    assert proc.poll() is None, log.read_text()
    _stop(proc)
    text = log.read_text()
    assert "Traceback" not in text, text
    outage = [m for m in map(OUTAGE_LINE.search, text.splitlines()) if m]
    assert [int(m["wait"]) for m in outage] == [1, 2, 4, 8], text
    assert all(m["doing"] == "starting the worker" for m in outage)
    stamps = [
        dt.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
        for line in text.splitlines()
        if OUTAGE_LINE.search(line)
    ]
    gaps = [(b - a).total_seconds() for a, b in zip(stamps, stamps[1:])]
    assert gaps == pytest.approx([1, 2, 4], abs=0.5), gaps  # the process really waited, it did not just say so
    assert f"127.0.0.1:{CLOSED_PORT}" in text
    assert len(text.splitlines()) <= 8, text  # the start line, the migration's two lines, 4 retries


def test_worker_rides_out_a_redis_outage_with_one_line_per_retry_round(queue_env, tmp_path):
    from core.services import runs as svc

    log = tmp_path / "worker.log"
    proc = queue_env["start_worker"](log)
    wait_for(lambda: _alive(proc), 30, 0.2, "the worker's heartbeat")
    before = len(log.read_text().splitlines())
    queue_env["proxy"].close()
    time.sleep(10)  # two worker threads and the scheduler poll all the while
    queue_env["proxy"].open()
    wait_for(lambda: "reachable again" in log.read_text(), 40, 0.2, "the worker to reconnect")
    run_id = svc.enqueue("compute", {})  # no active config: the job fails at once, proving the worker took it
    wait_for(lambda: svc.get_run(run_id).is_final, 30, 0.2, "the queued run to be taken")
    _stop(proc)
    lines = log.read_text().splitlines()[before:]
    back = next(i for i, line in enumerate(lines) if "reachable again" in line)
    lines = lines[: back + 1]  # the outage (what follows is the job's own failure, logged by Huey)
    text = "\n".join(lines)
    assert "Traceback" not in text, text
    outage = [m for m in map(OUTAGE_LINE.search, lines) if m]
    waits = [int(m["wait"]) for m in outage]
    assert 2 <= len(outage) <= 6, text
    assert waits == [min(2**i, 30) for i in range(len(waits))], text
    assert sum("reachable again" in line for line in lines) == 1
    assert svc.get_run(run_id).state == "failed" and "no active strategy config" in svc.get_run(run_id).error
    print(f"\nRedis outage of 10 s: {len(lines)} log lines, {len(outage)} retry lines, waits {waits}")


def test_a_lost_queue_message_is_reconciled_by_the_running_worker(queue_env, tmp_path):
    from core.db import unit_of_work
    from core.models import TaskRun
    from core.services import runs as svc

    huey = queue_env["huey"]
    run_id = svc.enqueue("compute", {})
    assert len(huey.pending()) == 1
    with unit_of_work() as session:  # queued a while ago (beyond the grace period) ...
        session.execute(
            update(TaskRun)
            .where(TaskRun.id == run_id)
            .values(queued_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5))
        )
        session.commit()
    huey.storage.flush_queue()  # ... and its message lost (Redis restarted without persistence)
    started = time.monotonic()
    proc = queue_env["start_worker"](tmp_path / "worker.log")
    wait_for(lambda: svc.get_run(run_id).state == "failed", 60, 0.25, "the lost run to be reconciled")
    took = time.monotonic() - started
    run = svc.get_run(run_id)
    assert run.error.startswith("lost: the queue message was not found")
    _stop(proc)
    assert "Traceback" not in (tmp_path / "worker.log").read_text()
    assert took < 60
    print(f"\nlost message reconciled {took:.1f} s after the worker started")


def _enqueue_cli(*args: str, timeout: float = 60) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "core", "jobs", "enqueue", "compute", "--wait", *args],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return proc, time.monotonic() - started


def test_enqueue_wait_with_no_worker_says_so_and_the_run_stays_queued(queue_env):
    from core.services import runs as svc

    proc, took = _enqueue_cli()
    assert proc.returncode == 1, proc.stderr
    run_id = int(proc.stdout.strip().splitlines()[0])
    assert (
        f"error: no worker is alive: start one with `python -m core worker` (run {run_id} stays queued)"
    ) in proc.stderr
    assert "Traceback" not in proc.stderr
    assert took < 20
    assert svc.get_run(run_id).state == "queued"


def test_enqueue_wait_timeout_stops_waiting_and_the_run_stays_queued(queue_env):
    from core.services import runs as svc
    from core.services import workers as worker_service

    # A worker alive on another host (its heartbeat is fresh) that never takes the job.
    worker_service.heartbeat("elsewhere:1:abc", hostname="elsewhere", pid=1)
    proc, took = _enqueue_cli("--timeout", "3")
    assert proc.returncode == 1, proc.stderr
    run_id = int(proc.stdout.strip().splitlines()[0])
    assert f"error: run {run_id} is still queued after 3 s: stopped waiting (the run stays queued)" in proc.stderr
    assert "no worker is alive" not in proc.stderr
    assert 3 <= took < 20
    assert svc.get_run(run_id).state == "queued"


def test_huey_consumer_itself_backs_off_with_one_line_per_retry(queue_env, tmp_path):
    """``huey_consumer jobs.huey`` (not only ``python -m core worker``) runs the project's consumer through Huey's
    create_consumer hook: with Redis unreachable it logs one line per retry, backing off, and no traceback."""
    log = tmp_path / "huey_consumer.log"
    env = {**os.environ, "REDIS_URL": f"redis://127.0.0.1:{CLOSED_PORT}/11"}
    consumer = Path(sys.executable).with_name("huey_consumer")
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(consumer), "jobs.huey", "-w", "2"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(lambda: len(OUTAGE_LINE.findall(log.read_text())) >= 4, 40, 0.2, "four retry lines")
        assert proc.poll() is None, log.read_text()
    finally:
        _stop(proc)
    text = log.read_text()
    assert "Traceback" not in text, text
    waits = [int(m["wait"]) for m in map(OUTAGE_LINE.search, text.splitlines()) if m]
    assert waits[:4] == [1, 2, 4, 8], text
