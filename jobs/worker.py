"""The life of a consumer process: its identity, its heartbeat, reconciliation, and riding out a queue outage.

Huey calls the ``on_startup`` hook once per worker thread (or per worker process with ``-k process``).
The first call in a process writes a heartbeat, reconciles runs left behind by dead workers
(:func:`core.services.workers.reconcile_interrupted`) and starts one daemon thread that beats every
:data:`~core.services.workers.HEARTBEAT_INTERVAL_S` seconds, looks for queued runs whose queue message was lost
(:class:`core.services.workers.LostMessageWatch`, every beat) and reconciles interrupted runs again every few
beats, so a worker killed on another host is noticed by the survivors too. Later calls only count the workers.

Queue outages (Redis down, the SQLite queue file unreadable): :class:`QueueOutage` paces every thread of the
process. The first failure logs one line and starts an exponential backoff (1 s, doubling, capped at
:data:`OUTAGE_MAX_DELAY_S`); every thread waits for the same next try, so the process logs one line per retry,
never a traceback per poll; the first success logs "reachable again". ``python -m core worker`` waits in the
same way before it starts its consumer, and runs :class:`Consumer` (Huey's consumer with a worker and a
scheduler that report through the outage instead of logging a traceback on every poll).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from huey.consumer import Consumer as HueyConsumer
from huey.consumer import Scheduler as HueyScheduler
from huey.consumer import Worker as HueyWorker
from huey.consumer import WorkerRecycle
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from core.errors import one_line
from core.models import utcnow
from core.services import workers as svc

log = logging.getLogger(__name__)

#: Beats between two reconciliations of interrupted runs by a running worker.
RECONCILE_EVERY = 6
#: First wait after a queue failure, the factor between waits, and the longest wait (seconds).
OUTAGE_FIRST_DELAY_S = 1.0
OUTAGE_BACKOFF = 2.0
OUTAGE_MAX_DELAY_S = 30.0

_lock = threading.Lock()
_state: dict[str, Any] = {
    "threads": 0,
    "beater": None,
    "stop": None,
    "kind": "consumer",
    "started_at": None,
    "lost_watch": None,
}


# --------------------------------------------------------------------------- queue outages
class QueueOutage:
    """Whether the queue answers, shared by every thread of a process; paces retries while it does not.

    :meth:`failed` is called by whichever thread met the failure: it starts (or continues) the outage, and
    only the first caller of each retry round logs, one line with the attempt number and the wait. Other
    threads get the time left before the next try and stay silent. :meth:`succeeded` ends the outage (one
    line). ``clock`` is injectable so tests control time.
    """

    def __init__(
        self,
        *,
        first_delay_s: float = OUTAGE_FIRST_DELAY_S,
        backoff: float = OUTAGE_BACKOFF,
        max_delay_s: float = OUTAGE_MAX_DELAY_S,
        clock: Callable[[], float] = time.monotonic,
        logger: logging.Logger = log,
        where: str = "the job queue",
    ) -> None:
        self.first_delay_s, self.backoff, self.max_delay_s = first_delay_s, backoff, max_delay_s
        self.clock = clock
        self.log = logger
        self.where = where
        self._lock = threading.Lock()
        self.down_since: float | None = None
        self.next_try_at = 0.0
        self.delay = 0.0
        self.failures = 0

    @property
    def is_down(self) -> bool:
        return self.down_since is not None

    def wait_s(self) -> float:
        """Seconds until the next try is due (0 when the queue is up or a try is due now)."""
        with self._lock:
            if self.down_since is None:
                return 0.0
            return max(0.0, self.next_try_at - self.clock())

    def failed(self, exc: BaseException, doing: str) -> float:
        """Record a failure met while ``doing`` something; return the seconds to wait before trying again."""
        with self._lock:
            now = self.clock()
            if self.down_since is not None and now < self.next_try_at:
                return self.next_try_at - now  # this round was already reported by another thread
            if self.down_since is None:
                self.down_since = now
                self.delay = self.first_delay_s
            else:
                self.delay = min(self.delay * self.backoff, self.max_delay_s)
            self.failures += 1
            self.next_try_at = now + self.delay
            self.log.warning(
                "%s is unreachable (%s, attempt %d): %s; retrying in %.0f s",
                self.where,
                doing,
                self.failures,
                one_line(exc),
                self.delay,
            )
            return self.delay

    def succeeded(self) -> None:
        """The queue answered: end the outage (logs once how long it lasted)."""
        if self.down_since is None:
            return
        with self._lock:
            if self.down_since is None:
                return
            lasted = self.clock() - self.down_since
            failures = self.failures
            self.down_since, self.next_try_at, self.delay, self.failures = None, 0.0, 0.0, 0
        self.log.warning("%s is reachable again after %.0f s (%d failed tries)", self.where, lasted, failures)


#: The process's outage tracker (every consumer thread, the heartbeat thread and the start-up wait use it).
outage = QueueOutage()


def probe_queue(huey: Any) -> None:
    """Raise when the queue storage does not answer (a Redis PING; a read of the SQLite queue)."""
    conn = getattr(huey.storage, "conn", None)
    if conn is not None and hasattr(conn, "ping"):
        conn.ping()
    else:
        huey.pending_count()


def wait_for_queue(
    huey: Any,
    *,
    stop: threading.Event | None = None,
    tracker: QueueOutage | None = None,
    sleep: Callable[[float], Any] | None = None,
) -> bool:
    """Block until the queue answers, one log line per failed try (exponential backoff); False if stopped."""
    tracker = tracker or outage
    stop = stop or threading.Event()
    sleep = sleep or stop.wait
    while not stop.is_set():
        try:
            probe_queue(huey)
        except Exception as exc:  # noqa: BLE001 - redis and sqlite raise many kinds of connection errors
            sleep(tracker.failed(exc, "starting the worker"))
            continue
        tracker.succeeded()
        return True
    return False


#: Per worker thread while it executes a task: ``stop`` (the worker's stop flag), ``task_id`` (set when the task's
#: body begins) and ``after`` (True once the body has returned or raised). Huey catches the body's own errors, so
#: an error that reaches :meth:`Worker.loop` came from the queue's storage before or after the body.
_started = threading.local()
#: Tries of a task that failed before its body ran for a reason other than the queue (then Huey's traceback).
KEEP_TRIES = 3


def _watch_body(task: Any) -> None:
    """Wrap this task object's body so the worker thread knows when it begins and when it has ended."""
    body = task.execute

    def execute() -> Any:
        _started.task_id = task.id
        try:
            return body()
        finally:
            _started.after = True

    task.execute = execute


