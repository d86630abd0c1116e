"""Task runs: every background job as a row in ``task_runs``, from queueing to its last state.

Huey has no monitoring of its own; this module is it. The life of a run (states: :class:`TaskState`)::

    enqueue()  -> queued     (row committed first, then the queue message; a failure removes the row)
    executing  -> running    (Huey signal in the worker, and :func:`claim` inside the task as a fallback)
    progress() -> running, progress 0..1 rising, with a message
    complete   -> succeeded  (result summary stored by the task)
    task body  -> succeeded_with_warnings (the work was done but the task reports warnings, e.g. a refresh
                              that skipped symbols its provider does not know; see :func:`mark_succeeded`)
    error      -> retrying   (transient error and retries left; the Huey task waits in the schedule)
               -> failed     (permanent error, or no retries left; error for everyone, traceback for admins)
    task body  -> skipped    (another refresh holds the refresh lock; the reason, naming the holder, is the message)
    cancel()   -> cancelled  (queued or scheduled: the queue message is revoked)
    lost or interrupted -> failed (its worker died, or its message vanished: :mod:`core.services.workers`)

Every transition is a conditional UPDATE (``WHERE state IN (...)``) so that signals arriving
from several processes, or twice, can never move a run backwards (a skipped or cancelled run
stays so). State is written from whichever process runs the task, so it is right whether the
consumer is a thread in the app (SqliteHuey) or a ``huey_consumer`` on another host (RedisHuey).

Functions take ``huey=`` (default: the process's queue, wired by ``jobs`` through
:mod:`core.services.ports`; core never imports ``jobs``) so tests can pass a queue of their own (an
:class:`~jobs.queue.InlineQueue`, or a Huey instance in immediate mode); times are UTC and passed in as
``now=`` where the clock matters.
"""

from __future__ import annotations

import datetime as dt
import logging
import traceback as tb_module
import uuid
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from pydantic import ValidationError
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from core.config import get_settings
from core.db import unit_of_work, write_lock
from core.errors import NotFoundError, ValidationFailed, error_text, one_line
from core.infra import ratelimit
from core.models import AuditEvent, Report, StrategyConfigRow, Sweep, TaskRun, utcnow
from core.models.base import id_in_range
from core.schemas.task import (
    ACTIVE_STATES,
    ALL_KINDS,
    PARAMS_BY_KIND,
    PERIODIC_KINDS,
    WAITING_STATES,
    QueueDepth,
    RunFilters,
    TaskRunOut,
    TaskState,
)
from core.services import audit
from core.services.access import ADMIN_ONLY, ALL_ROLES, Principal, owns, resolve, visible_to
from core.services.ports import JobQueue, QueueUnavailable, job_queue

if TYPE_CHECKING:
    # Session.execute() returns a CursorResult for INSERT/UPDATE/DELETE, but SQLAlchemy types it as Result
    from sqlalchemy import CursorResult

log = logging.getLogger(__name__)

#: Kinds that take the refresh lock (:data:`core.infra.locks.REFRESH`): one refresh at a time.
REFRESH_KINDS = ("refresh", "scheduled_refresh")
#: Who queues periodic runs.
SCHEDULER_USER = "scheduler"
#: Longest error message kept on a run (the traceback keeps the rest).
ERROR_MAX = 2000
#: Who may queue each kind (checked on fresh state): price refreshes change the data everyone sees.
KIND_ROLES: dict[str, tuple[str, ...]] = {
    "refresh": ADMIN_ONLY,
    "scheduled_refresh": ADMIN_ONLY,
    "scheduled_compute": ADMIN_ONLY,
    "retention": ADMIN_ONLY,
}


# --------------------------------------------------------------------------- helpers
def as_utc(value: dt.datetime) -> dt.datetime:
    """``value`` as an aware UTC time (SQLite hands back naive UTC)."""
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)


