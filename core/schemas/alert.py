"""Alert settings (Admin -> Alerts) and alerts as they leave the rules (:mod:`core.services.alerts`)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

RuleName = Literal["refresh_failed", "data_stale", "no_worker", "drawdown"]
RULES: tuple[RuleName, ...] = ("refresh_failed", "data_stale", "no_worker", "drawdown")
RULE_TITLES = {
    "refresh_failed": "A refresh failed",
    "data_stale": "Data stale beyond N business days",
    "no_worker": "No worker alive",
    "drawdown": "Active index drawdown beyond the threshold",
}

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_HOST = re.compile(r"^[A-Za-z0-9.\-:\[\]]+$")


class AlertSettings(BaseModel):
    """Where alerts go and which rules fire. ``webhook_url`` is a secret (Slack's carry a token): pages show it
    redacted; the SMTP password comes from ``ALERT_SMTP_PASSWORD`` only, never from the database."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    webhook_url: str | None = Field(
        default=None, max_length=1000, description='Slack-compatible incoming webhook (POST {"text": ...})'
    )
    smtp_host: str | None = Field(default=None, max_length=255)
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_starttls: bool = True
    smtp_user: str | None = Field(default=None, max_length=255)
    email_from: str | None = Field(default=None, max_length=255)
    email_to: list[str] = Field(default_factory=list, max_length=20)
    rules: list[RuleName] = Field(default_factory=lambda: list(RULES))
    stale_days: int = Field(default=5, ge=1, le=365, description="business days stale before data_stale fires")
    drawdown_threshold: float = Field(
        default=0.10, gt=0, lt=1, description="fraction below the running peak at which drawdown fires"
    )

    @field_validator("webhook_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if not v:
            return None
        if not v.startswith(("https://", "http://")) or any(c.isspace() for c in v):
            raise ValueError("must be an http:// or https:// URL")
        return v

    @field_validator("smtp_host", "smtp_user")
    @classmethod
    def _blank_none(cls, v: str | None) -> str | None:
        return v or None

    @field_validator("smtp_host")
    @classmethod
    def _host(cls, v: str | None) -> str | None:
        if v and not _HOST.match(v):
            raise ValueError("must be a host name or address")
        return v

    @field_validator("email_from")
    @classmethod
    def _from(cls, v: str | None) -> str | None:
        if not v:
            return None
        if not _EMAIL.match(v):
            raise ValueError("is not an email address")
        return v

    @field_validator("email_to", mode="before")
    @classmethod
    def _to(cls, v: object) -> object:
        if isinstance(v, str):
            v = [part.strip() for part in re.split(r"[,;\s]+", v) if part.strip()]
        if isinstance(v, list):
            bad = [x for x in v if not isinstance(x, str) or not _EMAIL.match(x)]
            if bad:
                raise ValueError(f"not an email address: {', '.join(map(str, bad[:3]))}")
        return v

    @property
    def email_enabled(self) -> bool:
        return bool(self.smtp_host and self.email_to)

    @property
    def channels(self) -> list[str]:
        return [name for name, on in (("webhook", bool(self.webhook_url)), ("email", self.email_enabled)) if on]


class Alert(BaseModel):
    """A firing alert: ``key`` names rule and episode, so the same episode is sent once."""

    rule: RuleName
    key: str
    message: str
