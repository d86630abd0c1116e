"""Factor regression of index returns: docs/methodology.md "Factor regression".

Pure numpy (no database, clock or I/O; statsmodels is only the tests' independent reference).

OLS (:func:`ols`)
    ``y = X b + u`` with a constant column first. ``b = (X'X)^-1 X'y``; residual variance
    ``s^2 = u'u / (n - k)``; classical covariance ``s^2 (X'X)^-1``; ``R^2 = 1 - u'u / sum((y - mean y)^2)``,
    adjusted ``1 - (1 - R^2)(n - 1)/(n - k)``; ``t = b / se``.
Newey-West (HAC) standard errors (``hac_lags`` set)
    ``S = sum_t u_t^2 x_t x_t' + sum_{l=1}^{L} (1 - l/(L+1)) sum_{t>l} u_t u_{t-l} (x_t x_{t-l}' + x_{t-l} x_t')``,
    ``cov = n/(n-k) (X'X)^-1 S (X'X)^-1`` (Bartlett kernel, with the small-sample factor ``n/(n-k)``,
    as statsmodels' ``cov_type="HAC"`` with ``use_correction=True``). Default lag
    ``L = floor(4 (n/100)^(2/9))`` (Newey & West 1994).
Index regression (:func:`factor_regression`)
    Dependent: the index's daily excess return ``r_t - rf_t`` (rf daily; when the factor set has a
    column ``RF`` it is the daily risk-free rate and is not a regressor). Regressors: the other factor
    columns (daily returns as fractions, e.g. Fama-French ``Mkt-RF, SMB, HML``). Only dates where
    the index and every factor have a value are used. Alpha is the intercept, reported daily and
    annualised (x 252).
Rolling betas (:func:`rolling_betas`)
    The same OLS over each trailing window of ``window`` aligned observations (NaN before the first
    full window), from running sums of ``x x'`` and ``x y``.

Too few observations (``n <= k``) or a singular ``X'X`` give NaN results, never an exception.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["ALPHA", "FactorRegression", "OLSResult", "default_hac_lags", "factor_regression", "ols", "rolling_betas"]

#: Name of the intercept row in the regression table.
ALPHA = "alpha (daily)"
PERIODS_PER_YEAR = 252


@dataclass
class OLSResult:
    """Coefficients (constant first), their standard errors and t-statistics, and the fit."""

    names: list[str]
    params: np.ndarray
    std_errors: np.ndarray
    t_stats: np.ndarray
    r2: float
    adj_r2: float
    nobs: int
    hac_lags: int | None


def default_hac_lags(n: int) -> int:
    """Newey & West (1994): ``floor(4 (n/100)^(2/9))``."""
    return int(math.floor(4.0 * (max(n, 1) / 100.0) ** (2.0 / 9.0)))


def _nan_result(names: list[str], n: int, lags: int | None) -> OLSResult:
    nan = np.full(len(names), np.nan)
    return OLSResult(names, nan, nan.copy(), nan.copy(), float("nan"), float("nan"), n, lags)


def ols(y: Any, x: Any, names: list[str] | None = None, *, hac_lags: int | None = None) -> OLSResult:
    """OLS of ``y`` (n) on a constant and ``x`` (n x m); see the module docstring. Inputs are not modified."""
    yv = np.asarray(y, dtype=np.float64).ravel()
    xv = np.asarray(x, dtype=np.float64)
    if xv.ndim == 1:
        xv = xv[:, None]
    n, m = xv.shape
    names = ["const"] + (list(names) if names is not None else [f"x{i + 1}" for i in range(m)])
    k = m + 1
    if n <= k or yv.size != n:
        return _nan_result(names, n, hac_lags)
    design = np.column_stack([np.ones(n), xv])
    xtx = design.T @ design
    try:
        xtx_inv = np.linalg.inv(xtx)
    except np.linalg.LinAlgError:
        return _nan_result(names, n, hac_lags)
    if not np.all(np.isfinite(xtx_inv)) or np.linalg.cond(xtx) > 1e12:
        return _nan_result(names, n, hac_lags)
    params = xtx_inv @ (design.T @ yv)
    resid = yv - design @ params
    ssr = float(resid @ resid)
    centred = yv - yv.mean()
    sst = float(centred @ centred)
    r2 = 1.0 - ssr / sst if sst > 0 else float("nan")
    adj = 1.0 - (1.0 - r2) * (n - 1) / (n - k) if sst > 0 else float("nan")
    if hac_lags is None:
        cov = xtx_inv * (ssr / (n - k))
    else:
        xu = design * resid[:, None]
        meat = xu.T @ xu
        for lag in range(1, int(hac_lags) + 1):
            weight = 1.0 - lag / (hac_lags + 1.0)
            gamma = xu[lag:].T @ xu[:-lag]
            meat += weight * (gamma + gamma.T)
        cov = xtx_inv @ meat @ xtx_inv * (n / (n - k))
    with np.errstate(invalid="ignore", divide="ignore"):
        se = np.sqrt(np.diag(cov))
        t = params / se
    return OLSResult(names, params, se, t, float(r2), float(adj), n, hac_lags)


@dataclass
class FactorRegression:
    """The index's factor regression: a table (factor, beta, t_stat, std_err), the fit and the alpha."""

    table: pd.DataFrame
    r2: float
    adj_r2: float
    nobs: int
    alpha_annual: float
    newey_west: bool
    hac_lags: int | None
    start: pd.Timestamp | None
    end: pd.Timestamp | None


