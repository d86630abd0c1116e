"""Prometheus metrics of AutoIndex: what they are, where they are counted, and the ``/metrics`` endpoint.

Every name starts with ``autoindex_``; the README ("Metrics and alerts") documents each one. Two kinds:

* **Events, counted in the process where they happen**: job runs by kind and final state with their duration
  (:data:`JOB_DURATION`, a histogram observed by the worker that ran the job, see :mod:`jobs.observe`), page
  renders by page (:data:`PAGE_RENDER`, observed by :mod:`core.infra.telemetry`), logins by outcome
  (:data:`LOGINS`, counted by :func:`core.services.users.authenticate` through :func:`counted_logins`).
  A worker started with ``-k process`` forks its workers: with ``PROMETHEUS_MULTIPROC_DIR`` set (``python -m core
  worker --metrics-port`` sets it for ``-k process``) each process writes its values to files there and the
  endpoint sums them (prometheus_client's multiprocess mode).
* **State, read at scrape time** from the database and the queue (queue depth, worker heartbeat age, data
  staleness, report bytes, active sessions, the active index's drawdown): functions registered with
  :func:`register_state` yield metric families when Prometheus scrapes. The services register theirs
  (:mod:`core.services.operations`), the UI registers the session count. Shared state read this way is the same
  whichever process serves it, so alert rules and dashboards take ``max`` over instances, never ``sum``.

With ``METRICS_PORT`` set (or ``python -m core worker --metrics-port``), :func:`serve` starts prometheus_client's
HTTP server once per process: the Prometheus text format at ``http://METRICS_HOST:PORT/metrics``.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

PREFIX = "autoindex_"
#: Environment variable of prometheus_client's multiprocess mode (a directory shared by the forked workers).
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

#: Job durations span a sub-second compute to a full refresh of hundreds of assets (seconds).
JOB_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
#: Page renders: the Dashboard's warm rerun is ~0.05 s, a cold render on a large universe a few seconds.
PAGE_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)

JOB_DURATION = Histogram(
    "autoindex_job_duration_seconds",
    "Background job runs by kind and final state, with their duration from start to end (seconds); "
    "_count is the number of runs.",
    ["kind", "state"],
    buckets=JOB_BUCKETS,
)
PAGE_RENDER = Histogram(
    "autoindex_page_render_seconds",
    "Time to render a page of the app, per page (seconds).",
    ["page"],
    buckets=PAGE_BUCKETS,
)
LOGINS = Counter(
    "autoindex_logins",
    "Login attempts by outcome: success, failure (wrong name or password), locked (refused "
    "because the account is locked), inactive, error.",
    ["outcome"],
)

#: Final states a job histogram sample may carry (the run states that end a run).
FINAL_STATES = ("succeeded", "succeeded_with_warnings", "failed", "cancelled", "skipped")
LOGIN_OUTCOMES = ("success", "failure", "locked", "inactive", "error")

StateReader = Callable[[], Iterable[Metric]]
_state_readers: dict[str, StateReader] = {}
_server_lock = threading.Lock()
_server: dict[str, Any] = {"port": None, "server": None, "thread": None}


# --------------------------------------------------------------------------- events
def observe_job(kind: str, state: str, duration_s: float | None) -> None:
    """One finished job run of ``kind`` ending in ``state`` after ``duration_s`` seconds (None: not started, 0)."""
    try:
        JOB_DURATION.labels(kind=str(kind)[:32], state=state if state in FINAL_STATES else "failed").observe(
            max(0.0, float(duration_s or 0.0))
        )
    except Exception:  # noqa: BLE001 - a metric must never break what it measures
        log.debug("could not observe a job run", exc_info=True)


def observe_page(page: str, duration_ms: float) -> None:
    """One render of ``page`` that took ``duration_ms`` milliseconds."""
    try:
        PAGE_RENDER.labels(page=str(page)[:100]).observe(max(0.0, float(duration_ms)) / 1000.0)
    except Exception:  # noqa: BLE001
        log.debug("could not observe a page render", exc_info=True)


def count_login(outcome: str) -> None:
    LOGINS.labels(outcome=outcome if outcome in LOGIN_OUTCOMES else "error").inc()


def login_outcome(exc: BaseException | None) -> str:
    """The outcome label of a login that raised ``exc`` (None: it succeeded), by the error's class name so that
    this module needs no service import: TwoFactorRequired -> second_factor (right password, a code is asked next),
    RateLimited -> rate_limited, an AuthenticationError carrying ``locked_until`` -> locked (refused, or the
    attempt that locked the account), any other AuthenticationError -> failure, anything else -> error."""
    if exc is None:
        return "success"
    name = type(exc).__name__
    if name == "TwoFactorRequired":  # the password was right; the login goes on with a code (complete_login)
        return "second_factor"
    if name == "RateLimited":
        return "rate_limited"
    if "Locked" in name or getattr(exc, "locked_until", None) is not None:
        return "locked"
    if "Inactive" in name or "SessionEnded" in name:
        return "inactive"
    if "Authentication" in name:
        return "failure"
    return "error"


F = TypeVar("F", bound=Callable[..., Any])


def counted_logins(fn: F) -> F:
    """Decorate the login service: every call is counted in :data:`LOGINS` by its outcome, then returns or
    re-raises as it would have."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            count_login(login_outcome(exc))
            raise
        count_login("success")
        return result

    return wrapper  # type: ignore[return-value]  # functools.wraps keeps the signature F describes


