"""The periodic tasks: Huey's periodic configuration of AutoIndex.

Two tasks run on a cron (UTC) read from :mod:`core.services.schedule` (the one list of periodic jobs, which the
Tasks page and the command line show with their next run): ``scheduled_refresh`` (``REFRESH_CRON``) and
``retention`` (:data:`core.services.schedule.RETENTION_CRON`). Their work is :data:`jobs.tasks.WORK`'s, run by
:func:`jobs.tasks.run_body` like every other job.

Every consumer runs a scheduler, so several may enqueue the same period's task: the first one to take the
period's slot (Huey's public ``put_if_empty``) opens the run; the others record nothing. A periodic task is
never queued by a user, so its run is opened when it first executes (:func:`core.services.runs.open_periodic_run`);
a user retrying a failed periodic run queues :data:`jobs.tasks.rerun_periodic`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from huey.api import Task

from core.services import runs
from core.services.schedule import cron_of, cron_validator
from jobs import huey
from jobs import worker as worker_life
from jobs.tasks import RETRY_OPTIONS, WORK, run_body

#: Seconds a period's slot is kept (Redis; SQLite's storage keeps it without expiry: a few bytes per run).
SLOT_TTL_S = 86400


def _periodic_run(task: Task, kind: str) -> int | None:
    """The run of this periodic execution; None when another consumer's scheduler already started it."""
    slot = f"periodic.{kind}.{dt.datetime.now(dt.timezone.utc):%Y%m%d%H%M}"
    try:
        free = huey.put_if_empty(slot, 1, SLOT_TTL_S)
    except NotImplementedError:  # SQLite storage has no TTL
        free = huey.put_if_empty(slot, 1)
    return runs.open_periodic_run(kind, huey_id=task.id, worker=worker_life.current_worker_id(), slot_free=free)


def _periodic(kind: str, task: Task) -> dict[str, Any] | None:
    run_id = _periodic_run(task, kind)
    if run_id is None:
        return None
    work = WORK[kind]
    return run_body(task, run_id, lambda report: work.run(run_id, {}, report), has_warnings=work.has_warnings)


# Huey ships no type information, so each of its decorators below carries an ignore of untyped-decorator.
@huey.periodic_task(cron_validator(cron_of("scheduled_refresh")), name="scheduled_refresh", **RETRY_OPTIONS)  # type: ignore[untyped-decorator]
def scheduled_refresh(task: Task | None = None) -> dict[str, Any] | None:
    """Weekday evenings (REFRESH_CRON): refresh prices; when they changed, the refresh service queues the
    recompute of the active config (a compute run of its own, queued by the scheduler)."""
    return _periodic("scheduled_refresh", task)


@huey.periodic_task(cron_validator(cron_of("retention")), name="retention", context=True)  # type: ignore[untyped-decorator]
def retention(task: Task | None = None) -> dict[str, Any] | None:
    """Nightly: delete runs, reports and heartbeats older than RETENTION_DAYS (:mod:`core.services.retention`)."""
    return _periodic("retention", task)
