"""Who is acting: the one place that turns a caller's identity into a role checked on fresh state.

Every service that changes something, or shows something owned, takes the acting user and calls
:func:`resolve` inside its own transaction. ``resolve`` reloads the user from the database in that
transaction and checks, each time:

* the account still exists and is active;
* the session is still the one the account issued: an :class:`Actor` (or a ``UserOut``) carries the
  ``credential_version`` it was issued under, and a password change or reset, a role change, deactivation
  or logout bumps the stored version, which ends every earlier session (:class:`SessionEnded`);
* the **stored** role is one of those allowed — never the role an object from an earlier page render says;
* with ``ADMIN_2FA=required``, an administrator without two-factor authentication is refused admin-only actions
  and acts with an analyst's reach (their own rows) in the actions open to every role.

So a widget callback holding objects from a previous run can do no harm: what it passes is only a claim
to be checked. A plain username string is reloaded the same way but carries no version (tests and
trusted in-process callers). The system itself — the command line, jobs, the scheduler, start-up — is a
:class:`SystemActor` (or ``None``), which sees and may do everything; its name goes into the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.config import get_settings
from core.errors import PermissionDenied
from core.models import User

ALL_ROLES: tuple[str, ...] = ("admin", "analyst")
ADMIN_ONLY: tuple[str, ...] = ("admin",)
#: Names the system writes as "who" (owner, queued_by, audit actor); no account may use them (any case).
RESERVED_USERNAMES = frozenset({"cli", "system", "scheduler"})


class SessionEnded(PermissionDenied):
    """The acting session is no longer valid: the account was deactivated or removed, or its credentials,
    role or sessions changed since this session was issued. The user must log in again."""


@dataclass(frozen=True)
class Actor:
    """A logged-in user as a session knows them: a claim that :func:`resolve` checks on fresh state."""

    username: str
    credential_version: int


@dataclass(frozen=True)
class SystemActor:
    """The system itself (``cli``, ``system``, ``scheduler``): trusted, sees everything."""

    name: str = "system"


SYSTEM = SystemActor("system")
CLI = SystemActor("cli")
SCHEDULER = SystemActor("scheduler")


@dataclass(frozen=True)
class Principal:
    """An actor resolved inside a transaction: who they are now and whether they are an admin."""

    username: str
    is_admin: bool
    is_system: bool = False
    user_id: int | None = None


def username_of(actor: Any) -> str | None:
    """The name recorded for ``actor`` (audit, ``queued_by``, owner): a username or the system's name."""
    if actor is None:
        return None
    if isinstance(actor, str):
        return actor
    if isinstance(actor, SystemActor):
        return actor.name
    if isinstance(actor, Principal):
        return actor.username
    return getattr(actor, "username", None)


def resolve(
    session: Session, actor: Any, roles: tuple[str, ...] = ALL_ROLES, *, action: str = "this action", lock: bool = False
) -> Principal:
    """Reload ``actor`` in ``session`` and check it may act with one of ``roles``; return the Principal.

    ``actor`` is an :class:`Actor`, anything with ``username`` (and ``credential_version``), a username, a
    :class:`SystemActor` or ``None`` (the system); a Principal from another transaction is reloaded by name.
    Raises :class:`SessionEnded` for a removed, inactive or outdated session and
    :class:`~core.errors.PermissionDenied` when the stored role is not allowed.

    ``lock`` (services that write) holds the actor's row (PostgreSQL ``FOR SHARE``) until the transaction ends,
    so a concurrent demotion, deactivation or reset waits for the action or the action sees it; SQLite
    writers serialise through :func:`core.db.write_lock`.
    """
    if actor is None or isinstance(actor, SystemActor) or (isinstance(actor, Principal) and actor.is_system):
        return Principal(username_of(actor) or SYSTEM.name, True, is_system=True)
    username = username_of(actor)
    if not username:
        raise SessionEnded("you are not logged in")
    if username.lower() in RESERVED_USERNAMES:
        raise SessionEnded(f"{username!r} is reserved for the system and is not an account")
    version = None if isinstance(actor, (str, Principal)) else getattr(actor, "credential_version", None)
    query = select(User).where(User.username == username)
    if lock and session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(read=True)
    user = session.scalar(query)
    if user is None:
        raise SessionEnded(f"there is no account {username!r}")
    if not user.is_active:
        raise SessionEnded("your account is no longer active; ask an administrator")
    if version is not None and int(version) != user.credential_version:
        raise SessionEnded(
            "your session has ended because your account changed (password, role or status); log in again"
        )
    if user.role not in roles:
        raise PermissionDenied(f"{action} is for {' or '.join(roles)} users; you are signed in as {user.role}")
    is_admin = user.role == "admin"
    if is_admin and user.totp_enabled_at is None and get_settings().admin_2fa == "required":
        if "analyst" not in roles:
            raise PermissionDenied(
                f"{action} needs two-factor authentication (ADMIN_2FA=required); enrol on the Account page first"
            )
        # actions open to every role: only an analyst's reach (their own rows), never an administrator's
        is_admin = False
    return Principal(user.username, is_admin, user_id=user.id)


def check(actor: Any, roles: tuple[str, ...] = ALL_ROLES, *, action: str = "this action") -> Principal:
    """:func:`resolve` in a transaction of its own, for actions that write nothing to the database (clearing
    a cache) or that check before slow work and check again when they write."""
    from core.db import unit_of_work

    with unit_of_work() as session:
        return resolve(session, actor, roles, action=action)


def owns(principal: Principal, owner: str | None) -> bool:
    """May ``principal`` see or change a row owned by ``owner``? (Admins and the system: always.)"""
    return principal.is_admin or (owner is not None and owner == principal.username)


def visible_to(query: Any, owner_column: Any, principal: Principal, owner: str | None = None) -> Any:
    """Narrow ``query`` to what ``principal`` may see: an analyst only their own rows (``owner_column`` holds
    the username); an admin every row, or those of ``owner`` when given."""
    if not principal.is_admin:
        return query.where(owner_column == principal.username)
    if owner:
        return query.where(owner_column == owner)
    return query
