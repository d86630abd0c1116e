"""Constraints: hand-computed caps, minimum weight and holdings, exclusions, feasibility, no look-ahead."""

from __future__ import annotations

import numpy as np
import pytest

from core.quant.constraints import apply_caps, apply_min_weight, group_codes, universe_errors
from core.quant.engine import _apply_cap

SYMBOLS = ["A", "B", "C", "D"]
SECTORS = {"A": "Tech", "B": "Tech", "C": "Fin", "D": "Energy"}
CLASSES = {"A": "equity", "B": "equity", "C": "equity", "D": "bond"}


def test_sector_cap_redistributes_over_the_other_sectors_by_hand():
    w = np.array([0.4, 0.3, 0.2, 0.1])
    out = apply_caps(w, groups=[group_codes(SYMBOLS, SECTORS, {"Tech": 0.5})])
    # Tech 0.7 -> 0.5 (A, B scaled by 5/7); the 0.2 excess goes to C and D in proportion 2:1
    assert out == pytest.approx([0.4 * 5 / 7, 0.3 * 5 / 7, 0.2 + 0.2 * 2 / 3, 0.1 + 0.2 / 3], abs=1e-15)
    assert w.tolist() == [0.4, 0.3, 0.2, 0.1]  # input untouched


def test_sector_and_asset_class_caps_together_by_hand():
    w = np.array([0.4, 0.3, 0.2, 0.1])
    out = apply_caps(
        w, groups=[group_codes(SYMBOLS, SECTORS, {"Tech": 0.5}), group_codes(SYMBOLS, CLASSES, {"equity": 0.8})]
    )
    # round 1 as above -> [.285714, .214286, .333333, .166667]; round 2: equity .833333 -> .8 (x .96), D takes it
    assert out == pytest.approx([0.4 * 5 / 7 * 0.96, 0.3 * 5 / 7 * 0.96, (0.2 + 0.2 * 2 / 3) * 0.96, 0.2], abs=1e-12)
    assert out.sum() == pytest.approx(1.0)
    assert out[:3].sum() <= 0.8 + 1e-12 and out[:2].sum() <= 0.5 + 1e-12


def test_asset_cap_with_group_cap_and_infeasible_excess_stays_in_cash():
    w = np.array([0.7, 0.1, 0.1, 0.1])
    out = apply_caps(w, max_weight=0.4, groups=[group_codes(SYMBOLS, SECTORS, {"Tech": 0.45})])
    assert out[:2].sum() == pytest.approx(0.45) and out.max() <= 0.4 + 1e-12 and out.sum() == pytest.approx(1.0)
    # everything capped: 2 assets at 30 % each can hold only 60 %
    short = apply_caps(np.array([0.5, 0.5]), max_weight=0.3)
    assert short == pytest.approx([0.3, 0.3])


@pytest.mark.parametrize("seed", range(20))
def test_max_weight_alone_equals_the_engines_single_asset_cap(seed):
    rng = np.random.default_rng(seed)
    w = rng.dirichlet(np.full(12, 0.4))
    cap = float(rng.uniform(0.1, 0.3))
    assert apply_caps(w, max_weight=cap) == pytest.approx(_apply_cap(w.copy(), cap), abs=1e-12)


def test_min_weight_drops_the_smallest_first_and_keeps_min_holdings():
    w = np.array([0.5, 0.3, 0.12, 0.08])
    # 0.08 < 0.1: dropped; rescaled 0.12 / 0.92 = 0.1304 >= 0.1 stays
    assert apply_min_weight(w, 0.1) == pytest.approx(np.array([0.5, 0.3, 0.12, 0.0]) / 0.92)
    # 0.15: drop 0.08, then 0.12/0.92 = 0.13 < 0.15: drop too -> [0.625, 0.375]
    assert apply_min_weight(w, 0.15) == pytest.approx([0.625, 0.375, 0.0, 0.0])
    # min_holdings 3 stops after the first drop
    assert np.count_nonzero(apply_min_weight(w, 0.15, min_holdings=3)) == 3


def test_universe_errors_name_the_field():
    kwargs = dict(symbols=SYMBOLS, sectors=SECTORS, asset_classes=CLASSES, exclusions=[])
    assert universe_errors(sector_caps={"Tech": 0.5}, asset_class_caps=None, **kwargs) == {}
    errs = universe_errors(sector_caps={"Tech": 0.3, "Fin": 0.3, "Energy": 0.3}, asset_class_caps=None, **kwargs)
    assert "infeasible" in errs["sector_caps"] and "0.9" in errs["sector_caps"]
    errs = universe_errors(sector_caps=None, asset_class_caps={"equity": 0.9, "bond": 0.05}, **kwargs)
    assert "asset_class_caps" in errs
    errs = universe_errors(sector_caps={"Retail": 0.2}, asset_class_caps=None, **kwargs)
    assert "Retail" in errs["sector_caps"]
    kwargs["exclusions"] = ["ZZZ"]
    assert "ZZZ" in universe_errors(sector_caps=None, asset_class_caps=None, **kwargs)["exclusions"]
    kwargs["exclusions"] = SYMBOLS
    assert "every constituent" in universe_errors(sector_caps=None, asset_class_caps=None, **kwargs)["exclusions"]
    # with max_weight 0.2 one bond can hold only 20 %; equity capped at 0.7: 0.9 < 1
    errs = universe_errors(
        sector_caps=None,
        asset_class_caps={"equity": 0.7, "bond": 1.0},
        max_weight=0.2,
        symbols=SYMBOLS,
        sectors=SECTORS,
        asset_classes=CLASSES,
        exclusions=[],
    )
    assert "asset_class_caps" in errs