def is_queue_failure(exc: BaseException, huey: Any) -> bool:
    """True when ``exc`` is the queue's storage failing (Redis or SQLite unreachable), not a bug: a connection
    or timeout error of the client, or any error while the queue does not answer a probe."""
    if isinstance(exc, (ConnectionError, TimeoutError, RedisConnectionError, RedisTimeoutError)):
        return True
    try:
        probe_queue(huey)
    except Exception:  # noqa: BLE001 - the probe failing is the answer
        return True
    return False


def after_body(huey: Any, doing: str, call: Callable[[], Any]) -> Any:
    """Run ``call`` (a queue write Huey makes once a task's body has run: clearing its revoke flag, storing its
    result, queueing its retry or its next task). In a worker thread after the body began, a queue failure does
    not drop that write, which would leave the run 'running' or 'retrying' for good: the thread waits for the
    queue with the shared backoff (one line per round) and writes again, until it succeeds or the worker stops.
    Anywhere else (the app queueing a job) the error is raised at once."""
    stop = getattr(_started, "stop", None)
    task_id = getattr(_started, "task_id", None)
    if stop is None or not getattr(_started, "after", False):
        return call()  # not in a worker, or the body has not ended: the caller handles the error
    while True:
        try:
            result = call()
        except Exception as exc:
            if not is_queue_failure(exc, huey):
                raise
            tracker = getattr(_started, "tracker", outage)
            if stop.wait(tracker.failed(exc, f"{doing} of task {task_id}, which ran; waiting to write it")):
                log.warning("the worker stopped before it could record %s of task %s", doing, task_id)
                raise
            continue
        getattr(_started, "tracker", outage).succeeded()
        return result


