"""The Huey tasks: thin wrappers that call the services and keep their task run up to date.

Every task receives its run id and validated parameters (see :func:`core.services.tasks.enqueue`)
and runs with ``context=True``, so the body sees its Huey task: it claims the run, reports progress,
stores the result, and decides whether a failure may be retried:

* transient errors (``ProviderError(transient=True)``: HTTP 429/5xx, timeouts; an unreachable database)
  are retried: :data:`ATTEMPTS` attempts in all, waiting :data:`RETRY_DELAY_S` × :data:`RETRY_BACKOFF`^n
  seconds (or the provider's ``Retry-After`` when longer);
* everything else (ValidationFailed, NotFoundError, a non-transient ProviderError, a bug) fails at once:
  the body sets ``task.retries = 0`` before re-raising.

State transitions come from Huey's signals (executing, complete, error, retrying, revoked, expired,
interrupted), connected at the bottom of this module, so they are written by whichever process runs
the task.

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
from typing import Any

from huey import signals as S
from huey.api import PeriodicTask, Task
from huey.exceptions import CancelExecution
from sqlalchemy.exc import IntegrityError, OperationalError

from core.errors import AlreadyRunning
from core.infra.locks import REFRESH, acting_as
from core.services import tasks as svc
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

_RETRY = {"retries": ATTEMPTS - 1, "retry_delay": RETRY_DELAY_S, "retry_backoff": RETRY_BACKOFF, "context": True}

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


def _run(task: Task, run_id: int, work: Callable[[Report], dict[str, Any] | None], *,
         has_warnings: bool = False) -> dict[str, Any] | None:
    """Claim the run, do ``work(report)``, store its result; classify a failure as retryable or not.

    With ``has_warnings`` (refreshes) a result whose ``warnings`` list is not empty ends the run
    ``succeeded_with_warnings`` (see :func:`core.services.tasks.mark_succeeded`)."""
    if not svc.claim(run_id, worker=worker_life.current_worker_id()):
        raise CancelExecution(retry=False)  # cancelled (or reconciled) before it started

    def report(fraction: float, message: str) -> None:
        svc.progress(run_id, fraction, message)

    try:
        with acting_as(f"run {run_id}"):  # the locks this run takes name it as their holder
            result = work(report)
    except Exception as exc:
        if not _transient(exc):
            task.retries = 0  # permanent: fail now
        else:
            retry_after = getattr(exc, "retry_after", None)
            if retry_after:
                task.retry_delay = max(float(task.retry_delay or 0), float(retry_after))
        raise
    if result is not None:
        svc.store_result(run_id, _jsonable(result))
        if has_warnings and result.get("warnings"):
            svc.mark_succeeded(run_id, warnings=[str(w) for w in result["warnings"]])
    return result


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return str(value)


def _refresh_work(run_id: int, params: dict[str, Any], report: Report) -> dict[str, Any]:
    from core.services.refresh import refresh_prices

    try:
        provider = svc.refresh_provider(params.get("provider", "demo"))
        return refresh_prices(params.get("provider", "demo"), params.get("symbols"), full=bool(params.get("full")),
                              provider=provider, progress=report, actor=svc.queued_by(run_id), wait=False)
    except AlreadyRunning as exc:
        if exc.lock != REFRESH:
            raise
        reason = f"skipped: another refresh is running (held by {exc.holder or 'an unknown holder'})"
        svc.mark_skipped(run_id, reason)
        return {"skipped": reason}


def _compute_work(run_id: int, config_id: int | None, report: Report, actor: str | None) -> dict[str, Any]:
    from core.errors import NotFoundError
    from core.services.compute import compute_config
    from core.services.strategies import active_version

    if config_id is None:
        active = active_version()
        if active is None:
            raise NotFoundError("no active strategy config")
        config_id = active.id
    return compute_config(config_id, progress=report, actor=actor, lock_timeout_s=COMPUTE_LOCK_WAIT_S)


# --------------------------------------------------------------------------- user-queued tasks
# Huey ships no type information, so each of its decorators below carries an ignore of untyped-decorator.
@huey.task(name="refresh", **_RETRY)  # type: ignore[untyped-decorator]
def refresh(run_id: int, params: dict[str, Any], task: Task | None = None) -> dict[str, Any] | None:
    """Refresh prices: ``params`` = RefreshParams (provider, symbols, full)."""
    return _run(task, run_id, lambda report: _refresh_work(run_id, params, report), has_warnings=True)


@huey.task(name="compute", **_RETRY)  # type: ignore[untyped-decorator]
def compute(run_id: int, params: dict[str, Any], task: Task | None = None) -> dict[str, Any] | None:
    """Backtest a config version and store its results: ``params`` = ComputeParams (config_id)."""
    return _run(task, run_id, lambda report: _compute_work(run_id, params.get("config_id"), report,
                                                           svc.queued_by(run_id)))


@huey.task(name="report", **_RETRY)  # type: ignore[untyped-decorator]
def report(run_id: int, params: dict[str, Any], task: Task | None = None) -> dict[str, Any] | None:
    """Generate a report file: ``params`` = ReportParams (report_id)."""

    def work(progress: Report) -> dict[str, Any] | None:
        from core.services.reports import generate_report  # lands with the reports work

        result = generate_report(params["report_id"], progress=progress)
        return result if isinstance(result, dict) else {"report_id": params["report_id"], "result": result}

    return _run(task, run_id, work)


# --------------------------------------------------------------------------- periodic tasks
def _periodic_run(task: Task, kind: str) -> int | None:
    """The run of this periodic execution; None when another consumer's scheduler already started it."""
    slot = f"periodic.{kind}.{dt.datetime.now(dt.timezone.utc):%Y%m%d%H%M}"
    try:
        free = huey.put_if_empty(slot, 1, 86400)
    except NotImplementedError:  # SQLite storage has no TTL: a few bytes per run, harmless
        free = huey.put_if_empty(slot, 1)
    return svc.open_periodic_run(kind, huey_id=task.id, worker=worker_life.current_worker_id(), slot_free=free)


