"""The batched engine path (core.quant.batch): every variant equals a single backtest of its config to 1e-12,
over random grids and random prices; the shared work is done once per distinct set of hygiene fields."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.quant.batch import SharedCleaning, batch_backtest, batch_order
from core.quant.engine import BacktestInputError, BacktestResult, backtest, clean_prices
from core.schemas.strategy import StrategyConfig


def _prices(seed: int, rows: int = 160, assets: int = 7, holes: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2023-01-02", periods=rows)
    r = rng.normal(0.0004, 0.02, size=(rows, assets))
    prices = 50 * np.exp(np.cumsum(r, axis=0))
    if holes:
        prices[rng.random(prices.shape) < 0.03] = np.nan  # gaps within the forward-fill limit and beyond
        prices[: rng.integers(0, 40), 0] = np.nan  # a late listing
        prices[rows - 15 :, 1] = np.nan  # a delisting
    cols = [f"A{i}" for i in range(assets)]
    caps = pd.DataFrame(prices * rng.uniform(1e6, 1e8, size=assets), index=dates, columns=cols)
    caps.iloc[:, 2] = np.nan  # one asset never has a cap
    return pd.DataFrame(prices, index=dates, columns=cols), caps


def _same(a: BacktestResult, b: BacktestResult) -> None:
    np.testing.assert_allclose(a.values.to_numpy(), b.values.to_numpy(), rtol=1e-12, atol=0)
    np.testing.assert_allclose(a.weights.to_numpy(), b.weights.to_numpy(), rtol=1e-12, atol=1e-15)
    assert list(a.rebalance_dates) == list(b.rebalance_dates)
    np.testing.assert_allclose(a.turnover.to_numpy(), b.turnover.to_numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(a.costs.to_numpy(), b.costs.to_numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(a.contribution.to_numpy(), b.contribution.to_numpy(), rtol=1e-12, atol=1e-15)
    assert a.warnings == b.warnings


SLEEVE_MIXES = [
    (1, 0, 0, 0),
    (0, 1, 0, 0),
    (0.5, 0.5, 0, 0),
    (0, 0.4, 0.3, 0.3),
    (0.25, 0.25, 0.25, 0.25),
    (0, 0, 1, 0),
    (0, 0, 0, 1),
]
GRID_FIELDS = {
    "momentum_lookback": st.sampled_from([2, 5, 21, 63]),
    "risk_parity_lookback": st.sampled_from([5, 21, 40]),
    "momentum_threshold": st.sampled_from([-0.05, 0.0, 0.02]),
    "top_n": st.sampled_from([None, 2, 4]),
    "max_weight": st.sampled_from([None, 0.3, 0.6]),
    "rebalance": st.sampled_from(["daily", "weekly", "monthly", "quarterly"]),
    "drift_band": st.sampled_from([None, 0.02, 0.1]),
    "cost_bps": st.sampled_from([0.0, 10.0, 50.0]),
    "min_history": st.sampled_from([1, 20, 60]),
    "outlier_z": st.sampled_from([None, 4.0]),
    "return_clip": st.sampled_from([None, 0.5, 0.05]),
    "ffill_limit": st.sampled_from([0, 5]),
}


@st.composite
def grids(draw):
    """A random grid: a lookback (two values) and up to two more fields over a random base config, times sleeve
    mixes that always include momentum, market cap and risk parity."""
    lookback = draw(st.sampled_from(["momentum_lookback", "risk_parity_lookback"]))  # always a shared signal
    names = [lookback] + draw(st.lists(st.sampled_from(sorted(set(GRID_FIELDS) - {lookback})), max_size=2, unique=True))
    axes = {
        n: draw(st.lists(GRID_FIELDS[n], min_size=2 if n == lookback else 1, max_size=2, unique=True)) for n in names
    }
    mixes = [(0, 0.4, 0.3, 0.3)] + draw(st.lists(st.sampled_from(SLEEVE_MIXES), max_size=2, unique=True))
    base = {n: draw(s) for n, s in GRID_FIELDS.items() if n not in axes}
    configs = []
    for values in itertools.product(*axes.values(), mixes):
        params = dict(base)
        params.update(dict(zip(axes, values[:-1])))
        params.update(dict(zip(("equal", "momentum", "market_cap", "risk_parity"), values[-1])))
        configs.append(params)
    return configs


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs=grids(), seed=st.integers(0, 10_000))
def test_every_variant_equals_its_single_backtest(configs, seed):
    prices, caps = _prices(seed)
    batch = batch_backtest(prices, configs, caps)
    assert len(batch) == len(configs)
    for params, got in zip(configs, batch):
        try:
            want = backtest(prices, params, caps)
        except Exception as exc:  # noqa: BLE001 - the batch must report the same refusal
            assert isinstance(got, type(exc)) and str(got) == str(exc)
            continue
        assert isinstance(got, BacktestResult), got
        _same(got, want)


def test_refused_variant_is_kept_as_its_error_in_place():
    prices, caps = _prices(1)
    configs = [{"equal": 1}, {"equal": 0.5, "momentum": 0.6}, {"top_n": 2, "max_weight": 0.1}, {"momentum": 1}]
    out = batch_backtest(prices, configs, caps)
    assert isinstance(out[0], BacktestResult) and isinstance(out[3], BacktestResult)
    assert "sleeve weights must sum to 1" in str(out[1])
    assert "infeasible cap" in str(out[2])


def test_shared_work_is_done_once_per_hygiene_set():
    prices, caps = _prices(2)
    shared = SharedCleaning(prices)
    configs = [
        StrategyConfig(momentum=1, momentum_lookback=lb, cost_bps=c, min_history=mh)
        for mh in (1, 20)
        for lb in (5, 21)
        for c in (0.0, 10.0)
    ]
    for i in batch_order(configs):
        backtest(prices, configs[i], caps, cleaned=shared.for_config(configs[i]))
    assert shared.cleanings == 2  # two min_history values: two cleanings for eight variants
    cleaned = shared.for_config(configs[-1])
    lookbacks = {key[1] for key in cleaned.memo if key[0] == "momentum"}
    assert lookbacks == {5, 21}  # each lookback's signal memoised once per row, shared by the cost variants


def test_batch_order_groups_hygiene_and_puts_refused_last():
    a, b = StrategyConfig(min_history=1), StrategyConfig(min_history=5)
    assert batch_order([a, b, None, a, b]) == [0, 3, 1, 4, 2]


def test_cleaned_from_other_hygiene_is_refused():
    prices, _ = _prices(3)
    cleaned = clean_prices(prices, StrategyConfig(min_history=1))
    with pytest.raises(BacktestInputError, match="other data-hygiene"):
        backtest(prices, StrategyConfig(min_history=5), cleaned=cleaned)


def test_inputs_are_not_modified():
    prices, caps = _prices(4)
    before_p, before_c = prices.copy(), caps.copy()
    batch_backtest(prices, [{"momentum": 0.5, "market_cap": 0.5}, {"risk_parity": 1}], caps)
    pd.testing.assert_frame_equal(prices, before_p)
    pd.testing.assert_frame_equal(caps, before_c)


def test_empty_prices_give_the_single_backtest_answer():
    empty = pd.DataFrame(index=pd.DatetimeIndex([]), columns=["A"], dtype=float)
    (got,) = batch_backtest(empty, [{"equal": 1}])
    assert isinstance(got, BacktestResult) and got.warnings == backtest(empty, {"equal": 1}).warnings
