"""System health as data: every check the Diagnostics page and ``python -m core health`` show.

Each check returns a :class:`Check`: a status (``ok``, ``warning``, ``error``, or ``info`` when it does not
apply), a one-line summary, the *rules* that decide its status written out in words, the findings that
triggered a rule, a few facts and tables. :func:`run_checks` runs them all side by side in threads, each
bounded by ``timeout_s`` (PostgreSQL queries also carry a ``statement_timeout``); a check that raises or
does not answer in time becomes an ``error`` card with a short reason, never a traceback. The overall
status is the worst status of any check (``info`` counts as ok).

Speed: every query is an aggregate (GROUP BY, COUNT, MIN/MAX) or a LIMITed read, so the whole report
takes well under a second with 1.26 M prices and 10,000 task runs (see bench/diagnostics.py).

Times are UTC; ``now`` and ``today`` are passed in so that tests control the clock.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import datetime as dt
import functools
import importlib.metadata
import logging
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, select, text

from core.config import PROJECT_ROOT, get_settings, redact_url
from core.services.freshness import business_days_stale_many, stale_text
from core.services.ports import JobQueue

log = logging.getLogger(__name__)

OK, WARNING, ERROR, INFO = "ok", "warning", "error", "info"
_RANK = {OK: 0, INFO: 0, WARNING: 1, ERROR: 2}

#: Seconds each check may take before it becomes an error card.
CHECK_TIMEOUT_S = 5.0
#: A database round trip slower than this (ms) is a warning.
DB_LATENCY_WARN_MS = 100.0
#: Business days after which the benchmark is stale (warning) and badly stale (error).
BENCHMARK_STALE_WARN_DAYS = 3
BENCHMARK_STALE_ERROR_DAYS = 10
#: Business days after which any other active asset is stale (warning).
ASSET_STALE_WARN_DAYS = 5
#: Tasks waiting in the queue above which the queue is backed up (warning).
QUEUE_PENDING_WARN = 50
#: Fraction of runs finished over the window that may fail before it is a warning.
FAILURE_RATE_WARN = 0.20
#: Days the job and page statistics look back.
STATS_DAYS = 7
#: A page whose p95 render time is above this (ms) is a warning.
PAGE_P95_WARN_MS = 2000.0
#: Used Redis memory above this fraction of maxmemory is a warning.
REDIS_MEMORY_WARN = 0.90
#: Task runs read for duration percentiles at most (newest first).
JOB_DURATION_ROWS = 50_000
#: Distributions whose versions the configuration card lists.
KEY_PACKAGES = ("streamlit", "sqlalchemy", "alembic", "pandas", "numpy", "pydantic", "huey", "redis", "psycopg",
                "plotly")

REFRESH_KINDS = ("refresh", "scheduled_refresh")
COMPUTE_KINDS = ("compute",)


@dataclass
class Check:
    """One card. ``rules`` say when the status is warning / error; ``findings`` say which rule fired."""

    key: str
    title: str
    status: str = OK
    summary: str = ""
    rules: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    duration_ms: float = 0.0

    def raise_to(self, status: str, finding: str) -> None:
        """Record ``finding`` and raise the status to ``status`` if that is worse."""
        self.findings.append(finding)
        if _RANK[status] > _RANK[self.status] or (self.status == INFO and status != INFO):
            self.status = status

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "title": self.title, "status": self.status, "summary": self.summary,
                "rules": self.rules, "findings": self.findings, "facts": _jsonable(self.facts),
                "tables": {name: _records(frame) for name, frame in self.tables.items()},
                "duration_ms": round(self.duration_ms, 1)}


@dataclass
class HealthReport:
    """Every check, the overall status and when it was taken."""

    status: str
    checks: list[Check]
    at: dt.datetime
    duration_ms: float

    def check(self, key: str) -> Check:
        for c in self.checks:
            if c.key == key:
                return c
        raise KeyError(key)

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "at": self.at.isoformat(), "duration_ms": round(self.duration_ms, 1),
                "checks": [c.as_dict() for c in self.checks]}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return None if not np.isfinite(value) else float(value)
    return value


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [_jsonable(r) for r in frame.astype(object).where(frame.notna(), None).to_dict(orient="records")]


def overall(checks: list[Check]) -> str:
    """The worst status of ``checks`` (``info`` counts as ok)."""
    worst = max((_RANK[c.status] for c in checks), default=0)
    return {0: OK, 1: WARNING, 2: ERROR}[worst]


def _short(exc: BaseException) -> str:
    """One line naming what failed, without the SQL or the traceback."""
    from sqlalchemy.exc import DBAPIError

    if isinstance(exc, DBAPIError) and exc.orig is not None:
        exc = exc.orig
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else "no detail"
    return f"{type(exc).__name__}: {message}"[:300]


@dataclass
class Context:
    """What every check may use; built once per report."""

    now: dt.datetime
    today: dt.date
    timeout_s: float
    huey: Any = None
    cache: Any = None
    database_ok: bool = True


@contextlib.contextmanager
def _session(ctx: Context) -> Iterator[Any]:
    """A read-only unit of work whose PostgreSQL statements stop after the check's timeout."""
    from core.db import unit_of_work

    with unit_of_work() as session:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text(f"SET LOCAL statement_timeout = {int(ctx.timeout_s * 1000)}"))
        yield session


