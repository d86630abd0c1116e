"""Stress scenarios: hand-computed replays, coverage, hypothetical shocks."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from core.quant.stress import SCENARIOS, Scenario, Shock, apply_shocks, replay, replay_all

DAYS = pd.bdate_range("2020-02-10", "2020-04-10")


def _prices() -> pd.DataFrame:
    n = len(DAYS)
    a = np.linspace(100, 50, n)  # falls by half
    b = np.full(n, 20.0)  # flat
    c = np.linspace(10, 12, n)  # rises 20 %
    return pd.DataFrame({"A": a, "B": b, "C": c}, index=DAYS)


def test_replay_is_the_buy_and_hold_return_of_the_current_weights():
    prices = _prices()
    sc = Scenario("window", dt.date(2020, 2, 19), dt.date(2020, 3, 23))
    w = pd.Series({"A": 0.5, "B": 0.3, "C": 0.1})  # 10 % cash
    res = replay(w, prices, sc, benchmark=prices["C"])
    p0, p1 = prices.loc["2020-02-19"], prices.loc["2020-03-23"]
    expected = sum(w[s] * (p1[s] / p0[s] - 1) for s in w.index)
    assert res.covered and res.index_return == pytest.approx(expected, rel=1e-12)
    assert res.benchmark_return == pytest.approx(p1["C"] / p0["C"] - 1, rel=1e-12)
    assert res.path.iloc[0] == pytest.approx(1.0) and res.path.iloc[-1] == pytest.approx(1 + expected)
    assert res.max_drawdown == pytest.approx(float((res.path / res.path.cummax() - 1).min()))
    assert res.row()["scenario"] == "window" and set(res.row()) == {
        "scenario",
        "start",
        "end",
        "index_return",
        "benchmark_return",
        "covered",
    }


def test_window_start_on_a_weekend_takes_the_last_close_before_it():
    prices = _prices()
    sc = Scenario("weekend", dt.date(2020, 2, 22), dt.date(2020, 3, 1))  # Sat .. Sun
    res = replay(pd.Series({"A": 1.0}), prices, sc)
    assert res.index_return == pytest.approx(prices.loc["2020-02-28", "A"] / prices.loc["2020-02-21", "A"] - 1)


def test_not_covered_when_a_holding_or_the_window_is_outside_the_data():
    prices = _prices()
    prices.loc[:"2020-03-01", "B"] = np.nan  # B starts trading inside the window
    sc = Scenario("covid", dt.date(2020, 2, 19), dt.date(2020, 3, 23))
    res = replay(pd.Series({"A": 0.5, "B": 0.5}), prices, sc)
    assert not res.covered and np.isnan(res.index_return) and "B" in res.note
    results = replay_all(pd.Series({"A": 1.0}), _prices())
    assert [r.scenario for r in results] == [s.name for s in SCENARIOS]
    covered = {r.scenario: r.covered for r in results}
    assert covered["COVID crash"] and not covered["Global financial crisis"] and not covered["2022 rate shock"]
    # a holding with no weight does not need data
    assert replay(pd.Series({"A": 1.0, "B": 0.0}), prices, sc).covered


def test_hypothetical_shocks_take_the_most_specific_rule():
    w = pd.Series({"SPY": 0.4, "QQQ": 0.2, "IEF": 0.3, "GLD": 0.1})
    sectors = {"SPY": "Broad", "QQQ": "Technology", "IEF": "Government", "GLD": None}
    classes = {"SPY": "equity", "QQQ": "equity", "IEF": "bond", "GLD": "commodity"}
    shocks = [Shock("asset_class", "equity", -0.30), Shock("sector", "Government", 0.05), Shock("asset", "QQQ", -0.40)]
    total, applied = apply_shocks(w, shocks, sectors, classes)
    assert applied.to_dict() == {"SPY": -0.30, "QQQ": -0.40, "IEF": 0.05, "GLD": 0.0}
    assert total == pytest.approx(0.4 * -0.3 + 0.2 * -0.4 + 0.3 * 0.05)
    with pytest.raises(ValueError, match="at least -100 %"):
        apply_shocks(w, [Shock("asset", "SPY", -1.5)])
