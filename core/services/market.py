"""Market inputs and the benchmark rule: what every screen, report, check and compute reads from the price store.

One rule, one home (docs/methodology.md, "Benchmark"): the benchmark is the *active* benchmark asset ``^GSPC`` when
it is stored, else the first active benchmark asset by symbol. The Dashboard, the reports, Diagnostics and the
compute all call :func:`benchmark_symbol` (or :func:`choose_benchmark` on rows they already hold).
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import Asset
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
    return choose_benchmark(session.scalars(
        select(Asset.symbol).where(Asset.is_benchmark.is_(True), Asset.is_active.is_(True))).all())


@dataclass
class MarketInputs:
    """What the engine needs: constituent prices and caps, and the benchmark level series."""

    prices: pd.DataFrame
    market_caps: pd.DataFrame | None
    benchmark: pd.Series | None
    benchmark_symbol: str | None
    sources: list[str]


def load_market_inputs(session: Session, start: dt.date | None = None, end: dt.date | None = None) -> MarketInputs:
    """Active constituents (not benchmarks) and the first benchmark, from the database."""
    assets = session.execute(select(Asset.symbol, Asset.is_benchmark, Asset.source).where(Asset.is_active.is_(True))).all()
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
    return MarketInputs(matrix, caps, benchmark, bench_symbol, sorted({src for _, _, src in assets}))


