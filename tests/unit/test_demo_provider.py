"""DemoProvider: the seed universe, reproducibility, realism and speed."""

from __future__ import annotations

import time
from datetime import date

import numpy as np
import pandas as pd
import pytest

from core.errors import ProviderError
from core.infra.providers import DemoProvider

TODAY = date(2024, 12, 31)
SEED_SYMBOLS = {
    "AAPL",
    "MSFT",
    "GOOGL",
    "AMZN",
    "META",
    "TSLA",
    "NVDA",
    "SPY",
    "GLD",
    "SLV",
    "USO",
    "TLT",
    "IEF",
    "^GSPC",
}


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    """Seed universe 2005..2024 as a dates x symbols matrix."""
    data = DemoProvider(start=date(2005, 1, 1), today=TODAY).fetch(None)
    return data.prices.pivot(index="date", columns="symbol", values="close")


def test_seed_universe_is_exact():
    universe = {a.symbol: a for a in DemoProvider(today=TODAY).universe()}
    assert set(universe) == SEED_SYMBOLS
    assert universe["^GSPC"].is_benchmark and universe["^GSPC"].asset_class == "index"
    assert universe["^GSPC"].name == "S&P 500"
    assert [s for s, a in universe.items() if a.is_benchmark] == ["^GSPC"]
    assert {s for s, a in universe.items() if a.asset_class == "commodity"} == {"GLD", "SLV", "USO"}
    assert {s for s, a in universe.items() if a.asset_class == "bond"} == {"TLT", "IEF"}
    assert universe["SPY"].asset_class == "etf"
    equities = {s for s, a in universe.items() if a.asset_class == "equity"}
    assert equities == {"AAPL", "MSFT", "GOOGL", "AMZN", "META", "TSLA", "NVDA"}
    assert all(universe[s].sector for s in equities)
    assert all(a.source == "demo" for a in universe.values())


def test_same_seed_same_data_and_other_seed_differs():
    a = DemoProvider(seed=1, today=TODAY).fetch(["AAPL"]).prices
    b = DemoProvider(seed=1, today=TODAY).fetch(["AAPL"]).prices
    c = DemoProvider(seed=2, today=TODAY).fetch(["AAPL"]).prices
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["close"], c["close"])


@pytest.mark.parametrize("short_end", [date(2019, 3, 7), date(2021, 6, 30), date(2023, 1, 2)])
def test_extending_end_never_rewrites_history(short_end):
    short = DemoProvider(seed=5, today=short_end).fetch(None).prices
    long = DemoProvider(seed=5, today=TODAY).fetch(None).prices
    merged = short.merge(long, on=["date", "symbol"], suffixes=("_s", "_l"))
    assert len(merged) == len(short)
    np.testing.assert_allclose(merged["close_s"], merged["close_l"], rtol=1e-12)


def test_start_and_universe_size_do_not_change_values():
    base = DemoProvider(seed=9, start=date(2018, 1, 1), today=TODAY).fetch(["MSFT", "TLT"]).prices
    early = DemoProvider(seed=9, start=date(1999, 1, 1), today=TODAY, n_assets=40).fetch(["MSFT", "TLT"]).prices
    merged = base.merge(early, on=["date", "symbol"])
    assert len(merged) == len(base)
    np.testing.assert_allclose(merged["close_x"], merged["close_y"], rtol=1e-12)


def test_incremental_fetch_matches_full_fetch():
    provider = DemoProvider(seed=4, today=TODAY)
    full = provider.fetch(["NVDA"]).prices
    last = full["date"].iloc[300].date()
    tail = provider.fetch(["NVDA"], start=last + pd.Timedelta(days=1).to_pytimedelta()).prices
    pd.testing.assert_frame_equal(tail, full.iloc[301:].reset_index(drop=True))


def test_business_days_from_start_to_today():
    prices = DemoProvider(start=date(2024, 1, 1), today=date(2024, 1, 31)).fetch(["SPY"]).prices
    expected = pd.bdate_range("2024-01-01", "2024-01-31")
    assert list(prices["date"]) == list(expected)


