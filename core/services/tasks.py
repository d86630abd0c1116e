"""Task runs: every background job as a row in ``task_runs``, from queueing to its last state.

Huey has no monitoring of its own; this module is it. The life of a run::

    enqueue()  -> queued     (row committed first, then the Huey message; a failure removes the row)
    executing  -> running    (Huey signal in the worker, and :func:`claim` inside the task as a fallback)
    progress() -> running, progress 0..1 rising, with a message
    complete   -> succeeded  (result summary stored by the task)
    task body  -> succeeded_with_warnings (the work was done but the task reports warnings, e.g. a refresh
                              that skipped symbols its provider does not know; see :func:`mark_succeeded`)
    error      -> retrying   (transient error and retries left; the Huey task waits in the schedule)
               -> failed     (permanent error, or no retries left; error for everyone, traceback for admins)
    task body  -> skipped    (another refresh holds the refresh lock; the reason, naming the holder, is the message)
    cancel()   -> cancelled  (queued or scheduled: the Huey task is revoked)
    reconcile_interrupted() -> failed with error "interrupted: ..." (its worker died)
    LostMessageWatch.check() -> failed with error "lost: the queue message was not found" (queued, no message)

Every transition is a conditional UPDATE (``WHERE state IN (...)``) so that signals arriving
from several processes, or twice, can never move a run backwards (a skipped or cancelled run
stays so). State is written from whichever process runs the task, so it is right whether the
consumer is a thread in the app (SqliteHuey) or a ``huey_consumer`` on another host (RedisHuey).

Workers are consumer processes; each writes a :class:`~core.models.WorkerHeartbeat` every
:data:`HEARTBEAT_INTERVAL_S` seconds. A worker is *dead* when its heartbeat is older than
:data:`HEARTBEAT_STALE_S`, or when it ran on this host and its pid no longer exists.

Functions take ``huey=`` (default: the process's queue, wired by ``jobs`` through
:mod:`core.services.ports`; core never imports ``jobs``) so tests can pass an immediate-mode
instance; times are UTC and passed in as ``now=`` where the clock matters.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import traceback as tb_module
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from pydantic import ValidationError
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from core.config import get_settings
from core.db import unit_of_work, write_lock
from core.errors import AutoIndexError, NotFoundError, ValidationFailed
from core.models import AuditEvent, Report, StrategyConfigRow, TaskRun, WorkerHeartbeat, utcnow
from core.models.base import id_in_range
from core.schemas.task import (
    ALL_KINDS,
    FINAL_STATES,
    PARAMS_BY_KIND,
    PERIODIC_KINDS,
    QueueDepth,
    RunFilters,
    ScheduleEntry,
    TaskRunOut,
    WorkerOut,
)
from core.services import audit
from core.services.access import ADMIN_ONLY, ALL_ROLES, Principal, owns, resolve, visible_to
from core.services.ports import JobQueue, QueueUnavailable, job_queue

if TYPE_CHECKING:
    # Session.execute() returns a CursorResult for INSERT/UPDATE/DELETE, but SQLAlchemy types it as Result
    from sqlalchemy import CursorResult

log = logging.getLogger(__name__)

#: Seconds between two heartbeats of a worker.
HEARTBEAT_INTERVAL_S = 5.0
#: A worker whose last heartbeat is older than this is dead (three missed beats).
HEARTBEAT_STALE_S = 15.0
#: The lock (:mod:`core.infra.locks`) every refresh takes (manual, scheduled, CLI, seeding): one at a time.
REFRESH_LOCK = "refresh"
#: Kinds that take :data:`REFRESH_LOCK`.
REFRESH_KINDS = ("refresh", "scheduled_refresh")
#: Cron (UTC) of the retention clean-up.
RETENTION_CRON = "15 3 * * *"
#: Who queues periodic runs.
SCHEDULER_USER = "scheduler"
#: Longest error message kept on a run (the traceback keeps the rest).
ERROR_MAX = 2000






# --------------------------------------------------------------------------- helpers
def _queue(huey: Any = None) -> JobQueue:
    """The job queue: the process's (wired by ``jobs``), or ``huey`` (a JobQueue or a runner to wrap)."""
    return job_queue(huey)


def _out(row: TaskRun, principal: Principal) -> TaskRunOut:
    out = TaskRunOut.model_validate(row)
    if not principal.is_admin:
        out.traceback = None
    return out


#: Who may queue each kind (checked on fresh state): price refreshes change the data everyone sees.
KIND_ROLES: dict[str, tuple[str, ...]] = {"refresh": ADMIN_ONLY, "scheduled_refresh": ADMIN_ONLY,
                                          "scheduled_compute": ADMIN_ONLY, "retention": ADMIN_ONLY}


