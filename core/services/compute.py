"""Running a config version over stored prices and persisting its results.

One transaction replaces the version's index values, allocations, rebalances
and risk metrics, so running it twice gives identical rows and a failure
leaves the previous results in place. That transaction runs under the version's
``compute:<id>`` lock, so computes of one version never interleave.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from core.db import unit_of_work
from core.errors import AutoIndexError, NotFoundError
from core.infra.cache import cached
from core.infra.locks import compute_lock, hold
from core.models import Allocation, Asset, IndexValue, Rebalance, RiskMetric, StrategyConfigRow
from core.models.base import id_in_range, utcnow
from core.quant.engine import BacktestResult, CleanedPrices, backtest, total_return_prices
from core.quant.risk import finite_or_none, risk_metrics
from core.services import app_settings, audit
from core.services.market import MarketInputs, load_market_inputs, risk_free, version_benchmark
from core.services.strategies import parse_params

log = logging.getLogger(__name__)

Progress = Callable[[float, str], None]


@dataclass
class BacktestRun:
    """A config run over market inputs: the engine's result, the index levels, the aligned benchmark and the
    risk metrics (the brief's definitions), plus turnover and cost totals."""

    result: BacktestResult
    values: pd.Series
    benchmark: pd.Series | None
    metrics: dict[str, object]
    #: The benchmark's name: the version's symbol or blend, else the default rule's symbol.
    benchmark_label: str | None = None
    #: The annual risk-free rate the metrics use.
    rf: float = 0.0

    @property
    def benchmark_metrics(self) -> dict[str, object]:
        """The benchmark alone over the index's dates (the Dashboard's benchmark column: the same definition)."""
        if self.benchmark is None or len(self.benchmark.dropna()) < 2:
            return {}
        return risk_metrics(self.benchmark, None, rf=self.rf)

    @property
    def turnover_per_year(self) -> float | None:
        """Sum of |trade weights| over the run (the first buy counts 1) per 365.25 calendar days; None if empty."""
        if len(self.values) < 2:
            return None
        years = (self.values.index[-1] - self.values.index[0]).days / 365.25
        return float(self.result.turnover.sum()) / years if years > 0 else None

    @property
    def total_costs(self) -> float:
        """Sum of the costs taken at each rebalance, as fractions of the index level then."""
        return float(self.result.costs.sum())


def run_backtest(
    params: object, inputs: MarketInputs, *, rf: float = 0.0, cleaned: CleanedPrices | None = None
) -> BacktestRun:
    """The one pipeline from a config to its index, benchmark and metrics.

    The index levels start at the close of the first allocation (the base value, less that day's cost); an
    index that never invests keeps its whole (flat) series.

    The stored compute (:func:`compute_config`), the Strategy lab's preview and its on-the-fly comparison of saved
    versions all call this, so a version shows the same numbers before and after it is computed and stored.
    ``params`` is a StrategyConfig or a dict validated like one (ValidationFailed names the field). A parameter
    sweep passes ``cleaned`` (the prices cleaned once for its variants, :mod:`core.quant.batch`): same numbers.

    Issue 15: a ``total_return`` basis backtests :func:`~core.quant.engine.total_return_prices` (the inputs'
    dividends reinvested); the benchmark is :func:`core.services.market.version_benchmark` (the version's symbol or
    blend, else the default rule); sector and asset-class caps read ``inputs.asset_info``; ``rf`` is the annual
    risk-free rate of the metrics (:func:`core.services.market.risk_free`).
    """
    if inputs.prices.empty:
        raise AutoIndexError("no prices stored; refresh or import market data first")
    cfg = parse_params(params)  # type: ignore[arg-type]
    prices = inputs.prices
    if cfg.basis == "total_return" and inputs.dividends is not None:
        prices = total_return_prices(inputs.prices, inputs.dividends)
        cleaned = None  # cleaned from the closes, not from these levels
    result = backtest(prices, cfg, market_caps=inputs.market_caps, cleaned=cleaned, asset_info=inputs.asset_info)
    values = result.values.dropna()
    if len(result.rebalance_dates):
        # the index exists from its first allocation: before it the level only sits at the base value, which would
        # flatten every chart and dilute volatility, Sharpe and the rest (docs/methodology.md)
        values = values.loc[pd.Timestamp(result.rebalance_dates[0]) :]
    bench_levels, label = version_benchmark(inputs, cfg)
    bench = bench_levels.reindex(values.index).ffill() if bench_levels is not None else None
    return BacktestRun(result, values, bench, risk_metrics(values, bench, rf=rf), benchmark_label=label, rf=rf)


def at_risk_free_rate(run: BacktestRun, session: Session) -> BacktestRun:
    """``run`` with its metrics at the risk-free rate over the index's own dates (:func:`risk_free`,
    docs/methodology.md): the stored compute and the Strategy lab's preview alike, so a version shows the same
    Sharpe and Sortino before and after it is computed."""
    if len(run.values):
        rate = risk_free(session, run.values.index[0].date(), run.values.index[-1].date()).rate
        if rate:
            run.metrics, run.rf = risk_metrics(run.values, run.benchmark, rf=rate), rate
    return run


#: Longest a compute waits for another compute of the same config version, seconds.
COMPUTE_LOCK_WAIT_S = 900.0


def _config_id(config_id: int | None) -> int:
    """``config_id``, or the active version's id (NotFoundError when there is none)."""
    if config_id is not None:
        return int(config_id)
    with unit_of_work() as session:
        active = session.scalar(select(StrategyConfigRow.id).where(StrategyConfigRow.is_active.is_(True)))
    if active is None:
        raise NotFoundError("no active strategy config")
    return int(active)


def compute_config(
    config_id: int | None = None,
    *,
    progress: Progress | None = None,
    actor: str | None = None,
    lock_timeout_s: float | None = COMPUTE_LOCK_WAIT_S,
) -> dict[str, object]:
    """Backtest a config version (default: the active one) and replace its stored results.

    Every caller (CLI, compute job, activation, start-up) holds the version's ``compute:<id>`` lock
    (:mod:`core.infra.locks`) for the whole compute: a second compute of the same version waits for the
    first (reporting "waiting for ..." as progress), then computes again and stores the same rows. After
    ``lock_timeout_s`` seconds of waiting it raises AlreadyRunning naming the holder.

    Returns a summary: config id, dates, final level, rebalances, warnings.
    """
    progress = progress or (lambda _f, _m: None)
    config_id = _config_id(config_id)

    def waiting(holder: str | None) -> None:
        who = holder or "an unknown holder"
        progress(0.0, f"waiting for another compute of config {config_id} (held by {who})")

    with (
        hold(compute_lock(config_id), timeout_s=lock_timeout_s, holder=actor or "system", on_wait=waiting),
        unit_of_work() as session,
    ):
        row = session.get(StrategyConfigRow, config_id) if id_in_range(config_id) else None
        if row is None:
            raise NotFoundError(f"no strategy config with id {config_id}")
        cfg = parse_params(row.params)  # a stored version outside today's bounds is named before any work
        progress(0.1, "loading prices")
        inputs = load_market_inputs(session, config=cfg)
        if inputs.prices.empty:
            raise AutoIndexError("no prices stored; refresh or import market data first")
        progress(0.3, f"backtesting {inputs.prices.shape[1]} assets × {inputs.prices.shape[0]} days")
        run = at_risk_free_rate(run_backtest(cfg, inputs), session)
        result: BacktestResult = run.result
        progress(0.6, "computing risk metrics")
        values, metrics = run.values, run.metrics
        ids = dict(session.execute(select(Asset.symbol, Asset.id)).all())
        progress(0.75, "writing results")
        cid = row.id
        for model in (IndexValue, Allocation, Rebalance, RiskMetric):
            session.execute(delete(model).where(model.config_id == cid))
        session.execute(
            insert(IndexValue), [{"config_id": cid, "date": d.date(), "value": float(v)} for d, v in values.items()]
        )
        alloc_rows = []
        weights = result.weights
        for d in result.rebalance_dates:
            w = weights.loc[d]
            for symbol, weight in w[w > 0].items():
                alloc_rows.append(
                    {"config_id": cid, "date": pd.Timestamp(d).date(), "asset_id": ids[symbol], "weight": float(weight)}
                )
        if alloc_rows:
            session.execute(insert(Allocation), alloc_rows)
        reb_rows = [
            {
                "config_id": cid,
                "date": pd.Timestamp(d).date(),
                "turnover": float(result.turnover.get(d, 0.0)),
                "cost": float(result.costs.get(d, 0.0)),
            }
            for d in result.rebalance_dates
        ]
        if reb_rows:
            session.execute(insert(Rebalance), reb_rows)
        as_of = values.index[-1].date() if len(values) else dt.date.today()
        reasons = metrics.get("missing")  # risk_metrics' reason for each undefined metric
        missing: dict[str, str] = reasons if isinstance(reasons, dict) else {}
        metric_rows = []
        for key, value in metrics.items():
            if key in ("missing", "start", "end", "days"):
                continue
            number = finite_or_none(value)
            metric_rows.append(
                {
                    "config_id": cid,
                    "as_of": as_of,
                    "name": key,
                    "value": number,
                    "reason": (missing.get(key) or "undefined: not a finite number") if number is None else None,
                }
            )
        if metric_rows:
            session.execute(insert(RiskMetric), metric_rows)
        row.computed_at = utcnow()
        row.compute_warnings = [str(w) for w in result.warnings][:20]  # shown on the Dashboard
        app_settings.bump_data_version(session)
        audit.record(session, actor, "config.compute", f"{row.name} v{row.version}", {"id": cid})
        session.commit()
    progress(1.0, "done")
    return {
        "config_id": cid,
        "dates": int(len(values)),
        "start": str(values.index[0].date()) if len(values) else None,
        "end": str(as_of),
        "final_level": float(values.iloc[-1]) if len(values) else None,
        "rebalances": len(result.rebalance_dates),
        "warnings": list(result.warnings)[:20],
    }


def stored_warnings(config_id: int) -> list[str]:
    """The engine's warnings of the version's last stored compute (empty when none or never computed)."""
    with unit_of_work() as session:
        value = (
            session.scalar(select(StrategyConfigRow.compute_warnings).where(StrategyConfigRow.id == config_id))
            if id_in_range(config_id)
            else None
        )
    return [str(w) for w in value or []]


@cached("index", ttl=3600)
def stored_index(config_id: int) -> pd.Series:
    """The stored index level series of a config version (empty when never computed)."""
    with unit_of_work() as session:
        rows = session.execute(
            select(IndexValue.date, IndexValue.value).where(IndexValue.config_id == config_id).order_by(IndexValue.date)
        ).all()
    return pd.Series(
        [v for _, v in rows], index=pd.DatetimeIndex([d for d, _ in rows], name="date"), name="index", dtype=float
    )


@cached("metrics", ttl=3600)
def stored_metrics(config_id: int) -> dict[str, tuple[float | None, str | None]]:
    with unit_of_work() as session:
        rows = session.execute(
            select(RiskMetric.name, RiskMetric.value, RiskMetric.reason).where(RiskMetric.config_id == config_id)
        ).all()
    return {n: (v, r) for n, v, r in rows}


@cached("allocations", ttl=3600)
def stored_allocations(config_id: int) -> pd.DataFrame:
    """Weights at each rebalance date: frame dates × symbols (0 where not held)."""
    with unit_of_work() as session:
        rows = session.execute(
            select(Allocation.date, Asset.symbol, Allocation.weight)
            .join(Asset, Asset.id == Allocation.asset_id)
            .where(Allocation.config_id == config_id)
        ).all()
    if not rows:
        return pd.DataFrame()
    frame = pd.DataFrame(rows, columns=["date", "symbol", "weight"])
    out = frame.pivot(index="date", columns="symbol", values="weight").fillna(0.0)
    out.index = pd.DatetimeIndex(out.index, name="date")
    return out.sort_index()


@cached("rebalances", ttl=3600)
def stored_rebalances(config_id: int) -> pd.DataFrame:
    with unit_of_work() as session:
        rows = session.execute(
            select(Rebalance.date, Rebalance.turnover, Rebalance.cost)
            .where(Rebalance.config_id == config_id)
            .order_by(Rebalance.date)
        ).all()
    frame = pd.DataFrame(rows, columns=["date", "turnover", "cost"])
    frame["date"] = pd.to_datetime(frame["date"])
    return frame.set_index("date")
