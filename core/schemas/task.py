"""Background job schemas: the parameters each job kind accepts, and task runs as they leave the services.

Parameters are validated *before* anything is written or queued (see
:func:`core.services.runs.enqueue`); unknown parameters are refused by name.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.models.base import MAX_ID
from core.schemas.asset import symbol_problem


class TaskState(StrEnum):
    """The state of a task run (the state machine: :mod:`core.services.runs`). Members compare equal to their
    values, so stored strings, form values and command-line choices match them."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    #: The work was done but the task reports warnings (a refresh that skipped symbols its provider does not know).
    SUCCEEDED_WITH_WARNINGS = "succeeded_with_warnings"
    FAILED = "failed"
    RETRYING = "retrying"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"


#: States a run never leaves.
FINAL_STATES: tuple[TaskState, ...] = (
    TaskState.SUCCEEDED,
    TaskState.SUCCEEDED_WITH_WARNINGS,
    TaskState.FAILED,
    TaskState.CANCELLED,
    TaskState.SKIPPED,
)
#: Final states of a run that did its work (with warnings: e.g. a refresh that skipped symbols its provider
#: does not know; the warnings are in the result summary and the message).
SUCCEEDED_STATES: tuple[TaskState, ...] = (TaskState.SUCCEEDED, TaskState.SUCCEEDED_WITH_WARNINGS)
#: States whose Huey task is still waiting in the queue or the schedule.
WAITING_STATES: tuple[TaskState, ...] = (TaskState.QUEUED, TaskState.RETRYING)
#: States of a run that is not over: waiting, or running now.
ACTIVE_STATES: tuple[TaskState, ...] = (TaskState.QUEUED, TaskState.RUNNING, TaskState.RETRYING)


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class RefreshParams(_Params):
    """Fetch prices from a provider. ``symbols`` ``None`` means the whole known universe;
    ``full`` refetches all history instead of only dates after the newest stored one."""

    provider: Literal["demo", "twelvedata"] = "demo"
    symbols: list[str] | None = None
    full: bool = False

    @field_validator("symbols", mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        if isinstance(v, str):  # "AAPL, MSFT" from a form or the command line
            v = [s for s in v.split(",")]
        if isinstance(v, list):
            v = [str(s).strip() for s in v if str(s).strip()]  # upper-cased after the symbol rule
            return v or None
        return v

    @field_validator("symbols")
    @classmethod
    def _check(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return None
        problems = [p for p in map(symbol_problem, v) if p is not None]
        if problems:
            raise ValueError(problems[0])
        if len(v) > 5000:
            raise ValueError("at most 5000 symbols")
        return sorted({s.upper() for s in v})


class ComputeParams(_Params):
    """Backtest one strategy config version; ``None`` means the active one."""

    config_id: int | None = Field(default=None, ge=1, le=MAX_ID)


class ReportParams(_Params):
    """Generate a report already registered in the reports table."""

    report_id: int = Field(ge=1, le=MAX_ID)


class SweepParams(_Params):
    """Drive a parameter sweep already registered in the sweeps table (its parent run, :mod:`core.services.sweeps`)."""

    sweep_id: int = Field(ge=1, le=MAX_ID)


class NoParams(_Params):
    """Periodic jobs take no parameters."""


#: Kinds a user may queue, and their parameter schema.
PARAMS_BY_KIND: dict[str, type[_Params]] = {
    "refresh": RefreshParams,
    "compute": ComputeParams,
    "report": ReportParams,
    "sweep": SweepParams,
}
#: Kinds only the scheduler starts (they still appear in the history and may be retried).
PERIODIC_KINDS: dict[str, type[_Params]] = {
    "scheduled_refresh": NoParams,
    "retention": NoParams,
}
ALL_KINDS: tuple[str, ...] = tuple(PARAMS_BY_KIND) + tuple(PERIODIC_KINDS)


class TaskRunOut(BaseModel):
    """One task run. ``traceback`` is only filled for admins; fractions are 0..1, durations seconds."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    args: dict[str, Any]
    state: TaskState
    progress: float
    message: str | None
    attempts: int
    queued_by: str | None
    queued_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    duration_s: float | None
    error: str | None
    traceback: str | None = None
    result: dict[str, Any] | None
    retry_of_id: int | None
    huey_id: str | None
    worker: str | None

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def interrupted(self) -> bool:
        return self.state == TaskState.FAILED and (self.error or "").startswith("interrupted")


class RunFilters(BaseModel):
    """History filters; dates bound ``queued_at`` (``until`` inclusive to the end of that day)."""

    kind: str | None = None
    state: TaskState | None = None
    user: str | None = None
    since: dt.date | None = None
    until: dt.date | None = None


class WorkerOut(BaseModel):
    """A consumer process as its heartbeat describes it."""

    model_config = ConfigDict(from_attributes=True)

    worker_id: str
    hostname: str
    pid: int
    workers: int
    kind: str
    started_at: dt.datetime
    last_seen: dt.datetime
    alive: bool
    age_s: float


class ScheduleEntry(BaseModel):
    """A periodic job and when it next runs (UTC)."""

    kind: str
    cron: str
    description: str
    next_run_at: dt.datetime | None


class QueueDepth(BaseModel):
    """Jobs waiting in Huey: ``pending`` ready to run, ``scheduled`` waiting for their time (retries, eta)."""

    backend: str
    pending: int
    scheduled: int
