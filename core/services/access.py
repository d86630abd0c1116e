"""Who is asking: the one place that reads a viewer's name and admin flag.

Services accept a viewer as a ``UserOut``, anything with ``username``/``role``, a plain username, or ``None``
for the system itself (CLI, jobs), which sees everything.
"""
from __future__ import annotations

import datetime as dt
from typing import Any


def username_of(user: Any) -> str | None:
    """The username of a viewer (or the string itself)."""
    if user is None or isinstance(user, str):
        return user
    return getattr(user, "username", None)


def is_admin(viewer: Any) -> bool:
    """True for admins and for the system itself (``None``)."""
    if viewer is None:
        return True
    flag = getattr(viewer, "is_admin", None)
    if flag is not None:
        return bool(flag)
    return getattr(viewer, "role", None) == "admin"


def visible_to(query: Any, owner_column: Any, viewer: Any, owner: str | None = None) -> Any:
    """Narrow ``query`` to what ``viewer`` may see: an analyst only their own rows (``owner_column`` holds the
    username); an admin every row, or those of ``owner`` when given."""
    if not is_admin(viewer):
        return query.where(owner_column == username_of(viewer))
    if owner:
        return query.where(owner_column == owner)
    return query


def as_date(value: object) -> dt.date | None:
    """A date from a date, datetime or ISO text as drivers return them (SQLite gives text)."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])