def test_listing_dates_respected():
    prices = DemoProvider(start=date(2010, 1, 1), today=TODAY).fetch(["META", "AAPL"]).prices
    assert prices.loc[prices["symbol"] == "META", "date"].min() == pd.Timestamp("2012-05-18")
    assert prices.loc[prices["symbol"] == "AAPL", "date"].min() == pd.Timestamp("2010-01-01")


def test_volatility_by_asset_class_is_realistic(history):
    vol = history.pct_change(fill_method=None).std() * np.sqrt(252)
    assert 0.12 < vol["^GSPC"] < 0.25 and 0.12 < vol["SPY"] < 0.25
    assert 0.03 < vol["IEF"] < 0.09 and 0.08 < vol["TLT"] < 0.2
    assert vol["TSLA"] > vol["AAPL"] > vol["IEF"]
    assert 0.2 < vol[["AAPL", "MSFT", "GOOGL", "AMZN"]].mean() < 0.45


def test_common_factor_and_defensive_bonds(history):
    corr = history.pct_change(fill_method=None).corr()
    assert corr.loc["SPY", "^GSPC"] > 0.98
    assert corr.loc["AAPL", "MSFT"] > 0.3
    assert corr.loc["TLT", "^GSPC"] < 0
    assert abs(corr.loc["GLD", "^GSPC"]) < 0.3


def test_fat_tails(history):
    returns = history["^GSPC"].pct_change().dropna()
    assert returns.kurt() > 1.0  # excess kurtosis; a normal would give ~0


def test_covid_crash_and_recovery(history):
    gspc = history["^GSPC"]
    crash = gspc.loc["2020-03-23"] / gspc.loc["2020-02-19"] - 1
    assert -0.45 < crash < -0.2
    assert gspc.loc["2020-12-31"] > gspc.loc["2020-03-23"] * 1.3
    assert history["TLT"].loc["2020-03-23"] > history["TLT"].loc["2020-02-19"] * 0.97


def test_market_caps_are_shares_times_close_and_absent_for_the_index():
    data = DemoProvider(today=date(2019, 12, 31)).fetch(None)
    caps = data.market_caps
    assert "^GSPC" not in set(caps["symbol"])
    assert set(caps["symbol"]) == SEED_SYMBOLS - {"^GSPC"}
    merged = caps.merge(data.prices, on=["date", "symbol"])
    shares = (merged["market_cap"] / merged["close"]).groupby(merged["symbol"]).agg(["min", "max"])
    np.testing.assert_allclose(shares["min"], shares["max"], rtol=1e-9)
    assert (caps["market_cap"] > 1e8).all()


def test_synthetic_assets_are_added():
    provider = DemoProvider(n_assets=120, today=TODAY)
    universe = provider.universe()
    assert len(universe) == 120
    synthetic = [a for a in universe if a.symbol.startswith("SYN")]
    assert [a.symbol for a in synthetic][:3] == ["SYN0001", "SYN0002", "SYN0003"]
    assert len(synthetic) == 106 and all(a.sector and a.asset_class == "equity" for a in synthetic)
    assert len({a.sector for a in synthetic}) > 5


def test_bad_arguments():
    with pytest.raises(ValueError):
        DemoProvider(n_assets=3)
    with pytest.raises(ProviderError) as info:
        DemoProvider(today=TODAY).fetch(["AAPL", "X Y"])  # not a ticker: refused by the one symbol rule
    assert info.value.symbol == "X Y"


# --- any symbol (issue 12, item 3) --------------------------------------------------------------


def test_a_series_does_not_depend_on_the_other_symbols_fetched():
    """Before: each fetch drew shock rows in the order of the symbols asked for, so MSFT alone differed from
    MSFT in a full fetch (a refresh of named symbols rewrote stored history)."""
    provider = DemoProvider(seed=3, today=TODAY)
    full = provider.fetch(None, start=date(2024, 1, 1)).prices
    for symbols in (["MSFT"], ["TLT", "^GSPC"], ["SYN0007", "AAPL"]):
        alone = provider.fetch(symbols, start=date(2024, 1, 1)).prices
        bigger = DemoProvider(seed=3, today=TODAY, n_assets=30).fetch(None, start=date(2024, 1, 1)).prices
        for symbol in symbols:
            mine = alone[alone["symbol"] == symbol].reset_index(drop=True)
            reference = full if symbol in set(full["symbol"]) else bigger
            theirs = reference[reference["symbol"] == symbol].reset_index(drop=True)
            assert len(mine) > 200
            pd.testing.assert_frame_equal(mine, theirs)


