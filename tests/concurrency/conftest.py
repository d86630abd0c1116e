"""Fixtures of the concurrency suite: real ``python -m core`` processes started at the same moment, fresh
(empty, unmigrated) databases on both dialects, and checks that no output shows a traceback or a database
integrity error.

Every wait is bounded and every subprocess is killed in a ``finally``. Redis comes from
``AUTOINDEX_TEST_JOBS_REDIS`` (default db 13, shared with the integration job suites, which run one at a time).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import PG_ADMIN_URL, _reset_caches

ROOT = Path(__file__).resolve().parents[2]
#: Words that must never appear in the output of a process racing another.
FORBIDDEN = (
    "Traceback",
    "IntegrityError",
    "UniqueViolation",
    "UNIQUE constraint failed",
    "deadlock detected",
    "database is locked",
)


@dataclass
class Finished:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def cli_env(**extra: str) -> dict[str, str]:
    """The test process's environment (DATA_DIR, DATABASE_URL ... set by the fixtures) for a subprocess."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.setdefault("LOG_LEVEL", "INFO")
    env.update(extra)
    return env


def start(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    """``python -m core <args>`` (or ``python -c`` when args[0] is ``-c``) in the project root."""
    cmd = [sys.executable, *args] if args[0] == "-c" else [sys.executable, "-m", "core", *args]
    return subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env or cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def finish(procs: list[subprocess.Popen], timeout: float = 120.0) -> list[Finished]:
    """Wait for every process (killing all of them if one outlives ``timeout``); their outputs."""
    started = time.monotonic()
    done: list[Finished] = []
    try:
        for proc in procs:
            left = max(1.0, timeout - (time.monotonic() - started))
            out, err = proc.communicate(timeout=left)
            done.append(Finished(list(proc.args), proc.returncode, out, err, time.monotonic() - started))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
    return done


def run_at_once(commands: list[list[str]], env: dict[str, str] | None = None, timeout: float = 120.0) -> list[Finished]:
    """Start every command before waiting for any of them."""
    return finish([start(args, env) for args in commands], timeout)


def assert_clean(results: list[Finished], *, allowed_rc: tuple[int, ...] = (0,)) -> None:
    """Every process exited with an allowed code and printed no traceback nor integrity error."""
    for r in results:
        assert r.returncode in allowed_rc, f"{r.args} exited {r.returncode}:\n{r.output[-3000:]}"
        bad = [word for word in FORBIDDEN if word in r.output]
        assert not bad, f"{r.args} printed {bad}:\n{r.output[-3000:]}"


def table_digest(table: str, order: str) -> str:
    """Row count and SHA-256 of every row of ``table`` (ordered by ``order``) in the configured database."""
    from core.db import unit_of_work

    digest = hashlib.sha256()
    with unit_of_work() as session:
        rows = session.execute(text(f"SELECT * FROM {table} ORDER BY {order}")).all()
    for row in rows:
        digest.update(repr(tuple(row)).encode())
    return f"{len(rows)}:{digest.hexdigest()[:16]}"


def results_digest(config_id: int) -> dict[str, str]:
    """What a compute of ``config_id`` stores: index values, allocations, rebalances, risk metrics."""
    where = f"config_id = {int(config_id)}"
    return {
        "index_values": table_digest(f"index_values WHERE {where}", "date"),
        "allocations": table_digest(f"allocations WHERE {where}", "date, asset_id"),
        "rebalances": table_digest(f"rebalances WHERE {where}", "date"),
        "risk_metrics": table_digest(
            f"(SELECT config_id, as_of, name, value, reason FROM risk_metrics WHERE {where}) AS m", "name"
        ),
    }


def count(sql: str) -> int:
    from core.db import unit_of_work

    with unit_of_work() as session:
        return int(session.scalar(text(sql)) or 0)


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db(request, data_dir, monkeypatch) -> Iterator[str]:
    """A database with nothing in it, not even the schema (a first start): a new SQLite file in the test's
    DATA_DIR, or a new PostgreSQL database (dropped afterwards). Returns its URL; the environment points at it."""
    if request.param == "sqlite":
        from core.config import get_settings

        yield get_settings().effective_database_url
        return
    name = f"autoindex_conc_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    monkeypatch.setenv("DATABASE_URL", url)
    _reset_caches()
    try:
        yield url
    finally:
        _reset_caches()
        with admin.connect() as conn:
            conn.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()