# --------------------------------------------------------------------------- database
DATABASE_RULES = [
    "error if the database is unreachable",
    "error if the database refuses writes (a read-only SQLite file or directory, PRAGMA query_only, a read-only "
    "PostgreSQL transaction or hot standby)",
    "error if the schema is not at the newest migration",
    f"warning if a round trip takes more than {DB_LATENCY_WARN_MS:.0f} ms",
]


def _database_size(session: Any, dialect: str) -> int | None:
    if dialect == "postgresql":
        return int(session.scalar(text("SELECT pg_database_size(current_database())")))
    if dialect == "sqlite":
        pages = session.scalar(text("PRAGMA page_count"))
        size = session.scalar(text("PRAGMA page_size"))
        total = int(pages) * int(size)
        path = get_settings().effective_database_url.split("///", 1)[-1]
        wal = Path(path + "-wal")
        return total + (wal.stat().st_size if wal.is_file() else 0)
    return None


def _row_counts(session: Any) -> pd.DataFrame:
    """Exact row count of every AutoIndex table that exists, in one statement (one round trip)."""
    from sqlalchemy import inspect

    from core.models import Base

    existing = set(inspect(session.connection()).get_table_names())
    tables = [t.name for t in Base.metadata.sorted_tables if t.name in existing]
    if not tables:
        return pd.DataFrame({"table": pd.Series(dtype=str), "rows": pd.Series(dtype=int)})
    sql = "SELECT " + ", ".join(f'(SELECT COUNT(*) FROM "{t}") AS "{t}"' for t in tables)
    counts = session.execute(text(sql)).one()
    return pd.DataFrame({"table": tables, "rows": [int(c) for c in counts]}).sort_values(
        "rows", ascending=False, ignore_index=True)


#: A no-op write: it matches no row, yet the database must open a write transaction to run it, so a
#: read-only database refuses it. Rolled back at once; nothing is changed.
WRITE_PROBE = "UPDATE alembic_version SET version_num = version_num WHERE 1 = 0"


def write_probe(timeout_s: float = CHECK_TIMEOUT_S) -> str | None:
    """None when the database accepts writes, else the reason it refuses them (one line).

    Runs :data:`WRITE_PROBE` in a transaction that is rolled back. SQLite checks read-only-ness (file or
    directory mode, ``mode=ro``, ``PRAGMA query_only``) before it takes the write lock, so the probe does
    not wait for other writers (busy_timeout 0 for the probe; "database is locked" means writable).
    PostgreSQL refuses it with SQLSTATE 25006 in a read-only transaction (``default_transaction_read_only``,
    a hot standby); ``transaction_read_only`` is read as well. A database without the ``alembic_version``
    table (never migrated) is not probed: the migration rule reports it.
    """
    from sqlalchemy import inspect
    from sqlalchemy.exc import DBAPIError

    from core.db import get_engine

    engine = get_engine()
    with engine.connect() as conn:
        if "alembic_version" not in inspect(conn).get_table_names():
            conn.rollback()
            return None
        dialect = engine.dialect.name
        busy_ms = None
        try:
            if dialect == "postgresql":
                conn.execute(text(f"SET LOCAL statement_timeout = {int(timeout_s * 1000)}"))
                conn.execute(text("SET LOCAL lock_timeout = 1000"))
                if str(conn.execute(text("SHOW transaction_read_only")).scalar()).lower() == "on":
                    in_recovery = bool(conn.execute(text("SELECT pg_is_in_recovery()")).scalar())
                    return ("the server is a hot standby (read-only replica)" if in_recovery else
                            "transactions are read-only (default_transaction_read_only = on)")
            elif dialect == "sqlite":
                busy_ms = conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
                if conn.exec_driver_sql("PRAGMA query_only").scalar():
                    return "PRAGMA query_only is on"
                conn.exec_driver_sql("PRAGMA busy_timeout = 0")
            conn.execute(text(WRITE_PROBE))
            return None
        except DBAPIError as exc:
            orig = exc.orig
            code = getattr(orig, "sqlite_errorcode", None)
            if isinstance(code, int) and code & 0xFF == 5:  # SQLITE_BUSY: another writer, so writable
                return None
            return _short(exc).split(": ", 1)[-1]
        finally:
            with contextlib.suppress(Exception):
                conn.rollback()
            if busy_ms is not None:
                with contextlib.suppress(Exception):
                    conn.exec_driver_sql(f"PRAGMA busy_timeout = {int(busy_ms)}")


