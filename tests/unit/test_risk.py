"""Unit tests of the risk analytics: hand-computed values and standard-library cross-checks."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from core.quant import periods, risk
from core.quant.risk import METRIC_DEFINITIONS, risk_metrics

DATES = pd.bdate_range("2024-01-01", periods=6)  # Mon 1 .. Mon 8 Jan (7 calendar days)
V = pd.Series([100.0, 110.0, 99.0, 108.9, 108.9, 119.79], index=DATES)
# returns: +10 %, -10 %, +10 %, 0, +10 %
R = np.array([0.1, -0.1, 0.1, 0.0, 0.1])
BENCH = pd.Series([100.0, 105.0, 99.75, 99.75, 104.7375, 104.7375], index=DATES)
# benchmark returns: +5 %, -5 %, 0, +5 %, 0
BR = np.array([0.05, -0.05, 0.0, 0.05, 0.0])


def test_hand_computed_basic_metrics():
    m = risk_metrics(V)
    assert m["days"] == 5 and m["start"] == DATES[0] and m["end"] == DATES[-1]
    assert m["total_return"] == pytest.approx(0.1979, rel=1e-12)
    assert m["cagr"] == pytest.approx(1.1979 ** (365.25 / 7) - 1, rel=1e-12)
    mean = 0.2 / 5
    var = ((0.06**2) * 3 + 0.14**2 + 0.04**2) / 4  # deviations from 0.04
    assert m["volatility"] == pytest.approx(math.sqrt(var) * math.sqrt(252), rel=1e-12)
    assert m["sharpe"] == pytest.approx(mean / math.sqrt(var) * math.sqrt(252), rel=1e-12)
    assert m["sortino"] == pytest.approx(mean / math.sqrt(0.01 / 5) * math.sqrt(252), rel=1e-12)
    assert m["max_drawdown"] == pytest.approx(-0.1, rel=1e-12)
    assert m["current_drawdown"] == 0.0
    assert m["calmar"] == pytest.approx(m["cagr"] / 0.1, rel=1e-12)
    # 5 % quantile of sorted [-0.1, 0, 0.1, 0.1, 0.1] with linear interpolation: position 0.2.
    assert m["var_95"] == pytest.approx(-0.1 + 0.2 * 0.1, rel=1e-12)
    assert m["cvar_95"] == pytest.approx(-0.1, rel=1e-12)
    assert m["var_99"] == pytest.approx(-0.1 + 0.04 * 0.1, rel=1e-12)
    assert m["missing"] == {}
    assert "beta" not in m


def test_hand_computed_benchmark_metrics():
    m = risk_metrics(V, BENCH)
    cov = np.sum((R - R.mean()) * (BR - BR.mean())) / 4
    var_b = np.sum((BR - BR.mean()) ** 2) / 4
    beta = cov / var_b
    assert m["beta"] == pytest.approx(beta, rel=1e-12)
    assert m["alpha"] == pytest.approx((R.mean() - beta * BR.mean()) * 252, rel=1e-12)
    active = R - BR
    te = np.std(active, ddof=1) * math.sqrt(252)
    assert m["tracking_error"] == pytest.approx(te, rel=1e-12)
    assert m["information_ratio"] == pytest.approx(active.mean() * 252 / te, rel=1e-12)
    # Up days (b > 0): rows 1 and 4 -> r = 0.1, 0.0 ; b = 0.05, 0.05.
    up = ((1.1 * 1.0) ** (252 / 2) - 1) / ((1.05 * 1.05) ** (252 / 2) - 1)
    assert m["up_capture"] == pytest.approx(up, rel=1e-12)
    down = (0.9**252 - 1) / (0.95**252 - 1)
    assert m["down_capture"] == pytest.approx(down, rel=1e-12)


def test_against_numpy_scipy_pandas_on_random_series():
    rng = np.random.default_rng(0)
    idx = pd.bdate_range("2015-01-01", periods=800)
    v = pd.Series(100 * np.cumprod(1 + rng.normal(4e-4, 0.01, 800)), idx)
    b = pd.Series(100 * np.cumprod(1 + rng.normal(3e-4, 0.009, 800)), idx)
    rf = 0.03
    m = risk_metrics(v, b, rf=rf)
    r, br = v.pct_change().dropna().to_numpy(), b.pct_change().dropna().to_numpy()
    rf_d = (1 + rf) ** (1 / 252) - 1
    assert m["volatility"] == pytest.approx(pd.Series(r).std() * np.sqrt(252), rel=1e-12)
    assert m["sharpe"] == pytest.approx(np.mean(r - rf_d) / np.std(r - rf_d, ddof=1) * np.sqrt(252), rel=1e-10)
    assert m["correlation"] == pytest.approx(np.corrcoef(r, br)[0, 1], rel=1e-10)
    assert m["correlation"] == pytest.approx(stats.pearsonr(r, br)[0], rel=1e-10)
    assert m["beta"] == pytest.approx(stats.linregress(br, r).slope, rel=1e-10)
    assert m["var_95"] == pytest.approx(np.quantile(r, 0.05), rel=1e-12)
    assert m["var_99"] == pytest.approx(pd.Series(r).quantile(0.01), rel=1e-12)
    assert m["cvar_99"] == pytest.approx(r[r <= np.quantile(r, 0.01)].mean(), rel=1e-12)
    dd = v / v.cummax() - 1
    assert m["max_drawdown"] == pytest.approx(dd.min(), rel=1e-12)
    assert set(METRIC_DEFINITIONS) <= set(m)
    for label, formula, unit in METRIC_DEFINITIONS.values():
        assert label and formula and unit in ("fraction", "ratio")


def test_alignment_on_common_dates_and_nan_dropped():
    v = V.copy()
    v.iloc[2] = np.nan
    b = BENCH.drop(DATES[4])
    m = risk_metrics(v, b)
    common = v.dropna().index.intersection(b.index)
    assert m["days"] == len(common) - 1
    assert m["total_return"] == pytest.approx(V[common[-1]] / V[common[0]] - 1)


def test_undefined_values_are_none_with_reason_never_zero_or_inf():
    empty = risk_metrics(pd.Series([], dtype=float))
    assert empty["total_return"] is None and empty["days"] == 0
    assert all(empty[k] is None for k in METRIC_DEFINITIONS if k in empty)
    one = risk_metrics(V.iloc[:2])
    assert one["volatility"] is None and one["missing"]["volatility"] == "fewer than 2 returns"
    flat = pd.Series(100.0, index=DATES)
    m = risk_metrics(flat, flat)
    assert m["sharpe"] is None and m["missing"]["sharpe"] == "zero variance"
    assert m["beta"] is None and "zero variance" in m["missing"]["beta"]
    assert m["calmar"] is None and m["sortino"] is None
    assert m["information_ratio"] is None
    up_only = risk_metrics(V, pd.Series(np.linspace(100, 110, 6), index=DATES))
    assert up_only["down_capture"] is None and "down" in up_only["missing"]["down_capture"]
    for value in m.values():
        if isinstance(value, float):
            assert math.isfinite(value)


def test_functions_do_not_modify_inputs():
    v, b = V.copy(), BENCH.copy()
    risk_metrics(v, b)
    risk.rolling_metrics(v, b, windows=(3,))
    risk.drawdown_table(v)
    periods.trailing_returns(v)
    pd.testing.assert_series_equal(v, V)
    pd.testing.assert_series_equal(b, BENCH)


def test_rolling_metrics_match_scalar_definitions_and_pandas():
    rng = np.random.default_rng(5)
    idx = pd.bdate_range("2020-01-01", periods=300)
    v = pd.Series(100 * np.cumprod(1 + rng.normal(5e-4, 0.01, 300)), idx)
    b = pd.Series(100 * np.cumprod(1 + rng.normal(3e-4, 0.008, 300)), idx)
    roll = risk.rolling_metrics(v, b, windows=(63, 252), rf=0.02)
    assert list(roll.columns) == ["vol_63", "sharpe_63", "beta_63", "vol_252", "sharpe_252", "beta_252"]
    assert roll["vol_63"].iloc[:63].isna().all() and not math.isnan(roll["vol_63"].iloc[63])
    for end in (63, 150, 299):
        window_v, window_b = v.iloc[end - 63 : end + 1], b.iloc[end - 63 : end + 1]
        m = risk_metrics(window_v, window_b, rf=0.02)
        assert roll["vol_63"].iloc[end] == pytest.approx(m["volatility"], rel=1e-9)
        assert roll["sharpe_63"].iloc[end] == pytest.approx(m["sharpe"], rel=1e-9)
        assert roll["beta_63"].iloc[end] == pytest.approx(m["beta"], rel=1e-9)
    expected = v.pct_change().rolling(252).std() * np.sqrt(252)
    pd.testing.assert_series_equal(roll["vol_252"], expected, check_names=False)
    flat = risk.rolling_metrics(pd.Series(100.0, index=idx), windows=(63,))
    assert flat["sharpe_63"].isna().all()


def test_drawdown_series_and_table_by_hand():
    idx = pd.bdate_range("2024-01-01", periods=9)
    v = pd.Series([100, 120, 90, 96, 120, 130, 117, 104, 110.0], idx)
    dd = risk.drawdown_series(v)
    assert dd.iloc[2] == pytest.approx(-0.25) and dd.iloc[4] == 0.0
    table = risk.drawdown_table(v)
    assert list(table.columns) == ["start", "trough", "recovery", "depth", "length", "duration_to_trough"]
    assert len(table) == 2
    first = table.iloc[0]  # deepest: 120 -> 90, recovered at row 4
    assert first["start"] == idx[1] and first["trough"] == idx[2] and first["recovery"] == idx[4]
    assert first["depth"] == pytest.approx(-0.25) and first["length"] == 3 and first["duration_to_trough"] == 1
    second = table.iloc[1]  # 130 -> 104, not recovered
    assert second["start"] == idx[5] and pd.isna(second["recovery"])
    assert second["depth"] == pytest.approx(-0.2) and second["length"] == 3
    assert second["duration_to_trough"] == 2
    assert len(risk.drawdown_table(v, top=1)) == 1
    assert risk.drawdown_table(pd.Series([1.0, 2.0], idx[:2])).empty


def test_monthly_and_yearly_returns_by_hand():
    idx = pd.DatetimeIndex(["2023-12-15", "2023-12-29", "2024-01-15", "2024-01-31", "2024-03-29"])
    v = pd.Series([100, 110, 120, 121, 133.1], idx)
    monthly = periods.monthly_returns(v)
    assert list(monthly.columns) == list(range(1, 13))
    assert monthly.loc[2023, 12] == pytest.approx(0.1)
    assert monthly.loc[2024, 1] == pytest.approx(0.1)
    assert math.isnan(monthly.loc[2024, 2])
    assert monthly.loc[2024, 3] == pytest.approx(0.1)
    yearly = periods.yearly_returns(v)
    assert yearly[2023] == pytest.approx(0.1) and yearly[2024] == pytest.approx(0.21)
    assert periods.monthly_returns(pd.Series([], dtype=float)).empty


def test_trailing_returns_by_hand():
    idx = pd.bdate_range("2020-01-01", "2024-06-28")
    v = pd.Series(np.linspace(100, 200, len(idx)), idx)
    t = periods.trailing_returns(v)
    as_of = idx[-1]
    assert t["1M"] == pytest.approx(v.iloc[-1] / v.loc[: as_of - pd.DateOffset(months=1)].iloc[-1] - 1)
    assert t["YTD"] == pytest.approx(v.iloc[-1] / v.loc["2023-12-29"] - 1)
    base3 = v.loc[: as_of - pd.DateOffset(years=3)]
    days = (as_of - base3.index[-1]).days
    assert t["3Y"] == pytest.approx((v.iloc[-1] / base3.iloc[-1]) ** (365.25 / days) - 1)
    assert t["5Y"] is None and t["10Y"] is None
    assert t["since_inception"] == pytest.approx(2 ** (365.25 / (as_of - idx[0]).days) - 1)
    short = periods.trailing_returns(v.iloc[:40])
    assert short["since_inception"] == pytest.approx(v.iloc[39] / 100 - 1)  # cumulative under a year
    assert short["1Y"] is None
    past = periods.trailing_returns(v, as_of=pd.Timestamp("2022-03-31"))
    assert past["1M"] == pytest.approx(v.loc["2022-03-31"] / v.loc["2022-02-28"] - 1)
    assert periods.trailing_returns(pd.Series([], dtype=float))["1M"] is None


def test_correlation_matrix_matches_numpy():
    rng = np.random.default_rng(2)
    idx = pd.bdate_range("2024-01-01", periods=50)
    prices = pd.DataFrame(100 * np.cumprod(1 + rng.normal(0, 0.01, (50, 3)), axis=0), idx, list("XYZ"))
    before = prices.copy()
    corr = risk.correlation_matrix(prices)
    r = prices.pct_change().dropna().to_numpy()
    np.testing.assert_allclose(corr.to_numpy(), np.corrcoef(r.T), rtol=1e-10)
    pd.testing.assert_frame_equal(prices, before)
    assert risk.correlation_matrix(pd.DataFrame()).empty
