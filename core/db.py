"""The one engine and session factory, the unit of work, and start-up migration.

Services own their transaction::

    with unit_of_work() as session:
        ...
        session.commit()

Anything not committed is rolled back when the block ends.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from core.config import PROJECT_ROOT, get_settings, redact_url
from core.errors import DatabaseReadOnlyError, DatabaseUnavailableError
from core.infra.locks import MIGRATE, hold

log = logging.getLogger(__name__)


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def make_engine(url: str) -> Engine:
    """Build an engine for ``url`` with the settings AutoIndex needs on each dialect."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(
            url, pool_pre_ping=True, pool_size=5, max_overflow=10, connect_args={"connect_timeout": 5}
        )
    return engine


@functools.lru_cache(maxsize=4)
def _engine_for(url: str) -> Engine:
    return make_engine(url)


def get_engine() -> Engine:
    """The process-wide engine for the configured DATABASE_URL."""
    return _engine_for(get_settings().effective_database_url)


def session_factory() -> sessionmaker[Session]:
    return sessionmaker(bind=get_engine(), expire_on_commit=False)


@contextlib.contextmanager
def unit_of_work() -> Iterator[Session]:
    """A session whose uncommitted work is rolled back when the block exits."""
    session = session_factory()()
    try:
        yield session
    except OperationalError as exc:
        session.rollback()
        lost = write_refused(exc) or connection_lost(exc)
        if lost is None:
            raise
        raise lost from exc
    except DBAPIError as exc:  # PostgreSQL's read-only transaction error is not an OperationalError
        session.rollback()
        refused = write_refused(exc)
        if refused is None:
            raise
        raise refused from exc
    except BaseException:
        session.rollback()
        raise
    finally:
        session.rollback()
        session.close()


def write_lock(session: Session) -> None:
    """Serialise this transaction with every other writer before it reads what it will change.

    SQLite: pysqlite runs SELECTs outside a transaction until the first write, so a read-check-write could
    interleave with another writer; a write statement that matches no row takes the database's write lock
    (waiting up to busy_timeout) and every later read in this transaction sees the latest committed state.
    PostgreSQL: a no-op; callers lock the rows they check (``SELECT ... FOR UPDATE``) or update atomically.
    """
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("UPDATE app_settings SET key = key WHERE 1 = 0"))


def lock_table(session: Session, table: str) -> None:
    """Serialise this transaction with every other writer of ``table`` before it reads what it decides on
    ("no user exists yet", the next version number, the one active version): PostgreSQL takes a table lock
    that conflicts with itself; SQLite takes the database's write lock (:func:`write_lock`)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE"))
    else:
        write_lock(session)


def write_refused(exc: DBAPIError) -> DatabaseReadOnlyError | None:
    """``exc`` as a DatabaseReadOnlyError when the database refused a write because it is read-only
    (SQLite ``SQLITE_READONLY``: a read-only file or directory, ``mode=ro``, ``PRAGMA query_only``;
    PostgreSQL SQLSTATE 25006: ``default_transaction_read_only``, a hot standby); None otherwise."""
    orig = exc.orig
    code = getattr(orig, "sqlite_errorcode", None)
    if not (
        (isinstance(code, int) and code & 0xFF == 8)
        or getattr(orig, "sqlstate", None) == "25006"
        or "readonly database" in str(orig)
    ):
        return None
    reason = (str(orig).strip().splitlines() or [""])[0] or type(orig).__name__
    return DatabaseReadOnlyError(redact_url(str(get_engine().url)), reason)


def connection_lost(exc: OperationalError) -> DatabaseUnavailableError | None:
    """``exc`` as a DatabaseUnavailableError when it means the server cannot be reached or dropped the
    connection (refused, restarted, ``pg_terminate_backend``), so entry points show one readable line and
    jobs retry it (it is transient); None for other operational errors (SQLite "database is locked",
    "no such table"), which keep their type. The SQL and its parameters stay in the chained exception."""
    orig = exc.orig
    module = type(orig).__module__ if orig is not None else ""
    reason = (str(orig).strip().splitlines() or [""])[0] if orig is not None else str(exc)
    if module.startswith("psycopg") or exc.connection_invalidated or "unable to open database file" in reason:
        url = str(get_engine().url)
        return DatabaseUnavailableError(redact_url(url), 1, reason or type(orig).__name__)
    return None


def reset_engine_cache() -> None:
    """Dispose every engine (tests switch databases)."""
    try:
        get_engine().dispose()
    except Exception:  # settings may be invalid in a test
        pass
    _engine_for.cache_clear()


def wait_for_database(
    engine: Engine | None = None, *, timeout_s: float | None = None, sleep: Callable[[float], None] = time.sleep
) -> int:
    """Connect with exponential backoff for at most ``timeout_s`` seconds; return attempts used.

    A server (PostgreSQL) may be starting: it is waited for. A SQLite file has no server to wait for: a file or
    directory that cannot be opened stays so, so it fails at the first attempt instead of after the whole budget
    (a read-only directory cost a ``compute`` 30 s of retries before its one-line error); only a SQLite file that
    another process holds locked (``database is locked``, busy) is waited for.

    Raises DatabaseUnavailableError with the (password-redacted) URL and the last reason.
    """
    engine = engine or get_engine()
    server = engine.dialect.name != "sqlite"
    budget = get_settings().db_connect_timeout_s if timeout_s is None else timeout_s
    started = time.monotonic()
    delay, attempts, slept = 0.25, 0, 0.0
    while True:
        attempts += 1
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return attempts
        except OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            spent = max(time.monotonic() - started, slept)
            busy = "locked" in reason or "busy" in reason
            if not (server or busy) or spent + delay > budget:
                raise DatabaseUnavailableError(redact_url(str(engine.url)), attempts, reason) from None
            log.warning("database not reachable (attempt %d): %s; retrying in %.1fs", attempts, reason, delay)
            sleep(delay)
            slept += delay
            delay = min(delay * 2, 5.0)


def alembic_config(url: str | None = None):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    cfg = Config(str(PROJECT_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    cfg.attributes["database_url"] = url or get_settings().effective_database_url
    return cfg


#: Longest a migration waits for another process's migration (a PostgreSQL advisory lock, a file lock on SQLite).
MIGRATE_LOCK_WAIT_S = 300.0


def migrate(*, timeout_s: float | None = None, lock_timeout_s: float = MIGRATE_LOCK_WAIT_S) -> str:
    """Wait for the database, then upgrade it to the newest migration; return the head revision.

    Holds the ``migrate`` lock (:mod:`core.infra.locks`) while upgrading: processes starting at once
    upgrade one after the other, and those after the first find the schema at head and change nothing.
    """
    from alembic import command
    from alembic.script import ScriptDirectory

    wait_for_database(timeout_s=timeout_s)
    cfg = alembic_config()
    with hold(MIGRATE, timeout_s=lock_timeout_s, holder="migrate"):
        command.upgrade(cfg, "head")
    return ScriptDirectory.from_config(cfg).get_current_head() or ""


def migration_status() -> dict[str, object]:
    """Current and head revision of the configured database."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    with get_engine().connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    return {"current": current, "head": head, "at_head": current == head}
