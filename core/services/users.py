"""Users: bcrypt passwords, the password policy, lockout, roles and registration mode."""
from __future__ import annotations

import datetime as dt
import functools
import re
from pathlib import Path

import bcrypt
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.db import unit_of_work
from core.errors import AuthenticationError, NotFoundError, PermissionDenied, ValidationFailed
from core.models import Invitation, User
from core.models.base import utcnow
from core.schemas.user import UserOut
from core.services import app_settings, audit

MIN_PASSWORD_LENGTH = 10
MAX_FAILED_ATTEMPTS = 5
LOCKOUT = dt.timedelta(minutes=15)
REGISTRATION_MODES = ("closed", "invite", "open")
USERNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{3,64}$")
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[A-Za-z]{2,}$")


@functools.lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    path = Path(__file__).resolve().parent.parent / "resources" / "common_passwords.txt"
    return frozenset(line.strip().lower() for line in path.read_text().splitlines() if line.strip())


def hash_password(password: str) -> str:
    """bcrypt hash (cost 12) of a UTF-8 password; bcrypt reads at most 72 bytes."""
    return bcrypt.hashpw(password.encode("utf-8")[:72], bcrypt.gensalt(rounds=12)).decode("ascii")


def verify_password(password: str, password_hash: str) -> bool:
    try:
        return bcrypt.checkpw(password.encode("utf-8")[:72], password_hash.encode("ascii"))
    except ValueError:
        return False


