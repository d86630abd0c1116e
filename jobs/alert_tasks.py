"""The periodic alert evaluation: every ``ALERT_CHECK_MINUTES`` a worker's scheduler evaluates the alert rules and
sends what is new (:func:`core.services.alerts.check_and_notify`; de-duplicated, so several schedulers are harmless).

It records no task run (an evaluation every few minutes would bury the Tasks history); what it sends is audited,
and a failure is logged. Huey's periodic tasks tick once a minute: the validator fires on the minutes that are a
multiple of the interval (rounded to whole minutes, at least 1).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from core.config import get_settings
from core.services import alerts
from jobs import huey

log = logging.getLogger(__name__)


def every_check_interval(moment: dt.datetime) -> bool:
    """Huey's validator: True on the minutes that are a multiple of ALERT_CHECK_MINUTES since midnight."""
    step = max(1, round(get_settings().alert_check_minutes))
    return (moment.hour * 60 + moment.minute) % step == 0


@huey.periodic_task(every_check_interval, name="alert_check")  # type: ignore[untyped-decorator]
def alert_check() -> dict[str, Any]:
    """Evaluate the alert rules and send new alerts."""
    try:
        return alerts.check_and_notify()
    except Exception:  # noqa: BLE001 - the next tick tries again
        log.warning("alert evaluation failed", exc_info=True)
        return {"error": "alert evaluation failed (see the worker log)"}
