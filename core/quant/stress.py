"""Stress scenarios: docs/methodology.md "Stress scenarios".

Pure (no database, clock or I/O); inputs are never modified.

Historical replay (:func:`replay`)
    The index's *current* weights ``w`` (fractions of the index, cash ``1 - sum(w)`` earning 0) are held,
    bought and held without rebalancing, through a named historical window ``[start, end]``:
    ``R = sum_i w_i (P_i(end) / P_i(start) - 1)`` where ``P_i(start)`` is the last price on or before
    ``start`` and ``P_i(end)`` the last price on or before ``end``. The path
    ``V_t = (1 - sum w) + sum_i w_i P_i(t) / P_i(start)`` gives the window's maximum drawdown.
    A scenario is **covered** only when every held asset (and the benchmark, for its return) has a
    price within :data:`COVERAGE_TOLERANCE_DAYS` calendar days before ``start`` and on or after the
    window's last trading day; otherwise it is "not covered" and its returns are NaN with the assets
    that lack data named. No scenario is ever extrapolated.

Hypothetical shocks (:func:`apply_shocks`)
    A shock is a return applied instantly to an asset, a sector or an asset class. Each holding takes
    the most specific shock that names it (asset, then sector, then asset class; 0 if none):
    ``R = sum_i w_i s_i``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

__all__ = [
    "COVERAGE_TOLERANCE_DAYS",
    "SCENARIOS",
    "Scenario",
    "ScenarioResult",
    "Shock",
    "apply_shocks",
    "replay",
    "replay_all",
]

#: A price this many calendar days before a window's start still counts as its start price.
COVERAGE_TOLERANCE_DAYS = 7


@dataclass(frozen=True)
class Scenario:
    """A named historical window (calendar dates, inclusive)."""

    name: str
    start: dt.date
    end: dt.date


#: The named windows (S&P 500 peak-to-trough dates where the episode has one).
SCENARIOS: tuple[Scenario, ...] = (
    Scenario("Dot-com bust 2000-02", dt.date(2000, 3, 24), dt.date(2002, 10, 9)),
    Scenario("Global financial crisis", dt.date(2007, 10, 9), dt.date(2009, 3, 9)),
    Scenario("Euro crisis 2011", dt.date(2011, 4, 29), dt.date(2011, 10, 3)),
    Scenario("2018 Q4 sell-off", dt.date(2018, 10, 1), dt.date(2018, 12, 24)),
    Scenario("COVID crash", dt.date(2020, 2, 19), dt.date(2020, 3, 23)),
    Scenario("2022 rate shock", dt.date(2022, 1, 3), dt.date(2022, 10, 12)),
)


@dataclass
class ScenarioResult:
    """One row of the "Stress scenarios" table; returns are fractions (NaN when not covered)."""

    scenario: str
    start: dt.date
    end: dt.date
    index_return: float
    benchmark_return: float
    covered: bool
    max_drawdown: float = float("nan")
    note: str = ""
    path: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))

    def row(self) -> dict[str, object]:
        """The sheet's columns: scenario, start, end, index_return, benchmark_return, covered."""
        return {
            "scenario": self.scenario,
            "start": self.start,
            "end": self.end,
            "index_return": self.index_return,
            "benchmark_return": self.benchmark_return,
            "covered": self.covered,
        }