def check_database(ctx: Context) -> Check:
    from core.db import get_engine, migration_status

    check = Check("database", "Database", rules=DATABASE_RULES)
    engine = get_engine()
    dialect = engine.dialect.name
    check.facts.update({"dialect": dialect, "url": redact_url(str(engine.url))})
    with _session(ctx) as session:
        timings = []
        for _ in range(3):
            started = time.perf_counter()
            session.execute(text("SELECT 1")).scalar()
            timings.append((time.perf_counter() - started) * 1000)
        latency = statistics.median(timings)
        check.facts["round_trip_ms"] = round(latency, 2)
        check.facts["size_bytes"] = _database_size(session, dialect)
        counts = _row_counts(session)
    check.tables["row counts"] = counts
    check.facts["total_rows"] = int(counts["rows"].sum())
    refused = write_probe(ctx.timeout_s)
    check.facts["writable"] = refused is None
    if refused is not None:
        check.raise_to(ERROR, f"read-only: writes are refused ({refused})")
    migrations = migration_status()
    check.facts.update({"migration_current": migrations["current"], "migration_head": migrations["head"],
                        "at_head": migrations["at_head"]})
    if not migrations["at_head"]:
        current = migrations["current"] or "no revision (never migrated)"
        check.raise_to(ERROR, f"schema at {current}, newest migration is {migrations['head']}")
    if latency > DB_LATENCY_WARN_MS:
        check.raise_to(WARNING, f"round trip {latency:.0f} ms")
    check.summary = (f"{dialect}, reachable, {'writable' if refused is None else 'READ-ONLY'}, "
                     f"{latency:.1f} ms round trip, {_human_bytes(check.facts['size_bytes'])}, "
                     f"migrations {'at head' if migrations['at_head'] else 'behind'}")
    return check


def _human_bytes(n: int | None) -> str:
    if n is None:
        return "size unknown"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


# --------------------------------------------------------------------------- redis and cache
REDIS_RULES = [
    "not applicable when REDIS_URL is unset (in-process cache, SQLite job queue)",
    "error if REDIS_URL is set and Redis does not answer within 1 s",
    f"warning if used memory is above {REDIS_MEMORY_WARN:.0%} of maxmemory",
]


def check_redis(ctx: Context) -> Check:
    check = Check("redis", "Redis", rules=REDIS_RULES)
    url = get_settings().redis_url
    if not url:
        check.status = INFO
        check.summary = "not configured: the cache is in-process and jobs use the SQLite queue"
        return check
    import redis

    check.facts["url"] = redact_url(url)
    client = redis.Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=1.0)
    try:
        started = time.perf_counter()
        client.ping()
        latency = (time.perf_counter() - started) * 1000
        server = client.info("server")
        memory = client.info("memory")
        keyspace_keys = int(client.dbsize())
    except (redis.RedisError, OSError) as exc:
        check.raise_to(ERROR, f"unreachable: {_short(exc)}")
        check.summary = f"unreachable at {redact_url(url)}: {_short(exc)}"
        return check
    finally:
        with contextlib.suppress(Exception):
            client.close()
    used = int(memory.get("used_memory") or 0)
    maxmemory = int(memory.get("maxmemory") or 0)
    check.facts.update({"version": server.get("redis_version"), "round_trip_ms": round(latency, 2),
                        "used_memory": memory.get("used_memory_human"), "maxmemory": maxmemory or None,
                        "keys": keyspace_keys})
    if maxmemory and used > REDIS_MEMORY_WARN * maxmemory:
        check.raise_to(WARNING, f"used memory {used / maxmemory:.0%} of maxmemory")
    check.summary = (f"Redis {server.get('redis_version')}, {latency:.1f} ms round trip, "
                     f"{memory.get('used_memory_human')} used, {keyspace_keys} keys")
    return check


CACHE_RULES = [
    "warning if the cache backend cannot be read (pages then compute every value themselves)",
]


