"""Reports: request, generate (in a background job), store, list, download, delete and expire.

The life of a report::

    request_report()  -> row "queued" + a "report" task run (or generated inline when asked)
    generate_report() -> "running" -> "done" (file stored) | "failed" (error kept, job fails too)
    download()        -> (filename, bytes, MIME type), owner or admin only
    delete()          -> row and file gone, owner or admin only
    expiry            -> rows and files older than RETENTION_DAYS gone (core.services.retention.cleanup_expired)

Files live where every app replica and worker can reach them: in the ``reports.content`` column by
default, or under ``REPORTS_DIR`` when it is set (``path`` column; one file per report).

Every number comes from :mod:`core.services.analytics` (the dashboard's functions), rendered by
:mod:`core.services.reporting`. The period is resolved to dates when the report is requested and the
dates are stored, so a report queued before a data refresh still covers what was asked for.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select, update

from core.config import get_settings
from core.db import unit_of_work, write_lock
from core.errors import NotFoundError, ValidationFailed, error_text
from core.infra import ratelimit
from core.models import AuditEvent, Report, StrategyConfigRow
from core.models.base import id_in_range, utcnow
from core.quant import periods
from core.schemas.report import ReportFilters, ReportOut, ReportRequest
from core.services import analytics, audit, compute, runs
from core.services.access import ALL_ROLES, owns, resolve, visible_to
from core.services.retention import remove_file

log = logging.getLogger(__name__)

Progress = Callable[[float, str], None]
#: Longest error text kept on a report row.
ERROR_MAX = 2000


# --------------------------------------------------------------------------- helpers


def _validate(
    report_type: str | None, period: str | None, fmt: str | None, config_id: Any, start: Any, end: Any
) -> ReportRequest:
    raw = {
        "report_type": report_type,
        "period": period,
        "format": fmt,
        "config_id": config_id,
        "start": start or None,
        "end": end or None,
    }
    try:
        return ReportRequest.model_validate(raw)
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for err in exc.errors():
            msg = err["msg"].removeprefix("Value error, ")
            loc = [str(p) for p in err["loc"] if not isinstance(p, int)]
            if loc:
                name = {"report_type": "type"}.get(loc[0], loc[0])
            elif ": " in msg:
                name, msg = msg.split(": ", 1)
            else:
                name = "report"
            if err["type"] == "literal_error":
                msg = f"{err.get('input')!r} is not one of {err['ctx']['expected']}"
            errors.setdefault(name, msg)
        raise ValidationFailed(errors) from None


def _resolve_config(config_id: int | None) -> int:
    with unit_of_work() as session:
        if config_id is None:
            cid = session.scalar(select(StrategyConfigRow.id).where(StrategyConfigRow.is_active.is_(True)))
            if cid is None:
                raise ValidationFailed({"config_id": "no active strategy config; choose a config version"})
            return int(cid)
        if (session.get(StrategyConfigRow, config_id) if id_in_range(config_id) else None) is None:
            raise ValidationFailed({"config_id": f"no strategy config with id {config_id}"})
        return int(config_id)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "index"


def report_filename(report_type: str, fmt: str, config_label: str, period: str, end: dt.date) -> str:
    from core.services.reporting import EXTENSIONS

    return f"autoindex-{report_type}-{_slug(config_label)}-{period}-{end.isoformat()}.{EXTENSIONS[fmt]}"


# --------------------------------------------------------------------------- building (pure-ish)
def build_report_bytes(
    report_type: str,
    period: str,
    fmt: str,
    config_id: int | None = None,
    start: dt.date | str | None = None,
    end: dt.date | str | None = None,
    *,
    generated_by: str = "system",
    now: dt.datetime | None = None,
    progress: Progress | None = None,
) -> tuple[str, bytes]:
    """Validate, compute and render one report; return ``(filename, bytes)``. Writes nothing.

    ``config_id`` None means the active version. For a non-custom period the dates are resolved from the
    stored data; for ``custom`` ``start``/``end`` are required. (A stored report passes its resolved dates
    with ``period`` kept for the label: see :func:`generate_report`.) Raises ValidationFailed naming the
    field (type, period, format, start, end, config_id).
    """
    from core.services import reporting
    from core.services.reporting.content import build_document

    progress = progress or (lambda _f, _m: None)
    request = _validate(
        report_type, period, fmt, config_id, start if period == "custom" else None, end if period == "custom" else None
    )
    cid = _resolve_config(request.config_id)
    progress(0.05, "loading stored results")
    inputs = analytics.load_view_inputs(cid)
    s: dt.date | None
    e: dt.date | None
    if period == "custom" or start is None or end is None:
        s, e = analytics.resolve_period(inputs, request.period, request.start, request.end)
    else:  # dates resolved when the report was requested
        s, e = periods.as_date(start), periods.as_date(end)
        assert s is not None and e is not None
    progress(0.2, "computing analytics")
    view = analytics.build_performance_view(inputs, s, e)
    generated_at = now or utcnow()
    document = build_document(
        request.report_type, request.period, view, generated_by=generated_by, generated_at=generated_at
    )
    progress(0.45, f"rendering {fmt.upper()}")
    data = reporting.render(document, request.format)
    progress(0.9, "storing the file")
    return report_filename(request.report_type, request.format, view.config_label, request.period, view.end_date), data


# --------------------------------------------------------------------------- requesting
def request_report(
    report_type: str | None,
    period: str | None,
    fmt: str | None,
    config_id: int | None = None,
    start: dt.date | str | None = None,
    end: dt.date | str | None = None,
    *,
    owner: Any = None,
    inline: bool = False,
    huey: Any = None,
) -> int:
    """Validate a report request, record it and queue its job (or generate it now with ``inline``).

    Returns the report id. Raises ValidationFailed naming the field (nothing written), and
    :class:`core.services.ports.QueueUnavailable` when the queue is down (the row is removed again).
    """
    with unit_of_work() as session:  # checked again below, in the transaction that writes the row
        principal = resolve(session, owner, ALL_ROLES, action="requesting reports")
        if not inline:  # its job counts as a queued job: refused before the row is written, not after
            ratelimit.check("job", principal)
        ratelimit.hit("report", principal)
    request = _validate(report_type, period, fmt, config_id, start, end)
    cid = _resolve_config(request.config_id)
    index = compute.stored_index(cid)
    if index.empty:
        raise ValidationFailed({"config_id": f"config {cid} has no computed index values yet; compute it first"})
    s, e = periods.period_bounds(request.period, index.index[-1], index.index[0], request.start, request.end)
    if len(periods.period_series(index, s, e)) < 2:
        raise ValidationFailed({"end": f"the period {s} .. {e} holds no trading day after its start"})
    with unit_of_work() as session:
        username = resolve(session, owner, ALL_ROLES, action="requesting reports", lock=True).username
        row = Report(
            report_type=request.report_type,
            period=request.period,
            start=s,
            end=e,
            format=request.format,
            status="queued",
            owner=username,
            config_id=cid,
        )
        session.add(row)
        session.flush()
        report_id = row.id
        event = AuditEvent(
            actor=username,
            action="report.request",
            target=f"report {report_id}",
            detail={
                "type": request.report_type,
                "period": request.period,
                "format": request.format,
                "config_id": cid,
                "start": s.isoformat(),
                "end": e.isoformat(),
                "inline": inline,
            },
        )
        session.add(event)  # kept to be marked when the queue refuses the job below
        session.flush()
        event_id = event.id
        session.commit()
    if inline:
        generate_report(report_id)
        return report_id
    runs.enqueue_for(
        "report", {"report_id": report_id}, user=owner, huey=huey, row=Report, row_id=report_id, audit_event_id=event_id
    )
    return report_id


# --------------------------------------------------------------------------- generating (the job)
def check_output_path(path: Path | str, *, field: str = "out") -> Path:
    """``path`` as a Path if a file can be written there, else ValidationFailed ``{field: reason}``.

    Refused: an existing directory, a missing parent directory, a parent that is not a directory. (Whether
    the directory accepts new files is only known when writing: :func:`write_file_atomically`.)
    """
    path = Path(path)
    if str(path) in ("", ".") or path.is_dir():
        raise ValidationFailed({field: f"{path} is a directory; give a file name, e.g. {path / 'report.pdf'}"})
    parent = path.parent
    if not parent.exists():
        raise ValidationFailed({field: f"directory {parent} does not exist"})
    if not parent.is_dir():
        raise ValidationFailed({field: f"{parent} is not a directory"})
    return path


def _file_mode(path: Path) -> int:
    """The existing file's permission bits, else 0666 less the process umask (read without changing it)."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        pass
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            umask = next(int(line.split()[1], 8) for line in status if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError):
        umask = 0o022
    return 0o666 & ~umask


