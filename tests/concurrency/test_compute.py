"""Issue 11, case 6: computes of one config at the same moment (CLI processes, threads) on SQLite and PostgreSQL:
each waits for the one before, every process exits 0, and the stored rows are exactly one compute's rows."""

from __future__ import annotations

import datetime as dt
import socket
import threading

import pytest

from core.errors import AlreadyRunning
from tests.concurrency.conftest import assert_clean, count, finish, results_digest, run_at_once, start


@pytest.fixture
def computed(db):
    """The 14-asset demo universe (2024), the default config and its stored results; (config id, digest)."""
    from core.services.bootstrap import seed_demo
    from core.services.compute import compute_config
    from core.services.strategies import ensure_default_config

    seed_demo(years=1, end=dt.date(2024, 12, 31))
    config_id = ensure_default_config().id
    compute_config(config_id, actor="setup")
    return config_id, results_digest(config_id)


def _computes() -> int:
    return count("SELECT COUNT(*) FROM audit_events WHERE action = 'config.compute'")


def test_three_cli_computes_at_once_store_one_computes_rows(computed):
    config_id, before = computed
    results = run_at_once([["compute"], ["compute"], ["compute", "--config", str(config_id)]])
    assert_clean(results)
    assert all(r.stdout.startswith(f"computed config {config_id}: ") for r in results)
    assert results_digest(config_id) == before
    assert _computes() == 4  # each process computed (after waiting), none was refused


def test_computes_in_threads_wait_for_each_other(computed):
    from core.services.compute import compute_config

    config_id, before = computed
    waited: list[str] = []
    errors: list[BaseException] = []

    def compute() -> None:
        def progress(_fraction: float, message: str) -> None:
            if message.startswith("waiting for another compute"):
                waited.append(message)

        try:
            compute_config(config_id, progress=progress, actor="thread")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=compute) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert waited and all(f"config {config_id} (held by thread on {socket.gethostname()}:" in m for m in waited)
    assert results_digest(config_id) == before
    assert _computes() == 5


def test_a_compute_that_waits_too_long_names_the_holder_and_changes_nothing(computed):
    from core.infra.locks import compute_lock
    from core.services.compute import compute_config

    config_id, before = computed
    code = (
        "import time\nfrom core.infra.locks import hold\n"
        f"with hold({compute_lock(config_id)!r}, holder='victim'):\n    print('held', flush=True)\n"
        "    time.sleep(60)\n"
    )
    victim = start(["-c", code])
    try:
        assert victim.stdout is not None and victim.stdout.readline().strip() == "held"
        with pytest.raises(AlreadyRunning) as refused:
            compute_config(config_id, actor="test", lock_timeout_s=0.5)
        assert str(refused.value).startswith(
            f"compute:{config_id} is already running (held by victim on {socket.gethostname()}:{victim.pid}); "
            "gave up after waiting 0."
        )
    finally:
        victim.kill()
        finish([victim])
    assert results_digest(config_id) == before and _computes() == 1
