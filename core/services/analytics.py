"""The numbers of one config version over one period: what the reports and the dashboard show.

"Numbers agree everywhere": the Reports and the Dashboard call the functions of this module, so a
figure in an exported file is the figure on the screen for the same config and period.

Periods
    The period math is :mod:`core.quant.periods` (docs/methodology.md, "Periods"): a period is a *base
    date* and an *end date*; its series is the last stored level on or before the base date followed by
    every level up to the end, so a period return is ``V_end / V_base - 1``. Callers use that module
    directly; this one adds :func:`resolve_period` (the bounds over a version's stored index).

The view (:func:`performance_view`)
    Stored results only (index levels, allocations at each rebalance, turnover and costs, prices of the
    assets held, the benchmark of :func:`core.services.market.benchmark_symbol`); nothing is backtested
    again. Returns are fractions, levels index points, weights fractions of the index level (cash = 1 -
    sum of weights). Risk metrics use the configured risk-free rate (``market.risk_free`` over the stored index's
    dates, like the stored metrics: issue 15), so the ``max`` period reproduces
    :func:`core.services.compute.stored_metrics` exactly. Daily weights between rebalances are the stored
    weights drifted with prices (bought and held), as in the engine; contributions follow the engine's
    definition ``contribution_i = sum_t w_{i,t-1} * V_{t-1} * r_{i,t} / V_base`` so that
    ``sum(contributions) - cost drag + residual = period return``; the residual is what the engine's data
    hygiene (return clipping, outliers, forward-fill limit) changed and is shown, never hidden.

    :func:`build_performance_view` cuts the period once (:func:`period_slice`) and composes one builder
    per section, each returning the :class:`PerformanceView` fields it owns: :func:`summary_section`,
    :func:`series_section`, :func:`trailing_section`, :func:`drawdown_section`, :func:`calendar_section`,
    :func:`rolling_section`, :func:`holdings_section`, :func:`trades_section`,
    :func:`attribution_section` and :func:`benchmark_section`. Definitions: docs/methodology.md.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select

from core.db import unit_of_work
from core.errors import NotFoundError, ValidationFailed
from core.models import Asset, StrategyConfigRow
from core.models.base import id_in_range
from core.quant import periods, risk
from core.quant.periods import as_date, period_bounds, period_series
from core.services import compute
from core.services import prices as price_store
from core.services.market import risk_free, stored_version_benchmark

__all__ = [
    "ROLLING_WINDOWS",
    "TOP_HOLDINGS",
    "WORST_N",
    "STRESS_MONTHS",
    "ViewInputs",
    "PerformanceView",
    "PeriodSlice",
    "Holdings",
    "resolve_period",
    "load_view_inputs",
    "period_slice",
    "summary_section",
    "series_section",
    "trailing_section",
    "drawdown_section",
    "calendar_section",
    "rolling_section",
    "holdings_section",
    "trades_section",
    "attribution_section",
    "benchmark_section",
    "build_performance_view",
    "performance_view",
    "drifted_weights",
]

#: Rolling windows (trading days) of the rolling volatility / Sharpe / beta / excess return.
ROLLING_WINDOWS: tuple[int, ...] = (63, 252)
#: Holdings shown one by one in the correlation matrix (the largest at the end of the period).
TOP_HOLDINGS = 10
#: Rows of the worst days / weeks tables and of the drawdown table.
WORST_N = 10
#: Worst benchmark months shown as stress periods.
STRESS_MONTHS = 5
OTHER = "Other"
#: Below this a weight change is rounding, not a trade.
_TRADE_EPS = 1e-9


# --------------------------------------------------------------------------- inputs (database)
@dataclass
class ViewInputs:
    """Everything stored about one config version that the view needs (full history)."""

    config_id: int
    config_name: str
    config_version: int
    params: dict[str, Any]
    computed_at: dt.datetime | None
    index: pd.Series  # stored index levels
    benchmark: pd.Series | None  # benchmark closes on the index dates (forward-filled)
    benchmark_symbol: str | None
    allocations: pd.DataFrame  # rebalance dates x symbols, post-trade weights
    rebalances: pd.DataFrame  # turnover, cost (fraction of the pre-trade level) by date
    prices: pd.DataFrame  # closes of every symbol ever held, on the index dates
    assets: pd.DataFrame  # index symbol; name, sector, asset_class, source
    sources: list[str]  # data sources of the constituents and the benchmark
    risk_free: float = 0.0  # annual rate of Sharpe / Sortino / alpha (market.risk_free, issue 15)
    risk_free_label: str = ""

    @property
    def label(self) -> str:
        return f"{self.config_name} v{self.config_version}"

    @property
    def demo(self) -> bool:
        return "demo" in self.sources

    @property
    def first_date(self) -> dt.date | None:
        return self.index.index[0].date() if len(self.index) else None

    @property
    def as_of(self) -> dt.date | None:
        return self.index.index[-1].date() if len(self.index) else None


def load_view_inputs(config_id: int) -> ViewInputs:
    """Read the stored results of ``config_id`` (NotFoundError when the config does not exist); the benchmark is
    :func:`core.services.market.benchmark_symbol`, the one benchmark rule."""
    index = compute.stored_index(config_id)
    allocations = compute.stored_allocations(config_id)
    rebalances = compute.stored_rebalances(config_id)
    with unit_of_work() as session:
        row = session.get(StrategyConfigRow, config_id) if id_in_range(config_id) else None
        if row is None:
            raise NotFoundError(f"no strategy config with id {config_id}")
        name, version, params, computed_at = row.name, row.version, dict(row.params or {}), row.computed_at
        # the version's own benchmark (a symbol or a blend) or the default rule: market.version_benchmark
        bench_levels, bench_sym = stored_version_benchmark(
            session, params, index.index[-1].date() if len(index) else None
        )
        rf = risk_free(session, index.index[0].date(), index.index[-1].date()) if len(index) else risk_free(session)
        symbols = [str(s) for s in allocations.columns]
        asset_rows = session.execute(
            select(
                Asset.symbol,
                Asset.name,
                Asset.sector,
                Asset.asset_class,
                Asset.source,
                Asset.is_benchmark,
                Asset.is_active,
            )
        ).all()
        prices = pd.DataFrame()
        benchmark = None
        if len(index):
            if symbols:
                prices = price_store.load_price_matrix(session, symbols, None, index.index[-1].date())
            if bench_levels is not None and len(bench_levels):
                # As compute_config does: benchmark closes carried forward onto the index dates.
                benchmark = bench_levels.dropna().reindex(index.index).ffill().rename(bench_sym)
    assets = pd.DataFrame(
        asset_rows, columns=["symbol", "name", "sector", "asset_class", "source", "is_benchmark", "is_active"]
    ).set_index("symbol")
    assets["sector"] = assets["sector"].fillna(OTHER)
    if len(index) and not prices.empty:
        # Carried forward like the dashboard's drifted weights; the first rows stay NaN before a listing.
        prices = prices.reindex(prices.index.union(index.index)).ffill().reindex(index.index)
    shown = set(symbols) | ({bench_sym} if bench_sym else set())
    used = assets[assets.index.isin(shown) | (assets["is_active"] & ~assets["is_benchmark"])]
    sources = sorted({str(s) for s in used["source"].dropna()})
    return ViewInputs(
        config_id=config_id,
        config_name=name,
        config_version=version,
        params=params,
        computed_at=computed_at,
        index=index,
        benchmark=benchmark,
        benchmark_symbol=bench_sym,
        allocations=allocations,
        rebalances=rebalances,
        prices=prices,
        assets=assets[["name", "sector", "asset_class", "source"]],
        sources=sources,
        risk_free=rf.rate,
        risk_free_label=rf.label,
    )


# --------------------------------------------------------------------------- the view
@dataclass
class PerformanceView:
    """The numbers of one config version over one period (fractions unless stated)."""

    config_id: int
    config_label: str
    config_name: str
    config_version: int
    params: dict[str, Any]
    start: dt.date  # requested base date
    end: dt.date  # requested end date
    base_date: dt.date  # the date of the base level actually used
    end_date: dt.date  # the last date with a level in the period
    benchmark_symbol: str | None
    sources: list[str]
    demo: bool
    index_level: pd.Series  # stored levels over the period (base first)
    index: pd.Series  # rebased: 100 at the base date
    benchmark: pd.Series | None  # benchmark rebased: 100 at the base date
    returns: pd.DataFrame  # daily returns: index, benchmark
    metrics: dict[str, Any]  # risk.risk_metrics(index, benchmark) over the period
    benchmark_metrics: dict[str, Any]  # risk.risk_metrics(benchmark) over the period (standalone)
    metrics_table: pd.DataFrame  # key, label, index, benchmark, unit, formula, reason
    trailing: pd.DataFrame  # rows periods.TRAILING_PERIODS; index, benchmark (as of end_date)
    drawdown: pd.Series  # V / cummax(V) - 1 over the period
    benchmark_drawdown: pd.Series | None
    drawdowns: pd.DataFrame  # risk.drawdown_table, the WORST_N deepest
    monthly_returns: pd.DataFrame  # year x month 1..12
    benchmark_monthly_returns: pd.DataFrame | None
    yearly_returns: pd.DataFrame  # year; index, benchmark, excess
    rolling: pd.DataFrame  # vol_w, sharpe_w, beta_w, excess_w for w in ROLLING_WINDOWS
    weights_history: pd.DataFrame  # rebalance dates in force during the period x symbols
    weights_now: pd.DataFrame  # symbol, name, sector, weight (drifted to end_date)
    sector_weights: pd.DataFrame  # sector, weight
    sector_weights_history: pd.DataFrame  # rebalance dates x sectors
    rebalances: pd.DataFrame  # date, turnover, cost, buys, sells (in the period)
    trades: pd.DataFrame  # date, symbol, name, before, after, trade
    contribution: pd.DataFrame  # symbol, name, sector, avg_weight, contribution
    sector_contribution: pd.DataFrame  # sector, contribution
    attribution: dict[str, float]  # assets, cost_drag, residual, total (sums to the period return)
    correlation: pd.DataFrame  # Index, benchmark and the top holdings, daily returns
    worst_days: pd.DataFrame  # date, index, benchmark
    worst_weeks: pd.DataFrame  # week_ending, index, benchmark
    stress: pd.DataFrame  # month, benchmark, index, excess (worst benchmark months)
    warnings: list[str] = field(default_factory=list)
    risk_free: float = 0.0  # the annual rate used by Sharpe, Sortino and alpha (issue 15)
    risk_free_label: str = ""

    @property
    def total_return(self) -> float | None:
        return self.metrics.get("total_return")


def performance_view(config_id: int, start: dt.date, end: dt.date) -> PerformanceView:
    """Every number of the reports (and the dashboard) for ``config_id`` from base ``start`` to ``end``.

    ``start`` / ``end`` normally come from :func:`period_bounds`. Raises NotFoundError for an unknown
    config and ValidationFailed when the config has no index values or the period holds no trading day.
    """
    return build_performance_view(load_view_inputs(config_id), start, end)


def resolve_period(inputs: ViewInputs, period: str, start: Any = None, end: Any = None) -> tuple[dt.date, dt.date]:
    """:func:`period_bounds` over the stored index of ``inputs``."""
    if inputs.as_of is None or inputs.first_date is None:
        raise ValidationFailed({"config_id": f"{inputs.label} has no computed index values yet; compute it first"})
    return period_bounds(period, inputs.as_of, inputs.first_date, start, end)


def drifted_weights(
    allocations: pd.DataFrame, prices: pd.DataFrame, dates: pd.DatetimeIndex
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """End-of-day weights on ``dates`` and the pre-trade weights at each rebalance.

    ``allocations`` are post-trade weights at the close of each rebalance date; between two rebalances
    holdings are bought and held (``h_i(t) = w_i * P_i(t) / P_i(d)``, cash ``1 - sum(w)`` earns nothing),
    so ``W_i(t) = h_i(t) / (sum_j h_j(t) + cash)``. Prices are carried forward. Weights are 0 before the
    first allocation. Returns ``(daily weights, pre-trade weights by rebalance date)``.
    """
    symbols = list(allocations.columns)
    n, k = len(dates), len(symbols)
    out = np.zeros((n, k))
    pre = np.zeros((len(allocations), k))
    if n == 0 or k == 0 or allocations.empty:
        return pd.DataFrame(out, index=dates, columns=symbols), pd.DataFrame(
            pre, index=allocations.index, columns=symbols
        )
    px = prices.reindex(index=dates, columns=symbols).to_numpy(dtype=float)
    rows = dates.get_indexer(allocations.index)
    w_all = allocations.to_numpy(dtype=float)
    prev_state: tuple[np.ndarray, float, np.ndarray] | None = None  # (weights, cash, prices) at last rebalance
    valid = [(j, r) for j, r in enumerate(rows) if r >= 0]
    for pos, (j, r) in enumerate(valid):
        if prev_state is not None:
            w0, cash0, p0 = prev_state
            with np.errstate(invalid="ignore", divide="ignore"):
                h = w0 * np.where(w0 > 0, px[r] / p0, 0.0)
            h = np.nan_to_num(h)
            pre[j] = h / (h.sum() + cash0)
        w = w_all[j]
        cash = max(0.0, 1.0 - float(w.sum()))
        stop = valid[pos + 1][1] if pos + 1 < len(valid) else n
        seg = px[r:stop]
        with np.errstate(invalid="ignore", divide="ignore"):
            h = np.nan_to_num(w * np.where(w > 0, seg / px[r], 0.0))
        out[r:stop] = h / (h.sum(axis=1, keepdims=True) + cash)
        prev_state = (w, cash, px[r])
    return (
        pd.DataFrame(out, index=dates, columns=symbols),
        pd.DataFrame(pre, index=allocations.index, columns=symbols),
    )


def _rebase(levels: pd.Series) -> pd.Series:
    if levels.empty or float(levels.iloc[0]) == 0:
        return levels.astype(float)
    return levels / float(levels.iloc[0]) * 100.0


def _metrics_table(metrics: dict[str, Any], bench_metrics: dict[str, Any]) -> pd.DataFrame:
    rows = []
    missing = metrics.get("missing", {}) or {}
    for key, (label, formula, unit) in risk.METRIC_DEFINITIONS.items():
        if key not in metrics:
            continue
        value = metrics.get(key)
        rows.append(
            {
                "key": key,
                "label": label,
                "index": value,
                "benchmark": bench_metrics.get(key) if bench_metrics else None,
                "unit": unit,
                "formula": formula,
                "reason": missing.get(key) if value is None else None,
            }
        )
    return pd.DataFrame(rows, columns=["key", "label", "index", "benchmark", "unit", "formula", "reason"])


def _attach_names(frame: pd.DataFrame, assets: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame["name"] = frame["symbol"].map(assets["name"]).fillna(frame["symbol"])
    frame["sector"] = frame["symbol"].map(assets["sector"]).fillna(OTHER)
    return frame


# --------------------------------------------------------------------------- the sections
@dataclass
class PeriodSlice:
    """The period cut once from the full history: what every section builder reads.

    ``full`` is the whole stored index (NaN dropped); ``level`` its levels from the base through the end
    (:func:`core.quant.periods.period_series`); ``benchmark`` the benchmark on those dates (None when it has no
    price in the period); ``warnings`` what the cut noticed.
    """

    full: pd.Series
    level: pd.Series
    benchmark_full: pd.Series | None
    benchmark: pd.Series | None
    benchmark_symbol: str | None
    warnings: list[str] = field(default_factory=list)
    risk_free: float = 0.0
    risk_free_label: str = ""

    @property
    def dates(self) -> pd.DatetimeIndex:
        return self.level.index

    @property
    def base_ts(self) -> pd.Timestamp:
        return self.level.index[0]

    @property
    def end_ts(self) -> pd.Timestamp:
        return self.level.index[-1]


def period_slice(inputs: ViewInputs, start: dt.date, end: dt.date) -> PeriodSlice:
    """The index and benchmark of ``inputs`` over the period based on ``start`` and ending ``end``.

    Raises ValidationFailed naming ``config_id`` when nothing is computed, ``end`` when the period holds no
    trading day after its base.
    """
    full = inputs.index.dropna()
    if full.empty:
        raise ValidationFailed({"config_id": f"{inputs.label} has no computed index values yet; compute it first"})
    level = period_series(full, start, end)
    if len(level) < 2:
        raise ValidationFailed({"end": f"the period {start} .. {end} holds no trading day after its start"})
    warnings: list[str] = []
    bench_level = None
    if inputs.benchmark is not None:
        bench_level = inputs.benchmark.reindex(level.index)
        if bench_level.isna().all():
            bench_level = None
            warnings.append("the benchmark has no prices in this period")
        elif bench_level.isna().any():
            warnings.append(
                "the benchmark has no price on some dates of the period; they are left out of "
                "the benchmark-relative metrics"
            )
    return PeriodSlice(
        full=full,
        level=level,
        benchmark_full=inputs.benchmark,
        benchmark=bench_level,
        benchmark_symbol=inputs.benchmark_symbol,
        warnings=warnings,
        risk_free=inputs.risk_free,
        risk_free_label=inputs.risk_free_label,
    )


def summary_section(cut: PeriodSlice) -> dict[str, Any]:
    """``metrics`` (:func:`core.quant.risk.risk_metrics` of the period at the configured rf, against the benchmark),
    ``benchmark_metrics`` (the benchmark alone) and ``metrics_table`` (both, with labels and formulas)."""
    metrics = risk.risk_metrics(cut.level, cut.benchmark, rf=cut.risk_free)
    bench_metrics = risk.risk_metrics(cut.benchmark, None, rf=cut.risk_free) if cut.benchmark is not None else {}
    return {
        "metrics": metrics,
        "benchmark_metrics": bench_metrics,
        "metrics_table": _metrics_table(metrics, bench_metrics),
        "risk_free": cut.risk_free,
        "risk_free_label": cut.risk_free_label,
    }


def series_section(cut: PeriodSlice) -> dict[str, Any]:
    """``index_level`` (stored levels), ``index`` and ``benchmark`` rebased to 100 at the base, and the daily
    ``returns`` (index, benchmark; the benchmark's without filling gaps)."""
    index_rb = _rebase(cut.level).rename("index")
    bench_rb = None
    if cut.benchmark is not None:
        b = cut.benchmark.dropna()
        bench_rb = (b / float(b.iloc[0]) * 100.0).rename(cut.benchmark_symbol or "benchmark")
    returns = pd.DataFrame({"index": cut.level.pct_change()}).iloc[1:]
    if cut.benchmark is not None:
        returns["benchmark"] = cut.benchmark.pct_change(fill_method=None).iloc[1:]
    return {"index_level": cut.level.rename("level"), "index": index_rb, "benchmark": bench_rb, "returns": returns}


def trailing_section(cut: PeriodSlice) -> dict[str, Any]:
    """``trailing``: :func:`core.quant.periods.trailing_returns` of the index and the benchmark as of the end of
    the period, over the full history (they look back before the period)."""
    trail_idx = periods.trailing_returns(cut.full, as_of=cut.end_ts)
    trail_bm = (
        periods.trailing_returns(cut.benchmark_full.dropna(), as_of=cut.end_ts)
        if cut.benchmark_full is not None
        else {}
    )
    trailing = pd.DataFrame(
        {"index": trail_idx, "benchmark": {k: trail_bm.get(k) for k in trail_idx}}, index=list(trail_idx), dtype=float
    )
    trailing.index.name = "period"
    return {"trailing": trailing}


def drawdown_section(cut: PeriodSlice) -> dict[str, Any]:
    """``drawdown`` and ``benchmark_drawdown`` (``V / cummax(V) - 1``) and ``drawdowns``, the :data:`WORST_N`
    deepest episodes of the index over the period."""
    return {
        "drawdown": risk.drawdown_series(cut.level),
        "benchmark_drawdown": risk.drawdown_series(cut.benchmark) if cut.benchmark is not None else None,
        "drawdowns": risk.drawdown_table(cut.level, top=WORST_N),
    }


def calendar_section(cut: PeriodSlice) -> dict[str, Any]:
    """``monthly_returns`` / ``benchmark_monthly_returns`` (year x month) and ``yearly_returns`` (index,
    benchmark, excess by year): :func:`core.quant.periods.monthly_returns` / ``yearly_returns`` of the period."""
    bench = cut.benchmark
    yearly = pd.DataFrame({"index": periods.yearly_returns(cut.level)})
    if bench is not None:
        yearly["benchmark"] = periods.yearly_returns(bench).reindex(yearly.index)
        yearly["excess"] = yearly["index"] - yearly["benchmark"]
    yearly.index.name = "year"
    return {
        "monthly_returns": periods.monthly_returns(cut.level),
        "benchmark_monthly_returns": periods.monthly_returns(bench) if bench is not None else None,
        "yearly_returns": yearly,
    }


def rolling_section(cut: PeriodSlice) -> dict[str, Any]:
    """``rolling``: :func:`core.quant.risk.rolling_metrics` and the rolling excess return over
    :data:`ROLLING_WINDOWS`, computed over the full history (a window looks back before the period), then cut."""
    full, bench_full = cut.full, cut.benchmark_full
    rolling = risk.rolling_metrics(full, bench_full, windows=ROLLING_WINDOWS, rf=cut.risk_free)
    if bench_full is not None:
        aligned_b = bench_full.reindex(full.index)
        for w in ROLLING_WINDOWS:
            rolling[f"excess_{w}"] = (full / full.shift(w) - 1.0) - (aligned_b / aligned_b.shift(w) - 1.0)
    return {"rolling": rolling.loc[(rolling.index > cut.base_ts) & (rolling.index <= cut.end_ts)]}


@dataclass
class Holdings:
    """Weights of the index over its full history (:func:`drifted_weights`): ``daily`` end-of-day weights,
    ``pre_trade`` the weights just before each rebalance."""

    daily: pd.DataFrame
    pre_trade: pd.DataFrame


def _holdings(inputs: ViewInputs, cut: PeriodSlice) -> Holdings:
    if inputs.allocations.empty:
        return Holdings(daily=pd.DataFrame(index=cut.full.index), pre_trade=pd.DataFrame())
    daily, pre = drifted_weights(inputs.allocations, inputs.prices, cut.full.index)
    return Holdings(daily=daily, pre_trade=pre)


def _rebalances_in(alloc: pd.DataFrame, cut: PeriodSlice) -> pd.DatetimeIndex:
    """The rebalance dates after the base and up to the end of the period."""
    if alloc.empty:
        return pd.DatetimeIndex([])
    return alloc.index[(alloc.index > cut.base_ts) & (alloc.index <= cut.end_ts)]


def holdings_section(inputs: ViewInputs, cut: PeriodSlice, held: Holdings) -> dict[str, Any]:
    """``weights_history`` / ``sector_weights_history`` (the allocations in force during the period, by asset and
    by sector, largest last weight first) and ``weights_now`` / ``sector_weights`` (drifted to the end)."""
    alloc, assets = inputs.allocations, inputs.assets
    sym_cols = list(alloc.columns)
    if not alloc.empty:
        in_force = alloc.loc[: cut.base_ts].index[-1:]
        weights_history = alloc.loc[in_force.append(_rebalances_in(alloc, cut))]
    else:
        weights_history = pd.DataFrame()
    if not weights_history.empty:
        weights_history = weights_history.loc[:, (weights_history > 0).any(axis=0)]
        weights_history = weights_history[
            sorted(weights_history.columns, key=lambda s: -float(weights_history[s].iloc[-1]))
        ]
    sector_of = assets["sector"].reindex(sym_cols).fillna(OTHER) if sym_cols else pd.Series(dtype=object)
    if not weights_history.empty:
        sector_hist = weights_history.T.groupby(sector_of.reindex(weights_history.columns).to_numpy()).sum().T
        sector_hist = sector_hist[sorted(sector_hist.columns, key=lambda s: -float(sector_hist[s].iloc[-1]))]
    else:
        sector_hist = pd.DataFrame()
    daily_w = held.daily
    now_w = daily_w.loc[cut.end_ts] if len(daily_w.columns) else pd.Series(dtype=float)
    weights_now = pd.DataFrame({"symbol": now_w.index.astype(str), "weight": now_w.to_numpy(dtype=float)})
    weights_now = weights_now[weights_now["weight"] > _TRADE_EPS]
    weights_now = _attach_names(weights_now, assets)[["symbol", "name", "sector", "weight"]].sort_values(
        "weight", ascending=False, ignore_index=True
    )
    sector_weights = (
        weights_now.groupby("sector", as_index=False)["weight"]
        .sum()
        .sort_values("weight", ascending=False, ignore_index=True)
    )
    return {
        "weights_history": weights_history,
        "sector_weights_history": sector_hist,
        "weights_now": weights_now,
        "sector_weights": sector_weights,
    }


def trades_section(inputs: ViewInputs, cut: PeriodSlice, held: Holdings) -> dict[str, Any]:
    """``rebalances`` (date, turnover, cost, buys, sells; the stored turnover and cost where present) and
    ``trades`` (date, symbol, name, weight before / after, trade) of the rebalances in the period."""
    alloc, assets = inputs.allocations, inputs.assets
    reb_in = _rebalances_in(alloc, cut)
    trade_cols = ["date", "symbol", "name", "before", "after", "trade"]
    if not len(reb_in):
        return {
            "trades": pd.DataFrame(columns=trade_cols),
            "rebalances": pd.DataFrame(columns=["date", "turnover", "cost", "buys", "sells"]),
        }
    stored_reb = inputs.rebalances
    after_m = alloc.loc[reb_in].to_numpy(dtype=float)
    before_m = held.pre_trade.loc[reb_in].to_numpy(dtype=float)
    delta_m = after_m - before_m
    moved = np.abs(delta_m) > _TRADE_EPS
    r_idx, c_idx = np.nonzero(moved)
    trades = pd.DataFrame(
        {
            "date": reb_in[r_idx],
            "symbol": np.asarray(list(alloc.columns), dtype=object)[c_idx],
            "before": before_m[r_idx, c_idx],
            "after": after_m[r_idx, c_idx],
            "trade": delta_m[r_idx, c_idx],
        }
    )
    trades = _attach_names(trades, assets)[trade_cols]
    own_turnover = np.abs(delta_m).sum(axis=1)
    if not stored_reb.empty:
        turnover = stored_reb["turnover"].reindex(reb_in).to_numpy(dtype=float)
        turnover = np.where(np.isnan(turnover), own_turnover, turnover)
        cost = np.nan_to_num(stored_reb["cost"].reindex(reb_in).to_numpy(dtype=float))
    else:
        turnover, cost = own_turnover, np.zeros(len(reb_in))
    rebalances = pd.DataFrame(
        {
            "date": reb_in,
            "turnover": turnover,
            "cost": cost,
            "buys": (moved & (delta_m > 0)).sum(axis=1).astype(int),
            "sells": (moved & (delta_m < 0)).sum(axis=1).astype(int),
        }
    )
    return {"trades": trades, "rebalances": rebalances}


def attribution_section(
    inputs: ViewInputs, cut: PeriodSlice, held: Holdings, rebalances: pd.DataFrame
) -> dict[str, Any]:
    """``contribution`` per asset and ``sector_contribution`` (engine definition:
    ``sum_t w_{i,t-1} V_{t-1} r_{i,t} / V_base``, t in (base, end]) and ``attribution`` (assets, cost_drag,
    residual, total: ``assets - cost_drag + residual = total``, the period return)."""
    full, level = cut.full, cut.level
    sym_cols = list(inputs.allocations.columns)
    daily_w = held.daily
    v_base = float(level.iloc[0])
    if len(daily_w.columns):
        pos0 = full.index.get_loc(cut.base_ts)
        pos1 = full.index.get_loc(cut.end_ts)
        px = inputs.prices.reindex(columns=sym_cols).to_numpy(dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = px[pos0 + 1 : pos1 + 1] / px[pos0:pos1] - 1.0
        r = np.nan_to_num(r)
        w_prev = daily_w.to_numpy()[pos0:pos1]
        v_prev = full.to_numpy()[pos0:pos1][:, None]
        contrib = (w_prev * v_prev * r).sum(axis=0) / v_base
        avg_w = daily_w.to_numpy()[pos0 + 1 : pos1 + 1].mean(axis=0)
        contribution = pd.DataFrame(
            {"symbol": [str(s) for s in sym_cols], "avg_weight": avg_w, "contribution": contrib}
        )
        contribution = contribution[(contribution["avg_weight"] > 0) | (contribution["contribution"] != 0)]
        contribution = _attach_names(contribution, inputs.assets)[
            ["symbol", "name", "sector", "avg_weight", "contribution"]
        ]
        contribution = contribution.sort_values("contribution", ascending=False, ignore_index=True)
    else:
        contribution = pd.DataFrame(columns=["symbol", "name", "sector", "avg_weight", "contribution"])
    sector_contribution = (
        contribution.groupby("sector", as_index=False)["contribution"]
        .sum()
        .sort_values("contribution", ascending=False, ignore_index=True)
    )
    cost_drag = 0.0
    if len(rebalances):
        c = rebalances["cost"].to_numpy(dtype=float)
        v_post = full.reindex(pd.DatetimeIndex(rebalances["date"])).to_numpy(dtype=float)
        v_pre = np.where(c < 1, v_post / np.where(c < 1, 1.0 - c, 1.0), v_post)  # levels are after costs
        cost_drag = float((c * v_pre).sum() / v_base)
    total = float(level.iloc[-1]) / v_base - 1.0
    assets_sum = float(contribution["contribution"].sum()) if len(contribution) else 0.0
    attribution = {
        "assets": assets_sum,
        "cost_drag": cost_drag,
        "residual": total - (assets_sum - cost_drag),
        "total": total,
    }
    return {"contribution": contribution, "sector_contribution": sector_contribution, "attribution": attribution}


def benchmark_section(
    inputs: ViewInputs, cut: PeriodSlice, weights_now: pd.DataFrame, returns: pd.DataFrame
) -> dict[str, Any]:
    """``correlation`` (daily returns of the index, the benchmark and the :data:`TOP_HOLDINGS` largest holdings),
    ``worst_days`` / ``worst_weeks`` (the :data:`WORST_N` worst, beside the benchmark) and ``stress`` (the index in
    the :data:`STRESS_MONTHS` worst benchmark months). Weeks and months are
    :func:`core.quant.periods.calendar_returns` from the base."""
    level, bench = cut.level, cut.benchmark
    top = weights_now["symbol"].head(TOP_HOLDINGS).tolist()
    levels = pd.DataFrame({"Index": level})
    if bench is not None:
        levels[cut.benchmark_symbol or "Benchmark"] = bench
    if top:
        levels = levels.join(inputs.prices.reindex(index=cut.dates, columns=top))
    correlation = risk.correlation_matrix(levels)

    worst_days = returns.nsmallest(WORST_N, "index").reset_index(names="date")
    wk_idx = periods.calendar_returns(level, "W-FRI")
    worst_weeks = pd.DataFrame({"week_ending": [p.end_time.date() for p in wk_idx.index], "index": wk_idx.to_numpy()})
    if bench is not None:
        wk_bm = periods.calendar_returns(bench.ffill(), "W-FRI").reindex(wk_idx.index)
        worst_weeks["benchmark"] = wk_bm.to_numpy()
    worst_weeks = worst_weeks.nsmallest(WORST_N, "index").reset_index(drop=True)
    if bench is not None:
        mb = periods.calendar_returns(bench.ffill(), "M")
        mi = periods.calendar_returns(level, "M").reindex(mb.index)
        stress = pd.DataFrame({"month": [str(p) for p in mb.index], "benchmark": mb.to_numpy(), "index": mi.to_numpy()})
        stress["excess"] = stress["index"] - stress["benchmark"]
        stress = stress.nsmallest(STRESS_MONTHS, "benchmark").reset_index(drop=True)
    else:
        stress = pd.DataFrame(columns=["month", "benchmark", "index", "excess"])
    return {"correlation": correlation, "worst_days": worst_days, "worst_weeks": worst_weeks, "stress": stress}


def build_performance_view(inputs: ViewInputs, start: dt.date, end: dt.date) -> PerformanceView:
    """:func:`performance_view` over already loaded ``inputs`` (pure: no database): the period cut once, then
    every section builder."""
    cut = period_slice(inputs, start, end)
    held = _holdings(inputs, cut)
    series = series_section(cut)
    holdings = holdings_section(inputs, cut, held)
    trades = trades_section(inputs, cut, held)
    return PerformanceView(
        config_id=inputs.config_id,
        config_label=inputs.label,
        config_name=inputs.config_name,
        config_version=inputs.config_version,
        params=inputs.params,
        start=as_date(start) or cut.base_ts.date(),
        end=as_date(end) or cut.end_ts.date(),
        base_date=cut.base_ts.date(),
        end_date=cut.end_ts.date(),
        benchmark_symbol=inputs.benchmark_symbol if cut.benchmark is not None else None,
        sources=list(inputs.sources),
        demo=inputs.demo,
        warnings=cut.warnings,
        **summary_section(cut),
        **series,
        **trailing_section(cut),
        **drawdown_section(cut),
        **calendar_section(cut),
        **rolling_section(cut),
        **holdings,
        **trades,
        **attribution_section(inputs, cut, held, trades["rebalances"]),
        **benchmark_section(inputs, cut, holdings["weights_now"], series["returns"]),
    )
