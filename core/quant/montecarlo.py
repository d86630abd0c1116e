"""Monte Carlo projection of an index: docs/methodology.md "Monte Carlo projection".

Pure (numpy only; no database, clock or I/O); inputs are never modified. One function,
:func:`simulate`, draws ``n_paths`` daily paths of ``years * 252`` trading days from the index's
own daily returns and reports percentiles of the value at every horizon step, the probability of a
loss and of reaching a target, and the distribution of each path's maximum drawdown.

Methods (all in log returns ``x = log(1 + r)`` of the daily simple returns ``r``)
    ``bootstrap``
        Stationary block bootstrap (Politis & Romano 1994): a path is a concatenation of blocks
        of consecutive historical days; each day starts a new block with probability ``1/L``
        (block lengths are geometric with mean ``L``), at a uniformly drawn day, and otherwise
        continues the current block with the next historical day (wrapping around at the end).
        Default mean block length ``L = DEFAULT_BLOCK_LENGTH`` = 21 trading days (one month):
        long enough to keep volatility clustering and short-horizon autocorrelation, short
        enough to draw many distinct blocks from a few years of history.
    ``normal``
        i.i.d. ``x ~ N(mu, sigma^2)`` with the sample mean and standard deviation (ddof=1) of
        the historical log returns. The terminal value is then lognormal:
        ``V_T = V_0 exp(T mu + sigma sqrt(T) z)``, whose percentiles are the closed form the
        tests compare with.
    ``t``
        i.i.d. ``x = mu + sigma sqrt((nu - 2) / nu) t_nu`` (Student-t with ``nu = df`` degrees
        of freedom, scaled to the same mean and standard deviation as ``normal``, fatter tails).

Contributions
    ``contribution`` (currency units, negative for a withdrawal) is added at the end of each
    simulated year (after that day's return). A value that falls to 0 or below stays at 0 (ruin).
    The invested amount is ``start_value + sum(contributions)``; a *loss* is a terminal value
    below it.

Outputs
    ``fan``: one row per horizon step (``steps_per_year`` per year, default 12: monthly), columns
    ``p5, p25, p50, p75, p95`` (linear percentiles across paths) of the value at the close of
    that step. ``max_drawdowns``: per path, ``min_t(V_t / max_{s<=t} V_s - 1)`` over daily values
    (including the start value), a fraction <= 0. Fewer than 2 historical returns give a result of
    NaN percentiles and probabilities (never an exception).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

__all__ = [
    "DEFAULT_BLOCK_LENGTH",
    "FAN_PERCENTILES",
    "METHODS",
    "MonteCarloResult",
    "lognormal_percentiles",
    "simulate",
]

#: Trading days per simulated year.
DAYS_PER_YEAR = 252
#: Mean block length of the stationary bootstrap, trading days (see the module docstring).
DEFAULT_BLOCK_LENGTH = 21
#: Percentiles of the fan chart, and the column names of the "Monte Carlo" sheet.
FAN_PERCENTILES: tuple[int, ...] = (5, 25, 50, 75, 95)
METHODS: tuple[str, ...] = ("bootstrap", "normal", "t")
Method = Literal["bootstrap", "normal", "t"]
#: Horizon bounds, years.
MIN_YEARS, MAX_YEARS = 1, 30


@dataclass
class MonteCarloResult:
    """What :func:`simulate` returns; values are in the units of ``start_value``."""

    fan: pd.DataFrame  # index: step (1..), columns: years, p5, p25, p50, p75, p95
    terminal: np.ndarray  # value of every path at the horizon
    max_drawdowns: np.ndarray  # per path, a fraction <= 0
    prob_loss: float  # P(V_T < invested)
    prob_target: float | None  # P(V_T >= target), None without a target
    invested: float  # start_value + sum of contributions
    method: str
    block_length: float | None
    years: int
    n_paths: int
    seed: int
    mu: float  # mean daily log return of the history
    sigma: float  # its standard deviation (ddof=1)

    def drawdown_percentiles(self) -> dict[str, float]:
        """p5/p50/p95 of the maximum drawdown across paths (p5 is the deep tail)."""
        if self.max_drawdowns.size == 0:
            return {f"p{p}": float("nan") for p in (5, 50, 95)}
        return {f"p{p}": float(np.percentile(self.max_drawdowns, p)) for p in (5, 50, 95)}


def lognormal_percentiles(
    mu: float, sigma: float, days: int, start_value: float = 1.0, percentiles: tuple[int, ...] = FAN_PERCENTILES
) -> dict[str, float]:
    """Closed form: percentiles of ``V_0 exp(days mu + sigma sqrt(days) z)``, ``z ~ N(0, 1)``."""
    from scipy.stats import norm

    return {
        f"p{p}": float(start_value * np.exp(days * mu + sigma * np.sqrt(days) * norm.ppf(p / 100))) for p in percentiles
    }


def _log_returns(returns: Any) -> np.ndarray:
    r = np.asarray(pd.Series(returns, dtype=float).dropna(), dtype=np.float64)
    r = r[np.isfinite(r) & (r > -1.0)]
    out: np.ndarray = np.log1p(r)
    return out


def _bootstrap_indices(
    rng: np.random.Generator, n_paths: int, days: int, n_hist: int, block_length: float, carry: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Historical row of every (path, day) of one chunk, and the last row of each path (to continue a block).

    A day starts a new block with probability ``1 / block_length`` (the first day of a path always does);
    otherwise it takes the row after the previous day's (wrapping around). Flat int32 arithmetic: the row of
    a day is ``start[b] + (day - first_day[b])`` for the block ``b`` it belongs to.
    """
    new_block = rng.random((n_paths, days), dtype=np.float32) < np.float32(1.0 / block_length)
    if carry is None:
        new_block[:, 0] = True
    flat = new_block.ravel()
    positions = np.arange(flat.size, dtype=np.int32)
    # the first day of every path row starts a block as well; a carried block is a block starting "before" it
    row_first = positions[::days]
    starts_here = flat.copy()
    starts_here[row_first] = True
    last_start = np.where(starts_here, positions, np.int32(0))
    np.maximum.accumulate(last_start, out=last_start)
    block_row = np.zeros(flat.size, dtype=np.int32)
    n_new = int(np.count_nonzero(flat))
    block_row[flat] = rng.integers(0, n_hist, size=n_new, dtype=np.int32)
    if carry is not None:
        continued = ~flat[row_first]
        block_row[row_first[continued]] = (carry[continued] + 1) % n_hist
    idx = block_row[last_start]
    idx += positions - last_start
    idx %= np.int32(n_hist)
    idx = idx.reshape(n_paths, days)
    return idx, idx[:, -1].copy()


