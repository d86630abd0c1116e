"""Alert notifications sent by the app itself (one row per alert key: the de-duplication)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base, utcnow


class AlertNotification(Base):
    """An alert that fired: ``key`` names the rule and the episode (``refresh_failed:run 12``,
    ``drawdown:3:2024-05-01``), unique, so a firing alert is claimed once across every process."""

    __tablename__ = "alert_notifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    rule: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="sending")  # sending, sent, failed
    attempts: Mapped[int] = mapped_column(default=0)
    first_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_attempt_at: Mapped[dt.datetime | None]
    sent_at: Mapped[dt.datetime | None]
    channels: Mapped[dict[str, Any] | None]