def check_cache(ctx: Context) -> Check:
    from core.infra.cache import CacheUnavailable, get_cache

    cache = ctx.cache or get_cache()
    check = Check("cache", "Cache", rules=CACHE_RULES)
    check.facts["backend"] = cache.backend_name
    try:
        stats = cache.stats()
    except CacheUnavailable as exc:
        check.raise_to(WARNING, exc.reason)
        check.summary = f"{cache.backend_name} cache unavailable; values are computed on every read ({exc.reason})"
        return check
    frame = pd.DataFrame([s.as_dict() for s in stats],
                         columns=["namespace", "ttl_s", "keys", "hits", "misses", "hit_rate"])
    check.tables["namespaces"] = frame
    hits, misses = int(frame["hits"].sum()), int(frame["misses"].sum())
    check.facts.update({"keys": int(frame["keys"].sum()), "hits": hits, "misses": misses})
    rate = f", hit rate {hits / (hits + misses):.0%}" if hits + misses else ""
    check.summary = f"{cache.backend_name}, {int(frame['keys'].sum())} keys in {len(frame)} namespaces{rate}"
    return check


# --------------------------------------------------------------------------- queue and workers
QUEUE_RULES = [
    "error if the job queue cannot be read",
    f"warning if more than {QUEUE_PENDING_WARN} tasks are pending",
]


def _huey(ctx: Context) -> Any:
    """The job queue (the process's, wired by ``jobs``; or the runner the context names)."""
    from core.services.ports import job_queue

    return job_queue(ctx.huey)


def queue_facts(queue: JobQueue) -> dict[str, Any]:
    """Backend, pending, scheduled and results read from the job queue; the locks held (refresh, compute, migrate, seed: :mod:`core.infra.locks`) read from the database."""
    from core.infra.locks import held_locks

    held = sorted(held_locks())
    return {"backend": queue.backend, "pending": queue.pending_count(), "scheduled": queue.scheduled_count(),
            "results": queue.result_count(), "locks_held": held}


def check_queue(ctx: Context) -> Check:
    check = Check("queue", "Job queue", rules=QUEUE_RULES)
    try:
        facts = queue_facts(_huey(ctx))
    except Exception as exc:  # noqa: BLE001 - Redis / SQLite queue errors of every kind
        check.raise_to(ERROR, f"cannot read the queue: {_short(exc)}")
        check.summary = f"cannot read the queue: {_short(exc)}"
        return check
    check.facts.update(facts)
    if facts["pending"] > QUEUE_PENDING_WARN:
        check.raise_to(WARNING, f"{facts['pending']} tasks pending")
    locks = ", ".join(facts["locks_held"]) or "none"
    check.summary = (f"{facts['backend']}: {facts['pending']} pending, {facts['scheduled']} scheduled, "
                     f"{facts['results']} results, locks held: {locks}")
    return check


WORKER_RULES = [
    "error if no worker is alive while jobs wait (queued or retrying runs)",
    "warning if no worker is alive (queued jobs would not run)",
]


def check_workers(ctx: Context) -> Check:
    from core.models import TaskRun
    from core.services import tasks

    check = Check("workers", "Workers", rules=WORKER_RULES)
    workers = tasks.workers_status(now=ctx.now)
    with _session(ctx) as session:
        waiting = int(session.scalar(select(func.count(TaskRun.id))
                                     .where(TaskRun.state.in_(("queued", "retrying")))) or 0)
        oldest = session.scalar(select(func.min(TaskRun.queued_at)).where(TaskRun.state == "queued"))
    alive = [w for w in workers if w.alive]
    threads = sum(w.workers for w in alive)
    check.facts.update({"alive": len(alive), "worker_threads": threads, "waiting_runs": waiting,
                        "oldest_queued_at": oldest})
    check.tables["workers"] = pd.DataFrame(
        [{"worker": w.worker_id, "kind": w.kind, "hostname": w.hostname, "pid": w.pid, "threads": w.workers,
          "alive": w.alive, "last_heartbeat": w.last_seen, "age_s": round(w.age_s, 1), "started_at": w.started_at}
         for w in workers],
        columns=["worker", "kind", "hostname", "pid", "threads", "alive", "last_heartbeat", "age_s", "started_at"])
    if not alive and waiting:
        last = max((w.last_seen for w in workers), default=None)
        seen = f"; last heartbeat {last:%Y-%m-%d %H:%M:%S} UTC" if last else "; no heartbeat ever recorded"
        check.raise_to(ERROR, f"no worker alive while {waiting} job(s) wait{seen}")
    elif not alive:
        check.raise_to(WARNING, "no worker alive")
    check.summary = (f"{len(alive)} worker(s) alive ({threads} threads), {waiting} job(s) waiting"
                     if alive else check.findings[-1])
    return check