def _as_utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)


def _error_text(exc: BaseException) -> str:
    """The one-line reason shown to users. Database errors keep only the driver's first line: SQLAlchemy's
    text carries the SQL statement and its parameters (the admin-only traceback keeps those)."""
    from sqlalchemy.exc import DBAPIError

    if isinstance(exc, AutoIndexError):
        text = str(exc)
    elif isinstance(exc, DBAPIError) and exc.orig is not None:
        first = (str(exc.orig).strip().splitlines() or [""])[0]
        text = f"database error ({type(exc).__name__}): {first or type(exc.orig).__name__}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return text[:ERROR_MAX]


def _queue_error_reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else 'no detail'}"


def validate_params(kind: str, params: dict[str, Any] | None) -> dict[str, Any]:
    """Check ``kind`` and its parameters; return them normalised (JSON-ready).

    Raises ValidationFailed naming each bad field (``kind`` when the kind is unknown).
    """
    schema = PARAMS_BY_KIND.get(kind) or PERIODIC_KINDS.get(kind)
    if schema is None:
        raise ValidationFailed({"kind": f"unknown job kind {kind!r}; choose one of {', '.join(ALL_KINDS)}"})
    try:
        parsed = schema.model_validate(dict(params or {}))
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"] if not isinstance(p, int)) or "params"
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = f"is not a parameter of {kind} jobs"
            errors.setdefault(field, msg)
        raise ValidationFailed(errors) from None
    return parsed.model_dump(mode="json")


def _check_references(session: Session, kind: str, args: dict[str, Any], principal: Principal) -> None:
    """Refuse ids that do not exist or that the actor may not see, before anything is written.

    A report is regenerated only by its owner (or an admin), and never twice at once: a report whose job is
    still queued or running is "already queued" (a double click or Enter pressed twice queues one job)."""
    if kind == "compute" and args.get("config_id") is not None:
        if (session.get(StrategyConfigRow, args["config_id"]) if id_in_range(args["config_id"]) else None) is None:
            raise ValidationFailed({"config_id": f"no strategy config with id {args['config_id']}"})
    if kind == "report":
        report = session.scalar(select(Report).where(Report.id == args["report_id"]).with_for_update())
        if report is None or not owns(principal, report.owner):
            raise ValidationFailed({"report_id": f"no report with id {args['report_id']}"})
        busy = session.scalar(select(TaskRun.id).where(
            TaskRun.kind == "report", TaskRun.state.in_(("queued", "running", "retrying")),
            or_(TaskRun.id == report.task_run_id, TaskRun.args["report_id"].as_integer() == report.id)).limit(1))
        if busy is not None:
            raise ValidationFailed({"report_id": f"report {report.id} is already queued (run {busy})"})


# --------------------------------------------------------------------------- queueing
def enqueue(kind: str, params: dict[str, Any] | None = None, *, user: Any = None, retry_of_id: int | None = None,
            huey: Any = None) -> int:
    """Validate, record and queue a job; return the new run id.

    Args:
        kind: ``refresh``, ``compute`` or ``report`` (periodic kinds too, for retries).
        params: the kind's parameters (see :mod:`core.schemas.task`); strings are accepted where a
            form or the command line gives them (``"AAPL,MSFT"``, ``"true"``, ``"3"``).
        user: a username or a user schema; recorded as ``queued_by``.

    Raises:
        ValidationFailed: unknown kind or a bad parameter (named); nothing is written.
        QueueUnavailable: the queue is down; no run row is left behind.
    """
    args = validate_params(kind, params)
    with unit_of_work() as session:  # fail fast, before touching the queue; checked again when writing
        resolve(session, user, KIND_ROLES.get(kind, ALL_ROLES), action=f"queuing {kind} jobs")
    queue = _queue(huey)
    _ping(queue)
    huey_id = str(uuid.uuid4())
    with unit_of_work() as session:
        write_lock(session)
        principal = resolve(session, user, KIND_ROLES.get(kind, ALL_ROLES), action=f"queuing {kind} jobs", lock=True)
        username = None if principal.is_system and user is None else principal.username
        _check_references(session, kind, args, principal)
        row = TaskRun(kind=kind, args=args, state="queued", progress=0.0, attempts=0, queued_by=username,
                      huey_id=huey_id, retry_of_id=retry_of_id, message="waiting for a worker")
        session.add(row)
        detail: dict[str, Any] = {"args": args, "retry_of": retry_of_id}
        event = AuditEvent(actor=username, action="job.queue", target=kind, detail=detail)
        session.add(event)
        session.flush()
        run_id, event_id = row.id, event.id
        event.detail = {**detail, "run_id": run_id}
        session.commit()
    try:
        queue.submit(kind, run_id, args, huey_id)
    except Exception as exc:  # Redis refused, SQLite queue locked or unwritable ...
        reason = _queue_error_reason(exc)
        with unit_of_work() as session:
            session.execute(delete(TaskRun).where(TaskRun.id == run_id))
            session.execute(update(AuditEvent).where(AuditEvent.id == event_id)
                            .values(outcome="error", message=f"queue unavailable: {reason}"))
            session.commit()
        log.warning("could not queue %s job: %s", kind, reason)
        raise QueueUnavailable(reason) from None
    return run_id


