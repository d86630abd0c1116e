"""Market inputs and the benchmark rule: what every screen, report, check and compute reads from the price store.

One rule, one home (docs/methodology.md, "Benchmark"): a config version may choose its benchmark (a stored symbol,
or a fixed-weight blend of stored symbols rebalanced monthly, issue 15); otherwise the benchmark is the *active*
benchmark asset ``^GSPC`` when it is stored, else the first active benchmark asset by symbol. The Dashboard, the
reports, Diagnostics and the compute all call :func:`version_benchmark` (or :func:`benchmark_symbol` /
:func:`choose_benchmark` for the default rule on rows they already hold).

The risk-free rate (:func:`risk_free`) is a market input too: ``RISK_FREE_SYMBOL``'s stored closes read as an annual
yield in percent when it has data in the period, else ``RISK_FREE_RATE``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.config import get_settings
from core.errors import ValidationFailed
from core.models import Asset
from core.quant.engine import fixed_weight_blend, total_return_prices
from core.quant.risk import PERIODS_PER_YEAR
from core.schemas.strategy import StrategyConfig
from core.services import prices as price_store

#: The benchmark preferred when several benchmark assets are active.
PREFERRED_BENCHMARK = "^GSPC"


def choose_benchmark(symbols: Iterable[str]) -> str | None:
    """The rule on a set of active benchmark symbols: ``^GSPC`` if present, else the first by symbol."""
    ordered = sorted(set(symbols))
    if PREFERRED_BENCHMARK in ordered:
        return PREFERRED_BENCHMARK
    return ordered[0] if ordered else None


def benchmark_symbol(session: Session) -> str | None:
    """The benchmark shown beside the index, by :func:`choose_benchmark` over the active benchmark assets."""
    return choose_benchmark(
        session.scalars(select(Asset.symbol).where(Asset.is_benchmark.is_(True), Asset.is_active.is_(True))).all()
    )


@dataclass
class MarketInputs:
    """What the engine needs: constituent prices and caps, and the benchmark level series."""

    prices: pd.DataFrame
    market_caps: pd.DataFrame | None
    benchmark: pd.Series | None
    benchmark_symbol: str | None
    sources: list[str]
    #: symbol-indexed ``sector`` / ``asset_class`` of every asset (group caps); dividends dates x symbols (total return)
    asset_info: pd.DataFrame | None = None
    dividends: pd.DataFrame | None = None
    #: closes of the other stored symbols a config may name (benchmarks, blend parts, comparisons), dates x symbols
    references: pd.DataFrame | None = None


def load_market_inputs(
    session: Session, start: dt.date | None = None, end: dt.date | None = None, config: StrategyConfig | None = None
) -> MarketInputs:
    """Active constituents (not benchmarks), the default benchmark, and what a config may name (issue 15): every
    active benchmark asset's closes, the symbols of ``config``'s benchmark, blend and comparisons, dividends and
    the sector / asset class of every asset."""
    assets = session.execute(
        select(Asset.symbol, Asset.is_benchmark, Asset.source).where(Asset.is_active.is_(True))
    ).all()
    members = sorted(s for s, b, _ in assets if not b)
    bench_symbol = choose_benchmark(s for s, b, _ in assets if b)
    matrix = price_store.load_price_matrix(session, members, start, end) if members else pd.DataFrame()
    caps = price_store.load_market_caps(session, members, start, end) if members else None
    if caps is not None and not caps.empty and not matrix.empty:
        caps = caps.reindex(index=matrix.index, columns=matrix.columns)
    elif caps is not None and caps.empty:
        caps = None
    benchmark = None
    if bench_symbol:
        bm = price_store.load_price_matrix(session, [bench_symbol], start, end)
        if not bm.empty:
            benchmark = bm[bench_symbol].dropna()
    info_rows = session.execute(select(Asset.symbol, Asset.sector, Asset.asset_class)).all()
    info = pd.DataFrame(info_rows, columns=["symbol", "sector", "asset_class"]).set_index("symbol")
    named = sorted(({s for s, b, _ in assets if b} | set(_named_symbols(config))) - set(members))
    references = price_store.load_price_matrix(session, named, start, end) if named else None
    dividends = price_store.load_dividends(session, members + named, start, end) if members else None
    return MarketInputs(
        matrix,
        caps,
        benchmark,
        bench_symbol,
        sorted({src for _, _, src in assets}),
        asset_info=info,
        dividends=dividends if dividends is not None and not dividends.empty else None,
        references=references,
    )


def _named_symbols(config: StrategyConfig | None) -> list[str]:
    if config is None:
        return []
    named = list(config.comparisons)
    if config.benchmark:
        named.append(config.benchmark)
    if config.benchmark_blend:
        named.extend(config.benchmark_blend)
    return named


def _levels(inputs: MarketInputs, symbols: list[str], basis: str) -> pd.DataFrame:
    """Levels of ``symbols`` from the inputs (constituents or references), dividends reinvested on a total-return
    basis."""
    columns: dict[str, pd.Series] = {}
    for frame in (inputs.prices, inputs.references):
        if frame is not None and not frame.empty:
            for symbol in symbols:
                if symbol in frame.columns and symbol not in columns:
                    columns[symbol] = frame[symbol]
    have = pd.DataFrame(columns)
    missing = [s for s in symbols if s not in have.columns or have[s].dropna().empty]
    if missing:
        raise ValidationFailed({"benchmark": f"no stored prices for {', '.join(missing)}"})
    have = have[symbols]
    if basis == "total_return" and inputs.dividends is not None:
        have = total_return_prices(have, inputs.dividends.reindex(columns=symbols))
    return have


def blend_label(blend: dict[str, float]) -> str:
    """ "60% ^GSPC / 40% IEF": largest weight first, then by symbol (stored JSON may reorder the keys)."""
    return " / ".join(f"{w * 100:g}% {s}" for s, w in sorted(blend.items(), key=lambda kv: (-kv[1], kv[0])))


def version_benchmark(
    inputs: MarketInputs, config: StrategyConfig | dict[str, Any] | None
) -> tuple[pd.Series | None, str | None]:
    """THE benchmark of a config version (levels, label): its blend (monthly rebalanced, base 100), its symbol, or
    the default rule's series; on a total-return basis dividends are reinvested. (None, label) when it has no data.
    ValidationFailed names ``benchmark`` when a chosen symbol has no stored prices."""
    cfg = config if isinstance(config, StrategyConfig) or config is None else StrategyConfig.model_validate(config)
    basis = cfg.basis if cfg is not None else "price"
    if cfg is not None and cfg.benchmark_blend:
        parts = list(cfg.benchmark_blend)
        blend = fixed_weight_blend(_levels(inputs, parts, basis), dict(cfg.benchmark_blend))
        label = blend_label(cfg.benchmark_blend)
        return (blend.rename(label) if len(blend) else None), label
    if cfg is not None and cfg.benchmark:
        return _levels(inputs, [cfg.benchmark], basis)[cfg.benchmark].dropna().rename(cfg.benchmark), cfg.benchmark
    if inputs.benchmark is None or inputs.benchmark_symbol is None:
        return None, inputs.benchmark_symbol
    if basis == "total_return" and inputs.dividends is not None and inputs.benchmark_symbol in inputs.dividends:
        frame = total_return_prices(
            inputs.benchmark.to_frame(inputs.benchmark_symbol), inputs.dividends[[inputs.benchmark_symbol]]
        )
        return frame[inputs.benchmark_symbol].dropna(), inputs.benchmark_symbol
    return inputs.benchmark, inputs.benchmark_symbol


def comparison_series(inputs: MarketInputs, config: StrategyConfig | dict[str, Any] | None) -> dict[str, pd.Series]:
    """The config's extra comparison series (at most three), levels by symbol, on the config's basis."""
    cfg = config if isinstance(config, StrategyConfig) or config is None else StrategyConfig.model_validate(config)
    if cfg is None or not cfg.comparisons:
        return {}
    levels = _levels(inputs, list(cfg.comparisons), cfg.basis)
    return {s: levels[s].dropna() for s in cfg.comparisons}


def load_version_inputs(
    session: Session, params: StrategyConfig | dict[str, Any], start: dt.date | None = None, end: dt.date | None = None
) -> MarketInputs:
    """:func:`load_market_inputs` for one config version (what its benchmark, blend and comparisons name)."""
    cfg = params if isinstance(params, StrategyConfig) else StrategyConfig.model_validate(params)
    return load_market_inputs(session, start, end, config=cfg)


@dataclass(frozen=True)
class RiskFree:
    """The risk-free rate used by Sharpe, Sortino and alpha: an annual decimal, where it came from, a label."""

    rate: float
    source: str
    label: str


def yield_to_annual_rate(yields_percent: pd.Series) -> float:
    """An annual yield series in percent -> one annual rate: ``(1 + mean(rf_d))^252 - 1`` with the daily rates
    ``rf_d = (1 + y/100)^(1/252) - 1`` (docs/methodology.md "Risk-free rate")."""
    y = yields_percent.dropna().astype(float) / 100.0
    daily = (1.0 + y) ** (1.0 / PERIODS_PER_YEAR) - 1.0
    return float((1.0 + daily.mean()) ** PERIODS_PER_YEAR - 1.0)


def risk_free(session: Session, start: dt.date | None = None, end: dt.date | None = None) -> RiskFree:
    """The rate for metrics over ``[start, end]``: ``RISK_FREE_SYMBOL``'s average yield there, else
    ``RISK_FREE_RATE``."""
    settings = get_settings()
    symbol = settings.risk_free_symbol
    if symbol:
        matrix = price_store.load_price_matrix(session, [symbol], start, end)
        if not matrix.empty and matrix[symbol].notna().any():
            rate = yield_to_annual_rate(matrix[symbol])
            return RiskFree(rate, symbol, f"risk-free rate {rate * 100:.2f} % a year (average yield of {symbol})")
    rate = float(settings.risk_free_rate)
    return RiskFree(rate, "RISK_FREE_RATE", f"risk-free rate {rate * 100:.2f} % a year (RISK_FREE_RATE)")


def stored_version_benchmark(
    session: Session, params: StrategyConfig | dict[str, Any] | None, end: dt.date | None = None
) -> tuple[pd.Series | None, str | None]:
    """:func:`version_benchmark` of a stored version from the price store, reading only the symbols it names (the
    Dashboard and the reports: no constituent prices needed). A blend or symbol without prices is (None, label)."""
    try:
        cfg = params if isinstance(params, StrategyConfig) or params is None else StrategyConfig.model_validate(params)
    except ValueError:
        cfg = None  # an old stored config: the default rule
    default = benchmark_symbol(session)
    named = sorted(set(_named_symbols(cfg)) | ({default} if default else set()))
    references = price_store.load_price_matrix(session, named, None, end) if named else pd.DataFrame()
    dividends = (
        price_store.load_dividends(session, named, None, end)
        if named and cfg is not None and cfg.basis == "total_return"
        else None
    )
    bench = references[default].dropna() if default and default in references.columns else None
    inputs = MarketInputs(
        pd.DataFrame(),
        None,
        bench,
        default,
        [],
        references=references,
        dividends=dividends if dividends is not None and not dividends.empty else None,
    )
    try:
        return version_benchmark(inputs, cfg)
    except ValidationFailed:
        label = (
            blend_label(cfg.benchmark_blend)
            if cfg is not None and cfg.benchmark_blend
            else (cfg.benchmark if cfg is not None else default)
        )
        return None, label


def universe_errors(session: Session, config: StrategyConfig) -> dict[str, str]:
    """Field -> message for what the stored universe cannot meet (issue 15): caps every sector or class of the active
    constituents cannot fill, exclusions of unknown symbols or of every constituent
    (:func:`core.quant.constraints.universe_errors`), and a benchmark, blend part or comparison that is not a
    stored symbol. Empty when feasible."""
    from core.quant.constraints import universe_errors as constraint_errors

    rows = session.execute(
        select(Asset.symbol, Asset.sector, Asset.asset_class, Asset.is_benchmark, Asset.is_active)
    ).all()
    members = [s for s, _sec, _cls, bench, active in rows if active and not bench]
    errors = (
        constraint_errors(
            symbols=members,
            sectors={s: sec for s, sec, *_ in rows},
            asset_classes={s: cls for s, _sec, cls, *_ in rows},
            sector_caps=config.sector_caps,
            asset_class_caps=config.asset_class_caps,
            exclusions=config.exclusions,
            max_weight=config.max_weight,
        )
        if members
        else {}
    )
    stored = {s for s, *_ in rows}
    for field, names in (
        ("benchmark", [config.benchmark] if config.benchmark else []),
        ("benchmark_blend", list(config.benchmark_blend or {})),
        ("comparisons", list(config.comparisons)),
    ):
        unknown = [n for n in names if n not in stored]
        if unknown:
            errors[field] = "not a stored symbol: " + ", ".join(unknown)
    return errors