# --------------------------------------------------------------------------- data freshness
FRESHNESS_RULES = [
    f"warning if the benchmark is more than {BENCHMARK_STALE_WARN_DAYS} business days stale",
    f"error if the benchmark has no prices or is more than {BENCHMARK_STALE_ERROR_DAYS} business days stale",
    f"warning if any other active asset is more than {ASSET_STALE_WARN_DAYS} business days stale",
    "warning if no prices are stored",
]

FRESHNESS_COLUMNS = ["symbol", "name", "benchmark", "active", "source", "first_date", "last_date", "stale_days",
                     "prices", "gaps"]


def freshness_table(session: Any, today: dt.date | dt.datetime) -> pd.DataFrame:
    """Per asset, benchmark first: first / last price date, business days stale
    (:func:`core.services.freshness.business_days_stale`, the one rule), prices stored and
    gaps (business days between the first and last price with no price).

    One statement; per asset, MIN / MAX / COUNT are correlated subqueries that each seek the
    (asset_id, date) primary-key index, which is about 4x faster on SQLite than one GROUP BY over
    every price (55 ms instead of 235 ms for 1.3 M prices).
    """
    from core.models import Asset, Price

    def per_asset(aggregate: Any) -> Any:
        return select(aggregate).where(Price.asset_id == Asset.id).correlate(Asset).scalar_subquery()

    frame = pd.DataFrame(session.execute(
        select(Asset.id, Asset.symbol, Asset.name, Asset.is_benchmark, Asset.is_active, Asset.source,
               per_asset(func.min(Price.date)), per_asset(func.max(Price.date)), per_asset(func.count()))).all(),
        columns=["id", "symbol", "name", "benchmark", "active", "source", "first_date", "last_date", "prices"])
    if frame.empty:
        return pd.DataFrame(columns=FRESHNESS_COLUMNS)
    first = pd.to_datetime(frame["first_date"]).to_numpy(dtype="datetime64[D]")
    last = pd.to_datetime(frame["last_date"]).to_numpy(dtype="datetime64[D]")
    has = ~np.isnat(last)
    gaps = np.full(len(frame), np.nan)
    stale = business_days_stale_many(last, today)
    expected = np.busday_count(first[has], last[has]) + 1
    gaps[has] = np.maximum(expected - frame.loc[has, "prices"].to_numpy(dtype=float), 0)
    frame["first_date"] = [d.date() if pd.notna(d) else None for d in pd.to_datetime(frame["first_date"])]
    frame["last_date"] = [d.date() if pd.notna(d) else None for d in pd.to_datetime(frame["last_date"])]
    frame["stale_days"] = pd.array(stale, dtype="Int64")
    frame["gaps"] = pd.array(gaps, dtype="Int64")
    frame["prices"] = frame["prices"].fillna(0).astype(int)
    frame["benchmark"] = frame["benchmark"].astype(bool)
    frame["active"] = frame["active"].astype(bool)
    frame = frame.sort_values(["benchmark", "symbol"], ascending=[False, True], ignore_index=True)
    return frame[FRESHNESS_COLUMNS]


def _primary_benchmark(frame: pd.DataFrame) -> pd.Series | None:
    benches = frame[frame["benchmark"]]
    if benches.empty:
        return None
    chosen = benches[benches["symbol"] == "^GSPC"]
    return (chosen if not chosen.empty else benches).iloc[0]


def check_freshness(ctx: Context) -> Check:
    check = Check("freshness", "Data freshness", rules=FRESHNESS_RULES)
    with _session(ctx) as session:
        # The clock itself (the close of the day matters), unless a different day was asked for.
        frame = freshness_table(session, ctx.now if ctx.today == ctx.now.date() else ctx.today)
    check.tables["freshness"] = frame
    priced = frame[frame["prices"] > 0]
    check.facts.update({"assets": len(frame), "priced_assets": len(priced), "prices": int(frame["prices"].sum()),
                        "today": ctx.today})
    if priced.empty:
        check.raise_to(WARNING, "no prices stored")
        check.summary = "no prices stored yet: refresh or import market data"
        return check
    bench = _primary_benchmark(frame)
    if bench is None:
        check.raise_to(WARNING, "no benchmark asset")
        bench_text = "no benchmark"
    elif bench["prices"] == 0 or pd.isna(bench["stale_days"]):
        check.raise_to(ERROR, f"benchmark {bench['symbol']} has no prices")
        bench_text = f"benchmark {bench['symbol']} has no prices"
    else:
        stale = int(bench["stale_days"])
        check.facts.update({"benchmark": bench["symbol"], "benchmark_last_date": bench["last_date"],
                            "benchmark_stale_days": stale})
        if stale > BENCHMARK_STALE_ERROR_DAYS:
            check.raise_to(ERROR, f"benchmark {bench['symbol']} is {stale_text(stale)}")
        elif stale > BENCHMARK_STALE_WARN_DAYS:
            check.raise_to(WARNING, f"benchmark {bench['symbol']} is {stale_text(stale)}")
        bench_text = f"benchmark {bench['symbol']} last {bench['last_date']} ({stale_text(stale)})"
    others = frame[(~frame["benchmark"]) & frame["active"]]
    stale_others = others[others["stale_days"].fillna(0) > ASSET_STALE_WARN_DAYS]
    if len(stale_others):
        names = ", ".join(stale_others["symbol"].head(5)) + (" …" if len(stale_others) > 5 else "")
        check.raise_to(WARNING, f"{len(stale_others)} active asset(s) more than {ASSET_STALE_WARN_DAYS} business "
                                f"days stale: {names}")
    check.facts["stale_assets"] = int(len(stale_others))
    check.facts["gaps"] = int(frame["gaps"].fillna(0).sum())
    check.summary = f"{bench_text}; {len(stale_others)} stale asset(s) of {len(priced)} priced"
    return check


