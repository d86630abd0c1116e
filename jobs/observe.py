"""Job runs into Prometheus: ``autoindex_job_duration_seconds{kind, state}`` observed by the worker that ran the job.

Huey calls signal receivers in the order they were connected; this module is imported after :mod:`jobs.tasks`,
whose receivers write the run's final state. So when a run ends (complete; an error with no retry left;
interrupted, timed out, revoked or expired) the receiver below reads the run row — the one truth of its kind, final
state and duration — and observes it once. A retry in between is not an end and is not observed.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

from huey import signals as S
from huey.api import PeriodicTask, Task
from sqlalchemy import select

from core.config import get_settings
from core.db import unit_of_work
from core.infra.metrics import FINAL_STATES, observe_job
from core.models import TaskRun
from jobs import huey

log = logging.getLogger(__name__)

#: Runs already observed by this process, by database and run id (a run ends once; run ids repeat across databases,
#: e.g. a test process or a worker pointed at a recreated database); the bound keeps the memory flat.
_observed: deque[tuple[str, int]] = deque(maxlen=1000)


def _run_id(task: Task) -> int | None:
    if not isinstance(task, PeriodicTask) and task.args and isinstance(task.args[0], int):
        return int(task.args[0])
    with unit_of_work() as session:  # a periodic run is found by its Huey id
        return session.scalar(select(TaskRun.id).where(TaskRun.huey_id == task.id).order_by(TaskRun.id.desc()))


def observe_end(run_id: int) -> bool:
    """Observe the run once if it is in a final state; return whether it was observed now."""
    key = (get_settings().effective_database_url, run_id)
    if key in _observed:
        return False
    with unit_of_work() as session:
        row = session.execute(
            select(TaskRun.kind, TaskRun.state, TaskRun.duration_s).where(TaskRun.id == run_id)
        ).first()
    if row is None or row.state not in FINAL_STATES:
        return False
    _observed.append(key)
    observe_job(row.kind, row.state, row.duration_s)
    return True


@huey.signal(
    S.SIGNAL_COMPLETE,
    S.SIGNAL_ERROR,
    S.SIGNAL_INTERRUPTED,
    S.SIGNAL_TIMEOUT,
    S.SIGNAL_REVOKED,  # type: ignore[untyped-decorator]
    S.SIGNAL_EXPIRED,
)
def _on_end(signal: str, task: Task, *args: Any) -> None:
    if signal == S.SIGNAL_ERROR and task.retries:
        return  # it will be retried: not the end of the run
    try:
        run_id = _run_id(task)
        if run_id is not None:
            observe_end(run_id)
    except Exception:  # noqa: BLE001 - a metric must never change how a job ends
        log.debug("could not observe the end of task %s", task.id, exc_info=True)
