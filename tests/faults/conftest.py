"""Fault-injection fixtures: PostgreSQL + Redis + real ``huey_consumer`` processes, and table locks that hold a
job at its last write so that a worker can be killed (or its connection cut) mid-transaction.

Everything runs on 127.0.0.1 and is bounded: every wait has a timeout and every subprocess is killed in a
``finally``. Redis db 11 is used (the integration job suites use 13), so the two can run side by side.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from jobs.queue import set_immediate
from tests.conftest import REDIS_BASE
from tests.integration.conftest import flush_job_keys, jobs_stub, prepare_jobs_env  # noqa: F401  (fixture)
from tests.integration.jobs_support import Consumers, wait_for
from tests.stubs.twelvedata_stub import StubController

FAULTS_REDIS_URL = os.environ.get("AUTOINDEX_TEST_FAULTS_REDIS", f"{REDIS_BASE}/11")
#: A TCP port nothing listens on (connections are refused at once).
CLOSED_PORT = 1


@dataclass
class FaultEnv:
    consumers: Consumers
    stub: StubController
    huey: Any
    database_url: str


@pytest.fixture
def fault_env(data_dir, pg_database, monkeypatch, tmp_path, jobs_stub) -> Iterator[FaultEnv]:  # noqa: F811
    """PostgreSQL with the 14-asset demo universe (2024) and an active, computed config; RedisHuey on db 11;
    the TwelveData stub; a launcher for ``huey_consumer jobs.huey`` processes."""
    import jobs
    from core.services.compute import compute_config

    base_url, controller = jobs_stub
    controller.reset()
    flush_job_keys(FAULTS_REDIS_URL)
    prepare_jobs_env(monkeypatch, base_url, database_url=pg_database, redis_url=FAULTS_REDIS_URL)
    compute_config(None, actor="setup")
    saved = jobs.huey.storage, jobs.huey.immediate
    jobs.reconfigure()
    consumers = Consumers(dict(os.environ), tmp_path, mode="huey_consumer")
    try:
        yield FaultEnv(consumers, controller, jobs.huey, pg_database)
    finally:
        consumers.close()
        controller.reset()
        flush_job_keys(FAULTS_REDIS_URL)
        set_immediate(jobs.huey, saved[1], storage=saved[0])


class TableLock:
    """Hold ``LOCK TABLE <table> IN SHARE MODE`` from a separate connection: readers go on, writers block.

    Every job writes its audit event last, in the same transaction as its results, so locking
    ``audit_events`` parks a refresh, compute or report job *after* it wrote everything else (uncommitted).
    """

    def __init__(self, url: str, table: str = "audit_events") -> None:
        self.url, self.table = url, table
        self.engine = create_engine(url, isolation_level="AUTOCOMMIT")
        self.conn = None

    def acquire(self) -> None:
        self.conn = self.engine.connect()
        self.conn.exec_driver_sql("BEGIN")
        self.conn.exec_driver_sql(f'LOCK TABLE "{self.table}" IN SHARE MODE')

    def waiting_pids(self) -> list[int]:
        """Backends (of other connections) waiting for this table's lock."""
        with self.engine.connect() as c:
            return [
                int(r[0])
                for r in c.execute(
                    text("SELECT l.pid FROM pg_locks l WHERE NOT l.granted AND l.relation = CAST(:t AS regclass)"),
                    {"t": self.table},
                )
            ]

    def wait_for_writer(self, timeout: float = 30) -> int:
        """The pid of the first backend blocked on the lock (the job is at its last write)."""
        return wait_for(lambda: (p := self.waiting_pids()) and p[0], timeout, 0.05, f"a writer blocked on {self.table}")

    def terminate(self, pid: int) -> None:
        with self.engine.connect() as c:
            c.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})

    def release(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.exec_driver_sql("ROLLBACK")
            self.conn.close()
            self.conn = None

    def close(self) -> None:
        self.release()
        self.engine.dispose()


@pytest.fixture
def audit_lock(fault_env) -> Iterator[TableLock]:
    lock = TableLock(fault_env.database_url)
    try:
        yield lock
    finally:
        lock.close()


def table_checksum(*tables: str, where: str = "") -> str:
    """Row count and digest of whole tables (stable order), on the configured database."""
    from core.db import unit_of_work

    digest = hashlib.sha256()
    n = 0
    with unit_of_work() as session:
        for table in tables:
            for row in session.execute(text(f"SELECT * FROM {table} {where} ORDER BY 1")):
                digest.update(repr(tuple(row)).encode())
                n += 1
    return f"{n}:{digest.hexdigest()}"


def data_checksum() -> str:
    """Everything a refresh, compute or report job writes (not task_runs / heartbeats, which track the job)."""
    return table_checksum(
        "assets",
        "prices",
        "market_caps",
        "index_values",
        "allocations",
        "rebalances",
        "risk_metrics",
        "audit_events",
        "app_settings",
        "strategy_configs",
    )
