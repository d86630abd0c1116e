"""Deterministic synthetic market data: the embedded default, no key, no network.

The data is clearly synthetic (source ``"demo"``) but behaves like markets do:

* one common market factor, each asset loading on it with its own ``beta``
  (bonds negative, gold near zero, growth stocks above one), plus an
  idiosyncratic part; annual drift and volatility chosen per asset class;
* fat tails: daily shocks are Student-t with 4 degrees of freedom, scaled to unit variance;
* deterministic market stress on the factor: the 2008-09 crisis and the
  February-March 2020 crash (about -33 % in a month) with their recoveries;
* listing dates for the real tickers (no META before May 2012), none for synthetic ones;
* market cap = a constant share count x close (none for the index).

Reproducibility is the point of the design. Business day ``i`` (counted from the
fixed :data:`ORIGIN`) belongs to chunk ``i // CHUNK_DAYS``; each chunk's shocks
come from a generator seeded by ``(seed, chunk)`` only, and each chunk's *total*
log return is drawn separately (one cheap normal per asset and chunk) and the
daily shocks are bridged to it. Prices are anchored at the start of the chunk
containing :data:`ANCHOR` and chained with chunk totals, so:

* the same seed gives identical closes for a date whatever ``start``/``end`` are
  (extending ``end`` never rewrites history -- incremental refresh relies on it);
* a symbol's series is the same whatever ``n_assets`` is and whatever other symbols
  are fetched with it: each universe asset has a fixed row of the shock matrices
  (the seed universe in symbol order, then SYN0001, SYN0002, ...), a fetch generates
  the prefix up to the highest row it needs and keeps the rows asked for (a longer
  matrix has the same prefix);
* any other valid symbol (an asset added by hand or by import) is served too: a
  synthetic equity seeded from ``(seed, symbol)`` (:func:`symbol_spec`), so adding
  assets never makes a demo refresh fail;
* cost is proportional to the requested window, not to its distance from the
  origin: 500 assets x 10 years takes a fraction of a second.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from core.infra.providers.base import (
    DATE_DTYPE,
    MarketDataProvider,
    ProgressCallback,
    ProviderData,
    empty_market_caps,
    empty_prices,
    normalise_symbols,
    report,
)
from core.schemas.asset import AssetClass, AssetInfo

#: Business-day 0 (a Monday). Dates before it are not served.
ORIGIN = np.datetime64("1960-01-04", "D")
#: Business days per random chunk (about one year).
CHUNK_DAYS = 256
#: Prices are anchored (``anchor_price``) at the start of the chunk holding this date.
ANCHOR = np.datetime64("2018-01-02", "D")
TRADING_DAYS = 252
#: Student-t degrees of freedom of the daily shocks (4: fat tails, finite variance).
T_DF = 4.0
#: Annual volatility of the market factor.
MARKET_VOL = 0.16
#: Number of assets in the seed universe (real tickers + the benchmark).
SEED_UNIVERSE_SIZE = 14

# Deterministic stress on the market factor: (first day, last day, total log return).
STRESS_EPISODES: tuple[tuple[str, str, float], ...] = (
    ("2008-09-15", "2009-03-09", -0.55),
    ("2009-03-10", "2010-04-23", 0.45),
    ("2020-02-20", "2020-03-23", -0.40),  # ~ -33 % in about a month
    ("2020-03-24", "2020-08-31", 0.38),  # most of it back by the end of summer
)

SECTORS = (
    "Information Technology",
    "Health Care",
    "Financials",
    "Consumer Discretionary",
    "Communication Services",
    "Industrials",
    "Consumer Staples",
    "Energy",
    "Utilities",
    "Real Estate",
    "Materials",
)

# Stream ids keep the generators of different purposes independent.
_STREAM_SHOCKS, _STREAM_TOTALS, _STREAM_SYNTHETIC = 7, 11, 13


@dataclass(frozen=True)
class _AssetSpec:
    """Generation parameters of one asset (annual fractions, prices in USD)."""

    info: AssetInfo
    mu: float  # annual expected (arithmetic) return
    beta: float  # loading on the market factor
    idio_vol: float  # annual idiosyncratic volatility
    anchor_price: float
    shares: float  # shares outstanding; 0 = no market cap
    listed: str | None  # first trading day, ISO; None = always listed


def _seed_specs() -> list[_AssetSpec]:
    rows: list[tuple[str, str, AssetClass, str | None, float, float, float, float, float, str | None]] = [
        # symbol, name, class, sector, mu, beta, idio, anchor price, shares, listed
        ("AAPL", "Apple Inc.", "equity", "Information Technology", 0.18, 1.15, 0.20, 43.0, 20.0e9, "1980-12-12"),
        ("MSFT", "Microsoft Corp.", "equity", "Information Technology", 0.16, 1.05, 0.18, 86.0, 7.7e9, "1986-03-13"),
        (
            "GOOGL",
            "Alphabet Inc. Class A",
            "equity",
            "Communication Services",
            0.13,
            1.05,
            0.20,
            53.0,
            12.5e9,
            "2004-08-19",
        ),
        ("AMZN", "Amazon.com Inc.", "equity", "Consumer Discretionary", 0.15, 1.15, 0.25, 59.0, 10.0e9, "1997-05-15"),
        (
            "META",
            "Meta Platforms Inc.",
            "equity",
            "Communication Services",
            0.12,
            1.20,
            0.28,
            181.0,
            2.9e9,
            "2012-05-18",
        ),
        ("TSLA", "Tesla Inc.", "equity", "Consumer Discretionary", 0.20, 1.50, 0.50, 21.0, 3.2e9, "2010-06-29"),
        ("NVDA", "NVIDIA Corp.", "equity", "Information Technology", 0.25, 1.60, 0.38, 5.0, 24.6e9, "1999-01-22"),
        ("SPY", "SPDR S&P 500 ETF Trust", "etf", "Broad Market", 0.09, 1.00, 0.01, 268.0, 0.9e9, "1993-01-29"),
        ("GLD", "SPDR Gold Shares", "commodity", "Precious Metals", 0.05, 0.05, 0.14, 125.0, 0.3e9, "2004-11-18"),
        ("SLV", "iShares Silver Trust", "commodity", "Precious Metals", 0.03, 0.20, 0.25, 16.0, 0.35e9, "2006-04-28"),
        ("USO", "United States Oil Fund", "commodity", "Energy", -0.02, 0.60, 0.35, 90.0, 0.15e9, "2006-04-10"),
        (
            "TLT",
            "iShares 20+ Year Treasury Bond ETF",
            "bond",
            "Government Bonds",
            0.03,
            -0.25,
            0.12,
            127.0,
            0.1e9,
            "2002-07-30",
        ),
        (
            "IEF",
            "iShares 7-10 Year Treasury Bond ETF",
            "bond",
            "Government Bonds",
            0.025,
            -0.10,
            0.055,
            105.0,
            0.08e9,
            "2002-07-30",
        ),
        ("^GSPC", "S&P 500", "index", None, 0.09, 1.00, 0.0, 2690.0, 0.0, None),
    ]
    return [
        _AssetSpec(
            AssetInfo(symbol=s, name=n, asset_class=c, sector=sec, is_benchmark=(s == "^GSPC"), source="demo"),
            mu,
            beta,
            idio,
            price,
            shares,
            listed,
        )
        for s, n, c, sec, mu, beta, idio, price, shares, listed in rows
    ]


def _synthetic_specs(seed: int, count: int) -> list[_AssetSpec]:
    """Parameters for SYN0001..SYNnnnn, drawn in order so a longer list keeps the prefix."""
    if count <= 0:
        return []
    rng = np.random.default_rng([seed, _STREAM_SYNTHETIC])
    u = rng.random((count, 6))
    specs = []
    for j in range(count):
        mu, beta, idio = 0.15 * u[j, 0], 0.5 + 1.1 * u[j, 1], 0.15 + 0.30 * u[j, 2]
        price = float(np.exp(np.log(50.0) + 1.4 * (u[j, 3] - 0.5)))
        shares = float(np.exp(np.log(5e8) + 3.0 * (u[j, 4] - 0.5)))
        sector = SECTORS[int(u[j, 5] * len(SECTORS))]
        symbol = f"SYN{j + 1:04d}"
        info = AssetInfo(
            symbol=symbol, name=f"Synthetic Company {j + 1:04d}", asset_class="equity", sector=sector, source="demo"
        )
        specs.append(_AssetSpec(info, mu, beta, idio, price, shares, None))
    return specs


_SYNTHETIC = re.compile(r"SYN[0-9]{4}")


def _symbol_seed(seed: int, symbol: str) -> int:
    """A 64-bit seed from ``(seed, symbol)``: stable across processes and versions (SHA-256, not ``hash``)."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{symbol}".encode()).digest()[:8], "big")


