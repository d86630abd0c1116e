"""Users: bcrypt passwords, the password policy, lockout, roles and registration mode.

Every change is authorised here, on the acting user reloaded in the same transaction
(:func:`core.services.access.resolve`), and every counter or one-time token is changed atomically in SQL.

Logging in is one step, or two for an account with two-factor authentication: :func:`authenticate` checks the
password and, for such an account, raises :class:`TwoFactorRequired` carrying a :class:`LoginChallenge`, which
:func:`core.services.two_factor.complete_login` turns into a login with a TOTP or recovery code. Both steps count
toward the same lockout (5 failures lock the account for 15 minutes); the password step is also rate limited per
user and per client address (:mod:`core.infra.ratelimit`), while the code step needs a right password first and is
capped by the lockout alone.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import bcrypt
from sqlalchemy import ColumnElement, case, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.db import lock_table, unit_of_work, write_lock
from core.errors import AuthenticationError, NotFoundError, PermissionDenied, ValidationFailed
from core.infra import ratelimit
from core.infra.metrics import counted_logins
from core.models import Invitation, User
from core.models.base import utcnow
from core.schemas.user import UserOut
from core.services import app_settings, audit
from core.services.access import ADMIN_ONLY, ALL_ROLES, RESERVED_USERNAMES, SystemActor, resolve, username_of

if TYPE_CHECKING:
    # Session.execute() returns a CursorResult for INSERT/UPDATE/DELETE, but SQLAlchemy types it as Result
    from sqlalchemy import CursorResult

MIN_PASSWORD_LENGTH = 10
MAX_FAILED_ATTEMPTS = 5
LOCKOUT = dt.timedelta(minutes=15)
REGISTRATION_MODES = ("closed", "invite", "open")
USERNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{3,64}$")
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[A-Za-z]{2,}$")
#: How long the second step of a login may follow the password.
CHALLENGE_TTL = dt.timedelta(minutes=5)
#: Signs login challenges. Per process on purpose: a challenge lives in one Streamlit session, which lives in one
#: process (replicas need sticky sessions anyway), so it never has to be verified elsewhere.
_CHALLENGE_KEY = secrets.token_bytes(32)


@dataclass(frozen=True)
class LoginChallenge:
    """The password of ``username`` was right; the login waits for a second-factor code.

    Signed (HMAC-SHA256 with a per-process key) so that only :func:`authenticate` can issue one: a forged or
    altered challenge is refused by :func:`verify_challenge`. Valid for :data:`CHALLENGE_TTL`, and only while the
    account keeps the credential version it was issued under."""

    user_id: int
    username: str
    credential_version: int
    issued_at: dt.datetime
    signature: str

    @staticmethod
    def sign(user_id: int, username: str, version: int, issued_at: dt.datetime) -> str:
        message = f"{user_id}\n{username}\n{version}\n{issued_at.isoformat()}".encode()
        return hmac.new(_CHALLENGE_KEY, message, hashlib.sha256).hexdigest()


class TwoFactorRequired(AuthenticationError):
    """The password was right and the account has two-factor authentication: ``challenge`` carries the login on
    to :func:`core.services.two_factor.complete_login`."""

    def __init__(self, challenge: LoginChallenge) -> None:
        super().__init__("enter the 6-digit code from your authenticator app (or a recovery code)")
        self.challenge = challenge


def verify_challenge(challenge: Any, now: dt.datetime) -> LoginChallenge:
    """``challenge`` if it was issued here, is unaltered and not older than :data:`CHALLENGE_TTL`;
    AuthenticationError otherwise (the whole login starts again)."""
    if not isinstance(challenge, LoginChallenge):
        raise AuthenticationError("the login expired; enter your username and password again")
    expected = LoginChallenge.sign(
        challenge.user_id, challenge.username, challenge.credential_version, challenge.issued_at
    )
    if not hmac.compare_digest(expected, challenge.signature):
        raise AuthenticationError("the login expired; enter your username and password again")
    if not (challenge.issued_at <= now + dt.timedelta(seconds=5) and now - challenge.issued_at <= CHALLENGE_TTL):
        raise AuthenticationError(
            "the login expired (codes must follow the password within 5 minutes); "
            "enter your username and password again"
        )
    return challenge


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
    elif username.lower() in RESERVED_USERNAMES:
        errors["username"] = f"{username!r} is reserved for the system"
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


def _by_name(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username))


def _bump_credentials(session: Session, user_id: int) -> int:
    """End every session and cookie of the user (atomic in SQL); return the new credential version."""
    return int(
        session.execute(
            update(User)
            .where(User.id == user_id)
            .values(credential_version=User.credential_version + 1)
            .returning(User.credential_version)
        ).scalar_one()
    )


def _taken(session: Session, username: str, email: str | None) -> dict[str, str]:
    errors: dict[str, str] = {}
    if session.scalar(select(User.id).where(func.lower(User.username) == username.lower())):
        errors["username"] = "is already taken"
    if email and session.scalar(select(User.id).where(func.lower(User.email) == email.lower())):
        errors["email"] = "is already registered"
    return errors


def _insert_user(
    session: Session, username: str, name: str, password_hash: str, role: str, email: str | None, actor_name: str
) -> User:
    """Add the user to ``session`` (the caller commits); a name or email taken meanwhile is a ValidationFailed."""
    errors = _taken(session, username, email)
    if errors:
        raise ValidationFailed(errors)
    user = User(
        username=username,
        name=name.strip(),
        email=email.lower() if email else None,
        password_hash=password_hash,
        role=role,
    )
    session.add(user)
    try:
        session.flush()
    except IntegrityError:  # a concurrent registration won the unique constraint
        session.rollback()
        raise ValidationFailed({"username": "is already taken"}) from None
    audit.record(session, actor_name, "user.create", username, {"role": role})
    return user


def _commit_new_user(session: Session) -> None:
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise ValidationFailed({"username": "is already taken"}) from None


def count_users() -> int:
    with unit_of_work() as session:
        return int(session.scalar(select(func.count(User.id))) or 0)


def create_user(
    username: str, name: str, password: str, *, role: str = "analyst", email: str | None = None, actor: Any = None
) -> UserOut:
    """Create a user after validating every field (admins only; ``actor`` None is the system, e.g. the CLI).

    ValidationFailed lists the problems per field; nothing is written then."""
    errors = validate_new_user(username, name, password, email, role)
    if errors:  # the actor is checked first; a well-formed name is also checked for being taken
        with unit_of_work() as session:
            resolve(session, actor, ADMIN_ONLY, action="creating users")
            if "username" not in errors:
                errors = {**_taken(session, username, email), **errors}
        raise ValidationFailed(errors)
    password_hash = hash_password(password)  # slow (bcrypt): before the transaction opens
    with unit_of_work() as session:
        write_lock(session)
        principal = resolve(session, actor, ADMIN_ONLY, action="creating users", lock=True)
        user = _insert_user(session, username, name, password_hash, role, email, principal.username)
        _commit_new_user(session)
        return _out(user)


def create_first_admin(
    username: str,
    name: str,
    password: str,
    email: str | None = None,
    *,
    consume: Callable[[Session], None] | None = None,
) -> UserOut:
    """Create the administrator, only while no user exists at all: exactly one, whatever the concurrency.

    ``consume`` runs first in the same transaction (the setup token is spent there, atomically), after the
    users table is locked against every other writer."""
    errors = validate_new_user(username, name, password, email, "admin")
    if errors:
        raise ValidationFailed(errors)
    password_hash = hash_password(password)
    with unit_of_work() as session:
        lock_table(session, "users")  # "no user exists yet" is decided on what is committed
        if consume is not None:
            consume(session)
        if session.scalar(select(func.count(User.id))):
            raise PermissionDenied("an administrator already exists")
        user = _insert_user(session, username, name, password_hash, "admin", email, username)
        _commit_new_user(session)
        return _out(user)


def locked_message(locked_until: dt.datetime, now: dt.datetime) -> str:
    minutes = max(1, int((locked_until - now).total_seconds() // 60) + 1)
    return f"account locked after {MAX_FAILED_ATTEMPTS} failed attempts; try again in {minutes} minute(s)"


@functools.lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """A hash checked when there is no real one (unknown, inactive or locked account), so that every refused
    attempt costs the same bcrypt time and response times do not tell which user names exist."""
    return hash_password("no account has this password " + "x" * 20)


def _checked(username: str, password: str, *, now: dt.datetime, action: str) -> tuple[int, str, int, bool]:
    """Check ``password`` against the account, counting failures toward the lockout, under any concurrency.

    Each attempt first *reserves* a try in SQL (``failed_attempts = failed_attempts + 1 ... RETURNING``,
    atomic on both databases) and only then runs bcrypt, outside any transaction; a success resets the
    counter, but only if the account's credentials are still those the password was checked against (a
    reset, role change or deactivation meanwhile refuses it). However many attempts arrive at once, at most
    ``MAX_FAILED_ATTEMPTS`` passwords are checked before the lock; the rest are refused as locked without a
    check. Returns ``(user id, username, credential version, two-factor enabled)``; AuthenticationError
    otherwise, audited under ``action``.

    For an account with two-factor authentication the password is only half the credential: a right password
    gives back its own reserved try instead of clearing the counter, so wrong codes keep counting across
    password attempts and only a right code (:mod:`core.services.two_factor`) clears it.
    """
    name = (username or "").strip()
    unlocked = or_(User.locked_until.is_(None), User.locked_until <= now)
    with unit_of_work() as session:
        reserved = session.execute(
            update(User)
            .where(func.lower(User.username) == name.lower(), User.is_active.is_(True), unlocked)
            .values(failed_attempts=User.failed_attempts + 1)
            .returning(
                User.id,
                User.username,
                User.failed_attempts,
                User.password_hash,
                User.credential_version,
                User.totp_enabled_at,
            )
        ).first()
        if reserved is None:
            user = session.scalar(select(User).where(func.lower(User.username) == name.lower()))
            if user is None or not user.is_active:
                audit.record(session, name, action, name, outcome="failed", message="unknown or inactive user")
                session.commit()
                verify_password(password or "", _dummy_hash())
                raise AuthenticationError("wrong username or password")
            audit.record(session, user.username, action, user.username, outcome="failed", message="account locked")
            session.commit()
            verify_password(password or "", _dummy_hash())
            assert user.locked_until is not None
            raise AuthenticationError(locked_message(user.locked_until, now), locked_until=user.locked_until)
        user_id, canonical, attempt, password_hash, version, totp_enabled_at = reserved
        two_factor = totp_enabled_at is not None
        if attempt > MAX_FAILED_ATTEMPTS:  # others used up the tries meanwhile: lock, check nothing
            lock_end = lock_account(session, user_id, canonical, now)
            audit.record(session, canonical, action, canonical, outcome="failed", message="account locked")
            session.commit()
            verify_password(password or "", _dummy_hash())
            raise AuthenticationError(locked_message(lock_end, now), locked_until=lock_end)
        session.commit()
    ok = verify_password(password or "", password_hash)  # slow (bcrypt): outside any transaction
    with unit_of_work() as session:
        if ok:
            cleared = case((User.failed_attempts > 0, User.failed_attempts - 1), else_=0) if two_factor else 0
            kept = session.execute(
                update(User)
                .where(
                    User.id == user_id,
                    User.is_active.is_(True),
                    unlocked,
                    User.credential_version == version,
                    User.password_hash == password_hash,
                )
                .values(failed_attempts=cleared)
                .returning(User.id)
            ).scalar_one_or_none()
            if kept is None:  # reset, deactivated, demoted or locked while the password was checked
                session.rollback()
                raise AuthenticationError("wrong username or password")
            session.commit()
            return user_id, canonical, version, two_factor
        message = "wrong username or password"
        locked_until: dt.datetime | None = None
        if attempt >= MAX_FAILED_ATTEMPTS:
            locked_until = lock_account(session, user_id, canonical, now)
            message = f"account locked for 15 minutes after {MAX_FAILED_ATTEMPTS} failed attempts"
        audit.record(session, canonical, action, canonical, outcome="failed", message="wrong password")
        session.commit()
        raise AuthenticationError(message, locked_until=locked_until)


@counted_logins  # autoindex_logins_total{outcome} (Prometheus)
def authenticate(
    username: str, password: str, *, now: dt.datetime | None = None, client_address: str | None = None
) -> UserOut:
    """Log in: check the password with the lockout of :func:`_checked` (5 failed attempts lock the account for
    15 minutes); the returned user carries the credential version the new session is issued under.

    Rate limited first, per user name typed and per ``client_address`` (when the caller knows it):
    :class:`core.infra.ratelimit.RateLimited` says when to try again and counts nothing toward the lockout.
    An account with two-factor authentication raises :class:`TwoFactorRequired` after a right password; the
    login is completed by :func:`core.services.two_factor.complete_login`."""
    now = now or utcnow()
    ratelimit.hit("login_address", client_address)
    ratelimit.hit("login_user", (username or "").strip())
    user_id, canonical, version, two_factor = _checked(username, password, now=now, action="auth.login")
    if two_factor:
        raise TwoFactorRequired(
            LoginChallenge(user_id, canonical, version, now, LoginChallenge.sign(user_id, canonical, version, now))
        )
    return record_login(user_id, canonical, version, now)


def record_login(user_id: int, canonical: str, version: int, now: dt.datetime) -> UserOut:
    """The last step of every login: stamp ``last_login_at`` and audit ``auth.login``, only while the account
    keeps the credential version that was checked."""
    with unit_of_work() as session:
        user = session.execute(
            update(User)
            .where(User.id == user_id, User.credential_version == version)
            .values(last_login_at=now)
            .returning(User)
        ).scalar_one_or_none()
        if user is None:  # the credentials changed in the instant between the check and here
            raise AuthenticationError("wrong username or password")
        audit.record(session, canonical, "auth.login", canonical)
        session.commit()
        return _out(user)


def lock_account(session: Session, user_id: int, username: str, now: dt.datetime) -> dt.datetime:
    """Lock the account (once: a lock already in force is kept and returned)."""
    until = now + LOCKOUT
    locked = session.execute(
        update(User)
        .where(User.id == user_id, or_(User.locked_until.is_(None), User.locked_until <= now))
        .values(locked_until=until, failed_attempts=0)
        .returning(User.locked_until)
    ).scalar_one_or_none()
    if locked is not None:
        audit.record(session, username, "auth.lockout", username, outcome="failed")
        return until
    current = session.scalar(select(User.locked_until).where(User.id == user_id))
    return current or until


def get_user(username: str) -> UserOut:
    with unit_of_work() as session:
        user = _by_name(session, username)
        if user is None:
            raise NotFoundError(f"no user {username!r}")
        return _out(user)


def list_users(*, actor: Any = None) -> list[UserOut]:
    with unit_of_work() as session:
        resolve(session, actor, ADMIN_ONLY, action="listing users")
        return [_out(u) for u in session.scalars(select(User).order_by(User.username))]


def update_user(
    username: str,
    *,
    actor: Any,
    role: str | None = None,
    is_active: bool | None = None,
    name: str | None = None,
    email: str | None = None,
    unlock: bool = False,
) -> UserOut:
    """Change a user's role, active flag, name or email (admins only, checked on fresh state).

    The last active admin cannot be demoted or deactivated. A role change or deactivation ends every session
    and cookie of that user."""
    with unit_of_work() as session:
        admins = _lock_rows(session, username_of(actor), username, admins=True)
        principal = resolve(session, actor, ADMIN_ONLY, action="changing users")
        user = _by_name(session, username)
        if user is None:
            raise NotFoundError(f"no user {username!r}")
        changes: dict[str, object] = {}
        was_active_admin = user.id in admins
        if role is not None and role != user.role:
            if role not in ("admin", "analyst"):
                raise ValidationFailed({"role": "must be admin or analyst"})
            if was_active_admin and len(admins) <= 1:
                raise ValidationFailed({"role": "the last administrator cannot be demoted"})
            changes["role"] = [user.role, role]
            user.role = role
        if is_active is not None and is_active != user.is_active:
            if not is_active and was_active_admin and len(admins) <= 1:
                raise ValidationFailed({"is_active": "the last administrator cannot be deactivated"})
            changes["is_active"] = [user.is_active, is_active]
            user.is_active = is_active
        if name is not None and name.strip() != user.name:
            if not name.strip() or len(name) > 200:
                raise ValidationFailed({"name": "is required (at most 200 characters)"})
            changes["name"] = [user.name, name.strip()]
            user.name = name.strip()
        if email is not None and email.lower() != (user.email or ""):
            if email and not EMAIL_RE.match(email):
                raise ValidationFailed({"email": "is not a valid email address"})
            if email and session.scalar(
                select(User.id).where(func.lower(User.email) == email.lower(), User.id != user.id)
            ):
                raise ValidationFailed({"email": "is already registered"})
            changes["email"] = [user.email, email or None]
            user.email = email.lower() or None
        if unlock:
            user.locked_until = None
            user.failed_attempts = 0
            changes["unlocked"] = True
        try:
            session.flush()
        except IntegrityError:
            session.rollback()
            raise ValidationFailed({"email": "is already registered"}) from None
        if "role" in changes or "is_active" in changes:
            _bump_credentials(session, user.id)
            session.refresh(user)
        if changes:
            audit.record(session, principal.username, "user.update", username, dict(changes))
        try:
            session.commit()
        except IntegrityError:  # the email was taken at the same moment
            session.rollback()
            raise ValidationFailed({"email": "is already registered"}) from None
        return _out(user)


def _lock_rows(session: Session, *usernames: str | None, admins: bool = False) -> list[int]:
    """Lock the rows of these users, and with ``admins`` every active admin's, before the actor is checked and
    the target changed: PostgreSQL ``SELECT ... ORDER BY id FOR UPDATE`` in one statement (every caller locks
    in id order, so two transactions never deadlock); SQLite: the database's write lock. Returns the ids of
    the active admins (when asked), read under the lock."""
    write_lock(session)
    names = sorted({n for n in usernames if n})
    condition: ColumnElement[bool] = User.username.in_(names)
    if admins:
        condition = or_(condition, (User.role == "admin") & User.is_active.is_(True))
    query = select(User.id, User.role, User.is_active).where(condition).order_by(User.id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    rows = session.execute(query).all()
    return [r.id for r in rows if r.role == "admin" and r.is_active]


def set_password(
    username: str, new_password: str, *, actor: Any, current_password: str | None = None, now: dt.datetime | None = None
) -> int:
    """Change a password; return the user's new credential version (every earlier session and cookie ends).

    A user changing their own password gives the current one, which is checked like a login (wrong guesses
    count toward the lockout); an admin may reset anyone's without it (checked on fresh state).
    ValidationFailed names the field; nothing is written then."""
    own = username_of(actor) == username and not isinstance(actor, SystemActor)
    roles = ALL_ROLES if own else ADMIN_ONLY
    problems = password_problems(new_password or "", username)
    with unit_of_work() as session:
        resolve(session, actor, roles, action="resetting passwords")
        if _by_name(session, username) is None:
            raise NotFoundError(f"no user {username!r}")
    checked_version = None
    if own:
        try:
            _, _, checked_version, _ = _checked(
                username, current_password or "", now=now or utcnow(), action="user.password_check"
            )
        except AuthenticationError as exc:
            if exc.locked_until is not None:
                raise ValidationFailed({"current_password": exc.message}) from None
            raise ValidationFailed({"current_password": "is wrong"}) from None
    if problems:
        raise ValidationFailed({"password": "; ".join(problems)})
    new_hash = hash_password(new_password)
    with unit_of_work() as session:
        _lock_rows(session, username_of(actor), username)
        principal = resolve(session, actor, roles, action="resetting passwords", lock=True)
        user = _by_name(session, username)
        if user is None:
            raise NotFoundError(f"no user {username!r}")
        if own and user.credential_version != checked_version:  # changed meanwhile (another tab)
            raise ValidationFailed({"current_password": "is out of date; the password was just changed"})
        user.password_hash = new_hash
        user.failed_attempts = 0
        session.flush()
        version = _bump_credentials(session, user.id)
        audit.record(session, principal.username, "user.password", username)
        session.commit()
        return version


def revoke_cookies(
    username: str,
    *,
    at: dt.datetime | None = None,  # noqa: ARG001 - kept for callers
    version: int | None = None,
) -> int:
    """End every session and re-authentication cookie of ``username`` (a logout does this): the stored
    credential version moves on, so a copy of an old cookie (or a reload racing its deletion) cannot log back
    in. With ``version`` (the logging-out session's), only a session that is still current may do it: a tab
    whose session already ended cannot log out the user's newer sessions. Returns the stored version after
    the call (0 when the user does not exist)."""
    with unit_of_work() as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            return 0
        if version is not None and version != user.credential_version:
            return user.credential_version
        bumped = session.execute(
            update(User)
            .where(User.id == user.id, User.credential_version == user.credential_version)
            .values(credential_version=User.credential_version + 1)
            .returning(User.credential_version)
        ).scalar_one_or_none()
        session.commit()
        return int(bumped if bumped is not None else user.credential_version)


def registration_mode() -> str:
    with unit_of_work() as session:
        return str(app_settings.get(session, "registration", {"mode": "closed"}).get("mode", "closed"))


def set_registration_mode(mode: str, *, actor: Any) -> None:
    """Set who may register (admins only, checked on fresh state)."""
    with unit_of_work() as session:
        write_lock(session)
        principal = resolve(session, actor, ADMIN_ONLY, action="changing the registration mode", lock=True)
        if mode not in REGISTRATION_MODES:
            raise ValidationFailed({"mode": f"must be one of {', '.join(REGISTRATION_MODES)}"})
        app_settings.put(session, "registration", {"mode": mode}, by=principal.username)
        audit.record(session, principal.username, "settings.registration", mode)
        session.commit()


def invite(email: str, *, actor: Any) -> None:
    """Pre-authorise ``email`` to register (admins only); inviting twice is harmless."""
    with unit_of_work() as session:
        write_lock(session)
        principal = resolve(session, actor, ADMIN_ONLY, action="inviting users", lock=True)
        if not EMAIL_RE.match(email or ""):
            raise ValidationFailed({"email": "is not a valid email address"})
        if session.scalar(select(Invitation.id).where(Invitation.email == email.lower())) is None:
            session.add(Invitation(email=email.lower(), invited_by=principal.username))
            audit.record(session, principal.username, "user.invite", email.lower())
            try:
                session.commit()
            except IntegrityError:  # invited by someone else at the same moment: the same outcome
                session.rollback()


def list_invitations(*, actor: Any = None) -> list[dict[str, object]]:
    with unit_of_work() as session:
        resolve(session, actor, ADMIN_ONLY, action="listing invitations")
        return [
            {"email": i.email, "invited_by": i.invited_by, "created_at": i.created_at, "used_at": i.used_at}
            for i in session.scalars(select(Invitation).order_by(Invitation.created_at.desc()))
        ]


def register(username: str, name: str, password: str, email: str) -> UserOut:
    """Self-registration as analyst, allowed by the registration mode (open, or invite with an invited email)."""
    if registration_mode() == "closed":
        raise PermissionDenied("registration is closed; ask an administrator for an account")
    errors = validate_new_user(username, name, password, email, "analyst")
    if not (email or "").strip():
        errors["email"] = "is required"
    if errors:
        raise ValidationFailed(errors)
    password_hash = hash_password(password)
    with unit_of_work() as session:
        write_lock(session)
        mode = str(app_settings.get(session, "registration", {"mode": "closed"}).get("mode", "closed"))
        if mode == "closed":
            raise PermissionDenied("registration is closed; ask an administrator for an account")
        if mode == "invite":  # spend the invitation atomically: two registrations cannot share one
            spent = cast(
                "CursorResult[Any]",
                session.execute(
                    update(Invitation)
                    .where(Invitation.email == email.lower(), Invitation.used_at.is_(None))
                    .values(used_at=utcnow())
                ),
            ).rowcount
            if spent != 1:
                raise PermissionDenied("this email has not been invited")
        user = _insert_user(session, username, name, password_hash, "analyst", email, username)
        _commit_new_user(session)
        return _out(user)