class Worker(HueyWorker):  # type: ignore[misc]  # huey ships no type information
    """Huey's worker, except that a queue that cannot be read costs one log line per retry round (shared
    backoff, see :class:`QueueOutage`) instead of a traceback on every poll, and no task is lost to an outage:

    * Before the body: Huey reads the queue's storage once more (is the task revoked?). When that read fails,
      the worker keeps the task and runs it once the queue answers (one line per round). Any other failure
      before the body keeps it too, for :data:`KEEP_TRIES` tries, then Huey's traceback (the run is then
      reconciled as lost by :class:`core.services.workers.LostMessageWatch`).
    * After the body: every queue write Huey makes waits for the queue (:func:`after_body`), so a run's
      outcome, its retry and its next task are recorded once the queue is back.
    * A worker that stops while keeping a task puts it back on the queue (or names it in the log)."""

    tracker: QueueOutage = outage
    carried: Any = None  # the task taken off the queue whose body has not run yet
    carried_tries = 0

    def loop(self, now: Any = None) -> None:
        wait = self.tracker.wait_s()
        if wait > 0:
            self.stop_flag.wait(wait)
            return
        if self.carried is not None:
            try:
                probe_queue(self.huey)
            except Exception as exc:  # noqa: BLE001
                self.stop_flag.wait(self.tracker.failed(exc, "checking the queue before running a kept task"))
                return
            self.tracker.succeeded()
            task, self.carried = self.carried, None
        else:
            try:
                task = self.huey.dequeue()
            except Exception as exc:  # noqa: BLE001
                self.stop_flag.wait(self.tracker.failed(exc, "reading the queue"))
                return
            self.tracker.succeeded()
            self.carried_tries = 0
        if task is None:
            if not self.huey.storage.blocking:
                self.sleep()
            return
        self.delay = self.default_delay
        self.task_count += 1
        _watch_body(task)
        _started.task_id, _started.after, _started.stop, _started.tracker = None, False, self.stop_flag, self.tracker
        try:
            self.huey.execute(task, now)
        except Exception as exc:  # a task's own failure is recorded on its run; this is Huey's own last resort
            if getattr(_started, "task_id", None) == task.id:  # the body ran: the error came after it
                if not is_queue_failure(exc, self.huey):
                    self._logger.exception("Unhandled error during execution of task %s.", task.id)
                # else: the worker stopped while waiting to record the outcome (after_body logged it)
            elif is_queue_failure(exc, self.huey):
                self._keep(task, count=False)
                self.stop_flag.wait(self.tracker.failed(exc, f"checking task {task.id} before it runs; kept"))
                return
            elif self.carried_tries + 1 < KEEP_TRIES:
                self._keep(task)
                self._logger.warning(
                    "task %s failed before it ran (%s); kept, try %d of %d",
                    task.id,
                    one_line(exc),
                    self.carried_tries,
                    KEEP_TRIES,
                )
                self.stop_flag.wait(OUTAGE_FIRST_DELAY_S)
                return
            else:
                self._logger.exception(
                    "Unhandled error before task %s ran; dropped after %d tries.", task.id, KEEP_TRIES
                )
        finally:
            _started.task_id, _started.after, _started.stop = None, False, None
            task.__dict__.pop("execute", None)  # the class's own body again (a kept task is wrapped once more)
        if self.max_tasks and self.task_count >= self.max_tasks:
            self._logger.info("Worker reached max tasks (%d), exiting.", self.max_tasks)
            raise WorkerRecycle()

    def _keep(self, task: Any, *, count: bool = True) -> None:
        """Keep ``task`` (its body has not run) to run at the next loop; ``count`` a try that was not the queue."""
        self.task_count -= 1
        self.carried = task
        self.carried_tries += int(count)

    def shutdown(self) -> None:
        """Huey's shutdown hooks, after putting a kept task back on the queue for the next worker."""
        task, self.carried = self.carried, None
        if task is not None:
            try:
                self.huey.enqueue(task)
                self._logger.warning("stopping: task %s, kept through a queue outage, is back on the queue", task.id)
            except Exception as exc:  # noqa: BLE001 - the queue is still down: say which task waits
                self._logger.warning(
                    "stopping: task %s, kept through a queue outage, could not be put back (%s); its run is "
                    "reconciled as lost by the next worker",
                    task.id,
                    one_line(exc),
                )
        super().shutdown()


