"""The dashboard's read queries, all in one place.

Everything returns plain values, pandas objects or dataclasses of them (never ORM objects or
sessions), so the Streamlit cache can keep them and the reports can reuse the same numbers.

Conventions: returns are fractions (0.05 = 5 %); the benchmark is rebased to the index's first value
so both lines start together; ``as_of`` is the last date with an index value.

The stored index starts at the first date of the data and sits flat at its base value until the first
allocation; the charts' series (:attr:`DashboardData.chart_index`, drawdown, rolling figures, calendar
returns) start at the first allocation, so rolling statistics are not diluted by that flat stretch.
The KPIs and the risk table are the stored numbers, unchanged.

One rule, one home: the KPIs and calendar returns are :mod:`core.quant.periods`
(:func:`~core.quant.periods.kpi_returns`, the reports' period bounds), the benchmark :func:`core.services.market.benchmark_symbol` and the staleness
:func:`core.services.freshness.business_days_stale` (docs/methodology.md).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.db import unit_of_work
from core.models import Allocation, Asset, Price, StrategyConfigRow
from core.models.base import id_in_range
from core.quant import periods
from core.quant.periods import KPI_PERIODS, as_date, kpi_returns
from core.services import compute
from core.services import prices as price_store
from core.services.freshness import business_days_stale
from core.services.market import benchmark_symbol, risk_free, stored_version_benchmark
from core.services.prices import per_asset

#: Holdings shown one by one in the allocation history and the correlation matrix.
TOP_HOLDINGS = 10
#: Trailing rows of returns used for the correlation matrix (one trading year).
CORRELATION_WINDOW = 252
OTHER = "Other"
CASH = "Cash"


def demo_data_shown() -> bool:
    """True when any asset's prices come from the synthetic demo provider."""
    with unit_of_work() as session:
        return session.scalar(select(Asset.id).where(Asset.source == "demo").limit(1)) is not None


@dataclass
class DashboardData:
    """Everything the dashboard draws for one config version."""

    config_id: int
    config_label: str
    index: pd.Series  # index level by date
    benchmark: pd.Series | None  # benchmark level rebased to the index's first value
    benchmark_symbol: str | None
    as_of: dt.date | None
    level: float | None
    kpis: pd.DataFrame  # rows KPI_PERIODS, columns index / benchmark (fractions)
    metrics: pd.DataFrame  # key, label, value, unit, formula, reason, benchmark, benchmark_reason
    allocation_now: pd.DataFrame  # symbol, name, sector, weight (drifted to as_of)
    allocation_sectors: pd.DataFrame  # sector, weight
    allocation_history_sectors: pd.DataFrame  # rebalance dates x sectors
    allocation_history_assets: pd.DataFrame  # rebalance dates x top holdings + Other
    last_rebalance: dt.date | None
    rolling: pd.DataFrame | None = None
    drawdown: pd.Series | None = None
    monthly_returns: pd.DataFrame | None = None
    correlation: pd.DataFrame | None = None
    warnings: list[str] = field(default_factory=list)
    first_allocation: dt.date | None = None  # first rebalance date (charts start here)
    yearly_returns: pd.Series | None = None  # calendar-year returns from the first allocation, by year
    year_labels: dict[int, str] = field(default_factory=dict)  # periods.year_labels of the chart dates
    risk_free_label: str = ""  # the rate of Sharpe / Sortino / alpha and where it comes from
    basis: str = "price"  # price or total_return (chart titles say which)

    @property
    def empty(self) -> bool:
        return bool(self.index.empty)

    @property
    def chart_index(self) -> pd.Series:
        """The index from the first allocation on (the whole series when nothing was allocated)."""
        return _from(self.index, self.first_allocation)

    @property
    def chart_benchmark(self) -> pd.Series | None:
        """The benchmark over :attr:`chart_index`'s dates."""
        return None if self.benchmark is None else _from(self.benchmark, self.first_allocation)


def _from(series: pd.Series, start: dt.date | None) -> pd.Series:
    return series if start is None or series.empty else series.loc[pd.Timestamp(start) :]


def _config_label(session: Session, config_id: int) -> str:
    row = session.get(StrategyConfigRow, config_id) if id_in_range(config_id) else None
    if row is None:
        from core.errors import NotFoundError

        raise NotFoundError(f"no strategy config with id {config_id}")
    return f"{row.name} v{row.version}"


METRIC_COLUMNS = ["key", "label", "value", "unit", "formula", "reason", "benchmark", "benchmark_reason"]


