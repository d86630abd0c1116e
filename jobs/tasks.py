"""The Huey tasks: thin wrappers that call the services and keep their task run up to date.

Every task receives its run id and validated parameters (see :func:`core.services.runs.enqueue`)
and runs with ``context=True``, so the body sees its Huey task: it claims the run, reports progress,
stores the result, and decides whether a failure may be retried:

* transient errors (``ProviderError(transient=True)``: HTTP 429/5xx, timeouts; an unreachable database)
  are retried: :data:`ATTEMPTS` attempts in all, waiting :data:`RETRY_DELAY_S` × :data:`RETRY_BACKOFF`^n
  seconds (or the provider's ``Retry-After`` when longer);
* everything else (ValidationFailed, NotFoundError, a non-transient ProviderError, a bug) fails at once:
  the body sets ``task.retries = 0`` before re-raising.

State transitions come from Huey's signals (executing, complete, error, retrying, revoked, expired,
interrupted), connected at the bottom of this module, so they are written by whichever process runs
the task. The work of each kind is one function in :data:`WORK`, run the same way by a Huey task and by
:func:`run_inline` (the :class:`jobs.queue.InlineQueue`: in this process, one attempt). The periodic tasks are in
:mod:`jobs.schedule`.

Only one refresh runs at a time (manual, scheduled, the CLI or demo seeding): a refresh job that finds the
``refresh`` lock taken is recorded as ``skipped`` naming the holder. Computes of the same config wait for each
other (they replace the same rows). Both are locks of :mod:`core.infra.locks`, taken inside the services, so
the CLI and the app share them with the jobs; a job's locks name it as holder (``run <id> on <host>:<pid>``).
A write race that still reaches the database (a unique violation, a serialization failure or deadlock, SQLite
"database is locked") is transient: the job is retried, never failed for it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any, NamedTuple

from huey import signals as S
from huey.api import PeriodicTask, Task
from huey.exceptions import CancelExecution
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError

from core.config import get_settings
from core.db import unit_of_work
from core.errors import AlreadyRunning, NotFoundError, one_line
from core.infra.locks import REFRESH, acting_as
from core.schemas.task import TaskState
from core.services import retention, runs
from jobs import huey
from jobs import worker as worker_life

log = logging.getLogger(__name__)

#: Attempts in all for a transient failure (the first and two retries).
ATTEMPTS = 3
#: Seconds before the first retry; each further retry waits RETRY_BACKOFF times longer.
RETRY_DELAY_S = 2.0
RETRY_BACKOFF = 2.0
#: Longest a compute job waits for another compute of the same config, seconds (then it is retried).
COMPUTE_LOCK_WAIT_S = 900.0

#: Huey's options of every retried task (:data:`ATTEMPTS`, :data:`RETRY_DELAY_S`, :data:`RETRY_BACKOFF`).
RETRY_OPTIONS: dict[str, Any] = {
    "retries": ATTEMPTS - 1,
    "retry_delay": RETRY_DELAY_S,
    "retry_backoff": RETRY_BACKOFF,
    "context": True,
}

Report = Callable[[float, str], None]


# --------------------------------------------------------------------------- the common body
#: SQLSTATEs of write races: unique violation, serialization failure, deadlock detected.
_RACE_SQLSTATES = ("23505", "40001", "40P01")


def _write_race(exc: BaseException) -> bool:
    """A conflict with another writer that a later attempt will not meet (not a bug in the data)."""
    if not isinstance(exc, (IntegrityError, OperationalError)):
        return False
    if getattr(exc.orig, "sqlstate", None) in _RACE_SQLSTATES:
        return True
    text = str(exc.orig)
    return "UNIQUE constraint failed" in text or "database is locked" in text


def _transient(exc: BaseException) -> bool:
    """Retry: errors that say so (network, 429, an unreachable database, AlreadyRunning after a long wait),
    every operational database error, and write races."""
    return bool(getattr(exc, "transient", False)) or isinstance(exc, OperationalError) or _write_race(exc)


def _do(run_id: int, work: Callable[[Report], dict[str, Any] | None]) -> dict[str, Any] | None:
    def report(fraction: float, message: str) -> None:
        runs.progress(run_id, fraction, message)

    with acting_as(f"run {run_id}"):  # the locks this run takes name it as their holder
        return work(report)


def _keep(run_id: int, result: dict[str, Any] | None, has_warnings: bool) -> None:
    """Store the result summary; a result with ``warnings`` (refreshes) ends the run succeeded_with_warnings."""
    if result is not None:
        runs.store_result(run_id, runs.jsonable(result))
        if has_warnings and result.get("warnings"):
            runs.mark_succeeded(run_id, warnings=[str(w) for w in result["warnings"]])


def run_body(
    task: Task, run_id: int, work: Callable[[Report], dict[str, Any] | None], *, has_warnings: bool = False
) -> dict[str, Any] | None:
    """Claim the run, do ``work(report)``, store its result; classify a failure as retryable or not.

    With ``has_warnings`` (refreshes) a result whose ``warnings`` list is not empty ends the run
    ``succeeded_with_warnings`` (see :func:`core.services.runs.mark_succeeded`)."""
    if not runs.claim(run_id, worker=worker_life.current_worker_id()):
        raise CancelExecution(retry=False)  # cancelled (or reconciled) before it started
    try:
        result = _do(run_id, work)
    except Exception as exc:
        if not _transient(exc):
            task.retries = 0  # permanent: fail now
        else:
            retry_after = getattr(exc, "retry_after", None)
            if retry_after:
                task.retry_delay = max(float(task.retry_delay or 0), float(retry_after))
        raise
    _keep(run_id, result, has_warnings)
    return result


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
    return DemoProvider(
        seed=get_settings().demo_seed, n_assets=SEED_UNIVERSE_SIZE + max(numbers, default=0), start=start
    )


def _refresh_work(run_id: int, params: dict[str, Any], report: Report) -> dict[str, Any]:
    from core.services.refresh import refresh_prices

    try:
        provider = refresh_provider(params.get("provider", "demo"))
        return refresh_prices(
            params.get("provider", "demo"),
            params.get("symbols"),
            full=bool(params.get("full")),
            provider=provider,
            progress=report,
            actor=runs.queued_by(run_id),
            wait=False,
        )
    except AlreadyRunning as exc:
        if exc.lock != REFRESH:
            raise
        reason = f"skipped: another refresh is running (held by {exc.holder or 'an unknown holder'})"
        runs.mark_skipped(run_id, reason)
        return {"skipped": reason}


def _compute_work(run_id: int, params: dict[str, Any], report: Report) -> dict[str, Any]:
    from core.services.compute import compute_config
    from core.services.strategies import active_version

    config_id = params.get("config_id")
    if config_id is None:
        active = active_version()
        if active is None:
            raise NotFoundError("no active strategy config")
        config_id = active.id
    return compute_config(config_id, progress=report, actor=runs.queued_by(run_id), lock_timeout_s=COMPUTE_LOCK_WAIT_S)


def _report_work(run_id: int, params: dict[str, Any], report: Report) -> dict[str, Any]:
    from core.services.reports import generate_report

    result = generate_report(params["report_id"], progress=report)
    return result if isinstance(result, dict) else {"report_id": params["report_id"], "result": result}


def _scheduled_refresh_work(run_id: int, params: dict[str, Any], report: Report) -> dict[str, Any]:
    from core.services.universe import refresh_source

    provider, symbols = refresh_source()  # the provider settings saved on the Data page
    refreshed = _refresh_work(run_id, {"provider": provider, "symbols": symbols}, report)
    if "skipped" in refreshed:
        return refreshed
    # The refresh service queued the recompute of the active config when prices changed (once per change).
    return {"refresh": refreshed, "compute": refreshed.get("recompute"), "warnings": refreshed.get("warnings", [])}


def _retention_work(run_id: int, params: dict[str, Any], report: Report) -> dict[str, Any]:
    return retention.clean_up()


class Work(NamedTuple):
    """What a job kind does (``run(run_id, params, report)``) and whether its result may carry warnings."""

    run: Callable[[int, dict[str, Any], Report], dict[str, Any] | None]
    has_warnings: bool = False


#: The work of every kind, whoever runs it (a Huey task, a periodic task, :func:`run_inline`).
WORK: dict[str, Work] = {
    "refresh": Work(_refresh_work, has_warnings=True),
    "compute": Work(_compute_work),
    "report": Work(_report_work),
    "scheduled_refresh": Work(_scheduled_refresh_work, has_warnings=True),
    "retention": Work(_retention_work),
}


def _task_body(kind: str) -> Callable[..., dict[str, Any] | None]:
    work = WORK[kind]

    def body(run_id: int, params: dict[str, Any], task: Task | None = None) -> dict[str, Any] | None:
        return run_body(task, run_id, lambda report: work.run(run_id, params, report), has_warnings=work.has_warnings)

    body.__name__ = body.__qualname__ = kind
    body.__doc__ = f"Run a {kind} job: ``params`` as validated by :func:`core.services.runs.validate_params`."
    return body


def run_inline(kind: str, run_id: int, params: dict[str, Any]) -> None:
    """Run the job of ``run_id`` in this process, now, without a queue (:class:`jobs.queue.InlineQueue`).

    The run moves as with a worker (running, then succeeded / succeeded_with_warnings / failed) in one attempt:
    a failure is recorded on the run (error and traceback), never raised. A run that is no longer queued is
    left alone."""
    work = WORK[kind]
    if not runs.mark_running(run_id, worker=worker_life.current_worker_id()):
        return
    try:
        result = _do(run_id, lambda report: work.run(run_id, params, report))
    except Exception as exc:  # noqa: BLE001 - every failure is the run's, as in a worker
        log.warning("inline %s run %s failed: %s", kind, run_id, one_line(exc))
        runs.record_error(run_id, exc, will_retry=False)
        return
    _keep(run_id, result, work.has_warnings)
    runs.mark_succeeded(run_id)  # a run already final (with warnings, skipped) is left as it is


# --------------------------------------------------------------------------- user-queued tasks
refresh = huey.task(name="refresh", **RETRY_OPTIONS)(_task_body("refresh"))
compute = huey.task(name="compute", **RETRY_OPTIONS)(_task_body("compute"))
report = huey.task(name="report", **RETRY_OPTIONS)(_task_body("report"))


def _retry_periodic(run_id: int, params: dict[str, Any], task: Task | None = None) -> dict[str, Any] | None:
    work = WORK[runs.get_run(run_id).kind]
    return run_body(task, run_id, lambda report: work.run(run_id, params, report), has_warnings=work.has_warnings)


#: A user retrying a failed periodic run queues it as an ordinary task.
rerun_periodic = huey.task(name="rerun_periodic", **RETRY_OPTIONS)(_retry_periodic)

TASKS: dict[str, Any] = {
    "refresh": refresh,
    "compute": compute,
    "report": report,
    "scheduled_refresh": rerun_periodic,
    "retention": rerun_periodic,
}


def task_for_kind(kind: str) -> Any:
    """The Huey task that runs ``kind`` (the service validated the kind already)."""
    return TASKS[kind]


# --------------------------------------------------------------------------- signals -> run state
def _run_id_of(task: Task) -> int | None:
    if not isinstance(task, PeriodicTask) and task.args and isinstance(task.args[0], int):
        return task.args[0]
    return runs.find_run_id(task.id)


@huey.signal(S.SIGNAL_EXECUTING)  # type: ignore[untyped-decorator]
def _on_executing(signal: str, task: Task) -> None:
    if isinstance(task, PeriodicTask):
        run_id = runs.find_run_id(task.id)  # a retry; a first run is opened by the body
        if run_id is None:
            return
    else:
        run_id = _run_id_of(task)
    if run_id is not None:
        runs.mark_running(run_id, worker=worker_life.current_worker_id())


@huey.signal(S.SIGNAL_COMPLETE)  # type: ignore[untyped-decorator]
def _on_complete(signal: str, task: Task) -> None:
    run_id = _run_id_of(task)
    if run_id is not None:
        runs.mark_succeeded(run_id)


@huey.signal(S.SIGNAL_ERROR)  # type: ignore[untyped-decorator]
def _on_error(signal: str, task: Task, exc: BaseException | None = None) -> None:
    run_id = _run_id_of(task)
    if run_id is not None and exc is not None:
        runs.record_error(run_id, exc, will_retry=bool(task.retries), retry_in_s=task.retry_delay)


@huey.signal(S.SIGNAL_RETRYING)  # type: ignore[untyped-decorator]
def _on_retrying(signal: str, task: Task) -> None:
    run_id = _run_id_of(task)
    if run_id is not None:
        runs.mark_retrying(run_id, task.retry_delay)


@huey.signal(S.SIGNAL_REVOKED)  # type: ignore[untyped-decorator]
def _on_revoked(signal: str, task: Task) -> None:
    run_id = _run_id_of(task)
    if run_id is not None:
        runs.mark_cancelled(run_id, "cancelled before it started")


@huey.signal(S.SIGNAL_EXPIRED)  # type: ignore[untyped-decorator]
def _on_expired(signal: str, task: Task) -> None:
    run_id = _run_id_of(task)
    if run_id is not None:
        runs.mark_failed(run_id, "expired before a worker took it")


@huey.signal(S.SIGNAL_INTERRUPTED, S.SIGNAL_TIMEOUT)  # type: ignore[untyped-decorator]
def _on_interrupted(signal: str, task: Task) -> None:
    run_id = _run_id_of(task)
    if run_id is not None:
        runs.mark_failed(
            run_id,
            "interrupted: the worker stopped during the run" if signal == S.SIGNAL_INTERRUPTED else "timed out",
            from_states=(TaskState.RUNNING,),
        )


@huey.on_startup("autoindex_worker_started")  # type: ignore[untyped-decorator]
def _worker_started() -> None:
    worker_life.worker_started(huey)


@huey.on_shutdown("autoindex_worker_stopped")  # type: ignore[untyped-decorator]
def _worker_stopped() -> None:
    worker_life.worker_stopped()
