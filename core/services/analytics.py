"""Periods and the numbers of one config version over one period: what the reports and the dashboard show.

"Numbers agree everywhere": the Reports and the Dashboard call the functions of this module, so a
figure in an exported file is the figure on the screen for the same config and period.

Periods (:func:`period_bounds`)
    A period is a *base date* ``start`` and an ``end`` date (calendar dates). Its series is the last
    stored level on or before ``start`` (the base) followed by every level up to ``end``, so a period
    return is ``V_end / V_base - 1`` — the same base :func:`core.quant.risk.trailing_returns` and
    :func:`core.services.dashboard.period_returns` use:

    ========  ==================================================
    MTD       last day of the previous month
    QTD       last day of the previous quarter
    YTD       31 December of the previous year
    1Y/3Y/5Y  ``as_of`` minus 12/36/60 calendar months
    max       the first date with an index value
    custom    ``start`` and ``end`` as given (validated)
    ========  ==================================================

    A period that reaches before the first stored date is refused (:class:`ValidationFailed` naming
    ``period``, or ``start``/``end`` for a custom range) instead of being silently shortened.

The view (:func:`performance_view`)
    Stored results only (index levels, allocations at each rebalance, turnover and costs, prices of the
    assets held, the benchmark); nothing is backtested again. Returns are fractions, levels index points,
    weights fractions of the index level (cash = 1 - sum of weights). Risk metrics use ``rf = 0`` like the
    stored metrics, so the ``max`` period reproduces :func:`core.services.compute.stored_metrics` exactly.
    Daily weights between rebalances are the stored weights drifted with prices (bought and held), as in
    the engine; contributions follow the engine's definition
    ``contribution_i = sum_t w_{i,t-1} * V_{t-1} * r_{i,t} / V_base`` so that
    ``sum(contributions) - cost drag + residual = period return``; the residual is what the engine's data
    hygiene (return clipping, outliers, forward-fill limit) changed and is shown, never hidden.
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
from core.quant import risk
from core.services import compute
from core.services import prices as price_store

__all__ = [
    "PERIODS", "PERIOD_LABELS", "ROLLING_WINDOWS", "TOP_HOLDINGS", "WORST_N", "STRESS_MONTHS",
    "ViewInputs", "PerformanceView", "period_bounds", "period_series", "period_return", "resolve_period",
    "load_view_inputs", "build_performance_view", "performance_view", "drifted_weights",
    "YEAR_TOTAL", "year_labels", "monthly_with_year_total",
]

#: Every period a report or the dashboard may ask for, in display order.
PERIODS: tuple[str, ...] = ("MTD", "QTD", "YTD", "1Y", "3Y", "5Y", "max", "custom")
PERIOD_LABELS: dict[str, str] = {
    "MTD": "Month to date", "QTD": "Quarter to date", "YTD": "Year to date", "1Y": "One year",
    "3Y": "Three years", "5Y": "Five years", "max": "Since inception", "custom": "Custom range",
}
_PERIOD_MONTHS = {"1Y": 12, "3Y": 36, "5Y": 60}
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


# --------------------------------------------------------------------------- periods
def _as_date(value: Any) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, pd.Timestamp):
        day: dt.date = value.date()
        return day
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def period_bounds(period: str, as_of: dt.date | pd.Timestamp, first_date: dt.date | pd.Timestamp,
                  start: dt.date | str | None = None, end: dt.date | str | None = None) -> tuple[dt.date, dt.date]:
    """The base date and end date of ``period`` for data spanning ``first_date`` .. ``as_of``.

    ``start`` / ``end`` are only used (and then required) for ``custom``. Raises ValidationFailed naming
    the field: ``period`` for an unknown period or one reaching before ``first_date``; ``start`` / ``end``
    for a custom range that is missing, not a date, not in order, or outside the data.
    """
    as_of_d, first_d = _as_date(as_of), _as_date(first_date)
    if as_of_d is None or first_d is None:
        raise ValidationFailed({"config_id": "has no computed index values yet; compute it first"})
    if period not in PERIODS:
        raise ValidationFailed({"period": f"unknown period {period!r}; choose one of {', '.join(PERIODS)}"})
    if period == "custom":
        errors: dict[str, str] = {}
        s, e = _as_date(start), _as_date(end)
        if start in (None, ""):
            errors["start"] = "is required for a custom period"
        elif s is None:
            errors["start"] = f"{start!r} is not a date (YYYY-MM-DD)"
        if end in (None, ""):
            errors["end"] = "is required for a custom period"
        elif e is None:
            errors["end"] = f"{end!r} is not a date (YYYY-MM-DD)"
        if errors:
            raise ValidationFailed(errors)
        assert s is not None and e is not None
        if s >= e:
            raise ValidationFailed({"start": f"must be before the end date ({s} is not before {e})"})
        if s < first_d:
            errors["start"] = f"{s} is before the first date with data ({first_d})"
        elif s >= as_of_d:
            errors["start"] = f"{s} is not before the last date with data ({as_of_d})"
        if e > as_of_d:
            errors["end"] = f"{e} is after the last date with data ({as_of_d})"
        if errors:
            raise ValidationFailed(errors)
        return s, e
    if period == "max":
        base = first_d
    elif period == "MTD":
        base = as_of_d.replace(day=1) - dt.timedelta(days=1)
    elif period == "QTD":
        quarter_first_month = 3 * ((as_of_d.month - 1) // 3) + 1
        base = as_of_d.replace(month=quarter_first_month, day=1) - dt.timedelta(days=1)
    elif period == "YTD":
        base = dt.date(as_of_d.year - 1, 12, 31)
    else:
        base = (pd.Timestamp(as_of_d) - pd.DateOffset(months=_PERIOD_MONTHS[period])).date()
    if base < first_d:
        raise ValidationFailed({"period": f"{period} needs data from {base}, but the history starts on {first_d}; "
                                          "choose a shorter period or max"})
    if base >= as_of_d:
        raise ValidationFailed({"period": f"{period} holds no data after {base}"})
    return base, as_of_d


def period_series(values: pd.Series, start: dt.date | pd.Timestamp, end: dt.date | pd.Timestamp) -> pd.Series:
    """The levels of ``values`` from the last one on or before ``start`` (the base) through ``end``.

    Empty when ``values`` has nothing on or before ``start``. Never modifies ``values``.
    """
    v = values.dropna()
    if v.empty:
        return v
    i0 = int(v.index.searchsorted(pd.Timestamp(start), side="right")) - 1
    i1 = int(v.index.searchsorted(pd.Timestamp(end), side="right"))
    if i0 < 0:
        return v.iloc[0:0]
    return v.iloc[i0:i1]


def period_return(values: pd.Series, period: str, as_of: dt.date | pd.Timestamp | None = None,
                  start: dt.date | None = None, end: dt.date | None = None) -> float | None:
    """``V_end / V_base - 1`` of ``values`` over ``period`` (None when the history is too short)."""
    v = values.dropna()
    if as_of is not None:
        v = v.loc[:pd.Timestamp(as_of)]
    if len(v) < 2:
        return None
    try:
        s, e = period_bounds(period, v.index[-1], v.index[0], start, end)
    except ValidationFailed:
        return None
    seg = period_series(v, s, e)
    if len(seg) < 1 or float(seg.iloc[0]) <= 0:
        return None
    return float(seg.iloc[-1]) / float(seg.iloc[0]) - 1.0


# --------------------------------------------------------------------------- calendar years
#: Column of the year total in :func:`monthly_with_year_total` (after months 1..12).
YEAR_TOTAL = "Year"


def _last_weekday_of_year(year: int) -> dt.date:
    day = dt.date(year, 12, 31)
    while day.weekday() >= 5:
        day -= dt.timedelta(days=1)
    return day


def year_labels(dates: pd.DatetimeIndex, *, to_date: bool = True) -> dict[int, str]:
    """A label per calendar year of ``dates`` (a level series' dates), marking partial years.

    A year's return is measured from the last level of the previous year, so the year holding the first
    date (the base) is partial: "2018 (from 03-28)". A year whose last date is before its last weekday is
    partial too: "2026 (YTD)" when ``to_date`` (the series ends at the latest data), else "2026 (to 06-30)";
    both at once: "2026 (03-02 to 06-30)". Other years are the plain year ("2019").
    """
    if len(dates) == 0:
        return {}
    idx = pd.DatetimeIndex(dates)
    first, last = idx[0].date(), idx[-1].date()
    labels: dict[int, str] = {}
    for year in sorted({int(y) for y in idx.year}):
        from_start = year == first.year
        cut_end = year == last.year and last < _last_weekday_of_year(year)
        if from_start and cut_end:
            labels[year] = f"{year} ({first:%m-%d} to {last:%m-%d})"
        elif from_start:
            labels[year] = f"{year} (from {first:%m-%d})"
        elif cut_end:
            labels[year] = f"{year} (YTD)" if to_date else f"{year} (to {last:%m-%d})"
        else:
            labels[year] = str(year)
    return labels


def monthly_with_year_total(levels: pd.Series) -> pd.DataFrame:
    """:func:`core.quant.risk.monthly_returns` of ``levels`` plus a :data:`YEAR_TOTAL` column.

    The year total is :func:`core.quant.risk.yearly_returns` — the yearly return the reports show —
    which equals the compounded months of the row, ``prod(1 + r_month) - 1``, since both chain the same
    levels. Rows are years (int); fractions; NaN where a month has no data.
    """
    monthly = risk.monthly_returns(levels)
    out = monthly.copy()
    out[YEAR_TOTAL] = risk.yearly_returns(levels).reindex(out.index).to_numpy(dtype=float) if len(out) else []
    return out


# --------------------------------------------------------------------------- inputs (database)
@dataclass
class ViewInputs:
    """Everything stored about one config version that the view needs (full history)."""

    config_id: int
    config_name: str
    config_version: int
    params: dict[str, Any]
    computed_at: dt.datetime | None
    index: pd.Series                     # stored index levels
    benchmark: pd.Series | None          # benchmark closes on the index dates (forward-filled)
    benchmark_symbol: str | None
    allocations: pd.DataFrame            # rebalance dates x symbols, post-trade weights
    rebalances: pd.DataFrame             # turnover, cost (fraction of the pre-trade level) by date
    prices: pd.DataFrame                 # closes of every symbol ever held, on the index dates
    assets: pd.DataFrame                 # index symbol; name, sector, asset_class, source
    sources: list[str]                   # data sources of the constituents and the benchmark

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
    """Read the stored results of ``config_id`` (NotFoundError when the config does not exist)."""
    from core.services.market import benchmark_symbol

    index = compute.stored_index(config_id)
    allocations = compute.stored_allocations(config_id)
    rebalances = compute.stored_rebalances(config_id)
    with unit_of_work() as session:
        row = (session.get(StrategyConfigRow, config_id) if id_in_range(config_id) else None)
        if row is None:
            raise NotFoundError(f"no strategy config with id {config_id}")
        name, version, params, computed_at = row.name, row.version, dict(row.params or {}), row.computed_at
        bench_sym = benchmark_symbol(session)
        symbols = [str(s) for s in allocations.columns]
        asset_rows = session.execute(select(Asset.symbol, Asset.name, Asset.sector, Asset.asset_class, Asset.source,
                                            Asset.is_benchmark, Asset.is_active)).all()
        prices = pd.DataFrame()
        benchmark = None
        if len(index):
            if symbols:
                prices = price_store.load_price_matrix(session, symbols, None, index.index[-1].date())
            if bench_sym:
                bm = price_store.load_price_matrix(session, [bench_sym], None, index.index[-1].date())
                if not bm.empty:
                    # As compute_config does: benchmark closes carried forward onto the index dates.
                    benchmark = bm[bench_sym].dropna().reindex(index.index).ffill().rename(bench_sym)
    assets = pd.DataFrame(asset_rows, columns=["symbol", "name", "sector", "asset_class", "source", "is_benchmark",
                                               "is_active"]).set_index("symbol")
    assets["sector"] = assets["sector"].fillna(OTHER)
    if len(index) and not prices.empty:
        # Carried forward like the dashboard's drifted weights; the first rows stay NaN before a listing.
        prices = prices.reindex(prices.index.union(index.index)).ffill().reindex(index.index)
    shown = set(symbols) | ({bench_sym} if bench_sym else set())
    used = assets[assets.index.isin(shown) | (assets["is_active"] & ~assets["is_benchmark"])]
    sources = sorted({str(s) for s in used["source"].dropna()})
    return ViewInputs(config_id=config_id, config_name=name, config_version=version, params=params,
                      computed_at=computed_at, index=index, benchmark=benchmark, benchmark_symbol=bench_sym,
                      allocations=allocations, rebalances=rebalances, prices=prices,
                      assets=assets[["name", "sector", "asset_class", "source"]], sources=sources)


# --------------------------------------------------------------------------- the view
@dataclass
class PerformanceView:
    """The numbers of one config version over one period (fractions unless stated)."""

    config_id: int
    config_label: str
    config_name: str
    config_version: int
    params: dict[str, Any]
    start: dt.date                       # requested base date
    end: dt.date                         # requested end date
    base_date: dt.date                   # the date of the base level actually used
    end_date: dt.date                    # the last date with a level in the period
    benchmark_symbol: str | None
    sources: list[str]
    demo: bool
    index_level: pd.Series               # stored levels over the period (base first)
    index: pd.Series                     # rebased: 100 at the base date
    benchmark: pd.Series | None          # benchmark rebased: 100 at the base date
    returns: pd.DataFrame                # daily returns: index, benchmark
    metrics: dict[str, Any]              # risk.risk_metrics(index, benchmark) over the period
    benchmark_metrics: dict[str, Any]    # risk.risk_metrics(benchmark) over the period (standalone)
    metrics_table: pd.DataFrame          # key, label, index, benchmark, unit, formula, reason
    trailing: pd.DataFrame               # rows risk.TRAILING_PERIODS; index, benchmark (as of end_date)
    drawdown: pd.Series                  # V / cummax(V) - 1 over the period
    benchmark_drawdown: pd.Series | None
    drawdowns: pd.DataFrame              # risk.drawdown_table, the WORST_N deepest
    monthly_returns: pd.DataFrame        # year x month 1..12
    benchmark_monthly_returns: pd.DataFrame | None
    yearly_returns: pd.DataFrame         # year; index, benchmark, excess
    rolling: pd.DataFrame                # vol_w, sharpe_w, beta_w, excess_w for w in ROLLING_WINDOWS
    weights_history: pd.DataFrame        # rebalance dates in force during the period x symbols
    weights_now: pd.DataFrame            # symbol, name, sector, weight (drifted to end_date)
    sector_weights: pd.DataFrame         # sector, weight
    sector_weights_history: pd.DataFrame  # rebalance dates x sectors
    rebalances: pd.DataFrame             # date, turnover, cost, buys, sells (in the period)
    trades: pd.DataFrame                 # date, symbol, name, before, after, trade
    contribution: pd.DataFrame           # symbol, name, sector, avg_weight, contribution
    sector_contribution: pd.DataFrame    # sector, contribution
    attribution: dict[str, float]        # assets, cost_drag, residual, total (sums to the period return)
    correlation: pd.DataFrame            # Index, benchmark and the top holdings, daily returns
    worst_days: pd.DataFrame             # date, index, benchmark
    worst_weeks: pd.DataFrame            # week_ending, index, benchmark
    stress: pd.DataFrame                 # month, benchmark, index, excess (worst benchmark months)
    warnings: list[str] = field(default_factory=list)

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


def drifted_weights(allocations: pd.DataFrame, prices: pd.DataFrame,
                    dates: pd.DatetimeIndex) -> tuple[pd.DataFrame, pd.DataFrame]:
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
        return pd.DataFrame(out, index=dates, columns=symbols), pd.DataFrame(pre, index=allocations.index,
                                                                            columns=symbols)
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
    return (pd.DataFrame(out, index=dates, columns=symbols),
            pd.DataFrame(pre, index=allocations.index, columns=symbols))


def _rebase(levels: pd.Series) -> pd.Series:
    if levels.empty or float(levels.iloc[0]) == 0:
        return levels.astype(float)
    return levels / float(levels.iloc[0]) * 100.0


def _grouped_returns(levels: pd.Series, freq: str) -> pd.Series:
    """Returns per calendar group (``W-FRI``, ``M``): last level / previous group's last - 1, the first
    group measured from the first level (the base)."""
    if len(levels) < 2:
        return pd.Series(dtype=float)
    body = levels.iloc[1:]
    keys = body.index.to_period(freq)
    last = body.groupby(keys).last()
    prev = last.shift(1)
    prev.iloc[0] = float(levels.iloc[0])
    return last / prev - 1.0


def _metrics_table(metrics: dict[str, Any], bench_metrics: dict[str, Any]) -> pd.DataFrame:
    rows = []
    missing = metrics.get("missing", {}) or {}
    for key, (label, formula, unit) in risk.METRIC_DEFINITIONS.items():
        if key not in metrics:
            continue
        value = metrics.get(key)
        rows.append({"key": key, "label": label, "index": value,
                     "benchmark": bench_metrics.get(key) if bench_metrics else None,
                     "unit": unit, "formula": formula, "reason": missing.get(key) if value is None else None})
    return pd.DataFrame(rows, columns=["key", "label", "index", "benchmark", "unit", "formula", "reason"])


def _attach_names(frame: pd.DataFrame, assets: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame["name"] = frame["symbol"].map(assets["name"]).fillna(frame["symbol"])
    frame["sector"] = frame["symbol"].map(assets["sector"]).fillna(OTHER)
    return frame


def build_performance_view(inputs: ViewInputs, start: dt.date, end: dt.date) -> PerformanceView:
    """:func:`performance_view` over already loaded ``inputs`` (pure: no database)."""
    full = inputs.index.dropna()
    if full.empty:
        raise ValidationFailed({"config_id": f"{inputs.label} has no computed index values yet; compute it first"})
    level = period_series(full, start, end)
    if len(level) < 2:
        raise ValidationFailed({"end": f"the period {start} .. {end} holds no trading day after its start"})
    dates = level.index
    base_ts, end_ts = dates[0], dates[-1]
    warnings: list[str] = []

    bench_full = inputs.benchmark
    bench_level = None
    if bench_full is not None:
        bench_level = bench_full.reindex(dates)
        if bench_level.isna().all():
            bench_level = None
            warnings.append("the benchmark has no prices in this period")
        elif bench_level.isna().any():
            warnings.append("the benchmark has no price on some dates of the period; they are left out of "
                            "the benchmark-relative metrics")
    metrics = risk.risk_metrics(level, bench_level, rf=0.0)
    bench_metrics = risk.risk_metrics(bench_level, None, rf=0.0) if bench_level is not None else {}
    index_rb = _rebase(level).rename("index")
    bench_rb = None
    if bench_level is not None:
        b = bench_level.dropna()
        bench_rb = (b / float(b.iloc[0]) * 100.0).rename(inputs.benchmark_symbol or "benchmark")
    returns = pd.DataFrame({"index": level.pct_change()}).iloc[1:]
    if bench_level is not None:
        returns["benchmark"] = bench_level.pct_change(fill_method=None).iloc[1:]

    # Trailing returns as of the end of the period, over the full history (they look back further).
    trail_idx = risk.trailing_returns(full, as_of=end_ts)
    trail_bm = risk.trailing_returns(bench_full.dropna(), as_of=end_ts) if bench_full is not None else {}
    trailing = pd.DataFrame({"index": trail_idx, "benchmark": {k: trail_bm.get(k) for k in trail_idx}},
                            index=list(trail_idx), dtype=float)
    trailing.index.name = "period"

    drawdown = risk.drawdown_series(level)
    bench_dd = risk.drawdown_series(bench_level) if bench_level is not None else None
    drawdowns = risk.drawdown_table(level, top=WORST_N)
    monthly = risk.monthly_returns(level)
    bench_monthly = risk.monthly_returns(bench_level) if bench_level is not None else None
    yr_idx = risk.yearly_returns(level)
    yearly = pd.DataFrame({"index": yr_idx})
    if bench_level is not None:
        yearly["benchmark"] = risk.yearly_returns(bench_level).reindex(yearly.index)
        yearly["excess"] = yearly["index"] - yearly["benchmark"]
    yearly.index.name = "year"

    # Rolling figures need the history before the period; computed over everything, then cut.
    rolling = risk.rolling_metrics(full, bench_full, windows=ROLLING_WINDOWS)
    if bench_full is not None:
        aligned_b = bench_full.reindex(full.index)
        for w in ROLLING_WINDOWS:
            rolling[f"excess_{w}"] = (full / full.shift(w) - 1.0) - (aligned_b / aligned_b.shift(w) - 1.0)
    rolling = rolling.loc[(rolling.index > base_ts) & (rolling.index <= end_ts)]

    # ---- allocations: weights in force, drift, trades, contributions
    alloc = inputs.allocations
    assets = inputs.assets
    sym_cols = list(alloc.columns)
    if not alloc.empty:
        daily_w, pre_w = drifted_weights(alloc, inputs.prices, full.index)
    else:
        daily_w = pd.DataFrame(index=full.index)
        pre_w = pd.DataFrame()
    in_force = alloc.loc[:base_ts].index[-1:] if not alloc.empty else pd.DatetimeIndex([])
    hist_dates = in_force.append(alloc.index[(alloc.index > base_ts) & (alloc.index <= end_ts)]) \
        if not alloc.empty else pd.DatetimeIndex([])
    weights_history = alloc.loc[hist_dates] if not alloc.empty else pd.DataFrame()
    if not weights_history.empty:
        weights_history = weights_history.loc[:, (weights_history > 0).any(axis=0)]
        weights_history = weights_history[sorted(weights_history.columns,
                                                 key=lambda s: -float(weights_history[s].iloc[-1]))]
    sector_of = assets["sector"].reindex(sym_cols).fillna(OTHER) if sym_cols else pd.Series(dtype=object)
    if not weights_history.empty:
        sector_hist = weights_history.T.groupby(sector_of.reindex(weights_history.columns).to_numpy()).sum().T
        sector_hist = sector_hist[sorted(sector_hist.columns, key=lambda s: -float(sector_hist[s].iloc[-1]))]
    else:
        sector_hist = pd.DataFrame()

    now_w = daily_w.loc[end_ts] if len(daily_w.columns) else pd.Series(dtype=float)
    weights_now = pd.DataFrame({"symbol": now_w.index.astype(str), "weight": now_w.to_numpy(dtype=float)})
    weights_now = weights_now[weights_now["weight"] > _TRADE_EPS]
    weights_now = _attach_names(weights_now, assets)[["symbol", "name", "sector", "weight"]] \
        .sort_values("weight", ascending=False, ignore_index=True)
    sector_weights = (weights_now.groupby("sector", as_index=False)["weight"].sum()
                      .sort_values("weight", ascending=False, ignore_index=True))

    reb_in = alloc.index[(alloc.index > base_ts) & (alloc.index <= end_ts)] if not alloc.empty \
        else pd.DatetimeIndex([])
    trade_cols = ["date", "symbol", "name", "before", "after", "trade"]
    stored_reb = inputs.rebalances
    if len(reb_in):
        after_m = alloc.loc[reb_in].to_numpy(dtype=float)
        before_m = pre_w.loc[reb_in].to_numpy(dtype=float)
        delta_m = after_m - before_m
        moved = np.abs(delta_m) > _TRADE_EPS
        r_idx, c_idx = np.nonzero(moved)
        trades = pd.DataFrame({"date": reb_in[r_idx], "symbol": np.asarray(sym_cols, dtype=object)[c_idx],
                               "before": before_m[r_idx, c_idx], "after": after_m[r_idx, c_idx],
                               "trade": delta_m[r_idx, c_idx]})
        trades = _attach_names(trades, assets)[trade_cols]
        own_turnover = np.abs(delta_m).sum(axis=1)
        if not stored_reb.empty:
            turnover = stored_reb["turnover"].reindex(reb_in).to_numpy(dtype=float)
            turnover = np.where(np.isnan(turnover), own_turnover, turnover)
            cost = np.nan_to_num(stored_reb["cost"].reindex(reb_in).to_numpy(dtype=float))
        else:
            turnover, cost = own_turnover, np.zeros(len(reb_in))
        rebalances = pd.DataFrame({"date": reb_in, "turnover": turnover, "cost": cost,
                                   "buys": (moved & (delta_m > 0)).sum(axis=1).astype(int),
                                   "sells": (moved & (delta_m < 0)).sum(axis=1).astype(int)})
    else:
        trades = pd.DataFrame(columns=trade_cols)
        rebalances = pd.DataFrame(columns=["date", "turnover", "cost", "buys", "sells"])

    # Contribution (engine definition): sum_t w_{i,t-1} V_{t-1} r_{i,t} / V_base, t in (base, end].
    v_base = float(level.iloc[0])
    if len(daily_w.columns):
        pos0 = full.index.get_loc(base_ts)
        pos1 = full.index.get_loc(end_ts)
        px = inputs.prices.reindex(columns=sym_cols).to_numpy(dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = px[pos0 + 1:pos1 + 1] / px[pos0:pos1] - 1.0
        r = np.nan_to_num(r)
        w_prev = daily_w.to_numpy()[pos0:pos1]
        v_prev = full.to_numpy()[pos0:pos1][:, None]
        contrib = (w_prev * v_prev * r).sum(axis=0) / v_base
        avg_w = daily_w.to_numpy()[pos0 + 1:pos1 + 1].mean(axis=0)
        contribution = pd.DataFrame({"symbol": [str(s) for s in sym_cols], "avg_weight": avg_w,
                                     "contribution": contrib})
        contribution = contribution[(contribution["avg_weight"] > 0) | (contribution["contribution"] != 0)]
        contribution = _attach_names(contribution, assets)[["symbol", "name", "sector", "avg_weight",
                                                            "contribution"]]
        contribution = contribution.sort_values("contribution", ascending=False, ignore_index=True)
    else:
        contribution = pd.DataFrame(columns=["symbol", "name", "sector", "avg_weight", "contribution"])
    sector_contribution = (contribution.groupby("sector", as_index=False)["contribution"].sum()
                           .sort_values("contribution", ascending=False, ignore_index=True))
    cost_drag = 0.0
    if len(rebalances):
        c = rebalances["cost"].to_numpy(dtype=float)
        v_post = full.reindex(pd.DatetimeIndex(rebalances["date"])).to_numpy(dtype=float)
        v_pre = np.where(c < 1, v_post / np.where(c < 1, 1.0 - c, 1.0), v_post)  # levels are after costs
        cost_drag = float((c * v_pre).sum() / v_base)
    total = float(level.iloc[-1]) / v_base - 1.0
    assets_sum = float(contribution["contribution"].sum()) if len(contribution) else 0.0
    attribution = {"assets": assets_sum, "cost_drag": cost_drag, "residual": total - (assets_sum - cost_drag),
                   "total": total}

    # ---- correlation, worst days / weeks, stress months
    top = weights_now["symbol"].head(TOP_HOLDINGS).tolist()
    levels = pd.DataFrame({"Index": level})
    if bench_level is not None:
        levels[inputs.benchmark_symbol or "Benchmark"] = bench_level
    if top:
        levels = levels.join(inputs.prices.reindex(index=dates, columns=top))
    correlation = risk.correlation_matrix(levels)

    worst = returns.nsmallest(WORST_N, "index")
    worst_days = worst.reset_index(names="date")
    wk_idx = _grouped_returns(level, "W-FRI")
    worst_weeks = pd.DataFrame({"week_ending": [p.end_time.date() for p in wk_idx.index],
                                "index": wk_idx.to_numpy()})
    if bench_level is not None:
        wk_bm = _grouped_returns(bench_level.ffill(), "W-FRI").reindex(wk_idx.index)
        worst_weeks["benchmark"] = wk_bm.to_numpy()
    worst_weeks = worst_weeks.nsmallest(WORST_N, "index").reset_index(drop=True)
    if bench_level is not None:
        mb = _grouped_returns(bench_level.ffill(), "M")
        mi = _grouped_returns(level, "M").reindex(mb.index)
        stress = pd.DataFrame({"month": [str(p) for p in mb.index], "benchmark": mb.to_numpy(),
                               "index": mi.to_numpy()})
        stress["excess"] = stress["index"] - stress["benchmark"]
        stress = stress.nsmallest(STRESS_MONTHS, "benchmark").reset_index(drop=True)
    else:
        stress = pd.DataFrame(columns=["month", "benchmark", "index", "excess"])

    return PerformanceView(
        config_id=inputs.config_id, config_label=inputs.label, config_name=inputs.config_name,
        config_version=inputs.config_version, params=inputs.params, start=_as_date(start) or base_ts.date(),
        end=_as_date(end) or end_ts.date(), base_date=base_ts.date(), end_date=end_ts.date(),
        benchmark_symbol=inputs.benchmark_symbol if bench_level is not None else None,
        sources=list(inputs.sources), demo=inputs.demo, index_level=level.rename("level"), index=index_rb,
        benchmark=bench_rb, returns=returns, metrics=metrics, benchmark_metrics=bench_metrics,
        metrics_table=_metrics_table(metrics, bench_metrics), trailing=trailing, drawdown=drawdown,
        benchmark_drawdown=bench_dd, drawdowns=drawdowns, monthly_returns=monthly,
        benchmark_monthly_returns=bench_monthly, yearly_returns=yearly, rolling=rolling,
        weights_history=weights_history, weights_now=weights_now, sector_weights=sector_weights,
        sector_weights_history=sector_hist, rebalances=rebalances, trades=trades, contribution=contribution,
        sector_contribution=sector_contribution, attribution=attribution, correlation=correlation,
        worst_days=worst_days, worst_weeks=worst_weeks, stress=stress, warnings=warnings,
    )