def _metrics_frame(config_id: int, benchmark: pd.Series | None, rf: float = 0.0) -> pd.DataFrame:
    """The stored metrics of the index and, beside them, :func:`core.quant.risk.risk_metrics` of the
    benchmark alone over the same dates with the same rf (the configured rate), as the stored compute does for
    the index.
    Metrics relative to a benchmark (beta, alpha, tracking error, ...) have no benchmark value: the reason
    says so."""
    from core.quant.risk import METRIC_DEFINITIONS, risk_metrics

    stored = compute.stored_metrics(config_id)
    bench = risk_metrics(benchmark, None, rf=rf) if benchmark is not None and len(benchmark.dropna()) > 1 else {}
    bench_missing = bench.get("missing", {}) or {}
    rows = []
    for key, (label, formula, unit) in METRIC_DEFINITIONS.items():
        value, reason = stored.get(key, (None, "not computed"))
        b_value: float | None
        b_reason: str | None
        if not bench:
            b_value, b_reason = None, "no benchmark"
        elif key in bench:
            b_value = bench.get(key)
            b_reason = bench_missing.get(key) if b_value is None else None
        else:
            b_value, b_reason = None, "relative to the benchmark"
        rows.append(
            {
                "key": key,
                "label": label,
                "value": value,
                "unit": unit,
                "formula": formula,
                "reason": reason if value is None else None,
                "benchmark": b_value,
                "benchmark_reason": b_reason,
            }
        )
    return pd.DataFrame(rows, columns=METRIC_COLUMNS)


def _allocation_now(session: Session, config_id: int, as_of: dt.date | None) -> tuple[pd.DataFrame, dt.date | None]:
    last = session.scalar(select(func.max(Allocation.date)).where(Allocation.config_id == config_id))
    columns = ["symbol", "name", "sector", "weight"]
    if last is None:
        return pd.DataFrame(columns=columns), None
    rows = session.execute(
        select(Asset.symbol, Asset.name, Asset.sector, Allocation.weight)
        .join(Asset, Asset.id == Allocation.asset_id)
        .where(Allocation.config_id == config_id, Allocation.date == last)
    ).all()
    frame = pd.DataFrame(rows, columns=columns)
    frame["sector"] = frame["sector"].fillna(OTHER)
    if as_of is not None and as_of > last and len(frame):
        # Between rebalances holdings are bought and held: weights drift with prices.
        px = price_store.load_price_matrix(session, frame["symbol"].tolist(), last, as_of).ffill()
        if len(px):
            ratio = (px.iloc[-1] / px.iloc[0]).reindex(frame["symbol"]).fillna(1.0).to_numpy()
            held = frame["weight"].to_numpy() * ratio
            cash = max(0.0, 1.0 - float(frame["weight"].sum()))
            frame["weight"] = held / (held.sum() + cash)
    return frame.sort_values("weight", ascending=False, ignore_index=True), last


