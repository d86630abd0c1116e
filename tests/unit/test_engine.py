"""Unit tests of the index engine: hand-computed cases, properties and reference implementations."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.quant.engine import BacktestInputError, _apply_cap, backtest, rebalance_schedule
from core.schemas.strategy import StrategyConfig

# Twelve business days, Mon 2024-01-01 .. Tue 2024-01-16. Weekly period ends: rows 4 (Fri 5th)
# and 9 (Fri 12th); the last row (Tue) closes no week.
DATES = pd.bdate_range("2024-01-01", periods=12)
A = [10, 11, 12, 11, 12, 13, 12, 13, 14, 15, 14, 15]
B = [20, 20, 21, 22, 21, 20, 21, 22, 22, 23, 24, 24]
C = [5, 5.5, 5, 5.5, 6, 6, 5.5, 6, 6.5, 6, 6.5, 7]


def three_assets(c=C) -> pd.DataFrame:
    return pd.DataFrame({"A": A, "B": B, "C": c}, index=DATES, dtype=float)


def cfg(**kw) -> StrategyConfig:
    base = dict(min_history=1, rebalance="weekly", return_clip=None)
    base.update(kw)
    return StrategyConfig(**base)


# --- sleeves, hand-computed -------------------------------------------------------------------


def test_equal_weight_weekly_levels_by_hand():
    res = backtest(three_assets(), cfg(equal=1))
    assert list(res.rebalance_dates) == [DATES[0], DATES[4], DATES[9]]
    v4 = 100 / 3 * (12 / 10 + 21 / 20 + 6 / 5)
    assert v4 == pytest.approx(115.0, rel=1e-14)
    v9 = v4 / 3 * (15 / 12 + 23 / 21 + 6 / 6)
    v11 = v9 / 3 * (15 / 15 + 24 / 23 + 7 / 6)
    assert res.values.iloc[4] == pytest.approx(v4, rel=1e-14)
    assert res.values.iloc[9] == pytest.approx(v9, rel=1e-14)
    assert res.values.iloc[11] == pytest.approx(v11, rel=1e-14)
    assert res.values.iloc[0] == 100.0
    np.testing.assert_allclose(res.target_weights.to_numpy(), np.full((3, 3), 1 / 3), rtol=1e-15)


def test_drift_between_rebalances_by_hand():
    res = backtest(three_assets(), cfg(equal=1))
    # Row 1: A and C up 10 %, B flat; weights drift with prices.
    np.testing.assert_allclose(res.weights.iloc[1].to_numpy(), [1.1 / 3.2, 1 / 3.2, 1.1 / 3.2], rtol=1e-14)
    np.testing.assert_allclose(res.weights.iloc[3].to_numpy(), [1.1 / 3.3, 1.1 / 3.3, 1.1 / 3.3], rtol=1e-14)
    assert res.values.iloc[1] == pytest.approx(100 * 3.2 / 3, rel=1e-14)


def test_momentum_sleeve_by_hand():
    res = backtest(three_assets(), cfg(momentum=1, momentum_lookback=2))
    # First allocation needs 2 returns: row 2. Momentum A 12/10-1=0.2, B 21/20-1=0.05, C 5/5-1=0.
    assert res.rebalance_dates[0] == DATES[2]
    np.testing.assert_allclose(res.target_weights.iloc[0].to_numpy(), [0.8, 0.2, 0.0], rtol=1e-12)
    # Row 4: A 12/12-1=0, B 21/21-1=0, C 6/5-1=0.2 -> all in C.
    np.testing.assert_allclose(res.target_weights.loc[DATES[4]].to_numpy(), [0, 0, 1.0], atol=1e-12)
    assert (res.values.iloc[:2] == 100).all()


def test_momentum_threshold_excludes_and_weights_by_excess():
    res = backtest(three_assets(), cfg(momentum=1, momentum_lookback=2, momentum_threshold=0.04))
    # Excess over 0.04: A 0.16, B 0.01, C none.
    np.testing.assert_allclose(
        res.target_weights.iloc[0].to_numpy(), [0.16 / 0.17, 0.01 / 0.17, 0], rtol=1e-12, atol=1e-15
    )


def test_market_cap_sleeve_and_sqrt_damping():
    prices = three_assets()
    caps = prices * [1.0, 2.0, 3.0]
    res = backtest(prices, cfg(market_cap=1), caps)
    np.testing.assert_allclose(res.target_weights.iloc[0].to_numpy(), [10 / 65, 40 / 65, 15 / 65], rtol=1e-14)
    res = backtest(prices, cfg(market_cap=1, market_cap_sqrt=True), caps)
    s = np.sqrt([10.0, 40.0, 15.0])
    np.testing.assert_allclose(res.target_weights.iloc[0].to_numpy(), s / s.sum(), rtol=1e-14)


@pytest.mark.parametrize(
    "caps",
    [None, pd.DataFrame(), pd.DataFrame(np.nan, index=DATES, columns=["A", "B", "C"])],
    ids=["none", "empty-frame", "all-missing"],
)
def test_no_market_caps_leaves_the_sleeve_out_and_renormalises_the_others(caps):
    """Issue 12: a real provider without caps; the market-cap sleeve follows the empty-sleeve rule."""
    res = backtest(three_assets(), cfg(market_cap=0.3, equal=0.7), caps)
    # Equal sleeve alone, scaled from 0.7 to 1: exactly the pure equal-weight index.
    pure = backtest(three_assets(), cfg(equal=1))
    np.testing.assert_allclose(res.target_weights.to_numpy(), np.full((3, 3), 1 / 3), rtol=1e-15)
    np.testing.assert_allclose(res.values.to_numpy(), pure.values.to_numpy(), rtol=1e-15)
    named = [w for w in res.warnings if "market_cap sleeve" in w]
    assert len(named) == 1 and named[0].startswith("no market caps: the market_cap sleeve (weight 0.3)")
    assert "other sleeves were scaled up" in named[0]


def test_market_caps_for_some_assets_leave_only_those_out_of_the_sleeve():
    prices = three_assets()
    caps = prices * [1.0, 2.0, 0.0]
    caps["C"] = np.nan  # C never has a cap
    res = backtest(prices, cfg(market_cap=0.5, equal=0.5), caps)
    # Row 0: cap sleeve over A and B only: A 10, B 40 -> 0.2, 0.8; blended with equal 1/3 each.
    expected = 0.5 * np.array([0.2, 0.8, 0.0]) + 0.5 / 3
    np.testing.assert_allclose(res.target_weights.iloc[0].to_numpy(), expected, rtol=1e-14)
    assert any(w.startswith("no market caps for C: left out of the market_cap sleeve") for w in res.warnings)
    assert not any("had no eligible asset" in w for w in res.warnings)


def test_market_caps_of_the_wrong_type_are_still_refused():
    with pytest.raises(BacktestInputError) as info:
        backtest(three_assets(), cfg(market_cap=0.5, equal=0.5), market_caps=[1, 2, 3])
    assert "market_caps" in info.value.errors
    assert isinstance(info.value, ValueError)


def test_risk_parity_sleeve_matches_numpy_std():
    prices = three_assets()
    res = backtest(prices, cfg(risk_parity=1, risk_parity_lookback=3))
    # First allocation: 2 valid returns exist at row 2.
    assert res.rebalance_dates[0] == DATES[2]
    rets = prices.to_numpy()[1:] / prices.to_numpy()[:-1] - 1  # row i+1 return
    window = rets[1:4]  # returns of rows 2, 3, 4 (lookback 3 ending at row 4)
    inv = 1 / np.std(window, axis=0, ddof=1)
    np.testing.assert_allclose(res.target_weights.loc[DATES[4]].to_numpy(), inv / inv.sum(), rtol=1e-12)
    first = 1 / np.std(rets[0:2], axis=0, ddof=1)
    np.testing.assert_allclose(res.target_weights.iloc[0].to_numpy(), first / first.sum(), rtol=1e-12)


def test_empty_sleeve_is_renormalised_with_warning():
    res = backtest(three_assets(), cfg(equal=0.5, momentum=0.5, momentum_lookback=2))
    # Row 0: no momentum yet -> pure equal weight.
    np.testing.assert_allclose(res.target_weights.iloc[0].to_numpy(), [1 / 3] * 3, rtol=1e-14)
    # Row 4: blend of equal and momentum (all in C).
    np.testing.assert_allclose(res.target_weights.loc[DATES[4]].to_numpy(), [1 / 6, 1 / 6, 2 / 3], rtol=1e-12)
    assert any("momentum sleeve had no eligible asset on 1" in w for w in res.warnings)


# --- constraints ---------------------------------------------------------------------------


def test_cap_redistribution_cascades_until_nothing_breaches():
    np.testing.assert_allclose(_apply_cap(np.array([0.5, 0.3, 0.2]), 0.4), [0.4, 0.36, 0.24], rtol=1e-14)
    # 0.6 capped -> 0.3, 0.1 scaled by 1.625 -> 0.4875 breaches -> capped too -> remainder 0.3.
    np.testing.assert_allclose(_apply_cap(np.array([0.6, 0.3, 0.1]), 0.35), [0.35, 0.35, 0.3], rtol=1e-14)


def test_max_weight_in_backtest_by_hand():
    prices = three_assets()
    res = backtest(prices, cfg(market_cap=1, max_weight=0.5), prices * [1.0, 2.0, 3.0])
    # [10, 40, 15]/65: B capped at 0.5, excess 0.1154 spread pro rata -> A 13/65, C 19.5/65.
    np.testing.assert_allclose(res.target_weights.iloc[0].to_numpy(), [0.2, 0.5, 0.3], rtol=1e-12)


def test_infeasible_cap_holds_cash_and_warns():
    res = backtest(three_assets(), cfg(equal=1, max_weight=0.25))
    np.testing.assert_allclose(res.target_weights.iloc[0].to_numpy(), [0.25] * 3)
    assert res.cash.iloc[0] == pytest.approx(0.25)
    assert any("max_weight" in w for w in res.warnings)
    v4 = 25 * (1.2 + 1.05 + 1.2) + 25
    assert res.values.iloc[4] == pytest.approx(v4, rel=1e-14)


def test_top_n_keeps_largest_blended_weights():
    prices = three_assets()
    res = backtest(prices, cfg(market_cap=1, top_n=2), prices * [1.0, 2.0, 3.0])
    np.testing.assert_allclose(res.target_weights.iloc[0].to_numpy(), [0, 40 / 55, 15 / 55], rtol=1e-14)


def test_min_history_delays_first_allocation():
    res = backtest(three_assets(), cfg(equal=1, min_history=3))
    assert res.rebalance_dates[0] == DATES[2]
    assert (res.values.iloc[:3] == 100).all()


# --- costs, drift band, delisting, late listing ---------------------------------------------


def test_costs_by_hand():
    res = backtest(three_assets(), cfg(equal=1, cost_bps=100))
    assert res.turnover.iloc[0] == pytest.approx(1.0)
    assert res.costs.iloc[0] == pytest.approx(0.01)
    assert res.values.iloc[0] == pytest.approx(99.0, rel=1e-14)
    pre = 99 / 3 * 3.45
    w_pre = np.array([1.2, 1.05, 1.2]) / 3.45
    turnover = np.abs(1 / 3 - w_pre).sum()
    assert res.turnover.iloc[1] == pytest.approx(turnover, rel=1e-12)
    assert res.values.iloc[4] == pytest.approx(pre * (1 - 0.01 * turnover), rel=1e-13)


def test_contribution_adds_up_to_total_return_before_costs():
    prices = three_assets()
    res = backtest(prices, cfg(equal=0.5, risk_parity=0.5, risk_parity_lookback=3, cost_bps=25))
    pre_values = res.values[res.rebalance_dates] / (1 - res.costs)
    cost_points = (res.costs * pre_values).sum() / 100
    total = res.values.iloc[-1] / 100 - 1
    assert res.contribution.sum() - cost_points == pytest.approx(total, abs=1e-13)
    # Single asset, no cost: contribution is simply its return over the holding.
    single = backtest(prices[["A"]], cfg(equal=1))
    assert single.contribution["A"] == pytest.approx(15 / 10 - 1, rel=1e-14)


def test_drift_band_triggers_rebalance_on_first_breach():
    res = backtest(three_assets(), cfg(equal=1, rebalance="monthly", drift_band=0.03))
    # Row 1 max drift |1/3.2 - 1/3| = 0.021 (no); row 2 |1.2/3.25 - 1/3| = 0.036 (yes).
    assert res.rebalance_dates[1] == DATES[2]
    np.testing.assert_allclose(res.weights.iloc[2].to_numpy(), [1 / 3] * 3, rtol=1e-14)


def test_delisted_asset_is_sold_at_last_price():
    c = C[:6] + [np.nan] * 6  # C trades until row 5; ffill_limit=1 carries row 6
    res = backtest(three_assets(c), cfg(equal=1, ffill_limit=1))
    v4 = 115.0
    h = v4 / 3
    assert res.weights.iloc[6]["C"] > 0
    assert res.weights.iloc[7]["C"] == 0.0
    v7 = h * 13 / 12 + h * 22 / 21 + h * 6 / 6
    assert res.values.iloc[7] == pytest.approx(v7, rel=1e-14)
    assert res.cash.iloc[7] == pytest.approx(h / v7, rel=1e-12)
    v9 = h * 15 / 12 + h * 23 / 21 + h
    assert res.values.iloc[9] == pytest.approx(v9, rel=1e-14)
    # Row 9 rebalance: C is not eligible; A and B share everything.
    np.testing.assert_allclose(res.target_weights.loc[DATES[9]].to_numpy(), [0.5, 0.5, 0], atol=1e-15)
    assert res.cash.iloc[9] == pytest.approx(0.0, abs=1e-15)


def test_late_listed_asset_enters_after_min_history():
    c = [np.nan] * 4 + C[4:]
    res = backtest(three_assets(c), cfg(equal=1, min_history=2))
    # A and B have 2 prices on row 1: first allocation there.
    assert res.rebalance_dates[0] == DATES[1]
    np.testing.assert_allclose(res.target_weights.loc[DATES[1]].to_numpy(), [0.5, 0.5, 0])
    np.testing.assert_allclose(res.target_weights.loc[DATES[4]].to_numpy(), [0.5, 0.5, 0])  # 1 price only
    np.testing.assert_allclose(res.target_weights.loc[DATES[9]].to_numpy(), [1 / 3] * 3, rtol=1e-14)
    v4 = 50 * (12 / 11 + 21 / 20)
    assert res.values.iloc[4] == pytest.approx(v4, rel=1e-14)


def test_no_eligible_asset_gives_flat_index_and_warning():
    prices = three_assets().iloc[:5]
    res = backtest(prices, cfg(equal=1, min_history=50))
    assert (res.values == 100).all()
    assert (res.weights.to_numpy() == 0).all()
    assert res.warnings and "flat" in res.warnings[0]
    empty = backtest(three_assets() * np.nan, cfg(equal=1))
    assert (empty.values == 100).all()


def test_all_cash_when_every_sleeve_empties_later():
    # Momentum only, threshold 16 %: row 2 all in A (20 %), row 4 all in C (20 %), row 9 nothing
    # qualifies (A 15/13-1 = 15.4 %, B 4.5 %, C < 0) -> the index holds cash.
    res = backtest(three_assets(), cfg(momentum=1, momentum_lookback=2, momentum_threshold=0.16))
    assert list(res.rebalance_dates) == [DATES[2], DATES[4], DATES[9]]
    assert res.cash.iloc[-1] == pytest.approx(1.0)
    assert any("held cash" in w for w in res.warnings)
    assert res.values.iloc[-1] == res.values.loc[DATES[9]]


# --- data hygiene ---------------------------------------------------------------------------


def test_return_clip_limits_daily_return():
    prices = three_assets()[["A"]].copy()
    prices.iloc[5, 0] = 30.0  # +150 % then -60 %
    res = backtest(prices, cfg(equal=1, return_clip=0.5))
    assert res.values.iloc[5] / res.values.iloc[4] == pytest.approx(1.5, rel=1e-14)
    assert res.values.iloc[6] / res.values.iloc[5] == pytest.approx(0.5, rel=1e-14)


def test_outlier_return_is_set_to_zero_using_trailing_window_only():
    rng = np.random.default_rng(3)
    dates = pd.bdate_range("2024-01-01", periods=40)
    a = 100 * np.cumprod(1 + rng.normal(0, 0.01, 40))
    prices = pd.DataFrame({"A": a}, index=dates)
    prices.iloc[30:, 0] *= 1.3  # a 30 % jump at row 30, ~30 sigma
    res = backtest(prices, cfg(equal=1, outlier_z=5, outlier_window=20, rebalance="yearly"))
    assert res.values.iloc[30] == pytest.approx(res.values.iloc[29], rel=1e-14)
    plain = backtest(prices, cfg(equal=1, rebalance="yearly"))
    assert plain.values.iloc[30] / plain.values.iloc[29] == pytest.approx(prices.iloc[30, 0] / prices.iloc[29, 0])
    # Ordinary returns pass the test untouched.
    assert res.values.iloc[20] / res.values.iloc[19] == pytest.approx(a[20] / a[19], rel=1e-14)


def test_min_price_treats_low_prices_as_missing():
    prices = three_assets()
    res = backtest(prices, cfg(equal=1, min_price=5.2, ffill_limit=0))
    # C (5.0 at row 0) is below the floor on the first day.
    np.testing.assert_allclose(res.target_weights.iloc[0].to_numpy(), [0.5, 0.5, 0])


def test_inputs_are_not_modified_and_bad_inputs_raise_domain_error():
    prices = three_assets()
    prices.iloc[3, 2] = np.nan
    before = prices.copy()
    backtest(prices, cfg(equal=1, outlier_z=2, outlier_window=3))
    pd.testing.assert_frame_equal(prices, before)
    with pytest.raises(BacktestInputError):
        backtest(prices.iloc[::-1], cfg(equal=1))
    with pytest.raises(BacktestInputError):
        backtest(prices.reset_index(drop=True), cfg(equal=1))
    with pytest.raises(Exception) as info:
        backtest(prices, {"equal": 0.5})
    assert "sleeve" in str(info.value)
    with pytest.raises(Exception) as info:
        backtest(prices, {"equal": 2})
    assert "equal must be between 0 and 1" in str(info.value)


# --- schedule -----------------------------------------------------------------------------


def test_rebalance_schedule_last_trading_day_of_period():
    dates = pd.bdate_range("2024-01-25", "2024-03-13")
    mask = rebalance_schedule(dates, "monthly")
    assert list(dates[mask]) == [pd.Timestamp("2024-01-31"), pd.Timestamp("2024-02-29")]
    closed = pd.bdate_range("2024-01-25", "2024-02-29")
    assert rebalance_schedule(closed, "monthly")[-1]  # the next business day is in March
    weekly = rebalance_schedule(pd.bdate_range("2024-01-01", periods=12), "weekly")
    assert list(np.flatnonzero(weekly)) == [4, 9]
    assert rebalance_schedule(dates, "daily").all()
    q = rebalance_schedule(pd.bdate_range("2023-01-01", "2024-06-30"), "quarterly")
    assert len(np.flatnonzero(q)) == 6


# --- reference implementations -------------------------------------------------------------


def random_prices(seed: int, rows: int = 300, cols: int = 6, start: str = "2021-01-04") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range(start, periods=rows)
    levels = 50 * np.cumprod(1 + rng.normal(0.0003, 0.02, (rows, cols)), axis=0)
    return pd.DataFrame(levels, index=dates, columns=[f"S{i}" for i in range(cols)])


def reference_equal_weight_monthly(prices: pd.DataFrame, base: float = 100.0) -> list[float]:
    """A plain day-by-day loop: buy equal weight on day 0 and on the last day of each month."""
    dates = list(prices.index)
    rows = [list(map(float, prices.loc[d])) for d in dates]
    n = len(rows[0])
    units = [0.0] * n
    out = []
    value = base
    for i, row in enumerate(rows):
        if i > 0:
            value = sum(u * p for u, p in zip(units, row))
        month_end = i + 1 < len(dates) and dates[i + 1].month != dates[i].month
        if i == 0 or month_end:
            units = [value / n / p for p in row]
        out.append(value)
    return out


def test_equal_weight_monthly_matches_plain_loop_reference():
    prices = random_prices(7)  # ends mid-month, so the last day is not a month end
    res = backtest(prices, cfg(equal=1, rebalance="monthly", ffill_limit=0))
    expected = reference_equal_weight_monthly(prices)
    np.testing.assert_allclose(res.values.to_numpy(), expected, rtol=1e-12, atol=0)


def test_equal_weight_monthly_matches_bt():
    bt = pytest.importorskip("bt")
    prices = random_prices(11, rows=400, cols=8)
    strategy = bt.Strategy(
        "ew",
        [
            bt.algos.RunMonthly(run_on_first_date=True, run_on_end_of_period=True),
            bt.algos.SelectAll(),
            bt.algos.WeighEqually(),
            bt.algos.Rebalance(),
        ],
    )
    result = bt.run(bt.Backtest(strategy, prices, integer_positions=False, initial_capital=100.0, progress_bar=False))
    bt_values = result.prices["ew"].loc[prices.index]
    res = backtest(prices, cfg(equal=1, rebalance="monthly"))
    np.testing.assert_allclose(res.values.to_numpy(), bt_values.to_numpy(), rtol=1e-12, atol=0)


# --- properties ---------------------------------------------------------------------------

CONFIGS = [
    dict(equal=1),
    dict(momentum=0.4, market_cap=0.3, risk_parity=0.3, max_weight=0.4),
    dict(equal=0.5, risk_parity=0.5, drift_band=0.05, cost_bps=20, rebalance="monthly"),
    dict(momentum=1, momentum_lookback=5, top_n=2, max_weight=0.6, rebalance="daily"),
    dict(market_cap=0.5, equal=0.5, market_cap_sqrt=True, outlier_z=3, outlier_window=5, cost_bps=5),
]


def property_prices(seed: int, rows: int = 45, cols: int = 4) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    prices = random_prices(seed, rows=rows, cols=cols, start="2024-01-01")
    holes = rng.random(prices.shape) < 0.08
    prices = prices.mask(holes)
    prices.iloc[: rng.integers(0, 15), 0] = np.nan  # late listing
    caps = prices * rng.uniform(1, 10, cols)
    return prices, caps


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    which=st.integers(0, len(CONFIGS) - 1),
    t=st.integers(0, 44),
    future_seed=st.integers(0, 10_000),
    ffill=st.sampled_from([0, 1, 5]),
)
def test_no_look_ahead(seed, which, t, future_seed, ffill):
    prices, caps = property_prices(seed)
    config = cfg(
        **{**dict(min_history=3, momentum_lookback=5, risk_parity_lookback=5, ffill_limit=ffill), **CONFIGS[which]}
    )
    base = backtest(prices, config, caps)
    rng = np.random.default_rng(future_seed)
    changed, changed_caps = prices.copy(), caps.copy()
    future = changed.index > changed.index[t]
    # Plausible future moves (up to +/-25 % a day): wilder ones compound into levels the engine refuses.
    shock = rng.uniform(0.8, 1.25, (int(future.sum()), prices.shape[1]))
    shock[rng.random(shock.shape) < 0.3] = np.nan
    changed.loc[future] = changed.loc[future].to_numpy() * shock
    changed_caps.loc[future] = changed_caps.loc[future].to_numpy() * rng.uniform(0.1, 10, shock.shape)
    other = backtest(changed, config, changed_caps)
    np.testing.assert_array_equal(base.values.iloc[: t + 1].to_numpy(), other.values.iloc[: t + 1].to_numpy())
    np.testing.assert_array_equal(base.weights.iloc[: t + 1].to_numpy(), other.weights.iloc[: t + 1].to_numpy())


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), which=st.integers(0, len(CONFIGS) - 1))
def test_weight_properties(seed, which):
    prices, caps = property_prices(seed)
    config = cfg(**{**dict(min_history=3, momentum_lookback=5, risk_parity_lookback=5), **CONFIGS[which]})
    res = backtest(prices, config, caps)
    w = res.weights.to_numpy()
    assert (w >= 0).all()
    assert (w.sum(axis=1) <= 1 + 1e-12).all()
    np.testing.assert_allclose(res.cash.to_numpy(), 1 - w.sum(axis=1), atol=1e-12)
    tw = res.target_weights.to_numpy()
    if config.max_weight is not None:
        assert (tw <= config.max_weight + 1e-12).all()
    sums = tw.sum(axis=1)
    n_held = (tw > 0).sum(axis=1)
    for s, n in zip(sums, n_held):
        # Fully invested whenever something is held and the cap can be met.
        if n and (config.max_weight is None or n * config.max_weight >= 1 + 1e-9):
            assert s == pytest.approx(1.0, abs=1e-12)
    if config.top_n is not None:
        assert (n_held <= config.top_n).all()
    assert np.isfinite(res.values.to_numpy()).all() and (res.values > 0).all()
    # Contribution identity holds on every configuration.
    pre = res.values[res.rebalance_dates] / (1 - res.costs)
    cost_points = float((res.costs * pre).sum()) / config.base_value
    total = res.values.iloc[-1] / config.base_value - 1
    assert math.isclose(res.contribution.sum() - cost_points, total, abs_tol=1e-12)


# --- degenerate results are refused or flagged (issue 11, case 13) ------------------------------

from core.quant.engine import LEVEL_RATIO_MAX, LEVEL_RATIO_MIN, DegenerateResultError, check_result  # noqa: E402


def test_a_1e308_price_with_clipping_off_is_refused_naming_the_date_and_the_cause():
    prices = three_assets()
    prices.iloc[5, 0] = 1e308  # one bad tick on Mon 8th
    with pytest.raises(DegenerateResultError) as info:
        backtest(prices, cfg(equal=1))
    err = info.value
    assert set(err.errors) == {"index"} and err.date == DATES[5].date()
    assert "2024-01-08" in err.errors["index"] and "return_clip" in err.errors["index"]
    assert err.value == pytest.approx(100 / 3 * (1e308 / 11 + 21 / 20 + 6 / 5.5) * 115 / 100, rel=1e-9)
    # The same data with the default clip (+/-50 % a day) gives a finite, plausible index.
    clipped = backtest(prices, cfg(equal=1, return_clip=0.5))
    assert np.isfinite(clipped.values).all() and clipped.values.max() < 200


def test_overflow_to_inf_is_refused_as_not_finite():
    prices = three_assets()
    prices.iloc[:5, 1] = 1e-300
    prices.iloc[5:, 1] = 1e300  # a 1e600-fold move: the level overflows to inf
    with pytest.raises(DegenerateResultError) as info:
        backtest(prices, cfg(equal=1))
    assert "not a finite number from 2024-01-08" in info.value.errors["index"]


def test_a_collapse_to_a_millionth_of_the_base_is_refused():
    prices = three_assets()
    prices.iloc[5:, :] = prices.iloc[5:, :] * 1e-9
    with pytest.raises(DegenerateResultError) as info:
        backtest(prices, cfg(equal=1))
    assert "fell to" in info.value.errors["index"] and "2024-01-08" in info.value.errors["index"]


def test_a_flat_index_that_holds_assets_carries_a_warning():
    flat = pd.DataFrame(5.0, index=DATES, columns=["A", "B"])
    res = backtest(flat, cfg(equal=1))
    assert (res.values == 100).all() and (res.weights.sum(axis=1) > 0).all()
    assert any("flat index" in w for w in res.warnings)
    assert not any("flat index" in w for w in backtest(three_assets(), cfg(equal=1)).warnings)


def test_an_index_that_never_invests_says_which_parameter_emptied_it():
    res = backtest(three_assets(), cfg(momentum=1, momentum_lookback=2, momentum_threshold=10))
    assert (res.values == 100).all() and res.rebalance_dates.size == 0
    assert any("never invested" in w and "momentum_threshold 10" in w for w in res.warnings), res.warnings


def _valid_result(seed: int) -> tuple:
    prices = random_prices(seed, rows=40, cols=3)
    config = cfg(equal=1, min_history=2)
    return backtest(prices, config), config


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 1000),
    field=st.sampled_from(["values", "weights", "turnover", "costs", "contribution"]),
    bad=st.sampled_from([np.nan, np.inf, -np.inf]),
    where=st.floats(0, 0.999),
)
def test_check_result_refuses_any_non_finite_number(seed, field, bad, where):
    res, config = _valid_result(seed)
    assert check_result(res, config) is res  # a sane result passes unchanged
    target = getattr(res, field)
    numbers = target.to_numpy(copy=True)
    flat = numbers.reshape(-1)
    flat[int(where * flat.size)] = bad
    if isinstance(target, pd.DataFrame):
        setattr(res, field, pd.DataFrame(numbers, index=target.index, columns=target.columns))
    else:
        setattr(res, field, pd.Series(numbers, index=target.index, name=target.name))
    with pytest.raises(DegenerateResultError) as info:
        check_result(res, config)
    assert set(info.value.errors) == {"index" if field == "values" else field}


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 1000),
    factor=st.sampled_from([LEVEL_RATIO_MAX * 1.01, LEVEL_RATIO_MIN * 0.99]),
    row=st.integers(0, 39),
)
def test_check_result_refuses_levels_outside_the_sane_range(seed, factor, row):
    res, config = _valid_result(seed)
    res.values.iloc[row] = config.base_value * factor
    with pytest.raises(DegenerateResultError) as info:
        check_result(res, config)
    assert info.value.date == res.values.index[row].date()


def test_check_result_refuses_weights_outside_zero_one():
    res, config = _valid_result(1)
    res.weights.iloc[10, 0] = 1.5
    with pytest.raises(DegenerateResultError) as info:
        check_result(res, config)
    assert "weights" in info.value.errors
