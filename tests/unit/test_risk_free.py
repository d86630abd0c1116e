"""The risk-free rate: settings, the yield-series conversion, and its use by Sharpe, Sortino, alpha and the rolling
Sharpe (hand-computed and numpy references)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from core.quant.risk import daily_rf, risk_metrics, rolling_metrics
from core.services.market import yield_to_annual_rate

DATES = pd.bdate_range("2024-01-01", periods=300)
RNG = np.random.default_rng(2)
LEVELS = pd.Series(100 * np.cumprod(1 + RNG.normal(0.0004, 0.01, 300)), index=DATES)
BENCH = pd.Series(100 * np.cumprod(1 + RNG.normal(0.0003, 0.009, 300)), index=DATES)


def test_settings_read_the_rate_and_refuse_a_bad_one(monkeypatch):
    from core.config import get_settings, reset_settings_cache
    from core.errors import ConfigurationError

    monkeypatch.setenv("RISK_FREE_RATE", "0.045")
    monkeypatch.setenv("RISK_FREE_SYMBOL", "^IRX")
    reset_settings_cache()
    try:
        assert get_settings().risk_free_rate == 0.045 and get_settings().risk_free_symbol == "^IRX"
        monkeypatch.setenv("RISK_FREE_RATE", "4.5")  # percent instead of a decimal
        reset_settings_cache()
        with pytest.raises(ConfigurationError, match="RISK_FREE_RATE"):
            get_settings()
    finally:
        reset_settings_cache()


def test_a_constant_yield_series_is_that_rate():
    assert yield_to_annual_rate(pd.Series([4.0] * 10)) == pytest.approx(0.04, rel=1e-12)
    two = yield_to_annual_rate(pd.Series([2.0, 6.0]))
    d = ((1.02) ** (1 / 252) - 1 + (1.06) ** (1 / 252) - 1) / 2
    assert two == pytest.approx((1 + d) ** 252 - 1, rel=1e-12)
    assert yield_to_annual_rate(pd.Series([4.0, np.nan])) == pytest.approx(0.04)


@pytest.mark.parametrize("rate", [0.0, 0.03, 0.08])
def test_sharpe_sortino_alpha_use_the_rate(rate):
    m = risk_metrics(LEVELS, BENCH, rf=rate)
    r, b = LEVELS.pct_change().dropna().to_numpy(), BENCH.pct_change().dropna().to_numpy()
    rf_d = (1 + rate) ** (1 / 252) - 1
    assert rf_d == pytest.approx(daily_rf(rate))
    ex = r - rf_d
    assert m["sharpe"] == pytest.approx(ex.mean() / ex.std(ddof=1) * math.sqrt(252), rel=1e-12)
    assert m["sortino"] == pytest.approx(
        ex.mean() / math.sqrt(np.mean(np.minimum(ex, 0) ** 2)) * math.sqrt(252), rel=1e-12
    )
    beta = np.cov(r, b, ddof=1)[0, 1] / np.var(b, ddof=1)
    assert m["alpha"] == pytest.approx(((r - rf_d).mean() - beta * (b - rf_d).mean()) * 252, rel=1e-10)
    rolling = rolling_metrics(LEVELS, BENCH, windows=(63,), rf=rate)
    last = ex[-63:]
    assert rolling["sharpe_63"].iloc[-1] == pytest.approx(last.mean() / last.std(ddof=1) * math.sqrt(252), rel=1e-9)


def test_a_higher_rate_lowers_sharpe():
    assert risk_metrics(LEVELS, rf=0.05)["sharpe"] < risk_metrics(LEVELS, rf=0.0)["sharpe"]
