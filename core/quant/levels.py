"""Level series around the engine: the rebalance calendar and two transformations of price levels.

:func:`rebalance_schedule` marks the rows that close a rebalance period (used by :func:`core.quant.engine.backtest`
and the benchmark blend); :func:`total_return_prices` turns closes into dividend-reinvested levels (the
``total_return`` basis); :func:`fixed_weight_blend` is a fixed-weight blend of level series (a benchmark blend).
Pure: no database, clock, network or Streamlit; inputs are never modified.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["fixed_weight_blend", "rebalance_schedule", "total_return_prices"]

_PERIOD_CODES = {"weekly": "W", "monthly": "M", "quarterly": "Q", "yearly": "Y"}


def total_return_prices(closes: pd.DataFrame, dividends: pd.DataFrame | None) -> pd.DataFrame:
    """Dividend-reinvested price levels (docs/methodology.md "Total return").

    Per asset, over the rows where it has a close ``P``: ``TR_first = P_first`` and
    ``TR_j = TR_{j-1} (P_j + D_j) / P_{j-1}``, where ``j-1`` is the asset's previous close and ``D_j`` the cash
    dividends per share going ex after that close and up to row ``j`` (a dividend dated on a day without a close
    counts at the next close). Cells without a close stay NaN, so the engine sees the same gaps. Pure: the
    inputs are not modified; with no dividends the closes come back unchanged.
    """
    if dividends is None or dividends.empty or closes.empty:
        return closes
    div = dividends.reindex(columns=closes.columns).fillna(0.0)
    rows = closes.index.searchsorted(div.index)  # the close on or after each dividend date
    keep = rows < len(closes.index)
    per_row = np.zeros(closes.shape)
    np.add.at(per_row, rows[keep], div.to_numpy(dtype=np.float64)[keep])
    out = closes.copy()
    price = closes.to_numpy(dtype=np.float64)
    cum_div = np.cumsum(per_row, axis=0)
    for j in range(closes.shape[1]):
        obs = np.flatnonzero(np.isfinite(price[:, j]))
        if obs.size < 2 or not per_row[obs[0] + 1 :, j].any():
            continue
        p = price[obs, j]
        credited = np.diff(cum_div[obs, j])  # dividends after the previous close, up to this one
        gross = (p[1:] + credited) / p[:-1]
        levels = np.empty(obs.size)
        levels[0] = p[0]
        levels[1:] = p[0] * np.cumprod(gross)
        out.iloc[obs, j] = levels
    return out


def fixed_weight_blend(
    levels: pd.DataFrame, weights: dict[str, float], *, period: str = "monthly", base_value: float = 100.0
) -> pd.Series:
    """A fixed-weight blend of level series rebalanced at the close of each ``period`` (docs/methodology.md
    "Benchmark"): from the first date where every component has a level (later gaps carried forward), holdings are
    reset to ``weights`` at every row :func:`rebalance_schedule` marks and drift with prices in between:
    ``V_t = sum_i h_i P_{i,t}`` with ``h_i = w_i V_reb / P_{i,reb}``. No costs. Empty when the components never
    overlap."""
    names = list(weights)
    frame = levels.reindex(columns=names).ffill()
    frame = frame.loc[frame.notna().all(axis=1)]
    if frame.empty:
        return pd.Series(dtype=float, name="blend")
    prices = frame.to_numpy(dtype=np.float64)
    w = np.array([float(weights[n]) for n in names])
    marks = rebalance_schedule(frame.index, period)
    values = np.empty(len(frame))
    holdings = w * base_value / prices[0]
    for t in range(len(frame)):
        values[t] = float(holdings @ prices[t])
        if marks[t]:
            holdings = w * values[t] / prices[t]
    return pd.Series(values, index=frame.index, name="blend")


def rebalance_schedule(dates: pd.DatetimeIndex, period: str) -> np.ndarray:
    """Boolean mask of the rows that close a ``period`` (see the :mod:`core.quant.engine` docstring, "Rebalancing")."""
    n = len(dates)
    if period == "daily" or n == 0:
        return np.ones(n, dtype=bool)
    code = _PERIOD_CODES[period]
    naive = dates.tz_localize(None) if dates.tz is not None else dates
    periods = naive.to_period(code)
    mask = np.zeros(n, dtype=bool)
    mask[:-1] = periods[:-1] != periods[1:]
    nxt = naive[-1] + pd.offsets.BDay(1)
    mask[-1] = pd.Period(nxt, freq=code) != periods[-1]
    return mask
