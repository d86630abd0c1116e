"""The job queue card: pending, scheduled, results, locks held."""

from __future__ import annotations

from typing import Any

from core.errors import one_line
from core.health.base import ERROR, WARNING, Check, Context, register
from core.services.ports import JobQueue, job_queue

#: Tasks waiting in the queue above which the queue is backed up (warning).
QUEUE_PENDING_WARN = 50


QUEUE_RULES = [
    "error if the job queue cannot be read",
    f"warning if more than {QUEUE_PENDING_WARN} tasks are pending",
]


def _huey(ctx: Context) -> Any:
    """The job queue (the process's, wired by ``jobs``; or the runner the context names)."""

    return job_queue(ctx.huey)


def queue_facts(queue: JobQueue) -> dict[str, Any]:
    """Backend, pending, scheduled and results read from the job queue; the locks held (refresh, compute, migrate, seed: :mod:`core.infra.locks`) read from the database."""
    from core.infra.locks import held_locks

    held = sorted(held_locks())
    return {
        "backend": queue.backend,
        "pending": queue.pending_count(),
        "scheduled": queue.scheduled_count(),
        "results": queue.result_count(),
        "locks_held": held,
    }


@register(
    "queue",
    "Job queue",
    shows="backend, pending, scheduled, results, locks held",
    rules=QUEUE_RULES,
    needs_database=False,
    order=30,
)
def check_queue(ctx: Context, check: Check) -> None:
    try:
        facts = queue_facts(_huey(ctx))
    except Exception as exc:  # noqa: BLE001 - Redis / SQLite queue errors of every kind
        check.raise_to(ERROR, f"cannot read the queue: {one_line(exc)}")
        check.summary = f"cannot read the queue: {one_line(exc)}"
        return
    check.facts.update(facts)
    if facts["pending"] > QUEUE_PENDING_WARN:
        check.raise_to(WARNING, f"{facts['pending']} tasks pending")
    locks = ", ".join(facts["locks_held"]) or "none"
    check.summary = (
        f"{facts['backend']}: {facts['pending']} pending, {facts['scheduled']} scheduled, "
        f"{facts['results']} results, locks held: {locks}"
    )
    return
