"""Generated hostile price files (issue 11): CSV text and XLSX structure, thousands per run.

Every file is either parsed into data that keeps the provider contract and the import's rules (dates within
1900-01-01..today, symbols that pass the one symbol rule, closes and market caps within the sanity range, sorted,
no duplicate) or refused with an :class:`ImportValidationError` listing its problems -- never any other exception.
The generators lean on what broke before: dates beyond pandas' range (years 0001, 1600, 2263, 9999, serials
outside Excel's calendar), symbols Unicode would change (ſpy, fullwidth, ligatures, dotless i), and XLSX
structure (dimension lies, rows and cells out of order, huge shared strings, missing parts, random zip members,
truncated or re-encoded parts, DTDs). A database-backed subset imports through the service on SQLite and
PostgreSQL and checks that a refused file leaves the prices, market caps and assets byte-for-byte unchanged.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from core.errors import ImportValidationError
from core.infra.providers import files
from core.schemas.asset import symbol_problem
from tests.fuzz import xlsx_craft

TODAY = dt.date(2024, 6, 28)


def fuzz(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )


# --------------------------------------------------------------------------- cell strategies
ODD_YEARS = [1, 2, 1000, 1600, 1677, 1678, 1899, 1900, 2024, 2025, 2262, 2263, 9999]
HOSTILE_SYMBOLS = [
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
    "①",
    "Ａ",
    "A\u00a0B",
    "aapl",
    "AAPL",
    "MSFT",
    "^GSPC",
    "BRK.B",
    "=1+1",
    "-X",
    "",
    " ",
    "A" * 40,
]

iso_dates = st.dates(min_value=dt.date(1900, 1, 1), max_value=TODAY).map(str)
odd_dates = st.builds(
    lambda y, m, d, t: f"{y:04d}-{m:02d}-{d:02d}{t}",
    st.sampled_from(ODD_YEARS),
    st.integers(0, 13),
    st.integers(0, 32),
    st.sampled_from(["", " 00:00", "T23:59:59.999", " 24:00", "T10:61", "Z", "+01:00"]),
)
garbage_dates = st.sampled_from(
    [
        "01/02/2024",
        "2024/01/02",
        "20240102",
        "45292",
        "2024-1-2",
        "٢٠٢٤-٠١-٠٢",
        "0000-00-00",
        "-2024-01-02",
        "NaT",
        "nan",
        "today",
        "1e308",
    ]
)
date_text = st.one_of(iso_dates, iso_dates, odd_dates, garbage_dates, st.text(max_size=12))
symbol_text = st.one_of(
    st.sampled_from(HOSTILE_SYMBOLS),
    st.from_regex(r"[A-Za-z0-9^][A-Za-z0-9.\-^=/:_]{0,5}", fullmatch=True),
    st.text(max_size=6),
)
number_text = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(min_value=1e-6, max_value=1e9).map(lambda x: f"{x:.6g}"),
    st.sampled_from(
        [
            "1e-7",
            "1e-6",
            "1e9",
            "1.000001e9",
            "1e400",
            "-1e400",
            "0",
            "-0",
            "-5",
            "nan",
            "inf",
            "1,5",
            "1_000",
            "0x10",
            "٣",
            " 12 ",
            "",
            "1e14",
            "1e15",
            "999",
            "1000",
        ]
    ),
    st.integers(-(10**6), 10**12).map(str),
)
any_cell = st.one_of(date_text, symbol_text, number_text)
#: Well-formed values, for the files that should be accepted (a third of them) and for files with one bad cell.
good_symbols = st.sampled_from(["AAPL", "MSFT", "SPY", "^GSPC", "brk.b", " aapl ", "EUR/USD", "ES=F"])
good_numbers = st.floats(min_value=1e-6, max_value=1e9).map(lambda x: f"{x:.6g}")
good_dates = st.one_of(iso_dates, iso_dates.map(lambda d: d + " 16:00"), iso_dates.map(lambda d: d + "T09:30:00.5"))
MODES = st.sampled_from(["clean", "one bad cell", "hostile"])


def _day(value: object) -> object:
    return value[:10] if isinstance(value, str) else value


def _spoil(draw, rows: list[list[object]], bad: st.SearchStrategy) -> None:
    """Replace one cell of the data rows with a hostile value."""
    rows = [r for r in rows if r]
    if rows:
        row = draw(st.sampled_from(rows))
        row[draw(st.integers(0, len(row) - 1))] = draw(bad)


def check_outcome(content: bytes, filename: str, *, known: set[str] | None = None) -> None:
    """Parse; the result keeps every rule, or the refusal is an ImportValidationError with problems."""
    try:
        data = files.parse_price_file(content, filename, today=TODAY, known_symbols=known)
    except ImportValidationError as exc:
        assert exc.rows and all(p.problem for p in exc.rows) and str(exc).strip()
        assert len(exc.rows) <= files.MAX_PROBLEMS + 1
        return
    prices = data.prices
    assert list(prices.columns) == ["date", "symbol", "close"] and str(prices["date"].dtype) == "datetime64[ns]"
    if len(prices):
        assert prices["date"].min() >= np.datetime64("1900-01-01") and prices["date"].max() <= np.datetime64(TODAY)
        closes = prices["close"].to_numpy()
        assert np.isfinite(closes).all() and (closes >= files.CLOSE_RANGE[0]).all()
        assert (closes <= files.CLOSE_RANGE[1]).all()
        assert not prices.duplicated(["date", "symbol"]).any()
        keys = list(zip(prices["symbol"], prices["date"]))
        assert keys == sorted(keys)
    for symbol in prices["symbol"].unique().tolist():
        assert symbol_problem(symbol) is None and symbol == symbol.upper()
        assert known is None or symbol in known
    caps = data.market_caps["market_cap"].to_numpy()
    assert np.isfinite(caps).all() and ((caps >= files.MARKET_CAP_RANGE[0]) & (caps <= files.MARKET_CAP_RANGE[1])).all()


# --------------------------------------------------------------------------- CSV
@st.composite
def csv_files(draw) -> bytes:
    layout = draw(st.sampled_from(["long", "long_caps", "wide", "junk"]))
    mode = draw(MODES)
    if layout == "wide":
        symbols = st.lists(
            good_symbols if mode != "hostile" else symbol_text,
            min_size=1,
            max_size=4,
            unique_by=lambda s: s.strip().upper(),
        )
        header = ["date"] + draw(symbols)
    elif layout == "junk":
        header = draw(
            st.lists(st.one_of(st.sampled_from(["date", "symbol", "close", "market_cap", ""]), symbol_text), max_size=5)
        )
    else:
        header = ["date", draw(st.sampled_from(["symbol", "Ticker", "SYMBOL "])), "close"]
        if layout == "long_caps":
            header.append(draw(st.sampled_from(["market_cap", "Market Cap", "marketcap"])))
    if mode == "hostile" or layout == "junk":
        columns = {"date": date_text, "symbol": symbol_text, "close": number_text, "market_cap": number_text}
    else:
        columns = {
            "date": good_dates,
            "symbol": good_symbols,
            "close": good_numbers,
            "market_cap": st.one_of(st.just(""), st.floats(1e3, 1e14).map(repr)),
        }
    kinds = [files._normalise_header(h) for h in header]
    cells = [columns.get(k, columns["close"] if layout == "wide" else any_cell) for k in kinds]
    key = lambda r: tuple(
        _day(c) if k == "date" else str(c).strip().upper() for k, c in zip(kinds, r) if k in ("date", "symbol")
    )
    rows = [list(r) for r in draw(st.lists(st.tuples(*cells), min_size=mode != "hostile", max_size=8, unique_by=key))]
    if mode == "one bad cell":
        _spoil(draw, rows, any_cell)
    if mode == "hostile":
        rows = [r + draw(st.lists(any_cell, max_size=1)) for r in rows]  # sometimes one value too many
    sep = draw(st.sampled_from([",", ";", "\t"]))
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))

    quote_all = draw(st.booleans())

    def quote(value: str) -> str:
        if quote_all or any(ch in value for ch in (sep, '"', "\n", "\r")):
            return '"' + value.replace('"', '""') + '"'
        return value

    lines = [sep.join(quote(v) for v in row) for row in [header, *rows]]
    if draw(st.booleans()):
        lines.insert(draw(st.integers(0, len(lines))), "")  # a blank line
    body = newline.join(lines) + draw(st.sampled_from(["", newline]))
    return draw(st.sampled_from([b"", b"\xef\xbb\xbf"])) + body.encode("utf-8", errors="surrogatepass")


@fuzz(2600)
@given(content=csv_files(), known=st.sampled_from([None, {"AAPL", "MSFT", "SPY", "^GSPC"}]))
def test_generated_csv_files_parse_or_refuse(count_case, content, known):
    count_case()
    check_outcome(content, "prices.csv", known=known)


VALID_CSV = b"date,symbol,close,market_cap\n2024-01-02,AAPL,185.5,2.9e12\n2024-01-03,MSFT,370,\n"


@fuzz(1600)
@given(
    edits=st.lists(
        st.tuples(
            st.integers(0, len(VALID_CSV)),
            st.sampled_from(["flip", "insert", "delete"]),
            st.binary(min_size=1, max_size=3),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_mutated_csv_bytes_parse_or_refuse(count_case, edits):
    content = bytearray(VALID_CSV)
    for position, kind, payload in edits:
        position = min(position, len(content))
        if kind == "flip" and position < len(content):
            content[position] ^= payload[0] or 1
        elif kind == "insert":
            content[position:position] = payload
        elif kind == "delete":
            del content[position : position + len(payload)]
    count_case()
    check_outcome(bytes(content), "prices.csv")


# --------------------------------------------------------------------------- XLSX
serials = st.one_of(
    st.integers(-1_000_000, 3_000_000),
    st.floats(-1e7, 1e7, allow_nan=False),
    st.sampled_from([0, 1, 59, 60, 61, 45292, 2958465, 2958466, 1e12, -1, -700000, 1e308]),
)
RAW_CELLS = [
    '<c r="ZZZ9"><v>1</v></c>',
    "<c><v>5</v></c>",
    '<c r="A0"><v>1</v></c>',
    '<c r="B1" t="s"><v>99</v></c>',
    '<c t="e"><v>#N/A</v></c>',
    "<c><f>1+1</f><v>2</v></c>",
    '<c r="XFE1"><v>1</v></c>',
    '<c t="d"><v>9999-12-31T00:00:00</v></c>',
    '<c t="d"><v>0001-01-01</v></c>',
    '<c t="b"><v>7</v></c>',
    '<c t="n"><v>1e400</v></c>',
    '<c t="n"><v>abc</v></c>',
    "<x/>",
    '<c r="$C$1"><v>1</v></c>',
]
xlsx_cell = st.one_of(
    date_text,
    symbol_text,
    number_text,
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**20), 10**20),
    st.booleans(),
    st.none(),
    st.tuples(st.just("date"), serials),
    st.tuples(st.just("shared"), st.integers(0, 6)),
    st.tuples(st.just("raw"), st.sampled_from(RAW_CELLS)),
)
PART_NAMES = list(xlsx_craft.workbook_parts(b"").keys())


def _row_numbers(draw, count: int, mode: str) -> list[int] | None:
    if mode == "normal":
        return None
    if mode == "gaps":
        return sorted(draw(st.sets(st.integers(1, 2_000), min_size=count, max_size=count)))
    numbers = list(range(1, count + 1))
    if mode == "shuffled":
        return draw(st.permutations(numbers))
    if mode == "duplicate" and count > 1:
        numbers[-1] = numbers[-2]
    if mode == "zero":
        numbers[0] = 0
    if mode == "huge":
        numbers[-1] = draw(st.sampled_from([1_048_576, 1_048_577, 10**12]))
    return numbers


def _mutate(draw, parts: dict[str, bytes]) -> dict[str, bytes]:
    mutation = draw(st.sampled_from(["none"] * 12 + ["drop", "truncate", "garbage", "utf16", "doctype", "latin1"]))
    name = draw(st.sampled_from(PART_NAMES))
    if mutation == "drop":
        parts.pop(name)
    elif mutation == "truncate":
        parts[name] = parts[name][: draw(st.integers(0, max(0, len(parts[name]) - 1)))]
    elif mutation == "garbage":
        parts[name] = draw(st.binary(max_size=64))
    elif mutation == "utf16":
        parts[name] = parts[name].decode().encode(draw(st.sampled_from(["utf-16", "utf-16-le", "utf-16-be"])))
    elif mutation == "doctype":
        parts[name] = b'<!DOCTYPE r [<!ENTITY a "aaaaaaaa">]>' + parts[name].split(b"?>", 1)[-1]
    elif mutation == "latin1":
        parts[name] = parts[name].replace(b'encoding="UTF-8"', b'encoding="ISO-8859-1"')
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2]))):  # random extra zip members
        parts[
            draw(
                st.sampled_from(
                    [
                        "xl/media/image1.png",
                        "x.bin",
                        "../evil.xml",
                        "xl/worksheets/sheet9.xml",
                        "docProps/custom.xml",
                        "_rels/x.rels",
                        "a" * 200,
                    ]
                )
            )
        ] = draw(st.binary(max_size=80))
    return parts


good_xlsx_dates = st.one_of(
    good_dates,
    st.dates(dt.date(1900, 3, 1), TODAY).map(lambda d: ("date", (d - dt.date(1899, 12, 30)).days)),
    st.dates(dt.date(1900, 1, 1), TODAY),
)


@st.composite
def xlsx_files(draw) -> bytes:
    wide = draw(st.booleans())
    quality = draw(MODES)
    if wide:
        header: list[object] = ["date"] + draw(
            st.lists(
                good_symbols if quality != "hostile" else symbol_text,
                min_size=1,
                max_size=3,
                unique_by=lambda s: s.strip().upper(),
            )
        )
    else:
        header = ["date", "symbol", "close"] + draw(st.sampled_from([[], ["market_cap"]]))
    if quality == "hostile":
        if draw(st.booleans()):
            header = draw(st.lists(xlsx_cell, max_size=4))
        rows = [header] + draw(st.lists(st.lists(xlsx_cell, min_size=1, max_size=len(header) + 1), max_size=6))
    else:
        values = {
            "date": good_xlsx_dates,
            "symbol": good_symbols,
            "market_cap": st.one_of(st.none(), st.floats(1e3, 1e14)),
        }
        close = st.one_of(st.floats(1e-6, 1e9), good_numbers)
        row = st.tuples(*[values.get(str(h), close) for h in header]).map(list)
        key = lambda r: (str(_day(r[0])), str(r[1]).strip().upper() if not wide else "")
        rows = [header] + draw(st.lists(row, min_size=1, max_size=6, unique_by=key))
        if quality == "one bad cell":
            _spoil(draw, rows[1:], xlsx_cell)
    clean = quality == "clean"
    mode = (
        "normal" if clean else draw(st.sampled_from(["normal"] * 5 + ["gaps", "shuffled", "duplicate", "zero", "huge"]))
    )
    dimension = draw(
        st.sampled_from(
            [None, "A1:C2", "A1:A1", "A1:B2", "A1:XFD1048576", "B2:C3"]
            + ([] if clean else ["A1:C1048577", "bad", "ZZZZ1"])
        )
    )
    sheet = xlsx_craft.sheet_xml(rows, dimension=dimension, row_numbers=_row_numbers(draw, len(rows), mode))
    strings = draw(st.lists(st.one_of(symbol_text, date_text, number_text), max_size=5))
    if not clean and draw(st.sampled_from(range(50))) == 49:  # shared strings that really unpack to 9 MiB
        return xlsx_craft.huge_shared_strings_xlsx(sheet)
    parts = xlsx_craft.workbook_parts(sheet, xlsx_craft.shared_strings_xml(strings))
    return xlsx_craft.zip_parts(parts if clean else _mutate(draw, parts))


@fuzz(1500)
@given(content=xlsx_files())
def test_generated_xlsx_files_parse_or_refuse(count_case, content):
    count_case()
    check_outcome(content, "prices.xlsx")


# --------------------------------------------------------------------------- through the service, on both databases
def _stored_checksum() -> str:
    from core.db import unit_of_work

    digest = hashlib.sha256()
    with unit_of_work() as session:
        for query in (
            "SELECT asset_id, date, close FROM prices ORDER BY asset_id, date",
            "SELECT asset_id, date, market_cap FROM market_caps ORDER BY asset_id, date",
            "SELECT id, symbol, name, source FROM assets ORDER BY id",
        ):
            for row in session.execute(text(query)):
                digest.update(repr(tuple(row)).encode())
    return digest.hexdigest()


@pytest.fixture
def seeded_db(db):
    from core.services.bootstrap import seed_demo

    seed_demo(years=0.1, end=TODAY)
    return db


@fuzz(150)
@given(
    kind=st.sampled_from(["csv", "xlsx"]), csv_content=csv_files(), xlsx_content=xlsx_files(), allow_new=st.booleans()
)
def test_the_import_service_leaves_the_database_unchanged_on_refusal(
    seeded_db, count_case, kind, csv_content, xlsx_content, allow_new
):
    from core.services.refresh import import_price_file

    count_case()
    content, name = (csv_content, "upload.csv") if kind == "csv" else (xlsx_content, "upload.xlsx")
    before = _stored_checksum()
    try:
        summary = import_price_file(content, name, allow_new_symbols=allow_new, today=TODAY)
    except ImportValidationError as exc:
        assert exc.rows and str(exc).strip()
        assert _stored_checksum() == before, "a refused file must leave prices, market caps and assets unchanged"
    else:
        assert all(
            isinstance(v, (int, float)) and not (isinstance(v, float) and math.isnan(v))
            for k, v in summary.items()
            if k.startswith("rows_")
        )
