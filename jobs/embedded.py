"""The embedded consumer: background jobs inside the app process when there is no Redis.

With ``REDIS_URL`` unset and ``EMBEDDED_WORKER`` true (the defaults), :func:`ensure_started` starts one
Huey consumer per process -- :data:`WORKERS` worker threads plus the scheduler thread -- on the SqliteHuey
queue in ``DATA_DIR/queue.db``. It is idempotent (Streamlit reruns scripts constantly; call it from the
entry point or an ``st.cache_resource``), and an ``atexit`` handler stops it, letting a running job finish
for up to :data:`SHUTDOWN_TIMEOUT_S` seconds (an unfinished one is reconciled as interrupted at the next start).

With ``REDIS_URL`` set the app never runs jobs itself: start ``huey_consumer jobs.huey`` (or
``python -m core worker``) processes instead.

Run ``python -m jobs.embedded`` to host the embedded consumer in a process of its own (tests do).
"""

from __future__ import annotations

import atexit
import logging
import threading

from huey.consumer import Consumer

log = logging.getLogger(__name__)

#: Worker threads of the embedded consumer (a refresh and a compute can run side by side).
WORKERS = 2
#: How long the app waits at exit for running jobs, seconds.
SHUTDOWN_TIMEOUT_S = 10.0

_lock = threading.Lock()
_consumer: EmbeddedConsumer | None = None


class EmbeddedConsumer(Consumer):  # type: ignore[misc]  # huey ships no type information
    """A consumer that can live in a non-main thread: it installs no signal handlers
    (Streamlit runs scripts outside the main thread, where ``signal.signal`` is refused)."""

    def _set_signal_handlers(self) -> None:
        return None


def should_run() -> bool:
    """True when this process should host the consumer: no REDIS_URL and EMBEDDED_WORKER on."""
    from core.config import get_settings

    settings = get_settings()
    return settings.redis_url is None and settings.embedded_worker


def ensure_started() -> bool:
    """Start the in-process consumer once per process if :func:`should_run`; return whether one is running."""
    global _consumer
    if _consumer is not None:
        return True
    if not should_run():
        return False
    with _lock:
        if _consumer is not None:
            return True
        from jobs import huey
        from jobs import worker as worker_life

        if huey.immediate:
            return False
        worker_life.set_kind("embedded")
        consumer = EmbeddedConsumer(
            huey,
            workers=WORKERS,
            worker_type="thread",
            periodic=True,
            initial_delay=0.05,
            backoff=1.5,
            max_delay=1.0,
            check_worker_health=False,
            shutdown_timeout=SHUTDOWN_TIMEOUT_S,
        )
        consumer.start()
        _consumer = consumer
        atexit.register(stop)
        log.info(
            "embedded job consumer started (%d worker threads, queue %s)",
            WORKERS,
            getattr(huey.storage, "filename", "?"),
        )
        return True


def stop() -> None:
    """Stop the embedded consumer, waiting for running jobs up to the shutdown timeout. Idempotent."""
    global _consumer
    with _lock:
        consumer, _consumer = _consumer, None
    if consumer is None:
        return
    consumer.stop(graceful=True)
    consumer.huey.notify_interrupted_tasks()
    log.info("embedded job consumer stopped")


def is_running() -> bool:
    return _consumer is not None


def main() -> None:  # pragma: no cover - exercised by the integration tests in a subprocess
    import signal
    import time

    from core.logs import configure_logging

    configure_logging(None)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    if not ensure_started():
        raise SystemExit("the embedded consumer does not run with REDIS_URL set or EMBEDDED_WORKER=false")
    while not done.wait(0.5):
        time.sleep(0)
    stop()


if __name__ == "__main__":  # pragma: no cover
    main()
