"""Computed results of a config version: index values, allocations, rebalances, metrics."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Date, Float, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base


class IndexValue(Base):
    __tablename__ = "index_values"

    config_id: Mapped[int] = mapped_column(ForeignKey("strategy_configs.id", ondelete="CASCADE"), primary_key=True)
    date: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    value: Mapped[float] = mapped_column(Float)


class Allocation(Base):
    """Weights after trading at the close of a rebalance date (fractions)."""

    __tablename__ = "allocations"

    config_id: Mapped[int] = mapped_column(ForeignKey("strategy_configs.id", ondelete="CASCADE"), primary_key=True)
    date: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True)
    weight: Mapped[float] = mapped_column(Float)


class Rebalance(Base):
    """Turnover (sum of |trade weights|) and cost (fraction of the level) of one rebalance."""

    __tablename__ = "rebalances"

    config_id: Mapped[int] = mapped_column(ForeignKey("strategy_configs.id", ondelete="CASCADE"), primary_key=True)
    date: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    turnover: Mapped[float] = mapped_column(Float)
    cost: Mapped[float] = mapped_column(Float)


class RiskMetric(Base):
    """One metric of a config version as of a date; value NULL with a reason when undefined."""

    __tablename__ = "risk_metrics"

    config_id: Mapped[int] = mapped_column(ForeignKey("strategy_configs.id", ondelete="CASCADE"), primary_key=True)
    as_of: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[float | None] = mapped_column(Float)
    reason: Mapped[str | None] = mapped_column(Text)
