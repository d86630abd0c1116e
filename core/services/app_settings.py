"""Run-time settings stored in the database (registration mode, provider choice, data version)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.infra import cache
from core.models import AppSetting
from core.models.base import utcnow

DATA_VERSION = "data_version"


def get(session: Session, key: str, default: dict[str, Any] | None = None) -> dict[str, Any]:
    row = session.get(AppSetting, key)
    return dict(row.value) if row is not None else dict(default or {})


def put(session: Session, key: str, value: dict[str, Any], *, by: str | None = None) -> None:
    row = session.get(AppSetting, key)
    if row is None:
        session.add(AppSetting(key=key, value=value, updated_by=by))
    else:
        row.value = value
        row.updated_by = by
        row.updated_at = utcnow()
    session.flush()


def data_version(session: Session) -> int:
    """A counter bumped whenever prices or computed results change (cache key ingredient)."""
    return int(get(session, DATA_VERSION, {"version": 0}).get("version", 0))


def current_data_version() -> int:
    """:func:`data_version` in a transaction of its own (the service cache's key source)."""
    from core.db import unit_of_work

    with unit_of_work() as session:
        return data_version(session)


cache.set_data_version_source(current_data_version)


def bump_data_version(session: Session, *, at: dt.datetime | None = None) -> int:
    """Move the data version on. The row is read ``FOR UPDATE`` (PostgreSQL; SQLite writers are already
    serialised by the write that precedes every bump), so two changes committing at once give two versions and
    neither's cached pages can be served under the other's key."""
    session.get(AppSetting, DATA_VERSION, with_for_update=True, populate_existing=True)
    version = data_version(session) + 1
    put(session, DATA_VERSION, {"version": version, "at": (at or utcnow()).isoformat()})
    return version


def all_settings(session: Session) -> dict[str, dict[str, Any]]:
    return {row.key: row.value for row in session.scalars(select(AppSetting))}