def jsonable(value: Any) -> Any:
    """``value`` made JSON-ready: mappings and sequences recursively, dates as ISO text, numpy numbers as Python
    numbers, non-finite floats as None (PostgreSQL's JSON refuses NaN), anything else as its text."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    return str(value)


def _out(row: TaskRun, principal: Principal) -> TaskRunOut:
    out = TaskRunOut.model_validate(row)
    if not principal.is_admin:
        out.traceback = None
    return out


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


#: The row a run of each kind works on, and the argument naming it. The row's ``task_run_id`` names the run working
#: on it now: set when its first run is queued (:func:`enqueue_for`) and again by every retry (:func:`retry`).
WORK_ROWS: dict[str, tuple[Any, str]] = {"report": (Report, "report_id"), "sweep": (Sweep, "sweep_id")}
#: How a report or sweep that a run is working on is said to be busy.
_BUSY = {"report": "queued", "sweep": "queued or running"}


def _check_references(session: Session, kind: str, args: dict[str, Any], principal: Principal) -> None:
    """Refuse ids that do not exist or that the actor may not see, before anything is written.

    A report or a sweep is worked on only for its owner (or an admin), and never by two runs at once: one whose
    run is still queued or running is "already queued" (a double click, Retry pressed in two tabs, or by the owner
    and an administrator, queues one run)."""
    if kind == "compute" and args.get("config_id") is not None:
        if (session.get(StrategyConfigRow, args["config_id"]) if id_in_range(args["config_id"]) else None) is None:
            raise ValidationFailed({"config_id": f"no strategy config with id {args['config_id']}"})
    if kind in WORK_ROWS:
        model, key = WORK_ROWS[kind]
        row = session.scalar(select(model).where(model.id == args[key]).with_for_update())
        if row is None or not owns(principal, row.owner):
            raise ValidationFailed({key: f"no {kind} with id {args[key]}"})
        busy = session.scalar(
            select(TaskRun.id)
            .where(
                TaskRun.kind == kind,
                TaskRun.state.in_(ACTIVE_STATES),
                or_(TaskRun.id == row.task_run_id, TaskRun.args[key].as_integer() == row.id),
            )
            .limit(1)
        )
        if busy is not None:
            raise ValidationFailed({key: f"{kind} {row.id} is already {_BUSY[kind]} (run {busy})"})


# --------------------------------------------------------------------------- queueing
def enqueue(
    kind: str,
    params: dict[str, Any] | None = None,
    *,
    user: Any = None,
    retry_of_id: int | None = None,
    huey: Any = None,
) -> int:
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
        principal = resolve(session, user, KIND_ROLES.get(kind, ALL_ROLES), action=f"queuing {kind} jobs")
        ratelimit.hit("job", principal)  # per user (core/infra/ratelimit.py); the system is not limited
    queue = job_queue(huey)
    _ping(queue)
    huey_id = str(uuid.uuid4())
    with unit_of_work() as session:
        write_lock(session)
        principal = resolve(session, user, KIND_ROLES.get(kind, ALL_ROLES), action=f"queuing {kind} jobs", lock=True)
        username = None if principal.is_system and user is None else principal.username
        _check_references(session, kind, args, principal)
        row = TaskRun(
            kind=kind,
            args=args,
            state=TaskState.QUEUED,
            progress=0.0,
            attempts=0,
            queued_by=username,
            huey_id=huey_id,
            retry_of_id=retry_of_id,
            message="waiting for a worker",
        )
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
        reason = one_line(exc, limit=None)
        with unit_of_work() as session:
            session.execute(delete(TaskRun).where(TaskRun.id == run_id))
            session.execute(
                update(AuditEvent)
                .where(AuditEvent.id == event_id)
                .values(outcome="error", message=f"queue unavailable: {reason}")
            )
            session.commit()
        log.warning("could not queue %s job: %s", kind, reason)
        raise QueueUnavailable(reason) from None
    return run_id


def enqueue_for(
    kind: str,
    args: dict[str, Any],
    *,
    user: Any,
    huey: Any = None,
    row: Any,
    row_id: int,
    audit_event_id: int,
) -> int:
    """Queue the job that works on a row just stored (a report, a sweep) and link the run to it (``task_run_id``).

    When the queue (or a job rate limit) refuses, the row is deleted and its audit event (written with the row)
    is marked ``error`` "not queued: ...", so nothing is left behind for a job that never ran; the refusal is
    raised again."""
    try:
        run_id = enqueue(kind, args, user=user, huey=huey)
    except Exception as exc:
        with unit_of_work() as session:
            session.execute(delete(row).where(row.id == row_id))
            session.execute(
                update(AuditEvent)
                .where(AuditEvent.id == audit_event_id)
                .values(outcome="error", message=f"not queued: {error_text(exc)}"[:500])
            )
            session.commit()
        raise
    with unit_of_work() as session:
        session.execute(update(row).where(row.id == row_id).values(task_run_id=run_id))
        session.commit()
    return run_id


def _ping(queue: JobQueue) -> None:
    """Fail fast (before writing) when the queue is down."""
    try:
        queue.ping()
    except Exception as exc:  # noqa: BLE001 - redis raises several connection errors
        raise QueueUnavailable(one_line(exc, limit=None)) from None


# --------------------------------------------------------------------------- transitions
def _transition(run_id: int, from_states: tuple[TaskState, ...], **values: Any) -> bool:
    with unit_of_work() as session:
        result = session.execute(
            update(TaskRun).where(TaskRun.id == run_id, TaskRun.state.in_(from_states)).values(**values)
        )
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
        if row is None or row.state not in WAITING_STATES:
            return False
        row.state = TaskState.RUNNING
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
    if state == TaskState.RUNNING:
        return True
    if state in WAITING_STATES:
        return mark_running(run_id, worker=worker)
    return False


def progress(run_id: int, fraction: float, message: str | None = None) -> None:
    """Record progress (a fraction 0..1, never moving backwards within an attempt) of a running run."""
    fraction = min(max(float(fraction), 0.0), 1.0)
    with unit_of_work() as session:
        session.execute(
            update(TaskRun)
            .where(TaskRun.id == run_id, TaskRun.state == TaskState.RUNNING)
            .values(
                progress=func.max(TaskRun.progress, fraction)
                if get_settings().is_sqlite
                else func.greatest(TaskRun.progress, fraction),
                message=(message or "")[:500] or None,
            )
        )
        session.commit()


def store_result(run_id: int, result: dict[str, Any] | None) -> None:
    """Keep the task's result summary (JSON-ready) on the run."""
    with unit_of_work() as session:
        session.execute(update(TaskRun).where(TaskRun.id == run_id).values(result=result))
        session.commit()