def _ping(queue: JobQueue) -> None:
    """Fail fast (before writing) when the queue is down."""
    try:
        queue.ping()
    except Exception as exc:  # noqa: BLE001 - redis raises several connection errors
        raise QueueUnavailable(_queue_error_reason(exc)) from None


# --------------------------------------------------------------------------- transitions
def _transition(run_id: int, from_states: tuple[str, ...], **values: Any) -> bool:
    with unit_of_work() as session:
        result = session.execute(update(TaskRun).where(TaskRun.id == run_id, TaskRun.state.in_(from_states))
                                 .values(**values))
        session.commit()
        return bool(cast("CursorResult[Any]", result).rowcount)


def find_run_id(huey_id: str) -> int | None:
    """The run of a Huey task id (periodic tasks are found this way)."""
    with unit_of_work() as session:
        return session.scalar(select(TaskRun.id).where(TaskRun.huey_id == huey_id))


def mark_running(run_id: int, *, worker: str | None, now: dt.datetime | None = None) -> bool:
    """queued/retrying -> running; counts an attempt. False when the run was cancelled meanwhile."""
    now = now or utcnow()
    with unit_of_work() as session:
        row = session.get(TaskRun, run_id, with_for_update=not get_settings().is_sqlite)
        if row is None or row.state not in ("queued", "retrying"):
            return False
        row.state = "running"
        row.attempts = (row.attempts or 0) + 1
        row.started_at = row.started_at or now
        row.worker = worker
        row.progress = 0.0
        row.message = "started" if row.attempts == 1 else f"attempt {row.attempts} started"
        session.commit()
        return True


def claim(run_id: int, *, worker: str | None) -> bool:
    """Inside the task: True when this run may go on (it is running, marking it if the signal was missed)."""
    with unit_of_work() as session:
        state = session.scalar(select(TaskRun.state).where(TaskRun.id == run_id))
    if state == "running":
        return True
    if state in ("queued", "retrying"):
        return mark_running(run_id, worker=worker)
    return False


def progress(run_id: int, fraction: float, message: str | None = None) -> None:
    """Record progress (a fraction 0..1, never moving backwards within an attempt) of a running run."""
    fraction = min(max(float(fraction), 0.0), 1.0)
    with unit_of_work() as session:
        session.execute(update(TaskRun).where(TaskRun.id == run_id, TaskRun.state == "running")
                        .values(progress=func.max(TaskRun.progress, fraction) if get_settings().is_sqlite
                                else func.greatest(TaskRun.progress, fraction),
                                message=(message or "")[:500] or None))
        session.commit()


def store_result(run_id: int, result: dict[str, Any] | None) -> None:
    """Keep the task's result summary (JSON-ready) on the run."""
    with unit_of_work() as session:
        session.execute(update(TaskRun).where(TaskRun.id == run_id).values(result=result))
        session.commit()


def _finish_values(run_id: int, now: dt.datetime) -> dict[str, Any]:
    with unit_of_work() as session:
        started = session.scalar(select(TaskRun.started_at).where(TaskRun.id == run_id))
    duration = (now - _as_utc(started)).total_seconds() if started else None
    return {"finished_at": now, "duration_s": duration}


def mark_succeeded(run_id: int, *, warnings: list[str] | None = None, now: dt.datetime | None = None) -> bool:
    """running -> succeeded (progress 1, error cleared), or -> succeeded_with_warnings when ``warnings`` is
    not empty (its message counts them and quotes the first; the task's result summary keeps them all).

    A task body that has warnings calls this itself before returning; Huey's completion signal then finds the
    run final and changes nothing."""
    now = now or utcnow()
    if warnings:
        first = str(warnings[0])
        more = f" (and {len(warnings) - 1} more)" if len(warnings) > 1 else ""
        return _transition(run_id, ("running",), state="succeeded_with_warnings", progress=1.0, error=None,
                           message=f"succeeded with {len(warnings)} warning(s): {first}{more}"[:500],
                           **_finish_values(run_id, now))
    return _transition(run_id, ("running",), state="succeeded", progress=1.0, error=None,
                       **_finish_values(run_id, now))


