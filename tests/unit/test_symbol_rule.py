"""The one symbol rule (issue 11, case 9): the file import, the asset schema, every provider's requested
symbols, refresh job parameters and the saved provider settings accept and refuse exactly the same symbols, and
nothing Unicode would change is ever mapped onto ASCII."""

from __future__ import annotations

import unicodedata
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from core.errors import ImportValidationError, ProviderError
from core.infra.providers.base import normalise_symbols
from core.infra.providers.demo import DemoProvider
from core.infra.providers.files import parse_price_file
from core.schemas.asset import AssetInfo, normalise_symbol, symbol_problem

GOOD = ["AAPL", "aapl", " msft ", "^GSPC", "BRK.B", "EUR/USD", "ES=F", "BTC-USD", "7203:TYO", "A_1", "0700"]
HOSTILE = [
    "ſpy",
    "ＳＰＹ",
    "ﬁx",
    "ıbm",
    "İBM",
    "\u212aO",
    "ß",
    "SP\u200bY",
    "spy\u0307",
    "Ⅻ",
    "x²",
    "ᴬAPL",
    "①",
    "A\u00a0B",
    "Ａ",
]
SHAPE = ["", "  ", "-AAPL", ".X", "A B", "A" * 33, "A;B", "A\nB", "<b>", "=1+1", "@X"]


def _import_accepts(symbol: str) -> bool:
    try:
        parse_price_file(f"date,symbol,close\n2024-01-02,{symbol},1\n".encode(), "p.csv", today=date(2024, 12, 31))
    except ImportValidationError:
        return False
    return True


def _schema_accepts(symbol: str) -> bool:
    try:
        AssetInfo(symbol=symbol, name="x")
    except ValidationError:
        return False
    return True


def _providers_accept(symbol: str) -> bool:
    try:
        normalise_symbols([symbol])
    except ProviderError:
        return False
    return True


def _refresh_params_accept(symbol: str) -> bool:
    from core.schemas.task import RefreshParams

    try:
        return RefreshParams(symbols=[symbol]).symbols == [symbol.strip().upper()]
    except ValidationError:
        return False


def _provider_settings_accept(symbol: str) -> bool:
    from core.errors import ValidationFailed
    from core.services import universe

    try:
        universe.put_provider_settings("no such provider", symbol)
    except ValidationFailed as exc:  # the provider name is always refused: only the symbols are judged here
        return "symbols" not in exc.errors
    raise AssertionError("an unknown provider must be refused")


@pytest.mark.parametrize("symbol", GOOD)
def test_good_symbols_are_accepted_everywhere_upper_case(symbol):
    assert symbol_problem(symbol) is None
    assert normalise_symbol(symbol) == symbol.strip().upper() == AssetInfo(symbol=symbol, name="x").symbol
    assert normalise_symbols([symbol]) == [symbol.strip().upper()]
    assert _import_accepts(symbol) and _refresh_params_accept(symbol) and _provider_settings_accept(symbol)


@pytest.mark.parametrize("symbol", HOSTILE + SHAPE)
def test_hostile_symbols_are_refused_everywhere_naming_the_symbol(symbol):
    problem = symbol_problem(symbol)
    assert problem is not None
    assert not _schema_accepts(symbol) and not _providers_accept(symbol)
    if symbol.strip() and "," not in symbol and "\n" not in symbol:  # blanks and list syntax aside
        assert not _refresh_params_accept(symbol) and not _provider_settings_accept(symbol)
    if "\n" not in symbol and ";" not in symbol and "," not in symbol:  # CSV syntax aside, the import agrees
        assert not _import_accepts(symbol)
    if symbol.strip():
        assert repr(symbol.strip()[:40]) in problem


def test_nfkc_and_case_folding_are_named():
    assert "NFKC normalisation (to 'spy')" in symbol_problem("ſpy")
    assert "NFKC normalisation (to 'SPY')" in symbol_problem("ＳＰＹ")
    assert "case folding" in symbol_problem("ıbm") and "U+0131" in symbol_problem("ıbm")
    assert "non-ASCII" in symbol_problem("SP\u200bY")


def test_providers_name_the_refused_symbol():
    with pytest.raises(ProviderError) as info:
        DemoProvider(today=date(2024, 6, 28)).fetch(["AAPL", "ſpy"])
    assert info.value.symbol == "ſpy" and "NFKC" in str(info.value)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=8))
def test_the_rule_never_maps_non_ascii_text_onto_a_symbol(text):
    """Whatever the text, an accepted symbol is the ASCII text itself, upper-cased: nothing is folded into it."""
    problem = symbol_problem(text)
    if problem is None:
        stripped = text.strip()
        assert stripped.isascii() and unicodedata.normalize("NFKC", stripped) == stripped
        assert normalise_symbol(text) == stripped.upper()
    assert _schema_accepts(text) == (problem is None) == _providers_accept(text)
