"""One contract, every provider: demo, TwelveData (against the local stub), file import (CSV and XLSX).

Each case builds a provider that can serve SYMBOLS over 2024-01-01..2024-06-28 and the
same assertions run against all of them.
"""

from __future__ import annotations

import io
from datetime import date

import numpy as np
import openpyxl
import pandas as pd
import pytest

from core.errors import ProviderError
from core.infra.providers import (
    DemoProvider,
    FileImportProvider,
    MarketDataProvider,
    ProviderData,
    TwelveDataProvider,
)
from core.schemas.asset import AssetInfo
from tests.stubs.twelvedata_stub import DEFAULT_API_KEY, STUB_TODAY, start_stub

SYMBOLS = ["AAPL", "MSFT", "GLD", "^GSPC"]
FIRST, LAST = date(2024, 1, 1), date(2024, 6, 28)


@pytest.fixture(scope="module")
def stub_url():
    base_url, _controller, stop = start_stub()
    yield base_url
    stop()


def _source_frame() -> pd.DataFrame:
    return DemoProvider(seed=3, start=FIRST, end=LAST, today=STUB_TODAY).fetch(SYMBOLS).prices


def _csv_bytes() -> bytes:
    frame = _source_frame()
    frame = frame.assign(date=frame["date"].dt.strftime("%Y-%m-%d"))
    # Shuffled rows and mixed-case headers: the provider must sort and normalise.
    frame = frame.sample(frac=1.0, random_state=1).rename(columns={"date": "Date", "close": "CLOSE"})
    return frame.to_csv(index=False).encode()


def _xlsx_bytes() -> bytes:
    wide = _source_frame().pivot(index="date", columns="symbol", values="close")
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["date", *wide.columns])
    for stamp, row in wide.iterrows():
        sheet.append([stamp.to_pydatetime(), *[None if np.isnan(v) else float(v) for v in row]])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _make(kind: str, stub_url: str) -> MarketDataProvider:
    if kind == "demo":
        return DemoProvider(seed=3, start=date(2015, 1, 1), today=STUB_TODAY)
    if kind == "twelvedata":
        return TwelveDataProvider(
            DEFAULT_API_KEY, base_url=stub_url, credits_per_minute=10_000, sleep=lambda s: None, batch_size=3
        )
    if kind == "csv":
        return FileImportProvider(_csv_bytes(), "prices.csv", today=STUB_TODAY)
    if kind == "xlsx":
        return FileImportProvider(_xlsx_bytes(), "prices.xlsx", today=STUB_TODAY)
    raise AssertionError(kind)


PROVIDERS = ["demo", "twelvedata", "csv", "xlsx"]


@pytest.fixture(params=PROVIDERS)
def provider(request, stub_url) -> MarketDataProvider:
    return _make(request.param, stub_url)


def _check_long_frame(frame: pd.DataFrame, value: str) -> None:
    assert list(frame.columns) == ["date", "symbol", value]
    assert frame["date"].dtype == np.dtype("datetime64[ns]")
    assert pd.api.types.is_string_dtype(frame["symbol"])
    assert frame[value].dtype == np.float64
    assert isinstance(frame.index, pd.RangeIndex) and frame.index.start == 0
    if len(frame):
        assert (frame["date"] == frame["date"].dt.normalize()).all()
        assert not frame.duplicated(["date", "symbol"]).any()
        ordered = frame.sort_values(["symbol", "date"], ignore_index=True)
        pd.testing.assert_frame_equal(frame, ordered)
        assert np.isfinite(frame[value]).all() and (frame[value] > 0).all()
        assert (frame["symbol"] == frame["symbol"].str.upper()).all()


def test_is_a_market_data_provider(provider):
    assert isinstance(provider, MarketDataProvider)
    assert provider.name in {"demo", "twelvedata", "file"}
    universe = provider.universe()
    assert all(isinstance(a, AssetInfo) for a in universe)
    assert [a.symbol for a in universe] == sorted(a.symbol for a in universe)


def test_shape_types_order_and_values(provider):
    data = provider.fetch(SYMBOLS, FIRST, LAST)
    assert isinstance(data, ProviderData)
    assert data.source == provider.name
    _check_long_frame(data.prices, "close")
    _check_long_frame(data.market_caps, "market_cap")
    assert set(data.prices["symbol"]) == set(SYMBOLS)
    assert {a.symbol for a in data.assets} >= set(SYMBOLS)
    assert all(a.source == provider.name for a in data.assets)
    # Business days only, every symbol present on each of them.
    assert (data.prices["date"].dt.day_of_week < 5).all()
    assert data.prices.groupby("symbol").size().nunique() == 1


def test_start_end_are_inclusive_filters(provider):
    start, end = date(2024, 3, 4), date(2024, 3, 15)  # Monday .. Friday
    data = provider.fetch(["AAPL", "MSFT"], start, end)
    assert data.prices["date"].min() == pd.Timestamp(start)
    assert data.prices["date"].max() == pd.Timestamp(end)
    assert len(data.prices) == 2 * 10
    assert set(data.prices["symbol"]) == {"AAPL", "MSFT"}


def test_same_closes_whatever_the_window(provider):
    wide = provider.fetch(["AAPL"], FIRST, LAST).prices
    narrow = provider.fetch(["aapl"], date(2024, 2, 1), date(2024, 2, 29)).prices
    merged = narrow.merge(wide, on=["date", "symbol"], suffixes=("_n", "_w"))
    assert len(merged) == len(narrow) > 0
    np.testing.assert_allclose(merged["close_n"], merged["close_w"], rtol=1e-9)


def test_empty_window_gives_empty_frames(provider):
    data = provider.fetch(["AAPL"], date(2024, 3, 9), date(2024, 3, 10))  # a weekend
    assert data.prices.empty
    _check_long_frame(data.prices, "close")
    _check_long_frame(data.market_caps, "market_cap")


def test_a_symbol_the_provider_does_not_know_is_skipped_and_named_never_fatal(provider):
    """Issue 12: one unknown ticker never stops the others. The demo provider knows every valid symbol."""
    alone = provider.fetch(["AAPL"], FIRST, LAST)
    data = provider.fetch(["AAPL", "NOPE"], FIRST, LAST)
    aapl = data.prices[data.prices["symbol"] == "AAPL"].reset_index(drop=True)
    pd.testing.assert_frame_equal(aapl, alone.prices)
    if isinstance(provider, DemoProvider):
        assert not data.skipped and "NOPE" in set(data.prices["symbol"]) and data.generic == {"NOPE"}
    else:
        assert set(data.prices["symbol"]) == {"AAPL"}
        assert list(data.skipped) == ["NOPE"] and data.skipped["NOPE"]
        assert "NOPE" not in {a.symbol for a in data.assets}


def test_a_symbol_the_rule_refuses_raises_provider_error_naming_it(provider):
    with pytest.raises(ProviderError) as info:
        provider.fetch(["AAPL", "NO PE"], FIRST, LAST)
    assert info.value.symbol == "NO PE" and "NO PE" in str(info.value)


def test_progress_is_reported_between_zero_and_one(provider):
    calls: list[tuple[float, str]] = []
    provider.fetch(["AAPL"], FIRST, LAST, progress=lambda f, m: calls.append((f, m)))
    assert calls and all(0.0 <= f <= 1.0 and isinstance(m, str) for f, m in calls)
    assert calls[-1][0] == 1.0
