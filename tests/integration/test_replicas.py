"""Replicas, proven (issue 16): two ``streamlit run Home.py`` processes and two ``python -m core worker`` processes
on this machine, against one PostgreSQL database (created for this test and dropped) and one Redis (DB 1 under
tests.conftest.REDIS_BASE; only this project's keys are removed, before and after).

* one user logs in on both replicas (same COOKIE_KEY), each in its own browser context;
* a recompute queued on replica 1 is seen on replica 2's Tasks page until it succeeds, run by a worker;
* the cache is shared: replica 2's Dashboard is served from entries replica 1 wrote (Redis hit counters move);
* no replica runs jobs itself: the only heartbeats are the two workers', and the run names one of them.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import PG_ADMIN_URL, REDIS_BASE
from tests.e2e.conftest import free_port, stop_server, wait_for_health
from tests.e2e.test_app_flow import login, wait_signed_in
from tests.integration.conftest import flush_job_keys

pytestmark = [pytest.mark.timeout(420)]

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = f"{REDIS_BASE}/1"
COOKIE_KEY = "replica-test-cookie-key-" + "k" * 24
USER = ("ops", "correct horse battery staple")


@pytest.fixture
def pg_url() -> Iterator[str]:
    name = f"autoindex_replicas_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def _env(data_dir: Path, pg_url: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DATA_DIR": str(data_dir),
        "DATABASE_URL": pg_url,
        "REDIS_URL": REDIS_URL,
        "COOKIE_KEY": COOKIE_KEY,
        "DEMO_ON_EMPTY": "false",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("METRICS_PORT", None)
    return env


def _start_replica(data_dir: Path, pg_url: str) -> tuple[subprocess.Popen, str]:
    """``streamlit run Home.py`` on a free port with this test's database, Redis and cookie key (the e2e starter
    removes DATABASE_URL, REDIS_URL and COOKIE_KEY: its servers are single-process SQLite ones)."""
    port = free_port()
    log = open(data_dir / "server.log", "w")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(ROOT / "Home.py"),
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
            "--server.fileWatcherType",
            "none",
        ],
        cwd=ROOT,
        env=_env(data_dir, pg_url),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(base_url, process)
    except Exception:
        process.terminate()
        raise
    return process, base_url


def _cache_hits() -> int:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        return sum(int(client.hget(key, "hits") or 0) for key in client.scan_iter("autoindex:cachestats:*"))
    finally:
        client.close()


def _cache_keys() -> int:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        return sum(1 for _ in client.scan_iter("autoindex:cache:*"))
    finally:
        client.close()


def test_two_replicas_and_two_workers_share_one_database_and_one_redis(tmp_path, pg_url, browser):
    flush_job_keys(REDIS_URL)
    setup_env = _env(tmp_path / "setup", pg_url)
    (tmp_path / "setup").mkdir()
    for args, stdin in (
        (["migrate"], None),
        (["seed-demo", "--years", "1"], None),
        (["create-user", USER[0], "--role", "admin", "--password-stdin"], USER[1] + "\n"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "core", *args],
            cwd=ROOT,
            env=setup_env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, done.stderr
    workers, apps, logs, contexts = [], [], [], []
    try:
        for i, extra in enumerate(([], ["-n"])):  # the second worker leaves the periodic scheduler to the first
            wdir = tmp_path / f"worker{i}"
            wdir.mkdir()
            log = open(wdir / "worker.log", "w")  # noqa: SIM115 - closed in finally
            logs.append(log)
            workers.append(
                subprocess.Popen(
                    [sys.executable, "-m", "core", "worker", "-w", "2", *extra],
                    cwd=ROOT,
                    env=_env(wdir, pg_url),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        for i in range(2):
            adir = tmp_path / f"app{i}"
            adir.mkdir()
            apps.append(_start_replica(adir, pg_url))
        pages = []
        for _, base_url in apps:  # one user, logged in on both replicas
            context = browser.new_context(viewport={"width": 1440, "height": 900})
            contexts.append(context)
            page = context.new_page()
            page.set_default_timeout(90_000)
            try:
                login(page, base_url, USER[0], USER[1])
                wait_signed_in(page)
            except Exception:
                page.screenshot(path=str(tmp_path / f"login-{len(pages)}.png"), full_page=True)
                raise
            pages.append(page)
            if len(pages) == 1:
                time.sleep(2)  # replica 1's Dashboard has written its cache entries
                assert _cache_keys() > 0, "replica 1 wrote no cache entry to Redis"
                hits_before = _cache_hits()
        assert _cache_hits() > hits_before, "replica 2 drew the Dashboard without a single hit in the shared cache"

        # a recompute queued on replica 1 ...
        one, two = pages
        one.locator("[data-testid='stSidebarNav']").get_by_text("Tasks", exact=True).click()
        one.get_by_role("heading", name="Tasks").first.wait_for()
        one.get_by_role("tab", name="Recompute index").click()
        one.get_by_role("button", name="Queue recompute").click()
        run = int(
            re.search(
                r"run (\d+)", one.get_by_text(re.compile(r"Queued recompute index as run \d+")).first.inner_text()
            ).group(1)
        )
        # ... is followed on replica 2 until it succeeds, without a reload
        two.locator("[data-testid='stSidebarNav']").get_by_text("Tasks", exact=True).click()
        two.get_by_role("heading", name=re.compile(rf"Run {run}:")).wait_for()
        two.locator("[data-testid='stMetric']").filter(has_text="State").filter(has_text="succeeded").wait_for(
            timeout=120_000
        )

        # no replica runs jobs: the heartbeats are the workers', and a worker ran the job
        engine = create_engine(
            pg_url.replace("postgresql://", "postgresql+psycopg://", 1)
            if pg_url.startswith("postgresql://")
            else pg_url
        )
        with engine.connect() as conn:
            pids = {row[0] for row in conn.execute(text("SELECT pid FROM worker_heartbeats"))}
            worker_of_run = conn.execute(text("SELECT worker FROM task_runs WHERE id = :id"), {"id": run}).scalar()
        engine.dispose()
        worker_pids = {w.pid for w in workers}
        assert pids == worker_pids, (pids, worker_pids, [p.pid for p, _ in apps])
        assert worker_of_run and any(f":{pid}" in worker_of_run or str(pid) in worker_of_run for pid in worker_pids)
    finally:
        for context in contexts:
            context.close()
        for process, _ in apps:
            stop_server(process)
        for process in workers:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        for log in logs:
            log.close()
        flush_job_keys(REDIS_URL)
