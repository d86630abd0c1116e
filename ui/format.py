"""Number formatting shared by every screen (fractions shown as percent, missing as an em dash)."""

from __future__ import annotations

import math

MISSING = "—"


def is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def pct(value: object, digits: int = 2, signed: bool = False) -> str:
    """0.0123 -> '1.23%' (or '+1.23%' with ``signed``); None / NaN -> '—'."""
    if is_missing(value):
        return MISSING
    return f"{float(value) * 100:{'+' if signed else ''}.{digits}f}%"  # type: ignore[arg-type]


def number(value: object, digits: int = 2) -> str:
    if is_missing(value):
        return MISSING
    return f"{float(value):,.{digits}f}"  # type: ignore[arg-type]


def metric_value(value: object, unit: str) -> str:
    """A risk metric in its unit: fractions as percent, ratios as plain numbers."""
    return pct(value) if unit == "fraction" else number(value)


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``1, "chunk"`` -> "1 chunk", ``3, "chunk"`` -> "3 chunks" (``nouns`` when the plural is not noun + s)."""
    return f"{count:,} {noun if count == 1 else (nouns or noun + 's')}"