def mark_skipped(run_id: int, reason: str, *, now: dt.datetime | None = None) -> bool:
    """queued/running -> skipped with the reason as message and error."""
    now = now or utcnow()
    return _transition(run_id, ("queued", "running"), state="skipped", message=reason[:500], error=reason[:ERROR_MAX],
                       **_finish_values(run_id, now))


def record_error(run_id: int, exc: BaseException, *, will_retry: bool, retry_in_s: float | None = None,
                 now: dt.datetime | None = None) -> bool:
    """running -> retrying (when ``will_retry``) or failed, keeping the error and its traceback."""
    now = now or utcnow()
    text = _error_text(exc)
    trace = "".join(tb_module.format_exception(type(exc), exc, exc.__traceback__))
    if will_retry:
        wait = f" in {retry_in_s:.0f} s" if retry_in_s else ""
        return _transition(run_id, ("running",), state="retrying", error=text, traceback=trace,
                           message=f"attempt failed, retrying{wait}: {text[:300]}")
    return _transition(run_id, ("running", "retrying"), state="failed", error=text, traceback=trace,
                       message="failed", **_finish_values(run_id, now))


def mark_retrying(run_id: int, retry_in_s: float | None = None) -> bool:
    """running -> retrying (a RetryTask, or the error signal was missed)."""
    wait = f" in {retry_in_s:.0f} s" if retry_in_s else ""
    return _transition(run_id, ("running",), state="retrying", message=f"retrying{wait}")


def mark_failed(run_id: int, error: str, *, from_states: tuple[str, ...] = ("queued", "running", "retrying"),
                now: dt.datetime | None = None) -> bool:
    """-> failed with ``error`` (interrupted, expired)."""
    now = now or utcnow()
    return _transition(run_id, from_states, state="failed", error=error[:ERROR_MAX], message=error[:500],
                       **_finish_values(run_id, now))


def mark_cancelled(run_id: int, reason: str = "cancelled", *, now: dt.datetime | None = None) -> bool:
    """queued/retrying -> cancelled."""
    return _transition(run_id, ("queued", "retrying"), state="cancelled", message=reason[:500],
                       finished_at=now or utcnow())


def open_periodic_run(kind: str, *, huey_id: str, worker: str | None, slot_free: bool = True,
                      now: dt.datetime | None = None) -> int | None:
    """The run of a periodic task, created when it first executes (it was never queued by a user).

    Returns the existing run on a retry; ``None`` when ``slot_free`` is False (another consumer's
    scheduler already started this period's run: nothing is recorded).
    """
    existing = find_run_id(huey_id)
    if existing is not None:
        return existing if claim(existing, worker=worker) else None
    if not slot_free:
        return None
    now = now or utcnow()
    with unit_of_work() as session:
        row = TaskRun(kind=kind, args={}, state="running", progress=0.0, attempts=1, queued_by=SCHEDULER_USER,
                      queued_at=now, started_at=now, huey_id=huey_id, worker=worker, message="started")
        session.add(row)
        session.commit()
        return row.id


def running_refresh(exclude: int | None = None) -> int | None:
    """Id of a refresh currently running (the holder of the refresh lock), if any."""
    with unit_of_work() as session:
        q = select(TaskRun.id).where(TaskRun.kind.in_(REFRESH_KINDS), TaskRun.state == "running")
        if exclude is not None:
            q = q.where(TaskRun.id != exclude)
        return session.scalar(q.order_by(TaskRun.started_at).limit(1))


# --------------------------------------------------------------------------- reading
def _filtered(q: Any, filters: RunFilters, viewer: Principal) -> Any:
    q = visible_to(q, TaskRun.queued_by, viewer, filters.user)
    if filters.kind:
        q = q.where(TaskRun.kind == filters.kind)
    if filters.state:
        q = q.where(TaskRun.state == filters.state)
    if filters.since:
        q = q.where(TaskRun.queued_at >= dt.datetime.combine(filters.since, dt.time(), dt.timezone.utc))
    if filters.until:
        end = dt.datetime.combine(filters.until + dt.timedelta(days=1), dt.time(), dt.timezone.utc)
        q = q.where(TaskRun.queued_at < end)
    return q


def list_runs(filters: RunFilters | None = None, *, kind: str | None = None, state: str | None = None,
              user: str | None = None, since: dt.date | None = None, until: dt.date | None = None,
              limit: int = 50, offset: int = 0, viewer: Any = None) -> list[TaskRunOut]:
    """Runs newest first. Analysts see only the runs they queued (``user`` is ignored for them);
    admins (and ``viewer=None``, the system) see all and may filter by ``user``."""
    filters = filters or RunFilters(kind=kind, state=state, user=user, since=since, until=until)  # type: ignore[arg-type]
    limit = max(1, min(int(limit), 1000))
    with unit_of_work() as session:
        principal = resolve(session, viewer, ALL_ROLES, action="reading task runs")
        q = _filtered(select(TaskRun), filters, principal).order_by(TaskRun.queued_at.desc(), TaskRun.id.desc())
        rows = session.scalars(q.limit(limit).offset(max(0, int(offset)))).all()
        return [_out(r, principal) for r in rows]