def _aligned(
    index_returns: pd.Series, factors: pd.DataFrame, rf_daily: float | pd.Series
) -> tuple[pd.Series, pd.DataFrame]:
    frame = factors.copy()
    rf: Any = rf_daily
    if "RF" in frame.columns:
        rf = frame.pop("RF")
    joined = pd.concat([index_returns.rename("__y__"), frame], axis=1, join="inner").dropna()
    if isinstance(rf, pd.Series):
        rf = rf.reindex(joined.index).fillna(0.0)
    y = joined.pop("__y__") - rf
    return y, joined


def factor_regression(
    index_returns: pd.Series,
    factors: pd.DataFrame,
    rf_daily: float | pd.Series = 0.0,
    *,
    newey_west: bool = False,
    hac_lags: int | None = None,
) -> FactorRegression:
    """Regress the index's daily excess returns on the factors (see the module docstring).

    Args:
        index_returns: daily simple returns of the index (DatetimeIndex).
        factors: dates x factors, daily returns as fractions; a column ``RF`` is the daily risk-free rate.
        rf_daily: daily risk-free rate (constant or a series) used when ``factors`` has no ``RF`` column.
        newey_west: Newey-West (HAC) standard errors instead of the classical ones.
        hac_lags: HAC lags (default :func:`default_hac_lags`).
    """
    y, x = _aligned(index_returns, factors, rf_daily)
    lags = (hac_lags if hac_lags is not None else default_hac_lags(len(y))) if newey_west else None
    fit = ols(y.to_numpy(), x.to_numpy(), list(map(str, x.columns)), hac_lags=lags)
    names = [ALPHA] + fit.names[1:]
    table = pd.DataFrame({"factor": names, "beta": fit.params, "t_stat": fit.t_stats, "std_err": fit.std_errors})
    return FactorRegression(
        table,
        fit.r2,
        fit.adj_r2,
        fit.nobs,
        float(fit.params[0]) * PERIODS_PER_YEAR,
        newey_west,
        lags,
        y.index[0] if len(y) else None,
        y.index[-1] if len(y) else None,
    )


def rolling_betas(
    index_returns: pd.Series, factors: pd.DataFrame, window: int = 252, rf_daily: float | pd.Series = 0.0
) -> pd.DataFrame:
    """Betas (and the daily alpha) of the OLS over each trailing ``window`` of aligned days."""
    y, x = _aligned(index_returns, factors, rf_daily)
    n, m = x.shape
    cols = [ALPHA] + list(map(str, x.columns))
    out = np.full((n, m + 1), np.nan)
    if n >= window > m + 1:
        design = np.column_stack([np.ones(n), x.to_numpy(dtype=np.float64)])
        yv = y.to_numpy(dtype=np.float64)
        outer = np.einsum("ti,tj->tij", design, design)
        cross = design * yv[:, None]
        cum_xx = np.concatenate([np.zeros((1, m + 1, m + 1)), np.cumsum(outer, axis=0)])
        cum_xy = np.concatenate([np.zeros((1, m + 1)), np.cumsum(cross, axis=0)])
        xx = cum_xx[window:] - cum_xx[:-window]
        xy = cum_xy[window:] - cum_xy[:-window]
        ok = np.linalg.cond(xx) < 1e12
        solved = np.full((xx.shape[0], m + 1), np.nan)
        if ok.any():
            solved[ok] = np.linalg.solve(xx[ok], xy[ok][..., None])[..., 0]
        out[window - 1 :] = solved
    return pd.DataFrame(out, index=y.index, columns=cols)
