"""Named locks, one per unit of work, shared by every process that uses the same database.

A unit of work that must not run twice at once takes its lock by name:

=====================  ==================================================================================
``compute:<id>``       backtesting config version ``<id>`` and replacing its stored rows (CLI, job, activation)
``refresh``            fetching market data and storing it (CLI, job, scheduled refresh, demo seeding)
``migrate``            upgrading the schema (every process runs migrations at start-up)
``seed``               first-start seeding: the demo universe on an empty database and the default config
=====================  ==================================================================================

::

    with hold("refresh", wait=False):        # AlreadyRunning at once when another process holds it
        ...
    with hold(compute_lock(3), timeout_s=900):  # waits up to 900 s, then AlreadyRunning
        ...

The lock lives where the data lives, so it is shared by every process and host using the same database:

* PostgreSQL: a session-level advisory lock (``pg_advisory_lock``) on a dedicated connection opened for the
  lock and closed when it is released. The 64-bit key is a BLAKE2b hash of ``autoindex:<name>`` (stable across
  processes and Python versions); advisory locks are scoped to the current database. The holder is recorded as
  the connection's ``application_name`` (``autoindex:<name> <holder>``, 63 bytes at most), so anyone can read it
  from ``pg_locks`` joined to ``pg_stat_activity``.
* SQLite: ``fcntl.flock`` on ``<folder of the database>/locks/<name>.lock`` (``DATA_DIR/locks`` by default, and
  when the database's folder cannot be written); the name and the holder are written into the file while the
  lock is held and erased when it is released.

Either way the operating system or the server frees a lock whose holder dies (a closed connection, a closed
file), so no lock outlives its process and nothing has to clean locks up. Locks are re-entrant within a
thread: code holding ``seed`` may call code that takes ``seed`` again.

A holder is described as ``"<label> on <host>:<pid>"``; the label is the one set by :func:`acting_as` (jobs set
``run <id>``), else the ``holder`` passed to :func:`hold` (services pass their actor: ``cli``, ``system``).
"""

from __future__ import annotations

import abc
import contextlib
import contextvars
import fcntl
import functools
import hashlib
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.config import get_settings, redact_url
from core.errors import AlreadyRunning, AutoIndexError, DatabaseUnavailableError

#: Lock names of the units of work (computes are named by :func:`compute_lock`).
REFRESH = "refresh"
MIGRATE = "migrate"
SEED = "seed"

#: Prefix of the PostgreSQL key material and of the application_name of a connection holding a lock.
_PREFIX = "autoindex:"
#: PostgreSQL truncates application_name to 63 bytes.
_APP_NAME_MAX = 63
#: SQLSTATE of "canceling statement due to lock timeout".
_LOCK_NOT_AVAILABLE = "55P03"

_acting: contextvars.ContextVar[str | None] = contextvars.ContextVar("autoindex_lock_label", default=None)
_local = threading.local()


def compute_lock(config_id: int) -> str:
    """The lock name of computing config version ``config_id``."""
    return f"compute:{int(config_id)}"


@contextlib.contextmanager
def acting_as(label: str) -> Iterator[None]:
    """Within the block, locks taken by this thread (and its context) name ``label`` as their holder."""
    token = _acting.set(label)
    try:
        yield
    finally:
        _acting.reset(token)


def describe_holder(holder: Any = None) -> str:
    """``"<label> on <host>:<pid>"`` for this process (see the module docstring for the label); ``holder`` may
    be a label or an actor (its ``username`` or ``name``)."""
    if holder is not None and not isinstance(holder, str):
        holder = getattr(holder, "username", None) or getattr(holder, "name", None) or str(holder)
    label = _acting.get() or holder or "process"
    return f"{label} on {socket.gethostname()}:{os.getpid()}"


# --------------------------------------------------------------------------- the backend contract
@dataclass
class Held:
    """A lock taken by a backend; pass it back to :meth:`LockBackend.release`."""

    name: str
    holder: str
    handle: Any  # the backend's own: a connection, a file descriptor


class LockBackend(abc.ABC):
    """Where named locks live. Every method is safe to call from any thread; a lock taken by one thread
    excludes every other thread and process, including other threads of the same process."""

    #: Identifies the store (the database URL or the lock folder): re-entrancy is tracked per store.
    key: str

    @abc.abstractmethod
    def acquire(self, name: str, holder: str, timeout_s: float | None) -> Held | None:
        """Take lock ``name`` for ``holder`` (a description such as ``"run 12 on host:4242"``).

        ``timeout_s``: 0 tries once; None waits as long as it takes; otherwise waits at most that many
        seconds. Returns the held lock, or None when it is still taken by someone else.
        """

    @abc.abstractmethod
    def release(self, held: Held) -> None:
        """Free a lock returned by :meth:`acquire`. Never raises; calling it twice is harmless."""

    @abc.abstractmethod
    def holder(self, name: str) -> str | None:
        """Who holds ``name`` now (the description given to :meth:`acquire`); None when free or unknown."""

    @abc.abstractmethod
    def held(self) -> dict[str, str]:
        """Every lock held now, as {name: holder} (for diagnostics)."""


