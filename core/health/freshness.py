"""The data freshness card: business days stale per asset (:mod:`core.services.freshness`, the one freshness rule)
and the benchmark (:func:`core.services.market.choose_benchmark`, the one benchmark rule: active benchmarks only)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, select

from core.health.base import ERROR, WARNING, Check, Context, read_session, register
from core.models import Asset, Price
from core.services.freshness import business_days_stale_many, stale_text
from core.services.market import choose_benchmark
from core.services.prices import per_asset

#: Business days after which the benchmark is stale (warning) and badly stale (error).
BENCHMARK_STALE_WARN_DAYS = 3
BENCHMARK_STALE_ERROR_DAYS = 10
#: Business days after which any other active asset is stale (warning).
ASSET_STALE_WARN_DAYS = 5


FRESHNESS_RULES = [
    f"warning if the benchmark is more than {BENCHMARK_STALE_WARN_DAYS} business days stale",
    f"error if the benchmark has no prices or is more than {BENCHMARK_STALE_ERROR_DAYS} business days stale",
    f"warning if any other active asset is more than {ASSET_STALE_WARN_DAYS} business days stale",
    "warning if there is no active benchmark asset (the benchmark is the active ^GSPC, else the first active "
    "benchmark asset by symbol)",
    "warning if no prices are stored",
]

FRESHNESS_COLUMNS = [
    "symbol",
    "name",
    "benchmark",
    "active",
    "source",
    "first_date",
    "last_date",
    "stale_days",
    "prices",
    "gaps",
]


def freshness_table(session: Any, today: dt.date | dt.datetime) -> pd.DataFrame:
    """Per asset, benchmark first: first / last price date, business days stale
    (:func:`core.services.freshness.business_days_stale`, the one rule), prices stored and
    gaps (business days between the first and last price with no price).

    One statement; per asset, MIN / MAX / COUNT are correlated subqueries that each seek the
    (asset_id, date) primary-key index, which is about 4x faster on SQLite than one GROUP BY over
    every price (55 ms instead of 235 ms for 1.3 M prices).
    """

    frame = pd.DataFrame(
        session.execute(
            select(
                Asset.id,
                Asset.symbol,
                Asset.name,
                Asset.is_benchmark,
                Asset.is_active,
                Asset.source,
                per_asset(func.min(Price.date)),
                per_asset(func.max(Price.date)),
                per_asset(func.count()),
            )
        ).all(),
        columns=["id", "symbol", "name", "benchmark", "active", "source", "first_date", "last_date", "prices"],
    )
    if frame.empty:
        return pd.DataFrame(columns=FRESHNESS_COLUMNS)
    first = pd.to_datetime(frame["first_date"]).to_numpy(dtype="datetime64[D]")
    last = pd.to_datetime(frame["last_date"]).to_numpy(dtype="datetime64[D]")
    has = ~np.isnat(last)
    gaps = np.full(len(frame), np.nan)
    stale = business_days_stale_many(last, today)
    expected = np.busday_count(first[has], last[has]) + 1
    gaps[has] = np.maximum(expected - frame.loc[has, "prices"].to_numpy(dtype=float), 0)
    frame["first_date"] = [d.date() if pd.notna(d) else None for d in pd.to_datetime(frame["first_date"])]
    frame["last_date"] = [d.date() if pd.notna(d) else None for d in pd.to_datetime(frame["last_date"])]
    frame["stale_days"] = pd.array(stale, dtype="Int64")
    frame["gaps"] = pd.array(gaps, dtype="Int64")
    frame["prices"] = frame["prices"].fillna(0).astype(int)
    frame["benchmark"] = frame["benchmark"].astype(bool)
    frame["active"] = frame["active"].astype(bool)
    frame = frame.sort_values(["benchmark", "symbol"], ascending=[False, True], ignore_index=True)
    return frame[FRESHNESS_COLUMNS]


def _benchmark_row(frame: pd.DataFrame) -> pd.Series | None:
    """The benchmark's row by the one rule: :func:`core.services.market.choose_benchmark` over the *active*
    benchmark assets (what the Dashboard, the reports and the compute show)."""
    symbol = choose_benchmark(frame.loc[frame["benchmark"] & frame["active"], "symbol"])
    return None if symbol is None else frame[frame["symbol"] == symbol].iloc[0]


@register(
    "freshness",
    "Data freshness",
    shows="first and last price date, business days stale, prices and gaps per asset, the benchmark first",
    rules=FRESHNESS_RULES,
    needs_database=True,
    order=50,
)
def check_freshness(ctx: Context, check: Check) -> None:
    with read_session(ctx) as session:
        # The clock itself (the close of the day matters), unless a different day was asked for.
        frame = freshness_table(session, ctx.now if ctx.today == ctx.now.date() else ctx.today)
    check.tables["freshness"] = frame
    priced = frame[frame["prices"] > 0]
    check.facts.update(
        {"assets": len(frame), "priced_assets": len(priced), "prices": int(frame["prices"].sum()), "today": ctx.today}
    )
    if priced.empty:
        check.raise_to(WARNING, "no prices stored")
        check.summary = "no prices stored yet: refresh or import market data"
        return
    bench = _benchmark_row(frame)
    if bench is None:
        check.raise_to(WARNING, "no active benchmark asset")
        bench_text = "no benchmark"
    elif bench["prices"] == 0 or pd.isna(bench["stale_days"]):
        check.raise_to(ERROR, f"benchmark {bench['symbol']} has no prices")
        bench_text = f"benchmark {bench['symbol']} has no prices"
    else:
        stale = int(bench["stale_days"])
        check.facts.update(
            {"benchmark": bench["symbol"], "benchmark_last_date": bench["last_date"], "benchmark_stale_days": stale}
        )
        if stale > BENCHMARK_STALE_ERROR_DAYS:
            check.raise_to(ERROR, f"benchmark {bench['symbol']} is {stale_text(stale)}")
        elif stale > BENCHMARK_STALE_WARN_DAYS:
            check.raise_to(WARNING, f"benchmark {bench['symbol']} is {stale_text(stale)}")
        bench_text = f"benchmark {bench['symbol']} last {bench['last_date']} ({stale_text(stale)})"
    others = frame[(~frame["benchmark"]) & frame["active"]]
    stale_others = others[others["stale_days"].fillna(0) > ASSET_STALE_WARN_DAYS]
    if len(stale_others):
        names = ", ".join(stale_others["symbol"].head(5)) + (" …" if len(stale_others) > 5 else "")
        check.raise_to(
            WARNING,
            f"{len(stale_others)} active asset(s) more than {ASSET_STALE_WARN_DAYS} business days stale: {names}",
        )
    check.facts["stale_assets"] = int(len(stale_others))
    check.facts["gaps"] = int(frame["gaps"].fillna(0).sum())
    check.summary = f"{bench_text}; {len(stale_others)} stale asset(s) of {len(priced)} priced"
    return