# --- in the engine -----------------------------------------------------------------------------------------------
import pandas as pd  # noqa: E402

from core.quant.engine import backtest, total_return_prices  # noqa: E402

DATES = pd.bdate_range("2024-01-01", periods=80)
RNG = np.random.default_rng(5)
PRICES = pd.DataFrame(100 * np.cumprod(1 + RNG.normal(0.0005, 0.01, (80, 4)), axis=0), index=DATES, columns=SYMBOLS)
INFO = pd.DataFrame({"sector": SECTORS, "asset_class": CLASSES})


def test_engine_applies_the_sector_cap_to_equal_weight_by_hand():
    res = backtest(PRICES, {"equal": 1.0, "min_history": 1, "sector_caps": {"Tech": 0.3}}, asset_info=INFO)
    first = res.target_weights.iloc[0]
    # equal 0.25 each; Tech 0.5 -> 0.3 (0.15 each); 0.2 spread over C and D equally -> 0.35 each
    assert first.to_numpy() == pytest.approx([0.15, 0.15, 0.35, 0.35])
    assert (res.target_weights[["A", "B"]].sum(axis=1) <= 0.3 + 1e-12).all()


def test_engine_exclusions_and_min_weight():
    res = backtest(PRICES, {"equal": 1.0, "min_history": 1, "exclusions": ["B"]})
    assert (res.weights["B"] == 0).all() and res.target_weights.iloc[0].to_numpy() == pytest.approx(
        [1 / 3, 0, 1 / 3, 1 / 3]
    )
    # min_weight above the equal weight of 4 drops to min_holdings (3: the first three by column order kept on ties)
    res = backtest(PRICES, {"equal": 1.0, "min_history": 1, "min_weight": 0.3, "min_holdings": 3})
    assert res.target_weights.iloc[0].to_numpy() == pytest.approx([1 / 3, 1 / 3, 1 / 3, 0])


def test_engine_min_holdings_keeps_the_holdings_when_the_target_is_too_small():
    prices = PRICES.copy()
    prices.loc[DATES[30] :, ["C", "D"]] = np.nan  # two assets stop trading: only A and B remain eligible
    res = backtest(prices, {"equal": 1.0, "min_history": 1, "min_holdings": 3, "ffill_limit": 0})
    later = res.rebalance_dates[res.rebalance_dates > DATES[30]]
    assert len(later) and (res.turnover.loc[later] == 0).all()
    assert any("min_holdings" in w for w in res.warnings)


@pytest.mark.parametrize("cut", [20, 41, 63])
def test_no_look_ahead_with_constraints_under_perturbation(cut):
    cfg = {
        "momentum": 0.5,
        "risk_parity": 0.5,
        "momentum_lookback": 10,
        "risk_parity_lookback": 10,
        "min_history": 5,
        "rebalance": "weekly",
        "sector_caps": {"Tech": 0.4},
        "asset_class_caps": {"equity": 0.8},
        "min_weight": 0.05,
        "min_holdings": 2,
        "max_weight": 0.6,
        "exclusions": ["D"],
    }
    base = backtest(PRICES, cfg, asset_info=INFO)
    future = PRICES.copy()
    future.iloc[cut + 1 :] *= np.random.default_rng(cut).uniform(0.5, 1.5, future.iloc[cut + 1 :].shape)
    moved = backtest(future, cfg, asset_info=INFO)
    np.testing.assert_array_equal(base.values.iloc[: cut + 1], moved.values.iloc[: cut + 1])
    np.testing.assert_array_equal(base.weights.iloc[: cut + 1], moved.weights.iloc[: cut + 1])


def test_total_return_prices_by_hand():
    dates = pd.bdate_range("2024-01-01", periods=4)
    closes = pd.DataFrame({"X": [100.0, 98.0, np.nan, 99.0], "Y": [10.0, 10.0, 10.0, 10.0]}, index=dates)
    # X pays 2 going ex on day 2 and 1 on day 3 (no close that day: credited at day 4)
    divs = pd.DataFrame({"X": [2.0, 1.0]}, index=[dates[1], dates[2]])
    tr = total_return_prices(closes, divs)
    assert tr["X"].iloc[0] == 100.0
    assert tr["X"].iloc[1] == pytest.approx(100.0 * (98 + 2) / 100)
    assert np.isnan(tr["X"].iloc[2])
    assert tr["X"].iloc[3] == pytest.approx(100.0 * (100 / 100) * (99 + 1) / 98)
    assert tr["Y"].tolist() == closes["Y"].tolist()
    assert total_return_prices(closes, None) is closes
    assert np.isnan(closes["X"].iloc[2]) and closes["X"].iloc[1] == 98.0  # input untouched