class Scheduler(HueyScheduler):  # type: ignore[misc]  # huey ships no type information
    """Huey's scheduler, except that while the queue is down it waits for the shared next try, and a failure
    to read the schedule or to enqueue is one line per retry round (see :class:`QueueOutage`)."""

    tracker: QueueOutage = outage
    _next_loop: float  # set by Huey's Scheduler (time.monotonic() of the next loop)

    def loop(self, now: Any = None) -> None:
        current = self._next_loop
        self._next_loop += self.interval
        if self._next_loop < time.monotonic():
            self._next_loop = time.monotonic()
            return
        if self.tracker.wait_s() == 0:
            try:
                for task in self.huey.read_schedule(now):
                    self.huey.enqueue(task)
                if self.periodic and self._next_periodic <= time.monotonic():
                    while self._next_periodic <= time.monotonic():
                        self._next_periodic += self.periodic_task_seconds
                    for task in self.huey.read_periodic(now):
                        self._logger.info("Enqueueing periodic task %s.", task)
                        self.huey.enqueue(task)
                self.tracker.succeeded()
            except Exception as exc:  # noqa: BLE001
                self.tracker.failed(exc, "reading the schedule")
        self.sleep_for_interval(current, self.interval)


class Consumer(HueyConsumer):  # type: ignore[misc]  # huey ships no type information
    """Huey's consumer with the outage-aware :class:`Worker` and :class:`Scheduler` (Huey's documented
    extension point: ``worker_class`` / ``scheduler_class``)."""

    worker_class = Worker
    scheduler_class = Scheduler


# --------------------------------------------------------------------------- identity and heartbeat
def set_kind(kind: str) -> None:
    """``"consumer"`` (huey_consumer, the default) or ``"embedded"`` (a consumer inside the app)."""
    _state["kind"] = kind


def identity() -> dict[str, Any]:
    return svc.worker_identity()


def current_worker_id() -> str:
    return str(identity()["worker_id"])


def beat() -> None:
    """Write this process's heartbeat now."""
    ident = identity()
    svc.heartbeat(
        ident["worker_id"],
        hostname=ident["hostname"],
        pid=ident["pid"],
        workers=max(1, _state["threads"]),
        kind=_state["kind"],
        started_at=_state["started_at"],
    )


def _lost_watch() -> Any:
    if _state["lost_watch"] is None:
        _state["lost_watch"] = svc.LostMessageWatch()
    return _state["lost_watch"]


def _beat_forever(stop: threading.Event, huey: Any) -> None:
    n = 0
    while not stop.wait(svc.HEARTBEAT_INTERVAL_S):
        n += 1
        try:
            beat()
        except Exception as exc:  # noqa: BLE001 - a database hiccup must not kill the heartbeat
            log.warning("heartbeat failed: %s", one_line(exc))
            continue
        if outage.is_down:
            continue  # the queue cannot be read: the consumer threads report it; decide nothing about runs
        try:
            _lost_watch().check(huey=huey)
            if n % RECONCILE_EVERY == 0:
                svc.reconcile_interrupted(current_worker=current_worker_id(), huey=huey)
        except Exception as exc:  # noqa: BLE001
            log.warning("reconciliation failed: %s", one_line(exc))


def worker_started(huey: Any) -> None:
    """Huey ``on_startup`` hook (every worker thread calls it)."""
    with _lock:
        _state["threads"] += 1
        first = _state["beater"] is None
        if first:
            _state["started_at"] = utcnow()
            stop = threading.Event()
            _state["stop"] = stop
            _state["beater"] = threading.Thread(
                target=_beat_forever, args=(stop, huey), name="autoindex-heartbeat", daemon=True
            )
    try:
        beat()
        if first:
            marked = svc.reconcile_interrupted(current_worker=current_worker_id(), huey=huey)
            if marked:
                log.warning("marked %d interrupted run(s) as failed: %s", len(marked), marked)
    except Exception as exc:  # noqa: BLE001
        log.warning("worker start-up bookkeeping failed: %s", one_line(exc))
    if first:
        _state["beater"].start()


def worker_stopped() -> None:
    """Huey ``on_shutdown`` hook: the last worker thread stops the heartbeat."""
    with _lock:
        _state["threads"] = max(0, _state["threads"] - 1)
        if _state["threads"] or _state["stop"] is None:
            return
        _state["stop"].set()
        _state["beater"] = None
        _state["stop"] = None
