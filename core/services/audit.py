"""Recording and reading audit events (who did what to what, when)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db import unit_of_work
from core.models import AuditEvent


def record(
    session: Session,
    actor: str | None,
    action: str,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
    *,
    outcome: str = "ok",
    message: str | None = None,
) -> None:
    """Add an audit event to the caller's transaction (it commits with the change it describes)."""
    session.add(AuditEvent(actor=actor, action=action, target=target, detail=detail, outcome=outcome, message=message))


def record_now(
    actor: str | None,
    action: str,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
    *,
    outcome: str = "ok",
    message: str | None = None,
) -> None:
    """Record an event in its own transaction (logins, failures: nothing else to commit with)."""
    with unit_of_work() as session:
        record(session, actor, action, target, detail, outcome=outcome, message=message)
        session.commit()


def list_events(
    *,
    actor: str | None = None,
    action: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: int = 500,
    offset: int = 0,
) -> pd.DataFrame:
    """Audit events newest first, filtered; a frame with at, actor, action, target, outcome, message, detail."""
    with unit_of_work() as session:
        q = select(AuditEvent).order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        if actor:
            q = q.where(AuditEvent.actor == actor)
        if action:
            q = q.where(AuditEvent.action == action)
        if since:
            q = q.where(AuditEvent.at >= since)
        if until:
            q = q.where(AuditEvent.at <= until)
        rows = session.scalars(q.limit(limit).offset(offset)).all()
        return pd.DataFrame(
            [
                {
                    "at": r.at,
                    "actor": r.actor,
                    "action": r.action,
                    "target": r.target,
                    "outcome": r.outcome,
                    "message": r.message,
                    "detail": r.detail,
                }
                for r in rows
            ],
            columns=["at", "actor", "action", "target", "outcome", "message", "detail"],
        )