def symbol_spec(seed: int, symbol: str) -> _AssetSpec:
    """Generation parameters of a symbol outside the demo universe: a synthetic equity whose drift, beta,
    volatility, price level and share count are drawn from ``(seed, symbol)`` alone, with the same ranges as
    the SYNnnnn assets. Its series uses its own generator (so it shares the market's stress episodes through
    its beta, but not the day-to-day market factor of the universe)."""
    u = np.random.default_rng([_symbol_seed(seed, symbol), _STREAM_SYNTHETIC]).random(5)
    info = AssetInfo(symbol=symbol, name=f"{symbol} (synthetic demo series)", asset_class="equity", source="demo")
    return _AssetSpec(
        info,
        0.15 * u[0],
        0.5 + 1.1 * u[1],
        0.15 + 0.30 * u[2],
        float(np.exp(np.log(50.0) + 1.4 * (u[3] - 0.5))),
        float(np.exp(np.log(5e8) + 3.0 * (u[4] - 0.5))),
        None,
    )


def _bday_index(d: date | np.datetime64) -> int:
    """Business days from :data:`ORIGIN` to ``d`` (``d`` excluded), i.e. the index of ``d`` if a weekday."""
    # numpy's stubs omit datetime64(<datetime64>, unit), which numpy accepts
    return int(np.busday_count(ORIGIN, np.datetime64(d, "D")))  # type: ignore[call-overload]