def simulate(
    returns: Any,
    *,
    years: int = 10,
    method: Method = "bootstrap",
    n_paths: int = 10_000,
    seed: int = 0,
    start_value: float = 10_000.0,
    contribution: float = 0.0,
    target: float | None = None,
    block_length: float = DEFAULT_BLOCK_LENGTH,
    df: float = 5.0,
    steps_per_year: int = 12,
) -> MonteCarloResult:
    """Project ``start_value`` invested in the index ``years`` ahead (see the module docstring).

    Args:
        returns: the index's daily simple returns (array or Series; NaN and returns <= -100 % dropped).
        years: horizon, 1..30 years of 252 trading days.
        method: ``bootstrap`` (stationary block bootstrap), ``normal`` or ``t`` (parametric).
        n_paths: number of simulated paths.
        seed: seed of numpy's PCG64 generator; the same inputs and seed give the same result.
        start_value: value at the start (currency units, > 0).
        contribution: added at the end of each year (negative: a withdrawal).
        target: a value; ``prob_target`` is ``P(V_T >= target)``.
        block_length: mean block length of the bootstrap, trading days (>= 1).
        df: degrees of freedom of the Student-t (> 2).
        steps_per_year: rows of the fan per year (12: monthly; 1: yearly).

    Raises:
        ValueError: a parameter outside its range (named in the message).
    """
    if not MIN_YEARS <= int(years) <= MAX_YEARS:
        raise ValueError(f"years must be between {MIN_YEARS} and {MAX_YEARS}; got {years}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    if n_paths < 1 or start_value <= 0 or block_length < 1 or df <= 2 or steps_per_year not in (1, 2, 4, 12):
        raise ValueError(
            "n_paths >= 1, start_value > 0, block_length >= 1, df > 2 and steps_per_year in (1, 2, 4, 12) are required"
        )
    years = int(years)
    x = _log_returns(returns)
    mu = float(x.mean()) if x.size else float("nan")
    sigma = float(x.std(ddof=1)) if x.size > 1 else float("nan")
    invested = float(start_value + contribution * years)
    step_days = DAYS_PER_YEAR // steps_per_year
    n_steps = years * steps_per_year
    columns = ["years"] + [f"p{p}" for p in FAN_PERCENTILES]
    step_years = np.arange(1, n_steps + 1) / steps_per_year
    if x.size < 2 or not np.isfinite(sigma):
        fan = pd.DataFrame(np.nan, index=pd.RangeIndex(1, n_steps + 1, name="step"), columns=columns)
        fan["years"] = step_years
        empty = np.full(0, np.nan)
        return MonteCarloResult(
            fan,
            empty,
            empty,
            float("nan"),
            None if target is None else float("nan"),
            invested,
            method,
            float(block_length) if method == "bootstrap" else None,
            years,
            n_paths,
            seed,
            mu,
            sigma,
        )

    rng = np.random.default_rng(seed)
    # Work in log values: the running peak, the drawdown and the cumulative growth need no exp() on every day.
    log_value = np.full(n_paths, float(np.log(start_value)))
    log_peak = log_value.copy()
    worst = np.zeros(n_paths)  # most negative log(V / peak) seen
    recorded = np.empty((n_steps, n_paths))
    record_cols = np.arange(1, steps_per_year + 1) * step_days - 1
    carry: np.ndarray | None = None
    t_scale = sigma * np.sqrt((df - 2.0) / df)
    ruined = np.zeros(n_paths, dtype=bool)
    x32 = x.astype(np.float32)
    flows = np.zeros(n_paths)  # contributions actually paid in (withdrawals actually taken) per path
    shape = (DAYS_PER_YEAR, n_paths)  # days down, paths across: the cumulative ops run along contiguous rows
    for year in range(years):
        if method == "bootstrap":
            idx, carry = _bootstrap_indices(rng, n_paths, DAYS_PER_YEAR, x.size, float(block_length), carry)
            chunk = x32[idx.T]
        elif method == "normal":
            chunk = rng.standard_normal(shape, dtype=np.float32)
            chunk *= np.float32(sigma)
            chunk += np.float32(mu)
        else:  # t_nu = Z / sqrt(chi2_nu / nu), chi2_nu = 2 Gamma(nu / 2)
            chunk = rng.standard_normal(shape, dtype=np.float32)
            chi2 = rng.standard_gamma(df / 2.0, size=shape, dtype=np.float32)
            chi2 *= np.float32(2.0 / df)
            np.sqrt(chi2, out=chi2)
            chunk /= chi2
            chunk *= np.float32(t_scale)
            chunk += np.float32(mu)
        np.cumsum(chunk, axis=0, out=chunk)
        chunk += log_value.astype(np.float32)
        levels = chunk  # log values
        running_peak = np.maximum.accumulate(levels, axis=0)
        np.maximum(running_peak, log_peak.astype(np.float32), out=running_peak)
        running_peak -= levels
        np.maximum(worst, running_peak.max(axis=0), out=worst)
        log_peak = np.maximum(log_peak, levels.max(axis=0))
        log_value = levels[-1].astype(np.float64)
        rows = slice(year * steps_per_year, (year + 1) * steps_per_year)
        recorded[rows] = np.exp(levels[record_cols].astype(np.float64))
        if contribution:
            gross = np.where(ruined, 0.0, np.exp(log_value))
            flow = np.maximum(contribution, -gross)  # a withdrawal takes at most what is there
            flows += flow
            value = gross + flow
            ruined |= value <= 0.0
            with np.errstate(divide="ignore"):
                log_value = np.log(np.maximum(value, 0.0))
            log_peak = np.maximum(log_peak, log_value)
            worst = np.where(ruined, np.inf, np.maximum(worst, log_peak - log_value))
            recorded[(year + 1) * steps_per_year - 1] = np.where(ruined, 0.0, value)
        if ruined.any():
            recorded[rows, :][:, ruined] = 0.0
    value = np.where(ruined, 0.0, np.exp(log_value))
    max_dd = np.expm1(-worst)  # V / peak - 1 = exp(-(log peak - log V)) - 1
    pct = np.percentile(recorded, FAN_PERCENTILES, axis=1).T
    fan = pd.DataFrame(
        np.column_stack([step_years, pct]), index=pd.RangeIndex(1, n_steps + 1, name="step"), columns=columns
    )
    prob_target = None if target is None else float((value >= target).mean())
    loss = value < start_value + flows
    return MonteCarloResult(
        fan,
        value,
        max_dd,
        float(loss.mean()),
        prob_target,
        invested,
        method,
        float(block_length) if method == "bootstrap" else None,
        years,
        n_paths,
        seed,
        mu,
        sigma,
    )
