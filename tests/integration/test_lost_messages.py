"""A queued run whose queue message is lost is reconciled: marked failed "lost: the queue message was not
found" (issue 11, case 15). On SQLite with the SQLite queue, and on PostgreSQL with the Redis queue; the
message is really removed from the real queue storage, and time is passed in (``now=``)."""

from __future__ import annotations

import datetime as dt
import os

import pytest
from sqlalchemy import update

from core.db import unit_of_work
from core.models import TaskRun
from core.services import runs as svc
from core.services.workers import LOST_ERROR, LostMessageWatch
from jobs.queue import set_immediate
from tests.conftest import REDIS_BASE

JOBS_REDIS_URL = os.environ.get("AUTOINDEX_TEST_LOST_REDIS", f"{REDIS_BASE}/10")


@pytest.fixture
def queue(db, monkeypatch):
    """jobs.huey on the dialect's natural queue: SqliteHuey beside SQLite, RedisHuey (a test db) beside PostgreSQL."""
    import jobs
    from tests.conftest import _reset_caches
    from tests.integration.conftest import flush_job_keys

    saved = jobs.huey.storage, jobs.huey.immediate
    if db.startswith("postgresql"):
        monkeypatch.setenv("REDIS_URL", JOBS_REDIS_URL)
        flush_job_keys(JOBS_REDIS_URL)
    _reset_caches()
    jobs.reconfigure()
    try:
        yield jobs.huey
    finally:
        jobs.huey.flush()
        if db.startswith("postgresql"):
            flush_job_keys(JOBS_REDIS_URL)
        set_immediate(jobs.huey, saved[1], storage=saved[0])


def _queued_at(run_id: int, when: dt.datetime) -> None:
    with unit_of_work() as session:
        session.execute(update(TaskRun).where(TaskRun.id == run_id).values(queued_at=when))
        session.commit()


def _lose_message(huey, run_id: int) -> None:
    """Remove exactly this run's message from the real queue (as a Redis flush or a crashed dequeue would)."""
    keep = [t for t in huey.pending() if t.id != svc.get_run(run_id).huey_id]
    huey.storage.flush_queue()
    for task in keep:
        huey.enqueue(task)


def test_a_lost_message_is_marked_failed_after_grace_and_confirmation(queue):
    t0 = dt.datetime.now(dt.timezone.utc)
    lost = svc.enqueue("refresh", {"provider": "demo"})
    kept = svc.enqueue("refresh", {"provider": "demo"})
    fresh = svc.enqueue("refresh", {"provider": "demo"})
    started = svc.enqueue("refresh", {"provider": "demo"})
    for run_id in (lost, kept, started):
        _queued_at(run_id, t0)
    _queued_at(fresh, t0 + dt.timedelta(seconds=50))  # queued only a moment before the looks below
    for run_id in (lost, fresh, started):
        _lose_message(queue, run_id)
    assert {t.id for t in queue.pending()} == {svc.get_run(kept).huey_id}

    watch = LostMessageWatch(grace_s=30, confirm_s=10)
    assert watch.check(t0 + dt.timedelta(seconds=20), huey=queue) == []  # within the grace period: not looked at
    assert watch.check(t0 + dt.timedelta(seconds=35), huey=queue) == []  # first look: suspects only
    assert set(watch.suspects) == {lost, started}
    svc.mark_running(started, worker="w1")  # a worker took it between the looks (in flight, then running)
    assert watch.check(t0 + dt.timedelta(seconds=40), huey=queue) == []  # confirmation needs 10 s
    assert watch.check(t0 + dt.timedelta(seconds=46), huey=queue) == [lost]

    run = svc.get_run(lost)
    assert run.state == "failed" and run.error.startswith(LOST_ERROR) and "retry the run" in run.error
    assert run.finished_at is not None
    assert svc.get_run(kept).state == "queued"  # its message is there
    assert svc.get_run(fresh).state == "queued"  # still within its grace period
    assert svc.get_run(started).state == "running"
    assert watch.check(t0 + dt.timedelta(seconds=90), huey=queue) == []  # fresh: a suspect now
    assert watch.check(t0 + dt.timedelta(seconds=101), huey=queue) == [fresh]
    # A late worker holding the lost message would be refused: claim only starts queued runs.
    assert svc.claim(lost, worker="late") is False and svc.get_run(lost).state == "failed"
    # Retrying a lost run queues the same work again.
    again = svc.retry(lost, None)
    assert svc.get_run(again).state == "queued" and svc.get_run(again).retry_of_id == lost


def test_nothing_is_decided_when_the_queue_cannot_be_read(queue, monkeypatch):
    t0 = dt.datetime.now(dt.timezone.utc)
    run_id = svc.enqueue("refresh", {"provider": "demo"})
    _queued_at(run_id, t0)
    _lose_message(queue, run_id)
    watch = LostMessageWatch(grace_s=30, confirm_s=10)

    def unreadable(*_a, **_k):
        raise ConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused.")

    monkeypatch.setattr(queue, "pending", unreadable)  # the outside world (the queue server) is down
    assert watch.check(t0 + dt.timedelta(seconds=40), huey=queue) == []
    assert watch.check(t0 + dt.timedelta(seconds=60), huey=queue) == []
    assert svc.get_run(run_id).state == "queued"


def test_the_report_of_a_lost_report_run_is_failed_too(queue):
    from core.models import Report

    with unit_of_work() as session:
        report = Report(report_type="risk", period="YTD", format="pdf", status="queued", owner="system")
        session.add(report)
        session.commit()
        report_id = report.id
    t0 = dt.datetime.now(dt.timezone.utc)
    run_id = svc.enqueue("report", {"report_id": report_id})
    _queued_at(run_id, t0)
    _lose_message(queue, run_id)
    watch = LostMessageWatch(grace_s=30, confirm_s=10)
    watch.check(t0 + dt.timedelta(seconds=31), huey=queue)
    assert watch.check(t0 + dt.timedelta(seconds=41), huey=queue) == [run_id]
    with unit_of_work() as session:
        row = session.get(Report, report_id)
        assert row.status == "failed" and row.error.startswith(LOST_ERROR)
