"""Recomputing a config version after activation: queued as a job when the task queue exists, inline otherwise."""
from __future__ import annotations

import logging

from core.errors import AutoIndexError

log = logging.getLogger(__name__)


def _task_service():  # type: ignore[no-untyped-def]
    try:
        from core.services import tasks
    except ImportError:
        return None
    return tasks if hasattr(tasks, "enqueue") else None


def recompute(config_id: int, username: str) -> str:
    """Queue (or run) the compute of ``config_id``; returns one line for the user."""
    tasks = _task_service()
    if tasks is not None:
        try:
            run_id = tasks.enqueue("compute", {"config_id": config_id}, user=username)
            return f"Recompute queued as task {run_id}; follow it on the Tasks page."
        except AutoIndexError as exc:
            if type(exc).__name__ != "QueueUnavailable":
                raise
            log.warning("task queue unavailable (%s); computing inline", exc)
    from core.services.compute import compute_config

    summary = compute_config(config_id, actor=username)
    return f"Recomputed: {summary['dates']} dates to {summary['end']}, final level {summary['final_level']:.2f}."
