"""Pydantic schemas for assets and market data crossing a boundary, and the one symbol rule.

The symbol rule (:func:`symbol_problem` / :func:`normalise_symbol`) is the only place that decides what a
ticker may look like; the asset schema, the providers' requested symbols and the file import all call it.
A symbol is 1-32 plain ASCII characters (letters, digits and ``. - ^ = / : _``, starting with a letter, a digit
or ``^``), compared and stored upper-case. Text that Unicode would turn into a different symbol is refused, not
silently mapped: ``ſpy`` (long s), ``ｓｐｙ`` (fullwidth), ``ﬁx`` (ligature) change under NFKC normalisation, and
``ıbm`` (dotless i), ``K`` (Kelvin sign) or ``ß`` change into ASCII under case folding, so any of them could
otherwise land on an existing asset (``SPY``, ``FIX``, ``IBM``).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

AssetClass = Literal["equity", "etf", "commodity", "bond", "index", "other"]

#: The shape of a symbol (ASCII only; checked with a full match after the Unicode checks of :func:`symbol_problem`).
SYMBOL_PATTERN = r"^[A-Za-z0-9^][A-Za-z0-9.\-^=/:_]{0,31}$"
_SYMBOL_SHAPE = re.compile(r"[A-Za-z0-9^][A-Za-z0-9.\-^=/:_]{0,31}")
SYMBOL_SHAPE_TEXT = "1-32 characters: letters, digits and . - ^ = / : _ (starting with a letter, digit or ^)"


def symbol_problem(raw: object) -> str | None:
    """Why ``raw`` is not an acceptable symbol (one sentence naming it), or ``None`` when it is.

    Surrounding whitespace is ignored; an empty symbol is a problem ("missing symbol").
    """
    if not isinstance(raw, str):
        return f"symbol must be text, not {type(raw).__name__}"
    text = raw.strip()
    if not text:
        return "missing symbol"
    shown = text if len(text) <= 40 else text[:40] + "…"
    normalised = unicodedata.normalize("NFKC", text)
    if normalised != text:
        return (
            f"symbol {shown!r} changes under Unicode NFKC normalisation (to {normalised[:40]!r}); "
            "type it in plain ASCII"
        )
    for ch in text:
        if not ch.isascii():
            folded = ch.upper() + ch.lower() + ch.casefold()
            if any(c.isascii() for c in folded):
                return (
                    f"symbol {shown!r} contains {ch!r} (U+{ord(ch):04X}), which changes under case folding; "
                    "type it in plain ASCII"
                )
            return f"symbol {shown!r} contains the non-ASCII character {ch!r} (U+{ord(ch):04X})"
    if _SYMBOL_SHAPE.fullmatch(text) is None:
        return f"symbol {shown!r} is not a valid ticker: {SYMBOL_SHAPE_TEXT}"
    return None


def normalise_symbol(raw: object) -> str:
    """The canonical form of a symbol (stripped, upper-case ASCII); ``ValueError`` naming it when refused."""
    problem = symbol_problem(raw)
    if problem is not None:
        raise ValueError(problem)
    return str(raw).strip().upper()


class AssetInfo(BaseModel):
    """What AutoIndex knows about an instrument (not its prices)."""

    model_config = ConfigDict(frozen=True)

    symbol: str = Field(
        description="Ticker, e.g. AAPL or ^GSPC (see symbol_problem)", json_schema_extra={"pattern": SYMBOL_PATTERN}
    )
    name: str = Field(min_length=1, max_length=200)
    asset_class: AssetClass = "equity"
    sector: str | None = Field(default=None, max_length=100)
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    is_benchmark: bool = False
    source: str = Field(default="demo", max_length=32)

    @field_validator("symbol")
    @classmethod
    def _symbol_rule(cls, v: str) -> str:
        return normalise_symbol(v)
