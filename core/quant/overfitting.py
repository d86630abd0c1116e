"""Guards against overfitting a parameter search: walk-forward windows, the probabilistic and the deflated Sharpe.

Pure functions (no database, clock or I/O); inputs are never modified. Formulas in docs/methodology.md
("Research: parameter sweeps"); reference: D. H. Bailey and M. López de Prado, "The Deflated Sharpe Ratio:
Correcting for Selection Bias, Backtest Overfitting and Non-Normality", Journal of Portfolio Management 40 (5),
2014, eq. (2)-(3) and its numerical example (reproduced by the tests).

Conventions: Sharpe ratios here are **per period** (daily, not annualised; no risk-free rate), ``T`` is the
number of returns, skewness ``g3`` and kurtosis ``g4`` are the plain moment ratios (``g4 = 3`` for a normal
distribution, not the excess). Undefined values (fewer than 2 returns, zero variance, a negative variance term)
are NaN, never 0 or inf.

* ``PSR(SR*) = Phi( (SR - SR*) * sqrt(T - 1) / sqrt(1 - g3 * SR + (g4 - 1) / 4 * SR^2) )``
* ``SR0 = sqrt(V) * ((1 - gamma) * Phi^-1(1 - 1/N) + gamma * Phi^-1(1 - 1/(N e)))``, the expected maximum Sharpe
  of ``N`` trials whose Sharpe ratios have variance ``V`` when none has skill (``gamma`` = Euler-Mascheroni);
  ``SR0 = 0`` when ``N <= 1`` (nothing was selected)
* ``DSR = PSR(SR0)``: the probability that the true Sharpe exceeds what the best of ``N`` trials shows by luck.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "EULER_GAMMA",
    "ReturnStats",
    "Window",
    "deflated_sharpe",
    "expected_max_sharpe",
    "probabilistic_sharpe",
    "return_stats",
    "walk_forward_windows",
]

#: The Euler-Mascheroni constant.
EULER_GAMMA = 0.5772156649015329
_NORMAL = NormalDist()


@dataclass(frozen=True)
class ReturnStats:
    """What the deflated Sharpe needs of one return series: per-period Sharpe, skewness, kurtosis, count."""

    sharpe: float
    skew: float
    kurtosis: float
    n: int

    def as_dict(self) -> dict[str, float | int | None]:
        def clean(x: float) -> float | None:
            return float(x) if math.isfinite(x) else None

        return {"sr": clean(self.sharpe), "skew": clean(self.skew), "kurt": clean(self.kurtosis), "n": self.n}


def return_stats(returns: Any) -> ReturnStats:
    """Per-period Sharpe ``mean(r) / std(r, ddof=1)``, skewness ``m3 / m2^1.5`` and kurtosis ``m4 / m2^2``
    (central moments ``m_k = mean((r - mean)^k)``) of the finite values of ``returns``; NaN when undefined."""
    r = np.asarray(returns, dtype=np.float64)
    r = r[np.isfinite(r)]
    n = int(r.size)
    if n < 2:
        return ReturnStats(math.nan, math.nan, math.nan, n)
    d = r - r.mean()
    m2 = float(np.mean(d * d))
    std = float(np.std(r, ddof=1))
    if not m2 > 1e-24 * max(float(np.mean(r * r)), 1e-300):
        return ReturnStats(math.nan, math.nan, math.nan, n)
    return ReturnStats(float(r.mean()) / std, float(np.mean(d**3)) / m2**1.5, float(np.mean(d**4)) / m2**2, n)


def probabilistic_sharpe(sharpe: float, n: int, skew: float, kurtosis: float, benchmark: float = 0.0) -> float:
    """``PSR(SR*)``: the probability that the true per-period Sharpe exceeds ``benchmark`` (module docstring)."""
    if n < 2 or not all(math.isfinite(x) for x in (sharpe, skew, kurtosis, benchmark)):
        return math.nan
    var = 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe * sharpe
    if not var > 0:
        return math.nan
    return _NORMAL.cdf((sharpe - benchmark) * math.sqrt(n - 1) / math.sqrt(var))


def expected_max_sharpe(n_trials: int, variance: float) -> float:
    """``SR0``: the expected maximum per-period Sharpe of ``n_trials`` skill-less trials whose Sharpe ratios have
    ``variance`` (module docstring); 0 for a single trial, NaN for a non-finite or negative variance."""
    if n_trials <= 1:
        return 0.0
    if not math.isfinite(variance) or variance < 0:
        return math.nan
    z1 = _NORMAL.inv_cdf(1.0 - 1.0 / n_trials)
    z2 = _NORMAL.inv_cdf(1.0 - 1.0 / (n_trials * math.e))
    return math.sqrt(variance) * ((1.0 - EULER_GAMMA) * z1 + EULER_GAMMA * z2)


def deflated_sharpe(stats: ReturnStats, n_trials: int, variance: float) -> float:
    """``DSR = PSR(SR0)`` of one trial, given the number of trials and the variance of their Sharpe ratios."""
    return probabilistic_sharpe(
        stats.sharpe, stats.n, stats.skew, stats.kurtosis, expected_max_sharpe(n_trials, variance)
    )


@dataclass(frozen=True)
class Window:
    """One walk-forward step: train on ``[train_start, train_end]``, test on ``(train_end, test_end]``."""

    train_start: pd.Timestamp
    train_end: pd.Timestamp
    test_end: pd.Timestamp


def walk_forward_windows(
    dates: pd.DatetimeIndex, train_years: float, test_months: int, step_months: int | None = None
) -> list[Window]:
    """Rolling windows over ``dates``: train ``train_years`` years, test the next ``test_months`` months, then step
    ``step_months`` (default: ``test_months``, so the test windows tile the period without overlap).

    Each boundary is the last date on or before the calendar boundary. A window whose test period would run past
    the last date is dropped; no window (an empty list) when the history is too short.
    """
    if len(dates) < 2 or train_years <= 0 or test_months <= 0:
        return []
    step = step_months or test_months
    first, last = dates[0], dates[-1]
    windows: list[Window] = []
    start = first
    while True:
        train_end_cal = start + pd.DateOffset(months=round(train_years * 12))
        test_end_cal = train_end_cal + pd.DateOffset(months=test_months)
        if test_end_cal > last + pd.Timedelta(days=0):
            break
        train_end = dates[dates.searchsorted(train_end_cal, side="right") - 1]
        test_end = dates[dates.searchsorted(test_end_cal, side="right") - 1]
        first_on = dates[dates.searchsorted(start, side="left")]
        if test_end > train_end > first_on:
            windows.append(Window(first_on, train_end, test_end))
        start = start + pd.DateOffset(months=step)
    return windows