def _coverage(frame: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per column of ``frame``: whether it has a start price (the last price on or before ``start``, at most
    :data:`COVERAGE_TOLERANCE_DAYS` calendar days before it), that price, and whether its last price reaches
    ``end`` (on or after it, or at most 3 calendar days before it). One pass over the whole matrix."""
    n_rows, n_cols = frame.shape
    if n_rows == 0:
        return np.zeros(n_cols, dtype=bool), np.full(n_cols, np.nan), np.zeros(n_cols, dtype=bool)
    values = frame.to_numpy(dtype=float)
    valid = ~np.isnan(values)
    dates = pd.DatetimeIndex(frame.index)

    def last_valid_row(rows: int) -> np.ndarray:  # per column, the last row < rows holding a price (0 if none)
        return np.asarray(rows - 1 - valid[:rows][::-1].argmax(axis=0)) if rows else np.zeros(n_cols, dtype=int)

    before = int(dates.searchsorted(start, side="right"))  # rows on or before start
    at_start = last_valid_row(before)
    anchored = valid[:before].any(axis=0) & (np.asarray((start - dates[at_start]).days) <= COVERAGE_TOLERANCE_DAYS)
    anchors = np.where(anchored, values[at_start, np.arange(n_cols)], np.nan)
    at_end = last_valid_row(n_rows)
    reaches = valid.any(axis=0) & (np.asarray((end - dates[at_end]).days) <= 3)
    return anchored, anchors, reaches


def replay(
    weights: pd.Series, prices: pd.DataFrame, scenario: Scenario, benchmark: pd.Series | None = None
) -> ScenarioResult:
    """Replay ``scenario`` on ``weights`` (symbol -> fraction) over ``prices`` (dates x symbols levels)."""
    start, end = pd.Timestamp(scenario.start), pd.Timestamp(scenario.end)
    held = weights[weights > 0].astype(float)
    nan = float("nan")
    frame = prices.reindex(columns=held.index)  # a symbol without prices is an all-NaN column: not covered
    anchored, anchors, reaches = _coverage(frame, start, end)
    ok = anchored & reaches
    missing = [str(symbol) for symbol, good in zip(held.index, ok) if not good]
    starts = {str(symbol): float(a) for symbol, a, good in zip(held.index, anchors, ok) if good}
    bench_return = nan
    bench_ok = False
    if benchmark is not None and len(benchmark):
        b_anchored, b_anchor, b_reaches = _coverage(benchmark.to_frame(), start, end)
        if b_anchored[0] and b_reaches[0]:
            b1 = float(benchmark.loc[:end].dropna().iloc[-1])
            bench_return, bench_ok = b1 / float(b_anchor[0]) - 1.0, True
    if held.empty:
        return ScenarioResult(scenario.name, scenario.start, scenario.end, nan, bench_return, False, note="no holdings")
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        return ScenarioResult(
            scenario.name,
            scenario.start,
            scenario.end,
            nan,
            bench_return,
            False,
            note=f"not covered: no prices for {shown} over the window",
        )
    filled = prices.loc[:end, list(starts)].ffill()
    base_day = filled.index[filled.index <= start].max()  # the anchors are the filled prices of this row
    rel = filled.loc[base_day:] / pd.Series(starts)
    w = held.loc[list(starts)]
    path = (1.0 - float(held.sum())) + (rel * w).sum(axis=1)
    index_return = float(path.iloc[-1] - 1.0)
    dd = float((path / path.cummax() - 1.0).min())
    note = "" if bench_ok or benchmark is None else "benchmark not covered"
    return ScenarioResult(
        scenario.name,
        scenario.start,
        scenario.end,
        index_return,
        bench_return,
        True,
        max_drawdown=dd,
        note=note,
        path=path,
    )


def replay_all(
    weights: pd.Series,
    prices: pd.DataFrame,
    benchmark: pd.Series | None = None,
    scenarios: tuple[Scenario, ...] = SCENARIOS,
) -> list[ScenarioResult]:
    """:func:`replay` for every named scenario, in order."""
    return [replay(weights, prices, s, benchmark) for s in scenarios]


ShockKind = Literal["asset", "sector", "asset_class"]


@dataclass(frozen=True)
class Shock:
    """An instant return ``shock`` (fraction, e.g. -0.3) applied to an asset, a sector or an asset class."""

    kind: ShockKind
    target: str
    shock: float


def apply_shocks(
    weights: pd.Series,
    shocks: list[Shock],
    sectors: dict[str, str | None] | None = None,
    asset_classes: dict[str, str | None] | None = None,
) -> tuple[float, pd.Series]:
    """Return of the index under ``shocks`` and each holding's applied shock (see the module docstring).

    Raises ValueError when a shock is below -100 % (a price cannot fall below 0).
    """
    sectors, asset_classes = sectors or {}, asset_classes or {}
    by = {kind: {s.target: s.shock for s in shocks if s.kind == kind} for kind in ("asset", "sector", "asset_class")}
    for s in shocks:
        if not np.isfinite(s.shock) or s.shock < -1.0:
            raise ValueError(f"shock on {s.kind} {s.target!r} must be a return of at least -100 %; got {s.shock}")
    applied = {}
    for symbol in weights.index:
        sym = str(symbol)
        if sym in by["asset"]:
            applied[sym] = by["asset"][sym]
        elif sectors.get(sym) in by["sector"]:
            applied[sym] = by["sector"][str(sectors[sym])]
        elif asset_classes.get(sym) in by["asset_class"]:
            applied[sym] = by["asset_class"][str(asset_classes[sym])]
        else:
            applied[sym] = 0.0
    per_asset = pd.Series(applied, dtype=float).reindex(weights.index.astype(str))
    total = float((weights.to_numpy(dtype=float) * per_asset.to_numpy()).sum())
    return total, per_asset