def count_runs(filters: RunFilters | None = None, *, viewer: Any = None) -> int:
    """How many runs :func:`list_runs` would page through."""
    filters = filters or RunFilters()
    with unit_of_work() as session:
        principal = resolve(session, viewer, ALL_ROLES, action="reading task runs")
        return int(session.scalar(_filtered(select(func.count(TaskRun.id)), filters, principal)) or 0)


def run_users(viewer: Any = None) -> list[str]:
    """Usernames that queued runs (for the admin's user filter)."""
    with unit_of_work() as session:
        principal = resolve(session, viewer, ALL_ROLES, action="reading task runs")
        q = select(TaskRun.queued_by).where(TaskRun.queued_by.is_not(None)).distinct()
        users = sorted(u for u in session.scalars(q).all() if u)
    return users if principal.is_admin else [u for u in users if u == principal.username]


def _visible_row(session: Session, run_id: int, viewer: Any) -> tuple[TaskRun, Principal]:
    """The run and the viewer checked on fresh state; a run the viewer may not see is "not found"."""
    principal = resolve(session, viewer, ALL_ROLES, action="reading task runs")
    row = (session.get(TaskRun, run_id) if id_in_range(run_id) else None)
    if row is None or not owns(principal, row.queued_by):
        raise NotFoundError(f"no task run with id {run_id}")
    return row, principal


def get_run(run_id: int, viewer: Any = None) -> TaskRunOut:
    """One run; NotFoundError for runs the viewer may not see. The traceback only for admins."""
    with unit_of_work() as session:
        return _out(*_visible_row(session, run_id, viewer))


def active_runs(viewer: Any = None, limit: int = 20) -> list[TaskRunOut]:
    """Queued, running and retrying runs (the live panel), newest first."""
    with unit_of_work() as session:
        principal = resolve(session, viewer, ALL_ROLES, action="reading task runs")
        q = _filtered(select(TaskRun), RunFilters(), principal).where(TaskRun.state.in_(("queued", "running", "retrying")))
        rows = session.scalars(q.order_by(TaskRun.queued_at.desc()).limit(limit)).all()
        return [_out(r, principal) for r in rows]


# --------------------------------------------------------------------------- user actions
def retry(run_id: int, user: Any, *, huey: Any = None) -> int:
    """Queue a failed (or interrupted) or cancelled run again; return the new run id (linked by ``retry_of_id``)."""
    with unit_of_work() as session:
        row, _ = _visible_row(session, run_id, user)
        if row.state not in ("failed", "cancelled"):
            raise ValidationFailed({"run": f"run {run_id} is {row.state}; only failed, interrupted or cancelled "
                                           "runs can be retried"})
        kind, args = row.kind, dict(row.args or {})
    return enqueue(kind, args, user=user, retry_of_id=run_id, huey=huey)


def cancel(run_id: int, user: Any, *, huey: Any = None) -> TaskRunOut:
    """Cancel a queued or scheduled (waiting to retry) run: its Huey task is revoked and will not run."""
    queue = _queue(huey)
    with unit_of_work() as session:
        row, principal = _visible_row(session, run_id, user)
        if row.state not in ("queued", "retrying"):
            raise ValidationFailed({"run": f"run {run_id} is {row.state}; only queued or scheduled runs can be "
                                           "cancelled"})
        huey_id = row.huey_id
    if huey_id:
        try:
            queue.revoke(huey_id)
        except Exception as exc:  # noqa: BLE001
            raise QueueUnavailable(_queue_error_reason(exc)) from None
    by = principal.username
    if not mark_cancelled(run_id, f"cancelled by {by}"):
        with unit_of_work() as session:
            state = session.scalar(select(TaskRun.state).where(TaskRun.id == run_id))
        if huey_id:  # it started meanwhile: do not leave a revocation behind
            queue.restore(huey_id)
        raise ValidationFailed({"run": f"run {run_id} is already {state}"})
    audit.record_now(by, "job.cancel", f"run {run_id}")
    return get_run(run_id, user)


# --------------------------------------------------------------------------- workers
_PROCESS_TOKEN = uuid.uuid4().hex[:6]


def worker_identity() -> dict[str, Any]:
    """This process as a worker: ``worker_id`` (host:pid:token, unique across restarts), hostname, pid."""
    hostname = socket.gethostname()
    pid = os.getpid()
    return {"worker_id": f"{hostname}:{pid}:{_PROCESS_TOKEN}", "hostname": hostname, "pid": pid}