# --------------------------------------------------------------------------- state read at scrape time
def register_state(name: str, reader: StateReader) -> None:
    """Add (or replace) a reader of shared state: called on each scrape, it yields metric families.

    A reader that raises costs its metrics for that scrape only (logged at debug level); the others are served.
    """
    _state_readers[name] = reader


def unregister_state(name: str) -> None:
    _state_readers.pop(name, None)


class _StateCollector(Collector):
    """Runs every registered state reader on each scrape, plus how long each took and whether it worked."""

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        ok = GaugeMetricFamily(
            "autoindex_state_read_ok",
            "1 when the reader of shared state (database, queue, sessions) answered at this scrape, 0 when it failed.",
            labels=["reader"],
        )
        took = GaugeMetricFamily(
            "autoindex_state_read_seconds",
            "Time the reader of shared state took at this scrape (seconds).",
            labels=["reader"],
        )
        for name, reader in list(_state_readers.items()):
            started = time.perf_counter()
            try:
                families = list(reader())
            except Exception:  # noqa: BLE001 - one failing reader must not cost the whole scrape
                log.debug("metrics state reader %s failed", name, exc_info=True)
                ok.add_metric([name], 0.0)
            else:
                ok.add_metric([name], 1.0)
                yield from families
            took.add_metric([name], time.perf_counter() - started)
        yield ok
        yield took

    def describe(self) -> list[Metric]:
        return []  # families depend on the readers: never run them at registration time


_STATE_COLLECTOR = _StateCollector()


def enable_multiprocess(path: str) -> None:
    """Switch this process to prometheus_client's multiprocess mode with its files in ``path`` (an empty directory),
    before any job or page was counted: forked children then write their values there and :func:`registry` sums
    them. Every metric here has labels, so its values are created at the first ``labels()`` call and take the
    value class chosen now (prometheus_client picks it from ``PROMETHEUS_MULTIPROC_DIR`` when it is imported)."""
    from prometheus_client import values

    os.environ[MULTIPROC_ENV] = path
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]  # untyped in prometheus_client


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def registry() -> CollectorRegistry:
    """The registry served at ``/metrics``: the default one (process metrics and ours) in a single process, or
    in multiprocess mode one that sums the files of every process, plus the state collector either way."""
    path = multiprocess_dir()
    if path:
        from prometheus_client import multiprocess

        served = CollectorRegistry()
        multiprocess.MultiProcessCollector(served, path=path)  # type: ignore[no-untyped-call]  # untyped in prometheus_client
        served.register(_STATE_COLLECTOR)
        return served
    try:
        REGISTRY.register(_STATE_COLLECTOR)
    except ValueError:  # registered already (a second call in this process)
        pass
    return REGISTRY


def render() -> str:
    """The Prometheus text exposition of :func:`registry` (what ``/metrics`` answers)."""
    from prometheus_client import generate_latest

    return generate_latest(registry()).decode("utf-8")


def serve(port: int, host: str = "0.0.0.0") -> int:
    """Start the ``/metrics`` HTTP server of this process on ``host:port`` (once: later calls return the port
    already served). Port 0 picks a free port. Returns the port; raises OSError when it is taken."""
    with _server_lock:
        if _server["port"] is not None:
            return int(_server["port"])
        served = registry()
        server, thread = start_http_server(port, addr=host, registry=served)
        actual = int(server.server_address[1])
        _server.update(port=actual, server=server, thread=thread)
        log.info("metrics served at http://%s:%d/metrics", host, actual)
        return actual


def serving_port() -> int | None:
    """The port this process serves ``/metrics`` on, None when it does not."""
    port = _server["port"]
    return None if port is None else int(port)


def stop() -> None:
    """Stop this process's metrics server (tests)."""
    with _server_lock:
        server = _server["server"]
        if server is not None:
            server.shutdown()
            server.server_close()
        _server.update(port=None, server=None, thread=None)
