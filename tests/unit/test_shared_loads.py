"""ui.cache.SharedLoads: one computation per key for the whole process, however many sessions ask at once."""

from __future__ import annotations

import threading
import time

import pytest

from ui.cache import SharedLoads


def test_concurrent_callers_share_one_computation():
    loads = SharedLoads(kept=2)
    started = threading.Barrier(8)
    calls: list[int] = []
    results: list[object] = []

    def load() -> object:
        calls.append(1)
        time.sleep(0.2)  # long enough that every other caller arrives while it runs
        return object()

    def ask() -> None:
        started.wait()
        results.append(loads.get("v1", load))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(calls) == 1 and len(results) == 8 and all(r is results[0] for r in results)


def test_a_failed_load_reaches_every_waiter_and_the_next_call_loads_again():
    loads = SharedLoads(kept=2)
    attempts: list[int] = []

    def flaky() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("database went away")
        return "loaded"

    with pytest.raises(RuntimeError, match="database went away"):
        loads.get("v1", flaky)
    assert loads.get("v1", flaky) == "loaded" and loads.get("v1", flaky) == "loaded"
    assert len(attempts) == 2


def test_only_the_most_recently_used_keys_are_kept():
    loads = SharedLoads(kept=2)
    for key in ("v1", "v2"):
        loads.get(key, lambda key=key: key)
    loads.get("v1", lambda: "again")  # v1 used last: v2 is the oldest
    loads.get("v3", lambda: "v3")
    assert loads.has("v1") and loads.has("v3") and not loads.has("v2")
    assert loads.get("v1", lambda: "recomputed") == "v1"
