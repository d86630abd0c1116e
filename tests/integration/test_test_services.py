"""./test.sh sets itself up (scripts/test-services.sh): with nothing answering on the service ports, it starts a
throwaway PostgreSQL and Redis, points the tests at them, and removes them when it exits."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.timeout(180)


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # free now, and nothing listens on it


def test_missing_services_are_started_for_the_run_and_removed_after(tmp_path):
    probe = (
        "import os, redis, sqlalchemy as sa;"
        "e = sa.create_engine(os.environ['AUTOINDEX_TEST_PG_ADMIN']);"
        "c = e.connect(); print('pg', c.execute(sa.text('select 1')).scalar()); c.close();"
        "r = redis.Redis.from_url(os.environ['AUTOINDEX_TEST_REDIS_BASE'] + '/0'); print('redis', r.ping());"
        "print('urls', os.environ['AUTOINDEX_TEST_PG_ADMIN'], os.environ['AUTOINDEX_TEST_REDIS_BASE'])"
    )
    script = f'source scripts/test-services.sh; {ROOT}/.venv/bin/python -c "{probe}"'
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "AUTOINDEX_PG_PORT": str(_closed_port()),
        "AUTOINDEX_REDIS_PORT": str(_closed_port()),
        "HOME": str(tmp_path),
    }
    done = subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=150)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "pg 1" in done.stdout and "redis True" in done.stdout
    assert "started a throwaway PostgreSQL" in done.stderr and "started a throwaway Redis" in done.stderr
    pg_url, redis_url = done.stdout.split("urls ", 1)[1].split()
    pg_port = int(pg_url.rsplit(":", 1)[1].split("/")[0])
    redis_port = int(redis_url.rsplit(":", 1)[1])
    # gone after the run: nothing answers on their ports any more, and their directory is removed
    assert subprocess.run(["pg_isready", "-h", "127.0.0.1", "-p", str(pg_port), "-q"]).returncode != 0
    assert b"PONG" not in subprocess.run(["redis-cli", "-p", str(redis_port), "ping"], capture_output=True).stdout
    assert not list(Path("/tmp").glob("autoindex-test-services.*/pg/postmaster.pid"))


def test_running_services_are_used_as_they_are(tmp_path):
    script = "source scripts/test-services.sh; echo PG=${AUTOINDEX_TEST_PG_ADMIN:-default} R=${AUTOINDEX_TEST_REDIS_BASE:-default}"
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=ROOT,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "PG=default R=default" in done.stdout  # the servers on 5432 and 6379 answer: nothing started
    assert "throwaway" not in done.stderr
