"""Every table on every screen is drawn by :func:`show`: human headers, empty cells for missing values,
readable UTC timestamps and yes/no for flags, whatever frame a service returned.

Services return frames with code names (``created_by``, ``ttl_s``, tz-aware timestamps, ``None``); people
read "Created by", "TTL (s)", "2026-11-29 08:15" under a "(UTC)" header, and an empty cell.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import streamlit as st

from core.services.freshness import STALE_LABEL
from ui.format import MISSING

#: Trailing name parts that are units: shown in parentheses ("ttl_s" -> "TTL (s)").
UNITS = {"s": "s", "ms": "ms", "kb": "kB", "mb": "MB", "bytes": "bytes", "pct": "%", "bps": "bps", "days": "days"}
#: Name parts written in capitals.
ACRONYMS = {
    "id": "ID",
    "pid": "PID",
    "ttl": "TTL",
    "url": "URL",
    "utc": "UTC",
    "api": "API",
    "cagr": "CAGR",
    "var": "VaR",
    "cvar": "CVaR",
    "p50": "p50",
    "p95": "p95",
    "xlsx": "XLSX",
    "csv": "CSV",
}
DATETIME_FORMAT = "%Y-%m-%d %H:%M"
#: Names whose header is one wording on every screen, defined beside its rule.
FIXED_HEADERS = {"stale_days": STALE_LABEL}


def header(name: Any) -> Any:
    """``created_by`` -> "Created by", ``ttl_s`` -> "TTL (s)"; a name that is already human stays."""
    if not isinstance(name, str) or not name or " " in name or any(c.isupper() for c in name):
        return name
    if name in FIXED_HEADERS:
        return FIXED_HEADERS[name]
    words = [w for w in name.split("_") if w]
    if not words:
        return name
    unit = UNITS[words.pop()] if len(words) > 1 and words[-1] in UNITS else None
    words = [ACRONYMS.get(w, w) for w in words]
    text = " ".join(words)
    text = text[0].upper() + text[1:]
    return f"{text} ({unit})" if unit else text


def _is_datetime_column(series: pd.Series) -> bool:
    if pd.api.types.is_datetime64_any_dtype(series):
        return True
    if series.dtype == object:
        values = series.dropna()
        return len(values) > 0 and all(isinstance(v, dt.datetime) for v in values)
    return False


def _cell(value: Any) -> Any:
    """An object cell as text a person reads: empty for missing, JSON for structures."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    if isinstance(value, (dict, list, tuple)):
        import json

        return json.dumps(value, default=str, ensure_ascii=False)
    return value


def prepare(frame: pd.DataFrame, configured: frozenset[Any] = frozenset()) -> tuple[pd.DataFrame, dict[Any, Any]]:
    """The frame as people read it, and old -> new names.

    Missing numbers become empty cells too, except in ``configured`` columns (a progress bar or a percent
    format needs numbers; the grid draws their missing cells blank). Columns are handled by position, and two
    columns whose headers would read alike get a numbered suffix, so no frame is refused by the grid."""
    columns = list(frame.columns)
    cells: list[pd.Series] = []
    renamed: dict[Any, Any] = {}
    headers: list[Any] = []
    for position, column in enumerate(columns):
        series = frame.iloc[:, position]  # by position: two columns may share a name
        name = header(column)
        if _is_datetime_column(series):
            # ISO text sorts like the times and lets a missing time be an empty cell (the grid prints "None"
            # for a missing datetime)
            stamps = pd.to_datetime(series, utc=True, errors="coerce")
            series = stamps.dt.strftime(DATETIME_FORMAT).astype(object).where(stamps.notna(), "")
            if isinstance(name, str) and "UTC" not in name:
                name = f"{name} (UTC)"
        elif pd.api.types.is_bool_dtype(series):
            series = series.map({True: "yes", False: "no"}).astype(object).where(series.notna(), "")
        elif pd.api.types.is_numeric_dtype(series):
            if column not in configured and series.isna().any():
                # text throughout (a column mixing numbers and "" is refused by Arrow: Streamlit then logged a
                # traceback and converted it to text itself, on every run)
                series = series.map(lambda v: "" if pd.isna(v) else str(v)).astype(object)
        else:  # object or string columns (pandas 3 infers "str" for text, with NaN for missing)
            series = series.astype(object).map(_cell)
        unique, n = name, 2
        while unique in headers:  # "created_by" and "Created by" both read "Created by"
            unique, n = f"{name} ({n})", n + 1
        headers.append(unique)
        renamed.setdefault(column, unique)
        cells.append(series.reset_index(drop=True))
    out = pd.DataFrame(dict(zip(range(len(cells)), cells)), index=range(len(frame)))
    out.columns = pd.Index(headers)
    out.index = frame.index
    return out, renamed


def show(
    frame: pd.DataFrame, *, column_config: dict[str, Any] | None = None, hide_index: bool = True, **kwargs: Any
) -> None:
    """``st.dataframe`` of :func:`prepare`\\ d ``frame``; ``column_config`` may use the frame's own names.

    A missing value the grid still holds (a configured number column keeps NaN, so it sorts and formats as a
    number) is drawn as :data:`ui.format.MISSING`: the grid's own default writes the word "None" in the cell."""
    shown, renamed = prepare(frame, frozenset(column_config or ()))
    config = {renamed.get(key, key): value for key, value in (column_config or {}).items()}
    kwargs.setdefault("width", "stretch")
    kwargs.setdefault("placeholder", MISSING)
    st.dataframe(shown, hide_index=hide_index, column_config=config or None, **kwargs)
