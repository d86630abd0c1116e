"""The one interface every market-data provider implements.

A provider turns "these symbols, these dates" into a :class:`ProviderData`: long
price and market-cap frames plus what it knows about each instrument. Callers
(the refresh service, the import screen, tests) only ever see this base class,
so demo data, TwelveData and file imports are interchangeable and one contract
test suite (tests/unit/test_providers_contract.py) runs against all of them.

Conventions every provider keeps
--------------------------------
* ``prices`` has exactly the columns ``date`` (``datetime64[ns]``, normalised to
  midnight, no time zone), ``symbol`` (str, upper case) and ``close`` (float64,
  strictly positive, finite), sorted by ``(symbol, date)`` with no duplicate
  ``(date, symbol)`` pair and a fresh ``RangeIndex``.
* ``market_caps`` has ``date``, ``symbol``, ``market_cap`` (float64, currency
  units, strictly positive) with the same ordering rules; it may be empty.
* ``start`` and ``end`` are inclusive calendar dates; ``None`` means "as far as
  the provider goes". Incremental refresh passes ``start`` = the day after the
  last stored date.
* A symbol the provider does not know (TwelveData's "symbol not found") is
  skipped: it has no rows, and :attr:`ProviderData.skipped` maps it to the
  reason, so one unknown ticker never stops the others from refreshing. Every
  other failure (network, rate limit, malformed data) raises
  :class:`core.errors.ProviderError` naming the symbol; nothing is returned
  partially. The demo provider knows every valid symbol (it invents a
  deterministic series for symbols outside its universe).
* Time is never read from the clock inside provider logic that tests need to
  control: constructors take ``today=`` (or ``now=``/``clock=``) arguments.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd

from core.errors import ProviderError
from core.schemas.asset import AssetInfo, symbol_problem

#: ``progress(fraction, message)``: fraction in [0, 1], message a short human sentence.
ProgressCallback = Callable[[float, str], None]

#: dtype of every ``date`` column handed out by a provider.
DATE_DTYPE = "datetime64[ns]"

PRICE_COLUMNS = ["date", "symbol", "close"]
MARKET_CAP_COLUMNS = ["date", "symbol", "market_cap"]


def empty_prices() -> pd.DataFrame:
    """Return an empty price frame with the contract's columns and dtypes."""
    return pd.DataFrame(
        {
            "date": pd.Series([], dtype=DATE_DTYPE),
            "symbol": pd.Series([], dtype="str"),
            "close": pd.Series([], dtype="float64"),
        }
    )


def empty_market_caps() -> pd.DataFrame:
    """Return an empty market-cap frame with the contract's columns and dtypes."""
    return pd.DataFrame(
        {
            "date": pd.Series([], dtype=DATE_DTYPE),
            "symbol": pd.Series([], dtype="str"),
            "market_cap": pd.Series([], dtype="float64"),
        }
    )


def normalise_long_frame(frame: pd.DataFrame, value_column: str) -> pd.DataFrame:
    """Coerce a long frame to the contract: dtypes, normalised dates, sorted, fresh index.

    Takes a frame with ``date``, ``symbol`` and ``value_column``; returns a new frame
    with exactly those three columns (the input is not modified). It does not
    validate values or drop duplicates; providers reject bad data before this.
    """
    if frame.empty:
        return empty_prices() if value_column == "close" else empty_market_caps()
    dates = pd.to_datetime(frame["date"])
    if getattr(dates.dtype, "tz", None) is not None:
        dates = dates.dt.tz_localize(None)
    out = pd.DataFrame(
        {
            "date": dates.dt.normalize().astype(DATE_DTYPE),
            "symbol": frame["symbol"].astype("str"),
            value_column: frame[value_column].astype("float64"),
        }
    )
    out = out.sort_values(["symbol", "date"], kind="stable", ignore_index=True)
    return out


def filter_dates(frame: pd.DataFrame, start: date | None, end: date | None) -> pd.DataFrame:
    """Return the rows of a long frame with ``start <= date <= end`` (both inclusive, None = open)."""
    mask = np.ones(len(frame), dtype=bool)
    if start is not None:
        mask &= (frame["date"] >= pd.Timestamp(start)).to_numpy()
    if end is not None:
        mask &= (frame["date"] <= pd.Timestamp(end)).to_numpy()
    if mask.all():
        return frame
    return frame.loc[mask].reset_index(drop=True)


