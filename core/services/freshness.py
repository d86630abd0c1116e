"""Data freshness: the one rule every screen (Dashboard, Data, Diagnostics) and the health CLI use.

Rule
    ``stale_days`` = the number of business days (Monday to Friday) ``d`` with
    ``last_price_date < d <= last_completed_business_day(today)``; 0 when the last price is on or after
    the last completed business day; None when there is no price at all.

    The *last completed business day* is the latest weekday whose close has happened at ``today``: a weekday
    counts from :data:`MARKET_CLOSE` (16:00 New York time, the US cash close; daylight saving handled) on.
    So a Friday close is 0 business days stale all weekend and on Monday until Monday's close, and 1 after it.

``today`` is passed in (tests control the clock): a timezone-aware ``datetime`` is compared with the close
exactly; a naive ``datetime`` is read as UTC; a bare ``date`` means the start of that day (its own close has
not happened yet). ``None`` means now (UTC).

Exchange holidays are not known here: a holiday counts as a business day, so the day after one a price
series can read one business day staler than the exchange calendar would say.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "MARKET_CLOSE",
    "STALE_LABEL",
    "STALE_HELP",
    "last_completed_business_day",
    "business_days_stale",
    "business_days_stale_many",
    "stale_text",
]

#: The daily close (local time of :data:`MARKET_TIMEZONE`) after which a weekday counts as completed.
MARKET_CLOSE = dt.time(16, 0)
MARKET_TIMEZONE = "America/New_York"
#: 16:00 New York is 21:00 UTC in winter and 20:00 in summer; without a time-zone database the later one is used.
_FALLBACK_CLOSE_UTC = dt.time(21, 0)
#: The words every screen uses for the number (a column header or a metric label).
STALE_LABEL = "Business days stale"
STALE_HELP = (
    "Business days (Mon-Fri) between the last price and the last completed business day "
    "(a weekday counts once its 16:00 New York close has passed); 0 = up to date."
)


def _close_utc(day: dt.date) -> dt.datetime:
    """The close of ``day`` as an aware UTC datetime."""
    try:
        from zoneinfo import ZoneInfo

        local = dt.datetime.combine(day, MARKET_CLOSE, tzinfo=ZoneInfo(MARKET_TIMEZONE))
        return local.astimezone(dt.timezone.utc)
    except Exception:  # no time-zone database on this host: the later (winter) UTC close
        return dt.datetime.combine(day, _FALLBACK_CLOSE_UTC, tzinfo=dt.timezone.utc)


def _previous_weekday(day: dt.date) -> dt.date:
    day -= dt.timedelta(days=1)
    while day.weekday() >= 5:
        day -= dt.timedelta(days=1)
    return day


def last_completed_business_day(today: dt.date | dt.datetime | None = None) -> dt.date:
    """The latest weekday whose close has happened at ``today`` (see the module docstring for ``today``)."""
    if today is None:
        today = dt.datetime.now(dt.timezone.utc)
    if isinstance(today, dt.datetime):
        now = today if today.tzinfo is not None else today.replace(tzinfo=dt.timezone.utc)
        now = now.astimezone(dt.timezone.utc)
        # The calendar day on the exchange's clock decides which close is next.
        day = _local_date(now)
        if day.weekday() < 5 and now >= _close_utc(day):
            return day
        return _previous_weekday(day)
    return _previous_weekday(today)


def _local_date(now_utc: dt.datetime) -> dt.date:
    try:
        from zoneinfo import ZoneInfo

        return now_utc.astimezone(ZoneInfo(MARKET_TIMEZONE)).date()
    except Exception:
        return now_utc.date()


def business_days_stale(last_price_date: dt.date | None, today: dt.date | dt.datetime | None = None) -> int | None:
    """Business days between ``last_price_date`` and the last completed business day (module docstring).

    None when ``last_price_date`` is None (no prices); never negative.
    """
    if last_price_date is None:
        return None
    if isinstance(last_price_date, dt.datetime):
        last_price_date = last_price_date.date()
    completed = last_completed_business_day(today)
    if last_price_date >= completed:
        return 0
    return int(np.busday_count(last_price_date + dt.timedelta(days=1), completed + dt.timedelta(days=1)))


def business_days_stale_many(last_price_dates: Any, today: dt.date | dt.datetime | None = None) -> np.ndarray:
    """:func:`business_days_stale` over an array of dates (``datetime64[D]``, NaT = no prices -> NaN)."""
    last = np.asarray(last_price_dates, dtype="datetime64[D]")
    out = np.full(last.shape, np.nan)
    has = ~np.isnat(last)
    if has.any():
        completed = np.datetime64(last_completed_business_day(today), "D")
        counts = np.busday_count(last[has] + np.timedelta64(1, "D"), completed + np.timedelta64(1, "D"))
        out[has] = np.maximum(counts, 0)
    return out


def stale_text(stale_days: int | None) -> str:
    """The words shown for a number of stale business days: "up to date", "1 business day stale", ..."""
    if stale_days is None or pd.isna(stale_days):
        return "no prices"
    n = int(stale_days)
    if n <= 0:
        return "up to date"
    return f"{n} business day{'s' if n != 1 else ''} stale"
