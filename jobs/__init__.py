"""The one Huey instance of AutoIndex, built from the settings.

* ``REDIS_URL`` set: :class:`huey.RedisHuey` on that server; run workers anywhere with
  ``huey_consumer jobs.huey -w 4`` (or ``python -m core worker -w 4``). The app never runs jobs itself.
* otherwise: :class:`huey.SqliteHuey` in ``DATA_DIR/queue.db``; the app starts one consumer thread
  pool in its own process (:mod:`jobs.embedded`).

Results are stored (run state lives in the ``task_runs`` table, see :mod:`core.services.runs`).
Tests may set ``huey.immediate = True``: tasks then run synchronously inside ``enqueue`` on
in-memory storage (:func:`jobs.queue.set_immediate` puts a saved mode and storage back), or pass a
:class:`jobs.queue.InlineQueue` as ``huey=``.

The tasks are imported at the bottom so that ``huey_consumer jobs.huey`` registers them.
"""

from __future__ import annotations

from huey import Huey, RedisHuey, SqliteHuey

from core.config import get_settings

#: Queue name: the prefix of every Redis key (``huey.redis.autoindex...``) and the SQLite queue name.
QUEUE_NAME = "autoindex"


class _ProjectConsumer:
    """The project's Huey behaviour. Every consumer of this instance is the project's (:class:`jobs.worker.Consumer`: heartbeats, one log line
    per retry with backoff while the queue is down), also one started by ``huey_consumer jobs.huey``, which builds
    it through Huey's public ``create_consumer`` hook."""

    def create_consumer(self, **options):  # type: ignore[no-untyped-def]
        from jobs.worker import Consumer  # jobs.worker imports this package: bound when a consumer starts

        return Consumer(self, **options)

    # The queue writes Huey makes after a task's body ran wait out a queue outage in a worker thread
    # (jobs.worker.after_body) instead of dropping the run's outcome, its retry or its next task.
    def delete(self, key):  # type: ignore[no-untyped-def]
        from jobs.worker import after_body

        return after_body(self, "clearing the revoke flag", lambda: super(_ProjectConsumer, self).delete(key))  # type: ignore[misc]

    def put_result(self, key, data):  # type: ignore[no-untyped-def]
        from jobs.worker import after_body

        return after_body(self, "storing the result", lambda: super(_ProjectConsumer, self).put_result(key, data))  # type: ignore[misc]

    def add_schedule(self, task):  # type: ignore[no-untyped-def]
        from jobs.worker import after_body

        return after_body(self, "scheduling the retry", lambda: super(_ProjectConsumer, self).add_schedule(task))  # type: ignore[misc]

    def enqueue(self, task):  # type: ignore[no-untyped-def]
        from jobs.worker import after_body

        return after_body(self, "queueing the next task", lambda: super(_ProjectConsumer, self).enqueue(task))  # type: ignore[misc]


class ProjectRedisHuey(_ProjectConsumer, RedisHuey):  # type: ignore[misc]  # huey ships no type information
    """RedisHuey whose consumers are the project's."""


class ProjectSqliteHuey(_ProjectConsumer, SqliteHuey):  # type: ignore[misc]  # huey ships no type information
    """SqliteHuey whose consumers are the project's."""


def build_huey() -> Huey:
    """A Huey instance for the current settings (one per process: use :data:`huey`)."""
    settings = get_settings()
    if settings.redis_url:
        from redis import ConnectionPool

        # A refused or unreachable server fails within seconds instead of hanging a page.
        pool = ConnectionPool.from_url(settings.redis_url, socket_connect_timeout=3, health_check_interval=30)
        return ProjectRedisHuey(
            QUEUE_NAME,
            connection_pool=pool,
            results=True,
            utc=True,
            # dequeue blocks on BRPOP, so a warm consumer starts a job within milliseconds
            blocking=True,
            read_timeout=1,
        )
    return ProjectSqliteHuey(QUEUE_NAME, filename=str(settings.data_dir / "queue.db"), results=True, utc=True)


huey: Huey = build_huey()


def reconfigure() -> Huey:
    """Point :data:`huey` at the queue of the *current* settings (tests and tools that change
    DATA_DIR or REDIS_URL after import). Registered tasks and signal handlers are kept."""
    fresh = build_huey()
    huey.immediate = False  # Huey's public switch (leaving immediate mode may rebuild a storage: replaced next)
    huey.storage = fresh.storage
    return huey


def backend_name(instance: Huey | None = None) -> str:
    """``"redis"`` or ``"sqlite"`` (``"memory"`` in immediate mode)."""
    from jobs.queue import HueyQueue

    return HueyQueue(instance or huey).backend


from core.services.ports import register_queue  # noqa: E402,I001  (order matters: tasks connect their signals first)
from jobs import schedule, tasks  # noqa: E402,F401  (register the tasks, periodic tasks and signal handlers)
from jobs import alert_tasks, observe  # noqa: E402,F401  (after tasks: the alert check; job runs into metrics)
from jobs import sweep_tasks  # noqa: E402,F401  (after tasks: the sweep parent run and its helper jobs)
from jobs.queue import HueyQueue, InlineQueue  # noqa: E402

# the services reach the queue through this port only (core never imports jobs); InlineQueue is the no-worker
# fallback (core.services.ports.fallback_queue)
register_queue(lambda: HueyQueue(huey), HueyQueue, fallback=InlineQueue)