# --------------------------------------------------------------------------- jobs
JOB_RULES = [
    "warning if the last refresh or the last compute failed",
    f"warning if more than {FAILURE_RATE_WARN:.0%} of the runs finished in the last {STATS_DAYS} days failed",
]


def _last_run(session: Any, kinds: tuple[str, ...]) -> dict[str, Any] | None:
    from core.models import TaskRun

    row = session.execute(select(TaskRun.id, TaskRun.kind, TaskRun.state, TaskRun.queued_at, TaskRun.started_at,
                                 TaskRun.finished_at, TaskRun.duration_s, TaskRun.error)
                          .where(TaskRun.kind.in_(kinds)).order_by(TaskRun.queued_at.desc(), TaskRun.id.desc())
                          .limit(1)).first()
    return dict(row._mapping) if row is not None else None


def job_statistics(session: Any, since: dt.datetime) -> pd.DataFrame:
    """Per kind over runs queued since ``since``: runs, succeeded, failed, failure rate (of finished
    succeeded + failed runs), p50 / p95 / max duration of finished runs in seconds."""
    from core.models import TaskRun

    counts = pd.DataFrame(session.execute(
        select(TaskRun.kind, TaskRun.state, func.count()).where(TaskRun.queued_at >= since)
        .group_by(TaskRun.kind, TaskRun.state)).all(), columns=["kind", "state", "n"])
    columns = ["kind", "runs", "succeeded", "failed", "failure_rate", "p50_s", "p95_s", "max_s"]
    if counts.empty:
        return pd.DataFrame(columns=columns)
    table = counts.pivot_table(index="kind", columns="state", values="n", aggfunc="sum", fill_value=0)
    out = pd.DataFrame(index=table.index)
    out["runs"] = table.sum(axis=1)
    # a run that succeeded with warnings did its work: it counts as succeeded here
    out["succeeded"] = sum((table[state] if state in table else 0)
                           for state in ("succeeded", "succeeded_with_warnings"))
    out["failed"] = table["failed"] if "failed" in table else 0
    finished = out["succeeded"] + out["failed"]
    out["failure_rate"] = (out["failed"] / finished.where(finished > 0)).astype(float)
    durations = pd.DataFrame(session.execute(
        select(TaskRun.kind, TaskRun.duration_s).where(TaskRun.queued_at >= since, TaskRun.duration_s.is_not(None),
                                                        TaskRun.state.in_(("succeeded", "succeeded_with_warnings",
                                                                           "failed")))
        .order_by(TaskRun.queued_at.desc()).limit(JOB_DURATION_ROWS)).all(), columns=["kind", "duration_s"])
    grouped = durations.groupby("kind")["duration_s"]
    out["p50_s"] = grouped.quantile(0.5)
    out["p95_s"] = grouped.quantile(0.95)
    out["max_s"] = grouped.max()
    return out.reset_index()[columns]