def password_problems(password: str, username: str | None = None) -> list[str]:
    """Why ``password`` is not acceptable (empty list when it is)."""
    problems = []
    if len(password) < MIN_PASSWORD_LENGTH:
        problems.append(f"must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(password.encode("utf-8")) > 72:
        problems.append("must be at most 72 bytes")
    if username and password.strip().lower() == username.strip().lower():
        problems.append("must not be the username")
    if password.lower() in _common_passwords():
        problems.append("is too common")
    return problems


def validate_new_user(username: str, name: str, password: str, email: str | None, role: str) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not USERNAME_RE.match(username or ""):
        errors["username"] = "3-64 characters: letters, digits, dot, dash or underscore"
    if not (name or "").strip() or len(name) > 200:
        errors["name"] = "is required (at most 200 characters)"
    if email and not EMAIL_RE.match(email):
        errors["email"] = "is not a valid email address"
    if role not in ("admin", "analyst"):
        errors["role"] = "must be admin or analyst"
    problems = password_problems(password or "", username)
    if problems:
        errors["password"] = "; ".join(problems)
    return errors


def _out(user: User) -> UserOut:
    return UserOut.model_validate(user, from_attributes=True)


def count_users() -> int:
    with unit_of_work() as session:
        return int(session.scalar(select(func.count(User.id))) or 0)


def create_user(username: str, name: str, password: str, *, role: str = "analyst", email: str | None = None,
                actor: str | None = None) -> UserOut:
    """Create a user after validating every field; ValidationFailed lists the problems per field."""
    errors = validate_new_user(username, name, password, email, role)
    with unit_of_work() as session:
        if "username" not in errors and session.scalar(select(User.id).where(func.lower(User.username) == username.lower())):
            errors["username"] = "is already taken"
        if email and "email" not in errors and session.scalar(select(User.id).where(func.lower(User.email) == email.lower())):
            errors["email"] = "is already registered"
        if errors:
            raise ValidationFailed(errors)
        user = User(username=username, name=name.strip(), email=email.lower() if email else None,
                    password_hash=hash_password(password), role=role)
        session.add(user)
        session.flush()
        audit.record(session, actor or username, "user.create", username, {"role": role})
        session.commit()
        return _out(user)


def create_first_admin(username: str, name: str, password: str, email: str | None = None) -> UserOut:
    """Create the administrator, only while no user exists at all."""
    if count_users() > 0:
        raise PermissionDenied("an administrator already exists")
    return create_user(username, name, password, role="admin", email=email, actor=username)


def authenticate(username: str, password: str, *, now: dt.datetime | None = None) -> UserOut:
    """Check a password; count failures and lock the account for 15 minutes after 5 in a row."""
    now = now or utcnow()
    with unit_of_work() as session:
        user = session.scalar(select(User).where(func.lower(User.username) == (username or "").lower()))
        if user is None or not user.is_active:
            audit.record(session, username, "auth.login", username, outcome="failed", message="unknown or inactive user")
            session.commit()
            raise AuthenticationError("wrong username or password")
        if user.locked_until and user.locked_until > now:
            audit.record(session, user.username, "auth.login", user.username, outcome="failed", message="account locked")
            session.commit()
            minutes = max(1, int((user.locked_until - now).total_seconds() // 60) + 1)
            raise AuthenticationError(f"account locked after {MAX_FAILED_ATTEMPTS} failed attempts; "
                                      f"try again in {minutes} minute(s)", locked_until=user.locked_until)
        if not verify_password(password or "", user.password_hash):
            user.failed_attempts += 1
            message = "wrong username or password"
            if user.failed_attempts >= MAX_FAILED_ATTEMPTS:
                user.locked_until = now + LOCKOUT
                user.failed_attempts = 0
                message = f"account locked for 15 minutes after {MAX_FAILED_ATTEMPTS} failed attempts"
                audit.record(session, user.username, "auth.lockout", user.username, outcome="failed")
            audit.record(session, user.username, "auth.login", user.username, outcome="failed", message="wrong password")
            session.commit()
            raise AuthenticationError(message, locked_until=user.locked_until)
        user.failed_attempts = 0
        user.locked_until = None
        user.last_login_at = now
        audit.record(session, user.username, "auth.login", user.username)
        session.commit()
        return _out(user)


def get_user(username: str) -> UserOut:
    with unit_of_work() as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            raise NotFoundError(f"no user {username!r}")
        return _out(user)


def list_users() -> list[UserOut]:
    with unit_of_work() as session:
        return [_out(u) for u in session.scalars(select(User).order_by(User.username))]


def _admin_count(session: Session) -> int:
    return int(session.scalar(select(func.count(User.id)).where(User.role == "admin", User.is_active.is_(True))) or 0)


def update_user(username: str, *, actor: str, role: str | None = None, is_active: bool | None = None,
                name: str | None = None, email: str | None = None, unlock: bool = False) -> UserOut:
    """Change a user's role, active flag, name or email; the last active admin cannot be demoted."""
    with unit_of_work() as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            raise NotFoundError(f"no user {username!r}")
        changes: dict[str, object] = {}
        if role is not None and role != user.role:
            if role not in ("admin", "analyst"):
                raise ValidationFailed({"role": "must be admin or analyst"})
            if user.role == "admin" and _admin_count(session) <= 1:
                raise ValidationFailed({"role": "the last administrator cannot be demoted"})
            changes["role"] = [user.role, role]
            user.role = role
        if is_active is not None and is_active != user.is_active:
            if not is_active and user.role == "admin" and _admin_count(session) <= 1:
                raise ValidationFailed({"is_active": "the last administrator cannot be deactivated"})
            changes["is_active"] = [user.is_active, is_active]
            user.is_active = is_active
        if name is not None and name.strip() != user.name:
            if not name.strip():
                raise ValidationFailed({"name": "is required"})
            changes["name"] = [user.name, name.strip()]
            user.name = name.strip()
        if email is not None and email != (user.email or ""):
            if email and not EMAIL_RE.match(email):
                raise ValidationFailed({"email": "is not a valid email address"})
            changes["email"] = [user.email, email or None]
            user.email = email.lower() or None
        if unlock:
            user.locked_until = None
            user.failed_attempts = 0
            changes["unlocked"] = True
        if changes:
            audit.record(session, actor, "user.update", username, {k: v for k, v in changes.items()})
        session.commit()
        return _out(user)


def set_password(username: str, new_password: str, *, actor: str, current_password: str | None = None) -> None:
    """Change a password (users give their current one; admins resetting another user need not)."""
    with unit_of_work() as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            raise NotFoundError(f"no user {username!r}")
        if current_password is not None and not verify_password(current_password, user.password_hash):
            raise ValidationFailed({"current_password": "is wrong"})
        problems = password_problems(new_password, username)
        if problems:
            raise ValidationFailed({"password": "; ".join(problems)})
        user.password_hash = hash_password(new_password)
        audit.record(session, actor, "user.password", username)
        session.commit()


REVOCATIONS_KEY = "auth_revocations"


def revoke_cookies(username: str, *, at: dt.datetime | None = None) -> None:
    """Invalidate every re-authentication cookie of ``username`` issued up to ``at`` (a logout does this).

    The browser deletes its cookie too, but a copy (or a reload that races the deletion) must not log back in.
    """
    at = at or utcnow()
    with unit_of_work() as session:
        revoked = app_settings.get(session, REVOCATIONS_KEY)
        revoked[username] = at.timestamp()
        app_settings.put(session, REVOCATIONS_KEY, revoked, by=username)
        session.commit()


def cookies_revoked_at(username: str) -> float | None:
    """POSIX time up to which cookies of ``username`` are revoked, or None."""
    with unit_of_work() as session:
        value = app_settings.get(session, REVOCATIONS_KEY).get(username)
    return float(value) if value is not None else None


def registration_mode() -> str:
    with unit_of_work() as session:
        return str(app_settings.get(session, "registration", {"mode": "closed"}).get("mode", "closed"))


def set_registration_mode(mode: str, *, actor: str) -> None:
    if mode not in REGISTRATION_MODES:
        raise ValidationFailed({"mode": f"must be one of {', '.join(REGISTRATION_MODES)}"})
    with unit_of_work() as session:
        app_settings.put(session, "registration", {"mode": mode}, by=actor)
        audit.record(session, actor, "settings.registration", mode)
        session.commit()


def invite(email: str, *, actor: str) -> None:
    if not EMAIL_RE.match(email or ""):
        raise ValidationFailed({"email": "is not a valid email address"})
    with unit_of_work() as session:
        if session.scalar(select(Invitation.id).where(Invitation.email == email.lower())) is None:
            session.add(Invitation(email=email.lower(), invited_by=actor))
            audit.record(session, actor, "user.invite", email.lower())
            session.commit()


def list_invitations() -> list[dict[str, object]]:
    with unit_of_work() as session:
        return [{"email": i.email, "invited_by": i.invited_by, "created_at": i.created_at, "used_at": i.used_at}
                for i in session.scalars(select(Invitation).order_by(Invitation.created_at.desc()))]


def register(username: str, name: str, password: str, email: str) -> UserOut:
    """Self-registration as analyst, allowed by the registration mode (open, or invite with an invited email)."""
    mode = registration_mode()
    if mode == "closed":
        raise PermissionDenied("registration is closed; ask an administrator for an account")
    with unit_of_work() as session:
        invitation = session.scalar(select(Invitation).where(Invitation.email == (email or "").lower()))
        if mode == "invite" and (invitation is None or invitation.used_at is not None):
            raise PermissionDenied("this email has not been invited")
    user = create_user(username, name, password, role="analyst", email=email, actor=username)
    if mode == "invite":
        with unit_of_work() as session:
            inv = session.scalar(select(Invitation).where(Invitation.email == email.lower()))
            if inv is not None:
                inv.used_at = utcnow()
                session.commit()
    return user
