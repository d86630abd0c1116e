"""The sweep jobs: the parent run (kind ``sweep``) and its helper jobs, thin wrappers over :mod:`core.services.sweeps`.

* ``sweep`` (one run on Tasks, with progress and cancel): fans out helper messages over the workers, then claims and
  runs chunks itself, re-queues the chunks of dead workers and finishes the sweep.
* ``sweep_chunk`` (no run of its own): claims and runs chunks of one sweep until none is queued. Its argument is a
  text key (``"sweep:<id>"``), never an int, so the run-state signals of :mod:`jobs.tasks` (which read an int first
  argument as a run id) leave it alone. A helper lost with its worker (kill -9) costs nothing: its chunk is re-queued
  by the parent and run again, and only one attempt's results are stored.

Registered on the package's Huey when ``jobs`` is imported (one import line in ``jobs/__init__``); the ``sweep`` kind
joins :data:`jobs.tasks.TASKS` and :data:`jobs.tasks.WORK` so retries and the inline queue find it.
"""

from __future__ import annotations

import logging
from typing import Any

from huey.api import Task

from core.services import sweeps
from jobs import huey
from jobs import tasks as job_tasks
from jobs import worker as worker_life

log = logging.getLogger(__name__)


def _key(sweep_id: int) -> str:
    return f"sweep:{sweep_id}"


@huey.task(name="sweep_chunk", context=True)  # type: ignore[untyped-decorator]  # huey ships no types
def sweep_chunk(key: str, task: Task | None = None) -> dict[str, Any]:
    """A helper: run chunks of the sweep named by ``key`` until none is left."""
    sweep_id = int(key.split(":", 1)[1])
    stored = sweeps.help_with(sweep_id, worker=worker_life.current_worker_id())
    return {"sweep_id": sweep_id, "stored": stored}


def _fan_out(sweep_id: int) -> Any:
    def submit(n: int) -> None:
        if huey.immediate:  # tests in immediate mode: the parent runs every chunk itself
            return
        for _ in range(n):
            huey.enqueue(sweep_chunk.s(_key(sweep_id)))

    return submit


def _sweep_work(run_id: int, params: dict[str, Any], report: job_tasks.Report) -> dict[str, Any]:
    """Without workers (the inline queue): the parent runs every chunk itself."""
    return sweeps.drive(int(params["sweep_id"]), worker=worker_life.current_worker_id(), progress=report, run_id=run_id)


def _sweep_body(run_id: int, params: dict[str, Any], task: Task | None = None) -> dict[str, Any] | None:
    sweep_id = int(params["sweep_id"])
    return job_tasks.run_body(
        task,
        run_id,
        lambda report: sweeps.drive(
            sweep_id,
            worker=worker_life.current_worker_id(),
            progress=report,
            fan_out=_fan_out(sweep_id),
            run_id=run_id,
        ),
    )


#: The parent run of a sweep (retried like other jobs when a transient error stops it: chunks already stored stay).
sweep = huey.task(name="sweep", **job_tasks.RETRY_OPTIONS)(_sweep_body)

job_tasks.WORK["sweep"] = job_tasks.Work(_sweep_work)
job_tasks.TASKS["sweep"] = sweep
