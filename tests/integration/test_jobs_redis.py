"""The job suite on the scaled-out path: RedisHuey (127.0.0.1:6379, db 13), PostgreSQL, `huey_consumer jobs.huey`."""

from __future__ import annotations

import os

import pytest

from jobs.queue import set_immediate
from tests.integration.conftest import JOBS_REDIS_URL, flush_job_keys, prepare_jobs_env
from tests.integration.jobs_suite import *  # noqa: F401,F403  (the shared tests)
from tests.integration.jobs_suite import JobsEnv
from tests.integration.jobs_support import Consumers

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


@pytest.fixture
def jobs_env(data_dir, pg_database, monkeypatch, tmp_path, jobs_stub):
    import jobs

    base_url, controller = jobs_stub
    controller.reset()
    flush_job_keys()
    prepare_jobs_env(monkeypatch, base_url, database_url=pg_database, redis_url=JOBS_REDIS_URL)
    saved = jobs.huey.storage, jobs.huey.immediate
    jobs.reconfigure()
    consumers = Consumers(dict(os.environ), tmp_path, mode="huey_consumer")
    try:
        yield JobsEnv(consumers, controller, jobs.huey)
    finally:
        consumers.close()
        controller.reset()
        flush_job_keys()
        set_immediate(jobs.huey, saved[1], storage=saved[0])


def test_redis_down_refuses_to_queue_and_writes_nothing(data_dir, pg_database, monkeypatch, jobs_stub):
    from huey import RedisHuey

    from core.services import runs as svc
    from core.services.ports import QueueUnavailable
    from core.services.runs import list_runs

    prepare_jobs_env(monkeypatch, jobs_stub[0], database_url=pg_database, redis_url=JOBS_REDIS_URL)
    dead = RedisHuey("autoindex", url="redis://127.0.0.1:1/13")
    with pytest.raises(QueueUnavailable, match="^queue unavailable: "):
        svc.enqueue("refresh", {}, user="anna", huey=dead)
    assert list_runs() == []
