"""Timings the app records about itself: page renders (wall and CPU time, figure bytes) and slow service calls.

Recording never slows a page: :func:`record_timing` only appends to an in-memory buffer (bounded by
:data:`MAX_BUFFER`; beyond it the oldest timings are dropped). The buffer is written to the ``timings``
table in one bulk INSERT by a short-lived background thread at most every :data:`FLUSH_EVERY_S` seconds
(or as soon as :data:`FLUSH_AT` timings wait), and at process exit. Service calls faster than
:data:`SERVICE_MIN_MS` are not recorded: only slow ones are worth a row. Rows older than
:data:`RETENTION_DAYS` are pruned at most once per :data:`PRUNE_EVERY_S` by the same writer, so the
table stays small and :func:`timing_stats` stays fast.

Use::

    with timed("page", "Dashboard"):
        page.run()

A ``page`` timing also records, under the same name, the CPU time of the run (kind ``cpu``: the script thread's
:func:`time.thread_time`, which is what a rerun costs the server) and, when the run drew figures, the bytes of
figure JSON it sent (kind ``bytes``, added by :func:`add_bytes`; the ``duration_ms`` column then holds bytes).
A page timed inside another page run of the same thread (a fragment drawn by its page) is part of that run and
not recorded twice; a fragment rerun on its own is recorded under its own name, so the Diagnostics table shows
how many runs each page had and how many of them were fragment reruns.

    @timed("service", "dashboard.dashboard_data")
    def dashboard_data(...): ...

Durations are milliseconds; times are UTC.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import logging
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal, TypedDict

import pandas as pd

from core.infra import metrics

log = logging.getLogger(__name__)

Kind = Literal["page", "service", "cpu", "bytes"]
KINDS: tuple[str, ...] = ("page", "service", "cpu", "bytes")

#: Most timings waiting in memory; older ones are dropped first (the database may be down).
MAX_BUFFER = 5000
#: Flush when this many timings wait ...
FLUSH_AT = 200
#: ... or when the oldest has waited this long (seconds).
FLUSH_EVERY_S = 10.0
#: Service calls faster than this (ms) are not recorded.
SERVICE_MIN_MS = 50.0
#: Timings are kept this many days.
RETENTION_DAYS = 30
#: Seconds between two prunes by one process.
PRUNE_EVERY_S = 3600.0
#: Rows read by :func:`timing_stats` at most (the newest), so it stays fast whatever the table holds.
STATS_MAX_ROWS = 100_000
NAME_MAX = 100

_buffer: deque[tuple[dt.datetime, str, str, float]] = deque(maxlen=MAX_BUFFER)
_lock = threading.Lock()


class _FlushState(TypedDict):
    last_flush: float  # time.monotonic() of the last flush
    last_prune: float
    writer: threading.Thread | None


_state: _FlushState = {"last_flush": time.monotonic(), "last_prune": float("-inf"), "writer": None}


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def record_timing(kind: str, name: str, duration_ms: float, *, at: dt.datetime | None = None) -> None:
    """Remember that ``name`` (a page title or a service function) took ``duration_ms`` milliseconds.

    Never raises and never touches the database in the caller's thread.
    """
    try:
        if kind not in KINDS:
            kind = "service"
        duration_ms = float(duration_ms)
        if kind == "page":
            metrics.observe_page(str(name), duration_ms)  # autoindex_page_render_seconds (Prometheus)
        if kind == "service" and duration_ms < SERVICE_MIN_MS:
            return
        _buffer.append((at or _utcnow(), kind, str(name)[:NAME_MAX], duration_ms))
        due = len(_buffer) >= FLUSH_AT or time.monotonic() - _state["last_flush"] >= FLUSH_EVERY_S
        if due:
            _flush_in_background()
    except Exception:  # noqa: BLE001 - telemetry must never break what it measures
        log.debug("could not record a timing", exc_info=True)


_run = threading.local()  # the page run in progress on this thread: {"bytes": int}


def add_bytes(n: int) -> None:
    """Count ``n`` bytes of figure JSON sent by the page run in progress on this thread (no-op outside one)."""
    current = getattr(_run, "page", None)
    if current is not None:
        current["bytes"] += int(n)


@contextlib.contextmanager
def timed(kind: str, name: str) -> Iterator[None]:
    """Time the block (or, as a decorator, each call) and :func:`record_timing` it, also when it raises.

    For ``page``: also its CPU time (``cpu``) and figure bytes (``bytes``); nested inside another page run of
    this thread, nothing is recorded (the outer run holds it)."""
    if kind == "page" and getattr(_run, "page", None) is not None:
        yield
        return
    started, cpu_started = time.perf_counter(), time.thread_time()
    if kind == "page":
        _run.page = {"bytes": 0}
    try:
        yield
    finally:
        record_timing(kind, name, (time.perf_counter() - started) * 1000.0)
        if kind == "page":
            record_timing("cpu", name, (time.thread_time() - cpu_started) * 1000.0)
            sent = _run.page["bytes"]
            _run.page = None
            if sent:
                record_timing("bytes", name, float(sent))


def _flush_in_background() -> None:
    with _lock:
        writer = _state["writer"]
        if writer is not None and writer.is_alive():
            return
        _state["last_flush"] = time.monotonic()
        thread = threading.Thread(target=flush, name="autoindex-telemetry", daemon=True)
        _state["writer"] = thread
    thread.start()


def flush(*, now: dt.datetime | None = None) -> int:
    """Write every buffered timing now (and prune old rows when due); return how many were written.

    On a database error the timings are dropped (logged at debug level): telemetry is best effort.
    A background write already running is waited for first, so that what this call returns is stored.
    """
    writer = _state["writer"]
    if writer is not None and writer is not threading.current_thread() and writer.is_alive():
        writer.join(timeout=5.0)
    rows = []
    while _buffer:
        try:
            at, kind, name, ms = _buffer.popleft()
        except IndexError:
            break
        rows.append({"at": at, "kind": kind, "name": name, "duration_ms": ms})
    _state["last_flush"] = time.monotonic()
    prune_due = time.monotonic() - _state["last_prune"] >= PRUNE_EVERY_S
    if not rows and not prune_due:
        return 0
    try:
        from sqlalchemy import delete, insert

        from core.db import unit_of_work
        from core.models import Timing

        with unit_of_work() as session:
            if rows:
                session.execute(insert(Timing), rows)
            if prune_due:
                cutoff = (now or _utcnow()) - dt.timedelta(days=RETENTION_DAYS)
                session.execute(delete(Timing).where(Timing.at < cutoff))
            session.commit()
        if prune_due:
            _state["last_prune"] = time.monotonic()
    except Exception:  # noqa: BLE001
        log.debug("could not write %d timings", len(rows), exc_info=True)
        return 0
    return len(rows)


def discard_pending() -> None:
    """Forget buffered timings without writing them (tests switch databases)."""
    _buffer.clear()


def _flush_at_exit() -> None:
    """At exit, write what is buffered; a process that timed nothing (a command that stops early, such as ``serve``
    refusing a mistyped option) does not touch, or create, the database."""
    if _buffer:
        flush()


atexit.register(_flush_at_exit)


@dataclass
class TimingStats:
    """Timings over ``days``: per page (count, p50, p95, max ms) and the slowest service calls."""

    days: int
    #: name, count (runs), p50/p95/max wall ms, last_at, cpu_p50_ms, cpu_p95_ms, figure_kib_p50 (per run)
    pages: pd.DataFrame = field(default_factory=pd.DataFrame)
    slowest_services: pd.DataFrame = field(default_factory=pd.DataFrame)
    samples: int = 0


_COLUMNS = ["name", "count", "p50_ms", "p95_ms", "max_ms", "last_at"]


def _summarise(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty:
        return pd.DataFrame(columns=_COLUMNS)
    grouped = frame.groupby("name")["duration_ms"]
    out = pd.DataFrame(
        {
            "count": grouped.size(),
            "p50_ms": grouped.quantile(0.50),
            "p95_ms": grouped.quantile(0.95),
            "max_ms": grouped.max(),
            "last_at": frame.groupby("name")["at"].max(),
        }
    ).reset_index()
    return out[_COLUMNS]


def timing_stats(days: int = 7, *, now: dt.datetime | None = None, slowest: int = 10) -> TimingStats:
    """p50 / p95 render time per page and the ``slowest`` service calls (by p95) over the last ``days``.

    Percentiles are linear-interpolated over at most the newest :data:`STATS_MAX_ROWS` timings.
    Buffered timings of this process are flushed first so the figures include them.
    """
    from sqlalchemy import select

    from core.db import unit_of_work
    from core.models import Timing

    flush(now=now)  # this process's buffered timings (and a background write in progress) first
    since = (now or _utcnow()) - dt.timedelta(days=days)
    with unit_of_work() as session:
        rows = session.execute(
            select(Timing.kind, Timing.name, Timing.duration_ms, Timing.at)
            .where(Timing.at >= since)
            .order_by(Timing.at.desc())
            .limit(STATS_MAX_ROWS)
        ).all()
    frame = pd.DataFrame(rows, columns=["kind", "name", "duration_ms", "at"])
    frame["duration_ms"] = frame["duration_ms"].astype(float)  # an empty table is object-typed: no quantile
    pages = _summarise(frame[frame["kind"] == "page"]).sort_values("p95_ms", ascending=False, ignore_index=True)
    cpu = frame[frame["kind"] == "cpu"].groupby("name")["duration_ms"]
    sent = frame[frame["kind"] == "bytes"].groupby("name")["duration_ms"]
    pages["cpu_p50_ms"] = pages["name"].map(cpu.quantile(0.50))
    pages["cpu_p95_ms"] = pages["name"].map(cpu.quantile(0.95))
    pages["figure_kib_p50"] = pages["name"].map(sent.quantile(0.50) / 1024.0)
    services = (
        _summarise(frame[frame["kind"] == "service"])
        .sort_values("p95_ms", ascending=False, ignore_index=True)
        .head(slowest)
    )
    return TimingStats(days=days, pages=pages, slowest_services=services, samples=len(frame))
