"""Risk inputs of issue 15: dividends per asset and date, and imported factor series."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Date, Float, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base, utcnow


class Dividend(Base):
    """Cash dividend per share of one asset going ex on one date (currency units); drives the total-return basis."""

    __tablename__ = "dividends"

    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True)
    date: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    dividend: Mapped[float] = mapped_column(Float)


class FactorValue(Base):
    """One daily value (a return as a fraction, e.g. Fama-French Mkt-RF) of one factor of a named factor set."""

    __tablename__ = "factor_values"

    factor_set: Mapped[str] = mapped_column(String(64), primary_key=True)
    factor: Mapped[str] = mapped_column(String(32), primary_key=True)
    date: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    value: Mapped[float] = mapped_column(Float)
    is_demo: Mapped[bool] = mapped_column(default=False)
    imported_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