def _allocation_history(session: Session, config_id: int, top: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    sector = func.coalesce(Asset.sector, OTHER)
    rows = session.execute(
        select(Allocation.date, sector, func.sum(Allocation.weight))
        .join(Asset, Asset.id == Allocation.asset_id)
        .where(Allocation.config_id == config_id)
        .group_by(Allocation.date, sector)
    ).all()
    if not rows:
        return pd.DataFrame(), pd.DataFrame()
    by_sector = (
        pd.DataFrame(rows, columns=["date", "sector", "weight"])
        .pivot(index="date", columns="sector", values="weight")
        .fillna(0.0)
        .sort_index()
    )
    by_sector.index = pd.DatetimeIndex(pd.to_datetime(by_sector.index), name="date")
    total = by_sector.sum(axis=1)
    by_asset = pd.DataFrame(index=by_sector.index)
    if top:
        rows = session.execute(
            select(Allocation.date, Asset.symbol, Allocation.weight)
            .join(Asset, Asset.id == Allocation.asset_id)
            .where(Allocation.config_id == config_id, Asset.symbol.in_(top))
        ).all()
        if rows:
            frame = pd.DataFrame(rows, columns=["date", "symbol", "weight"]).pivot(
                index="date", columns="symbol", values="weight"
            )
            frame.index = pd.DatetimeIndex(pd.to_datetime(frame.index), name="date")
            by_asset = frame.reindex(index=by_sector.index, columns=top).fillna(0.0)
    by_asset[OTHER] = (total - by_asset.sum(axis=1)).clip(lower=0.0)
    return by_sector, by_asset


def _benchmark(
    session: Session, index: pd.Series, params: dict[str, object] | None = None
) -> tuple[pd.Series | None, str | None]:
    """The version's benchmark (market.stored_version_benchmark: its symbol or blend, else the default rule),
    rebased to the index's level on their first common date."""
    if index.empty:
        return None, benchmark_symbol(session)
    levels, symbol = stored_version_benchmark(session, params, index.index[-1].date())
    if levels is None or levels.dropna().empty:
        return None, symbol
    raw = levels.reindex(index.index).ffill().dropna()
    if raw.empty:
        return None, symbol
    return raw / raw.iloc[0] * float(index.loc[raw.index[0]]), symbol


def _correlation(
    session: Session, index: pd.Series, benchmark: pd.Series | None, benchmark_sym: str | None, top: list[str]
) -> pd.DataFrame | None:
    from core.quant.risk import correlation_matrix

    if index.empty:
        return None
    start = index.index[max(0, len(index) - CORRELATION_WINDOW - 1)]
    levels = pd.DataFrame({"Index": index.loc[start:]})
    if benchmark is not None:
        levels[benchmark_sym or "Benchmark"] = benchmark.loc[start:]
    if top:
        px = price_store.load_price_matrix(session, top, start.date(), index.index[-1].date())
        levels = levels.join(px.reindex(columns=top), how="left")
    return correlation_matrix(levels)


def dashboard_data(config_id: int) -> DashboardData:
    """Every number and series the dashboard shows for ``config_id`` (see :class:`DashboardData`)."""
    from core.quant import risk

    index = compute.stored_index(config_id)
    with unit_of_work() as session:
        label = _config_label(session, config_id)
        row = session.get(StrategyConfigRow, config_id)
        params = dict(row.params or {}) if row is not None else {}
        benchmark, bench_symbol = _benchmark(session, index, params)
        rf = risk_free(session, index.index[0].date(), index.index[-1].date()) if len(index) else risk_free(session)
        as_of = index.index[-1].date() if len(index) else None
        allocation_now, last_rebalance = _allocation_now(session, config_id, as_of)
        top = allocation_now["symbol"].head(TOP_HOLDINGS).tolist()
        history_sectors, history_assets = _allocation_history(session, config_id, top)
        first_allocation = as_date(
            session.scalar(select(func.min(Allocation.date)).where(Allocation.config_id == config_id))
        )
        correlation = _correlation(session, index, benchmark, bench_symbol, top)
    index_returns = kpi_returns(index)
    bench_returns = kpi_returns(benchmark, index.index[-1]) if benchmark is not None and len(index) else {}
    kpis = pd.DataFrame(
        {"index": index_returns, "benchmark": {p: bench_returns.get(p) for p in KPI_PERIODS}},
        index=list(KPI_PERIODS),
        dtype=object,
    )
    sectors = (
        (
            allocation_now.groupby("sector", as_index=False)["weight"]
            .sum()
            .sort_values("weight", ascending=False, ignore_index=True)
        )
        if len(allocation_now)
        else pd.DataFrame(columns=["sector", "weight"])
    )
    data = DashboardData(
        config_id=config_id,
        config_label=label,
        index=index,
        benchmark=benchmark,
        benchmark_symbol=bench_symbol,
        as_of=as_of,
        level=float(index.iloc[-1]) if len(index) else None,
        kpis=kpis,
        metrics=_metrics_frame(config_id, benchmark, rf.rate),
        allocation_now=allocation_now,
        allocation_sectors=sectors,
        risk_free_label=rf.label,
        basis=str(params.get("basis", "price")),
        allocation_history_sectors=history_sectors,
        allocation_history_assets=history_assets,
        last_rebalance=last_rebalance,
        correlation=correlation,
        first_allocation=first_allocation,
        warnings=compute.stored_warnings(config_id),
    )
    shown, shown_bench = data.chart_index, data.chart_benchmark
    if len(shown) > 2:
        data.drawdown = risk.drawdown_series(shown)
        data.rolling = risk.rolling_metrics(shown, shown_bench, rf=rf.rate)
        data.monthly_returns = periods.monthly_returns(shown)
        data.yearly_returns = periods.yearly_returns(shown)
        data.year_labels = periods.year_labels(shown.index)
    return data


def freshness(today: dt.date | dt.datetime | None = None) -> pd.DataFrame:
    """Per asset: symbol, name, source, active, benchmark, first / last price date and business days stale
    (:func:`core.services.freshness.business_days_stale`; ``today`` is the clock, now when None)."""
    with unit_of_work() as session:
        assets = session.execute(
            select(
                Asset.symbol,
                Asset.name,
                Asset.source,
                Asset.is_active,
                Asset.is_benchmark,
                per_asset(func.min(Price.date)),
                per_asset(func.max(Price.date)),
            ).order_by(Asset.symbol)
        ).all()
    rows = []
    for symbol, name, source, active, bench, first, last in assets:
        first = as_date(first)
        last = as_date(last)
        stale = business_days_stale(last, today)
        rows.append(
            {
                "symbol": symbol,
                "name": name,
                "source": source,
                "active": bool(active),
                "benchmark": bool(bench),
                "first_date": first,
                "last_date": last,
                "stale_days": stale,
            }
        )
    return pd.DataFrame(
        rows, columns=["symbol", "name", "source", "active", "benchmark", "first_date", "last_date", "stale_days"]
    )