def normalise_symbols(symbols: Iterable[str] | None) -> list[str] | None:
    """Check requested symbols with the one symbol rule, upper-case and de-duplicate them (order kept).

    ``None`` stays ``None``. A symbol the rule refuses (see :func:`core.schemas.asset.symbol_problem`: not
    plain ASCII, changed by NFKC normalisation or case folding, or not ticker-shaped) raises
    :class:`ProviderError` naming it, so ``ſpy`` can never be fetched as ``SPY``.
    """
    if symbols is None:
        return None
    seen: dict[str, None] = {}
    for s in symbols:
        problem = symbol_problem(s)
        if problem is not None:
            error = ProviderError(problem, status=400)
            error.symbol = s if isinstance(s, str) else repr(s)
            raise error
        seen.setdefault(s.strip().upper(), None)
    return list(seen)


@dataclass
class ProviderData:
    """What one ``fetch`` returns.

    Attributes:
        prices: long frame ``[date, symbol, close]`` (see module docstring).
        market_caps: long frame ``[date, symbol, market_cap]``; may be empty.
        assets: one :class:`AssetInfo` per symbol present in ``prices`` (or asked for).
        source: the provider's ``name`` ("demo", "twelvedata", "file"), stored as the data source.
        skipped: ``{symbol: reason}`` for requested symbols the provider does not know (no rows, no asset).
        generic: symbols whose :class:`AssetInfo` is a placeholder (the provider knows nothing but the
            symbol): the refresh uses it for a new asset but keeps a stored asset's name, class and sector.
        dividends: long frame ``[date, symbol, dividend]`` (cash per share going ex that day) or None: what the
            total-return basis reinvests (the demo's synthetic dividends, a file's ``dividend`` column).
    """

    prices: pd.DataFrame
    market_caps: pd.DataFrame = field(default_factory=empty_market_caps)
    assets: list[AssetInfo] = field(default_factory=list)
    source: str = ""
    skipped: dict[str, str] = field(default_factory=dict)
    generic: frozenset[str] = frozenset()
    dividends: pd.DataFrame | None = None

    @property
    def symbols(self) -> list[str]:
        """Sorted distinct symbols that have at least one price."""
        return sorted(self.prices["symbol"].unique().tolist())

    def last_dates(self) -> dict[str, date]:
        """Return the last price date per symbol (what incremental refresh resumes after)."""
        if self.prices.empty:
            return {}
        last = self.prices.groupby("symbol", sort=True)["date"].max()
        return {str(k): v.date() for k, v in last.items()}


def report(progress: ProgressCallback | None, fraction: float, message: str) -> None:
    """Call ``progress`` if given, clamping ``fraction`` to [0, 1]."""
    if progress is not None:
        progress(min(1.0, max(0.0, float(fraction))), message)


class MarketDataProvider(abc.ABC):
    """Base class of every market-data source.

    Subclasses set :attr:`name` and implement :meth:`fetch` and :meth:`universe`.
    They must be safe to call repeatedly; they may hold a network session but no
    database handle (the refresh service owns persistence).
    """

    #: Stored as the data source of every price and asset it produces.
    name: str = "base"

    @abc.abstractmethod
    def fetch(
        self,
        symbols: list[str] | None,
        start: date | None = None,
        end: date | None = None,
        *,
        progress: ProgressCallback | None = None,
    ) -> ProviderData:
        """Fetch daily closes (and market caps when the source has them).

        Args:
            symbols: symbols to fetch (case-insensitive); ``None`` means every
                symbol of :meth:`universe`.
            start: first calendar date wanted, inclusive; ``None`` = earliest available.
            end: last calendar date wanted, inclusive; ``None`` = latest available.
            progress: optional ``callable(fraction, message)`` called as work proceeds.

        Returns:
            :class:`ProviderData` following the conventions of this module; a
            symbol with no data in the range simply has no rows.

        Raises:
            ProviderError: the source failed (``transient`` tells whether retrying
                later may help) or sent data that does not parse. Nothing is
                returned partially. (An unknown symbol is skipped, not raised: see
                :attr:`ProviderData.skipped`.)
            ImportValidationError: (file import) the file was refused as a whole.
        """

    @abc.abstractmethod
    def universe(self) -> list[AssetInfo]:
        """Return the instruments this provider knows, sorted by symbol (may be empty)."""

    def __repr__(self) -> str:  # pragma: no cover - cosmetic
        return f"<{type(self).__name__} name={self.name!r}>"
