"""The jobs card: the last refresh and compute, and run statistics by kind over :data:`STATS_DAYS` days."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
from sqlalchemy import func, select

from core.health.base import STATS_DAYS, WARNING, Check, Context, read_session, register
from core.models import TaskRun
from core.schemas.task import SUCCEEDED_STATES, TaskState
from core.services import app_settings
from core.services.runs import REFRESH_KINDS

#: Fraction of runs finished over the window that may fail before it is a warning.
FAILURE_RATE_WARN = 0.20
#: Task runs read for duration percentiles at most (newest first).
JOB_DURATION_ROWS = 50_000
COMPUTE_KINDS = ("compute",)


JOB_RULES = [
    "warning if the last refresh or the last compute failed",
    f"warning if more than {FAILURE_RATE_WARN:.0%} of the runs finished in the last {STATS_DAYS} days failed",
]


def _last_run(session: Any, kinds: tuple[str, ...]) -> dict[str, Any] | None:
    row = session.execute(
        select(
            TaskRun.id,
            TaskRun.kind,
            TaskRun.state,
            TaskRun.queued_at,
            TaskRun.started_at,
            TaskRun.finished_at,
            TaskRun.duration_s,
            TaskRun.error,
        )
        .where(TaskRun.kind.in_(kinds))
        .order_by(TaskRun.queued_at.desc(), TaskRun.id.desc())
        .limit(1)
    ).first()
    return dict(row._mapping) if row is not None else None


def job_statistics(session: Any, since: dt.datetime) -> pd.DataFrame:
    """Per kind over runs queued since ``since``: runs, succeeded, failed, failure rate (of finished
    succeeded + failed runs), p50 / p95 / max duration of finished runs in seconds."""
    counts = pd.DataFrame(
        session.execute(
            select(TaskRun.kind, TaskRun.state, func.count())
            .where(TaskRun.queued_at >= since)
            .group_by(TaskRun.kind, TaskRun.state)
        ).all(),
        columns=["kind", "state", "n"],
    )
    columns = ["kind", "runs", "succeeded", "failed", "failure_rate", "p50_s", "p95_s", "max_s"]
    if counts.empty:
        return pd.DataFrame(columns=columns)
    table = counts.pivot_table(index="kind", columns="state", values="n", aggfunc="sum", fill_value=0)
    out = pd.DataFrame(index=table.index)
    out["runs"] = table.sum(axis=1)
    # a run that succeeded with warnings did its work: it counts as succeeded here
    out["succeeded"] = sum((table[state] if state in table else 0) for state in SUCCEEDED_STATES)
    out["failed"] = table[TaskState.FAILED] if TaskState.FAILED in table else 0
    finished = out["succeeded"] + out["failed"]
    out["failure_rate"] = (out["failed"] / finished.where(finished > 0)).astype(float)
    durations = pd.DataFrame(
        session.execute(
            select(TaskRun.kind, TaskRun.duration_s)
            .where(
                TaskRun.queued_at >= since,
                TaskRun.duration_s.is_not(None),
                TaskRun.state.in_((*SUCCEEDED_STATES, TaskState.FAILED)),
            )
            .order_by(TaskRun.queued_at.desc())
            .limit(JOB_DURATION_ROWS)
        ).all(),
        columns=["kind", "duration_s"],
    )
    grouped = durations.groupby("kind")["duration_s"]
    out["p50_s"] = grouped.quantile(0.5)
    out["p95_s"] = grouped.quantile(0.95)
    out["max_s"] = grouped.max()
    return out.reset_index()[columns]


@register(
    "jobs",
    "Jobs",
    shows="last refresh and compute (when, how long, outcome), runs, failures and p50/p95/max duration by kind over 7 days, the data version",
    rules=JOB_RULES,
    needs_database=True,
    order=60,
)
def check_jobs(ctx: Context, check: Check) -> None:
    since = ctx.now - dt.timedelta(days=STATS_DAYS)
    with read_session(ctx) as session:
        last_refresh = _last_run(session, REFRESH_KINDS)
        last_compute = _last_run(session, COMPUTE_KINDS)
        stats = job_statistics(session, since)
        version = app_settings.get(session, app_settings.DATA_VERSION, {"version": 0})
    check.tables["durations by kind (7 days)"] = stats
    check.tables["last runs"] = pd.DataFrame(
        [{"job": label, **(run or {})} for label, run in (("refresh", last_refresh), ("compute", last_compute))],
        columns=["job", "id", "kind", "state", "queued_at", "started_at", "finished_at", "duration_s", "error"],
    )
    check.facts.update({"data_version": version.get("version", 0), "data_version_at": version.get("at")})
    parts = []
    for label, run in (("refresh", last_refresh), ("compute", last_compute)):
        if run is None:
            parts.append(f"no {label} run yet")
            continue
        when = run["finished_at"] or run["started_at"] or run["queued_at"]
        took = f" in {run['duration_s']:.1f} s" if run["duration_s"] is not None else ""
        parts.append(f"last {label} {run['state']} {when:%Y-%m-%d %H:%M} UTC{took}")
        if run["state"] == TaskState.FAILED:
            check.raise_to(WARNING, f"the last {label} (run {run['id']}) failed: {(run['error'] or '')[:200]}")
    finished = int(stats["succeeded"].sum() + stats["failed"].sum()) if len(stats) else 0
    failed = int(stats["failed"].sum()) if len(stats) else 0
    rate = failed / finished if finished else None
    check.facts.update({"runs_7d": int(stats["runs"].sum()) if len(stats) else 0, "failure_rate_7d": rate})
    if rate is not None and rate > FAILURE_RATE_WARN:
        check.raise_to(WARNING, f"{rate:.0%} of {finished} runs finished in {STATS_DAYS} days failed")
    check.summary = "; ".join(parts) + (f"; failure rate {rate:.0%} over {STATS_DAYS} days" if rate is not None else "")
    return
