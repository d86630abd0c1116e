"""The backtest's result and its checks (docs/methodology.md "Index construction").

:class:`BacktestResult` is what :func:`core.quant.engine.backtest` returns; :class:`BacktestInputError` and
:class:`DegenerateResultError` are the errors it raises; :func:`check_result`, run at the end of every backtest,
refuses a degenerate result and flags a flat one ("Degenerate results" in the :mod:`core.quant.engine` docstring).
Pure: no database, clock, network or Streamlit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from core.errors import ValidationFailed
from core.schemas.strategy import StrategyConfig

__all__ = [
    "LEVEL_RATIO_MAX",
    "LEVEL_RATIO_MIN",
    "WEIGHT_TOLERANCE",
    "BacktestInputError",
    "BacktestResult",
    "DegenerateResultError",
    "check_result",
]


#: Levels are sane within these multiples of ``base_value`` (see "Degenerate results", :mod:`core.quant.engine`).
LEVEL_RATIO_MIN = 1e-6
LEVEL_RATIO_MAX = 1e6
#: Weights may exceed [0, 1] by this much (rounding of the cap and the renormalisation).
WEIGHT_TOLERANCE = 1e-9


class BacktestInputError(ValidationFailed, ValueError):
    """``prices`` or ``market_caps`` cannot be used; ``errors`` maps the argument name to the problem."""


class DegenerateResultError(ValidationFailed, ValueError):
    """The backtest produced numbers that are not a meaningful index (overflow, NaN, an absurd level).

    ``errors`` maps what is wrong (``index``, ``weights``, ...) to a sentence with the first date and
    the likely cause; ``date`` is that first date (or None) and ``value`` the offending number.
    """

    def __init__(self, errors: dict[str, str], *, date: Any = None, value: float | None = None) -> None:
        super().__init__(errors)
        self.date = date
        self.value = value


@dataclass
class BacktestResult:
    """Everything a backtest produces; all weights and levels are fractions / index points."""

    values: pd.Series
    weights: pd.DataFrame
    rebalance_dates: pd.DatetimeIndex
    turnover: pd.Series
    costs: pd.Series
    contribution: pd.Series
    target_weights: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    cash: pd.Series | None = None


def _first_bad(mask: np.ndarray, dates: pd.DatetimeIndex) -> Any:
    rows = np.flatnonzero(mask.any(axis=1) if mask.ndim == 2 else mask)
    return dates[rows[0]].date() if rows.size and len(dates) else None


def _cause(cfg: StrategyConfig) -> str:
    if cfg.return_clip is None:
        return (
            "a price in the data looks like a bad tick and return_clip is off: set return_clip "
            "(e.g. 0.5) or fix the prices"
        )
    return "check the prices for bad ticks and the config for extreme parameters"


def check_result(result: BacktestResult, cfg: StrategyConfig) -> BacktestResult:
    """Refuse a degenerate backtest result, or flag a suspicious one; return ``result``.

    Pure (no I/O). Raises :class:`DegenerateResultError` when a level, weight, turnover, cost or
    contribution is not finite, when a level leaves ``[LEVEL_RATIO_MIN, LEVEL_RATIO_MAX] x base_value``
    or a weight leaves ``[0, 1]``. Appends a warning to ``result.warnings`` when the index held assets
    but its level never changed (a flat index). An empty result passes unchanged.
    """
    values = result.values.to_numpy(dtype=np.float64)
    dates = result.values.index
    if values.size == 0:
        return result
    base = float(cfg.base_value)
    finite = np.isfinite(values)
    if not finite.all():
        day = _first_bad(~finite, dates)
        raise DegenerateResultError(
            {"index": f"the index level is not a finite number from {day} (overflow): {_cause(cfg)}"},
            date=day,
            value=float(values[~finite][0]),
        )
    ratio = values / base
    high, low = ratio > LEVEL_RATIO_MAX, ratio < LEVEL_RATIO_MIN
    if high.any() or low.any():
        bad = high | low
        day = _first_bad(bad, dates)
        value = float(values[bad][0])
        what = (
            f"reached {value:.3g}, more than {LEVEL_RATIO_MAX:g} times its base value {base:g}"
            if high.any() and (not low.any() or np.argmax(high) <= np.argmax(low))
            else f"fell to {value:.3g}, less than {LEVEL_RATIO_MIN:g} of its base value {base:g}"
        )
        raise DegenerateResultError(
            {"index": f"the index level {what} on {day}; no real index does that: {_cause(cfg)}"}, date=day, value=value
        )
    weights = result.weights.to_numpy(dtype=np.float64)
    if weights.size:
        row_sums = weights.sum(axis=1)  # one pass: NaN/inf anywhere in a row shows in its sum
        bad_rows = ~np.isfinite(row_sums) | (row_sums > 1 + WEIGHT_TOLERANCE)
        bad_rows |= weights.min(axis=1) < -WEIGHT_TOLERANCE
        if bad_rows.any():
            day = _first_bad(bad_rows, dates)
            raise DegenerateResultError(
                {
                    "weights": f"the weights on {day} are not fractions between 0 and 1 "
                    f"summing to at most 1: {_cause(cfg)}"
                },
                date=day,
            )
    for name, series in (("turnover", result.turnover), ("costs", result.costs), ("contribution", result.contribution)):
        numbers = series.to_numpy(dtype=np.float64)
        if numbers.size and not np.isfinite(numbers).all():
            raise DegenerateResultError({name: f"the {name} is not a finite number: {_cause(cfg)}"})
    if result.rebalance_dates.size and weights.size:
        start = int(dates.get_loc(result.rebalance_dates[0]))
        invested = weights[start:].sum(axis=1) > 0
        held = values[start:]
        if invested.any() and held.size > 2 and float(held.max() - held.min()) <= 1e-12 * base:
            result.warnings.append(
                f"the index held assets from {dates[start].date()} but its level never moved from {held[0]:g} "
                "(a flat index): check return_clip, outlier_z and the prices; its risk metrics mean nothing"
            )
    return result
