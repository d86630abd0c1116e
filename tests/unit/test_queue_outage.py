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


def test_a_task_taken_just_before_an_outage_is_kept_and_runs_once_the_queue_is_back(outage_log):
    # Huey reads the storage once more between taking a task and running it (is it revoked?). The queue going
    # down in that moment lost the task and logged Huey's traceback (CI, 2026-11-29); now the worker keeps it.
    from huey import MemoryHuey

    huey = MemoryHuey("outage-kept", utc=True)
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


def test_a_task_whose_body_ran_is_not_run_again_when_storing_its_result_fails(outage_log):
    from huey import MemoryHuey

    huey = MemoryHuey("outage-ran", utc=True)
    ran: list[int] = []

    @huey.task()
    def job(n: int) -> int:
        ran.append(n)
        return n

    job(3)
    clock = Clock()
    worker = _worker_on(huey, clock)
    _flaky(huey.storage, "put_data", 1)  # the result cannot be stored: the queue went down while it ran
    _flaky(huey.storage, "queue_size", 1)
    worker.loop()
    assert ran == [3] and worker.carried is None
    worker.loop()  # the backoff round passes
    worker.loop()
    assert ran == [3]
    lines = _lines(outage_log)
    assert "which ran" in lines[0] and all(r.exc_info is None for r in outage_log.records)


def test_a_task_failing_while_the_queue_answers_is_a_bug_and_keeps_its_traceback(caplog):
    from huey import MemoryHuey

    caplog.set_level(logging.ERROR, logger="huey.consumer.Worker")
    huey = MemoryHuey("outage-bug", utc=True)

    @huey.task()
    def job() -> None:
        return None

    job()
    worker = _worker_on(huey, Clock())

    def broken(*args, **kwargs):
        raise KeyError("a bug in the storage layer, not an outage")

    huey.storage.peek_many = broken
    worker.loop()
    records = [r for r in caplog.records if r.name == "huey.consumer.Worker"]
    assert len(records) == 1 and records[0].exc_info is not None and worker.carried is None
