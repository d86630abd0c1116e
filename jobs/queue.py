"""The job queue port (:class:`core.services.ports.JobQueue`): :class:`HueyQueue` over Huey's public API, and
:class:`InlineQueue`, which runs each job in this process inside ``submit`` (tests, and the no-worker fallback of
:func:`core.services.ports.fallback_queue`)."""

from __future__ import annotations

from typing import Any

from huey import Huey
from huey.storage import RedisStorage, SqliteStorage


class HueyQueue:
    """:class:`core.services.ports.JobQueue` on a Huey instance (Redis, SQLite, or immediate mode)."""

    def __init__(self, huey: Huey) -> None:
        self.huey = huey

    @property
    def backend(self) -> str:
        if self.huey.immediate:
            return "memory"
        storage = self.huey.storage
        if isinstance(storage, RedisStorage):
            return "redis"
        return "sqlite" if isinstance(storage, SqliteStorage) else type(storage).__name__

    @property
    def immediate(self) -> bool:
        return bool(self.huey.immediate)

    def ping(self) -> None:
        """Redis: a PING on the storage's client (fail fast, before a run is written); SQLite: nothing to do."""
        if self.huey.immediate:
            return
        conn = getattr(self.huey.storage, "conn", None)  # RedisStorage.conn is the redis client
        if conn is not None and hasattr(conn, "ping"):
            conn.ping()

    def submit(self, kind: str, run_id: int, args: dict[str, Any], message_id: str) -> None:
        from jobs.tasks import task_for_kind

        self.huey.enqueue(task_for_kind(kind).s(run_id, args, id=message_id))

    def revoke(self, message_id: str) -> None:
        self.huey.revoke_by_id(message_id, revoke_once=True)

    def restore(self, message_id: str) -> None:
        self.huey.restore_by_id(message_id)

    def waiting_ids(self) -> set[str]:
        return {t.id for t in self.huey.pending()} | {t.id for t in self.huey.scheduled()}

    def pending_count(self) -> int:
        return int(self.huey.pending_count())

    def scheduled_count(self) -> int:
        return int(self.huey.scheduled_count())

    def result_count(self) -> int:
        return int(self.huey.result_count())


class InlineQueue:
    """:class:`core.services.ports.JobQueue` that runs each job in this process, now, inside :meth:`submit`
    (:func:`jobs.tasks.run_inline`: one attempt, the outcome recorded on the run, never raised).

    Nothing ever waits in it: there is nothing to revoke, and its counts are zero. Used by tests, and by the
    services as the no-worker fallback (:func:`core.services.ports.fallback_queue`) where the caller may wait for
    the work, e.g. the recompute after an activation while the job queue is down."""

    backend = "inline"
    immediate = True

    def ping(self) -> None:
        """Always reachable."""

    def submit(self, kind: str, run_id: int, args: dict[str, Any], message_id: str) -> None:
        from jobs.tasks import run_inline  # jobs.tasks registers its tasks on the package's Huey: bound at call

        run_inline(kind, run_id, args)

    def revoke(self, message_id: str) -> None:
        """Nothing waits here (the job ran inside submit)."""

    def restore(self, message_id: str) -> None:
        """Nothing was revoked."""

    def waiting_ids(self) -> set[str]:
        return set()

    def pending_count(self) -> int:
        return 0

    def scheduled_count(self) -> int:
        return 0

    def result_count(self) -> int:
        return 0


def set_immediate(instance: Huey, immediate: bool, *, storage: Any = None) -> None:
    """Switch ``instance`` in or out of immediate mode with Huey's public switches; with ``storage``, put that
    storage back instead of building a new one (tests save and restore the process's queue this way)."""
    if storage is None:
        instance.immediate = immediate
        return
    use_memory = instance.immediate_use_memory
    instance.immediate_use_memory = False  # public flag: switching mode then keeps the storage
    try:
        instance.immediate = immediate
    finally:
        instance.immediate_use_memory = use_memory
    instance.storage = storage