# --------------------------------------------------------------------------- PostgreSQL
def advisory_key(name: str) -> int:
    """The signed 64-bit advisory-lock key of ``name`` (stable: BLAKE2b of ``autoindex:<name>``)."""
    digest = hashlib.blake2b((_PREFIX + name).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PostgresAdvisoryLocks(LockBackend):
    """Session-level advisory locks, each on a connection of its own (not from the application's pool)."""

    def __init__(self, url: str) -> None:
        from sqlalchemy import create_engine
        from sqlalchemy.pool import NullPool

        self.key = url
        self.url = url
        # NullPool: closing the connection really ends the session, which frees its advisory locks.
        self.engine = create_engine(
            url, poolclass=NullPool, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5}
        )

    def _connect(self) -> Any:
        from sqlalchemy.exc import OperationalError

        try:
            return self.engine.connect()
        except OperationalError as exc:
            reason = (str(exc.orig).strip().splitlines() or [""])[0] if exc.orig else str(exc)
            raise DatabaseUnavailableError(redact_url(self.url), 1, reason) from None

    def acquire(self, name: str, holder: str, timeout_s: float | None) -> Held | None:
        from sqlalchemy import text
        from sqlalchemy.exc import OperationalError

        key = advisory_key(name)
        conn = self._connect()
        try:
            app = f"{_PREFIX}{name} {holder}".encode()[:_APP_NAME_MAX].decode(errors="ignore")
            conn.execute(text("SELECT set_config('application_name', :app, false)"), {"app": app})
            if timeout_s == 0:
                got = bool(conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}))
            else:
                # lock_timeout bounds the wait; 0 means no bound
                bound = "0" if timeout_s is None else f"{max(1, int(timeout_s * 1000))}ms"
                conn.execute(text("SELECT set_config('lock_timeout', :t, false)"), {"t": bound})
                try:
                    conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
                    got = True
                except OperationalError as exc:
                    if getattr(exc.orig, "sqlstate", None) != _LOCK_NOT_AVAILABLE:
                        raise
                    got = False
        except BaseException:
            conn.close()
            raise
        if not got:
            conn.close()
            return None
        return Held(name, holder, conn)

    def release(self, held: Held) -> None:
        from sqlalchemy import text

        conn = held.handle
        if conn is None or conn.closed:
            return
        try:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": advisory_key(held.name)})
        except Exception:  # noqa: BLE001 - closing the session frees the lock anyway
            pass
        finally:
            conn.close()
            held.handle = None

    _HOLDERS_SQL = (
        "SELECT a.application_name, l.pid FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
        "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )

    def holder(self, name: str) -> str | None:
        from sqlalchemy import text

        key = advisory_key(name)
        with self._connect() as conn:
            row = conn.execute(
                text(self._HOLDERS_SQL + " AND l.classid = CAST(:hi AS oid) AND l.objid = CAST(:lo AS oid) LIMIT 1"),
                {"hi": (key >> 32) & 0xFFFFFFFF, "lo": key & 0xFFFFFFFF},
            ).first()
        if row is None:
            return None
        app, pid = row
        prefix = f"{_PREFIX}{name} "
        if app and app.startswith(prefix):
            holder: str = app[len(prefix) :]
            return holder
        return f"database session {pid}"

    def held(self) -> dict[str, str]:
        from sqlalchemy import text

        with self._connect() as conn:
            rows = conn.execute(text(self._HOLDERS_SQL + " AND a.application_name LIKE :p"), {"p": _PREFIX + "%"}).all()
        out: dict[str, str] = {}
        for app, _pid in rows:
            name, _, who = app[len(_PREFIX) :].partition(" ")
            out[name] = who
        return out


# --------------------------------------------------------------------------- SQLite: lock files
class FileLocks(LockBackend):
    """``fcntl.flock`` on one file per lock name in ``folder``. flock locks belong to an open file, so two
    threads of one process exclude each other as two processes do; the kernel frees them when the file is
    closed or its process dies. Waiting polls every 20-250 ms (flock has no timeout of its own)."""

    POLL_MIN_S = 0.02
    POLL_MAX_S = 0.25

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.key = str(self.folder)

    def path(self, name: str) -> Path:
        return self.folder / (re.sub(r"[^A-Za-z0-9_.-]", "-", name) + ".lock")

    def acquire(self, name: str, holder: str, timeout_s: float | None) -> Held | None:
        path = self.path(name)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise AutoIndexError(f"cannot open the lock file {path}: {exc.strerror or exc}") from None
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        delay = self.POLL_MIN_S
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        os.close(fd)
                        return None
                    time.sleep(delay if left is None else min(delay, left))
                    delay = min(delay * 1.5, self.POLL_MAX_S)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{name}\n{holder}\n".encode(), 0)
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(fd)
            raise
        return Held(name, holder, fd)

    def release(self, held: Held) -> None:
        fd = held.handle
        if fd is None:
            return
        held.handle = None
        try:
            os.ftruncate(fd, 0)  # the holder is no longer there; the file stays (deleting it would race)
        except OSError:
            pass
        finally:
            os.close(fd)  # closing frees the flock

    @staticmethod
    def _read(path: Path) -> tuple[str, str] | None:
        """(name, holder) written in a lock file; None when it is empty (free) or unreadable."""
        try:
            name, _, who = path.read_text(errors="replace").strip().partition("\n")
        except OSError:
            return None
        return (name, who.strip()) if who.strip() else None

    def holder(self, name: str) -> str | None:
        entry = self._read(self.path(name))
        return entry[1] if entry else None

    def held(self) -> dict[str, str]:
        out: dict[str, str] = {}
        if not self.folder.is_dir():
            return out
        for path in sorted(self.folder.glob("*.lock")):
            entry = self._read(path)
            if entry and _holder_alive(entry[1]):
                out[entry[0]] = entry[1]
        return out


#: How long a waiter asks again for the holder of a lock that is taken but names nobody yet.
HOLDER_PATIENCE_S = 0.5


def _current_holder(locks: Any, name: str, patience_s: float = HOLDER_PATIENCE_S) -> str | None:
    """The holder the store names for ``name``. A lock just taken (or just passed from one holder to the next) is
    held a moment before its holder is written — a flock taken, then the file written; a file truncated on release
    before it is closed — so a waiter that reads nobody asks again for up to ``patience_s`` before saying "unknown"."""
    deadline = time.monotonic() + patience_s
    while True:
        current: str | None = locks.holder(name)
        if current is not None or time.monotonic() >= deadline:
            return current
        time.sleep(0.02)


def _holder_alive(who: str) -> bool:
    """False when ``who`` names a process of this host that no longer exists (a file left by a kill -9)."""
    host_pid = who.rsplit(" on ", 1)[-1]
    host, _, pid = host_pid.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


# --------------------------------------------------------------------------- choosing and holding
@functools.lru_cache(maxsize=8)
def _backend_for(url: str, data_dir: str) -> LockBackend:
    if url.startswith("postgresql"):
        return PostgresAdvisoryLocks(url)
    path = url.split("///", 1)[-1] if "///" in url else ""
    folder = Path(data_dir)
    if path and path != ":memory:":
        beside = Path(path).resolve().parent
        if os.access(beside, os.W_OK | os.X_OK):  # else nothing writes this database: any shared folder will do
            folder = beside
    return FileLocks(folder / "locks")


def backend() -> LockBackend:
    """The backend for the configured database: advisory locks on PostgreSQL, lock files on SQLite."""
    settings = get_settings()
    return _backend_for(settings.effective_database_url, str(settings.data_dir))


def _depths() -> dict[tuple[str, str], int]:
    depths = getattr(_local, "depths", None)
    if depths is None:
        depths = _local.depths = {}
    return depths


@contextlib.contextmanager
def hold(
    name: str,
    *,
    wait: bool = True,
    timeout_s: float | None = 600.0,
    holder: Any = None,
    on_wait: Callable[[str | None], None] | None = None,
    locks: LockBackend | None = None,
) -> Iterator[str]:
    """Hold lock ``name`` for the block; yields this holder's description.

    Args:
        wait: False raises :class:`~core.errors.AlreadyRunning` at once when the lock is taken; True waits.
        timeout_s: the longest wait in seconds (None: no bound); AlreadyRunning (with the seconds waited) after it.
        holder: the label recorded when no :func:`acting_as` label is in effect (``"cli"``, ``"system"``).
        on_wait: called once with the current holder (None if unknown) before waiting, e.g. to report progress.
        locks: the backend (default: :func:`backend` for the configured database).

    A thread that already holds ``name`` on the same store enters at once (re-entrant).
    """
    locks = locks or backend()
    slot = (locks.key, name)
    depths = _depths()
    if depths.get(slot):
        depths[slot] += 1
        try:
            yield describe_holder(holder)
        finally:
            depths[slot] -= 1
        return
    who = describe_holder(holder)
    held = locks.acquire(name, who, 0)
    if held is None:
        current = _current_holder(locks, name)
        if not wait:
            raise AlreadyRunning(name, current)
        if on_wait is not None:
            on_wait(current)
        started = time.monotonic()
        held = locks.acquire(name, who, timeout_s)
        if held is None:
            raise AlreadyRunning(name, locks.holder(name) or current, waited_s=time.monotonic() - started)
    depths[slot] = 1
    try:
        yield who
    finally:
        depths.pop(slot, None)
        locks.release(held)


def held_locks() -> dict[str, str]:
    """Locks held now on the configured database, {name: holder} (the Diagnostics page shows them)."""
    return backend().held()