def heartbeat(worker_id: str, *, hostname: str, pid: int, workers: int = 1, kind: str = "consumer",
              started_at: dt.datetime | None = None, now: dt.datetime | None = None) -> None:
    """Record that ``worker_id`` is alive now (insert or update)."""
    from sqlalchemy.exc import IntegrityError

    now = now or utcnow()
    for _ in range(2):  # two threads of one worker may insert at once: the loser updates
        with unit_of_work() as session:
            changed = cast("CursorResult[Any]", session.execute(
                update(WorkerHeartbeat).where(WorkerHeartbeat.worker_id == worker_id)
                .values(last_seen=now, workers=workers, kind=kind))).rowcount
            if not changed:
                session.add(WorkerHeartbeat(worker_id=worker_id, hostname=hostname, pid=pid, workers=workers,
                                            kind=kind, started_at=started_at or now, last_seen=now))
            try:
                session.commit()
                return
            except IntegrityError:
                session.rollback()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def _alive(row: WorkerHeartbeat, now: dt.datetime, stale_after_s: float) -> bool:
    if (now - _as_utc(row.last_seen)).total_seconds() > stale_after_s:
        return False
    if row.hostname == socket.gethostname() and not _pid_alive(row.pid):
        return False  # killed on this host: no need to wait for the heartbeat to go stale
    return True


def workers_status(*, now: dt.datetime | None = None, stale_after_s: float = HEARTBEAT_STALE_S,
                   include_dead_for_s: float = 3600.0) -> list[WorkerOut]:
    """Workers seen within ``include_dead_for_s`` seconds, most recent first, each with ``alive``."""
    now = now or utcnow()
    with unit_of_work() as session:
        rows = session.scalars(select(WorkerHeartbeat).where(
            WorkerHeartbeat.last_seen >= now - dt.timedelta(seconds=include_dead_for_s))
            .order_by(WorkerHeartbeat.last_seen.desc())).all()
        return [WorkerOut(worker_id=r.worker_id, hostname=r.hostname, pid=r.pid, workers=r.workers, kind=r.kind,
                          started_at=r.started_at, last_seen=r.last_seen, alive=_alive(r, now, stale_after_s),
                          age_s=max(0.0, (now - _as_utc(r.last_seen)).total_seconds()))
                for r in rows]


def _waiting_huey_ids(queue: JobQueue) -> set[str] | None:
    """Ids of messages still in the queue or the schedule; None if the queue cannot be read."""
    try:
        return queue.waiting_ids()
    except Exception as exc:  # noqa: BLE001 - one line: the queue being down is reported by the worker
        log.warning("could not read the queue while reconciling: %s", _queue_error_reason(exc))
        return None


def reconcile_interrupted(now: dt.datetime | None = None, *, current_worker: str | None = None,
                          stale_after_s: float = HEARTBEAT_STALE_S, huey: Any = None) -> list[int]:
    """Mark runs left behind by dead workers as failed with error ``"interrupted: ..."``; return their ids.

    * ``running`` runs whose worker is dead (see the module docstring), or that have no worker at all;
    * ``retrying`` runs whose worker is dead *and* whose Huey task is no longer waiting in the queue or
      the schedule (a Redis or SQLite schedule survives a worker; such runs still retry).

    ``current_worker`` (the worker calling this at start-up) counts as alive. Workers call this when they
    start and every few heartbeats. Locks need no clean-up: a killed worker's locks die with its database
    connection or lock file (:mod:`core.infra.locks`).
    """
    now = now or utcnow()
    queue = _queue(huey)
    alive = {w.worker_id for w in workers_status(now=now, stale_after_s=stale_after_s) if w.alive}
    if current_worker:
        alive.add(current_worker)
    with unit_of_work() as session:
        rows = session.execute(select(TaskRun.id, TaskRun.state, TaskRun.worker, TaskRun.huey_id, TaskRun.kind,
                                      TaskRun.args)
                               .where(TaskRun.state.in_(("running", "retrying")))).all()
    orphans = [r for r in rows if r.worker not in alive]
    waiting: set[str] | None = None
    if any(r.state == "retrying" for r in orphans):
        waiting = _waiting_huey_ids(queue)
    marked: list[int] = []
    for r in orphans:
        if r.state == "retrying" and (waiting is None or r.huey_id in waiting):
            continue
        reason = f"interrupted: worker {r.worker} stopped" if r.worker else "interrupted: no worker recorded"
        if mark_failed(r.id, reason, from_states=(r.state,), now=now):
            marked.append(r.id)
            log.warning("run %s marked failed (%s)", r.id, reason)
            if r.kind == "report":
                _fail_interrupted_report(r.args, reason, now)
    return marked


