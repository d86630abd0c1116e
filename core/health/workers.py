"""The workers card: which consumers are alive (:mod:`core.services.workers`), and whether jobs wait for none."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import func, select

from core.health.base import ERROR, WARNING, Check, Context, read_session, register
from core.models import TaskRun
from core.schemas.task import WAITING_STATES, TaskState
from core.services.workers import workers_status

WORKER_RULES = [
    "error if no worker is alive while jobs wait (queued or retrying runs)",
    "warning if no worker is alive (queued jobs would not run)",
]


@register(
    "workers",
    "Workers",
    shows="each worker's last heartbeat and thread count, runs waiting",
    rules=WORKER_RULES,
    needs_database=True,
    order=40,
)
def check_workers(ctx: Context, check: Check) -> None:
    workers = workers_status(now=ctx.now)
    with read_session(ctx) as session:
        waiting = int(session.scalar(select(func.count(TaskRun.id)).where(TaskRun.state.in_(WAITING_STATES))) or 0)
        oldest = session.scalar(select(func.min(TaskRun.queued_at)).where(TaskRun.state == TaskState.QUEUED))
    alive = [w for w in workers if w.alive]
    threads = sum(w.workers for w in alive)
    check.facts.update(
        {"alive": len(alive), "worker_threads": threads, "waiting_runs": waiting, "oldest_queued_at": oldest}
    )
    check.tables["workers"] = pd.DataFrame(
        [
            {
                "worker": w.worker_id,
                "kind": w.kind,
                "hostname": w.hostname,
                "pid": w.pid,
                "threads": w.workers,
                "alive": w.alive,
                "last_heartbeat": w.last_seen,
                "age_s": round(w.age_s, 1),
                "started_at": w.started_at,
            }
            for w in workers
        ],
        columns=["worker", "kind", "hostname", "pid", "threads", "alive", "last_heartbeat", "age_s", "started_at"],
    )
    if not alive and waiting:
        last = max((w.last_seen for w in workers), default=None)
        seen = f"; last heartbeat {last:%Y-%m-%d %H:%M:%S} UTC" if last else "; no heartbeat ever recorded"
        check.raise_to(ERROR, f"no worker alive while {waiting} job(s) wait{seen}")
    elif not alive:
        check.raise_to(WARNING, "no worker alive")
    check.summary = (
        f"{len(alive)} worker(s) alive ({threads} threads), {waiting} job(s) waiting" if alive else check.findings[-1]
    )
    return
