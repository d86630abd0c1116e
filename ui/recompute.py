"""Recomputing a config version after activation: queued as a job when the task queue exists, inline otherwise."""
from __future__ import annotations

import logging
from types import ModuleType
from typing import Any

from core.errors import AutoIndexError
from core.services.access import username_of

log = logging.getLogger(__name__)


def _task_service() -> ModuleType | None:
    try:
        from core.services import tasks
    except ImportError:
        return None
    return tasks if hasattr(tasks, "enqueue") else None


def recompute(config_id: int, actor: Any) -> str:
    """Queue (or run) the compute of ``config_id`` as ``actor`` (checked by the task service); returns one line
    for the user."""
    tasks = _task_service()
    if tasks is not None:
        try:
            run_id = tasks.enqueue("compute", {"config_id": config_id}, user=actor)
            return f"Recompute queued as task {run_id}; follow it on the Tasks page."
        except AutoIndexError as exc:
            if type(exc).__name__ != "QueueUnavailable":
                raise
            log.warning("task queue unavailable (%s); computing inline", exc)
    from core.services.compute import compute_config

    summary = compute_config(config_id, actor=username_of(actor))
    return f"Recomputed: {summary['dates']} dates to {summary['end']}, final level {summary['final_level']:.2f}."
