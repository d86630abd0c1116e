"""Generated report files and their metadata."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Date, ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base, utcnow


class Report(Base):
    __tablename__ = "reports"
    __table_args__ = (Index("ix_reports_owner_created", "owner", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    report_type: Mapped[str] = mapped_column(String(32))
    period: Mapped[str] = mapped_column(String(16))
    start: Mapped[dt.date | None] = mapped_column(Date)
    end: Mapped[dt.date | None] = mapped_column(Date)
    format: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    owner: Mapped[str] = mapped_column(String(64))
    config_id: Mapped[int | None] = mapped_column(ForeignKey("strategy_configs.id", ondelete="SET NULL"))
    task_run_id: Mapped[int | None] = mapped_column(ForeignKey("task_runs.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None]
    filename: Mapped[str | None] = mapped_column(String(255))
    content: Mapped[bytes | None] = mapped_column(LargeBinary)
    path: Mapped[str | None] = mapped_column(String(1000))
    size_bytes: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)
