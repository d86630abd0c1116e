"""Shared fixtures: an isolated data directory and database per test, on SQLite and on the real PostgreSQL.

Tests that concern the database take ``db`` (parametrised over both dialects) or ``sqlite_db``.
PostgreSQL runs on 127.0.0.1:5432 (see .ci/run); a missing server is a failure, never a skip.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pytest
from sqlalchemy import create_engine, text

import jobs  # noqa: F401  (wires the job queue into the services, as every entry point does)

# The suite stops its workers, servers and CLI processes with SIGINT, as a person's Ctrl-C does. Started as a
# background job of a non-interactive shell (`./test.sh &`), the suite inherits SIGINT *ignored*, and so would every
# process it starts: a worker then shrugs the stop off until it is killed (CI, 2026-11-29: a fifth retry line logged
# 8 s after the stop). A handler (not "ignore") is reset to the default in each child, so each child's Python turns
# Ctrl-C into KeyboardInterrupt as it would from a terminal.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PG_ADMIN_URL = os.environ.get("AUTOINDEX_TEST_PG_ADMIN", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
#: The Redis server the tests use (./test.sh points it at a throwaway instance when none runs on 6379); each suite
#: takes a database number of its own below it, overridable one by one.
REDIS_BASE = os.environ.get("AUTOINDEX_TEST_REDIS_BASE", "redis://127.0.0.1:6379").rstrip("/")
TEST_REDIS_URL = os.environ.get("AUTOINDEX_TEST_REDIS", f"{REDIS_BASE}/14")


#: Two test runs against one Redis at once would flush each other's queues and caches: every suite takes fixed
#: database numbers on it (seen 2026-11-29: a second run's fault fixture emptied the first one's queue). A run holds
#: this lock, named after the Redis server, from start to end; a second run against the same server waits for it
#: (saying so), at most AUTOINDEX_TEST_LOCK_WAIT_S seconds (default an hour), then stops without running anything.
TEST_LOCK_WAIT_S = float(os.environ.get("AUTOINDEX_TEST_LOCK_WAIT_S", "3600"))


def run_lock_path(redis_base: str = REDIS_BASE) -> Path:
    digest = hashlib.sha256(redis_base.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"autoindex-tests-{digest}.lock"


def hold_test_run_lock(path: Path, wait_s: float, say: Callable[[str], None]) -> IO[str] | None:
    """The open lock file, locked (``flock``, released when this process ends), or None when another run kept it
    for ``wait_s`` seconds. The file names the holder (pid and directory) for the message of the one waiting."""
    handle = open(path, "a+")  # noqa: SIM115 - held for the whole run
    deadline = time.monotonic() + wait_s
    told = False
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if not told:
                handle.seek(0)
                say(f"another AutoIndex test run ({handle.read().strip() or 'unknown'}) uses {REDIS_BASE}: waiting")
                told = True
            if time.monotonic() >= deadline:
                handle.close()
                return None
            time.sleep(0.5)
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()} in {os.getcwd()}")
    handle.flush()
    return handle


_RUN_LOCK: list[IO[str]] = []


def pytest_configure(config) -> None:  # noqa: ARG001
    handle = hold_test_run_lock(run_lock_path(), TEST_LOCK_WAIT_S, lambda m: print(m, file=sys.stderr))
    if handle is None:
        pytest.exit(f"another AutoIndex test run kept {REDIS_BASE} for {TEST_LOCK_WAIT_S:.0f} s", returncode=3)
    _RUN_LOCK.append(handle)


#: bcrypt's cost in the test process, except where it is the subject (marker ``real_bcrypt``) or where a
#: password check's time is the window a race needs (tests/concurrency). Production hashes at cost 12 (checked in
#: tests/integration/test_services_db.py); a hash at cost 12 takes 0.27 s here and the suite creates and checks
#: hundreds of accounts. A stored hash carries its cost, so every check of a test-made account is as cheap.
TEST_BCRYPT_COST = 4


@pytest.fixture(autouse=True)
def _test_bcrypt_cost(request, monkeypatch) -> Iterator[None]:
    import bcrypt

    from core.services import users

    real_cost = request.node.get_closest_marker("real_bcrypt") or "tests/concurrency/" in request.node.nodeid
    if not real_cost:
        real = bcrypt.gensalt
        monkeypatch.setattr(users.bcrypt, "gensalt", lambda rounds=12, prefix=b"2b": real(TEST_BCRYPT_COST, prefix))
    users._dummy_hash.cache_clear()  # the hash checked for unknown names, at this test's cost
    yield
    users._dummy_hash.cache_clear()


MYPY_TEST = "tests/unit/test_code_quality.py::test_mypy_finds_nothing"
MYPY_RUN = pytest.StashKey[tuple]()  # (the mypy process, its output file)


@pytest.hookimpl(trylast=True)  # after -k / -m have deselected: a deselected type check is not started
def pytest_collection_modifyitems(session, config, items) -> None:  # noqa: ARG001
    """Start the type check (about 40 s of one core) as soon as it is known to be wanted, so that it runs beside
    the tests before it instead of on its own; ``test_mypy_finds_nothing`` waits for its result."""
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    if any(item.nodeid == MYPY_TEST for item in items):
        output = tempfile.TemporaryFile(mode="w+")
        root = Path(__file__).resolve().parents[1]
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "mypy")], cwd=root, stdout=output, stderr=subprocess.STDOUT, text=True
        )
        config.stash[MYPY_RUN] = (process, output)


def _reset_caches() -> None:
    """Forget engines, settings and the in-process cache: a truncated PostgreSQL test database restarts its data
    version, so values cached by an earlier test under the same URL and version must not survive."""
    from core.config import reset_settings_cache
    from core.db import reset_engine_cache
    from core.infra.cache import reset_cache_instances

    reset_engine_cache()
    reset_settings_cache()
    reset_cache_instances()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    name = f"autoindex_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    yield url
    with admin.connect() as conn:
        conn.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


def _truncate_pg(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        tables = [
            r[0]
            for r in conn.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname='public' AND tablename <> 'alembic_version'")
            )
        ]
        if tables:
            conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Iterator[str]:
    """Point DATA_DIR at a temporary folder and clear every cached setting."""
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("TWELVEDATA_API_KEY", raising=False)
    monkeypatch.setenv("DEMO_ON_EMPTY", "false")
    _reset_caches()
    yield str(tmp_path)
    _reset_caches()


@pytest.fixture
def sqlite_db(data_dir) -> str:
    """A migrated SQLite database in the test's data directory; returns its URL."""
    from core.config import get_settings
    from core.db import migrate

    migrate(timeout_s=5)
    return get_settings().effective_database_url


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, data_dir, monkeypatch) -> str:
    """A migrated, empty database on each dialect; returns its URL."""
    from core.config import get_settings
    from core.db import migrate

    if request.param == "postgresql":
        url = request.getfixturevalue("pg_database")
        monkeypatch.setenv("DATABASE_URL", url)
        _reset_caches()
        migrate(timeout_s=10)
        _truncate_pg(url)
        _reset_caches()
    else:
        migrate(timeout_s=5)
    return get_settings().effective_database_url


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """One headless Debian Chromium for the whole session (Playwright's sync API allows one per process)."""
    from pathlib import Path

    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield instance
        instance.close()
