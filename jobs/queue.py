"""The job queue port (:class:`core.services.ports.JobQueue`) over Huey's public API."""
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