def _finish_values(run_id: int, now: dt.datetime) -> dict[str, Any]:
    with unit_of_work() as session:
        started = session.scalar(select(TaskRun.started_at).where(TaskRun.id == run_id))
    duration = (now - as_utc(started)).total_seconds() if started else None
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
        return _transition(
            run_id,
            (TaskState.RUNNING,),
            state=TaskState.SUCCEEDED_WITH_WARNINGS,
            progress=1.0,
            error=None,
            message=f"succeeded with {len(warnings)} warning(s): {first}{more}"[:500],
            **_finish_values(run_id, now),
        )
    return _transition(
        run_id, (TaskState.RUNNING,), state=TaskState.SUCCEEDED, progress=1.0, error=None, **_finish_values(run_id, now)
    )


def mark_skipped(run_id: int, reason: str, *, now: dt.datetime | None = None) -> bool:
    """queued/running -> skipped with the reason as message and error."""
    now = now or utcnow()
    return _transition(
        run_id,
        (TaskState.QUEUED, TaskState.RUNNING),
        state=TaskState.SKIPPED,
        message=reason[:500],
        error=reason[:ERROR_MAX],
        **_finish_values(run_id, now),
    )


def record_error(
    run_id: int,
    exc: BaseException,
    *,
    will_retry: bool,
    retry_in_s: float | None = None,
    now: dt.datetime | None = None,
) -> bool:
    """running -> retrying (when ``will_retry``) or failed, keeping the error and its traceback."""
    now = now or utcnow()
    text = error_text(exc, limit=ERROR_MAX)
    trace = "".join(tb_module.format_exception(type(exc), exc, exc.__traceback__))
    if will_retry:
        wait = f" in {retry_in_s:.0f} s" if retry_in_s else ""
        return _transition(
            run_id,
            (TaskState.RUNNING,),
            state=TaskState.RETRYING,
            error=text,
            traceback=trace,
            message=f"attempt failed, retrying{wait}: {text[:300]}",
        )
    return _transition(
        run_id,
        (TaskState.RUNNING, TaskState.RETRYING),
        state=TaskState.FAILED,
        error=text,
        traceback=trace,
        message="failed",
        **_finish_values(run_id, now),
    )


def mark_retrying(run_id: int, retry_in_s: float | None = None) -> bool:
    """running -> retrying (a RetryTask, or the error signal was missed)."""
    wait = f" in {retry_in_s:.0f} s" if retry_in_s else ""
    return _transition(run_id, (TaskState.RUNNING,), state=TaskState.RETRYING, message=f"retrying{wait}")


def mark_failed(
    run_id: int, error: str, *, from_states: tuple[TaskState, ...] = ACTIVE_STATES, now: dt.datetime | None = None
) -> bool:
    """-> failed with ``error`` (interrupted, expired)."""
    now = now or utcnow()
    return _transition(
        run_id,
        from_states,
        state=TaskState.FAILED,
        error=error[:ERROR_MAX],
        message=error[:500],
        **_finish_values(run_id, now),
    )


def mark_cancelled(run_id: int, reason: str = "cancelled", *, now: dt.datetime | None = None) -> bool:
    """queued/retrying -> cancelled."""
    return _transition(
        run_id, WAITING_STATES, state=TaskState.CANCELLED, message=reason[:500], finished_at=now or utcnow()
    )


def open_periodic_run(
    kind: str, *, huey_id: str, worker: str | None, slot_free: bool = True, now: dt.datetime | None = None
) -> int | None:
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
        row = TaskRun(
            kind=kind,
            args={},
            state=TaskState.RUNNING,
            progress=0.0,
            attempts=1,
            queued_by=SCHEDULER_USER,
            queued_at=now,
            started_at=now,
            huey_id=huey_id,
            worker=worker,
            message="started",
        )
        session.add(row)
        session.commit()
        return row.id


