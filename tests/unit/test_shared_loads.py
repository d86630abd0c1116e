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


def test_a_failure_is_not_kept_nor_the_frames_of_its_traceback():
    """A failed load is forgotten at once (found by attacking issue 17's shared backtests: 32 failed runs each kept
    their prices, engine result and market data alive through the traceback)."""
    import gc
    import weakref

    class Big:
        pass

    store = SharedLoads(4)
    seen: list[weakref.ref] = []  # type: ignore[type-arg]

    def fails() -> None:
        big = Big()
        seen.append(weakref.ref(big))
        raise ValueError("no prices")

    with pytest.raises(ValueError):
        store.get("k", fails)
    gc.collect()
    assert not store.has("k") and seen[0]() is None  # nothing holds the failed run's frames


def test_a_refused_claim_computes_nothing_and_lets_a_waiter_claim_again():
    """A caller refused by its rate limit runs nothing; another caller waiting on the same key runs it."""
    store = SharedLoads(4)
    started = threading.Event()
    release = threading.Event()
    loads: list[str] = []

    def refuse() -> None:
        started.set()
        release.wait(5)
        raise RuntimeError("too many previews")

    out: list[object] = []
    first = threading.Thread(
        target=lambda: out.append(_try(lambda: store.get("k", lambda: loads.append("a"), on_claim=refuse)))
    )
    first.start()
    assert started.wait(5)
    second = threading.Thread(target=lambda: out.append(store.get("k", lambda: (loads.append("b"), 42)[1])))
    second.start()
    release.set()
    first.join(5)
    second.join(5)
    assert loads == ["b"] and sorted(map(str, out)) == ["42", "too many previews"]


def _try(call):  # type: ignore[no-untyped-def]
    try:
        return call()
    except RuntimeError as exc:
        return str(exc)
