"""The one period math (core.quant.periods): hand-computed answers, independent references (pandas resampling,
plain loops) and properties; plus the guard that no other module grows its own copy."""

from __future__ import annotations

import ast
import datetime as dt
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.errors import ValidationFailed
from core.quant import periods as P

D = dt.date
ROOT = Path(__file__).resolve().parents[2]


def _levels(n: int = 700, seed: int = 11, start: str = "2021-03-01") -> pd.Series:
    rng = np.random.default_rng(seed)
    idx = pd.bdate_range(start, periods=n, name="date")
    return pd.Series(100 * np.exp(np.cumsum(rng.normal(3e-4, 0.011, n))), index=idx, name="index")


# --------------------------------------------------------------------------- as_date
@pytest.mark.parametrize(
    "value, expected",
    [
        (D(2026, 3, 14), D(2026, 3, 14)),
        (dt.datetime(2026, 3, 14, 23, 59), D(2026, 3, 14)),
        (pd.Timestamp("2026-03-14 10:00"), D(2026, 3, 14)),
        ("2026-03-14", D(2026, 3, 14)),
        ("2026-03-14 00:00:00.000000", D(2026, 3, 14)),  # how SQLite returns a DATETIME
        (None, None),
        ("", None),
        ("2026-13-01", None),
        ("not a date", None),
        (pd.NaT, None),
    ],
)
def test_as_date(value, expected):
    assert P.as_date(value) == expected


# --------------------------------------------------------------------------- base dates
@pytest.mark.parametrize(
    "period, as_of, expected",
    [
        ("MTD", D(2026, 3, 14), D(2026, 2, 28)),
        ("MTD", D(2024, 3, 1), D(2024, 2, 29)),  # leap year
        ("MTD", D(2026, 1, 15), D(2025, 12, 31)),
        ("QTD", D(2026, 3, 14), D(2025, 12, 31)),
        ("QTD", D(2026, 8, 3), D(2026, 6, 30)),
        ("QTD", D(2026, 12, 31), D(2026, 9, 30)),
        ("YTD", D(2026, 1, 2), D(2025, 12, 31)),
        ("1M", D(2026, 3, 31), D(2026, 2, 28)),  # month arithmetic clips to the month's end
        ("3M", D(2026, 5, 31), D(2026, 2, 28)),
        ("6M", D(2026, 8, 31), D(2026, 2, 28)),
        ("1Y", D(2024, 2, 29), D(2023, 2, 28)),
        ("3Y", D(2026, 3, 14), D(2023, 3, 14)),
        ("5Y", D(2026, 3, 14), D(2021, 3, 14)),
        ("10Y", D(2026, 3, 14), D(2016, 3, 14)),
    ],
)
def test_base_dates_by_hand(period, as_of, expected):
    assert P.base_date(period, as_of) == expected


def test_base_date_of_max_and_custom_is_not_defined_without_data():
    with pytest.raises(KeyError):
        P.base_date("max", D(2026, 3, 14))


def test_period_bounds_use_the_base_dates():
    for period in ("MTD", "QTD", "YTD", "1Y", "3Y", "5Y"):
        assert P.period_bounds(period, D(2026, 11, 26), D(2020, 1, 2)) == (
            P.base_date(period, D(2026, 11, 26)),
            D(2026, 11, 26),
        )
    assert P.period_bounds("max", pd.Timestamp("2026-11-26"), pd.Timestamp("2020-01-02")) == (
        D(2020, 1, 2),
        D(2026, 11, 26),
    )
    with pytest.raises(ValidationFailed) as err:
        P.period_bounds("3Y", D(2026, 11, 26), D(2024, 1, 2))
    assert set(err.value.errors) == {"period"}


def test_base_level_is_the_last_level_on_or_before_the_day():
    v = pd.Series([1.0, 2.0, 3.0], index=pd.DatetimeIndex(["2024-01-05", "2024-01-08", "2024-01-09"]))
    assert P.base_level(v, D(2024, 1, 7)) == (1.0, pd.Timestamp("2024-01-05"))  # Sunday -> Friday
    assert P.base_level(v, D(2024, 1, 8)) == (2.0, pd.Timestamp("2024-01-08"))
    assert P.base_level(v, D(2024, 1, 4)) is None
    assert P.base_level(v.iloc[0:0], D(2024, 1, 8)) is None