def running_refresh(exclude: int | None = None) -> int | None:
    """Id of a refresh currently running (the holder of the refresh lock), if any."""
    with unit_of_work() as session:
        q = select(TaskRun.id).where(TaskRun.kind.in_(REFRESH_KINDS), TaskRun.state == TaskState.RUNNING)
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


def list_runs(
    filters: RunFilters | None = None,
    *,
    kind: str | None = None,
    state: str | None = None,
    user: str | None = None,
    since: dt.date | None = None,
    until: dt.date | None = None,
    limit: int = 50,
    offset: int = 0,
    viewer: Any = None,
) -> list[TaskRunOut]:
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
    row = session.get(TaskRun, run_id) if id_in_range(run_id) else None
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
        q = _filtered(select(TaskRun), RunFilters(), principal).where(TaskRun.state.in_(ACTIVE_STATES))
        rows = session.scalars(q.order_by(TaskRun.queued_at.desc()).limit(limit)).all()
        return [_out(r, principal) for r in rows]


# --------------------------------------------------------------------------- user actions
def retry(run_id: int, user: Any, *, huey: Any = None) -> int:
    """Queue a failed (or interrupted) or cancelled run again; return the new run id (linked by ``retry_of_id``)."""
    with unit_of_work() as session:
        row, _ = _visible_row(session, run_id, user)
        if row.state not in (TaskState.FAILED, TaskState.CANCELLED):
            raise ValidationFailed(
                {"run": f"run {run_id} is {row.state}; only failed, interrupted or cancelled runs can be retried"}
            )
        kind, args = row.kind, dict(row.args or {})
    new_id = enqueue(kind, args, user=user, retry_of_id=run_id, huey=huey)
    if kind in WORK_ROWS:
        _link_retry(kind, args, new_id)
    return new_id


def _link_retry(kind: str, args: dict[str, Any], run_id: int) -> None:
    """The report or sweep a retry works on names the new run (a cancel on its page reaches that run); a failed
    sweep shows queued again (it is: the run resumes it). A worker that took the run first already linked it
    (:func:`core.services.sweeps.drive`), and a run that already ended (an inline queue) is not named again."""
    model, key = WORK_ROWS[kind]
    with unit_of_work() as session:
        if session.scalar(select(TaskRun.state).where(TaskRun.id == run_id)) not in ACTIVE_STATES:
            return
        session.execute(update(model).where(model.id == args.get(key)).values(task_run_id=run_id))
        if model is Sweep:
            session.execute(
                update(Sweep)
                .where(Sweep.id == args.get(key), Sweep.status == "failed")
                .values(status="queued", error=None, finished_at=None)
            )
        session.commit()


def cancel(run_id: int, user: Any, *, huey: Any = None) -> TaskRunOut:
    """Cancel a queued or scheduled (waiting to retry) run: its Huey task is revoked and will not run."""
    queue = job_queue(huey)
    with unit_of_work() as session:
        row, principal = _visible_row(session, run_id, user)
        if row.state not in WAITING_STATES:
            raise ValidationFailed(
                {"run": f"run {run_id} is {row.state}; only queued or scheduled runs can be cancelled"}
            )
        huey_id = row.huey_id
    if huey_id:
        try:
            queue.revoke(huey_id)
        except Exception as exc:  # noqa: BLE001
            raise QueueUnavailable(one_line(exc, limit=None)) from None
    by = principal.username
    if not mark_cancelled(run_id, f"cancelled by {by}"):
        with unit_of_work() as session:
            state = session.scalar(select(TaskRun.state).where(TaskRun.id == run_id))
        if huey_id:  # it started meanwhile: do not leave a revocation behind
            queue.restore(huey_id)
        raise ValidationFailed({"run": f"run {run_id} is already {state}"})
    audit.record_now(by, "job.cancel", f"run {run_id}")
    return get_run(run_id, user)


def queue_depth(*, huey: Any = None) -> QueueDepth:
    """How many Huey tasks wait: ready to run (pending) and waiting for their time (scheduled)."""
    queue = job_queue(huey)
    try:
        return QueueDepth(backend=queue.backend, pending=queue.pending_count(), scheduled=queue.scheduled_count())
    except Exception as exc:  # noqa: BLE001
        raise QueueUnavailable(one_line(exc, limit=None)) from None


def queued_by(run_id: int) -> str | None:
    with unit_of_work() as session:
        return session.scalar(select(TaskRun.queued_by).where(TaskRun.id == run_id))
