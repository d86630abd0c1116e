"""User schemas crossing a boundary (never the password hash)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict

Role = Literal["admin", "analyst"]


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    name: str
    email: str | None
    role: Role
    is_active: bool
    failed_attempts: int
    credential_version: int = 0
    locked_until: dt.datetime | None
    created_at: dt.datetime
    last_login_at: dt.datetime | None
    #: TOTP two-factor authentication confirmed (core/services/two_factor.py).
    two_factor_enabled: bool = False

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"
