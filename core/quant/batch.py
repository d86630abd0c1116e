"""The batched engine path: many configs over one price matrix, sharing what does not depend on them.

A parameter sweep (docs/methodology.md, "Research: parameter sweeps") runs hundreds of configs over the same
prices. What only depends on the prices and the data-hygiene fields (:data:`core.quant.engine.HYGIENE_FIELDS`)
is computed once per distinct set of those fields, in :class:`core.quant.engine.CleanedPrices`:

* cleaning (minimum price, forward fill, clipping, outliers), the daily returns and eligibility;
* the causal growth index and invalid-return counts;
* each distinct lookback's signal at each row where some variant rebalances (momentum for every
  ``momentum_lookback``, inverse volatility for every ``risk_parity_lookback``), and the market-cap weights.

Each variant then runs the ordinary :func:`core.quant.engine.backtest` on those shared arrays, so its result is
the one a single backtest of that config gives (the same arithmetic on the same numbers; tests check 1e-12).
Pure: no database, clock or I/O; inputs are never modified.

Memory: one cleaned set is ``~4`` float arrays of ``dates x assets`` (about 40 MB for 500 x 2,520) plus the
memoised signals; :class:`SharedCleaning` keeps at most :data:`MAX_CLEANED` sets, and :func:`batch_order`
groups configs by hygiene fields so that a chunk rarely needs more than one.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import Any

import pandas as pd

from core.quant.engine import BacktestResult, CleanedPrices, backtest, clean_prices, hygiene_key
from core.schemas.strategy import StrategyConfig

__all__ = ["MAX_CLEANED", "SharedCleaning", "batch_backtest", "batch_order"]

#: Cleaned sets kept at once by :class:`SharedCleaning` (least recently used dropped first).
MAX_CLEANED = 2


class SharedCleaning:
    """Cleaned prices (and their memoised signals) per distinct set of hygiene fields, for one price matrix."""

    def __init__(self, prices: pd.DataFrame, *, keep: int = MAX_CLEANED) -> None:
        self.prices = prices
        self.keep = max(1, int(keep))
        self._by_key: OrderedDict[tuple[Any, ...], CleanedPrices] = OrderedDict()
        #: How many times prices were cleaned (one per distinct hygiene set when configs come grouped).
        self.cleanings = 0

    def for_config(self, cfg: StrategyConfig) -> CleanedPrices:
        """The cleaned prices for ``cfg``'s hygiene fields (cleaned now when not kept)."""
        key = hygiene_key(cfg)
        cleaned = self._by_key.get(key)
        if cleaned is None:
            cleaned = clean_prices(self.prices, cfg)
            self.cleanings += 1
            self._by_key[key] = cleaned
            while len(self._by_key) > self.keep:
                self._by_key.popitem(last=False)
        else:
            self._by_key.move_to_end(key)
        return cleaned


def batch_order(configs: Sequence[StrategyConfig | None]) -> list[int]:
    """Positions of ``configs`` grouped by hygiene fields (stable within a group); ``None`` entries last."""
    valid = [i for i, c in enumerate(configs) if c is not None]
    first_seen: dict[tuple[Any, ...], int] = {}
    for i in valid:
        first_seen.setdefault(hygiene_key(configs[i]), len(first_seen))  # type: ignore[arg-type]  # not None
    valid.sort(key=lambda i: first_seen[hygiene_key(configs[i])])  # type: ignore[arg-type]  # not None
    return valid + [i for i, c in enumerate(configs) if c is None]


def batch_backtest(
    prices: pd.DataFrame, configs: Sequence[StrategyConfig | dict[str, Any]], market_caps: pd.DataFrame | None = None
) -> list[BacktestResult | Exception]:
    """Backtest every config on ``prices``; item ``i`` is ``backtest(prices, configs[i], market_caps)`` or the
    exception it raised (an invalid config's pydantic ``ValidationError``, a :class:`DegenerateResultError`)."""
    return [result for _, result in iter_batch(prices, configs, market_caps)]


def iter_batch(
    prices: pd.DataFrame, configs: Sequence[StrategyConfig | dict[str, Any]], market_caps: pd.DataFrame | None = None
) -> Iterator[tuple[int, BacktestResult | Exception]]:
    """Like :func:`batch_backtest`, yielding ``(position, result)`` in the shared-work order, then re-sorted."""
    parsed: list[StrategyConfig | None] = []
    errors: dict[int, Exception] = {}
    for i, config in enumerate(configs):
        try:
            parsed.append(config if isinstance(config, StrategyConfig) else StrategyConfig.model_validate(config))
        except Exception as exc:  # noqa: BLE001 - the error is the variant's result
            parsed.append(None)
            errors[i] = exc
    shared = SharedCleaning(prices)
    results: dict[int, BacktestResult | Exception] = {}
    for i in batch_order(parsed):
        cfg = parsed[i]
        if cfg is None:
            results[i] = errors[i]
            continue
        try:
            results[i] = backtest(prices, cfg, market_caps, cleaned=shared.for_config(cfg))
        except Exception as exc:  # noqa: BLE001 - the error is the variant's result
            results[i] = exc
    for i in range(len(configs)):
        yield i, results[i]