def _stress_overlay(first_index: int, n_days: int) -> np.ndarray:
    """Daily log-return overlay of :data:`STRESS_EPISODES` for business days ``first_index ..+n_days``."""
    overlay = np.zeros(n_days)
    for first, last, total in STRESS_EPISODES:
        a, b = _bday_index(np.datetime64(first)), _bday_index(np.datetime64(last)) + 1
        lo, hi = max(a, first_index), min(b, first_index + n_days)
        if lo < hi:
            overlay[lo - first_index : hi - first_index] = total / (b - a)
    return overlay


def _chunk_totals(seed: int, n_assets: int, k_lo: int, k_hi: int) -> tuple[np.ndarray, np.ndarray]:
    """Standard-normal totals for chunks ``k_lo..k_hi-1``: market ``(K,)`` and idiosyncratic ``(K, n_assets)``."""
    market = np.empty(k_hi - k_lo)
    idio = np.empty((k_hi - k_lo, n_assets))
    for row, k in enumerate(range(k_lo, k_hi)):
        rng = np.random.default_rng([seed, _STREAM_TOTALS, k])
        market[row] = rng.standard_normal()
        idio[row] = rng.standard_normal(n_assets)
    return market, idio


def generate_log_prices(seed: int, specs: list[_AssetSpec], first_index: int, last_index: int) -> np.ndarray:
    """Log closes ``(n_assets, n_days)`` for business days ``first_index..last_index`` (inclusive).

    Pure function of its arguments; see the module docstring for the model.
    """
    n = len(specs)
    mu = np.array([s.mu for s in specs])
    beta = np.array([s.beta for s in specs])
    idio_vol = np.array([s.idio_vol for s in specs])
    total_var = beta**2 * MARKET_VOL**2 + idio_vol**2
    daily_drift = (mu - 0.5 * total_var) / TRADING_DAYS  # (n,)
    t_scale = np.sqrt((T_DF - 2.0) / T_DF)  # unit-variance Student-t
    chunk_scale = np.sqrt(CHUNK_DAYS / TRADING_DAYS)

    k0, k1 = first_index // CHUNK_DAYS, last_index // CHUNK_DAYS + 1
    k_anchor = _bday_index(ANCHOR) // CHUNK_DAYS
    k_lo, k_hi = min(k0, k_anchor), max(k1, k_anchor)
    m_tot, i_tot = _chunk_totals(seed, n, k_lo, k_hi)
    # Total log return of every chunk between the anchor and the window, per asset.
    stress = _stress_overlay(k_lo * CHUNK_DAYS, (k_hi - k_lo) * CHUNK_DAYS)
    stress_tot = stress.reshape(k_hi - k_lo, CHUNK_DAYS).sum(axis=1)
    market_tot = m_tot * MARKET_VOL * chunk_scale  # (K,)
    idio_tot = i_tot * chunk_scale * idio_vol  # (K, n)
    totals = (daily_drift * CHUNK_DAYS)[None, :] + (market_tot + stress_tot)[:, None] * beta[None, :] + idio_tot
    if k0 >= k_anchor:
        level = totals[k_anchor - k_lo : k0 - k_lo].sum(axis=0)
    else:
        level = -totals[k0 - k_lo : k_anchor - k_lo].sum(axis=0)
    level = level + np.log([s.anchor_price for s in specs])

    n_chunks = k1 - k0
    returns = np.empty((n, n_chunks * CHUNK_DAYS))
    for c in range(n_chunks):
        k = k0 + c
        rng = np.random.default_rng([seed, _STREAM_SHOCKS, k])
        m_raw = rng.standard_t(T_DF, CHUNK_DAYS) * t_scale * MARKET_VOL / np.sqrt(TRADING_DAYS)
        e_raw = rng.standard_t(T_DF, (n, CHUNK_DAYS)) * t_scale / np.sqrt(TRADING_DAYS)
        # Bridge: shift the shocks so each chunk sums to its pre-drawn total.
        m = m_raw - (m_raw.sum() - market_tot[k - k_lo]) / CHUNK_DAYS
        e = e_raw - ((e_raw.sum(axis=1) - i_tot[k - k_lo] * chunk_scale) / CHUNK_DAYS)[:, None]
        block = slice(c * CHUNK_DAYS, (c + 1) * CHUNK_DAYS)
        returns[:, block] = daily_drift[:, None] + np.outer(beta, m) + idio_vol[:, None] * e
    returns += np.outer(beta, _stress_overlay(k0 * CHUNK_DAYS, n_chunks * CHUNK_DAYS))
    log_prices: np.ndarray = level[:, None] + np.cumsum(returns, axis=1)
    offset = first_index - k0 * CHUNK_DAYS
    return log_prices[:, offset : offset + (last_index - first_index + 1)]


