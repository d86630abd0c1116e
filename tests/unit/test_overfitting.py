"""Deflated and probabilistic Sharpe (Bailey & López de Prado 2014) and walk-forward windows: hand-computed
cases (the paper's numerical example), scipy as an independent reference, and properties."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from core.quant.overfitting import (
    ReturnStats,
    deflated_sharpe,
    expected_max_sharpe,
    probabilistic_sharpe,
    return_stats,
    walk_forward_windows,
)


def test_the_papers_numerical_example_by_hand():
    """Bailey & López de Prado (2014), section 6: N = 100 trials, annualised V[SR] = 1/2, the selected strategy's
    annualised SR = 2.5 over T = 1250 daily returns (250 a year), skew -3, kurtosis 10: SR0 = 0.1132 per day
    and DSR = 0.9004."""
    per_year = 250
    sr = 2.5 / math.sqrt(per_year)  # 0.158114 per day
    variance = 0.5 / per_year  # 0.002
    # by hand: Phi^-1(0.99) = 2.326348, Phi^-1(1 - 1/(100 e)) = 2.680210 (tables), gamma = 0.577216
    sr0 = math.sqrt(variance) * ((1 - 0.577216) * 2.326348 + 0.577216 * 2.680210)
    assert sr0 == pytest.approx(0.1132, abs=5e-5)
    z = (sr - sr0) * math.sqrt(1250 - 1) / math.sqrt(1 + 3 * sr + (10 - 1) / 4 * sr * sr)
    by_hand = 0.5 * (1 + math.erf(z / math.sqrt(2)))
    assert by_hand == pytest.approx(0.9004, abs=2e-4)

    assert expected_max_sharpe(100, variance) == pytest.approx(sr0, rel=1e-5)
    dsr = deflated_sharpe(ReturnStats(sr, -3.0, 10.0, 1250), 100, variance)
    assert dsr == pytest.approx(by_hand, abs=1e-5)
    assert dsr == pytest.approx(0.9004, abs=2e-4)


def test_psr_against_scipy_normal():
    sr, n, g3, g4, bench = 0.08, 500, 0.4, 5.0, 0.02
    z = (sr - bench) * math.sqrt(n - 1) / math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr**2)
    assert probabilistic_sharpe(sr, n, g3, g4, bench) == pytest.approx(stats.norm.cdf(z), rel=1e-12)


def test_expected_max_against_scipy_quantiles():
    for n, v in ((2, 0.01), (10, 0.0004), (10_000, 0.003)):
        want = math.sqrt(v) * (
            (1 - np.euler_gamma) * stats.norm.ppf(1 - 1 / n) + np.euler_gamma * stats.norm.ppf(1 - 1 / (n * math.e))
        )
        assert expected_max_sharpe(n, v) == pytest.approx(want, rel=1e-9)


def test_return_stats_against_scipy():
    r = np.random.default_rng(7).standard_t(5, size=800) * 0.01 + 0.0005
    before = r.copy()
    got = return_stats(r)
    np.testing.assert_array_equal(r, before)  # the input is not modified
    assert got.n == 800
    assert got.sharpe == pytest.approx(r.mean() / r.std(ddof=1), rel=1e-12)
    assert got.skew == pytest.approx(stats.skew(r, bias=True), rel=1e-10)
    assert got.kurtosis == pytest.approx(stats.kurtosis(r, fisher=False, bias=True), rel=1e-10)
    assert return_stats(np.append(r, np.nan)) == got  # NaN values are left out


def test_more_trials_deflate_more_and_one_trial_is_the_psr():
    s = ReturnStats(0.1, 0.0, 3.0, 750)
    values = [deflated_sharpe(s, n, 0.001) for n in (1, 2, 10, 100, 10_000)]
    assert values == sorted(values, reverse=True)
    assert values[0] == pytest.approx(probabilistic_sharpe(0.1, 750, 0.0, 3.0, 0.0), rel=1e-15)
    assert deflated_sharpe(s, 100, 0.0) == pytest.approx(values[0], rel=1e-15)  # no dispersion: no deflation


@pytest.mark.parametrize("r", [[], [0.01], [0.01, 0.01, 0.01]])
def test_undefined_is_nan(r):
    s = return_stats(r)
    assert math.isnan(s.sharpe)
    assert math.isnan(deflated_sharpe(s, 10, 0.001))
    assert s.as_dict()["sr"] is None


def test_negative_variance_term_is_nan():
    assert math.isnan(probabilistic_sharpe(1.0, 100, 5.0, 3.0))  # 1 - 5 + 0.5 < 0


def test_walk_forward_windows_tile_the_test_periods():
    dates = pd.bdate_range("2018-01-01", "2025-01-31")
    windows = walk_forward_windows(dates, train_years=3, test_months=12)
    assert [w.train_start.year for w in windows] == [2018, 2019, 2020, 2021]
    for w in windows:
        assert w.train_start in dates and w.train_end in dates and w.test_end in dates
        assert w.train_start < w.train_end < w.test_end
    for a, b in zip(windows, windows[1:]):
        assert a.test_end == b.train_end  # consecutive test periods meet: no gap, no overlap
    assert windows[-1].test_end == pd.Timestamp("2025-01-01")


def test_walk_forward_too_short_is_empty():
    assert walk_forward_windows(pd.bdate_range("2024-01-01", periods=100), 3, 6) == []