# --------------------------------------------------------------------------- returns over periods
def test_kpi_returns_by_hand():
    idx = pd.DatetimeIndex(["2024-12-31", "2025-03-14", "2025-12-31", "2026-02-27", "2026-03-02", "2026-03-13"])
    v = pd.Series([80.0, 90.0, 100.0, 110.0, 105.0, 121.0], idx)
    k = P.kpi_returns(v)
    assert list(k) == list(P.KPI_PERIODS)
    assert k["1D"] == pytest.approx(121 / 105 - 1)
    assert k["MTD"] == pytest.approx(121 / 110 - 1)  # base: last level on or before 28 Feb (27 Feb)
    assert k["YTD"] == pytest.approx(121 / 100 - 1)
    assert k["1Y"] == pytest.approx(121 / 80 - 1)  # base date 13 Mar 2025: the level of 31 Dec 2024
    # as_of cuts the series: on 2 March the MTD base is still 27 Feb
    k2 = P.kpi_returns(v, pd.Timestamp("2026-03-02"))
    assert k2["1D"] == pytest.approx(105 / 110 - 1) and k2["MTD"] == pytest.approx(105 / 110 - 1)


def test_kpi_1y_base_before_the_window_is_the_last_level_on_or_before():
    idx = pd.DatetimeIndex(["2024-12-31", "2025-03-14", "2026-03-13"])
    v = pd.Series([80.0, 90.0, 99.0], idx)
    # 1Y base date is 13 Mar 2025: the last level on or before it is 31 Dec 2024 (80), not 14 Mar 2025.
    assert P.kpi_returns(v)["1Y"] == pytest.approx(99 / 80 - 1)


def test_kpis_are_none_when_the_history_is_too_short():
    v = pd.Series([100.0, 101.0], index=pd.DatetimeIndex(["2026-03-12", "2026-03-13"]))
    k = P.kpi_returns(v)
    assert k["1D"] == pytest.approx(0.01)
    assert k["MTD"] is None and k["YTD"] is None and k["1Y"] is None
    assert P.kpi_returns(None) == {p: None for p in P.KPI_PERIODS}
    assert P.kpi_returns(pd.Series([], dtype=float)) == {p: None for p in P.KPI_PERIODS}


@pytest.mark.parametrize("seed", range(5))
def test_kpis_trailing_and_period_returns_are_one_rule(seed):
    """On random data and random as-of dates, every non-annualised number agrees to the last bit."""
    v = _levels(seed=seed)
    rng = np.random.default_rng(seed)
    for pos in rng.integers(1, len(v), 12):
        cut = v.iloc[: pos + 1]
        as_of = cut.index[-1]
        k = P.kpi_returns(v, as_of)
        t = P.trailing_returns(v, as_of)
        for period in ("MTD", "YTD", "1Y"):
            assert k[period] == P.period_return(cut, period)
        for period in ("YTD", "1Y"):
            assert k[period] == t[period]
        for label in ("1M", "3M", "6M"):
            expected = None
            base_day = as_of - pd.DateOffset(months=P.PERIOD_MONTHS[label])
            if base_day >= cut.index[0]:
                expected = float(cut.iloc[-1]) / float(cut.loc[:base_day].iloc[-1]) - 1.0
            assert t[label] == expected


def test_trailing_returns_annualise_beyond_a_year_like_cagr():
    v = _levels(n=1000)
    t = P.trailing_returns(v)
    end = v.index[-1]
    base_day = P.base_level(v, P.base_date("3Y", end.date()))
    assert base_day is not None
    value, day = base_day
    days = (end - day).days
    assert t["3Y"] == pytest.approx((v.iloc[-1] / value) ** (365.25 / days) - 1.0, rel=1e-12)
    assert t["5Y"] is None


def test_functions_do_not_modify_inputs():
    v = _levels()
    kept = v.copy()
    P.kpi_returns(v)
    P.trailing_returns(v)
    P.period_return(v, "YTD")
    P.monthly_with_year_total(v)
    P.calendar_returns(v, "W-FRI")
    pd.testing.assert_series_equal(v, kept)