def write_file_atomically(path: Path | str, data: bytes, *, field: str = "out") -> Path:
    """Write ``data`` to ``path`` all or nothing; return the path.

    The bytes go to a hidden temporary file in the same directory (``.<name>.<random>.part``), flushed to
    disk, then renamed over ``path`` (atomic on POSIX: a reader sees the old file or the new one, never half
    of one). On any failure the temporary file is removed and ValidationFailed ``{field: "cannot write
    <path>: <reason>"}`` is raised; nothing is left behind.
    """
    import os
    import tempfile

    path = check_output_path(path, field=field)
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
        os.fchmod(fd, _file_mode(path))  # mkstemp makes 0600; the file gets the mode a plain open() would give
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if isinstance(exc, IsADirectoryError):
            reason = "it is a directory"
        raise ValidationFailed({field: f"cannot write {path}: {reason}"}) from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    return path


def _store(report_id: int, filename: str, data: bytes) -> dict[str, Any]:
    settings = get_settings()
    values: dict[str, Any] = {
        "filename": filename,
        "size_bytes": len(data),
        "status": "done",
        "finished_at": utcnow(),
        "error": None,
    }
    if settings.reports_dir:
        directory = Path(settings.reports_dir)
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ValidationFailed({"REPORTS_DIR": f"cannot create {directory}: {exc.strerror or exc}"}) from None
        path = write_file_atomically(directory / f"{report_id:08d}-{filename}", data, field="REPORTS_DIR")
        values.update(path=str(path), content=None)
    else:
        values.update(content=data, path=None)
    return values


