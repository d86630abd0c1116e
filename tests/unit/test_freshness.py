"""The one freshness rule (core.services.freshness), with hand-computed dates.

Calendar used: Friday 13 March 2026. New York is on daylight time from Sunday 8 March 2026, so the
16:00 close is 20:00 UTC that week; in January (standard time) it is 21:00 UTC.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from core.services.freshness import (
    business_days_stale,
    business_days_stale_many,
    last_completed_business_day,
    stale_text,
)

UTC = dt.timezone.utc
FRI = dt.date(2026, 3, 13)
THU = dt.date(2026, 3, 12)


def at(day: int, hour: int, minute: int = 0, month: int = 3) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (at(13, 19, 59), 0),  # Friday 15:59 New York: Thursday is the last completed day, Friday's price is ahead
        (at(13, 20, 0), 0),  # Friday 16:00 New York: Friday completed, Friday's price is current
        (at(14, 12), 0),  # Saturday
        (at(15, 12), 0),  # Sunday
        (at(16, 13), 0),  # Monday 09:00 New York, before the close
        (at(16, 19, 59), 0),  # Monday 15:59 New York
        (at(16, 20, 0), 1),  # Monday 16:00 New York: Monday completed, Friday's price is one day behind
        (at(17, 3), 1),  # Monday 23:00 New York (already Tuesday in UTC): still Monday's close
        (at(17, 21), 2),  # Tuesday after the close
        (at(20, 21), 5),  # the next Friday after the close: Mon..Fri
    ],
)
def test_a_friday_close_seen_later(now: dt.datetime, expected: int) -> None:
    assert business_days_stale(FRI, now) == expected


def test_a_thursday_close_on_friday_before_and_after_the_close() -> None:
    assert business_days_stale(THU, at(13, 19, 59)) == 0
    assert business_days_stale(THU, at(13, 20, 0)) == 1


def test_standard_time_close_is_21_utc() -> None:
    # Friday 9 January 2026; New York is UTC-5.
    thursday = dt.date(2026, 1, 8)
    assert business_days_stale(thursday, at(9, 20, 59, month=1)) == 0
    assert business_days_stale(thursday, at(9, 21, 0, month=1)) == 1


def test_a_bare_date_is_the_start_of_that_day() -> None:
    assert last_completed_business_day(dt.date(2026, 3, 16)) == FRI  # Monday -> Friday
    assert last_completed_business_day(dt.date(2026, 3, 14)) == FRI  # Saturday -> Friday
    assert last_completed_business_day(dt.date(2026, 3, 17)) == dt.date(2026, 3, 16)
    assert business_days_stale(FRI, dt.date(2026, 3, 16)) == 0
    assert business_days_stale(FRI, dt.date(2026, 3, 17)) == 1
    # Friday 27 Feb seen on (the start of) Friday 13 March: 2..6 March and 9..12 March.
    assert business_days_stale(dt.date(2026, 2, 27), FRI) == 9


def test_naive_datetimes_are_utc_and_edges() -> None:
    assert business_days_stale(FRI, dt.datetime(2026, 3, 16, 20, 0)) == 1
    assert business_days_stale(None, at(16, 21)) is None
    assert business_days_stale(dt.date(2026, 3, 20), at(16, 21)) == 0  # a price after the clock: never negative


def test_the_array_version_agrees_with_the_scalar_one() -> None:
    lasts = [dt.date(2026, 2, 27), THU, FRI, dt.date(2026, 3, 16), None]
    now = at(17, 21)
    many = business_days_stale_many(
        np.array([np.datetime64(d) if d else np.datetime64("NaT") for d in lasts], dtype="datetime64[D]"), now
    )
    for last, value in zip(lasts, many):
        scalar = business_days_stale(last, now)
        assert (np.isnan(value) and scalar is None) or value == scalar


def test_the_words() -> None:
    assert [stale_text(n) for n in (0, 1, 2, None)] == [
        "up to date",
        "1 business day stale",
        "2 business days stale",
        "no prices",
    ]
