"""Pydantic schemas for assets and market data crossing a boundary."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

AssetClass = Literal["equity", "etf", "commodity", "bond", "index", "other"]

SYMBOL_PATTERN = r"^[A-Za-z0-9^][A-Za-z0-9.\-^=/:_]{0,31}$"


class AssetInfo(BaseModel):
    """What AutoIndex knows about an instrument (not its prices)."""

    model_config = ConfigDict(frozen=True)

    symbol: str = Field(pattern=SYMBOL_PATTERN, description="Ticker, e.g. AAPL or ^GSPC")
    name: str = Field(min_length=1, max_length=200)
    asset_class: AssetClass = "equity"
    sector: str | None = Field(default=None, max_length=100)
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    is_benchmark: bool = False
    source: str = Field(default="demo", max_length=32)

    @field_validator("symbol")
    @classmethod
    def _upper(cls, v: str) -> str:
        return v.strip().upper()