def generate_report(report_id: int, progress: Progress | None = None) -> dict[str, Any]:
    """Build and store the file of report ``report_id``; return a summary for the task run.

    On failure the report is marked failed with the error and the exception propagates (so the job
    fails or retries).
    """
    progress = progress or (lambda _f, _m: None)
    with unit_of_work() as session:
        row = session.get(Report, report_id) if id_in_range(report_id) else None
        if row is None:
            raise NotFoundError(f"no report with id {report_id}")
        spec = (row.report_type, row.period, row.format, row.config_id, row.start, row.end, row.owner)
        row.status, row.error = "running", None
        session.commit()
    report_type, period, fmt, config_id, start, end, owner = spec
    try:
        if config_id is None:
            raise ValidationFailed({"config_id": "the report's config version was deleted"})
        filename, data = build_report_bytes(
            report_type, period, fmt, config_id, start, end, generated_by=owner, progress=progress
        )
        values = _store(report_id, filename, data)
    except Exception as exc:
        message = error_text(exc, limit=ERROR_MAX)
        with unit_of_work() as session:
            session.execute(
                update(Report)
                .where(Report.id == report_id)
                .values(status="failed", error=message, finished_at=utcnow())
            )
            session.commit()
        log.warning("report %s failed: %s", report_id, message)
        raise
    with unit_of_work() as session:
        session.execute(update(Report).where(Report.id == report_id).values(**values))
        audit.record(
            session, owner, "report.generate", f"report {report_id}", {"filename": filename, "size_bytes": len(data)}
        )
        session.commit()
    progress(1.0, f"{filename} ready")
    return {"report_id": report_id, "filename": filename, "size_bytes": len(data)}


