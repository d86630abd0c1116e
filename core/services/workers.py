"""Workers: consumer processes, their heartbeats, and the runs they leave behind when they die.

Each consumer process writes a :class:`~core.models.WorkerHeartbeat` every :data:`HEARTBEAT_INTERVAL_S` seconds
(:mod:`jobs.worker` runs the beat). A worker is *dead* when its heartbeat is older than :data:`HEARTBEAT_STALE_S`,
or when it ran on this host and its pid no longer exists.

Runs never stay in a state nobody will move them out of:

* :func:`reconcile_interrupted` marks the ``running`` (and no longer scheduled ``retrying``) runs of dead
  workers failed with error ``"interrupted: ..."``;
* :class:`LostMessageWatch` marks ``queued`` runs whose queue message is gone failed with error
  ``"lost: the queue message was not found"``.

A report or sweep such a run was making is marked failed with it (a sweep is resumed by retrying its run).

Both move runs through :func:`core.services.runs.mark_failed` (a conditional UPDATE: a run that moved on meanwhile
is left alone). Times are UTC and passed in as ``now=`` where the clock matters.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import uuid
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from core.db import unit_of_work
from core.errors import one_line
from core.models import TaskRun, WorkerHeartbeat, utcnow
from core.schemas.task import TaskState, WorkerOut
from core.services.ports import JobQueue, job_queue
from core.services.runs import ERROR_MAX, WORK_ROWS, as_utc, mark_failed

if TYPE_CHECKING:
    from sqlalchemy import CursorResult

log = logging.getLogger(__name__)

#: Seconds between two heartbeats of a worker.
HEARTBEAT_INTERVAL_S = 5.0
#: A worker whose last heartbeat is older than this is dead (three missed beats).
HEARTBEAT_STALE_S = 15.0


_PROCESS_TOKEN = uuid.uuid4().hex[:6]


def worker_identity() -> dict[str, Any]:
    """This process as a worker: ``worker_id`` (host:pid:token, unique across restarts), hostname, pid."""
    hostname = socket.gethostname()
    pid = os.getpid()
    return {"worker_id": f"{hostname}:{pid}:{_PROCESS_TOKEN}", "hostname": hostname, "pid": pid}


def heartbeat(
    worker_id: str,
    *,
    hostname: str,
    pid: int,
    workers: int = 1,
    kind: str = "consumer",
    started_at: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> None:
    """Record that ``worker_id`` is alive now (insert or update)."""
    now = now or utcnow()
    for _ in range(2):  # two threads of one worker may insert at once: the loser updates
        with unit_of_work() as session:
            changed = cast(
                "CursorResult[Any]",
                session.execute(
                    update(WorkerHeartbeat)
                    .where(WorkerHeartbeat.worker_id == worker_id)
                    .values(last_seen=now, workers=workers, kind=kind)
                ),
            ).rowcount
            if not changed:
                session.add(
                    WorkerHeartbeat(
                        worker_id=worker_id,
                        hostname=hostname,
                        pid=pid,
                        workers=workers,
                        kind=kind,
                        started_at=started_at or now,
                        last_seen=now,
                    )
                )
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
    if (now - as_utc(row.last_seen)).total_seconds() > stale_after_s:
        return False
    if row.hostname == socket.gethostname() and not _pid_alive(row.pid):
        return False  # killed on this host: no need to wait for the heartbeat to go stale
    return True


def workers_status(
    *, now: dt.datetime | None = None, stale_after_s: float = HEARTBEAT_STALE_S, include_dead_for_s: float = 3600.0
) -> list[WorkerOut]:
    """Workers seen within ``include_dead_for_s`` seconds, most recent first, each with ``alive``."""
    now = now or utcnow()
    with unit_of_work() as session:
        rows = session.scalars(
            select(WorkerHeartbeat)
            .where(WorkerHeartbeat.last_seen >= now - dt.timedelta(seconds=include_dead_for_s))
            .order_by(WorkerHeartbeat.last_seen.desc())
        ).all()
        return [
            WorkerOut(
                worker_id=r.worker_id,
                hostname=r.hostname,
                pid=r.pid,
                workers=r.workers,
                kind=r.kind,
                started_at=r.started_at,
                last_seen=r.last_seen,
                alive=_alive(r, now, stale_after_s),
                age_s=max(0.0, (now - as_utc(r.last_seen)).total_seconds()),
            )
            for r in rows
        ]


def _waiting_huey_ids(queue: JobQueue) -> set[str] | None:
    """Ids of messages still in the queue or the schedule; None if the queue cannot be read."""
    try:
        return queue.waiting_ids()
    except Exception as exc:  # noqa: BLE001 - one line: the queue being down is reported by the worker
        log.warning("could not read the queue while reconciling: %s", one_line(exc, limit=None))
        return None


def reconcile_interrupted(
    now: dt.datetime | None = None,
    *,
    current_worker: str | None = None,
    stale_after_s: float = HEARTBEAT_STALE_S,
    huey: Any = None,
) -> list[int]:
    """Mark runs left behind by dead workers as failed with error ``"interrupted: ..."``; return their ids.

    * ``running`` runs whose worker is dead (see the module docstring), or that have no worker at all;
    * ``retrying`` runs whose worker is dead *and* whose Huey task is no longer waiting in the queue or
      the schedule (a Redis or SQLite schedule survives a worker; such runs still retry).

    ``current_worker`` (the worker calling this at start-up) counts as alive. Workers call this when they
    start and every few heartbeats. Locks need no clean-up: a killed worker's locks die with its database
    connection or lock file (:mod:`core.infra.locks`).
    """
    now = now or utcnow()
    queue = job_queue(huey)
    alive = {w.worker_id for w in workers_status(now=now, stale_after_s=stale_after_s) if w.alive}
    if current_worker:
        alive.add(current_worker)
    with unit_of_work() as session:
        rows = session.execute(
            select(TaskRun.id, TaskRun.state, TaskRun.worker, TaskRun.huey_id, TaskRun.kind, TaskRun.args).where(
                TaskRun.state.in_((TaskState.RUNNING, TaskState.RETRYING))
            )
        ).all()
    orphans = [r for r in rows if r.worker not in alive]
    waiting: set[str] | None = None
    if any(r.state == TaskState.RETRYING for r in orphans):
        waiting = _waiting_huey_ids(queue)
    marked: list[int] = []
    for r in orphans:
        if r.state == TaskState.RETRYING and (waiting is None or r.huey_id in waiting):
            continue
        reason = f"interrupted: worker {r.worker} stopped" if r.worker else "interrupted: no worker recorded"
        if mark_failed(r.id, reason, from_states=(TaskState(r.state),), now=now):
            marked.append(r.id)
            log.warning("run %s marked failed (%s)", r.id, reason)
            _fail_work_of(r.id, r.kind, r.args, reason, now)
    return marked


#: What a person reads besides an interrupted run's own reason, per kind (a sweep is resumed by retrying its run).
_HINTS: dict[str, str] = {
    "sweep": "; retry its run on the Tasks page to finish the sweep (variants stored are kept)",
}


def _fail_work_of(
    run_id: int,
    kind: str,
    args: Any,
    reason: str,
    now: dt.datetime,
    statuses: tuple[str, ...] = ("queued", "running"),
) -> None:
    """The report or sweep of an interrupted (or lost) run: ``statuses`` -> ``failed`` with the reason, when that
    run is the one working on it (another run, a retry, may be). It would otherwise be shown as running or queued
    forever (a sweep whose parent run died also keeps its helpers from claiming more chunks: a retry of the run
    resumes it, re-queueing the dead worker's chunk)."""
    model, key = WORK_ROWS.get(kind, (None, ""))
    work_id = (args or {}).get(key) if model is not None and isinstance(args, dict) else None
    if work_id is None:
        return
    hint = "" if "retry" in reason else _HINTS.get(kind, "")
    with unit_of_work() as session:
        session.execute(
            update(model)
            .where(
                model.id == work_id,
                model.status.in_(statuses),
                or_(model.task_run_id == run_id, model.task_run_id.is_(None)),
            )
            .values(status="failed", error=(reason + hint)[:ERROR_MAX], finished_at=now)
        )
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
    refused by a late worker (:func:`core.services.runs.claim` only starts queued runs), so marking it lost is always safe.

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
        now = as_utc(now or utcnow())
        queue = job_queue(huey)
        if queue.immediate:
            return []
        with unit_of_work() as session:
            rows = session.execute(
                select(TaskRun.id, TaskRun.huey_id, TaskRun.queued_at, TaskRun.kind, TaskRun.args).where(
                    TaskRun.state == TaskState.QUEUED, TaskRun.queued_at <= now - dt.timedelta(seconds=self.grace_s)
                )
            ).all()
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
            reason = (
                f"{LOST_ERROR} (queued {as_utc(r.queued_at):%Y-%m-%d %H:%M:%S} UTC, no worker took it); "
                "retry the run to queue it again"
            )
            if mark_failed(run_id, reason, from_states=(TaskState.QUEUED,), now=now):
                lost.append(run_id)
                log.warning("run %s marked failed (%s)", run_id, LOST_ERROR)
                _fail_work_of(run_id, r.kind, r.args, reason, now, statuses=("queued",))
        return lost
