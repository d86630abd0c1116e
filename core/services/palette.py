"""Colours shared by the screens' charts and the reports, so a sector has one colour everywhere.

:func:`sector_color` depends on the sector's name only (never on which other sectors a chart happens to
show or on their order): the sectors AutoIndex knows (the GICS sectors and the demo universe's asset
groups) have a fixed colour, and any other name gets one of :data:`EXTRA_COLORS` chosen by a CRC-32 of
its case-folded name (stable across processes, unlike ``hash``).
"""

from __future__ import annotations

import zlib

__all__ = ["SECTOR_COLORS", "EXTRA_COLORS", "OTHER_COLOR", "CASH_COLOR", "sector_color"]

#: "Other" (what is left over, or a missing sector) and cash are neutral greys.
#: Series colours of the report charts (HTML and PDF draw the same lines in the same order).
SERIES_COLORS = [
    "#1F3A5F",
    "#D1495B",
    "#00798C",
    "#EDAE49",
    "#66A182",
    "#8D6A9F",
    "#30638E",
    "#F08A4B",
    "#5B8E7D",
    "#A23B72",
    "#7F7F7F",
]
OTHER_COLOR = "#8a94a6"
CASH_COLOR = "#c3c9d4"
#: Fixed colours of the sectors AutoIndex knows (lower-case keys).
SECTOR_COLORS: dict[str, str] = {
    "information technology": "#4e79a7",
    "health care": "#59a14f",
    "financials": "#f28e2b",
    "consumer discretionary": "#e15759",
    "communication services": "#b07aa1",
    "industrials": "#76b7b2",
    "consumer staples": "#9c9a2e",
    "energy": "#9c755f",
    "utilities": "#ff9da7",
    "real estate": "#d37295",
    "materials": "#8cd17d",
    "government bonds": "#a0cbe8",
    "precious metals": "#f1ce63",
    "broad market": "#499894",
    "other": OTHER_COLOR,
    "cash": CASH_COLOR,
}
#: Colours for sector names not in :data:`SECTOR_COLORS`.
EXTRA_COLORS: tuple[str, ...] = (
    "#2f6690",
    "#c9a227",
    "#3a9d8f",
    "#8e5ea2",
    "#d1495b",
    "#66a182",
    "#7d6b5d",
    "#b5838d",
    "#5b8cc9",
    "#9c6644",
    "#e07b9a",
    "#6b8e23",
)


def sector_color(sector: object) -> str:
    """The colour (``#rrggbb``) of ``sector``; None or an empty name is "Other"."""
    name = str(sector).strip().casefold() if sector is not None else ""
    if not name or name in ("none", "nan"):
        return OTHER_COLOR
    if name in SECTOR_COLORS:
        return SECTOR_COLORS[name]
    return EXTRA_COLORS[zlib.crc32(name.encode("utf-8")) % len(EXTRA_COLORS)]
