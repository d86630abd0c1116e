"""The task-run service and the Huey tasks, with Huey in immediate mode (tasks run inside ``enqueue``) on SQLite."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.errors import NotFoundError, ProviderError, ValidationFailed
from core.infra.locks import REFRESH
from core.services import retention
from core.services import schedule as schedule_service
from core.services import workers as worker_service
from core.services.ports import QueueUnavailable
from jobs.queue import set_immediate


@dataclass
class Viewer:
    """Who acts: a username the services reload (role and status come from the database, never from here)."""

    username: str


ADMIN = Viewer("root")
ANNA = Viewer("anna")
BOB = Viewer("bob")


def _create_users() -> None:
    from core.services import users

    users.create_user("root", "Root Admin", "root's long password 1", role="admin")
    users.create_user("anna", "Anna Analyst", "anna's long password 1", role="analyst")
    users.create_user("bob", "Bob Analyst", "bob's long password 1", role="analyst")


@pytest.fixture
def huey(sqlite_db):
    """The project's Huey instance in immediate mode, on fresh in-memory storage."""
    from jobs import huey as instance

    _create_users()
    was, storage = instance.immediate, instance.storage
    instance.immediate = True  # switches to a new in-memory storage
    try:
        yield instance
    finally:
        set_immediate(instance, was, storage=storage)


@pytest.fixture
def svc():
    from core.services import runs

    return runs


