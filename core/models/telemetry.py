"""Timings the app records about itself (page renders, slow service calls)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Float, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base, utcnow


class Timing(Base):
    __tablename__ = "timings"
    __table_args__ = (Index("ix_timings_kind_name_at", "kind", "name", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(16))  # "page" or "service"
    name: Mapped[str] = mapped_column(String(100))
    duration_ms: Mapped[float] = mapped_column(Float)
