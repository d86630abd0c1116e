"""The life of a consumer process: its identity, its heartbeat, and reconciliation at start-up.

Huey calls the ``on_startup`` hook once per worker thread (or per worker process with ``-k process``).
The first call in a process writes a heartbeat, reconciles runs left behind by dead workers
(:func:`core.services.tasks.reconcile_interrupted`) and starts one daemon thread that beats every
:data:`~core.services.tasks.HEARTBEAT_INTERVAL_S` seconds and reconciles again every few beats, so
a worker killed on another host is noticed by the survivors too. Later calls only count the workers.
"""
from __future__ import annotations

import logging
import threading
from typing import Any

from core.models import utcnow

log = logging.getLogger(__name__)

#: Beats between two reconciliations by a running worker.
RECONCILE_EVERY = 6

_lock = threading.Lock()
_state: dict[str, Any] = {"threads": 0, "beater": None, "stop": None, "kind": "consumer", "started_at": None}


def set_kind(kind: str) -> None:
    """``"consumer"`` (huey_consumer, the default) or ``"embedded"`` (a consumer inside the app)."""
    _state["kind"] = kind


def identity() -> dict[str, Any]:
    from core.services.tasks import worker_identity

    return worker_identity()


def current_worker_id() -> str:
    return str(identity()["worker_id"])


def beat() -> None:
    """Write this process's heartbeat now."""
    from core.services import tasks as svc

    ident = identity()
    svc.heartbeat(ident["worker_id"], hostname=ident["hostname"], pid=ident["pid"],
                  workers=max(1, _state["threads"]), kind=_state["kind"], started_at=_state["started_at"])


def _beat_forever(stop: threading.Event, huey: Any) -> None:
    from core.services import tasks as svc

    n = 0
    while not stop.wait(svc.HEARTBEAT_INTERVAL_S):
        n += 1
        try:
            beat()
            if n % RECONCILE_EVERY == 0:
                svc.reconcile_interrupted(current_worker=current_worker_id(), huey=huey)
        except Exception:  # noqa: BLE001 - a database hiccup must not kill the heartbeat
            log.warning("heartbeat failed", exc_info=True)


def worker_started(huey: Any) -> None:
    """Huey ``on_startup`` hook (every worker thread calls it)."""
    from core.services import tasks as svc

    with _lock:
        _state["threads"] += 1
        first = _state["beater"] is None
        if first:
            _state["started_at"] = utcnow()
            stop = threading.Event()
            _state["stop"] = stop
            _state["beater"] = threading.Thread(target=_beat_forever, args=(stop, huey), name="autoindex-heartbeat",
                                                daemon=True)
    try:
        beat()
        if first:
            marked = svc.reconcile_interrupted(current_worker=current_worker_id(), huey=huey)
            if marked:
                log.warning("marked %d interrupted run(s) as failed: %s", len(marked), marked)
    except Exception:  # noqa: BLE001
        log.exception("worker start-up bookkeeping failed")
    if first:
        _state["beater"].start()


def worker_stopped() -> None:
    """Huey ``on_shutdown`` hook: the last worker thread stops the heartbeat."""
    with _lock:
        _state["threads"] = max(0, _state["threads"] - 1)
        if _state["threads"] or _state["stop"] is None:
            return
        _state["stop"].set()
        _state["beater"] = None
        _state["stop"] = None
