"""Retention: the one clean-up of old task runs, reports (rows and files), report files and worker heartbeats.

Run nightly by the ``retention`` periodic job (:data:`core.services.schedule.RETENTION_CRON`) and on demand
(``python -m core jobs enqueue retention``). Anything older than ``RETENTION_DAYS`` goes, except work that is not
over: runs still queued, running or retrying, and reports still queued or running, are kept. Report files live in
the database or under ``REPORTS_DIR``; files there that no report row names any more (left by a crash between
writing the file and the row) are removed by age too. Every file is removed through :func:`remove_file`.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import delete, or_, select

from core.config import get_settings
from core.db import unit_of_work
from core.models import Report, TaskRun, WorkerHeartbeat, utcnow
from core.schemas.task import FINAL_STATES
from core.services import audit
from core.services.runs import SCHEDULER_USER, as_utc

if TYPE_CHECKING:
    from sqlalchemy import CursorResult

log = logging.getLogger(__name__)

#: Report statuses that are over (a queued or running report is never removed).
FINISHED_REPORT_STATUSES = ("done", "failed")
#: Worker heartbeats older than this are removed (a dead worker stays listed for a day).
HEARTBEAT_KEEP = dt.timedelta(days=1)


def remove_file(path: Path) -> bool:
    """Delete ``path``; True when a file was removed (a missing file is not an error, other failures are logged)."""
    try:
        path.unlink()
        return True
    except FileNotFoundError:
        return False
    except OSError:
        log.warning("could not delete %s", path, exc_info=True)
        return False


def cleanup_expired(now: dt.datetime | None = None, retention_days: int | None = None) -> dict[str, int]:
    """Delete reports (rows and files) created more than ``retention_days`` (default RETENTION_DAYS) ago.

    Reports still queued or running are kept. Returns ``{"reports": n, "files": n, "retention_days": days}``.
    """
    now = as_utc(now or utcnow())
    days = retention_days or get_settings().retention_days
    cutoff = now - dt.timedelta(days=days)
    with unit_of_work() as session:
        rows = session.execute(
            select(Report.id, Report.path).where(
                Report.created_at < cutoff, Report.status.in_(FINISHED_REPORT_STATUSES)
            )
        ).all()
        ids = [r for r, _ in rows]
        if ids:
            session.execute(delete(Report).where(Report.id.in_(ids)))
        session.commit()
    files = sum(1 for _, p in rows if p and remove_file(Path(p)))
    return {"reports": len(rows), "files": files, "retention_days": days}


def _old_report_files(directory: Path | None, cutoff: dt.datetime) -> int:
    """Remove the files under ``REPORTS_DIR`` last written before ``cutoff``; return how many were removed."""
    if not directory or not directory.is_dir():
        return 0
    removed = 0
    for path in directory.rglob("*"):
        if path.is_file() and dt.datetime.fromtimestamp(path.stat().st_mtime, dt.timezone.utc) < cutoff:
            removed += int(remove_file(path))
    return removed


def clean_up(*, now: dt.datetime | None = None, retention_days: int | None = None) -> dict[str, Any]:
    """Delete finished runs, reports (rows and files), report files and worker heartbeats older than the
    retention period; audited as ``job.retention``.

    Returns counts by what was removed: ``runs``, ``reports``, ``files``, ``heartbeats``, and ``retention_days``.
    """
    settings = get_settings()
    now = now or utcnow()
    days = retention_days or settings.retention_days
    cutoff = now - dt.timedelta(days=days)
    removed = cleanup_expired(now=now, retention_days=days)
    with unit_of_work() as session:
        n_runs = cast(
            "CursorResult[Any]",
            session.execute(
                delete(TaskRun).where(
                    TaskRun.state.in_(FINAL_STATES),
                    or_(TaskRun.finished_at < cutoff, (TaskRun.finished_at.is_(None)) & (TaskRun.queued_at < cutoff)),
                )
            ),
        ).rowcount
        n_workers = cast(
            "CursorResult[Any]",
            session.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.last_seen < now - HEARTBEAT_KEEP)),
        ).rowcount
        session.commit()
    files = removed["files"] + _old_report_files(settings.reports_dir, cutoff)
    summary = {
        "runs": int(n_runs or 0),
        "reports": int(removed["reports"] or 0),
        "files": files,
        "heartbeats": int(n_workers or 0),
        "retention_days": days,
    }
    audit.record_now(SCHEDULER_USER, "job.retention", None, summary)
    return summary
