"""Ports: what the services need from the job runner, as a small protocol that ``jobs/`` implements.

Core never imports ``jobs/``. When ``jobs`` is imported (by an entry point: Home.py, the command line, a worker,
the test harness) it registers its adapter here with :func:`register_queue`, and the services ask
:func:`job_queue` for it. Tests pass a runner of their own (a Huey instance in immediate mode or on memory
storage): :func:`job_queue` wraps it with the registered adapter.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from core.errors import AutoIndexError


class QueueUnavailable(AutoIndexError):
    """The job queue (Redis, or the SQLite queue file) could not be reached; nothing was queued."""

    transient = True

    def __init__(self, reason: str) -> None:
        super().__init__(f"queue unavailable: {reason}")
        self.reason = reason


@runtime_checkable
class JobQueue(Protocol):
    """A queue of background jobs. ``message_id`` is the id the run records (``task_runs.huey_id``)."""

    @property
    def backend(self) -> str:
        """``"redis"``, ``"sqlite"``, ``"memory"`` (Huey's immediate mode) or ``"inline"`` (in this process)."""

    @property
    def immediate(self) -> bool:
        """True when jobs run synchronously inside :meth:`submit` (tests)."""

    def ping(self) -> None:
        """Return when the queue can be reached; raise (any exception) when it cannot."""

    def submit(self, kind: str, run_id: int, args: dict[str, Any], message_id: str) -> None:
        """Queue the job ``kind`` of run ``run_id`` with its validated ``args`` under ``message_id``."""

    def revoke(self, message_id: str) -> None:
        """Make a queued or scheduled message not run (once)."""

    def restore(self, message_id: str) -> None:
        """Undo :meth:`revoke` (the run started meanwhile)."""

    def waiting_ids(self) -> set[str]:
        """Ids of the messages still waiting in the queue or the schedule."""

    def pending_count(self) -> int:
        """Messages ready to run."""

    def scheduled_count(self) -> int:
        """Messages waiting for their time (retries, delayed jobs)."""

    def result_count(self) -> int:
        """Stored results."""


_default: Callable[[], JobQueue] | None = None
_adapter: Callable[[Any], JobQueue] | None = None
_fallback: Callable[[], JobQueue] | None = None


def register_queue(
    default: Callable[[], JobQueue], adapter: Callable[[Any], JobQueue], fallback: Callable[[], JobQueue] | None = None
) -> None:
    """Wire the job runner: ``default()`` gives the process's queue, ``adapter(runner)`` wraps a runner object,
    ``fallback()`` a queue that runs a job in this process (used when the process's queue is unavailable and
    the caller may wait for the work, see :func:`fallback_queue`)."""
    global _default, _adapter, _fallback
    _default, _adapter, _fallback = default, adapter, fallback


def fallback_queue() -> JobQueue | None:
    """The no-worker fallback: a queue that runs the job in this process inside ``submit`` (``jobs``'
    InlineQueue); None when none is wired."""
    return _fallback() if _fallback is not None else None


def job_queue(runner: Any = None) -> JobQueue:
    """The queue to use: ``runner`` itself when it is a :class:`JobQueue`, wrapped by the registered adapter when
    it is a runner object (a Huey instance), else the process's queue. QueueUnavailable when none is wired."""
    if isinstance(runner, JobQueue):
        return runner
    if runner is not None:
        if _adapter is None:
            raise QueueUnavailable("no job runner is wired into this process (import jobs)")
        return _adapter(runner)
    if _default is None:
        raise QueueUnavailable("no job runner is wired into this process (import jobs)")
    return _default()
