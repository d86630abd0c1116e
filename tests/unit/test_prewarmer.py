"""ui.cache.Prewarmer: work computed ahead on one daemon thread, each key queued once, stale work dropped."""

from __future__ import annotations

import logging
import threading

from ui.cache import Prewarmer


def test_a_key_is_queued_once_however_many_sessions_ask_while_the_thread_is_busy():
    current = {"token": "db|1"}
    prewarm = Prewarmer(lambda: current["token"])
    release = threading.Event()
    runs: list[str] = []
    prewarm.submit("slow", "db|1", lambda: (release.wait(5), runs.append("slow")))
    for _ in range(20):  # twenty Dashboard redraws while the thread is busy
        prewarm.submit("risk", "db|1", lambda: runs.append("risk"))
    release.set()
    assert prewarm.idle(10)
    assert runs == ["slow", "risk"]
    assert prewarm._thread is not None and prewarm._thread.daemon  # stopping the app never waits for it


def test_work_for_an_old_data_version_is_dropped_when_its_turn_comes():
    current = {"token": "db|7"}
    prewarm = Prewarmer(lambda: current["token"])
    release = threading.Event()
    runs: list[str] = []
    prewarm.submit("busy", "db|7", lambda: release.wait(5))
    prewarm.submit("old", "db|7", lambda: runs.append("old"))
    current["token"] = "db|8"  # a refresh committed while it waited
    prewarm.submit("new", "db|8", lambda: runs.append("new"))
    release.set()
    assert prewarm.idle(10) and runs == ["new"]


def test_a_failure_is_logged_once_and_not_retried_ahead(caplog):
    caplog.set_level(logging.WARNING, logger="ui.cache")
    prewarm = Prewarmer(lambda: "db|1")
    tries: list[int] = []

    def broken() -> None:
        tries.append(1)
        raise RuntimeError("database went away")

    for _ in range(5):
        prewarm.submit("risk", "db|1", broken)
        assert prewarm.idle(10)
    assert tries == [1]
    lines = [r.getMessage() for r in caplog.records if r.name == "ui.cache"]
    assert len(lines) == 1 and "RuntimeError: database went away" in lines[0]
    prewarm.clear()  # a cleared process (tests, a new data version's key) tries again
    prewarm.submit("risk", "db|1", broken)
    assert prewarm.idle(10) and tries == [1, 1]
