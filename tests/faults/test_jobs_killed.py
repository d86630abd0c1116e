"""A worker killed with SIGKILL, or its database connection cut, in the middle of a refresh, compute or report
job: the database is exactly as before the job, the run says why it stopped, and a retry succeeds.

Scaled-out path: PostgreSQL, RedisHuey (db 11), ``huey_consumer jobs.huey``. Each job is parked at its last
write (the audit event, see :class:`tests.faults.conftest.TableLock`), i.e. after it has written all its rows
inside its transaction, and the fault strikes there.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import text

from tests.faults.conftest import FaultEnv, TableLock, data_checksum
from tests.integration.jobs_support import run_history, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]


def _svc():
    from core.services import runs

    return runs


def _queue_refresh(env: FaultEnv) -> tuple[int, Callable[[], object]]:
    run_id = _svc().enqueue("refresh", {"provider": "twelvedata", "full": True}, user="anna")
    return run_id, lambda: None


def _queue_compute(env: FaultEnv) -> tuple[int, Callable[[], object]]:
    from core.services.strategies import active_version, save_version

    params = dict(active_version().params)
    params.update({"equal": 1.0, "momentum": 0.0, "market_cap": 0.0, "risk_parity": 0.0, "rebalance": "monthly"})
    version = save_version("Fault test", params, actor="anna")  # never computed: it has no rows yet
    run_id = _svc().enqueue("compute", {"config_id": version.id}, user="anna")

    def rows() -> int:
        from core.db import unit_of_work

        with unit_of_work() as session:
            return int(
                session.execute(
                    text("SELECT count(*) FROM index_values WHERE config_id = :c"), {"c": version.id}
                ).scalar()
            )

    return run_id, rows


def _queue_report(env: FaultEnv) -> tuple[int, Callable[[], object]]:
    from core.services import reports

    report_id = reports.request_report("performance", "max", "html", owner="anna")

    def state() -> tuple:
        """(has a file, size); the status is checked on its own (the job marks it running when it starts)."""
        from core.db import unit_of_work

        with unit_of_work() as session:
            return tuple(
                session.execute(
                    text("SELECT content IS NOT NULL OR path IS NOT NULL, size_bytes FROM reports WHERE id = :r"),
                    {"r": report_id},
                ).one()
            )

    state.report_id = report_id  # type: ignore[attr-defined]

    return reports.get_report(report_id, None).task_run_id, state


JOBS = {"refresh": _queue_refresh, "compute": _queue_compute, "report": _queue_report}


@pytest.mark.parametrize("kind", list(JOBS))
def test_sigkill_mid_job_leaves_the_database_as_before_and_the_retry_succeeds(
    fault_env: FaultEnv, audit_lock: TableLock, kind: str
):
    svc = _svc()
    run_id, job_rows = JOBS[kind](fault_env)
    before, rows_before = data_checksum(), job_rows()
    audit_lock.acquire()
    victim = fault_env.consumers.start(workers=1)
    wait_for(lambda: svc.get_run(run_id).state == "running", 30, what=f"{kind} to start")
    audit_lock.wait_for_writer()  # the job wrote its rows and waits to write its audit event
    assert svc.get_run(run_id).progress > 0.5
    fault_env.consumers.kill9(victim)
    audit_lock.release()
    # the orphaned backend gets the lock but never a COMMIT from its dead client: it must roll back
    wait_for(lambda: not audit_lock.waiting_pids() and data_checksum() == before, 15, 0.2, "the orphan to roll back")
    assert data_checksum() == before and job_rows() == rows_before
    assert svc.get_run(run_id).state == "running"  # nobody knows yet

    fault_env.consumers.start(workers=1)  # a starting worker reconciles
    run = wait_for(lambda: (r := svc.get_run(run_id)).state == "failed" and r, 30, what="run marked interrupted")
    assert run.error.startswith("interrupted") and run.interrupted, run.error
    assert data_checksum() == before and job_rows() == rows_before
    if kind == "report":  # no report may claim to be running once its run is known to be dead
        from core.services import reports

        report = reports.get_report(job_rows.report_id, None)  # type: ignore[attr-defined]
        assert report.status == "failed" and (report.error or "").startswith("interrupted"), report

    retry_id = svc.retry(run_id, "anna")
    history = run_history(retry_id, timeout=60)
    assert history[-1][0] == "succeeded", (history, svc.get_run(retry_id).error)
    assert data_checksum() != before
    if kind == "compute":
        assert job_rows() > 0
    if kind == "report":
        from core.services import reports

        assert job_rows()[0] is True
        assert reports.get_report(job_rows.report_id, None).status == "done"  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", ["refresh", "compute"])
def test_database_connection_killed_mid_job_fails_the_run_with_the_reason_and_writes_nothing(
    fault_env: FaultEnv, audit_lock: TableLock, kind: str
):
    """pg_terminate_backend on the job's connection at every attempt: 3 attempts (transient), then failed."""
    from jobs.tasks import ATTEMPTS

    svc = _svc()
    run_id, job_rows = JOBS[kind](fault_env)
    before, rows_before = data_checksum(), job_rows()
    audit_lock.acquire()
    fault_env.consumers.start(workers=1)
    killed: list[int] = []

    def strike() -> bool:
        for pid in audit_lock.waiting_pids():
            if pid not in killed:
                audit_lock.terminate(pid)
                killed.append(pid)
        return svc.get_run(run_id).is_final

    wait_for(strike, 60, 0.05, f"{kind} to fail after its attempts")
    run = svc.get_run(run_id)
    assert run.state == "failed" and run.attempts == ATTEMPTS and len(killed) == ATTEMPTS, (run, killed)
    assert "terminat" in run.error.lower() and "administrator command" in run.error, run.error
    assert "[SQL:" not in run.error, "the reason shown to users must not carry SQL statements"
    assert not run.error.startswith("interrupted")
    audit_lock.release()
    assert data_checksum() == before and job_rows() == rows_before

    retry_id = svc.retry(run_id, "anna")
    assert run_history(retry_id, timeout=60)[-1][0] == "succeeded", svc.get_run(retry_id).error
    assert data_checksum() != before
