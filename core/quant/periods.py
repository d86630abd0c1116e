"""Periods: the one period math of AutoIndex (docs/methodology.md, "Periods").

Pure functions (no database, clock, network or Streamlit); inputs are never modified. Every screen, report and
metric that speaks of a period calls this module: the Dashboard's KPIs (:func:`kpi_returns`), the reports' periods
(:func:`period_bounds`, :func:`period_series`), the trailing-return table (:func:`trailing_returns`) and the
calendar tables (:func:`monthly_returns`, :func:`yearly_returns`, :func:`calendar_returns`, :func:`year_labels`).

The base rule
    A period is a *base date* and an *end date* (calendar dates). Its return is ``V_end / V_base - 1`` where
    ``V_base`` is the last level on or before the base date (:func:`base_level`). A period whose base date is before
    the first level is undefined (None, or ValidationFailed naming ``period`` where a caller asked for it).

Base dates (:func:`base_date`), for a period ending on ``as_of``:

    ===========  =========================================================
    MTD          last day of the previous month
    QTD          last day of the previous quarter
    YTD          31 December of the previous year
    1M .. 10Y    ``as_of`` minus 1 .. 120 calendar months (month arithmetic: 29 Feb - 1Y = 28 Feb)
    max          the first date with a level (since inception)
    ===========  =========================================================

Conventions: levels are index points or prices on a DatetimeIndex; returns are fractions (0.05 = 5 %); a result
that is undefined (too short a history, a non-positive base) is None in dicts and NaN in frames, never 0.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd

from core.errors import ValidationFailed

__all__ = [
    "as_date",
    "finite_levels",
    "PERIODS",
    "PERIOD_LABELS",
    "PERIOD_MONTHS",
    "TRAILING_PERIODS",
    "KPI_PERIODS",
    "DAYS_PER_YEAR",
    "base_date",
    "base_level",
    "period_bounds",
    "period_series",
    "period_return",
    "trailing_returns",
    "kpi_returns",
    "calendar_returns",
    "monthly_returns",
    "yearly_returns",
    "YEAR_TOTAL",
    "year_labels",
    "monthly_with_year_total",
]

#: Calendar days per year: the annualisation of trailing returns longer than a year (as CAGR).
DAYS_PER_YEAR = 365.25


# --------------------------------------------------------------------------- dates
def as_date(value: object) -> dt.date | None:
    """A calendar date from a date, datetime, pandas Timestamp or ISO text (``YYYY-MM-DD...``, as SQLite returns
    dates); None for None, empty text, NaT or text that is not a date."""
    if value is None or value == "" or value is pd.NaT:
        return None
    if isinstance(value, dt.datetime):  # pandas Timestamps are datetimes
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def finite_levels(values: Any) -> pd.Series:
    """``values`` as a float Series without its NaN / inf entries (a new object; the input is not modified)."""
    s = values if isinstance(values, pd.Series) else pd.Series(values)
    s = pd.to_numeric(s, errors="coerce").astype(float)
    kept: pd.Series = s[np.isfinite(s.to_numpy())]
    return kept


# --------------------------------------------------------------------------- named periods
#: Every period a report or the dashboard may ask for, in display order.
PERIODS: tuple[str, ...] = ("MTD", "QTD", "YTD", "1Y", "3Y", "5Y", "max", "custom")
PERIOD_LABELS: dict[str, str] = {
    "MTD": "Month to date",
    "QTD": "Quarter to date",
    "YTD": "Year to date",
    "1Y": "One year",
    "3Y": "Three years",
    "5Y": "Five years",
    "max": "Since inception",
    "custom": "Custom range",
}
#: Periods measured back a number of calendar months from their end.
PERIOD_MONTHS: dict[str, int] = {"1M": 1, "3M": 3, "6M": 6, "1Y": 12, "3Y": 36, "5Y": 60, "10Y": 120}
#: Trailing windows of :func:`trailing_returns`: label -> months back (None for YTD and since inception).
TRAILING_PERIODS: dict[str, int | None] = {
    "1M": 1,
    "3M": 3,
    "6M": 6,
    "YTD": None,
    "1Y": 12,
    "3Y": 36,
    "5Y": 60,
    "10Y": 120,
    "since_inception": None,
}
#: The Dashboard's KPI periods, in display order (:func:`kpi_returns`).
KPI_PERIODS: tuple[str, ...] = ("1D", "MTD", "YTD", "1Y")


def base_date(period: str, as_of: dt.date) -> dt.date:
    """The base date of ``period`` (MTD, QTD, YTD or a key of :data:`PERIOD_MONTHS`) for a period ending ``as_of``.

    MTD: the last day of the previous month; QTD: of the previous quarter; YTD: 31 December of the previous year;
    ``nM`` / ``nY``: ``as_of`` minus that many calendar months (``pd.DateOffset``: 2024-02-29 - 1Y = 2023-02-28).
    Raises KeyError for any other period ("max" and "custom" depend on the data, see :func:`period_bounds`).
    """
    if period == "MTD":
        return as_of.replace(day=1) - dt.timedelta(days=1)
    if period == "QTD":
        quarter_first_month = 3 * ((as_of.month - 1) // 3) + 1
        return as_of.replace(month=quarter_first_month, day=1) - dt.timedelta(days=1)
    if period == "YTD":
        return dt.date(as_of.year - 1, 12, 31)
    day: dt.date = (pd.Timestamp(as_of) - pd.DateOffset(months=PERIOD_MONTHS[period])).date()
    return day


def base_level(values: pd.Series, day: dt.date | pd.Timestamp) -> tuple[float, pd.Timestamp] | None:
    """The base of a period starting on ``day``: the last level of ``values`` (NaN-free, sorted) on or before
    ``day`` and its date; None when ``day`` is before the first level."""
    if len(values) == 0:
        return None
    i = int(values.index.searchsorted(pd.Timestamp(day), side="right")) - 1
    if i < 0:
        return None
    return float(values.iloc[i]), values.index[i]


def period_bounds(
    period: str,
    as_of: dt.date | pd.Timestamp,
    first_date: dt.date | pd.Timestamp,
    start: dt.date | str | None = None,
    end: dt.date | str | None = None,
) -> tuple[dt.date, dt.date]:
    """The base date and end date of ``period`` (one of :data:`PERIODS`) for data spanning ``first_date`` .. ``as_of``.

    ``start`` / ``end`` are only used (and then required) for ``custom``. Raises ValidationFailed naming the field:
    ``period`` for an unknown period or one reaching before ``first_date``; ``start`` / ``end`` for a custom range
    that is missing, not a date, not in order, or outside the data.
    """
    as_of_d, first_d = as_date(as_of), as_date(first_date)
    if as_of_d is None or first_d is None:
        raise ValidationFailed({"config_id": "has no computed index values yet; compute it first"})
    if period not in PERIODS:
        raise ValidationFailed({"period": f"unknown period {period!r}; choose one of {', '.join(PERIODS)}"})
    if period == "custom":
        return _custom_bounds(as_of_d, first_d, start, end)
    base = first_d if period == "max" else base_date(period, as_of_d)
    if base < first_d:
        raise ValidationFailed(
            {
                "period": f"{period} needs data from {base}, but the history starts on {first_d}; "
                "choose a shorter period or max"
            }
        )
    if base >= as_of_d:
        raise ValidationFailed({"period": f"{period} holds no data after {base}"})
    return base, as_of_d


def _custom_bounds(
    as_of: dt.date, first: dt.date, start: dt.date | str | None, end: dt.date | str | None
) -> tuple[dt.date, dt.date]:
    errors: dict[str, str] = {}
    s, e = as_date(start), as_date(end)
    if start in (None, ""):
        errors["start"] = "is required for a custom period"
    elif s is None:
        errors["start"] = f"{start!r} is not a date (YYYY-MM-DD)"
    if end in (None, ""):
        errors["end"] = "is required for a custom period"
    elif e is None:
        errors["end"] = f"{end!r} is not a date (YYYY-MM-DD)"
    if errors or s is None or e is None:
        raise ValidationFailed(errors)
    if s >= e:
        raise ValidationFailed({"start": f"must be before the end date ({s} is not before {e})"})
    if s < first:
        errors["start"] = f"{s} is before the first date with data ({first})"
    elif s >= as_of:
        errors["start"] = f"{s} is not before the last date with data ({as_of})"
    if e > as_of:
        errors["end"] = f"{e} is after the last date with data ({as_of})"
    if errors:
        raise ValidationFailed(errors)
    return s, e


def period_series(values: pd.Series, start: dt.date | pd.Timestamp, end: dt.date | pd.Timestamp) -> pd.Series:
    """The levels of ``values`` from the base (the last one on or before ``start``) through ``end``.

    Empty when ``values`` has nothing on or before ``start``. Never modifies ``values``.
    """
    v = values.dropna()
    if v.empty:
        return v
    i0 = int(v.index.searchsorted(pd.Timestamp(start), side="right")) - 1
    i1 = int(v.index.searchsorted(pd.Timestamp(end), side="right"))
    if i0 < 0:
        return v.iloc[0:0]
    seg: pd.Series = v.iloc[i0:i1]
    return seg


def period_return(
    values: pd.Series,
    period: str,
    as_of: dt.date | pd.Timestamp | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> float | None:
    """``V_end / V_base - 1`` of ``values`` over ``period`` ending at its last level (on or before ``as_of`` when
    given), with the bounds of :func:`period_bounds`; None when the history is too short or the base not positive."""
    v = values.dropna()
    if as_of is not None:
        v = v.loc[: pd.Timestamp(as_of)]
    if len(v) < 2:
        return None
    try:
        s, e = period_bounds(period, v.index[-1], v.index[0], start, end)
    except ValidationFailed:
        return None
    seg = period_series(v, s, e)
    if len(seg) < 1 or float(seg.iloc[0]) <= 0:
        return None
    return float(seg.iloc[-1]) / float(seg.iloc[0]) - 1.0


def kpi_returns(values: pd.Series | None, as_of: dt.date | pd.Timestamp | None = None) -> dict[str, float | None]:
    """The Dashboard's KPIs (:data:`KPI_PERIODS`) of a level series ending at its last level on or before ``as_of``.

    ``1D`` is ``V_t / V_{t-1} - 1`` over the last two levels; MTD, YTD and 1Y are :func:`period_return` (the same
    numbers as the reports' periods and :func:`trailing_returns`). None where the history is too short.
    """
    out: dict[str, float | None] = {p: None for p in KPI_PERIODS}
    if values is None:
        return out
    v = values.dropna()
    if as_of is not None:
        v = v.loc[: pd.Timestamp(as_of)]
    if v.empty:
        return out
    if len(v) > 1 and float(v.iloc[-2]) > 0:
        out["1D"] = float(v.iloc[-1]) / float(v.iloc[-2]) - 1.0
    for period in ("MTD", "YTD", "1Y"):
        out[period] = period_return(v, period)
    return out


def trailing_returns(values: pd.Series, as_of: dt.date | pd.Timestamp | None = None) -> dict[str, float | None]:
    """Trailing returns (:data:`TRAILING_PERIODS`) as of ``as_of`` (default: the last date; never the clock).

    Each window's base date is :func:`base_date` of ``as_of`` and its base level :func:`base_level` (None when the
    history does not reach back that far); the end is the last level on or before ``as_of``. Windows longer than one
    year (3Y, 5Y, 10Y) are annualised as ``(1+R)^(365.25/calendar days) - 1`` with the days between the base date
    and the end date; ``since_inception`` is measured from the first level and annualised the same way only when it
    spans more than 365 days (cumulative otherwise).
    """
    v = finite_levels(values)
    out: dict[str, float | None] = {k: None for k in TRAILING_PERIODS}
    if not isinstance(v.index, pd.DatetimeIndex) or len(v) == 0:
        return out
    if as_of is not None:
        v = v.loc[: pd.Timestamp(as_of)]
        if len(v) == 0:
            return out
    end_date = v.index[-1]
    end_value = float(v.iloc[-1])
    as_of_d = pd.Timestamp(as_of if as_of is not None else end_date).date()

    for label, months in TRAILING_PERIODS.items():
        if label == "since_inception":
            base_value, base_day = float(v.iloc[0]), v.index[0]
            if base_day == end_date:
                continue
        else:
            found = base_level(v, base_date(label, as_of_d))
            if found is None:
                continue
            base_value, base_day = found
        if base_value <= 0:
            continue
        total = end_value / base_value - 1.0
        annualise = (months is not None and months > 12) or (
            label == "since_inception" and (end_date - base_day).days > 365
        )
        if annualise:
            days = (end_date - base_day).days
            out[label] = (1.0 + total) ** (DAYS_PER_YEAR / days) - 1.0 if days > 0 and total > -1 else None
        else:
            out[label] = total
    return out


# --------------------------------------------------------------------------- calendar grouping
def calendar_returns(levels: pd.Series, freq: str, *, base_row: bool = False) -> pd.Series:
    """Returns per calendar group (``freq``: ``W-FRI`` weeks, ``M`` months, ``Y`` years) of a level series whose
    first level is the base: each group's last level / the previous group's last level - 1, the first group
    measured from the base.

    With ``base_row`` the base's own group is a row too (its return 0 when the base is alone in it, as a period
    based on 31 December shows that December); without it, groups hold the levels after the base only. Indexed by
    ``pd.Period``; empty with fewer than 2 levels. Levels are taken as given (callers drop NaN where they must).
    """
    if len(levels) < 2 or not isinstance(levels.index, pd.DatetimeIndex):
        return pd.Series(dtype=float)
    body = levels if base_row else levels.iloc[1:]
    last = body.groupby(body.index.to_period(freq)).last()
    prev = last.shift(1)
    prev.iloc[0] = float(levels.iloc[0])
    out: pd.Series = last / prev - 1.0
    return out


def monthly_returns(values: pd.Series) -> pd.DataFrame:
    """Calendar-month returns, rows = year, columns = month 1..12 (NaN without data).

    Return of a month = last level of the month / last level of the previous month - 1; the first month is measured
    from the first level (a partial month). Non-finite levels are dropped first.
    """
    r = calendar_returns(finite_levels(values), "M", base_row=True)
    frame = pd.DataFrame(index=pd.Index([], dtype=int, name="year"), columns=range(1, 13), dtype=float)
    if r.empty:
        return frame
    table = pd.DataFrame({"year": r.index.year, "month": r.index.month, "ret": r.to_numpy()})
    pivot = table.pivot(index="year", columns="month", values="ret")
    out: pd.DataFrame = pivot.reindex(columns=range(1, 13)).rename_axis(index="year", columns="month")
    return out


def yearly_returns(values: pd.Series) -> pd.Series:
    """Calendar-year returns indexed by year (first year measured from the first level; non-finite levels dropped)."""
    r = calendar_returns(finite_levels(values), "Y", base_row=True)
    if r.empty:
        return pd.Series(dtype=float, name="return")
    return pd.Series(r.to_numpy(), index=pd.Index(r.index.year, name="year"), name="return")


#: Column of the year total in :func:`monthly_with_year_total` (after months 1..12).
YEAR_TOTAL = "Year"


def _last_weekday_of_year(year: int) -> dt.date:
    day = dt.date(year, 12, 31)
    while day.weekday() >= 5:
        day -= dt.timedelta(days=1)
    return day


def year_labels(dates: pd.DatetimeIndex, *, to_date: bool = True) -> dict[int, str]:
    """A label per calendar year of ``dates`` (a level series' dates), marking partial years.

    A year's return is measured from the last level of the previous year, so the year holding the first date (the
    base) is partial: "2018 (from 03-28)". A year whose last date is before its last weekday is partial too:
    "2026 (YTD)" when ``to_date`` (the series ends at the latest data), else "2026 (to 06-30)"; both at once:
    "2026 (03-02 to 06-30)". Other years are the plain year ("2019").
    """
    if len(dates) == 0:
        return {}
    idx = pd.DatetimeIndex(dates)
    first, last = idx[0].date(), idx[-1].date()
    labels: dict[int, str] = {}
    for year in sorted({int(y) for y in idx.year}):
        from_start = year == first.year
        cut_end = year == last.year and last < _last_weekday_of_year(year)
        if from_start and cut_end:
            labels[year] = f"{year} ({first:%m-%d} to {last:%m-%d})"
        elif from_start:
            labels[year] = f"{year} (from {first:%m-%d})"
        elif cut_end:
            labels[year] = f"{year} (YTD)" if to_date else f"{year} (to {last:%m-%d})"
        else:
            labels[year] = str(year)
    return labels


def monthly_with_year_total(levels: pd.Series) -> pd.DataFrame:
    """:func:`monthly_returns` of ``levels`` plus a :data:`YEAR_TOTAL` column.

    The year total is :func:`yearly_returns` (the yearly return the reports show), which equals the compounded
    months of the row, ``prod(1 + r_month) - 1``, since both chain the same levels. Rows are years (int); fractions;
    NaN where a month has no data.
    """
    monthly = monthly_returns(levels)
    out = monthly.copy()
    out[YEAR_TOTAL] = yearly_returns(levels).reindex(out.index).to_numpy(dtype=float) if len(out) else []
    return out
