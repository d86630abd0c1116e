"""Versioned strategy configurations."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base, utcnow


class StrategyConfigRow(Base):
    """One saved version of a named config. Exactly one row app-wide is active."""

    __tablename__ = "strategy_configs"
    __table_args__ = (
        UniqueConstraint("name", "version", name="name_version"),
        # at most one active version, whatever the concurrency (a partial unique index on both databases)
        Index(
            "uq_strategy_configs_one_active",
            "is_active",
            unique=True,
            sqlite_where=text("is_active"),
            postgresql_where=text("is_active"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    version: Mapped[int]
    params: Mapped[dict[str, Any]]
    note: Mapped[str | None] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(default=False)
    created_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("strategy_configs.id", ondelete="SET NULL"))
    computed_at: Mapped[dt.datetime | None]
    #: The engine's warnings of the last stored compute (e.g. a sleeve left out for want of market caps).
    compute_warnings: Mapped[list[Any] | None]