def _scheduled_refresh_work(run_id: int, report: Report) -> dict[str, Any]:
    from core.services.universe import refresh_source

    provider, symbols = refresh_source()  # the provider settings saved on the Data page
    refreshed = _refresh_work(run_id, {"provider": provider, "symbols": symbols}, report)
    if "skipped" in refreshed:
        return refreshed
    # The refresh service queued the recompute of the active config when prices changed (once per change).
    return {"refresh": refreshed, "compute": refreshed.get("recompute"), "warnings": refreshed.get("warnings", [])}


@huey.periodic_task(svc.cron_validator(svc.periodic_jobs()[0][1]), name="scheduled_refresh", **_RETRY)  # type: ignore[untyped-decorator]
def scheduled_refresh(task: Task | None = None) -> dict[str, Any] | None:
    """Weekday evenings (REFRESH_CRON): refresh prices; when they changed, the refresh service queues the
    recompute of the active config (a compute run of its own, queued by the scheduler)."""
    run_id = _periodic_run(task, "scheduled_refresh")
    if run_id is None:
        return None
    return _run(task, run_id, lambda report: _scheduled_refresh_work(run_id, report), has_warnings=True)


@huey.periodic_task(svc.cron_validator(svc.RETENTION_CRON), name="retention", context=True)  # type: ignore[untyped-decorator]
def retention(task: Task | None = None) -> dict[str, Any] | None:
    """Nightly: delete runs, reports and heartbeats older than RETENTION_DAYS."""
    run_id = _periodic_run(task, "retention")
    if run_id is None:
        return None
    return _run(task, run_id, lambda report: svc.clean_up())


def _retry_periodic(run_id: int, params: dict[str, Any], task: Task | None = None) -> dict[str, Any] | None:
    kind = svc.get_run(run_id).kind
    if kind == "retention":
        return _run(task, run_id, lambda report: svc.clean_up())
    return _run(task, run_id, lambda report: _scheduled_refresh_work(run_id, report), has_warnings=True)


#: A user retrying a failed periodic run queues it as an ordinary task.
rerun_periodic = huey.task(name="rerun_periodic", **_RETRY)(_retry_periodic)

TASKS = {"refresh": refresh, "compute": compute, "report": report,
         "scheduled_refresh": rerun_periodic, "retention": rerun_periodic}


def task_for_kind(kind: str) -> Any:
    """The Huey task that runs ``kind`` (the service validated the kind already)."""
    return TASKS[kind]


# --------------------------------------------------------------------------- signals -> run state
def _run_id_of(task: Task) -> int | None:
    if not isinstance(task, PeriodicTask) and task.args and isinstance(task.args[0], int):
        return task.args[0]
    return svc.find_run_id(task.id)


@huey.signal(S.SIGNAL_EXECUTING)  # type: ignore[untyped-decorator]
def _on_executing(signal: str, task: Task) -> None:
    if isinstance(task, PeriodicTask):
        run_id = svc.find_run_id(task.id)  # a retry; a first run is opened by the body
        if run_id is None:
            return
    else:
        run_id = _run_id_of(task)
    if run_id is not None:
        svc.mark_running(run_id, worker=worker_life.current_worker_id())


@huey.signal(S.SIGNAL_COMPLETE)  # type: ignore[untyped-decorator]
def _on_complete(signal: str, task: Task) -> None:
    run_id = _run_id_of(task)
    if run_id is not None:
        svc.mark_succeeded(run_id)


@huey.signal(S.SIGNAL_ERROR)  # type: ignore[untyped-decorator]
def _on_error(signal: str, task: Task, exc: BaseException | None = None) -> None:
    run_id = _run_id_of(task)
    if run_id is not None and exc is not None:
        svc.record_error(run_id, exc, will_retry=bool(task.retries), retry_in_s=task.retry_delay)


@huey.signal(S.SIGNAL_RETRYING)  # type: ignore[untyped-decorator]
def _on_retrying(signal: str, task: Task) -> None:
    run_id = _run_id_of(task)
    if run_id is not None:
        svc.mark_retrying(run_id, task.retry_delay)


@huey.signal(S.SIGNAL_REVOKED)  # type: ignore[untyped-decorator]
def _on_revoked(signal: str, task: Task) -> None:
    run_id = _run_id_of(task)
    if run_id is not None:
        svc.mark_cancelled(run_id, "cancelled before it started")


@huey.signal(S.SIGNAL_EXPIRED)  # type: ignore[untyped-decorator]
def _on_expired(signal: str, task: Task) -> None:
    run_id = _run_id_of(task)
    if run_id is not None:
        svc.mark_failed(run_id, "expired before a worker took it")


@huey.signal(S.SIGNAL_INTERRUPTED, S.SIGNAL_TIMEOUT)  # type: ignore[untyped-decorator]
def _on_interrupted(signal: str, task: Task) -> None:
    run_id = _run_id_of(task)
    if run_id is not None:
        svc.mark_failed(run_id, "interrupted: the worker stopped during the run" if signal == S.SIGNAL_INTERRUPTED
                        else "timed out", from_states=("running",))


@huey.on_startup("autoindex_worker_started")  # type: ignore[untyped-decorator]
def _worker_started() -> None:
    worker_life.worker_started(huey)


@huey.on_shutdown("autoindex_worker_stopped")  # type: ignore[untyped-decorator]
def _worker_stopped() -> None:
    worker_life.worker_stopped()