def check_jobs(ctx: Context) -> Check:
    from core.services import app_settings

    check = Check("jobs", "Jobs", rules=JOB_RULES)
    since = ctx.now - dt.timedelta(days=STATS_DAYS)
    with _session(ctx) as session:
        last_refresh = _last_run(session, REFRESH_KINDS)
        last_compute = _last_run(session, COMPUTE_KINDS)
        stats = job_statistics(session, since)
        version = app_settings.get(session, app_settings.DATA_VERSION, {"version": 0})
    check.tables["durations by kind (7 days)"] = stats
    check.tables["last runs"] = pd.DataFrame(
        [{"job": label, **(run or {})} for label, run in (("refresh", last_refresh), ("compute", last_compute))],
        columns=["job", "id", "kind", "state", "queued_at", "started_at", "finished_at", "duration_s", "error"])
    check.facts.update({"data_version": version.get("version", 0), "data_version_at": version.get("at")})
    parts = []
    for label, run in (("refresh", last_refresh), ("compute", last_compute)):
        if run is None:
            parts.append(f"no {label} run yet")
            continue
        when = run["finished_at"] or run["started_at"] or run["queued_at"]
        took = f" in {run['duration_s']:.1f} s" if run["duration_s"] is not None else ""
        parts.append(f"last {label} {run['state']} {when:%Y-%m-%d %H:%M} UTC{took}")
        if run["state"] == "failed":
            check.raise_to(WARNING, f"the last {label} (run {run['id']}) failed: {(run['error'] or '')[:200]}")
    finished = int(stats["succeeded"].sum() + stats["failed"].sum()) if len(stats) else 0
    failed = int(stats["failed"].sum()) if len(stats) else 0
    rate = failed / finished if finished else None
    check.facts.update({"runs_7d": int(stats["runs"].sum()) if len(stats) else 0, "failure_rate_7d": rate})
    if rate is not None and rate > FAILURE_RATE_WARN:
        check.raise_to(WARNING, f"{rate:.0%} of {finished} runs finished in {STATS_DAYS} days failed")
    check.summary = "; ".join(parts) + (f"; failure rate {rate:.0%} over {STATS_DAYS} days" if rate is not None else "")
    return check


# --------------------------------------------------------------------------- app performance
PERFORMANCE_RULES = [f"warning if a page's p95 render time is above {PAGE_P95_WARN_MS / 1000:.0f} s "
                     f"(over {STATS_DAYS} days)"]


def check_performance(ctx: Context) -> Check:
    from core.infra import telemetry

    check = Check("performance", "App performance", rules=PERFORMANCE_RULES)
    stats = telemetry.timing_stats(STATS_DAYS, now=ctx.now)
    check.tables["page timings"] = stats.pages
    check.tables["slowest service calls"] = stats.slowest_services
    check.facts["samples"] = stats.samples
    if stats.pages.empty:
        check.status = INFO
        check.summary = f"no page timings recorded in the last {STATS_DAYS} days"
        return check
    slow = stats.pages[stats.pages["p95_ms"] > PAGE_P95_WARN_MS]
    for _, row in slow.iterrows():
        check.raise_to(WARNING, f"{row['name']}: p95 {row['p95_ms'] / 1000:.1f} s")
    top = stats.pages.iloc[0]
    check.summary = (f"{len(stats.pages)} page(s) timed, {stats.samples} samples; slowest p95: {top['name']} "
                     f"{top['p95_ms']:.0f} ms")
    return check


# --------------------------------------------------------------------------- configuration
CONFIGURATION_RULES = ["informational: every secret is shown only as set / not set, URLs without passwords"]


def app_version() -> str:
    """The deployed commit (short hash, from .git without running git), or ``unknown``."""
    git = PROJECT_ROOT / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if head.startswith("ref: "):
            ref = head[5:]
            path = git / ref
            if path.is_file():
                return path.read_text().strip()[:10]
            packed = git / "packed-refs"
            for line in packed.read_text().splitlines() if packed.is_file() else []:
                if line.endswith(" " + ref):
                    return line.split()[0][:10]
            return "unknown"
        return head[:10]
    except OSError:
        return "unknown"


@functools.lru_cache(maxsize=1)
def versions() -> dict[str, str]:
    """App commit, Python and the key dependencies' versions (read once per process: they change on restart)."""
    out = {"autoindex": app_version(), "python": platform.python_version()}
    for name in KEY_PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def check_configuration(ctx: Context) -> Check:
    check = Check("configuration", "Configuration", rules=CONFIGURATION_RULES, status=INFO)
    settings = get_settings()
    redacted = settings.redacted()
    check.tables["settings"] = pd.DataFrame(sorted(redacted.items()), columns=["setting", "value"])
    check.tables["versions"] = pd.DataFrame(list(versions().items()), columns=["component", "version"])
    check.facts.update({"database": "sqlite" if settings.is_sqlite else "postgresql",
                        "queue": "redis" if settings.redis_url else "sqlite",
                        "cache": "redis" if settings.redis_url else "in-process"})
    check.summary = (f"{check.facts['database']} database, {check.facts['queue']} queue, {check.facts['cache']} "
                     f"cache; Python {platform.python_version()}")
    return check


