"""The periodic jobs and when they next run: what the Tasks page and the command line show.

Two jobs run on a cron (fields in UTC): ``scheduled_refresh`` (``REFRESH_CRON``: refresh prices, then the refresh
service queues the recompute of the active config) and ``retention`` (:data:`RETENTION_CRON`: the clean-up of
:mod:`core.services.retention`). The Huey periodic tasks that run them (:mod:`jobs.schedule`) are registered with
:func:`cron_validator` of the same cron strings, so the times listed here are the times they run: one rule,
Huey's own ``crontab`` (a pure function of the library; core never imports ``jobs``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from huey import crontab

from core.config import get_settings
from core.models import utcnow
from core.schemas.task import ScheduleEntry
from core.services.runs import as_utc

#: Cron (UTC) of the retention clean-up.
RETENTION_CRON = "15 3 * * *"


def periodic_jobs() -> list[tuple[str, str, str]]:
    """``(kind, cron, description)`` of every periodic job (cron fields in UTC)."""
    settings = get_settings()
    return [
        ("scheduled_refresh", settings.refresh_cron, "refresh prices, then recompute the active config"),
        ("retention", RETENTION_CRON, f"delete task runs and report files older than {settings.retention_days} days"),
    ]


def cron_of(kind: str) -> str:
    """The cron string of the periodic job ``kind``."""
    return next(cron for k, cron, _ in periodic_jobs() if k == kind)


def cron_validator(cron: str) -> Callable[[dt.datetime], bool]:
    """Huey's crontab test for a five-field cron string (minute hour day month weekday)."""
    minute, hour, day, month, weekday = cron.split()
    check: Callable[[dt.datetime], bool] = crontab(
        minute=minute, hour=hour, day=day, month=month, day_of_week=weekday, strict=True
    )
    return check


def next_run(cron: str, now: dt.datetime | None = None, *, horizon_days: int = 35) -> dt.datetime | None:
    """First minute strictly after ``now`` (UTC) that ``cron`` matches; None within the horizon."""
    check = cron_validator(cron)
    now = as_utc(now or utcnow())
    t = now.replace(second=0, microsecond=0, tzinfo=None) + dt.timedelta(minutes=1)
    end = t + dt.timedelta(days=horizon_days)
    while t < end:
        if check(t):
            return t.replace(tzinfo=dt.timezone.utc)
        t += dt.timedelta(minutes=1)
    return None


def schedule(now: dt.datetime | None = None) -> list[ScheduleEntry]:
    """The periodic jobs with their next run time (UTC)."""
    return [
        ScheduleEntry(kind=kind, cron=cron, description=text, next_run_at=next_run(cron, now))
        for kind, cron, text in periodic_jobs()
    ]