def test_seed_universe_values_are_those_seed_demo_always_stored():
    """Pinned from the code before the canonical-row change (a full fetch, seed 42): the default demo
    databases seeded earlier stay consistent, now also when only two symbols are asked for."""
    pinned = {
        "AAPL": 95.31145,
        "AMZN": 250.782376,
        "GLD": 136.90991,
        "GOOGL": 140.507077,
        "IEF": 137.19503,
        "META": 375.820321,
        "MSFT": 38.421696,
        "NVDA": 1.652256,
        "SLV": 17.202794,
        "SPY": 369.343517,
        "TLT": 244.871425,
        "TSLA": 3.494909,
        "USO": 109.51161,
        "^GSPC": 3773.078408,
    }
    for symbols in (None, ["MSFT", "^GSPC"]):
        data = DemoProvider(seed=42, today=TODAY).fetch(symbols, start=date(2024, 12, 31)).prices
        got = {s: round(c, 6) for s, c in zip(data["symbol"], data["close"])}
        assert got == {s: pinned[s] for s in (symbols or pinned)}


@pytest.mark.parametrize("symbol", ["ZZTOP", "BRK.B", "RDS-A", "^FTSE", "SYN0999"])
def test_any_valid_symbol_gets_a_deterministic_series_whatever_the_window(symbol):
    provider = DemoProvider(seed=11, today=TODAY)
    data = provider.fetch([symbol.lower()])
    prices = data.prices
    assert set(prices["symbol"]) == {symbol}
    assert len(prices) == len(pd.bdate_range("2018-01-01", TODAY))
    assert (prices["close"] > 0).all() and prices["close"].pct_change().abs().max() < 0.5
    assert [a.source for a in data.assets] == ["demo"] and not data.skipped
    # same series from another instance, a later window, and beside other symbols
    tail = DemoProvider(seed=11, today=TODAY).fetch([symbol, "AAPL"], start=date(2024, 6, 3)).prices
    tail = tail[tail["symbol"] == symbol].reset_index(drop=True)
    pd.testing.assert_frame_equal(tail, prices[prices["date"] >= "2024-06-03"].reset_index(drop=True))
    other_seed = DemoProvider(seed=12, today=TODAY).fetch([symbol]).prices
    assert not np.allclose(other_seed["close"], prices["close"])


def test_symbols_outside_the_universe_are_placeholders_with_caps():
    data = DemoProvider(today=TODAY).fetch(["NEWCO", "AAPL"], start=date(2024, 12, 2))
    assert data.generic == frozenset({"NEWCO"})
    info = {a.symbol: a for a in data.assets}
    assert info["NEWCO"].name == "NEWCO (synthetic demo series)" and info["AAPL"].name == "Apple Inc."
    caps = data.market_caps[data.market_caps["symbol"] == "NEWCO"].merge(data.prices, on=["date", "symbol"])
    shares = caps["market_cap"] / caps["close"]
    assert len(caps) == 22 and np.allclose(shares, shares.iloc[0], rtol=1e-12)


def test_start_after_end_is_empty():
    data = DemoProvider(today=TODAY).fetch(["AAPL"], start=date(2024, 5, 1), end=date(2024, 4, 1))
    assert data.prices.empty and data.market_caps.empty


def test_500_assets_10_years_is_fast():
    provider = DemoProvider(n_assets=500, start=date(2015, 1, 1), today=date(2024, 12, 31))
    started = time.perf_counter()
    data = provider.fetch(None)
    elapsed = time.perf_counter() - started
    # Every seed asset was listed before 2015, so the frame is full.
    assert len(data.prices) == 500 * len(pd.bdate_range("2015-01-01", "2024-12-31"))
    assert (data.prices["close"] > 0).all()
    assert elapsed < 2.0, f"{elapsed:.2f} s"
