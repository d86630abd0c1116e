"""The job suite on the embedded path: no REDIS_URL, SqliteHuey in DATA_DIR/queue.db, SQLite database,
consumers hosted the way the app hosts them (``jobs.embedded``), each in its own process."""

from __future__ import annotations

import os
import signal

import pytest

from jobs.queue import set_immediate
from tests.integration.conftest import JOBS_REDIS_URL, prepare_jobs_env
from tests.integration.jobs_suite import *  # noqa: F401,F403  (the shared tests)
from tests.integration.jobs_suite import JobsEnv
from tests.integration.jobs_support import Consumers, run_history

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


@pytest.fixture
def jobs_env(data_dir, monkeypatch, tmp_path, jobs_stub):
    import jobs

    base_url, controller = jobs_stub
    controller.reset()
    prepare_jobs_env(monkeypatch, base_url, database_url=None, redis_url=None)
    saved = jobs.huey.storage, jobs.huey.immediate
    jobs.reconfigure()
    logs = tmp_path / "logs"
    logs.mkdir()
    consumers = Consumers(dict(os.environ), logs, mode="embedded")
    try:
        yield JobsEnv(consumers, controller, jobs.huey)
    finally:
        consumers.close()
        controller.reset()
        set_immediate(jobs.huey, saved[1], storage=saved[0])


def test_huey_consumer_on_sqlite_runs_jobs(jobs_env: JobsEnv, tmp_path):
    """`huey_consumer jobs.huey` works on the SQLite queue too (EMBEDDED_WORKER=false deployments)."""
    from core.services import runs as svc

    consumers = Consumers(jobs_env.consumers.env, jobs_env.consumers.log_dir, mode="huey_consumer")
    try:
        consumers.start(workers=2)
        ids = [svc.enqueue("compute", {}, user="anna") for _ in range(4)]
        assert [run_history(i, timeout=30)[-1][0] for i in ids] == ["succeeded"] * 4
    finally:
        consumers.close()


def test_embedded_consumer_in_process_starts_once_and_stops(jobs_env: JobsEnv):
    from core.services import runs as svc
    from core.services import workers as worker_service
    from jobs import embedded

    try:
        assert embedded.ensure_started() is True
        first = embedded._consumer
        assert embedded.ensure_started() is True and embedded._consumer is first  # idempotent
        run_id = svc.enqueue("refresh", {"provider": "demo", "symbols": "SPY"}, user="anna")
        assert run_history(run_id, timeout=30)[-1][0] == "succeeded"
        assert any(w.kind == "embedded" and w.alive and w.pid == os.getpid() for w in worker_service.workers_status())
    finally:
        embedded.stop()
    assert not embedded.is_running()
    assert all(not t.is_alive() for _, t in first.worker_threads)


def test_embedded_consumer_is_not_started_with_redis(monkeypatch, data_dir):
    from core.config import reset_settings_cache
    from jobs import embedded

    monkeypatch.setenv("REDIS_URL", JOBS_REDIS_URL)
    reset_settings_cache()
    assert embedded.should_run() is False and embedded.ensure_started() is False
    monkeypatch.delenv("REDIS_URL")
    monkeypatch.setenv("EMBEDDED_WORKER", "false")
    reset_settings_cache()
    assert embedded.ensure_started() is False


def test_embedded_process_stops_cleanly_on_sigterm(jobs_env: JobsEnv):
    proc = jobs_env.consumers.start()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0, jobs_env.consumers.logs()
