"""Risk views of a config version (issue 15): Monte Carlo projection, stress scenarios and factor regression.

The Dashboard's Risk tab and the risk report (every format) call :func:`risk_view`, so both show the same
numbers. Stored results only (index levels, the last allocation drifted to the last date, prices, factor sets);
nothing is backtested again. Definitions: docs/methodology.md ("Monte Carlo projection", "Stress scenarios",
"Factor regression"). Reading is open to every role and checked on fresh state (:func:`core.services.access.resolve`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy import select

from core.db import unit_of_work
from core.errors import NotFoundError, ValidationFailed
from core.models import Asset, StrategyConfigRow
from core.models.base import id_in_range
from core.quant import factors as factor_math
from core.quant.montecarlo import MAX_YEARS, METHODS, MIN_YEARS, MonteCarloResult, simulate
from core.quant.risk import daily_rf
from core.quant.stress import ScenarioResult, Shock, apply_shocks, replay_all
from core.services import compute
from core.services import factors as factor_store
from core.services import prices as price_store
from core.services.access import ALL_ROLES, resolve
from core.services.market import risk_free, stored_version_benchmark

__all__ = ["MonteCarloParams", "RiskView", "risk_view"]

#: Window of the rolling factor betas, trading days.
ROLLING_BETA_WINDOW = 252
#: Most paths a view may ask for (the bench's 10,000 is the default).
MAX_PATHS = 50_000


@dataclass(frozen=True)
class MonteCarloParams:
    """What the Monte Carlo projection is asked (bounds checked by :func:`risk_view`)."""

    years: int = 10
    method: str = "bootstrap"
    n_paths: int = 10_000
    seed: int = 0
    start_value: float = 10_000.0
    contribution: float = 0.0
    target: float | None = None


@dataclass
class RiskView:
    """The three risk sections of one config version."""

    config_id: int
    label: str
    basis: str
    benchmark_symbol: str | None
    risk_free_label: str
    weights: pd.Series  # current weights (drifted to as_of), symbol -> fraction
    as_of: Any
    monte_carlo: MonteCarloResult | None
    monte_carlo_params: MonteCarloParams
    stress: list[ScenarioResult]
    hypothetical: tuple[float, pd.Series] | None  # index return under the shocks, per-holding shock
    shocks: list[Shock]
    factor_set: factor_store.FactorSet | None
    factor: factor_math.FactorRegression | None
    rolling_betas: pd.DataFrame | None
    notes: list[str] = field(default_factory=list)

    def monte_carlo_table(self) -> pd.DataFrame:
        """One row per horizon step: step, years, p5, p25, p50, p75, p95 (the "Monte Carlo" sheet)."""
        if self.monte_carlo is None:
            return pd.DataFrame(columns=["step", "years", "p5", "p25", "p50", "p75", "p95"])
        return self.monte_carlo.fan.reset_index()

    def stress_table(self) -> pd.DataFrame:
        """scenario, start, end, index_return, benchmark_return, covered (the "Stress scenarios" sheet)."""
        rows = [r.row() for r in self.stress]
        frame = pd.DataFrame(rows, columns=["scenario", "start", "end", "index_return", "benchmark_return", "covered"])
        frame["note"] = [r.note for r in self.stress]
        return frame

    def factor_table(self) -> pd.DataFrame:
        """factor, beta, t_stat (the "Factor regression" sheet), then a row with the R²."""
        if self.factor is None:
            return pd.DataFrame(columns=["factor", "beta", "t_stat"])
        table = self.factor.table[["factor", "beta", "t_stat"]].copy()
        r2 = pd.DataFrame([{"factor": "R²", "beta": self.factor.r2, "t_stat": float("nan")}])
        return pd.concat([table, r2], ignore_index=True)


def _check(mc: MonteCarloParams) -> None:
    errors: dict[str, str] = {}
    if not MIN_YEARS <= int(mc.years) <= MAX_YEARS:
        errors["years"] = f"must be between {MIN_YEARS} and {MAX_YEARS}; got {mc.years}"
    if mc.method not in METHODS:
        errors["method"] = f"one of {', '.join(METHODS)}"
    if not 100 <= int(mc.n_paths) <= MAX_PATHS:
        errors["n_paths"] = f"must be between 100 and {MAX_PATHS:,}"
    if not mc.start_value > 0:
        errors["start_value"] = "must be above 0"
    if mc.target is not None and not mc.target > 0:
        errors["target"] = "must be above 0"
    if errors:
        raise ValidationFailed(errors)


def risk_view(
    config_id: int,
    *,
    actor: Any,
    monte_carlo: MonteCarloParams | None = None,
    shocks: Sequence[Shock] = (),
    factor_set: str | None = None,
    newey_west: bool = False,
) -> RiskView:
    """Monte Carlo, stress and factor data of ``config_id`` (NotFoundError for an unknown version)."""
    mc = monte_carlo or MonteCarloParams()
    _check(mc)
    index = compute.stored_index(config_id) if id_in_range(config_id) else pd.Series(dtype=float)
    allocations = compute.stored_allocations(config_id) if id_in_range(config_id) else pd.DataFrame()
    with unit_of_work() as session:
        resolve(session, actor, ALL_ROLES, action="reading risk views")
        row = session.get(StrategyConfigRow, config_id) if id_in_range(config_id) else None
        if row is None:
            raise NotFoundError(f"no strategy config with id {config_id}")
        params = dict(row.params or {})
        label = f"{row.name} v{row.version}"
        held = [str(s) for s in allocations.columns]
        prices = price_store.load_price_matrix(session, held) if held else pd.DataFrame()
        bench, bench_symbol = stored_version_benchmark(session, params)
        rf = risk_free(session, index.index[0].date(), index.index[-1].date()) if len(index) else risk_free(session)
        info = pd.DataFrame(
            session.execute(select(Asset.symbol, Asset.sector, Asset.asset_class)).all(),
            columns=["symbol", "sector", "asset_class"],
        )
        sets = factor_store.list_factor_sets(session)
        chosen = next((s for s in sets if s.name == factor_set), None) if factor_set else (sets[0] if sets else None)
        if factor_set and chosen is None:
            raise ValidationFailed({"factor_set": f"no factor set named {factor_set!r}"})
        factor_frame = factor_store.load_factors(session, chosen.name) if chosen is not None else pd.DataFrame()
    notes: list[str] = []
    basis = str(params.get("basis", "price"))
    weights = pd.Series(dtype=float)
    as_of = index.index[-1] if len(index) else None
    if len(index) and not allocations.empty and not prices.empty:
        # the last allocation bought and held to as_of: h_i = w_i P_i(as_of) / P_i(d), W_i = h_i / (sum h + cash)
        last_day = allocations.index[-1]
        filled = prices.reindex(columns=allocations.columns).loc[:as_of].ffill()
        w = allocations.iloc[-1]
        growth = (filled.iloc[-1] / filled.loc[:last_day].iloc[-1]).fillna(1.0)
        held_value = w * growth
        weights = (held_value / (held_value.sum() + (1.0 - float(w.sum())))).astype(float)
        weights = weights[weights > 0]
    returns = index.pct_change().dropna()
    result = None
    if len(returns) >= 2:
        result = simulate(
            returns,
            years=int(mc.years),
            method=mc.method,  # type: ignore[arg-type]
            n_paths=int(mc.n_paths),
            seed=int(mc.seed),
            start_value=float(mc.start_value),
            contribution=float(mc.contribution),
            target=mc.target,
        )
    else:
        notes.append("Monte Carlo: the index has fewer than two daily returns; compute it first")
    stress = replay_all(weights, prices, bench) if len(weights) else []
    if not len(weights):
        notes.append("Stress scenarios: the version holds nothing yet")
    sectors = dict(zip(info["symbol"], info["sector"]))
    classes = dict(zip(info["symbol"], info["asset_class"]))
    hypothetical = apply_shocks(weights, list(shocks), sectors, classes) if shocks and len(weights) else None
    regression = rolling = None
    if chosen is not None and len(returns) > 10:
        regression = factor_math.factor_regression(returns, factor_frame, daily_rf(rf.rate), newey_west=newey_west)
        rolling = factor_math.rolling_betas(returns, factor_frame, ROLLING_BETA_WINDOW, daily_rf(rf.rate))
        if regression.nobs < 30:
            notes.append(f"Factor regression: only {regression.nobs} days overlap the factor set {chosen.label}")
    elif chosen is None:
        notes.append("Factor regression: no factor set stored; import one (date, factor, value) on the Data page")
    return RiskView(
        config_id,
        label,
        basis,
        bench_symbol,
        rf.label,
        weights,
        as_of,
        result,
        mc,
        stress,
        hypothetical,
        list(shocks),
        chosen,
        regression,
        rolling,
        notes,
    )


def comparison_series_of(config_id: int) -> dict[str, pd.Series]:
    """Levels of the version's comparison series (at most three) on its basis; empty when it names none."""
    from core.services.market import MarketInputs, comparison_series

    with unit_of_work() as session:
        row = session.get(StrategyConfigRow, config_id) if id_in_range(config_id) else None
        if row is None:
            return {}
        params = dict(row.params or {})
        named = [str(s) for s in params.get("comparisons") or []]
        if not named:
            return {}
        references = price_store.load_price_matrix(session, named)
        dividends = price_store.load_dividends(session, named) if params.get("basis") == "total_return" else None
    inputs = MarketInputs(
        pd.DataFrame(),
        None,
        None,
        None,
        [],
        references=references,
        dividends=dividends if dividends is not None and not dividends.empty else None,
    )
    try:
        return comparison_series(inputs, params)
    except (ValidationFailed, ValueError):
        return {}