# --------------------------------------------------------------------------- calendar grouping
def test_calendar_returns_match_pandas_resampling():
    v = _levels()
    for freq, rule in (("M", "ME"), ("W-FRI", "W-FRI"), ("Y", "YE")):
        ours = P.calendar_returns(v, freq, base_row=True)
        last = v.resample(rule).last().dropna()
        reference = last / last.shift(1) - 1.0
        reference.iloc[0] = last.iloc[0] / v.iloc[0] - 1.0
        np.testing.assert_allclose(ours.to_numpy(), reference.to_numpy(), rtol=1e-13, atol=1e-15)


def test_calendar_returns_compound_to_the_period_return():
    v = _levels()
    total = v.iloc[-1] / v.iloc[0] - 1.0
    for freq in ("W-FRI", "M", "Y"):
        for base_row in (False, True):
            r = P.calendar_returns(v, freq, base_row=base_row)
            assert float(np.prod(1.0 + r.to_numpy()) - 1.0) == pytest.approx(total, rel=1e-12)


def test_base_row_only_adds_the_base_group():
    """A period based on 31 December: the year table shows that December (0), the stress table does not."""
    idx = pd.DatetimeIndex(["2025-12-31", "2026-01-02", "2026-01-30", "2026-02-27"])
    v = pd.Series([100.0, 101.0, 110.0, 99.0], idx)
    with_base = P.calendar_returns(v, "M", base_row=True)
    without = P.calendar_returns(v, "M")
    assert [str(p) for p in with_base.index] == ["2025-12", "2026-01", "2026-02"]
    assert [str(p) for p in without.index] == ["2026-01", "2026-02"]
    assert with_base.iloc[0] == 0.0
    assert with_base.iloc[1:].tolist() == pytest.approx([0.1, 99 / 110 - 1]) == without.tolist()
    assert P.calendar_returns(v.iloc[:1], "M").empty


def test_monthly_year_total_is_the_yearly_return_and_the_compounded_months():
    v = _levels()
    table = P.monthly_with_year_total(v)
    yearly = P.yearly_returns(v)
    np.testing.assert_allclose(table[P.YEAR_TOTAL].to_numpy(), yearly.to_numpy(), rtol=1e-15)
    months = table.drop(columns=[P.YEAR_TOTAL]).to_numpy(dtype=float)
    np.testing.assert_allclose(np.nanprod(1 + months, axis=1) - 1, yearly.to_numpy(), rtol=1e-12)


def test_monthly_and_yearly_drop_non_finite_levels():
    v = _levels(n=60)
    dirty = v.copy()
    dirty.iloc[[5, 20]] = [np.nan, np.inf]
    clean = v.drop(v.index[[5, 20]])
    pd.testing.assert_frame_equal(P.monthly_returns(dirty), P.monthly_returns(clean))
    assert math.isnan(P.monthly_returns(v).loc[2021, 1])


# --------------------------------------------------------------------------- one home
_PERIOD_FUNCTIONS = {
    "as_date",
    "period_bounds",
    "period_series",
    "period_return",
    "trailing_returns",
    "monthly_returns",
    "yearly_returns",
    "year_labels",
    "monthly_with_year_total",
    "period_returns",
    "kpi_returns",
    "calendar_returns",
    "base_date",
    "_period_returns",
    "_grouped_returns",
}


def test_the_period_math_has_one_home():
    """No module of the application defines a period function but core/quant/periods.py (a second copy drifts)."""
    owners: dict[str, list[str]] = {}
    for folder in ("core", "ui", "jobs", "cli", "pages"):
        for path in (ROOT / folder).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name in _PERIOD_FUNCTIONS:
                    owners.setdefault(node.name, []).append(str(path.relative_to(ROOT)))
    elsewhere = {name: files for name, files in owners.items() if files != ["core/quant/periods.py"]}
    assert not elsewhere


def test_callers_reach_the_period_math_in_its_one_home():
    """Period and calendar functions are not re-exported by risk, analytics or the dashboard: one name, one home."""
    from core.quant import risk
    from core.services import analytics, dashboard

    for name in ("trailing_returns", "monthly_returns", "yearly_returns", "TRAILING_PERIODS"):
        assert not hasattr(risk, name), f"core.quant.risk.{name}"
    for name in ("period_return", "year_labels", "PERIODS", "PERIOD_LABELS", "YEAR_TOTAL", "monthly_with_year_total"):
        assert not hasattr(analytics, name), f"core.services.analytics.{name}"
    assert dashboard.kpi_returns is P.kpi_returns