# --------------------------------------------------------------------------- reading
def list_reports(viewer: Any, filters: ReportFilters | dict[str, Any] | None = None) -> list[ReportOut]:
    """Reports newest first: an analyst's own only; an admin everyone's (``filters.owner`` narrows)."""
    f = filters if isinstance(filters, ReportFilters) else ReportFilters.model_validate(filters or {})
    q = select(
        Report.id,
        Report.report_type,
        Report.period,
        Report.start,
        Report.end,
        Report.format,
        Report.status,
        Report.owner,
        Report.config_id,
        Report.task_run_id,
        Report.created_at,
        Report.finished_at,
        Report.filename,
        Report.size_bytes,
        Report.error,
    )
    if f.report_type:
        q = q.where(Report.report_type == f.report_type)
    if f.format:
        q = q.where(Report.format == f.format)
    if f.status:
        q = q.where(Report.status == f.status)
    if f.since:
        q = q.where(Report.created_at >= f.since)
    q = q.order_by(Report.created_at.desc(), Report.id.desc()).limit(f.limit)
    with unit_of_work() as session:
        q = visible_to(q, Report.owner, resolve(session, viewer, ALL_ROLES, action="listing reports"), f.owner)
        rows = session.execute(q).mappings().all()
    return [ReportOut.model_validate(dict(r)) for r in rows]


def _visible(session: Any, report_id: int, viewer: Any, *, for_update: bool = False) -> tuple[Report, str]:
    """The report and the viewer's name, checked on fresh state; a report the viewer may not see does not
    exist for them (NotFoundError, the same answer as for a missing id)."""
    principal = resolve(session, viewer, ALL_ROLES, action="reading reports")
    if not id_in_range(report_id):
        raise NotFoundError(f"no report with id {report_id}")
    query = select(Report).where(Report.id == report_id)
    if for_update:
        query = query.with_for_update()
    row = session.scalar(query)
    if row is None or not owns(principal, row.owner):
        raise NotFoundError(f"no report with id {report_id}")
    return row, principal.username


def get_report(report_id: int, viewer: Any) -> ReportOut:
    with unit_of_work() as session:
        row, _ = _visible(session, report_id, viewer)
        return ReportOut.model_validate(row)


def download(report_id: int, viewer: Any) -> tuple[str, bytes, str]:
    """``(filename, bytes, MIME type)`` of a finished report; only its owner and admins may."""
    from core.services.reporting import MIME_TYPES

    with unit_of_work() as session:
        row, _ = _visible(session, report_id, viewer)
        if row.status != "done":
            raise NotFoundError(f"report {report_id} is {row.status}, not ready to download")
        filename, fmt, content, path = row.filename or f"report-{report_id}", row.format, row.content, row.path
    if content is None and path:
        try:
            content = Path(path).read_bytes()
        except OSError as exc:
            raise NotFoundError(f"the file of report {report_id} is no longer available ({exc.strerror})") from None
    if content is None:
        raise NotFoundError(f"the file of report {report_id} is no longer available")
    return filename, bytes(content), MIME_TYPES.get(fmt, "application/octet-stream")


def delete(report_id: int, viewer: Any) -> None:
    """Delete a report and its file; only its owner and admins may."""
    with unit_of_work() as session:
        write_lock(session)
        row, by = _visible(session, report_id, viewer, for_update=True)
        path = row.path
        session.delete(row)
        audit.record(session, by, "report.delete", f"report {report_id}", {"filename": row.filename})
        session.commit()
    if path:
        remove_file(Path(path))
