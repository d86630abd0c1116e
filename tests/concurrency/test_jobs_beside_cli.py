"""Issue 11, cases 6 and 7 with the job queue: CLI computes and refreshes beside real consumer processes running
compute and refresh jobs, on RedisHuey + PostgreSQL (``huey_consumer jobs.huey``) and on the embedded path
(SqliteHuey + SQLite, consumers hosted by ``python -m jobs.embedded``).

Every job succeeds at its first attempt (computes wait for each other, a refresh job finding the refresh lock
taken is ``skipped`` naming the holder), every CLI process exits 0, and the stored rows are one compute's rows.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from jobs.queue import set_immediate
from tests.concurrency.conftest import assert_clean, finish, results_digest, run_at_once, start
from tests.integration.conftest import JOBS_REDIS_URL, flush_job_keys, jobs_stub, prepare_jobs_env  # noqa: F401
from tests.integration.jobs_support import Consumers, wait_for
from tests.stubs.twelvedata_stub import Fault, StubController

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


@dataclass
class Queue:
    consumers: Consumers
    stub: StubController
    config_id: int
    before: dict[str, str]


@pytest.fixture(params=["redis-postgresql", "sqlite-embedded"])
def queue(request, data_dir, monkeypatch, tmp_path, jobs_stub) -> Iterator[Queue]:  # noqa: F811
    """The 14-asset demo universe (2024), the default config computed once, the TwelveData stub, and a launcher
    of consumer processes on the same queue as this process's ``jobs.huey``."""
    import jobs
    from core.services.compute import compute_config
    from core.services.strategies import active_version

    base_url, controller = jobs_stub
    controller.reset()
    redis = request.param.startswith("redis")
    if redis:
        flush_job_keys(JOBS_REDIS_URL)
        database_url = request.getfixturevalue("pg_database")
    else:
        database_url = None
    prepare_jobs_env(monkeypatch, base_url, database_url=database_url, redis_url=JOBS_REDIS_URL if redis else None)
    config_id = active_version().id  # type: ignore[union-attr]
    compute_config(config_id, actor="setup")
    saved = jobs.huey.storage, jobs.huey.immediate
    jobs.reconfigure()
    logs = tmp_path / "consumers"
    logs.mkdir()
    consumers = Consumers(dict(os.environ), logs, mode="huey_consumer" if redis else "embedded")
    try:
        yield Queue(consumers, controller, config_id, results_digest(config_id))
    finally:
        consumers.close()
        controller.reset()
        if redis:
            flush_job_keys(JOBS_REDIS_URL)
        set_immediate(jobs.huey, saved[1], storage=saved[0])


def _final(run_ids: list[int], timeout: float = 90) -> list[Any]:
    from core.services import runs as svc

    def all_final() -> list[Any] | None:
        runs = [svc.get_run(i) for i in run_ids]
        return runs if all(r.is_final for r in runs) else None

    return wait_for(all_final, timeout, 0.1, f"runs {run_ids} to finish")


def test_cli_computes_beside_compute_jobs(queue: Queue):
    from core.services import runs as svc

    queue.consumers.start(workers=2)
    run_ids = [svc.enqueue("compute", {"config_id": queue.config_id}) for _ in range(3)]
    cli = run_at_once([["compute"], ["compute", "--config", str(queue.config_id)]])
    runs = _final(run_ids)
    assert_clean(cli)
    assert [(r.state, r.attempts, r.error) for r in runs] == [("succeeded", 1, None)] * 3, queue.consumers.logs()
    assert results_digest(queue.config_id) == queue.before
    assert "Traceback" not in queue.consumers.logs()


def test_cli_refresh_and_refresh_jobs_take_turns(queue: Queue):
    """A refresh job meeting a CLI refresh is skipped naming it; a CLI refresh meeting a refresh job waits for
    it (saying so) and then runs."""
    from core.infra.locks import REFRESH, held_locks
    from core.services import runs as svc

    queue.consumers.start(workers=2)
    refresh = ["refresh", "--provider", "twelvedata", "--symbols", "SPY"]

    cli_request, job_request = threading.Event(), threading.Event()
    try:
        queue.stub.push(Fault(hold=cli_request))  # the CLI's request stays in flight, holding the lock
        cli = start(refresh)
        wait_for(lambda: REFRESH in held_locks(), 30, what="the CLI refresh to hold the lock")
        skipped = _final([svc.enqueue("refresh", {"provider": "twelvedata", "symbols": "SPY"})])[0]
        assert skipped.state == "skipped", (skipped.state, skipped.error)
        assert (
            skipped.message == f"skipped: another refresh is running (held by cli on {socket.gethostname()}:{cli.pid})"
        )
        cli_request.set()
        assert_clean(finish([cli]))

        queue.stub.push(Fault(hold=job_request))  # now the job's request stays in flight, holding the lock
        job = svc.enqueue("refresh", {"provider": "twelvedata", "symbols": "SPY"})
        wait_for(lambda: REFRESH in held_locks(), 30, what="the refresh job to hold the lock")
        second = start(refresh)
        said = _stderr_until(second, "waiting for another refresh", timeout=60)
        job_request.set()
        waited = finish([second])
        assert_clean(waited)
        assert f"waiting for another refresh (held by run {job} on " in said + waited[0].stderr
        assert waited[0].stdout.startswith("refresh from twelvedata: ")
        done = _final([job])[0]
        assert (done.state, done.attempts) == ("succeeded", 1), done.error
    finally:
        cli_request.set()
        job_request.set()


def _stderr_until(proc: subprocess.Popen, text: str, timeout: float) -> str:
    """Read ``proc``'s stderr line by line until a line holds ``text``; the lines read. Fails (killing the
    process) if it does not come within ``timeout`` seconds."""
    lines: list[str] = []
    found = threading.Event()

    def read() -> None:
        for line in proc.stderr:  # type: ignore[union-attr]
            lines.append(line)
            if text in line:
                found.set()
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    if not found.wait(timeout):
        proc.kill()
        reader.join(5)
        raise AssertionError(f"{text!r} not on stderr within {timeout} s: {''.join(lines)!r}")
    reader.join(5)
    return "".join(lines)


def test_a_write_race_is_transient_for_jobs_but_a_bad_row_is_not(db):
    """Real errors from the database: a duplicate key (what two writers racing get) is retried by a job; a NOT
    NULL violation (a bug, the same on every attempt) fails at once."""
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    from core.db import unit_of_work
    from jobs.tasks import _transient

    def error_of(sql: str) -> IntegrityError:
        with unit_of_work() as session:
            session.execute(
                text(
                    "INSERT INTO assets (symbol, name, asset_class, currency, is_benchmark, is_active, "
                    "source, created_at) VALUES ('RACE', 'r', 'equity', 'USD', false, true, 'test', "
                    "CURRENT_TIMESTAMP)"
                )
            )
            try:
                session.execute(text(sql))
            except IntegrityError as exc:
                return exc
        raise AssertionError(f"no IntegrityError from {sql}")

    duplicate = error_of(
        "INSERT INTO assets (symbol, name, asset_class, currency, is_benchmark, is_active, source, "
        "created_at) VALUES ('RACE', 'r', 'equity', 'USD', false, true, 'test', CURRENT_TIMESTAMP)"
    )
    missing = error_of(
        "INSERT INTO assets (symbol, name, asset_class, currency, is_benchmark, is_active, source, "
        "created_at) VALUES ('OTHER', NULL, 'equity', 'USD', false, true, 'test', CURRENT_TIMESTAMP)"
    )
    assert _transient(duplicate) and not _transient(missing)