class DemoProvider(MarketDataProvider):
    """Synthetic, deterministic daily closes and market caps (see module docstring).

    Every valid symbol is served (see :meth:`fetch`), so a growing universe never makes a demo refresh fail.

    Args:
        seed: random seed; the same seed always gives the same data.
        n_assets: size of :meth:`universe`; ``None`` (or 14) = the seed universe, more adds
            synthetic equities SYN0001, SYN0002, ... Must be at least 14. It never changes a series.
        start: first date served (inclusive); not before 1960-01-04.
        end: last date served (inclusive); default ``today``.
        today: the current date (tests pass it); default ``date.today()``.
    """

    name = "demo"

    def __init__(
        self,
        seed: int = 42,
        n_assets: int | None = None,
        start: date = date(2018, 1, 1),
        end: date | None = None,
        today: date | None = None,
    ) -> None:
        if n_assets is not None and n_assets < SEED_UNIVERSE_SIZE:
            raise ValueError(f"n_assets must be at least {SEED_UNIVERSE_SIZE} (the seed universe)")
        if np.datetime64(start, "D") < ORIGIN:
            raise ValueError(f"demo data starts at {ORIGIN}")
        self.seed = int(seed)
        self.today = today or date.today()
        self.start = start
        self.end = end or self.today
        self._n_universe = n_assets or SEED_UNIVERSE_SIZE
        # Canonical row order of the shock matrices: the seed universe sorted by symbol, then SYN0001, SYN0002, ...
        # A series depends only on its row, never on which other symbols are asked for with it.
        self._specs = sorted(_seed_specs(), key=lambda spec: spec.info.symbol)
        self._grow(self._n_universe - SEED_UNIVERSE_SIZE)

    def _grow(self, synthetic_count: int) -> None:
        """Make sure SYN0001..SYN{synthetic_count} have specs (a longer list keeps the prefix)."""
        have = len(self._specs) - SEED_UNIVERSE_SIZE
        if synthetic_count > have:
            self._specs = self._specs[:SEED_UNIVERSE_SIZE] + _synthetic_specs(self.seed, synthetic_count)
        self._by_symbol = {spec.info.symbol: i for i, spec in enumerate(self._specs)}

    def _row_of(self, symbol: str) -> int | None:
        """The canonical row of a universe symbol (``SYNnnnn`` at any n), or None for any other symbol."""
        if symbol not in self._by_symbol and _SYNTHETIC.fullmatch(symbol) and int(symbol[3:]) > 0:
            self._grow(int(symbol[3:]))
        return self._by_symbol.get(symbol)

    def universe(self) -> list[AssetInfo]:
        """Return the ``n_assets`` demo instruments (seed + synthetic), sorted by symbol."""
        return sorted((s.info for s in self._specs[: self._n_universe]), key=lambda a: a.symbol)

    def fetch(
        self,
        symbols: list[str] | None,
        start: date | None = None,
        end: date | None = None,
        *,
        progress: ProgressCallback | None = None,
    ) -> ProviderData:
        """Return closes and market caps for business days in ``[start, end]``.

        The window is clipped to the provider's own ``[start, end]``. Any valid symbol is served: one of the
        universe (the seed assets, ``SYNnnnn`` for any n) or any other ticker, which gets a synthetic equity
        series of its own, seeded from ``(seed, symbol)`` (:func:`symbol_spec`); its asset info is a placeholder
        (:attr:`ProviderData.generic`). A symbol's series is the same whatever window or other symbols are
        asked for. Rows before an asset's listing date are absent. Holidays are not modelled: every
        Monday-Friday is a trading day.
        """
        wanted = normalise_symbols(symbols)
        if wanted is None:
            wanted = [spec.info.symbol for spec in self._specs[: self._n_universe]]
        wanted = sorted(wanted)
        rows = {s: self._row_of(s) for s in wanted}
        extra = {s: symbol_spec(self.seed, s) for s, row in rows.items() if row is None}
        specs = [self._specs[row] if row is not None else extra[s] for s, row in rows.items()]
        assets = [s.info for s in specs]
        lo = max(start, self.start) if start else self.start
        hi = min(end, self.end) if end else self.end
        first, last = _bday_index(lo), _bday_index(np.datetime64(hi, "D") + 1) - 1
        if not specs or last < first:
            report(progress, 1.0, "no demo data in the requested window")
            return ProviderData(empty_prices(), empty_market_caps(), assets, self.name, generic=frozenset(extra))

        report(progress, 0.0, f"generating {len(specs)} demo series")
        closes = np.empty((len(specs), last - first + 1))
        universe_rows = [(i, row) for i, row in enumerate(rows.values()) if row is not None]
        if universe_rows:
            prefix = self._specs[: max(row for _, row in universe_rows) + 1]
            block = generate_log_prices(self.seed, prefix, first, last)
            for i, row in universe_rows:
                closes[i] = block[row]
        for i, symbol in enumerate(rows):
            if symbol in extra:
                closes[i] = generate_log_prices(_symbol_seed(self.seed, symbol), [extra[symbol]], first, last)[0]
        np.exp(closes, out=closes)
        report(progress, 0.7, "building frames")
        dates = np.busday_offset(ORIGIN, np.arange(first, last + 1)).astype(DATE_DTYPE)
        n_days = dates.size
        listed = np.array([np.datetime64(s.listed or "1900-01-01", "ns") for s in specs])
        keep = (dates[None, :] >= listed[:, None]).ravel()
        shares = np.array([s.shares for s in specs])

        date_col = np.tile(dates, len(specs))[keep]
        sym_col = np.repeat(np.array(wanted, dtype=object), n_days)[keep]
        close_col = closes.ravel()[keep]
        prices = pd.DataFrame({"date": date_col, "symbol": pd.Series(sym_col, dtype="str"), "close": close_col})
        has_cap = np.repeat(shares > 0, n_days)[keep]
        caps = pd.DataFrame(
            {
                "date": date_col[has_cap],
                "symbol": prices["symbol"].to_numpy()[has_cap],
                "market_cap": (closes * shares[:, None]).ravel()[keep][has_cap],
            }
        )
        caps["symbol"] = caps["symbol"].astype("str")
        report(progress, 1.0, f"{len(prices)} demo prices ready")
        dividends = demo_dividends(
            dates, wanted, closes, keep.reshape(len(specs), n_days), [s.info.asset_class for s in specs]
        )
        return ProviderData(
            prices,
            caps if len(caps) else empty_market_caps(),
            assets,
            self.name,
            generic=frozenset(extra),
            dividends=dividends,
        )