# --------------------------------------------------------------------------- running them
#: Every check in display order: key, title, function, needs the database.
CHECKS: tuple[tuple[str, str, Callable[[Context], Check], bool], ...] = (
    ("database", "Database", check_database, True),
    ("redis", "Redis", check_redis, False),
    ("queue", "Job queue", check_queue, False),
    ("workers", "Workers", check_workers, True),
    ("freshness", "Data freshness", check_freshness, True),
    ("jobs", "Jobs", check_jobs, True),
    ("performance", "App performance", check_performance, True),
    ("cache", "Cache", check_cache, False),
    ("configuration", "Configuration", check_configuration, False),
)
RULES = {"database": DATABASE_RULES, "redis": REDIS_RULES, "queue": QUEUE_RULES, "workers": WORKER_RULES,
         "freshness": FRESHNESS_RULES, "jobs": JOB_RULES, "performance": PERFORMANCE_RULES, "cache": CACHE_RULES,
         "configuration": CONFIGURATION_RULES}


def _ping_database(timeout_s: float) -> None:
    from core.db import get_engine

    engine = get_engine()
    with engine.connect() as conn:  # a transaction: SET LOCAL ends with it, the pooled connection is unchanged
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"SET LOCAL statement_timeout = {int(timeout_s * 1000)}"))
        conn.execute(text("SELECT 1"))
        conn.rollback()


def _failed(key: str, title: str, reason: str, started: float) -> Check:
    return Check(key, title, status=ERROR, summary=reason, rules=RULES.get(key, []), findings=[reason],
                 duration_ms=(time.perf_counter() - started) * 1000)


def _run_one(fn: Callable[[Context], Check], key: str, title: str, ctx: Context) -> Check:
    started = time.perf_counter()
    try:
        check = fn(ctx)
    except Exception as exc:  # noqa: BLE001 - a failing check is a card, never a traceback
        log.warning("health check %s failed: %s", key, _short(exc), exc_info=log.isEnabledFor(logging.DEBUG))
        return _failed(key, title, f"check failed: {_short(exc)}", started)
    check.duration_ms = (time.perf_counter() - started) * 1000
    return check


def run_checks(*, now: dt.datetime | None = None, today: dt.date | None = None, timeout_s: float = CHECK_TIMEOUT_S,
               only: tuple[str, ...] | None = None, huey: Any = None, cache: Any = None) -> HealthReport:
    """Run every check (or those named in ``only``) in parallel; never raises.

    First one quick ``SELECT 1`` (bounded by ``timeout_s``): when the database does not answer, the
    database card says why and the checks that need it are reported as not run, instead of each
    waiting for its own timeout.
    """
    started = time.perf_counter()
    now = now or dt.datetime.now(dt.timezone.utc)
    ctx = Context(now=now, today=today or now.date(), timeout_s=timeout_s, huey=huey, cache=cache)
    selected = [c for c in CHECKS if only is None or c[0] in only]
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(selected)),
                                                 thread_name_prefix="autoindex-health")
    results: dict[str, Check] = {}
    try:
        db_reason: str | None = None
        if any(needs_db for *_, needs_db in selected):
            ping = pool.submit(_ping_database, timeout_s)
            try:
                ping.result(timeout=timeout_s)
            except concurrent.futures.TimeoutError:
                db_reason = f"database did not answer within {timeout_s:g} s"
            except Exception as exc:  # noqa: BLE001
                db_reason = f"database unreachable: {_short(exc)}"
        ctx.database_ok = db_reason is None
        futures: dict[str, concurrent.futures.Future[Check]] = {}
        for key, title, fn, needs_db in selected:
            if db_reason is not None and needs_db:
                if key == "database":
                    check = _failed(key, title, db_reason, started)
                    check.facts["url"] = redact_url(get_settings().effective_database_url)
                    results[key] = check
                else:
                    results[key] = _failed(key, title, "not checked: the database is unreachable", started)
                continue
            futures[key] = pool.submit(_run_one, fn, key, title, ctx)
        deadline = time.monotonic() + timeout_s
        for key, title, _fn, _needs in selected:
            future = futures.get(key)
            if future is None:
                continue
            try:
                results[key] = future.result(timeout=max(0.0, deadline - time.monotonic()))
            except concurrent.futures.TimeoutError:
                results[key] = _failed(key, title, f"did not answer within {timeout_s:g} s", started)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    checks = [results[key] for key, *_ in selected]
    return HealthReport(status=overall(checks), checks=checks, at=now,
                        duration_ms=(time.perf_counter() - started) * 1000)
