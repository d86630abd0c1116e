"""Users, roles, pre-authorised (invited) emails and two-factor recovery codes."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base, utcnow

ROLES = ("admin", "analyst")


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint("role IN ('admin', 'analyst')", name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str | None] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16), default="analyst")
    is_active: Mapped[bool] = mapped_column(default=True)
    failed_attempts: Mapped[int] = mapped_column(default=0)
    #: Bumped (atomically, in SQL) by a password change or reset, a role change, deactivation and logout: every
    #: session and re-authentication cookie issued under an older version is no longer accepted.
    credential_version: Mapped[int] = mapped_column(default=0, server_default="0")
    locked_until: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[dt.datetime | None]
    #: The TOTP secret, encrypted (Fernet) with the two-factor key; never the base32 secret itself. Set while an
    #: enrolment waits for its first code (``totp_enabled_at`` still None) and once it is confirmed.
    totp_secret: Mapped[str | None] = mapped_column(String(512))
    #: When two-factor authentication was confirmed (None: not enabled).
    totp_enabled_at: Mapped[dt.datetime | None]
    #: The TOTP time step (Unix time // 30) of the last code accepted: a code of that step or an earlier one is
    #: refused (no replay within the +-1 step window), moved forward atomically in SQL.
    totp_last_step: Mapped[int | None]

    @property
    def two_factor_enabled(self) -> bool:
        return self.totp_enabled_at is not None


# user names and emails are unique whatever their case ("bob" and "Bob" are one account)
Index("uq_users_username_lower", func.lower(User.username), unique=True)
Index("uq_users_email_lower", func.lower(User.email), unique=True)


class Invitation(Base):
    """An email pre-authorised to register while registration mode is 'invite'."""

    __tablename__ = "invitations"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    invited_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    used_at: Mapped[dt.datetime | None]


class RecoveryCode(Base):
    """One single-use two-factor recovery code, stored as a hash (see core/services/two_factor.py)."""

    __tablename__ = "recovery_codes"
    __table_args__ = (UniqueConstraint("user_id", "code_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    #: When the code was spent (set atomically: a code is accepted once).
    used_at: Mapped[dt.datetime | None]
