"""Factor regression against statsmodels (OLS and Newey-West HAC), and rolling betas against a loop."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

sm = pytest.importorskip("statsmodels.api")

from core.quant.factors import ALPHA, default_hac_lags, factor_regression, ols, rolling_betas  # noqa: E402

RNG = np.random.default_rng(3)
DATES = pd.bdate_range("2021-01-01", periods=600)
FACTORS = pd.DataFrame(RNG.normal(0, 0.01, (600, 3)), index=DATES, columns=["Mkt-RF", "SMB", "HML"])
NOISE = pd.Series(RNG.normal(0, 0.004, 600), index=DATES)
# autocorrelated noise so that HAC differs from the classical errors
NOISE = NOISE + 0.5 * NOISE.shift(1).fillna(0.0)
RF = 0.0001
INDEX_R = RF + 0.0002 + 1.1 * FACTORS["Mkt-RF"] + 0.3 * FACTORS["SMB"] - 0.2 * FACTORS["HML"] + NOISE


def _statsmodels(cov_type="nonrobust", **kw):
    x = sm.add_constant(FACTORS.to_numpy())
    return sm.OLS((INDEX_R - RF).to_numpy(), x).fit(cov_type=cov_type, **kw)


def test_ols_matches_statsmodels():
    ref = _statsmodels()
    res = factor_regression(INDEX_R, FACTORS, RF)
    assert list(res.table["factor"]) == [ALPHA, "Mkt-RF", "SMB", "HML"]
    np.testing.assert_allclose(res.table["beta"], ref.params, rtol=1e-10)
    np.testing.assert_allclose(res.table["t_stat"], ref.tvalues, rtol=1e-8)
    np.testing.assert_allclose(res.table["std_err"], ref.bse, rtol=1e-8)
    assert res.r2 == pytest.approx(ref.rsquared, rel=1e-10)
    assert res.adj_r2 == pytest.approx(ref.rsquared_adj, rel=1e-10)
    assert res.nobs == 600 and res.alpha_annual == pytest.approx(ref.params[0] * 252)


def test_newey_west_matches_statsmodels_hac():
    lags = default_hac_lags(600)
    assert lags == int(np.floor(4 * (600 / 100) ** (2 / 9)))
    ref = _statsmodels("HAC", cov_kwds={"maxlags": lags, "use_correction": True})
    res = factor_regression(INDEX_R, FACTORS, RF, newey_west=True)
    np.testing.assert_allclose(res.table["std_err"], ref.bse, rtol=1e-8)
    np.testing.assert_allclose(res.table["t_stat"], ref.tvalues, rtol=1e-8)
    assert res.hac_lags == lags
    classical = factor_regression(INDEX_R, FACTORS, RF)
    assert not np.allclose(res.table["std_err"], classical.table["std_err"])


def test_rf_column_of_the_factor_set_is_the_risk_free_rate_not_a_regressor():
    with_rf = FACTORS.assign(RF=RF)
    a = factor_regression(INDEX_R, with_rf)
    b = factor_regression(INDEX_R, FACTORS, RF)
    assert list(a.table["factor"]) == list(b.table["factor"])
    np.testing.assert_allclose(a.table["beta"], b.table["beta"], rtol=1e-12)


def test_alignment_uses_common_dates_only():
    shorter = FACTORS.iloc[100:]
    res = factor_regression(INDEX_R.iloc[:-50], shorter, RF)
    assert res.nobs == 450 and res.start == DATES[100] and res.end == DATES[-51]


def test_rolling_betas_equal_an_ols_per_window():
    roll = rolling_betas(INDEX_R, FACTORS, window=120, rf_daily=RF)
    assert roll.iloc[:119].isna().all().all()
    for end in (119, 300, 599):
        window = slice(end - 119, end + 1)
        fit = ols((INDEX_R - RF).iloc[window], FACTORS.iloc[window])
        np.testing.assert_allclose(roll.iloc[end].to_numpy(), fit.params, rtol=1e-7, atol=1e-12)


def test_too_few_or_singular_is_nan():
    res = ols([0.01, 0.02], [[0.1], [0.2]])
    assert np.isnan(res.params).all()
    x = np.column_stack([FACTORS["SMB"], FACTORS["SMB"] * 2])
    assert np.isnan(ols(INDEX_R, x).params).all()