#: Annual cash yield of the synthetic dividends by asset class (paid quarterly); others pay none.
DEMO_DIVIDEND_YIELD = {"equity": 0.018, "etf": 0.015, "bond": 0.03}


def demo_dividends(
    dates: np.ndarray, symbols: list[str], closes: np.ndarray, listed: np.ndarray, asset_classes: list[str]
) -> pd.DataFrame:
    """Synthetic quarterly dividends (issue 15): on the last business day of Feb, May, Aug and Nov, each equity
    pays ``close x 1.8 % / 4``, each ETF 1.5 % and each bond 3 % a year, per share; index series (``^...``) and other
    classes pay none. ``closes`` is symbols x dates, ``listed`` the same shape (False before a listing).
    Deterministic: a function of the closes only. Long frame [date, symbol, dividend]."""
    day = pd.DatetimeIndex(dates)
    next_day = day + pd.offsets.BDay(1)
    paying_day = (day.month != next_day.month) & np.isin(day.month, (2, 5, 8, 11))
    rate = np.array(
        [0.0 if sym.startswith("^") else DEMO_DIVIDEND_YIELD.get(cls, 0.0) for sym, cls in zip(symbols, asset_classes)]
    )
    mask = listed & paying_day[None, :] & (rate[:, None] > 0)
    rows, cols = np.nonzero(mask)
    return pd.DataFrame(
        {
            "date": dates[cols],
            "symbol": pd.Series(np.array(symbols, dtype=object)[rows], dtype="str"),
            "dividend": closes[rows, cols] * rate[rows] / 4.0,
        }
    )


