"""The app process's side of operations: ``/metrics`` (METRICS_PORT), the alert watchdog, and its session count.

Home.py calls :func:`start` on every run (and ``python -m core serve`` calls :func:`start_process` before the first
session). Once per process it serves ``/metrics`` when ``METRICS_PORT`` is set
(:func:`core.services.operations.serve_metrics`), registers the session count as scrape-time state, and — when the
app runs no jobs itself (``REDIS_URL`` set or ``EMBEDDED_WORKER=false``) — starts the alert watchdog
(:func:`core.services.alerts.start_watchdog`), so that "no worker alive" is noticed although no worker runs the
periodic alert check. On every run it notes the session and whether it is signed in.

``autoindex_active_sessions{state}`` counts the browser sessions connected to this process (Streamlit's
``Runtime.is_active_session``, its public API), split into ``signed_in`` and ``anonymous`` by the session's state
at its latest run; a closed tab leaves the count at the next scrape.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import streamlit as st
from prometheus_client.core import GaugeMetricFamily, Metric

from ui import state

log = logging.getLogger(__name__)

_sessions: dict[str, bool] = {}  # session id -> signed in at its latest run
_lock = threading.Lock()


def _session_families() -> Iterator[Metric]:
    from streamlit import runtime

    live = runtime.get_instance() if runtime.exists() else None
    with _lock:
        for session_id in list(_sessions):
            if live is None or not live.is_active_session(session_id):
                del _sessions[session_id]
        signed_in = sum(1 for flag in _sessions.values() if flag)
        anonymous = len(_sessions) - signed_in
    gauge = GaugeMetricFamily(
        "autoindex_active_sessions",
        "Browser sessions connected to this app process, signed in or not (at their latest run).",
        labels=["state"],
    )
    gauge.add_metric(["signed_in"], signed_in)
    gauge.add_metric(["anonymous"], anonymous)
    yield gauge


def start_process() -> int | None:
    """The process's monitoring, idempotent: the session count as scrape-time state, the alert watchdog when this
    process runs no jobs, and ``/metrics`` when METRICS_PORT is set (its port, else None; a port that cannot be
    bound raises OSError, after the watchdog has started). ``python -m core serve`` calls it before Streamlit starts;
    Home.py through :func:`start` on every run (a no-op once started)."""
    from core.config import get_settings
    from core.infra import metrics
    from core.services import alerts, operations

    settings = get_settings()
    metrics.register_state("sessions", _session_families)
    if settings.redis_url or not settings.embedded_worker:
        alerts.start_watchdog()  # first: a metrics port that cannot be bound must not cost the alerts
    return operations.serve_metrics()


@st.cache_resource(show_spinner=False)
def _start_once() -> int | None:
    return start_process()


def track_session() -> None:
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    if ctx is None:
        return
    with _lock:
        _sessions[ctx.session_id] = bool(st.session_state.get(state.AUTH_USERNAME))


def start() -> None:
    """Once per process: metrics server and watchdog; every run: note this session. Never breaks a page."""
    try:
        _start_once()
        track_session()
    except Exception:  # noqa: BLE001 - monitoring must not cost the page (a taken port is logged once per run)
        log.warning("could not start the app's monitoring", exc_info=True)
