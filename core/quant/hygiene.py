"""Data hygiene of the engine: prices cleaned once into returns and eligibility, shared where configs agree.

:func:`clean_prices` applies the hygiene fields of a config (:data:`HYGIENE_FIELDS`: minimum price, forward fill,
clipping, outliers, minimum history; the steps are in the :mod:`core.quant.engine` docstring) and returns
:class:`CleanedPrices`, which also memoises the trailing signals the sleeves compute from them. Configs with the same
:func:`hygiene_key` share one (:mod:`core.quant.batch`). Pure: no database, clock, network or Streamlit; the
prices are never modified.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from core.quant.result import BacktestInputError
from core.schemas.strategy import StrategyConfig

__all__ = ["HYGIENE_FIELDS", "CleanedPrices", "clean_prices", "hygiene_key"]


def _ffill_limited(a: np.ndarray, limit: int) -> np.ndarray:
    """Forward-fill NaNs of ``a`` in place along axis 0, at most ``limit`` rows (causal)."""
    if limit <= 0 or a.size == 0:
        return a
    missing = np.isnan(a)
    if not missing.any():
        return a
    rows = np.arange(a.shape[0], dtype=np.int32)[:, None]
    last = np.where(missing, np.int32(-1), rows)
    np.maximum.accumulate(last, axis=0, out=last)
    fill = missing & (last >= 0)
    del missing
    fill &= (rows - last) <= limit
    r_idx, c_idx = np.nonzero(fill)
    del fill
    a[r_idx, c_idx] = a[last[r_idx, c_idx], c_idx]
    return a


def _clean(prices: pd.DataFrame, cfg: StrategyConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Returns ``(R0, rvalid, pvalid, eligible_from)``; see the hygiene steps in :mod:`core.quant.engine`."""
    try:
        # Row-major: every later access is a row or a block of consecutive rows.
        a = np.array(prices.to_numpy(dtype=np.float64), dtype=np.float64, order="C", copy=True)
    except (TypeError, ValueError) as exc:
        raise BacktestInputError({"prices": f"prices must be numeric ({exc})"}) from None
    t_rows, _ = a.shape
    with np.errstate(invalid="ignore"):
        missing = ~(a > 0)
        if cfg.min_price is not None:
            missing |= a < cfg.min_price
    a[missing] = np.nan
    np.logical_not(missing, out=missing)  # now: observed
    observed_count = np.cumsum(missing, axis=0, dtype=np.int32)
    del missing
    reached = observed_count >= cfg.min_history
    del observed_count
    eligible_from = np.where(reached[-1], reached.argmax(axis=0), t_rows) if t_rows else np.zeros(0, int)
    del reached

    _ffill_limited(a, cfg.ffill_limit)
    pvalid = ~np.isnan(a)
    r = np.empty_like(a)
    r[0] = np.nan
    np.divide(a[1:], a[:-1], out=r[1:])
    del a
    r[1:] -= 1.0
    if cfg.return_clip is not None:
        np.clip(r, -cfg.return_clip, cfg.return_clip, out=r)
    if cfg.outlier_z is not None:
        frame = pd.DataFrame(r, copy=False)
        roll = frame.rolling(cfg.outlier_window, min_periods=cfg.outlier_window)
        mean = roll.mean().shift(1).to_numpy()
        std = roll.std(ddof=1).shift(1).to_numpy()
        with np.errstate(invalid="ignore"):
            outlier = (std > 0) & (np.abs(r - mean) > cfg.outlier_z * std)
        del mean, std, frame, roll
        r[outlier] = 0.0
    rvalid = ~np.isnan(r)
    r[~rvalid] = 0.0
    return r, rvalid, pvalid, eligible_from


#: The config fields that decide the cleaned returns and eligibility (data hygiene, :mod:`core.quant.engine`).
HYGIENE_FIELDS: tuple[str, ...] = (
    "min_price",
    "min_history",
    "ffill_limit",
    "return_clip",
    "outlier_z",
    "outlier_window",
)


def hygiene_key(cfg: StrategyConfig) -> tuple[Any, ...]:
    """Configs with equal keys clean the same prices into the same returns and eligibility."""
    return tuple(getattr(cfg, name) for name in HYGIENE_FIELDS)


@dataclass
class CleanedPrices:
    """Cleaned returns and eligibility of one price matrix under one set of hygiene fields, plus the trailing
    signals computed from them, memoised: what every config sharing :func:`hygiene_key` computes alike.

    A backtest given one (``backtest(..., cleaned=...)``) reuses it and gives exactly the numbers it gives
    without (same arithmetic on the same arrays); :mod:`core.quant.batch` shares one across the variants of a
    sweep. The arrays are never modified after :func:`clean_prices`.
    """

    key: tuple[Any, ...]
    shape: tuple[int, int]
    r0: np.ndarray
    rvalid: np.ndarray
    pvalid: np.ndarray
    eligible_from: np.ndarray
    _growth: np.ndarray | None = None
    _invalid_cum: np.ndarray | None = None
    #: (sleeve, parameters..., row) -> that sleeve's signal at the row (see :class:`core.quant.targets._Targets`).
    memo: dict[tuple[Any, ...], Any] = field(default_factory=dict)

    def growth(self) -> np.ndarray:
        """Causal growth index ``prod(1 + r)`` per asset (momentum is a ratio of two of its rows)."""
        if self._growth is None:
            growth = self.r0 + 1.0
            np.cumprod(growth, axis=0, out=growth)
            self._growth = growth
        return self._growth

    def invalid_cum(self) -> np.ndarray:
        """Running count of invalid returns per asset (a window is full when the count does not change)."""
        if self._invalid_cum is None:
            self._invalid_cum = np.cumsum(~self.rvalid, axis=0, dtype=np.int32)
        return self._invalid_cum


def clean_prices(prices: pd.DataFrame, config: StrategyConfig) -> CleanedPrices:
    """Apply the data hygiene of ``config`` to ``prices`` once (see :class:`CleanedPrices`)."""
    if prices.shape[0] == 0 or prices.shape[1] == 0:  # nothing to clean: backtest returns an empty index
        none = np.zeros(prices.shape, dtype=bool)
        return CleanedPrices(
            hygiene_key(config), prices.shape, np.zeros(prices.shape), none, none, np.zeros(prices.shape[1], dtype=int)
        )
    r0, rvalid, pvalid, eligible_from = _clean(prices, config)
    return CleanedPrices(hygiene_key(config), prices.shape, r0, rvalid, pvalid, eligible_from)