#: Name of the demo's synthetic factor set (labelled demo wherever it is shown).
DEMO_FACTOR_SET = "demo (synthetic)"
DEMO_FACTORS = ("Mkt-RF", "SMB", "HML", "MOM")


def demo_factors(market: pd.Series, seed: int = 42) -> pd.DataFrame:
    """A synthetic daily factor set shaped like Fama-French (issue 15): ``Mkt-RF`` is the daily return of the demo
    market series ``market`` (levels), ``SMB``, ``HML`` and ``MOM`` are seeded normal returns (annual vol 6-8 %,
    slightly correlated with the market), ``RF`` is 0. Long frame [date, factor, value]; deterministic."""
    levels = market.dropna().astype(float)
    mkt = levels.pct_change().dropna()
    rng = np.random.default_rng([int(seed), 15])
    n = len(mkt)
    daily = np.sqrt(1 / TRADING_DAYS)
    smb = 0.2 * mkt.to_numpy() + rng.normal(0.0, 0.06 * daily, n)
    hml = -0.1 * mkt.to_numpy() + rng.normal(0.0, 0.07 * daily, n)
    mom = rng.normal(0.0002, 0.08 * daily, n)
    wide = pd.DataFrame({"Mkt-RF": mkt.to_numpy(), "SMB": smb, "HML": hml, "MOM": mom, "RF": 0.0}, index=mkt.index)
    long = wide.rename_axis("date").reset_index().melt(id_vars="date", var_name="factor", value_name="value")
    return long