def _fail_interrupted_report(args: Any, reason: str, now: dt.datetime,
                             statuses: tuple[str, ...] = ("running",)) -> None:
    """The report of an interrupted (or lost) report run: ``running`` (or ``queued``) -> ``failed`` with the
    reason (it would otherwise be shown as running or queued forever; a retry generates it again)."""
    report_id = (args or {}).get("report_id") if isinstance(args, dict) else None
    if report_id is None:
        return
    with unit_of_work() as session:
        session.execute(update(Report).where(Report.id == report_id, Report.status.in_(statuses))
                        .values(status="failed", error=reason[:ERROR_MAX], finished_at=now))
        session.commit()


#: A queued run younger than this is never called lost (``enqueue`` commits the row just before it sends the
#: message, and a busy queue may take a moment to show it).
LOST_GRACE_S = 30.0
#: A queued run must be missing from the queue on two looks at least this far apart before it is lost.
LOST_CONFIRM_S = 10.0
LOST_ERROR = "lost: the queue message was not found"


class LostMessageWatch:
    """Queued runs whose queue message is gone (Redis flushed or restarted without persistence, a worker
    killed between taking the message and starting the run) are marked failed: ``"lost: the queue message
    was not found ..."``, so they never stay "queued" forever. Retry queues the same work again.

    Why failed rather than re-queued: a message can be in flight (taken by a worker that has not yet marked
    the run running) for a moment; re-queueing such a run would run it twice, whereas a failed run is
    refused by a late worker (:func:`claim` only starts queued runs), so marking it lost is always safe.

    A run is lost when it is still ``queued``, was queued more than ``grace_s`` ago, and its message is
    neither pending nor scheduled on two looks at least ``confirm_s`` apart. The first look is remembered in
    this object: a worker keeps one and calls :meth:`check` every heartbeat (5 s), so a lost message is
    reconciled within ``grace_s + confirm_s + 2 beats`` (under a minute). Runs queued only a moment ago are
    never touched. When the queue cannot be read nothing is decided.
    """

    def __init__(self, *, grace_s: float = LOST_GRACE_S, confirm_s: float = LOST_CONFIRM_S) -> None:
        self.grace_s = grace_s
        self.confirm_s = confirm_s
        self.suspects: dict[int, dt.datetime] = {}

    def check(self, now: dt.datetime | None = None, *, huey: Any = None) -> list[int]:
        """Look once; mark the runs confirmed lost as failed and return their ids."""
        now = _as_utc(now or utcnow())
        queue = _queue(huey)
        if queue.immediate:
            return []
        with unit_of_work() as session:
            rows = session.execute(select(TaskRun.id, TaskRun.huey_id, TaskRun.queued_at, TaskRun.kind,
                                          TaskRun.args)
                                   .where(TaskRun.state == "queued",
                                          TaskRun.queued_at <= now - dt.timedelta(seconds=self.grace_s))).all()
        if not rows:
            self.suspects.clear()
            return []
        waiting = _waiting_huey_ids(queue)
        if waiting is None:
            return []
        missing = {r.id: r for r in rows if r.huey_id not in waiting}
        self.suspects = {run_id: seen for run_id, seen in self.suspects.items() if run_id in missing}
        lost: list[int] = []
        for run_id, r in missing.items():
            first_seen = self.suspects.setdefault(run_id, now)
            if (now - first_seen).total_seconds() < self.confirm_s:
                continue
            del self.suspects[run_id]
            reason = (f"{LOST_ERROR} (queued {_as_utc(r.queued_at):%Y-%m-%d %H:%M:%S} UTC, no worker took it); "
                      "retry the run to queue it again")
            if mark_failed(run_id, reason, from_states=("queued",), now=now):
                lost.append(run_id)
                log.warning("run %s marked failed (%s)", run_id, LOST_ERROR)
                if r.kind == "report":
                    _fail_interrupted_report(r.args, reason, now, statuses=("queued",))
        return lost


# --------------------------------------------------------------------------- schedule and queue
def periodic_jobs() -> list[tuple[str, str, str]]:
    """``(kind, cron, description)`` of every periodic job (cron fields in UTC)."""
    settings = get_settings()
    return [
        ("scheduled_refresh", settings.refresh_cron, "refresh prices, then recompute the active config"),
        ("retention", RETENTION_CRON,
         f"delete task runs and report files older than {settings.retention_days} days"),
    ]


def cron_validator(cron: str):  # type: ignore[no-untyped-def]
    """Huey's crontab test for a five-field cron string (minute hour day month weekday)."""
    from huey import crontab

    minute, hour, day, month, weekday = cron.split()
    return crontab(minute=minute, hour=hour, day=day, month=month, day_of_week=weekday, strict=True)


