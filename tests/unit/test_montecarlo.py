"""Monte Carlo projection: the lognormal closed form, reproducibility, contributions, drawdowns, bounds."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from core.quant.montecarlo import FAN_PERCENTILES, lognormal_percentiles, simulate

RNG = np.random.default_rng(7)
LOG_RETURNS = RNG.normal(0.0003, 0.01, 2520)
RETURNS = np.expm1(LOG_RETURNS)


def _mc_tolerance(p: float, n_paths: int, sigma_t: float, value: float) -> float:
    """4 standard errors of a sample quantile of a lognormal: sqrt(p(1-p)/n) / f(q)."""
    z = norm.ppf(p)
    density = norm.pdf(z) / (value * sigma_t)  # lognormal density at its p-quantile
    return 4 * np.sqrt(p * (1 - p) / n_paths) / density


@pytest.mark.parametrize("method,block", [("normal", 21), ("bootstrap", 1)])
def test_terminal_percentiles_match_the_lognormal_closed_form(method, block):
    """i.i.d. normal log returns: V_T = V_0 exp(T mu + sigma sqrt(T) z). The i.i.d. bootstrap (mean block length 1)
    of 2520 normal days has the same law up to the sample's own moments (a longer block adds the sample's
    chance autocorrelation, about sqrt(2L/n) = 13 % of the variance for L = 21: not a closed-form check)."""
    n_paths, years = 10_000, 5
    res = simulate(
        RETURNS, years=years, method=method, n_paths=n_paths, seed=11, start_value=10_000.0, block_length=block
    )
    days = years * 252
    closed = lognormal_percentiles(res.mu, res.sigma, days, 10_000.0)
    assert res.mu == pytest.approx(LOG_RETURNS.mean(), rel=1e-12)
    assert res.sigma == pytest.approx(LOG_RETURNS.std(ddof=1), rel=1e-12)
    last = res.fan.iloc[-1]
    for p in FAN_PERCENTILES:
        expected = closed[f"p{p}"]
        assert abs(last[f"p{p}"] - expected) < _mc_tolerance(p / 100, n_paths, res.sigma * np.sqrt(days), expected)
    # the fan's intermediate steps follow the same closed form (one year = 12 steps)
    year1 = res.fan.loc[12]
    closed1 = lognormal_percentiles(res.mu, res.sigma, 252, 10_000.0)
    assert abs(year1["p50"] - closed1["p50"]) < _mc_tolerance(0.5, n_paths, res.sigma * np.sqrt(252), closed1["p50"])
    # probability of a loss: P(V_T < V_0) = Phi(-T mu / (sigma sqrt T))
    p_loss = norm.cdf(-days * res.mu / (res.sigma * np.sqrt(days)))
    assert abs(res.prob_loss - p_loss) < 4 * np.sqrt(p_loss * (1 - p_loss) / n_paths)


def test_student_t_keeps_mean_and_scale_and_has_fatter_tails():
    res_t = simulate(RETURNS, years=1, method="t", n_paths=20_000, seed=3, df=4.0)
    res_n = simulate(RETURNS, years=1, method="normal", n_paths=20_000, seed=3)
    # one year sums 252 days: the CLT makes both close in the middle
    log_t, log_n = np.log(res_t.terminal / 10_000.0), np.log(res_n.terminal / 10_000.0)
    assert log_t.mean() == pytest.approx(252 * res_t.mu, abs=4 * res_t.sigma * np.sqrt(252 / 20_000))
    assert log_t.std() == pytest.approx(res_t.sigma * np.sqrt(252), rel=0.03)
    assert log_n.std() == pytest.approx(res_n.sigma * np.sqrt(252), rel=0.03)


def test_same_seed_same_result_and_different_seed_differs():
    a = simulate(RETURNS, years=3, n_paths=500, seed=5)
    b = simulate(RETURNS, years=3, n_paths=500, seed=5)
    c = simulate(RETURNS, years=3, n_paths=500, seed=6)
    assert a.fan.equals(b.fan) and np.array_equal(a.max_drawdowns, b.max_drawdowns)
    assert not a.fan.equals(c.fan)


def test_bootstrap_draws_only_historical_days_in_blocks():
    history = np.array([0.01, -0.02, 0.03, 0.0, 0.015])
    res = simulate(history, years=1, n_paths=200, seed=1, block_length=3, steps_per_year=12)
    # every one-step growth over 21 days is a product of historical growths: its log is a sum of historical logs
    assert np.isfinite(res.fan.to_numpy()).all()
    from core.quant.montecarlo import _bootstrap_indices

    idx, last = _bootstrap_indices(np.random.default_rng(0), 50, 252, 5, 3.0, None)
    assert idx.min() >= 0 and idx.max() <= 4
    steps = np.diff(idx, axis=1) % 5
    continued = steps == 1
    # a block continues with probability 1 - 1/L (plus chance restarts landing on the next row)
    assert 0.6 < continued.mean() < 0.8
    nxt, _ = _bootstrap_indices(np.random.default_rng(1), 50, 252, 5, 1e9, last)
    assert np.array_equal(nxt[:, 0], (last + 1) % 5)  # with huge blocks the next chunk continues every path


def test_max_drawdown_distribution_is_exact_on_a_deterministic_path():
    # one historical day repeated: every path is the same; 10 % a day down then nothing else possible
    res = simulate(np.array([-0.1, -0.1]), years=1, n_paths=3, seed=0, method="bootstrap")
    assert res.max_drawdowns == pytest.approx(np.full(3, 0.9**252 - 1))
    up = simulate(np.array([0.001, 0.001]), years=2, n_paths=3, seed=0)
    assert up.max_drawdowns == pytest.approx(np.zeros(3), abs=1e-5)
    assert up.prob_loss == 0.0 and up.terminal == pytest.approx(np.full(3, 10_000 * 1.001**504), rel=1e-4)


def test_contributions_and_withdrawals_and_target():
    flat = np.array([0.0, 0.0])
    res = simulate(flat, years=3, n_paths=4, seed=0, start_value=1000.0, contribution=100.0, target=1300.0)
    assert res.terminal == pytest.approx(np.full(4, 1300.0))
    assert res.fan["p50"].iloc[-1] == pytest.approx(1300.0)
    assert res.invested == 1300.0 and res.prob_loss == 0.0 and res.prob_target == 1.0
    drained = simulate(flat, years=3, n_paths=4, seed=0, start_value=1000.0, contribution=-400.0)
    assert drained.terminal == pytest.approx(np.zeros(4))  # 600, 200, then only 200 left to take
    assert drained.prob_loss == 0.0  # everything was withdrawn: 1000 taken out of 1000 put in
    assert drained.max_drawdowns == pytest.approx(np.full(4, -1.0))


def test_too_little_history_is_nan_not_an_error_and_bounds_are_named():
    res = simulate([0.01], years=2)
    assert np.isnan(res.fan["p50"]).all() and np.isnan(res.prob_loss)
    with pytest.raises(ValueError, match="years must be between 1 and 30"):
        simulate(RETURNS, years=31)
    with pytest.raises(ValueError, match="method"):
        simulate(RETURNS, method="garch")  # type: ignore[arg-type]


def test_inputs_not_modified():
    r = RETURNS.copy()
    simulate(r, years=1, n_paths=10)
    assert np.array_equal(r, RETURNS)
