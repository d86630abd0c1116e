"""Fixtures of the job-queue integration suites (see jobs_suite.py)."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator

import pytest

from tests.conftest import REDIS_BASE
from tests.stubs.twelvedata_stub import DEFAULT_API_KEY, StubController, start_stub

#: Redis database the job suites use (their keys are removed before and after each test).
JOBS_REDIS_URL = os.environ.get("AUTOINDEX_TEST_JOBS_REDIS", f"{REDIS_BASE}/13")


@pytest.fixture(scope="module")
def jobs_stub() -> Iterator[tuple[str, StubController]]:
    """The TwelveData stub on a free local port, for the whole module."""
    base_url, controller, stop = start_stub()
    try:
        yield base_url, controller
    finally:
        stop()


def flush_job_keys(url: str = JOBS_REDIS_URL) -> None:
    """Delete only the keys this project writes (Huey queue, schedule, results, locks; the rate limiter)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        for pattern in ("huey.*autoindex*", "autoindex:*"):
            keys = list(client.scan_iter(pattern, count=500))
            if keys:
                client.delete(*keys)
    finally:
        client.close()


def prepare_jobs_env(monkeypatch, stub_url: str, *, database_url: str | None, redis_url: str | None) -> None:
    """Environment shared by the test process and its consumers; then a migrated, seeded database."""
    from core.db import migrate
    from core.services.bootstrap import seed_demo
    from core.services.strategies import ensure_default_config
    from tests.conftest import _reset_caches, _truncate_pg

    env = {
        "TWELVEDATA_API_KEY": DEFAULT_API_KEY,
        "TWELVEDATA_BASE_URL": stub_url,
        "TWELVEDATA_CREDITS_PER_MINUTE": "1000",
        "DEMO_ON_EMPTY": "false",
        "LOG_LEVEL": "INFO",
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(__import__("pathlib").Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH")])
        ),
    }
    if database_url:
        env["DATABASE_URL"] = database_url
    if redis_url:
        env["REDIS_URL"] = redis_url
    else:
        env["EMBEDDED_WORKER"] = "true"
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    _reset_caches()
    migrate(timeout_s=10)
    if database_url and database_url.startswith("postgresql"):
        _truncate_pg(database_url)
    seed_demo(years=1, end=dt.date(2024, 12, 31))
    ensure_default_config()
    create_job_users()


#: The accounts that queue jobs in these suites (services reload them: a name alone is not an identity).
JOB_USERS = {"anna": "admin", "bob": "admin"}


def create_job_users() -> None:
    from core.services import users

    existing = {u.username for u in users.list_users()}
    for username, role in JOB_USERS.items():
        if username not in existing:
            users.create_user(username, username.title(), f"{username}'s long password 1", role=role)
