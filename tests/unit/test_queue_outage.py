"""A queue outage costs one log line per retry, with a capped exponential backoff shared by every thread of a
worker process (issue 11, case 15). The clock is injected; the threads are real."""

from __future__ import annotations

import logging
import threading

import pytest

from jobs.worker import QueueOutage, wait_for_queue


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def outage_log(caplog):
    caplog.set_level(logging.WARNING, logger="test.outage")
    return caplog


def _tracker(clock: Clock) -> QueueOutage:
    return QueueOutage(clock=clock, logger=logging.getLogger("test.outage"), where="the job queue")


def _lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "test.outage"]


def test_backoff_doubles_to_the_cap_with_one_line_per_round(outage_log):
    clock = Clock()
    tracker = _tracker(clock)
    waits = []
    for _ in range(8):
        wait = tracker.failed(ConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused."), "reading")
        waits.append(wait)
        # every other thread polling within the round is told to wait, silently
        for _ in range(50):
            assert 0 < tracker.failed(ConnectionError("again"), "reading") <= wait
            assert tracker.wait_s() == pytest.approx(wait)
        clock.now += wait
    assert waits == [1, 2, 4, 8, 16, 30, 30, 30]
    lines = _lines(outage_log)
    assert len(lines) == 8
    assert lines[0] == (
        "the job queue is unreachable (reading, attempt 1): ConnectionError: Error 111 connecting to "
        "127.0.0.1:1. Connection refused.; retrying in 1 s"
    )
    assert "Traceback" not in "".join(lines) and all(r.exc_info is None for r in outage_log.records)
    tracker.succeeded()
    tracker.succeeded()
    assert _lines(outage_log)[-1] == "the job queue is reachable again after 121 s (8 failed tries)"
    assert len(_lines(outage_log)) == 9 and tracker.wait_s() == 0 and not tracker.is_down
    assert tracker.failed(OSError("down again"), "reading") == 1  # a new outage starts from the first delay


def test_many_threads_failing_at_once_log_one_line(outage_log):
    tracker = QueueOutage(logger=logging.getLogger("test.outage"))
    start = threading.Barrier(16)
    waits: list[float] = []

    def poll() -> None:
        start.wait()
        waits.append(tracker.failed(ConnectionError("refused"), "reading the queue"))

    threads = [threading.Thread(target=poll) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert len(waits) == 16 and all(0 < w <= 1 for w in waits)
    assert len(_lines(outage_log)) == 1


class FlakyStorage:
    """A queue storage that refuses ``failures`` pings, then answers (a fake of Redis's PING)."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.conn = self

    def ping(self) -> bool:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused.")
        return True


class FakeHuey:
    def __init__(self, failures: int) -> None:
        self.storage = FlakyStorage(failures)


def test_wait_for_queue_sleeps_the_backoff_and_logs_one_line_per_try(outage_log):
    clock = Clock()
    tracker = _tracker(clock)
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.now += seconds

    assert wait_for_queue(FakeHuey(failures=5), tracker=tracker, sleep=sleep) is True
    assert slept == [1, 2, 4, 8, 16]
    lines = _lines(outage_log)
    assert len(lines) == 6 and lines[-1].startswith("the job queue is reachable again after 31 s")
    stop = threading.Event()
    stop.set()
    assert wait_for_queue(FakeHuey(failures=1), tracker=tracker, stop=stop) is False


class ClockFlag(threading.Event):
    """The worker's stop flag: waiting moves the injected clock instead of sleeping."""

    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self.clock = clock

    def wait(self, timeout: float | None = None) -> bool:
        self.clock.now += timeout or 0
        return False


def _worker_on(huey, clock: Clock):
    from jobs.worker import Worker

    worker = Worker(huey, ClockFlag(clock), 0.1, 1.0, 2.0)
    worker.tracker = _tracker(clock)
    return worker


def _flaky(storage, name: str, failures: int):
    """Make ``storage.<name>`` fail ``failures`` times (the queue going down at that moment), then work."""
    real = getattr(storage, name)
    left = [failures]

    def call(*args, **kwargs):
        if left[0]:
            left[0] -= 1
            raise ConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused.")
        return real(*args, **kwargs)

    setattr(storage, name, call)


def _project_huey(name: str):
    """The project's Huey behaviour (jobs._ProjectConsumer) over Huey's in-memory storage."""
    from huey import MemoryHuey

    from jobs import _ProjectConsumer

    class ProjectMemoryHuey(_ProjectConsumer, MemoryHuey):
        pass

    return ProjectMemoryHuey(name, utc=True)


def test_a_task_taken_just_before_an_outage_is_kept_and_runs_once_the_queue_is_back(outage_log):
    # Huey reads the storage once more between taking a task and running it (is it revoked?). The queue going
    # down in that moment lost the task and logged Huey's traceback (CI, 2026-11-29); now the worker keeps it.
    huey = _project_huey("outage-kept")
    ran: list[int] = []

    @huey.task()
    def job(n: int) -> None:
        ran.append(n)

    job(7)
    clock = Clock()
    worker = _worker_on(huey, clock)
    _flaky(huey.storage, "peek_many", 2)  # two tries fail, while the queue stays down for pings too
    worker.loop()  # takes the task; the revocation check fails: kept, one line
    assert ran == [] and worker.carried is not None and huey.pending_count() == 0
    _flaky(huey.storage, "queue_size", 1)
    worker.loop()  # the probe before the kept task fails: one line
    worker.loop()  # the queue answers; the revocation check fails once more: one line
    worker.loop()  # runs it
    assert ran == [7] and worker.carried is None
    worker.loop()  # nothing left: the task ran once
    assert ran == [7]
    lines = _lines(outage_log)
    assert all(r.exc_info is None for r in outage_log.records)
    assert sum("unreachable" in line for line in lines) == 3
    assert "kept" in lines[0] and "before running a kept task" in lines[1]


@pytest.mark.parametrize("write", ["delete_data", "put_data"])
def test_after_the_body_ran_the_outcome_waits_for_the_queue_and_the_body_runs_once(outage_log, write):
    # The queue going down while a body runs: Huey's writes after it (clear the revoke flag, store the result)
    # failed, so the 'complete' signal that marks the run succeeded never came (the run stayed 'running').
    from huey import signals

    huey = _project_huey(f"outage-after-{write}")
    ran: list[int] = []
    completed: list[str] = []
    huey.signal(signals.SIGNAL_COMPLETE)(lambda signal, task: completed.append(task.id))

    @huey.task()
    def job(n: int) -> int:
        ran.append(n)
        return n * 2

    result = job(3)
    clock = Clock()
    worker = _worker_on(huey, clock)
    _flaky(huey.storage, write, 2)  # two rounds of the outage, then the queue answers
    worker.loop()
    assert ran == [3] and completed == [result.id] and worker.carried is None
    assert result.get() == 6  # the result was stored once the queue was back
    worker.loop()
    assert ran == [3] and huey.pending_count() == 0
    lines = _lines(outage_log)
    assert sum("unreachable" in line for line in lines) == 2 and "which ran; waiting to write it" in lines[0]
    assert sum("reachable again" in line for line in lines) == 1
    assert all(r.exc_info is None for r in outage_log.records)


def test_a_retry_is_still_scheduled_when_the_queue_fails_after_the_body(outage_log):
    from huey import signals

    huey = _project_huey("outage-retry")
    retrying: list[str] = []
    huey.signal(signals.SIGNAL_RETRYING)(lambda signal, task: retrying.append(task.id))
    attempts: list[int] = []

    @huey.task(retries=1, retry_delay=60)
    def job() -> None:
        attempts.append(1)
        raise RuntimeError("provider timed out")

    job()
    worker = _worker_on(huey, Clock())
    _flaky(huey.storage, "delete_data", 1)  # the first write after the failed body
    worker.loop()
    assert len(attempts) == 1 and len(retrying) == 1
    assert huey.scheduled_count() == 1  # the retry waits in the schedule, as without the outage


def test_the_body_may_still_see_the_outage_itself(outage_log):
    # Inside the body (a sweep fanning out its variants) a queue write fails at once, as in the app: the caller
    # decides (here the body records the failure); nothing waits.
    huey = _project_huey("outage-in-body")
    seen: list[str] = []

    @huey.task()
    def child() -> None:
        return None

    @huey.task()
    def parent() -> None:
        try:
            child()
        except ConnectionError as exc:
            seen.append(str(exc))

    parent()
    worker = _worker_on(huey, Clock())
    _flaky(huey.storage, "enqueue", 1)
    worker.loop()
    assert len(seen) == 1 and "Connection refused" in seen[0] and huey.pending_count() == 0
    assert not [line for line in _lines(outage_log) if "unreachable" in line]


def test_a_task_failing_before_its_body_for_another_reason_is_kept_then_dropped_with_a_traceback(caplog):
    caplog.set_level(logging.WARNING, logger="huey.consumer.Worker")
    huey = _project_huey("outage-bug")
    ran: list[int] = []

    @huey.task()
    def job() -> None:
        ran.append(1)

    job()
    worker = _worker_on(huey, Clock())
    real = huey.storage.peek_many
    broken_for = [2]

    def sometimes(*args, **kwargs):  # e.g. SQLite's 'database is locked' while the queue still answers
        if broken_for[0]:
            broken_for[0] -= 1
            raise KeyError("database is locked")
        return real(*args, **kwargs)

    huey.storage.peek_many = sometimes
    worker.loop()
    worker.loop()
    assert ran == [] and worker.carried is not None
    worker.loop()
    assert ran == [1]  # the third try ran it
    records = [r for r in caplog.records if r.name == "huey.consumer.Worker"]
    assert len(records) == 2 and all(r.exc_info is None and "kept" in r.getMessage() for r in records)

    job()
    huey.storage.peek_many = lambda *args, **kwargs: (_ for _ in ()).throw(KeyError("a bug"))
    for _ in range(3):
        worker.loop()
    records = [r for r in caplog.records if r.name == "huey.consumer.Worker"]
    assert records[-1].exc_info is not None and "dropped after 3 tries" in records[-1].getMessage()
    assert worker.carried is None and ran == [1]


def test_a_worker_stopping_with_a_kept_task_puts_it_back_on_the_queue(outage_log):
    huey = _project_huey("outage-stop")

    @huey.task()
    def job() -> None:
        return None

    job()
    worker = _worker_on(huey, Clock())
    _flaky(huey.storage, "peek_many", 1)
    worker.loop()
    assert worker.carried is not None and huey.pending_count() == 0
    worker.shutdown()
    assert worker.carried is None and huey.pending_count() == 1  # the next worker takes it
