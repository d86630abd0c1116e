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


def _reference_coverage(column: pd.Series, start: pd.Timestamp, end: pd.Timestamp) -> float | None:
    """The rule written per asset, the plain way (the replay checks a whole matrix in one pass)."""
    before = column.loc[:start].dropna()
    if before.empty or (start - before.index[-1]).days > 7:
        return None
    every = column.dropna()
    if every.empty or (end - every.index[-1]).days > 3:
        return None
    return float(before.iloc[-1])


@pytest.mark.parametrize("seed", range(6))
def test_whole_matrix_coverage_matches_the_per_asset_rule(seed):
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2019-06-03", "2021-06-30")
    symbols = [f"S{i}" for i in range(40)]
    prices = pd.DataFrame(
        rng.lognormal(0, 0.01, (len(days), len(symbols))).cumprod(axis=0), index=days, columns=symbols
    )
    for i, symbol in enumerate(symbols):  # listings, delistings and holes, some around the windows' edges
        kind = i % 5
        if kind == 1:
            prices.loc[: days[rng.integers(0, len(days))], symbol] = np.nan
        elif kind == 2:
            prices.loc[days[rng.integers(0, len(days))] :, symbol] = np.nan
        elif kind == 3:
            hole = rng.integers(0, len(days) - 30)
            prices.iloc[hole : hole + rng.integers(1, 30), i] = np.nan
        elif kind == 4 and seed % 2:
            prices[symbol] = np.nan
    held = [s for i, s in enumerate(symbols) if i % 5 in (0, 3)] if seed in (1, 2) else symbols
    weights = pd.Series(rng.dirichlet(np.ones(len(held) + 2))[:-2], index=held)
    if seed == 5:
        weights["UNPRICED"] = 0.01  # held, never priced
    seen = set()
    starts = [dt.date(2019, 6, 1) + dt.timedelta(days=int(d)) for d in rng.integers(0, 500, 6)]
    windows = [Scenario(f"w{k}", d, d + dt.timedelta(days=int(rng.integers(5, 200)))) for k, d in enumerate(starts)]
    windows += [Scenario("past the data", dt.date(2021, 5, 3), dt.date(2021, 7, 5)), *SCENARIOS]
    for sc in windows:
        start, end = pd.Timestamp(sc.start), pd.Timestamp(sc.end)
        ref = {
            s: _reference_coverage(prices[s] if s in prices else pd.Series(dtype=float), start, end)
            for s in weights.index
        }
        res = replay(weights, prices, sc, benchmark=prices["S0"])
        uncovered = [s for s, a in ref.items() if a is None]
        assert res.covered == (not uncovered)
        seen.add(res.covered)
        if uncovered:
            shown = ", ".join(uncovered[:5])
            assert res.note.startswith(f"not covered: no prices for {shown}")
        else:
            p1 = prices.loc[:end].ffill().iloc[-1]
            expected = sum(weights[s] * (p1[s] / ref[s] - 1) for s in weights.index)
            assert res.index_return == pytest.approx(expected, rel=1e-12)
        bench_start = _reference_coverage(prices["S0"], start, end)
        if bench_start is None:
            assert np.isnan(res.benchmark_return)
        else:
            assert res.benchmark_return == pytest.approx(prices["S0"].loc[:end].dropna().iloc[-1] / bench_start - 1)
    if seed in (1, 2):
        assert seen == {True, False}  # both branches compared


@pytest.mark.parametrize(("gap_days", "covered"), [(7, True), (8, False)])
def test_a_start_price_counts_up_to_seven_calendar_days_before_the_window(gap_days, covered):
    start = pd.Timestamp("2020-03-16")
    days = pd.DatetimeIndex([start - pd.Timedelta(days=gap_days), start + pd.Timedelta(days=10)])
    prices = pd.DataFrame({"A": [100.0, 80.0]}, index=days)
    res = replay(pd.Series({"A": 1.0}), prices, Scenario("gap", start.date(), (start + pd.Timedelta(days=10)).date()))
    assert res.covered is covered
    assert res.index_return == pytest.approx(-0.2) if covered else np.isnan(res.index_return)
