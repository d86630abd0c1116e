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

from typing import Any

import numpy as np
import pandas as pd

# The engine's parts live in their own modules; everything that was importable from here still is (re-exported).
from core.quant.hygiene import HYGIENE_FIELDS, CleanedPrices, clean_prices, hygiene_key
from core.quant.levels import fixed_weight_blend, rebalance_schedule, total_return_prices
from core.quant.result import LEVEL_RATIO_MAX as LEVEL_RATIO_MAX
from core.quant.result import LEVEL_RATIO_MIN as LEVEL_RATIO_MIN
from core.quant.result import WEIGHT_TOLERANCE as WEIGHT_TOLERANCE
from core.quant.result import BacktestInputError, BacktestResult, DegenerateResultError, check_result
from core.quant.targets import _apply_cap as _apply_cap
from core.quant.targets import _caps, _missing_caps, _Targets
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
