"""The index engine: a pure, vectorised backtest of one rules-based methodology.

:func:`backtest` turns a price matrix (dates x symbols), optional market caps and a
:class:`~core.schemas.strategy.StrategyConfig` into index levels, daily weights,
trades and costs. It is pure: no database, clock, network or Streamlit; inputs are
never modified. Numpy works across assets; Python loops only over rebalance dates
(and the buy-and-hold segment between two of them).

Conventions (docs/methodology.md "Index construction", made exact)
------------------------------------------------------------------
Timing and no look-ahead
    Target weights set at the close of row ``t`` use data of rows ``<= t`` only and
    earn the returns of rows ``t+1, ...``. Every trailing statistic (momentum,
    volatility, outlier test, forward fill) is computed causally, so changing prices
    after ``t`` leaves ``values[:t+1]`` bit-for-bit unchanged.
Data hygiene (in this order, per asset)
    1. Non-positive prices, and prices below ``min_price``, are missing.
    2. A missing price is carried forward for at most ``ffill_limit`` rows; carried
       prices give zero returns. Beyond the limit the asset has no price.
    3. Daily simple returns ``P_t / P_{t-1} - 1`` are defined when both prices exist.
    4. Returns are clipped to ``[-return_clip, +return_clip]``.
    5. Outliers: with ``outlier_z`` set, the (clipped) return at ``t`` is compared
       with the mean and standard deviation (ddof=1) of the ``outlier_window``
       clipped returns ending at ``t-1`` (a full window of valid returns is
       required, otherwise no test). If ``|r_t - mean| > outlier_z * std`` (and
       ``std > 0``) the return is set to **0** (treated as a bad tick: the holding
       keeps its value that day). The cleaned returns drive everything: holdings,
       momentum and volatility.
Eligibility
    An asset is eligible at ``t`` when it has a price at ``t`` (after forward fill)
    and at least ``min_history`` observed prices (after step 1, forward-filled
    prices do not count) up to and including ``t``.
Sleeves (each sums to 1 over its own assets)
    * equal: ``1/n`` over eligible assets.
    * momentum: trailing return ``m = prod(1 + r) - 1`` over the last
      ``momentum_lookback`` returns (all of them must be valid). Assets with
      ``m <= momentum_threshold`` get nothing; the others are weighted **in
      proportion to their excess** ``m - momentum_threshold`` (with the default
      threshold 0: in proportion to positive momentum).
    * market cap: proportional to the market cap at ``t`` (or its square root when
      ``market_cap_sqrt``); caps are forward-filled with the same ``ffill_limit``;
      assets without a positive cap are left out of this sleeve only. Missing caps
      are never an error (real providers such as TwelveData's time series carry
      none): with no caps at all (``market_caps`` None, empty, or no positive value)
      the sleeve is empty on every date, and the empty-sleeve rule below applies;
      a warning names the sleeve, and another names the constituents that never
      had a cap (they get no market-cap weight).
    * risk parity: proportional to ``1 / std(r, ddof=1)`` of the valid returns
      among the last ``risk_parity_lookback`` rows (at least 2 valid returns and a
      non-zero volatility are needed).
Blend
    ``w = sum_k s_k w_k / sum_{k non-empty} s_k``: a sleeve with no eligible asset on
    a rebalance date is left out and the remaining sleeves are scaled up
    (renormalised), with a warning counting such dates. This is the one rule for a
    sleeve whose input is missing (no market caps, too little history for momentum
    or volatility); nothing upstream refuses a config for it. If every sleeve is empty
    the index holds cash (all weights 0) until the next rebalance, with a warning.
Constraints
    ``top_n`` keeps the ``top_n`` largest blended weights (ties: column order) and
    rescales them to 1. ``max_weight`` caps each weight; the excess is spread over
    the uncapped assets in proportion to their weights, repeated until nothing
    breaches. When the cap cannot be met (``n_held * max_weight < 1``, which the
    schema rejects statically only for ``top_n``) every held asset sits at the cap
    and the remainder is **held in cash**, with a warning.
    Issue 15 adds, in this order (see :mod:`core.quant.constraints`): ``exclusions`` are never eligible;
    ``min_weight`` drops the smallest holdings below it (keeping ``min_holdings``); a target with fewer than
    ``min_holdings`` holdings is not traded (the current holdings are kept, no cost, a warning counts the
    dates; the first allocation waits for a target that meets it); ``sector_caps`` and ``asset_class_caps``
    (groups from ``asset_info``) are applied together with ``max_weight``, the excess spread over the
    holdings whose groups have room. Without group caps the single-asset cap above is used unchanged.
Basis
    The engine works on whatever price levels it is given. For a total-return index the caller passes
    :func:`total_return_prices` (closes with dividends reinvested) instead of the closes.
Rebalancing
    The first allocation is made at the close of the first row whose target is
    non-empty. Scheduled rebalances happen at the close of the last row of each
    period (ISO weeks Monday-Sunday, calendar months, quarters, years) of the price
    index. For the final row the period is taken as complete only if the next
    business day (Mon-Fri) falls in a new period, so an open period is not
    rebalanced early (``daily``: every row). With ``drift_band`` set, the index
    also rebalances at the close of any row where some asset's weight differs from
    its last target by more than ``drift_band`` (absolute).
Drift and delisting
    Between rebalances holdings are bought and held (weights move with prices).
    An asset that loses its price (beyond the forward-fill limit) is sold at its
    last price: from that row its value sits in cash (earning 0) until the next
    rebalance reinvests it. This forced sale has no cost and is not turnover.
Costs
    At each rebalance ``turnover = sum_i |w_target_i - w_pre_i|`` (the initial buy
    from cash counts as a turnover of ``sum(w_target)``), ``cost = cost_bps / 1e4 *
    turnover`` as a fraction of the pre-trade level, and the post-trade level is
    ``V_pre * (1 - cost)``.
Contribution
    ``contribution_i = sum_t h_{i,t-1} * r_{i,t} / base_value`` where ``h`` is the
    asset's holding in index points; hence exactly
    ``sum_i contribution_i - sum_rebalances cost_t * V_pre_t / base_value
    = V_end / base_value - 1``: contributions add up to the total return before costs.

Output conventions: ``values`` is the level on every input row (``base_value`` before
the first allocation), reported after the costs of that row's rebalance; ``weights``
are end-of-day weights after trading (0 before the first allocation), ``cash`` is
``1 - sum(weights)``.

Degenerate results (:func:`check_result`, run at the end of every backtest, so the preview
and the stored compute both get it)
    * Any level, weight, turnover, cost or contribution that is not a finite number
      (overflow to inf, NaN), a level outside ``[LEVEL_RATIO_MIN, LEVEL_RATIO_MAX]`` times
      ``base_value`` (10^-6 .. 10^6: no real index gains a million-fold or keeps one
      millionth of its value), or a weight outside ``[0, 1]`` raises
      :class:`DegenerateResultError` naming the first date and the likely cause (a bad tick
      with ``return_clip`` off, nonsense parameters). Such a result is never stored.
    * An index that held assets yet never moved (a flat index, e.g. every return treated as
      an outlier) is returned with a warning in ``BacktestResult.warnings``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from core.errors import ValidationFailed
from core.quant.constraints import apply_caps, apply_min_weight, group_codes
from core.schemas.strategy import StrategyConfig

__all__ = [
    "HYGIENE_FIELDS",
    "BacktestInputError",
    "BacktestResult",
    "CleanedPrices",
    "DegenerateResultError",
    "backtest",
    "check_result",
    "clean_prices",
    "hygiene_key",
    "rebalance_schedule",
    "fixed_weight_blend",
    "total_return_prices",
]

_PERIOD_CODES = {"weekly": "W", "monthly": "M", "quarterly": "Q", "yearly": "Y"}


#: Levels are sane within these multiples of ``base_value`` (see "Degenerate results" above).
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
    """Boolean mask of the rows that close a ``period`` (see module docstring)."""
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


def _check_inputs(prices: Any, market_caps: Any, cfg: StrategyConfig) -> None:
    if not isinstance(prices, pd.DataFrame):
        raise BacktestInputError({"prices": "must be a pandas DataFrame (dates x symbols)"})
    if not isinstance(prices.index, pd.DatetimeIndex):
        raise BacktestInputError({"prices": "the index must be a DatetimeIndex"})
    if not prices.index.is_monotonic_increasing or prices.index.has_duplicates:
        raise BacktestInputError({"prices": "dates must be unique and sorted ascending"})
    if prices.columns.has_duplicates:
        raise BacktestInputError({"prices": "symbols (columns) must be unique"})
    # Missing caps are not an input error: the market-cap sleeve is then empty (module docstring, "Sleeves").
    if cfg.market_cap > 0 and market_caps is not None and not isinstance(market_caps, pd.DataFrame):
        raise BacktestInputError({"market_caps": "must be a pandas DataFrame (dates x symbols)"})


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
    """Returns ``(R0, rvalid, pvalid, eligible_from)``; see the hygiene steps in the module docstring."""
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


#: The config fields that decide the cleaned returns and eligibility (data hygiene, module docstring).
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
    #: (sleeve, parameters..., row) -> that sleeve's signal at the row (see :class:`_Targets`).
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


def _caps(market_caps: pd.DataFrame, prices: pd.DataFrame) -> np.ndarray:
    """Market caps aligned to ``prices`` (a view when already aligned; never modified)."""
    aligned = market_caps
    if not (market_caps.index.equals(prices.index) and market_caps.columns.equals(prices.columns)):
        aligned = market_caps.reindex(index=prices.index, columns=prices.columns)
    try:
        caps: np.ndarray = aligned.to_numpy(dtype=np.float64)
        return caps
    except (TypeError, ValueError) as exc:
        raise BacktestInputError({"market_caps": f"market caps must be numeric ({exc})"}) from None


def _missing_caps(caps: np.ndarray | None, symbols: pd.Index, cfg: StrategyConfig) -> tuple[bool, list[str]]:
    """``(no caps at all, warnings)``: warnings naming the market-cap sleeve when no constituent has a positive cap (``caps`` None counts as
    none), or the constituents that never have one (they are left out of that sleeve only)."""
    with np.errstate(invalid="ignore"):
        has_cap = (
            np.asarray((caps > 0).any(axis=0)) if caps is not None and caps.size else np.zeros(len(symbols), dtype=bool)
        )
    if not has_cap.any():
        return True, [
            f"no market caps: the market_cap sleeve (weight {cfg.market_cap:g}) was left out on every date "
            "and the other sleeves were scaled up to fill it (import market caps or shares outstanding "
            "to use it)"
        ]
    missing = [str(s) for s, ok in zip(symbols, has_cap) if not ok]
    if not missing:
        return False, []
    shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
    return False, [
        f"no market caps for {shown}: left out of the market_cap sleeve (they keep their weight in the other sleeves)"
    ]


def _apply_cap(w: np.ndarray, cap: float) -> np.ndarray:
    """Cap weights at ``cap``, spreading the excess proportionally over the uncapped ones."""
    capped = np.zeros(w.shape, dtype=bool)
    limit = cap * (1 + 1e-12)
    for _ in range(w.size + 1):
        over = w > limit
        if not over.any():
            break
        capped |= over
        excess = float((w[over] - cap).sum())
        w[over] = cap
        free = ~capped & (w > 0)
        free_sum = float(w[free].sum())
        if free_sum <= 0:
            break  # infeasible: the excess stays in cash
        w[free] *= 1.0 + excess / free_sum
    w[capped] = cap
    return w


class _Targets:
    """Target weights at a row, from the cleaned data (closes over trailing statistics only)."""

    def __init__(
        self,
        cfg: StrategyConfig,
        cleaned: CleanedPrices,
        caps: np.ndarray | None,
        caps_id: int | None = None,
        symbols: pd.Index | None = None,
        asset_info: pd.DataFrame | None = None,
    ) -> None:
        self.cfg = cfg
        names = [str(s) for s in symbols] if symbols is not None else []
        # issue 15 constraints (core.quant.constraints): exclusions, group caps, minimum weight and holdings
        self.included = ~np.isin(np.array(names, dtype=object), list(cfg.exclusions)) if cfg.exclusions else None
        self.groups: list[tuple[np.ndarray, np.ndarray]] = []
        for column, group_caps in (("sector", cfg.sector_caps), ("asset_class", cfg.asset_class_caps)):
            if group_caps:
                labels: dict[str, str | None] = {}
                if asset_info is not None and column in asset_info.columns:
                    labels = {str(k): (None if pd.isna(v) else str(v)) for k, v in asset_info[column].items()}
                self.groups.append(group_codes(names, labels, group_caps))
        self.min_holdings_dates = 0
        self.short_of_holdings = False
        self.r0, self.rvalid, self.pvalid = cleaned.r0, cleaned.rvalid, cleaned.pvalid
        self.eligible_from = cleaned.eligible_from
        self.caps = caps
        self.caps_id = caps_id
        self.memo = cleaned.memo
        self.sleeves = [(s, w) for s, w in cfg.sleeve_weights.items() if w > 0]
        # Causal cumulative statistics: growth index and count of invalid returns.
        self.growth = cleaned.growth() if cfg.momentum > 0 else None
        needs_counts = cfg.momentum > 0 or cfg.risk_parity > 0
        self.invalid_cum = cleaned.invalid_cum() if needs_counts else None
        self.empty_sleeve_dates: dict[str, int] = {s: 0 for s, _ in self.sleeves}
        self.cap_shortfall_dates = 0

    def _momentum(self, k: int, elig: np.ndarray) -> np.ndarray | None:
        lb = self.cfg.momentum_lookback
        if k < lb:
            return None
        # both are set whenever the momentum sleeve has a weight (see __init__)
        assert self.invalid_cum is not None and self.growth is not None
        key = ("momentum", lb, k)
        signal = self.memo.get(key)
        if signal is None:  # one lookback's signal at one row, shared by every config with that lookback
            signal = self.memo[key] = (
                (self.invalid_cum[k] - self.invalid_cum[k - lb]) == 0,
                self.growth[k] / self.growth[k - lb] - 1.0,
            )
        full, mom = signal
        score = np.where(elig & full, mom - self.cfg.momentum_threshold, 0.0)
        score[score < 0] = 0.0
        total = float(score.sum())
        return score / total if total > 0 else None

    def _risk_parity(self, k: int, elig: np.ndarray) -> np.ndarray | None:
        key = ("risk_parity", self.cfg.risk_parity_lookback, k)  # eligibility is part of the cleaned data
        if key not in self.memo:
            self.memo[key] = self._risk_parity_at(k, elig)
        weights: np.ndarray | None = self.memo[key]
        return weights

    def _risk_parity_at(self, k: int, elig: np.ndarray) -> np.ndarray | None:
        lb = self.cfg.risk_parity_lookback
        lo = max(k - lb + 1, 0)
        assert self.invalid_cum is not None  # set whenever the risk_parity sleeve has a weight
        invalid = self.invalid_cum[k] - (self.invalid_cum[lo - 1] if lo > 0 else 0)
        n = ((k - lo + 1) - invalid).astype(np.float64)
        ok = elig & (n >= 2)
        if not ok.any():
            return None
        window = self.r0[lo : k + 1]  # invalid returns are stored as 0, so plain sums are sums over valid ones
        s1 = window.sum(axis=0)
        s2 = np.einsum("ij,ij->j", window, window)
        with np.errstate(invalid="ignore", divide="ignore"):
            ss = s2 - s1 * s1 / n
            var = ss / (n - 1.0)
            # A variance below 1e-12 of the mean square is rounding noise of a constant series.
            ok &= ss > 1e-12 * s2
        if not ok.any():
            return None
        inv = np.zeros(var.size)
        inv[ok] = 1.0 / np.sqrt(var[ok])
        return inv / float(inv.sum())

    def _market_cap(self, k: int, elig: np.ndarray) -> np.ndarray | None:
        if self.caps is None:  # no caps at all: the sleeve is empty (the empty-sleeve rule)
            return None
        key = ("market_cap", self.caps_id, self.cfg.market_cap_sqrt, k)
        if self.caps_id is None:
            return self._market_cap_at(k, elig)
        if key not in self.memo:
            self.memo[key] = self._market_cap_at(k, elig)
        weights: np.ndarray | None = self.memo[key]
        return weights

    def _market_cap_at(self, k: int, elig: np.ndarray) -> np.ndarray | None:
        assert self.caps is not None
        # Latest positive cap within the forward-fill limit (causal, no filled copy kept).
        c = self.caps[k].copy()
        with np.errstate(invalid="ignore"):
            missing = ~(c > 0)
            back = 1
            while missing.any() and back <= self.cfg.ffill_limit and k - back >= 0:
                older = self.caps[k - back]
                take = missing & (older > 0)
                c[take] = older[take]
                missing &= ~take
                back += 1
        ok = elig & ~missing
        if not ok.any():
            return None
        w = np.where(ok, np.sqrt(c) if self.cfg.market_cap_sqrt else c, 0.0)
        return w / float(w.sum())

    def at(self, k: int) -> np.ndarray | None:
        """Target weights at the close of row ``k`` or ``None`` when nothing is eligible."""
        elig = self.pvalid[k] & (self.eligible_from <= k)
        self.short_of_holdings = False
        if self.included is not None:
            elig = elig & self.included
        if not elig.any():
            return None
        blend = np.zeros(elig.size)
        used = 0.0
        empty = []
        for sleeve, share in self.sleeves:
            if sleeve == "equal":
                w = elig / float(elig.sum())
            elif sleeve == "momentum":
                w = self._momentum(k, elig)
            elif sleeve == "market_cap":
                w = self._market_cap(k, elig)
            else:
                w = self._risk_parity(k, elig)
            if w is None:
                empty.append(sleeve)
                continue
            blend += share * w
            used += share
        if used == 0.0:
            return None
        for sleeve in empty:
            self.empty_sleeve_dates[sleeve] += 1
        blend /= used
        top_n = self.cfg.top_n
        if top_n is not None and np.count_nonzero(blend) > top_n:
            keep = np.argsort(-blend, kind="stable")[:top_n]
            selected = np.zeros_like(blend)
            selected[keep] = blend[keep]
            blend = selected / selected.sum()
        cfg = self.cfg
        if cfg.min_weight is not None:
            blend = apply_min_weight(blend, cfg.min_weight, cfg.min_holdings or 1)
        if cfg.min_holdings is not None and np.count_nonzero(blend) < cfg.min_holdings:
            self.short_of_holdings = True  # the engine keeps the current holdings (module docstring)
            return None
        if self.groups:
            blend = apply_caps(blend, cfg.max_weight, self.groups)
            if blend.sum() < 1.0 - 1e-9:
                self.cap_shortfall_dates += 1
        elif cfg.max_weight is not None:
            blend = _apply_cap(blend, cfg.max_weight)
            if blend.sum() < 1.0 - 1e-9:
                self.cap_shortfall_dates += 1
        return blend


# Overflow and 0/0 in the arithmetic are not warnings to print: check_result refuses such results.
@np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore")
def backtest(
    prices: pd.DataFrame,
    config: StrategyConfig | dict[str, Any],
    market_caps: pd.DataFrame | None = None,
    *,
    cleaned: CleanedPrices | None = None,
    asset_info: pd.DataFrame | None = None,
) -> BacktestResult:
    """Backtest the methodology ``config`` on ``prices``.

    Args:
        prices: dates x symbols closes, DatetimeIndex unique and ascending, NaN where an
            asset has no price. Not modified.
        config: a :class:`StrategyConfig` or a dict (validated; pydantic ``ValidationError``
            when invalid).
        market_caps: dates x symbols market caps, used when ``config.market_cap > 0``;
            reindexed to ``prices`` (missing cells are NaN). ``None`` (no caps) leaves the
            market-cap sleeve empty, with a warning naming it. Ignored when the sleeve has no weight.
        cleaned: ``clean_prices(prices, c)`` of a config ``c`` with the same :func:`hygiene_key` (shared by the
            variants of a sweep, :mod:`core.quant.batch`); the result is the same as without it.
        asset_info: symbol-indexed frame with ``sector`` and ``asset_class`` columns, used by ``sector_caps`` and
            ``asset_class_caps`` (an asset missing from it belongs to no capped group).

    Returns:
        :class:`BacktestResult` (conventions in the module docstring).

    Raises:
        BacktestInputError: ``prices`` (or ``market_caps``, when given) is not a usable frame.
            Missing market caps and dates with no eligible asset are not errors: the sleeve is
            left out, or the index stays flat, and ``warnings`` says so.
        DegenerateResultError: the result is not a meaningful index (see :func:`check_result`).
    """
    cfg = config if isinstance(config, StrategyConfig) else StrategyConfig.model_validate(config)
    _check_inputs(prices, market_caps, cfg)
    dates = prices.index
    symbols = prices.columns
    t_rows, n_assets = prices.shape
    base = float(cfg.base_value)
    warnings: list[str] = []

    values = np.full(t_rows, base)
    weights = np.zeros((0, n_assets))  # allocated after cleaning, to keep the peak memory low
    contribution = np.zeros(n_assets)
    rebal_rows: list[int] = []
    turnovers: list[float] = []
    costs: list[float] = []
    targets: list[np.ndarray] = []

    def result() -> BacktestResult:
        return check_result(raw_result(), cfg)

    def raw_result() -> BacktestResult:
        rdates = dates[rebal_rows] if rebal_rows else dates[:0]
        target_frame = pd.DataFrame(
            np.vstack(targets) if targets else np.zeros((0, n_assets)), index=rdates, columns=symbols
        )
        weight_frame = pd.DataFrame(weights, index=dates, columns=symbols, copy=False)
        return BacktestResult(
            values=pd.Series(values, index=dates, name="index"),
            weights=weight_frame,
            rebalance_dates=pd.DatetimeIndex(rdates),
            turnover=pd.Series(turnovers, index=rdates, name="turnover", dtype=float),
            costs=pd.Series(costs, index=rdates, name="costs", dtype=float),
            contribution=pd.Series(contribution / base, index=symbols, name="contribution"),
            target_weights=target_frame,
            warnings=warnings,
            cash=pd.Series(1.0 - weights.sum(axis=1), index=dates, name="cash"),
        )

    if t_rows == 0 or n_assets == 0:
        warnings.append("no prices: the index is empty")
        return result()

    if cleaned is None:
        cleaned = clean_prices(prices, cfg)
    elif cleaned.key != hygiene_key(cfg) or cleaned.shape != prices.shape:
        raise BacktestInputError({"cleaned": "was cleaned from other prices or under other data-hygiene fields"})
    r0, pvalid, eligible_from = cleaned.r0, cleaned.pvalid, cleaned.eligible_from
    weights = np.zeros((t_rows, n_assets))
    caps = None
    no_caps = False
    if cfg.market_cap > 0:
        caps = _caps(market_caps, prices) if market_caps is not None else None
        no_caps, cap_warnings = _missing_caps(caps, symbols, cfg)
        caps = None if no_caps else caps
        warnings.extend(cap_warnings)
    # the market-cap signal is memoised only while the caller shares the frame (a sweep's chunk)
    caps_id = id(market_caps) if caps is not None and market_caps is not None else None
    target_at = _Targets(cfg, cleaned, caps, caps_id, symbols, asset_info)
    scheduled = np.flatnonzero(rebalance_schedule(dates, cfg.rebalance))
    cost_rate = cfg.cost_bps / 1e4
    band = cfg.drift_band
    no_eligible_dates: list[int] = []
    kept_dates: list[int] = []

    # First allocation: first row with a non-empty target.
    first_candidate = int(eligible_from.min()) if n_assets else t_rows
    start = -1
    target = None
    for k in range(first_candidate, t_rows):
        if not pvalid[k].any():
            continue
        target = target_at.at(k)
        if target is not None:
            start = k
            break
    if start < 0:
        if first_candidate >= t_rows:
            warnings.append(
                "no asset was ever eligible (check min_history and the data): the index stays flat at its base value"
            )
        else:  # assets were eligible but every sleeve came out empty (e.g. no momentum above the threshold)
            empty = ", ".join(
                f"{s} ({p})"
                for s, p in (
                    ("momentum", f"momentum_threshold {cfg.momentum_threshold:g}"),
                    ("market_cap", "market caps"),
                    ("risk_parity", "volatility"),
                )
                if getattr(cfg, s) > 0
            )
            warnings.append(
                "the index never invested: every sleeve was empty on every date"
                + (f" (check {empty})" if empty else "")
                + "; the index stays flat at its base value"
            )
        return result()

    def rebalance(
        k: int, pre_weights: np.ndarray, pre_value: float, tgt: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, float]:
        if tgt is None and target_at.short_of_holdings:
            kept_dates.append(k)
            tgt = pre_weights.copy()  # fewer than min_holdings: keep the holdings, no trade, no cost
        elif tgt is None:
            no_eligible_dates.append(k)
            tgt = np.zeros(n_assets)
        turnover = float(np.abs(tgt - pre_weights).sum())
        cost = cost_rate * turnover
        value = pre_value * (1.0 - cost)
        values[k] = value
        weights[k] = tgt
        rebal_rows.append(k)
        turnovers.append(turnover)
        costs.append(cost)
        targets.append(tgt)
        holdings = tgt * value
        return tgt, holdings, value - float(holdings.sum())

    target, holdings, cash = rebalance(start, np.zeros(n_assets), base, target)
    cur = start
    while cur < t_rows - 1:
        pos = np.searchsorted(scheduled, cur, side="right")
        nxt = int(scheduled[pos]) if pos < scheduled.size else t_rows - 1
        is_rebalance = bool(pos < scheduled.size)
        seg = slice(cur + 1, nxt + 1)
        priced = pvalid[seg]
        growth = 1.0 + r0[seg]
        all_alive = priced.all()
        if not all_alive:
            # Sold at the last price: no growth from the first unpriced row on.
            alive = np.logical_and.accumulate(priced, axis=0)
            growth[~alive] = 1.0
        if growth.shape[0] <= 64:  # a row loop beats cumprod's strided kernel on short segments
            for i in range(1, growth.shape[0]):
                growth[i] *= growth[i - 1]
        else:
            np.cumprod(growth, axis=0, out=growth)
        held = growth
        held *= holdings
        seg_values = held.sum(axis=1) + cash
        seg_weights = held / seg_values[:, None] if all_alive else np.where(alive, held, 0.0) / seg_values[:, None]
        if band is not None:
            breach = np.flatnonzero(np.abs(seg_weights - target).max(axis=1) > band)
            if breach.size and cur + 1 + int(breach[0]) < nxt + (0 if is_rebalance else 1):
                cut = int(breach[0]) + 1
                nxt, is_rebalance = cur + cut, True
                held, seg_values, seg_weights = held[:cut], seg_values[:cut], seg_weights[:cut]
                seg = slice(cur + 1, nxt + 1)
        values[seg] = seg_values
        weights[seg] = seg_weights
        contribution += held[-1] - holdings
        cur = nxt
        if is_rebalance:
            target, holdings, cash = rebalance(cur, seg_weights[-1], float(seg_values[-1]), target_at.at(cur))
        else:
            break

    for sleeve, count in target_at.empty_sleeve_dates.items():
        if count and not (sleeve == "market_cap" and no_caps):  # already said once, without a count
            warnings.append(
                f"the {sleeve} sleeve had no eligible asset on {count} rebalance date(s); "
                "its weight was spread over the other sleeves"
            )
    if target_at.cap_shortfall_dates:
        what = " and ".join(
            name
            for name, on in (
                (f"max_weight {cfg.max_weight or 0:g}", cfg.max_weight is not None),
                ("sector_caps", bool(cfg.sector_caps)),
                ("asset_class_caps", bool(cfg.asset_class_caps)),
            )
            if on
        )
        warnings.append(
            f"{what} could not be met on "
            f"{target_at.cap_shortfall_dates} rebalance date(s) (too few assets): "
            "every holding was capped and the rest held in cash"
        )
    if kept_dates:
        warnings.append(
            f"fewer than min_holdings ({cfg.min_holdings}) assets in the target on {len(kept_dates)} "
            f"rebalance date(s) (first {dates[kept_dates[0]].date()}): the holdings were kept"
        )
    if no_eligible_dates:
        first = dates[no_eligible_dates[0]].date()
        warnings.append(
            f"no eligible asset on {len(no_eligible_dates)} rebalance date(s) (first {first}): the index held cash"
        )
    return result()