def next_run(cron: str, now: dt.datetime | None = None, *, horizon_days: int = 35) -> dt.datetime | None:
    """First minute strictly after ``now`` (UTC) that ``cron`` matches; None within the horizon."""
    check = cron_validator(cron)
    now = _as_utc(now or utcnow())
    t = now.replace(second=0, microsecond=0, tzinfo=None) + dt.timedelta(minutes=1)
    end = t + dt.timedelta(days=horizon_days)
    while t < end:
        if check(t):
            return t.replace(tzinfo=dt.timezone.utc)
        t += dt.timedelta(minutes=1)
    return None


def schedule(now: dt.datetime | None = None) -> list[ScheduleEntry]:
    """The periodic jobs with their next run time (UTC)."""
    return [ScheduleEntry(kind=kind, cron=cron, description=text, next_run_at=next_run(cron, now))
            for kind, cron, text in periodic_jobs()]


def queue_depth(*, huey: Any = None) -> QueueDepth:
    """How many Huey tasks wait: ready to run (pending) and waiting for their time (scheduled)."""
    queue = _queue(huey)
    try:
        return QueueDepth(backend=queue.backend, pending=queue.pending_count(), scheduled=queue.scheduled_count())
    except Exception as exc:  # noqa: BLE001
        raise QueueUnavailable(_queue_error_reason(exc)) from None


# --------------------------------------------------------------------------- retention
def clean_up(*, now: dt.datetime | None = None, retention_days: int | None = None) -> dict[str, int]:
    """Delete finished runs, reports (rows and files) and worker heartbeats older than the retention period.

    Runs still queued, running or retrying are never deleted. Returns counts by what was removed.
    """
    settings = get_settings()
    now = now or utcnow()
    days = retention_days or settings.retention_days
    cutoff = now - dt.timedelta(days=days)
    from core.services.reports import cleanup_expired

    # reports still queued or running are kept; the reports service owns that rule
    removed = cleanup_expired(now=now, retention_days=days)
    n_reports, files = removed["reports"], removed["files"]
    with unit_of_work() as session:
        n_runs = cast("CursorResult[Any]", session.execute(delete(TaskRun).where(
            TaskRun.state.in_(FINAL_STATES),
            or_(TaskRun.finished_at < cutoff, (TaskRun.finished_at.is_(None)) & (TaskRun.queued_at < cutoff)),
        ))).rowcount
        n_workers = cast("CursorResult[Any]", session.execute(delete(WorkerHeartbeat).where(
            WorkerHeartbeat.last_seen < now - dt.timedelta(days=1)))).rowcount
        session.commit()
    if settings.reports_dir and settings.reports_dir.is_dir():
        for path in settings.reports_dir.rglob("*"):
            if path.is_file() and dt.datetime.fromtimestamp(path.stat().st_mtime, dt.timezone.utc) < cutoff:
                files += int(_remove_file(path))
    summary = {"runs": int(n_runs or 0), "reports": int(n_reports or 0), "files": files,
               "heartbeats": int(n_workers or 0), "retention_days": days}
    audit.record_now(SCHEDULER_USER, "job.retention", None, summary)
    return summary


def _remove_file(path: Path) -> bool:
    try:
        path.unlink()
        return True
    except FileNotFoundError:
        return False
    except OSError:
        log.warning("could not delete %s", path, exc_info=True)
        return False


# --------------------------------------------------------------------------- job helpers
def refresh_provider(name: str) -> Any:
    """The provider a refresh job uses: for ``demo``, sized to the stored universe.

    The stored universe may hold the synthetic ``SYNnnnn`` assets of a larger demo seed
    (``seed-demo --assets 500 --years 10``); the demo provider is built with that many assets and
    from the first stored date, so a (full) refresh covers everything already stored.
    """
    from core.infra.providers.registry import get_provider

    if name != "demo":
        return get_provider(name)
    from core.infra.providers.demo import SEED_UNIVERSE_SIZE, DemoProvider
    from core.models import Asset, Price

    with unit_of_work() as session:
        synthetic = session.scalars(select(Asset.symbol).where(Asset.symbol.like("SYN%"))).all()
        first = session.scalar(select(func.min(Price.date)))
    numbers = [int(s[3:]) for s in synthetic if s[3:].isdigit()]
    start = min(first, dt.date(2018, 1, 1)) if first else dt.date(2018, 1, 1)
    return DemoProvider(seed=get_settings().demo_seed, n_assets=SEED_UNIVERSE_SIZE + max(numbers, default=0),
                        start=start)


def queued_by(run_id: int) -> str | None:
    with unit_of_work() as session:
        return session.scalar(select(TaskRun.queued_by).where(TaskRun.id == run_id))
