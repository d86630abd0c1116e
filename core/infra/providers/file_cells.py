"""Cell text to values: dates and numbers parsed column by column (Arrow and numpy), and their row problems.

:func:`_parse_dates` gives each cell a status (:data:`_OK`, blank, unparsable, before :data:`MIN_DATE`, in the
future) and :func:`_date_problems` turns the statuses into problems; :func:`_parse_numbers` and
:func:`_number_problems` do the same for a numeric column against its accepted range.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from core.infra.providers.file_grid import _Problems

#: Earliest accepted price date; the latest is "today" (passed in).
MIN_DATE = date(1900, 1, 1)
#: ISO date with an optional valid time of day (no zone); ASCII digits only (evaluated by Arrow's RE2).
_ISO_DATE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[ T](?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]+)?)?)?"


# --------------------------------------------------------------------------- cell parsing
_OK, _BLANK, _BAD, _EARLY, _FUTURE = range(5)


def _parse_dates(text: pd.Series, today: date) -> tuple[np.ndarray, np.ndarray]:
    """ISO text -> ``(days, status)``: ``datetime64[D]`` (NaT unless OK) and one of _OK/_BLANK/_BAD/_EARLY/_FUTURE.

    Parsed field by field with Arrow and numpy (no Python object per cell, no pandas Timestamp), so a year such
    as 0001 or 9999 is judged on its digits and never meets pandas' nanosecond range; the time, when present,
    must be a valid time of day and is then dropped. A long file repeats each date once per symbol, so the
    distinct texts are parsed when they are few.
    """
    codes, uniques = pd.factorize(text)
    if 2 * len(uniques) <= len(text):
        days, status = _parse_dates(pd.Series(uniques, dtype="str"), today)
        return days[codes], status[codes]
    del codes, uniques
    stripped = pa.array(text.str.strip())
    blank = pc.equal(stripped, "").to_numpy(zero_copy_only=False)
    iso = pc.match_substring_regex(stripped, "^" + _ISO_DATE + "$").to_numpy(zero_copy_only=False)
    digits = pc.if_else(pa.array(iso), stripped, "1970-01-01")

    def field(start: int, stop: int) -> np.ndarray:
        numbers: np.ndarray = pc.cast(pc.utf8_slice_codeunits(digits, start, stop), pa.int32()).to_numpy(
            zero_copy_only=False
        )
        return numbers

    year, month, day = field(0, 4), field(5, 7), field(8, 10)
    del stripped
    real = iso & (month >= 1) & (month <= 12) & (day >= 1) & (day <= 31)
    months = np.where(real, (year.astype(np.int64) - 1970) * 12 + month - 1, 0).astype("datetime64[M]")
    days = months.astype("datetime64[D]") + np.where(real, day - 1, 0).astype("timedelta64[D]")
    real &= days.astype("datetime64[M]") == months  # 2024-02-30 rolls into March: not a date
    early = real & (days < np.datetime64(MIN_DATE, "D"))
    future = real & (days > np.datetime64(today, "D"))
    status = np.full(len(text), _BAD, dtype=np.int8)
    status[blank] = _BLANK
    status[early] = _EARLY
    status[future] = _FUTURE
    status[real & ~early & ~future] = _OK
    days[status != _OK] = np.datetime64("NaT")
    return days, status


def _parse_numbers(text: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Numeric text -> ``(float64 values, blank)``; garbage is NaN (``inf`` stays inf: callers refuse it)."""
    stripped = text.str.strip()
    blank = (stripped == "").to_numpy(dtype=bool)
    values = pd.to_numeric(stripped.where(~blank), errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    return values, blank


def _number_problems(
    found: _Problems,
    values: np.ndarray,
    blank: np.ndarray,
    rows: np.ndarray,
    text: pd.Series,
    column: str,
    name: str,
    bounds: tuple[float, float],
    *,
    required: bool,
) -> np.ndarray:
    """Record the problems of one numeric column; returns the mask of usable values."""
    nan = np.isnan(values)
    infinite = np.isinf(values)
    if required:
        found.add_at(np.flatnonzero(blank), rows, column, f"missing {name}")
    found.add_at(np.flatnonzero(nan & ~blank), rows, column, f"{name} is not a number", text)
    found.add_at(np.flatnonzero(infinite), rows, column, f"{name} is not finite", text)
    finite = ~nan & ~infinite
    with np.errstate(invalid="ignore"):
        non_positive = finite & (values <= 0)
        outside = finite & ~non_positive & ((values < bounds[0]) | (values > bounds[1]))
    found.add_at(np.flatnonzero(non_positive), rows, column, f"{name} must be greater than zero", text)
    found.add_at(
        np.flatnonzero(outside),
        rows,
        column,
        f"{name} is outside the accepted range {bounds[0]:g} to {bounds[1]:g}",
        text,
    )
    usable: np.ndarray = finite & ~non_positive & ~outside
    return usable


def _date_problems(found: _Problems, status: np.ndarray, rows: np.ndarray, text: pd.Series, today: date) -> None:
    found.add_at(np.flatnonzero(status == _BLANK), rows, "date", "missing date")
    found.add_at(np.flatnonzero(status == _BAD), rows, "date", "unparsable date (expected YYYY-MM-DD)", text)
    found.add_at(np.flatnonzero(status == _EARLY), rows, "date", f"date is before {MIN_DATE}", text)
    found.add_at(np.flatnonzero(status == _FUTURE), rows, "date", f"date is in the future (after {today})", text)