def _utc_in(seconds: float) -> dt.datetime:
    """Huey's clock: naive UTC, ``seconds`` from now."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) + dt.timedelta(seconds=seconds)


def _runs_count() -> int:
    from core.db import unit_of_work
    from core.models import TaskRun

    with unit_of_work() as session:
        return int(session.scalar(select(func.count(TaskRun.id))))


def _seed(n_years: float = 1.0) -> None:
    from core.services.bootstrap import seed_demo
    from core.services.strategies import ensure_default_config

    seed_demo(years=n_years, end=dt.date(2024, 12, 31))
    ensure_default_config()


# --------------------------------------------------------------------------- queueing and validation
def test_refresh_runs_and_records_everything(huey, svc):
    run_id = svc.enqueue("refresh", {"provider": "demo", "symbols": "aapl, MSFT"}, user=ADMIN)
    run = svc.get_run(run_id, ADMIN)
    assert run.state == "succeeded"
    assert run.kind == "refresh" and run.args == {"provider": "demo", "symbols": ["AAPL", "MSFT"], "full": False}
    assert run.queued_by == "root" and run.attempts == 1 and run.progress == 1.0
    assert run.started_at and run.finished_at and run.duration_s is not None and run.duration_s >= 0
    assert run.result and run.result["rows_new"] > 0
    assert run.huey_id and run.worker and run.error is None
    from core.services.audit import list_events

    events = list_events(action="job.queue")
    assert len(events) == 1 and events.iloc[0]["actor"] == "root"
    assert events.iloc[0]["detail"]["run_id"] == run_id


@pytest.mark.parametrize(
    "kind, params, field",
    [
        ("nonsense", {}, "kind"),
        ("refresh", {"provider": "yahoo"}, "provider"),
        ("refresh", {"symbols": "AAPL,not a symbol"}, "symbols"),
        ("refresh", {"full": "maybe"}, "full"),
        ("refresh", {"bogus": 1}, "bogus"),
        ("compute", {"config_id": "x"}, "config_id"),
        ("compute", {"config_id": 999}, "config_id"),
        ("report", {}, "report_id"),
        ("report", {"report_id": 5}, "report_id"),
    ],
)
def test_bad_params_are_named_and_nothing_is_written(huey, svc, kind, params, field):
    with pytest.raises(ValidationFailed) as caught:
        svc.enqueue(kind, params, user=ANNA)
    assert field in caught.value.errors
    assert _runs_count() == 0
    assert huey.pending_count() == 0


def test_redis_down_is_a_clear_error_and_leaves_no_row(sqlite_db, svc):
    from huey import RedisHuey

    _create_users()

    import jobs  # noqa: F401  (registers the tasks)

    dead = RedisHuey("autoindex-test-dead", url="redis://127.0.0.1:1/0")
    with pytest.raises(QueueUnavailable, match=r"^queue unavailable: "):
        svc.enqueue("refresh", {}, user=ADMIN, huey=dead)
    assert _runs_count() == 0


def test_enqueue_failure_after_writing_removes_the_row(huey, svc, monkeypatch):
    set_immediate(huey, False, storage=huey.storage)  # keep the in-memory storage, but queue instead of running

    def refuse(data, priority=None):
        raise ConnectionError("broker went away")

    monkeypatch.setattr(huey.storage, "enqueue", refuse)
    with pytest.raises(QueueUnavailable, match="broker went away"):
        svc.enqueue("refresh", {}, user=ADMIN)
    assert _runs_count() == 0
    from core.services.audit import list_events

    events = list_events(action="job.queue")
    assert list(events["outcome"]) == ["error"]


# --------------------------------------------------------------------------- failures and retries
def test_permanent_error_fails_at_once_with_traceback_for_admins_only(huey, svc):
    run_id = svc.enqueue("compute", {}, user=ANNA)  # no config, no prices: NotFoundError
    run = svc.get_run(run_id, ADMIN)
    assert run.state == "failed" and run.attempts == 1
    assert "no active strategy config" in run.error
    assert "Traceback" in run.traceback
    assert svc.get_run(run_id, ANNA).traceback is None
    assert huey.scheduled_count() == 0  # no retry pending


def test_transient_provider_error_is_retried_with_backoff_then_succeeds(huey, svc, monkeypatch):
    import core.services.refresh as refresh

    real = refresh.refresh_prices
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise ProviderError("HTTP 429: too many requests", "AAPL", transient=True, status=429)
        return real(*args, **kwargs)

    monkeypatch.setattr(refresh, "refresh_prices", flaky)
    run_id = svc.enqueue("refresh", {"symbols": ["AAPL"]}, user=ADMIN)
    run = svc.get_run(run_id, ADMIN)
    assert run.state == "retrying" and "429" in run.error and run.attempts == 1
    # the retry waits in the schedule for RETRY_DELAY_S: let the "scheduler" run it
    from jobs.tasks import RETRY_DELAY_S

    early = huey.read_schedule(_utc_in(RETRY_DELAY_S - 1))
    assert early == []
    (retry,) = huey.read_schedule(_utc_in(RETRY_DELAY_S + 1))
    huey.execute(retry, _utc_in(RETRY_DELAY_S + 1))
    run = svc.get_run(run_id, ADMIN)
    assert run.state == "succeeded" and run.attempts == 2 and run.error is None
    assert len(calls) == 2


def test_transient_errors_give_up_after_three_attempts(huey, svc, monkeypatch):
    import core.services.refresh as refresh

    def always(*args, **kwargs):
        raise ProviderError("HTTP 503", None, transient=True, status=503)

    monkeypatch.setattr(refresh, "refresh_prices", always)
    run_id = svc.enqueue("refresh", {}, user=ADMIN)
    delays = []
    for _ in range(5):
        pending = huey.read_schedule(_utc_in(3600))
        if not pending:
            break
        (task,) = pending
        delays.append(task.retry_delay)
        huey.execute(task, _utc_in(3600))
    run = svc.get_run(run_id, ADMIN)
    assert run.state == "failed" and run.attempts == 3 and "503" in run.error
    assert delays == [4.0, 8.0]  # the delay used for the next retry doubles each time (2 s, then 4 s)


def test_non_transient_provider_error_is_not_retried(huey, svc, monkeypatch):
    import core.services.refresh as refresh

    def bad(*args, **kwargs):
        raise ProviderError("unknown symbol", "NOPE", status=404)

    monkeypatch.setattr(refresh, "refresh_prices", bad)
    run = svc.get_run(svc.enqueue("refresh", {}, user=ADMIN), ADMIN)
    assert run.state == "failed" and run.attempts == 1 and "NOPE" in run.error
    assert huey.scheduled_count() == 0


# --------------------------------------------------------------------------- the refresh lock
class _HeldElsewhere:
    """Lock ``name`` held by another thread as ``label`` (to this thread it is someone else's) until release()."""

    def __init__(self, name: str, label: str) -> None:
        from core.infra import locks

        taken, self._done = threading.Event(), threading.Event()

        def keep() -> None:
            with locks.acting_as(label), locks.hold(name):
                taken.set()
                self._done.wait(30)

        self._thread = threading.Thread(target=keep, daemon=True)
        self._thread.start()
        assert taken.wait(10)

    def release(self) -> None:
        self._done.set()
        self._thread.join(10)


def _hold_in_a_process(name: str) -> subprocess.Popen:
    """A process that takes lock ``name`` as ``victim`` and sleeps; returns once it holds it."""
    code = (
        "import time\nfrom core.infra.locks import hold\n"
        f"with hold({name!r}, holder='victim'):\n    print('held', flush=True)\n    time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        env=dict(os.environ),
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"held"
    return proc


def test_second_refresh_is_skipped_while_one_runs(huey, svc):
    set_immediate(huey, False, storage=huey.storage)
    holder = svc.enqueue("refresh", {}, user=ADMIN)
    assert svc.mark_running(holder, worker="elsewhere")
    set_immediate(huey, True, storage=huey.storage)
    elsewhere = _HeldElsewhere(REFRESH, f"run {holder}")
    run = svc.get_run(svc.enqueue("refresh", {}, user=ADMIN), ADMIN)
    elsewhere.release()
    assert run.state == "skipped"
    here = f"{socket.gethostname()}:{os.getpid()}"
    assert run.message == f"skipped: another refresh is running (held by run {holder} on {here})"
    assert run.finished_at is not None


def test_a_lock_left_by_a_killed_process_is_free(huey, svc):
    """A refresh whose process is killed (SIGKILL: no clean-up runs) leaves no lock behind: the kernel closes
    its lock file. While it lives, a refresh job is skipped naming it."""
    from core.infra.locks import held_locks

    victim = _hold_in_a_process(REFRESH)
    skipped = svc.get_run(svc.enqueue("refresh", {"symbols": "SPY"}, user=ADMIN), ADMIN)
    assert skipped.state == "skipped" and f"held by victim on {socket.gethostname()}:{victim.pid}" in skipped.message
    assert held_locks() == {REFRESH: f"victim on {socket.gethostname()}:{victim.pid}"}
    set_immediate(huey, False, storage=huey.storage)
    dead = svc.enqueue("refresh", {}, user=ADMIN)
    svc.mark_running(dead, worker="gone")
    svc.mark_failed(dead, "interrupted: worker gone stopped")
    set_immediate(huey, True, storage=huey.storage)
    victim.kill()
    victim.wait(10)
    run = svc.get_run(svc.enqueue("refresh", {"symbols": "SPY"}, user=ADMIN), ADMIN)
    assert run.state == "succeeded"
    assert held_locks() == {}


# --------------------------------------------------------------------------- cancel and retry
def test_cancel_a_queued_run_revokes_it(huey, svc):
    set_immediate(huey, False, storage=huey.storage)
    run_id = svc.enqueue("compute", {}, user=ANNA)
    assert svc.get_run(run_id, ANNA).state == "queued"
    with pytest.raises(NotFoundError):
        svc.cancel(run_id, BOB)  # not his
    run = svc.cancel(run_id, ANNA)
    assert run.state == "cancelled" and run.finished_at is not None
    task = huey.dequeue()
    huey.execute(task)  # the consumer finds it revoked and does not run it
    run = svc.get_run(run_id, ADMIN)
    assert run.state == "cancelled" and run.attempts == 0 and run.result is None
    with pytest.raises(ValidationFailed, match="only queued or scheduled"):
        svc.cancel(run_id, ANNA)


def test_cancel_a_run_waiting_to_retry(huey, svc, monkeypatch):
    import core.services.refresh as refresh

    monkeypatch.setattr(
        refresh, "refresh_prices", lambda *a, **k: (_ for _ in ()).throw(ProviderError("429", None, transient=True))
    )
    run_id = svc.enqueue("refresh", {}, user=ADMIN)
    assert svc.get_run(run_id).state == "retrying"
    svc.cancel(run_id, ADMIN)
    (task,) = huey.read_schedule(_utc_in(3600))
    huey.execute(task, _utc_in(3600))
    run = svc.get_run(run_id)
    assert run.state == "cancelled" and run.attempts == 1


def test_cancel_a_running_run_is_refused(huey, svc):
    set_immediate(huey, False, storage=huey.storage)
    run_id = svc.enqueue("compute", {}, user=ANNA)
    svc.mark_running(run_id, worker="w")
    with pytest.raises(ValidationFailed, match="is running"):
        svc.cancel(run_id, ANNA)


def test_retry_a_failed_run_links_the_new_one(huey, svc):
    failed = svc.enqueue("compute", {}, user=ANNA)
    assert svc.get_run(failed).state == "failed"
    _seed()
    with pytest.raises(NotFoundError):
        svc.retry(failed, BOB)
    new = svc.retry(failed, ANNA)
    run = svc.get_run(new, ANNA)
    assert run.retry_of_id == failed and run.kind == "compute" and run.state == "succeeded"
    assert run.result["config_id"] >= 1
    with pytest.raises(ValidationFailed, match="only failed"):
        svc.retry(new, ANNA)


# --------------------------------------------------------------------------- reading
def test_list_runs_visibility_filters_and_paging(huey, svc, monkeypatch):
    for user in ("root", "root", "root"):
        svc.enqueue("refresh", {"symbols": "SPY"}, user=user)
    for user in ("anna", "anna", "bob"):
        svc.enqueue("compute", {}, user=user)  # fails: nothing to compute

    mine = svc.list_runs(viewer=ANNA)
    assert len(mine) == 2 and {r.queued_by for r in mine} == {"anna"}
    assert svc.list_runs(user="bob", viewer=ANNA) == mine or all(
        r.queued_by == "anna" for r in svc.list_runs(user="bob", viewer=ANNA)
    )
    assert len(svc.list_runs(viewer=ADMIN)) == 6
    assert [r.queued_by for r in svc.list_runs(user="bob", viewer=ADMIN)] == ["bob"]
    assert [r.kind for r in svc.list_runs(state="failed", viewer=ADMIN)] == ["compute"] * 3
    assert len(svc.list_runs(kind="refresh", viewer=ADMIN)) == 3
    today = dt.datetime.now(dt.timezone.utc).date()
    assert len(svc.list_runs(since=today, until=today, viewer=ADMIN)) == 6
    assert svc.list_runs(until=today - dt.timedelta(days=1), viewer=ADMIN) == []
    page1 = svc.list_runs(limit=2, offset=0, viewer=ADMIN)
    page2 = svc.list_runs(limit=2, offset=2, viewer=ADMIN)
    assert len(page1) == 2 and len(page2) == 2 and not {r.id for r in page1} & {r.id for r in page2}
    assert page1[0].id > page2[-1].id  # newest first
    from core.schemas.task import RunFilters

    assert svc.count_runs(RunFilters(kind="refresh"), viewer=ADMIN) == 3
    assert svc.count_runs(viewer=ANNA) == 2
    assert all(r.traceback is None for r in svc.list_runs(viewer=ANNA))
    with pytest.raises(NotFoundError):
        svc.get_run(mine[0].id, BOB)
    assert svc.run_users(ADMIN) == ["anna", "bob", "root"] and svc.run_users(ANNA) == ["anna"]


def test_progress_is_clamped_and_never_moves_back(huey, svc):
    set_immediate(huey, False, storage=huey.storage)
    run_id = svc.enqueue("refresh", {}, user=ADMIN)
    svc.progress(run_id, 0.5, "ignored: not running yet")
    assert svc.get_run(run_id).progress == 0.0
    svc.mark_running(run_id, worker="w")
    svc.progress(run_id, 0.4, "fetching")
    svc.progress(run_id, 0.2, "late message")
    run = svc.get_run(run_id)
    assert run.progress == pytest.approx(0.4) and run.message == "late message"
    svc.progress(run_id, 7, "over")
    assert svc.get_run(run_id).progress == 1.0


# --------------------------------------------------------------------------- workers and reconciliation
def test_heartbeat_and_worker_status(sqlite_db, svc):
    now = dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.timezone.utc)
    worker_service.heartbeat("far:1:a", hostname="far-host", pid=1, workers=4, now=now - dt.timedelta(seconds=3))
    worker_service.heartbeat("far:2:b", hostname="far-host", pid=2, workers=1, now=now - dt.timedelta(seconds=60))
    worker_service.heartbeat("far:1:a", hostname="far-host", pid=1, workers=4, now=now - dt.timedelta(seconds=1))
    status = {w.worker_id: w for w in worker_service.workers_status(now=now)}
    assert status["far:1:a"].alive and status["far:1:a"].workers == 4 and status["far:1:a"].age_s == 1
    assert not status["far:2:b"].alive
    # on this host a vanished pid is dead at once, whatever the heartbeat says
    worker_service.heartbeat("here:x", hostname=socket.gethostname(), pid=2**22 + 12345, now=now)
    worker_service.heartbeat("here:me", hostname=socket.gethostname(), pid=os.getpid(), now=now)
    status = {w.worker_id: w for w in worker_service.workers_status(now=now)}
    assert not status["here:x"].alive and status["here:me"].alive


def test_reconcile_marks_runs_of_dead_workers_interrupted(huey, svc):
    now = dt.datetime.now(dt.timezone.utc)
    set_immediate(huey, False, storage=huey.storage)
    worker_service.heartbeat("live", hostname="far-host", pid=1, now=now)
    worker_service.heartbeat("dead", hostname="far-host", pid=2, now=now - dt.timedelta(minutes=5))
    on_live = svc.enqueue("compute", {}, user=ANNA)
    on_dead = svc.enqueue("refresh", {}, user=ADMIN)
    waiting_retry = svc.enqueue("compute", {}, user=ANNA)
    lost_retry = svc.enqueue("compute", {}, user=ANNA)
    queued = svc.enqueue("compute", {}, user=ANNA)
    svc.mark_running(on_live, worker="live")
    svc.mark_running(on_dead, worker="dead")
    for run_id in (waiting_retry, lost_retry):
        svc.mark_running(run_id, worker="dead")
        svc.mark_retrying(run_id, 2)
    # the waiting retry's Huey task is in the schedule; the lost one's is gone
    waiting_task = next(t for t in huey.pending() if t.id == svc.get_run(waiting_retry).huey_id)
    huey.storage.flush_queue()
    waiting_task.eta = _utc_in(30)
    huey.add_schedule(waiting_task)

    marked = worker_service.reconcile_interrupted(now=now, current_worker="me")
    assert sorted(marked) == sorted([on_dead, lost_retry])
    run = svc.get_run(on_dead)
    assert run.state == "failed" and run.error.startswith("interrupted") and run.interrupted
    assert svc.get_run(on_live).state == "running"
    assert svc.get_run(waiting_retry).state == "retrying"
    assert svc.get_run(queued).state == "queued"
    # the interrupted run can be retried
    set_immediate(huey, True, storage=huey.storage)
    assert svc.get_run(svc.retry(on_dead, ADMIN)).state == "succeeded"


def test_worker_start_reconciles(huey, svc):
    from jobs import worker as worker_life

    set_immediate(huey, False, storage=huey.storage)
    run_id = svc.enqueue("refresh", {}, user=ADMIN)
    svc.mark_running(run_id, worker="host:999:gone")
    worker_life.worker_started(huey)
    try:
        assert svc.get_run(run_id).state == "failed"
        me = {w.worker_id: w for w in worker_service.workers_status()}[worker_life.current_worker_id()]
        assert me.alive and me.workers >= 1
    finally:
        worker_life.worker_stopped()


# --------------------------------------------------------------------------- schedule, queue, retention
def test_schedule_gives_next_run_times(sqlite_db, svc):
    friday_late = dt.datetime(2026, 11, 27, 23, 0, tzinfo=dt.timezone.utc)  # a Friday
    entries = {e.kind: e for e in schedule_service.schedule(now=friday_late)}
    assert entries["scheduled_refresh"].cron == "30 22 * * 1-5"
    assert entries["scheduled_refresh"].next_run_at == dt.datetime(2026, 11, 30, 22, 30, tzinfo=dt.timezone.utc)
    assert entries["retention"].next_run_at == dt.datetime(2026, 11, 28, 3, 15, tzinfo=dt.timezone.utc)
    assert schedule_service.next_run(
        "30 22 * * 1-5", dt.datetime(2026, 11, 30, 22, 0, tzinfo=dt.timezone.utc)
    ) == dt.datetime(2026, 11, 30, 22, 30, tzinfo=dt.timezone.utc)


def test_queue_depth(huey, svc):
    set_immediate(huey, False, storage=huey.storage)
    svc.enqueue("refresh", {}, user=ADMIN)
    svc.enqueue("refresh", {}, user=ADMIN)
    depth = svc.queue_depth()
    assert depth.pending == 2 and depth.scheduled == 0


def test_clean_up_removes_old_final_runs_and_report_files(huey, svc, tmp_path):
    from core.db import unit_of_work
    from core.models import Report, TaskRun

    now = dt.datetime.now(dt.timezone.utc)
    old = now - dt.timedelta(days=200)
    report_file = tmp_path / "old-report.html"
    report_file.write_text("<html></html>")
    with unit_of_work() as session:
        session.add_all(
            [
                TaskRun(kind="refresh", args={}, state="succeeded", queued_at=old, finished_at=old),
                TaskRun(kind="refresh", args={}, state="failed", queued_at=old, finished_at=old),
                TaskRun(kind="refresh", args={}, state="running", queued_at=old, started_at=old),
                TaskRun(kind="refresh", args={}, state="succeeded", queued_at=now, finished_at=now),
                Report(
                    report_type="performance",
                    period="YTD",
                    format="html",
                    owner="anna",
                    created_at=old,
                    path=str(report_file),
                    status="done",
                ),
                Report(
                    report_type="performance",
                    period="YTD",
                    format="html",
                    owner="anna",
                    created_at=old,
                    status="running",
                ),  # still being generated: kept
                Report(report_type="performance", period="YTD", format="html", owner="anna", created_at=now),
            ]
        )
        session.commit()
    summary = retention.clean_up(now=now, retention_days=90)
    assert summary["runs"] == 2 and summary["reports"] == 1 and summary["files"] == 1
    assert not report_file.exists()
    assert sorted(r.state for r in svc.list_runs(viewer=ADMIN)) == ["running", "succeeded"]


# --------------------------------------------------------------------------- periodic tasks
def test_scheduled_refresh_refreshes_and_recomputes_once_per_slot(huey, svc):
    _seed()
    from jobs.schedule import scheduled_refresh

    huey.execute(scheduled_refresh.task_class())
    huey.execute(scheduled_refresh.task_class())  # a second consumer's scheduler, same minute
    runs = svc.list_runs(kind="scheduled_refresh", viewer=ADMIN)
    assert len(runs) == 1
    run = runs[0]
    assert run.state == "succeeded" and run.queued_by == "scheduler"
    assert run.result["compute"]["config_id"] >= 1 and "rows_new" in run.result["refresh"]
    # the recompute is the refresh service's: one compute run, queued by the scheduler, which ran
    computes = svc.list_runs(kind="compute", viewer=ADMIN)
    assert [(c.id, c.queued_by, c.state) for c in computes] == [
        (run.result["compute"]["run_id"], "scheduler", "succeeded")
    ]


# --------------------------------------------------------------------------- command line
def test_cli_enqueue_wait_and_list(huey, capsys):
    from cli import main

    assert main(["jobs", "enqueue", "refresh", "--param", "symbols=SPY,GLD", "--wait"]) == 0
    out = capsys.readouterr()
    run_id = int(out.out.strip().splitlines()[0])
    assert "succeeded" in out.err
    assert main(["jobs", "enqueue", "compute", "--wait"]) == 1  # nothing to compute: fails
    assert main(["jobs", "enqueue", "refresh", "--param", "provider=nowhere"]) == 2
    assert "provider" in capsys.readouterr().err
    assert main(["jobs", "list"]) == 0
    listing = capsys.readouterr().out
    assert f"{run_id:>6}  refresh" in listing and "failed" in listing


# --------------------------------------------------------------------------- InlineQueue (the no-worker fallback)
def test_inline_queue_runs_the_job_inside_submit_and_records_it(huey, svc):
    from core.services.ports import fallback_queue
    from jobs.queue import InlineQueue

    queue = fallback_queue()
    assert isinstance(queue, InlineQueue) and queue.backend == "inline" and queue.immediate
    run_id = svc.enqueue("refresh", {"symbols": "SPY"}, user=ADMIN, huey=queue)
    run = svc.get_run(run_id, ADMIN)
    assert run.state == "succeeded" and run.attempts == 1 and run.progress == 1.0 and run.worker
    assert run.result["rows_new"] > 0 and run.finished_at is not None
    assert queue.waiting_ids() == set() and queue.pending_count() == queue.scheduled_count() == 0
    assert huey.pending_count() == 0  # nothing went through Huey


def test_inline_queue_records_a_failure_on_the_run_instead_of_raising(huey, svc):
    from jobs.queue import InlineQueue

    _seed(0.2)
    run_id = svc.enqueue("compute", {}, user=ANNA, huey=InlineQueue())  # the active config computes
    assert svc.get_run(run_id, ANNA).state == "succeeded"
    from core.services import strategies

    version = strategies.save_version("Broken", {"equal": 1.0}, note="t")
    from core.db import unit_of_work
    from core.models import StrategyConfigRow

    with unit_of_work() as session:  # a stored config the engine refuses: the job fails, permanently
        session.get(StrategyConfigRow, version.id).params = {"equal": "not a weight"}
        session.commit()
    failed = svc.get_run(svc.enqueue("compute", {"config_id": version.id}, user=ANNA, huey=InlineQueue()), ADMIN)
    assert failed.state == "failed" and failed.attempts == 1 and failed.error and failed.traceback


def test_activation_queues_the_recompute_in_the_service(huey, svc, monkeypatch):
    """strategies.activate decides the recompute: queued as a run; with the queue down, computed here (InlineQueue);
    with no fallback either, not queued and the reason says why (nothing raised)."""
    from core.services import ports, strategies

    _seed(0.2)
    version = strategies.save_version("Next", {"equal": 1.0}, note="t")
    activation = strategies.activate(version.id, actor=ADMIN)
    assert activation.version.is_active and activation.recompute["queued"] and not activation.recompute["inline"]
    assert svc.get_run(activation.recompute["run_id"], ADMIN).args == {"config_id": version.id}

    def down() -> None:
        raise ConnectionError("Redis went away")

    from jobs.queue import HueyQueue

    monkeypatch.setattr(HueyQueue, "ping", lambda self: down())
    inline = strategies.activate(version.id, actor=ADMIN).recompute
    assert inline["queued"] and inline["inline"] and inline["state"] == "succeeded"
    assert inline["result"]["config_id"] == version.id
    monkeypatch.setattr(ports, "_fallback", None)
    missing = strategies.activate(version.id, actor=ADMIN).recompute
    assert missing == {"queued": False, "reason": "queue unavailable: ConnectionError: Redis went away"}
