"""Two-factor authentication with time-based one-time passwords (TOTP, RFC 6238) and recovery codes.

What it guarantees (definitions and parameters: docs/methodology.md, "Two-factor authentication"):

* **Codes.** 6 digits, SHA-1, 30-second steps (what every authenticator app uses by default, pyotp's
  defaults). A code is accepted for the current step and one step either side (clock skew of +-30 s), never
  two steps away.
* **No replay.** The step of the last accepted code is stored (``users.totp_last_step``) and moved forward
  atomically in SQL: a code of that step, or of an earlier one, is refused, so a code seen over a shoulder or
  used twice at the same moment logs in once.
* **Lockout.** Every code tried counts toward the account's lockout exactly like a password (5 failures lock
  the account for 15 minutes, :mod:`core.services.users`); a right password does not clear the counter of an
  account with two-factor authentication, only a right code does.
* **Secret at rest.** The base32 secret is stored encrypted (Fernet: AES-128-CBC + HMAC-SHA256) under a key
  derived (HKDF-SHA256) from ``TWO_FACTOR_KEY``, ``two_factor_key`` in .streamlit/secrets.toml, or a key
  generated on first start into ``DATA_DIR/two_factor_key`` (mode 600). Keep that key out of database backups.
  **Rotation**: set the new key as TWO_FACTOR_KEY and the old one in TWO_FACTOR_PREVIOUS_KEYS (both are read, so
  logins go on), run ``python -m core rotate-two-factor-key`` (:func:`rotate_key`: every secret re-encrypted under
  the new key, all or nothing, audited), then drop the old key.
* **Recovery codes.** Ten per enrolment, 16 characters from a 32-letter alphabet (80 random bits), shown once
  and stored as SHA-256 hashes salted with the user id (80 bits of entropy make a slow hash unnecessary);
  each is spent atomically, once.
* **Enrolment** shows the secret and a QR code (SVG, the ``qrcode`` package) of the ``otpauth://`` URI and is
  confirmed with a first code; enabling or disabling two-factor authentication, and an administrator's
  reset (audited), end every other session of the account (its credential version moves on).
* ``ADMIN_2FA=required``: an administrator without two-factor authentication is sent to enrol before any page
  (``ui.auth``), and the services refuse their admin-only actions (:func:`core.services.access.resolve`).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import logging
import os
import re
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pyotp
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from core.config import PROJECT_ROOT, get_settings
from core.db import unit_of_work, write_lock
from core.errors import AuthenticationError, ConfigurationError, NotFoundError, ValidationFailed
from core.infra.metrics import counted_logins
from core.models import User
from core.models.base import utcnow
from core.models.user import RecoveryCode
from core.schemas.user import UserOut
from core.services import audit, users
from core.services.access import ADMIN_ONLY, ALL_ROLES, resolve

if TYPE_CHECKING:
    from sqlalchemy import CursorResult

log = logging.getLogger(__name__)

ISSUER = "AutoIndex"
STEP_S = 30
DIGITS = 6
#: Steps accepted either side of the current one (+-1 step = +-30 s of clock skew).
SKEW_STEPS = 1
RECOVERY_CODES = 10
#: 32 letters and digits without 0/O and 1/I, so a code read aloud or copied by hand survives.
RECOVERY_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
RECOVERY_LENGTH = 16
_CODE_RE = re.compile(r"^[0-9]{6}$")  # ASCII digits only (\d also matches other scripts)


# --------------------------------------------------------------------------- the key and the secret at rest
def two_factor_key() -> str:
    """The secret the TOTP secrets are encrypted with: TWO_FACTOR_KEY, else ``two_factor_key`` in
    .streamlit/secrets.toml, else a key generated on first start into ``DATA_DIR/two_factor_key`` (mode 600,
    written whole and linked into place so that processes starting together agree on one key)."""
    settings = get_settings()
    if settings.two_factor_key:
        return settings.two_factor_key
    secrets_file = PROJECT_ROOT / ".streamlit" / "secrets.toml"
    if secrets_file.exists():
        try:
            value = tomllib.loads(secrets_file.read_text()).get("two_factor_key")
        except tomllib.TOMLDecodeError:
            value = None
            log.error("could not parse .streamlit/secrets.toml; using the generated two-factor key")
        if value:
            if len(str(value)) < 32:
                raise ConfigurationError(".streamlit/secrets.toml two_factor_key", "must be at least 32 characters")
            return str(value)
    path: Path = settings.data_dir / "two_factor_key"
    if not path.exists() or not path.read_text().strip():
        _write_key(path)
    return path.read_text().strip()


def _write_key(path: Path) -> None:
    tmp = path.with_name(f".two_factor_key.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32))
    try:
        if path.exists():  # an empty file left by a crash: replace it
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
    except FileExistsError:  # another process got there first: keep its key
        pass
    finally:
        tmp.unlink(missing_ok=True)


def previous_two_factor_keys() -> list[str]:
    """Earlier keys still read while a rotation is under way: TWO_FACTOR_PREVIOUS_KEYS (comma-separated), else
    ``two_factor_previous_keys`` in .streamlit/secrets.toml (a list or a comma-separated string)."""
    settings = get_settings()
    if settings.two_factor_previous_keys:
        return settings.two_factor_previous_keys.split(",")
    secrets_file = PROJECT_ROOT / ".streamlit" / "secrets.toml"
    if not secrets_file.exists():
        return []
    try:
        value = tomllib.loads(secrets_file.read_text()).get("two_factor_previous_keys")
    except tomllib.TOMLDecodeError:
        return []
    keys = [str(k).strip() for k in (value if isinstance(value, list) else str(value or "").split(","))]
    keys = [k for k in keys if k]
    if any(len(k) < 32 for k in keys):
        raise ConfigurationError(".streamlit/secrets.toml two_factor_previous_keys", "each must be 32+ characters")
    return keys


def _fernet_of(key: str) -> Fernet:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"autoindex totp secrets").derive(
        key.encode("utf-8")
    )
    return Fernet(base64.urlsafe_b64encode(derived))


def _fernet() -> MultiFernet:
    """Encrypts under the current key; decrypts under it or any earlier key still configured."""
    return MultiFernet([_fernet_of(two_factor_key()), *(_fernet_of(k) for k in previous_two_factor_keys())])


def encrypt_secret(secret: str) -> str:
    """The stored form of a base32 TOTP secret (a Fernet token, never the secret)."""
    return _fernet().encrypt(secret.encode("ascii")).decode("ascii")


_UNREADABLE = (
    "cannot decrypt the stored two-factor secrets: the key is not the one they were encrypted with (during a key "
    "rotation, put the earlier key in TWO_FACTOR_PREVIOUS_KEYS)"
)


def decrypt_secret(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode("ascii")).decode("ascii")
    except InvalidToken:
        raise ConfigurationError("TWO_FACTOR_KEY", _UNREADABLE) from None


def rotate_key(actor: Any = None) -> int:
    """Re-encrypt every stored TOTP secret under the current TWO_FACTOR_KEY (each read with it or an earlier key
    in TWO_FACTOR_PREVIOUS_KEYS); return how many. All or nothing: a secret no configured key can read stops the
    rotation with ConfigurationError naming the accounts, and nothing is changed. Audited; the system (CLI) or an
    administrator. Afterwards the earlier keys can be removed."""
    fernet = _fernet()
    with unit_of_work() as session:
        write_lock(session)
        principal = resolve(session, actor, ADMIN_ONLY, action="rotating the two-factor key", lock=True)
        rows = session.scalars(select(User).where(User.totp_secret.is_not(None)).order_by(User.id)).all()
        unreadable: list[str] = []
        for user in rows:
            try:
                user.totp_secret = fernet.rotate(str(user.totp_secret).encode("ascii")).decode("ascii")
            except InvalidToken:
                unreadable.append(user.username)
        if unreadable:
            session.rollback()
            raise ConfigurationError(
                "TWO_FACTOR_PREVIOUS_KEYS",
                f"no configured key reads the two-factor secret of {len(unreadable)} account(s) "
                f"({', '.join(unreadable[:10])}); nothing was re-encrypted. Add the key they were encrypted with "
                "to TWO_FACTOR_PREVIOUS_KEYS, or reset those accounts' two-factor authentication",
            )
        audit.record(
            session, principal.username, "user.2fa.rotate_key", "two-factor secrets", detail={"secrets": len(rows)}
        )
        session.commit()
    log.info("two-factor secrets re-encrypted under the current key: %d", len(rows))
    return len(rows)


# --------------------------------------------------------------------------- codes
def time_step(now: dt.datetime) -> int:
    """The TOTP step of ``now``: Unix time // 30 (RFC 6238, T0 = 0)."""
    return int(now.timestamp() // STEP_S)


def code_at(secret: str, step: int) -> str:
    """The 6-digit code of ``secret`` for ``step`` (what an authenticator app shows during it)."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_S).generate_otp(step)


def matching_step(secret: str, code: str, now: dt.datetime, skew: int = SKEW_STEPS) -> int | None:
    """The step within +-``skew`` of ``now`` whose code is ``code`` (compared in constant time), or None."""
    code = (code or "").strip().replace(" ", "")
    if not _CODE_RE.match(code):
        return None
    current = time_step(now)
    found = None
    for step in range(current - skew, current + skew + 1):  # every step is compared: no early exit
        if hmac.compare_digest(code_at(secret, step), code):
            found = step
    return found


def provisioning_uri(secret: str, username: str) -> str:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_S).provisioning_uri(name=username, issuer_name=ISSUER)


def qr_svg(uri: str) -> str:
    """A QR code of ``uri`` as an SVG document (one path: scales without blur)."""
    import qrcode
    import qrcode.image.svg

    image = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=2)
    return cast(str, image.to_string(encoding="unicode"))


def new_recovery_codes(count: int = RECOVERY_CODES) -> list[str]:
    """``count`` random codes shown as ``ABCD-EFGH-JKLM-NPQR``."""
    codes = []
    for _ in range(count):
        raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_LENGTH))
        codes.append("-".join(raw[i : i + 4] for i in range(0, RECOVERY_LENGTH, 4)))
    return codes


def normalise_recovery_code(code: str) -> str | None:
    """The 16 letters of a recovery code as typed (any case, dashes and spaces ignored), or None."""
    raw = re.sub(r"[\s-]", "", code or "").upper()
    if len(raw) != RECOVERY_LENGTH or any(ch not in RECOVERY_ALPHABET for ch in raw):
        return None
    return raw


def hash_recovery_code(user_id: int, code: str) -> str:
    """SHA-256 of the normalised code salted with the user id (hex)."""
    raw = normalise_recovery_code(code) or ""
    return hashlib.sha256(f"autoindex-recovery:{user_id}:{raw}".encode()).hexdigest()


# --------------------------------------------------------------------------- what callers get back
@dataclass(frozen=True)
class Enrolment:
    """A started enrolment: the base32 secret and its QR code (shown once, to the user enrolling)."""

    secret: str
    uri: str
    qr_svg: str


@dataclass(frozen=True)
class Enabled:
    """A confirmed enrolment: the session's new credential version and the recovery codes (shown once)."""

    credential_version: int
    recovery_codes: list[str]


@dataclass(frozen=True)
class TwoFactorStatus:
    enabled: bool
    enabled_at: dt.datetime | None
    pending: bool
    recovery_codes_left: int
    required: bool


def required_for(user: Any) -> bool:
    """True when ``user`` (an admin) must enrol before using the app: ``ADMIN_2FA=required`` and no 2FA yet."""
    return (
        get_settings().admin_2fa == "required"
        and getattr(user, "role", None) == "admin"
        and not getattr(user, "two_factor_enabled", False)
    )


# --------------------------------------------------------------------------- services
def _own_row(session: Session, actor: Any, action: str) -> User:
    principal = resolve(session, actor, ALL_ROLES, action=action, lock=True)
    if principal.user_id is None:
        raise ValidationFailed({"user": "the system has no second factor; log in as a user"})
    user = session.get(User, principal.user_id)
    assert user is not None
    return user


def _codes_left(session: Session, user_id: int) -> int:
    return int(
        session.scalar(
            select(func.count(RecoveryCode.id)).where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
        )
        or 0
    )


def status(actor: Any) -> TwoFactorStatus:
    """Whether the acting user has two-factor authentication, an enrolment waiting, and recovery codes left."""
    with unit_of_work() as session:
        user = _own_row(session, actor, "reading two-factor settings")
        return TwoFactorStatus(
            enabled=user.totp_enabled_at is not None,
            enabled_at=user.totp_enabled_at,
            pending=user.totp_enabled_at is None and user.totp_secret is not None,
            recovery_codes_left=_codes_left(session, user.id),
            required=get_settings().admin_2fa == "required" and user.role == "admin",
        )


def begin_enrolment(actor: Any) -> Enrolment:
    """Start (or restart) enrolling the acting user: a new secret is stored, encrypted, awaiting its first code.

    Refused (ValidationFailed) while two-factor authentication is already enabled: disable it first."""
    secret = pyotp.random_base32()  # 32 base32 characters: 160 bits, RFC 4226's recommended length
    with unit_of_work() as session:
        write_lock(session)
        user = _own_row(session, actor, "enrolling in two-factor authentication")
        if user.totp_enabled_at is not None:
            raise ValidationFailed({"code": "two-factor authentication is already enabled; disable it first"})
        user.totp_secret = encrypt_secret(secret)
        user.totp_last_step = None
        username = user.username
        session.commit()
    uri = provisioning_uri(secret, username)
    return Enrolment(secret=secret, uri=uri, qr_svg=qr_svg(uri))


def confirm_enrolment(actor: Any, code: str, *, now: dt.datetime | None = None) -> Enabled:
    """Enable two-factor authentication with the first code of the pending secret; returns the session's new
    credential version (every other session of the account ends) and ten recovery codes, shown once.

    ValidationFailed({"code": ...}) for a wrong code or no enrolment started; nothing is written then."""
    now = now or utcnow()
    with unit_of_work() as session:
        write_lock(session)
        user = _own_row(session, actor, "enrolling in two-factor authentication")
        if user.totp_enabled_at is not None:
            raise ValidationFailed({"code": "two-factor authentication is already enabled"})
        if user.totp_secret is None:
            raise ValidationFailed({"code": "start the enrolment first"})
        step = matching_step(decrypt_secret(user.totp_secret), code, now)
        if step is None:
            raise ValidationFailed(
                {
                    "code": "is not the current code of this secret; check the app's clock and "
                    "that the newest entry was scanned"
                }
            )
        enabled = cast(
            "CursorResult[Any]",
            session.execute(
                update(User)
                .where(User.id == user.id, User.totp_enabled_at.is_(None))
                .values(totp_enabled_at=now, totp_last_step=step, failed_attempts=0)
            ),
        ).rowcount
        if enabled != 1:  # enabled in another tab at the same moment
            raise ValidationFailed({"code": "two-factor authentication is already enabled"})
        codes = _replace_recovery_codes(session, user.id, now)
        version = _bump(session, user.id)
        audit.record(session, user.username, "user.2fa.enable", user.username)
        session.commit()
        return Enabled(credential_version=version, recovery_codes=codes)


def _replace_recovery_codes(session: Session, user_id: int, now: dt.datetime) -> list[str]:
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    codes = new_recovery_codes()
    session.add_all(
        [RecoveryCode(user_id=user_id, code_hash=hash_recovery_code(user_id, c), created_at=now) for c in codes]
    )
    return codes


def _bump(session: Session, user_id: int) -> int:
    return int(
        session.execute(
            update(User)
            .where(User.id == user_id)
            .values(credential_version=User.credential_version + 1)
            .returning(User.credential_version)
        ).scalar_one()
    )


def check_code(
    user_id: int, username: str, credential_version: int, code: str, *, now: dt.datetime, action: str
) -> str:
    """Check a TOTP or recovery ``code`` of an account with two-factor authentication, counting toward its
    lockout under any concurrency; return ``"totp"`` or ``"recovery"``, or raise AuthenticationError
    (audited under ``action``).

    One transaction: the try is reserved first (``failed_attempts + 1 ... RETURNING``, which holds the row on
    PostgreSQL and the database's write lock on SQLite until the commit), so attempts on one account are checked
    one after another; at most ``MAX_FAILED_ATTEMPTS`` codes are checked before the lock. A right TOTP code
    moves ``totp_last_step`` forward (refused if it is not past the last accepted step: a replay); a recovery
    code is spent by an update that matches only an unused code. Success clears the counter.
    """
    unlocked = or_(User.locked_until.is_(None), User.locked_until <= now)
    with unit_of_work() as session:
        write_lock(session)
        reserved = session.execute(
            update(User)
            .where(
                User.id == user_id,
                User.is_active.is_(True),
                unlocked,
                User.credential_version == credential_version,
                User.totp_enabled_at.is_not(None),
            )
            .values(failed_attempts=User.failed_attempts + 1)
            .returning(User.failed_attempts, User.totp_secret, User.totp_last_step)
        ).first()
        if reserved is None:
            user = session.get(User, user_id)
            if user is not None and user.is_active and user.locked_until is not None and user.locked_until > now:
                audit.record(session, username, action, username, outcome="failed", message="account locked")
                session.commit()
                raise AuthenticationError(users.locked_message(user.locked_until, now), locked_until=user.locked_until)
            session.rollback()  # reset, deactivated or changed since the password was checked
            raise AuthenticationError("your account changed since the password was checked; log in again")
        attempt, token, last_step = reserved
        if attempt > users.MAX_FAILED_ATTEMPTS:  # others used up the tries meanwhile: lock, check nothing
            lock_end = users.lock_account(session, user_id, username, now)
            audit.record(session, username, action, username, outcome="failed", message="account locked")
            session.commit()
            raise AuthenticationError(users.locked_message(lock_end, now), locked_until=lock_end)
        method, problem = _accept(session, user_id, token, last_step, code, now)
        if method is not None:
            session.execute(update(User).where(User.id == user_id).values(failed_attempts=0))
            if method == "recovery":
                audit.record(
                    session, username, "user.2fa.recovery_code", username, {"left": _codes_left(session, user_id)}
                )
            session.commit()
            return method
        message = "wrong code" if problem == "wrong code" else "this code was already used; wait for the next one"
        locked_until: dt.datetime | None = None
        if attempt >= users.MAX_FAILED_ATTEMPTS:
            locked_until = users.lock_account(session, user_id, username, now)
            message = f"account locked for 15 minutes after {users.MAX_FAILED_ATTEMPTS} failed attempts"
        audit.record(session, username, action, username, outcome="failed", message=problem)
        session.commit()
        raise AuthenticationError(message, locked_until=locked_until)


def _accept(
    session: Session, user_id: int, token: str | None, last_step: int | None, code: str, now: dt.datetime
) -> tuple[str | None, str]:
    """``(method, "")`` when ``code`` is accepted (and spent), else ``(None, why)``."""
    typed = (code or "").strip().replace(" ", "")
    if _CODE_RE.match(typed):
        step = matching_step(decrypt_secret(token), typed, now) if token else None
        if step is None:
            return None, "wrong code"
        claimed = session.execute(
            update(User)
            .where(User.id == user_id, or_(User.totp_last_step.is_(None), User.totp_last_step < step))
            .values(totp_last_step=step)
            .returning(User.id)
        ).scalar_one_or_none()
        if claimed is None:
            return None, "code replayed" if last_step is not None and step <= last_step else "wrong code"
        return "totp", ""
    if normalise_recovery_code(typed) is None:
        return None, "wrong code"
    spent = cast(
        "CursorResult[Any]",
        session.execute(
            update(RecoveryCode)
            .where(
                RecoveryCode.user_id == user_id,
                RecoveryCode.code_hash == hash_recovery_code(user_id, typed),
                RecoveryCode.used_at.is_(None),
            )
            .values(used_at=now)
        ),
    ).rowcount
    return ("recovery", "") if spent == 1 else (None, "wrong code")


@counted_logins  # autoindex_logins_total{outcome} (Prometheus)
def complete_login(challenge: Any, code: str, *, now: dt.datetime | None = None) -> UserOut:
    """The second step of a login: ``challenge`` from :class:`core.services.users.TwoFactorRequired` and a
    TOTP or recovery code (:func:`check_code`, counted toward the lockout). Returns the logged-in user."""
    now = now or utcnow()
    checked = users.verify_challenge(challenge, now)
    check_code(checked.user_id, checked.username, checked.credential_version, code, now=now, action="auth.login")
    return users.record_login(checked.user_id, checked.username, checked.credential_version, now)


def disable(actor: Any, code: str, *, now: dt.datetime | None = None) -> int:
    """Turn off the acting user's two-factor authentication with a current code (counted toward the lockout);
    returns the session's new credential version (other sessions end). ValidationFailed names the code field."""
    now = now or utcnow()
    with unit_of_work() as session:
        user = _own_row(session, actor, "changing two-factor settings")
        if user.totp_enabled_at is None:
            raise ValidationFailed({"code": "two-factor authentication is not enabled"})
        if get_settings().admin_2fa == "required" and user.role == "admin":
            raise ValidationFailed(
                {
                    "code": "administrators must keep two-factor authentication (ADMIN_2FA="
                    "required); another administrator can reset it"
                }
            )
        user_id, username, version = user.id, user.username, user.credential_version
    try:
        check_code(user_id, username, version, code, now=now, action="user.2fa.check")
    except AuthenticationError as exc:
        raise ValidationFailed({"code": exc.message}) from None
    with unit_of_work() as session:
        write_lock(session)
        _own_row(session, actor, "changing two-factor settings")
        new_version = _clear(session, user_id)
        audit.record(session, username, "user.2fa.disable", username)
        session.commit()
        return new_version


def regenerate_recovery_codes(actor: Any, code: str, *, now: dt.datetime | None = None) -> list[str]:
    """Ten new recovery codes for the acting user (the old ones stop working), given a current code."""
    now = now or utcnow()
    with unit_of_work() as session:
        user = _own_row(session, actor, "changing two-factor settings")
        if user.totp_enabled_at is None:
            raise ValidationFailed({"code": "two-factor authentication is not enabled"})
        user_id, username, version = user.id, user.username, user.credential_version
    try:
        check_code(user_id, username, version, code, now=now, action="user.2fa.check")
    except AuthenticationError as exc:
        raise ValidationFailed({"code": exc.message}) from None
    with unit_of_work() as session:
        write_lock(session)
        _own_row(session, actor, "changing two-factor settings")
        codes = _replace_recovery_codes(session, user_id, now)
        audit.record(session, username, "user.2fa.recovery_codes", username)
        session.commit()
        return codes


def _clear(session: Session, user_id: int) -> int:
    session.execute(
        update(User).where(User.id == user_id).values(totp_secret=None, totp_enabled_at=None, totp_last_step=None)
    )
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    return _bump(session, user_id)


def reset(username: str, *, actor: Any) -> None:
    """An administrator removes ``username``'s two-factor authentication (a lost phone): the secret and the
    recovery codes are deleted, every session of that user ends, and the reset is audited. Admins only,
    checked on fresh state; NotFoundError for an unknown user. Never one's own (ValidationFailed): that would turn
    two-factor authentication off without a code, which :func:`disable` requires."""
    with unit_of_work() as session:
        write_lock(session)
        principal = resolve(session, actor, ADMIN_ONLY, action="resetting two-factor authentication", lock=True)
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            raise NotFoundError(f"no user {username!r}")
        if principal.user_id == user.id:  # a reset is another's relief; one's own needs a code (disable)
            raise ValidationFailed(
                {
                    "user": "you cannot reset your own two-factor authentication; turn it off on "
                    "the Account page with a current code, or ask another administrator"
                }
            )
        had = user.totp_enabled_at is not None or user.totp_secret is not None
        _clear(session, user.id)
        audit.record(session, principal.username, "user.2fa.reset", username, {"was_enabled": had})
        session.commit()
