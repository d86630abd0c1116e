"""The lock mechanism itself (core/infra/locks.py), on SQLite (lock files) and PostgreSQL (advisory locks):
one holder at a time across threads and processes, the holder named in AlreadyRunning, bounded waits, and no
lock outliving a killed process."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest

from core.errors import AlreadyRunning
from core.infra import locks
from tests.concurrency.conftest import assert_clean, finish, run_at_once, start


def _hold_in_a_process(name: str, label: str = "victim"):  # type: ignore[no-untyped-def]
    """A process holding lock ``name`` as ``label`` (sleeping); returned once it holds it."""
    code = (
        "import time\nfrom core.infra.locks import hold\n"
        f"with hold({name!r}, holder={label!r}):\n    print('held', flush=True)\n    time.sleep(60)\n"
    )
    proc = start(["-c", code])
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held", proc.stderr.read()
    return proc


def test_one_holder_at_a_time_across_threads(db):
    inside, peak, entries = 0, 0, 0
    guard = threading.Lock()
    errors: list[BaseException] = []

    def work() -> None:
        nonlocal inside, peak, entries
        try:
            for _ in range(3):
                with locks.hold(locks.compute_lock(1), timeout_s=30):
                    with guard:
                        inside += 1
                        entries += 1
                        peak = max(peak, inside)
                    time.sleep(0.01)
                    with guard:
                        inside -= 1
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and entries == 24 and peak == 1
    assert locks.held_locks() == {}


def test_one_holder_at_a_time_across_processes(db, tmp_path: Path):
    journal = tmp_path / "journal.txt"
    code = (
        "import os, time\nfrom core.infra.locks import hold\n"
        f"for _ in range(3):\n    with hold('refresh', timeout_s=60):\n"
        f"        with open({str(journal)!r}, 'a') as f: f.write(f'in {{os.getpid()}}\\n')\n"
        "        time.sleep(0.05)\n"
        f"        with open({str(journal)!r}, 'a') as f: f.write(f'out {{os.getpid()}}\\n')\n"
    )
    assert_clean(run_at_once([["-c", code]] * 4, timeout=90))
    lines = journal.read_text().splitlines()
    visits = [lines[i : i + 2] for i in range(0, len(lines), 2)]
    assert len(visits) == 12  # 4 processes x 3 visits, and never two inside at once:
    assert all(a == b.replace("out", "in") and a.startswith("in ") for a, b in visits), lines


def test_the_holder_is_named_waits_are_bounded_and_a_killed_holder_frees_the_lock(db):
    victim = _hold_in_a_process(locks.REFRESH)
    try:
        holder = f"victim on {socket.gethostname()}:{victim.pid}"
        assert locks.held_locks() == {locks.REFRESH: holder}
        with pytest.raises(AlreadyRunning) as refused:
            with locks.hold(locks.REFRESH, wait=False):
                pass
        assert refused.value.lock == "refresh" and refused.value.holder == holder
        assert str(refused.value) == f"refresh is already running (held by {holder})"
        started = time.monotonic()
        with pytest.raises(AlreadyRunning, match=r"gave up after waiting 0\.[3-9] s") as waited:
            with locks.hold(locks.REFRESH, timeout_s=0.3):
                pass
        assert 0.3 <= time.monotonic() - started < 3 and waited.value.holder == holder
        assert waited.value.transient  # a job meeting it is retried later, never failed for it
    finally:
        victim.kill()  # SIGKILL: no clean-up code runs in the holder
        finish([victim])
    started = time.monotonic()
    with locks.hold(locks.REFRESH, wait=False) as me:
        assert me == f"process on {socket.gethostname()}:{os.getpid()}"
        assert time.monotonic() - started < 1
    assert locks.held_locks() == {}


def test_a_thread_may_take_a_lock_it_holds_again(db):
    with locks.hold(locks.SEED, holder="start-up"):
        with locks.hold(locks.SEED, wait=False):
            with locks.acting_as("run 7"):
                assert locks.describe_holder("cli").startswith("run 7 on ")
        assert locks.SEED in locks.held_locks()
        other: list[BaseException] = []
        t = threading.Thread(target=lambda: other.append(_try(locks.SEED)))
        t.start()
        t.join(10)
        assert isinstance(other[0], AlreadyRunning) and other[0].holder.startswith("start-up on ")
    assert locks.held_locks() == {}


def _try(name: str) -> BaseException | None:
    try:
        with locks.hold(name, wait=False):
            return None
    except AlreadyRunning as exc:
        return exc


def test_advisory_keys_are_stable_and_distinct():
    """The PostgreSQL key is derived from the name alone (no per-process salt, unlike hash())."""
    assert locks.advisory_key("refresh") == locks.advisory_key("refresh") == 1386168291453096171
    names = ["refresh", "migrate", "seed"] + [locks.compute_lock(i) for i in range(1, 2000)]
    assert len({locks.advisory_key(n) for n in names}) == len(names)


def test_a_waiter_names_a_holder_that_writes_its_name_a_moment_after_taking_the_lock(data_dir):
    """A flock is taken before its holder is written into the file (and a release truncates before it closes): a
    waiter that looked in that moment said "an unknown holder" (seen in the full suite under load). It now asks
    again briefly and names the holder."""
    import fcntl

    store = locks.FileLocks(Path(data_dir) / "locks")
    path = store.path("compute:7")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # taken, nobody named yet
    writer = threading.Timer(0.15, lambda: os.pwrite(fd, b"compute:7\nrun 3 on host:1\n", 0))
    writer.start()
    try:
        with pytest.raises(AlreadyRunning) as refused, locks.hold("compute:7", wait=False, locks=store):
            pass
        assert "run 3 on host:1" in str(refused.value)
    finally:
        writer.join()
        os.close(fd)
