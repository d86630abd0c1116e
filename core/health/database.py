"""The database card: reachable, writable, at the newest migration, and quick."""

from __future__ import annotations

import contextlib
import statistics
import time
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import text

from core.config import get_settings, redact_url
from core.errors import one_line
from core.health.base import CHECK_TIMEOUT_S, ERROR, WARNING, Check, Context, read_session, register

#: A database round trip slower than this (ms) is a warning.
DB_LATENCY_WARN_MS = 100.0


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
        "rows", ascending=False, ignore_index=True
    )


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
                    return (
                        "the server is a hot standby (read-only replica)"
                        if in_recovery
                        else "transactions are read-only (default_transaction_read_only = on)"
                    )
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
            return one_line(exc).split(": ", 1)[-1]
        finally:
            with contextlib.suppress(Exception):
                conn.rollback()
            if busy_ms is not None:
                with contextlib.suppress(Exception):
                    conn.exec_driver_sql(f"PRAGMA busy_timeout = {int(busy_ms)}")


@register(
    "database",
    "Database",
    shows="dialect, reachable, writable, round-trip latency, size, row counts per table, migrations at head",
    rules=DATABASE_RULES,
    needs_database=True,
    order=10,
)
def check_database(ctx: Context, check: Check) -> None:
    from core.db import get_engine, migration_status

    engine = get_engine()
    dialect = engine.dialect.name
    check.facts.update({"dialect": dialect, "url": redact_url(str(engine.url))})
    with read_session(ctx) as session:
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
    check.facts.update(
        {
            "migration_current": migrations["current"],
            "migration_head": migrations["head"],
            "at_head": migrations["at_head"],
        }
    )
    if not migrations["at_head"]:
        current = migrations["current"] or "no revision (never migrated)"
        check.raise_to(ERROR, f"schema at {current}, newest migration is {migrations['head']}")
    if latency > DB_LATENCY_WARN_MS:
        check.raise_to(WARNING, f"round trip {latency:.0f} ms")
    check.summary = (
        f"{dialect}, reachable, {'writable' if refused is None else 'READ-ONLY'}, "
        f"{latency:.1f} ms round trip, {_human_bytes(check.facts['size_bytes'])}, "
        f"migrations {'at head' if migrations['at_head'] else 'behind'}"
    )
    return


def _human_bytes(n: int | None) -> str:
    if n is None:
        return "size unknown"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"
