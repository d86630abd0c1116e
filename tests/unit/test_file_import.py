"""CSV/XLSX price import: good files parse, every bad input refuses the whole file with row numbers."""

from __future__ import annotations

import io
from datetime import date, datetime

import openpyxl
import pytest

from core.errors import ImportValidationError
from core.infra.providers import FileImportProvider, parse_price_file

TODAY = date(2024, 12, 31)


def parse(text: str | bytes, filename: str = "prices.csv", **kwargs):
    content = text.encode() if isinstance(text, str) else text
    return parse_price_file(content, filename, today=kwargs.pop("today", TODAY), **kwargs)


def refused(text: str | bytes, filename: str = "prices.csv", **kwargs) -> ImportValidationError:
    with pytest.raises(ImportValidationError) as info:
        parse(text, filename, **kwargs)
    assert info.value.source == filename
    return info.value


def xlsx(rows: list[list]) -> bytes:
    workbook = openpyxl.Workbook()
    for row in rows:
        workbook.active.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def problems(error: ImportValidationError) -> list[tuple]:
    return [(p.row, p.column, p.problem) for p in error.rows]


# --------------------------------------------------------------------------- good files
def test_long_csv_with_market_caps_and_case_insensitive_headers():
    data = parse(
        " Date ,SYMBOL,Close,Market Cap\n2024-01-03,msft,370.5,\n2024-01-02,AAPL,185.25,2.9e12\n"
        "2024-01-02,MSFT,371,2.75e12\n"
    )
    assert data.source == "file"
    assert data.prices.to_dict("list") == {
        "date": [datetime(2024, 1, 2), datetime(2024, 1, 2), datetime(2024, 1, 3)],
        "symbol": ["AAPL", "MSFT", "MSFT"],
        "close": [185.25, 371.0, 370.5],
    }
    assert list(data.market_caps["symbol"]) == ["AAPL", "MSFT"]
    assert [a.symbol for a in data.assets] == ["AAPL", "MSFT"]


@pytest.mark.parametrize("header", ["shares_outstanding", "Shares Outstanding", "shares"])
def test_long_csv_with_shares_outstanding_gives_caps_close_times_shares(header):
    """Issue 12: a shares-outstanding file; market cap = close x shares of that row (hand-computed)."""
    data = parse(
        f"date,symbol,close,{header}\n2024-01-02,AAPL,185.25,15500000000\n2024-01-03,AAPL,184.0,"
        "15400000000\n2024-01-02,MSFT,371,\n"
    )
    assert data.market_caps.to_dict("list") == {
        "date": [datetime(2024, 1, 2), datetime(2024, 1, 3)],
        "symbol": ["AAPL", "AAPL"],
        "market_cap": [185.25 * 15.5e9, 184.0 * 15.4e9],
    }
    assert len(data.prices) == 3  # MSFT has a price but no cap that day


def test_xlsx_with_shares_outstanding():
    data = parse(
        xlsx([["date", "symbol", "close", "shares_outstanding"], [datetime(2024, 1, 2), "GLD", 190.5, 3e8]]),
        "caps.xlsx",
    )
    assert data.market_caps["market_cap"].tolist() == [190.5 * 3e8]


def test_bad_shares_outstanding_are_row_problems_and_both_cap_columns_are_refused():
    error = refused(
        "date,symbol,close,shares_outstanding\n2024-01-02,AAPL,10,-5\n2024-01-03,AAPL,10,ten\n"
        "2024-01-04,AAPL,10,50\n2024-01-05,AAPL,10,2e13\n"
    )
    assert problems(error) == [
        (2, "shares_outstanding", "shares_outstanding must be greater than zero"),
        (3, "shares_outstanding", "shares_outstanding is not a number"),
        (
            4,
            "shares_outstanding",
            "market cap (close x shares_outstanding) is outside the accepted range 1000 to 1e+14",
        ),
        (5, "shares_outstanding", "shares_outstanding is outside the accepted range 1 to 1e+13"),
    ]
    both = refused("date,symbol,close,market_cap,shares\n2024-01-02,AAPL,10,1e6,1e5\n")
    assert problems(both) == [
        (
            1,
            "shares_outstanding",
            "give market caps one way: a market_cap column or a shares_outstanding column, not both",
        )
    ]


def test_wide_csv_semicolon_with_gaps_and_bom():
    data = parse("\ufeffdate;AAPL;^GSPC\n2024-01-02;185;4742.8\n2024-01-03;;4704.8\n")
    assert len(data.prices) == 3
    assert data.prices.groupby("symbol").size().to_dict() == {"AAPL": 1, "^GSPC": 2}
    assert data.market_caps.empty


def test_long_xlsx_with_date_cells_and_blank_rows():
    content = xlsx(
        [
            ["Date", "Symbol", "Close"],
            [datetime(2024, 1, 2), "AAPL", 185.0],
            [None, None, None],
            ["2024-01-03", "AAPL", "186.5"],
        ]
    )
    data = parse(content, "prices.xlsx")
    assert list(data.prices["close"]) == [185.0, 186.5]


def test_wide_xlsx():
    data = parse(
        xlsx([["date", "AAPL", "MSFT"], [date(2024, 1, 2), 185, 370], [date(2024, 1, 3), 186, None]]), "p.xlsx"
    )
    assert len(data.prices) == 3


def test_known_symbols_are_case_insensitive():
    data = parse("date,symbol,close\n2024-01-02,aapl,1\n", known_symbols={"AAPL"})
    assert list(data.prices["symbol"]) == ["AAPL"]


def test_file_provider_filters_and_names_missing_symbols():
    provider = FileImportProvider(b"date,AAPL,MSFT\n2024-01-02,1,2\n2024-01-03,1.5,2.5\n", "w.csv", today=TODAY)
    assert [a.symbol for a in provider.universe()] == ["AAPL", "MSFT"]
    data = provider.fetch(["msft"], start=date(2024, 1, 3))
    assert list(data.prices["close"]) == [2.5]
    missing = provider.fetch(["TSLA", "AAPL"])  # skipped and named, like any provider's unknown symbol
    assert missing.skipped == {"TSLA": "not in w.csv"} and set(missing.prices["symbol"]) == {"AAPL"}


# --------------------------------------------------------------------------- refused files
def test_empty_files():
    assert problems(refused(b"")) == [(None, None, "file is empty")]
    assert "empty" in str(refused(b"\n\n  \n"))
    assert "empty" in str(refused(b"", "p.xlsx"))
    assert "no data rows" in str(refused("date,symbol,close\n"))


def test_file_over_the_size_limit():
    error = refused("date,symbol,close\n2024-01-02,AAPL,1\n", max_bytes=10)
    assert "over the limit of 10 bytes" in str(error)


def test_non_utf8_csv_names_the_line():
    error = refused("date,symbol,close\n2024-01-02,AAPL,1\n2024-01-03,CAFÉ,1\n".encode("latin-1"))
    assert error.rows[0].row == 3 and "not UTF-8" in error.rows[0].problem


def test_invalid_workbook():
    assert "not a valid XLSX workbook" in str(refused(b"this is not a zip", "p.xlsx"))
    assert "not a valid XLSX workbook" in str(refused(b"PK\x03\x04broken zip", "p.xlsx"))


def test_xlsx_renamed_to_csv_and_unknown_suffix():
    assert "not CSV" in str(refused(xlsx([["date"]]), "p.csv"))
    assert "unsupported file type" in str(refused("a,b\n", "p.json"))


def test_missing_and_unknown_columns():
    error = refused("date,symbol,price,volume\n2024-01-02,AAPL,1,2\n")
    assert problems(error) == [
        (1, "close", "missing column 'close'"),
        (
            1,
            "price",
            "unknown column (expected date, symbol, close and optionally market_cap or shares_outstanding, dividend)",
        ),
        (
            1,
            "volume",
            "unknown column (expected date, symbol, close and optionally market_cap or shares_outstanding, dividend)",
        ),
    ]
    assert problems(refused("day,AAPL\n2024-01-02,1\n"))[0] == (1, "date", "missing column 'date'")
    assert "missing column 'symbol'" in str(refused("date,close\n2024-01-02,1\n"))
    assert "duplicate column" in str(refused("date,AAPL,aapl\n2024-01-02,1,2\n"))
    assert "column has no header" in str(refused("date,,AAPL\n2024-01-02,1,2\n"))


def test_unknown_symbols_long_and_wide():
    error = refused("date,symbol,close\n2024-01-02,AAPL,1\n2024-01-02,ZZZ,1\n", known_symbols={"AAPL"})
    assert problems(error) == [(3, "symbol", "unknown symbol")]
    error = refused("date,AAPL,ZZZ\n2024-01-02,1,1\n", known_symbols={"AAPL"})
    assert problems(error) == [(1, "ZZZ", "unknown symbol")]


def test_every_bad_row_is_listed_with_file_row_numbers():
    text = (
        "date,symbol,close,market_cap\n"
        "2024-01-02,AAPL,185,\n"  # row 2 fine
        "02/01/2024,AAPL,185,\n"  # row 3 ambiguous date
        "2024-01-03,AAPL,abc,\n"  # row 4 not a number
        "2024-01-04,AAPL,0,\n"  # row 5 zero price
        "2024-01-05,AAPL,-3,\n"  # row 6 negative
        "2025-06-01,AAPL,190,\n"  # row 7 future
        "2024-01-02,AAPL,186,\n"  # row 8 duplicate of row 2
        "2024-01-08,,1,\n"  # row 9 missing symbol
        "2024-01-09,AAPL,,\n"  # row 10 missing close
        ",AAPL,1,\n"  # row 11 missing date
        "2024-01-10,AAPL,1,-5\n"  # row 12 negative market cap
        "2024-01-11,AAPL,1,x\n"  # row 13 market cap not a number
        "2024-01-12,AAPL,1,,extra\n"  # row 14 too many values
        "2024-01-15,AAPL,nan,\n"
    )  # row 15 NaN is not a price
    error = refused(text)
    assert problems(error) == [
        (3, "date", "unparsable date (expected YYYY-MM-DD)"),
        (4, "close", "close is not a number"),
        (5, "close", "close must be greater than zero"),
        (6, "close", "close must be greater than zero"),
        (7, "date", "date is in the future (after 2024-12-31)"),
        (8, "date", "duplicate AAPL on 2024-01-02 (first at row 2)"),
        (9, "symbol", "missing symbol"),
        (10, "close", "missing close"),
        (11, "date", "missing date"),
        (12, "market_cap", "market_cap must be greater than zero"),
        (13, "market_cap", "market_cap is not a number"),
        (14, None, "row has 5 values but the header has 4"),
        (15, "close", "close is not a number"),
    ]
    assert error.rows[0].value == "02/01/2024"
    assert str(error).startswith("prices.csv refused, 13 problem(s): row 3: date: unparsable date")


def test_blank_lines_keep_file_row_numbers():
    error = refused("date,symbol,close\n\n2024-01-02,AAPL,1\n\n2024-01-03,AAPL,-1\n")
    assert problems(error) == [(5, "close", "close must be greater than zero")]


def test_wide_errors_name_the_symbol_column():
    error = refused("date,AAPL,MSFT\n2024-01-02,1,x\n2024-01-02,2,3\n2030-01-01,1,1\n")
    rows = problems(error)
    assert (2, "MSFT", "close is not a number") in rows
    assert (3, "AAPL", "duplicate AAPL on 2024-01-02 (first at row 2)") in rows
    assert (4, "date", "date is in the future (after 2024-12-31)") in rows
    assert sum(1 for r in rows if r[0] == 4) == 1  # one problem per bad date, not one per symbol


def test_xlsx_rows_are_numbered_like_excel():
    content = xlsx(
        [
            ["date", "symbol", "close"],
            [date(2024, 1, 2), "AAPL", 1.0],
            [None, None, None],
            [date(2024, 1, 3), "AAPL", -2.0],
            [date(2024, 1, 4), "AAPL", "n/a"],
        ]
    )
    assert problems(refused(content, "p.xlsx")) == [
        (4, "close", "close must be greater than zero"),
        (5, "close", "close is not a number"),
    ]


def test_message_lists_first_20_and_counts_the_rest():
    text = "date,symbol,close\n" + "".join(f"2024-01-02,S{i},-1\n" for i in range(45))
    error = refused(text)
    assert len(error.rows) == 45
    message = str(error)
    assert message.startswith("prices.csv refused, 45 problem(s): row 2: close:")
    assert "row 21: close" in message and "row 22:" not in message
    assert message.endswith("(and 25 more)")
    assert error.rows[-1].as_dict() == {
        "row": 46,
        "column": "close",
        "problem": "close must be greater than zero",
        "value": "-1",
    }


def test_nothing_is_returned_when_one_row_is_bad():
    good = "".join(f"2024-01-{d:02d},AAPL,{d}\n" for d in range(2, 30))
    with pytest.raises(ImportValidationError):
        parse("date,symbol,close\n" + good + "2024-01-30,AAPL,0\n")


# --------------------------------------------------------------------------- hostile files (issue 11)
from core.infra.providers import file_grid, xlsx_reader  # noqa: E402
from core.infra.providers import files as import_files  # noqa: E402
from tests.fuzz import xlsx_craft  # noqa: E402

OUT_OF_RANGE = [
    ("0001-01-02", "date is before 1900-01-01"),
    ("1600-03-01", "date is before 1900-01-01"),
    ("1899-12-31", "date is before 1900-01-01"),
    ("2263-01-01", "date is in the future (after 2024-12-31)"),
    ("9999-12-31", "date is in the future (after 2024-12-31)"),
    ("2025-01-01", "date is in the future (after 2024-12-31)"),
]


@pytest.mark.parametrize(("text", "problem"), OUT_OF_RANGE)
def test_dates_outside_1900_to_today_are_row_errors_in_csv(text, problem):
    """Case 8: never an OutOfBoundsDatetime traceback; the row and the value are named (long and wide)."""
    error = refused(f"date,symbol,close\n2024-01-02,AAPL,1\n{text},AAPL,1\n")
    assert problems(error) == [(3, "date", problem)] and error.rows[0].value == text
    error = refused(f"date,AAPL,MSFT\n2024-01-02,1,2\n{text} 10:30,1,2\n")
    assert problems(error) == [(3, "date", problem)] and error.rows[0].value == f"{text} 10:30"


def test_dates_in_range_and_invalid_calendar_dates():
    assert len(parse("date,AAPL\n1900-01-01,1\n2024-02-29,2\n2024-12-31T23:59:59.5,3\n").prices) == 3
    for text in (
        "2023-02-29",
        "2024-13-01",
        "2024-00-10",
        "2024-01-32",
        "2024-01-02 24:00",
        "2024-01-02T10:61",
        "٢٠٢٤-٠١-٠٢",
        "2024-1-2",
        "+2024-01-02",
    ):
        assert problems(refused(f"date,AAPL\n{text},1\n")) == [(2, "date", "unparsable date (expected YYYY-MM-DD)")]


def test_dates_outside_the_range_in_real_xlsx_date_cells_and_serials():
    """Case 8 for XLSX: date cells of year 1 / 1600 / 2263 / 9999, and date-styled serial numbers outside
    Excel's calendar (openpyxl reads those as #VALUE!), in long and wide layouts."""
    content = xlsx(
        [
            ["date", "symbol", "close"],
            [datetime(2024, 1, 2), "AAPL", 1.0],
            [datetime(1, 1, 2), "AAPL", 1.0],
            [datetime(1600, 1, 2), "AAPL", 1.0],
            [datetime(2263, 1, 2), "AAPL", 1.0],
            [datetime(9999, 12, 31), "AAPL", 1.0],
        ]
    )
    assert problems(refused(content, "p.xlsx")) == [
        (3, "date", "date is before 1900-01-01"),
        (4, "date", "date is before 1900-01-01"),
        (5, "date", "date is in the future (after 2024-12-31)"),
        (6, "date", "date is in the future (after 2024-12-31)"),
    ]
    serials = xlsx_craft.xlsx(
        [
            ["date", "AAPL"],
            [("date", 45293), 1.5],
            [("date", 2958466), 1.5],
            [("date", 1e12), 1.5],
            [("date", -700000), 1.5],
            [("date", -5), 1.5],
            [45294, 1.5],
        ]
    )
    assert problems(refused(serials, "p.xlsx")) == [
        (3, "date", "unparsable date (expected YYYY-MM-DD)"),
        (4, "date", "unparsable date (expected YYYY-MM-DD)"),
        (5, "date", "unparsable date (expected YYYY-MM-DD)"),
        (6, "date", "date is before 1900-01-01"),
        (7, "date", "unparsable date (expected YYYY-MM-DD)"),
    ]  # a bare number is not a date
    good = parse(xlsx_craft.xlsx([["date", "AAPL"], [("date", 45293), 1.5]]), "p.xlsx")
    assert good.prices["date"].tolist() == [datetime(2024, 1, 2)]


HOSTILE_SYMBOLS = ["ſpy", "ＳＰＹ", "ﬁx", "ıbm", "\u212aO", "SP\u200bY", "spy\u0307", "Ⅻ"]


@pytest.mark.parametrize("symbol", HOSTILE_SYMBOLS)
def test_symbols_that_unicode_would_change_are_refused_never_mapped(symbol):
    """Case 9: `2020-01-02,ſpy,55.5` must not land on SPY (long and wide; with and without known symbols)."""
    known = {"SPY", "FIX", "IBM", "KO"}
    error = refused(f"date,symbol,close\n2020-01-02,SPY,50\n2020-01-02,{symbol},55.5\n", known_symbols=known)
    assert [(p.row, p.column) for p in error.rows] == [(3, "symbol")]
    assert repr(symbol) in error.rows[0].problem and error.rows[0].value == symbol
    assert "unknown symbol" not in error.rows[0].problem
    error = refused(f"date,SPY,{symbol}\n2020-01-02,50,55.5\n")
    assert [(p.row, p.column) for p in error.rows] == [(1, symbol)] and repr(symbol) in error.rows[0].problem


def test_symbol_messages_name_the_rule():
    error = refused("date,symbol,close\n2020-01-02,ſpy,55.5\n2020-01-02,ıbm,1\n")
    assert "changes under Unicode NFKC normalisation (to 'spy')" in error.rows[0].problem
    assert "changes under case folding" in error.rows[1].problem
    assert "not a valid ticker" in problems(refused("date,symbol,close\n2020-01-02,A B,1\n"))[0][2]


def test_xlsx_is_read_whole_whatever_its_dimension_says():
    """Case 10: <dimension ref="A1:C2"> but 4 data rows (and a fifth column): all are imported."""
    rows = [["date", "symbol", "close"]] + [[f"2024-01-0{d}", "AAPL", 100.0 + d] for d in range(2, 6)]
    content = xlsx_craft.xlsx(rows, dimension="A1:C2")
    import openpyxl

    workbook = openpyxl.load_workbook(io.BytesIO(content), read_only=True)
    assert len(list(workbook.worksheets[0].iter_rows(values_only=True))) == 2  # what the bug did
    assert parse(content, "p.xlsx").prices["close"].tolist() == [102.0, 103.0, 104.0, 105.0]
    wide = xlsx_craft.xlsx([["date", "AAPL", "MSFT"], ["2024-01-02", 1, 2], ["2024-01-03", 3, 4]], dimension="A1:A1")
    assert len(parse(wide, "p.xlsx").prices) == 4
    written = xlsx([["date", "symbol", "close"]] + [[date(2024, 1, d), "AAPL", float(d)] for d in range(2, 6)])
    lied = rewrite_member(written, "xl/worksheets/sheet1.xml", lambda xml: xml.replace(b'ref="A1:C5"', b'ref="A1:C2"'))
    assert len(parse(lied, "p.xlsx").prices) == 4


def rewrite_member(content: bytes, name: str, change) -> bytes:
    import zipfile

    source, out = zipfile.ZipFile(io.BytesIO(content)), io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info.filename)
            target.writestr(info.filename, change(data) if info.filename == name else data)
    return out.getvalue()


@pytest.mark.parametrize(
    ("rows", "numbers", "problem"),
    [
        (
            [["date", "symbol", "close"], ["2024-01-02", "A", 1], ["2024-01-03", "A", 1]],
            [1, 3, 2],
            "row 2 comes after row 3",
        ),
        (
            [["date", "symbol", "close"], ["2024-01-02", "A", 1], ["2024-01-03", "A", 1]],
            [1, 2, 2],
            "row 2 comes after row 2",
        ),
        ([["date", "symbol", "close"], ["2024-01-02", "A", 1]], [0, 1], "row number 0 is not a row"),
        ([["date", "symbol", "close"], ["2024-01-02", "A", 1]], [1, 1_048_577], "beyond Excel's last row"),
    ],
)
def test_xlsx_rows_openpyxl_would_skip_are_refused(rows, numbers, problem):
    """openpyxl's streaming reader silently drops a row numbered at or below an earlier one: refuse instead."""
    assert problem in str(refused(xlsx_craft.xlsx(rows, row_numbers=numbers), "p.xlsx"))


def test_xlsx_cells_out_of_column_order_are_refused():
    raw = (
        '<c r="C2"><v>5</v></c><c r="A2" t="inlineStr"><is><t>2024-01-02</t></is></c>'
        '<c r="B2" t="inlineStr"><is><t>A</t></is></c>'
    )
    content = xlsx_craft.xlsx([["date", "symbol", "close"], [("raw", raw)]])
    assert "cells are not in column order" in str(refused(content, "p.xlsx"))
    hidden = '<c r="C2"><v>5</v></c><c foo=">" r="A2" t="inlineStr"><is><t>2024-01-02</t></is></c>'
    assert "cells are not in column order" in str(
        refused(xlsx_craft.xlsx([["date", "symbol", "close"], [("raw", hidden)]]), "p.xlsx")
    )
    quoted = '<c r="C2"><v>5</v></c><c foo=\' r="D2" \' r="A2"><v>1</v></c>'
    assert "unexpected markup in a <c> tag" in str(
        refused(xlsx_craft.xlsx([["date", "symbol", "close"], [("raw", quoted)]]), "p.xlsx")
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("1e-7", "close is outside the accepted range 1e-06 to 1e+09"),
        ("2e9", "close is outside the accepted range 1e-06 to 1e+09"),
        ("inf", "close is not finite"),
        ("-inf", "close is not finite"),
        ("1e400", "close is not finite"),
        ("nan", "close is not a number"),
        ("0", "close must be greater than zero"),
        ("1e308", "close is outside the accepted range 1e-06 to 1e+09"),  # case 13: a 1e308 price never lands
        ("5e-324", "close is outside the accepted range 1e-06 to 1e+09"),
    ],
)
def test_prices_outside_the_sanity_range_are_row_errors(text, problem):
    assert problems(refused(f"date,symbol,close\n2024-01-02,AAPL,{text}\n")) == [(2, "close", problem)]
    assert problems(refused(f"date,AAPL\n2024-01-02,{text}\n")) == [(2, "AAPL", problem)]


def test_sanity_range_edges_and_market_caps():
    data = parse("date,symbol,close,market_cap\n2024-01-02,A,0.000001,1000\n2024-01-03,A,1000000000,1e14\n")
    assert data.prices["close"].tolist() == [1e-6, 1e9] and data.market_caps["market_cap"].tolist() == [1e3, 1e14]
    error = refused("date,symbol,close,market_cap\n2024-01-02,A,1,999\n2024-01-03,A,1,2e14\n2024-01-04,A,1,inf\n")
    assert problems(error) == [
        (2, "market_cap", "market_cap is outside the accepted range 1000 to 1e+14"),
        (3, "market_cap", "market_cap is outside the accepted range 1000 to 1e+14"),
        (4, "market_cap", "market_cap is not finite"),
    ]


def test_cell_length_rows_cells_and_problems_are_bounded(monkeypatch):
    long_cell = "1" * (import_files.MAX_CELL_CHARS + 1)
    error = refused(f"date,symbol,close\n2024-01-02,AAPL,{long_cell}\n")
    assert problems(error) == [
        (2, "column 3", f"cell holds {len(long_cell)} characters, over the limit of {import_files.MAX_CELL_CHARS}")
    ]
    assert "unreadable CSV: field larger than field limit" in str(refused("date,AAPL\n2024-01-02," + "1" * 200_000))
    monkeypatch.setattr(file_grid, "MAX_ROWS", 3)
    assert "more than 3 data rows" in str(refused("date,AAPL\n" + "".join(f"2024-01-0{d},1\n" for d in range(2, 7))))
    monkeypatch.setattr(file_grid, "MAX_CELLS", 5)
    assert "more than 5 cells" in str(refused("date,AAPL,MSFT\n2024-01-02,1,1\n2024-01-03,1,1\n2024-01-04,1,1\n"))


def test_at_most_1000_problems_are_listed_and_the_rest_counted():
    error = refused("date,symbol,close\n" + "".join(f"2024-01-02,S{i},x\n" for i in range(1500)))
    assert len(error.rows) == 1001 and error.rows[-1].problem == "500 more problems not listed"
    assert str(error).startswith("prices.csv refused, 1001 problem(s): row 2: close: close is not a number")


def test_xlsx_bombs_are_refused_before_parsing():
    """Case 11 (memory figures in tests/unit/test_import_bounds.py): a ~2 MB file whose cell inflates to 2 GB."""
    assert "unpacks to 2,147,48" in str(refused(xlsx_craft.bomb_xlsx(), "p.xlsx"))
    assert "not a valid XLSX workbook (BadZipFile)" in str(refused(xlsx_craft.bomb_xlsx(declared_size=4096), "p.xlsx"))
    assert "bytes without markup" in str(refused(xlsx_craft.bomb_xlsx(8 << 20), "p.xlsx"))


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda xml: xml.replace(b"<worksheet", b'<!DOCTYPE x [<!ENTITY a "aaaa">]><worksheet'), "declares a DTD"),
        (lambda xml: xml.decode().encode("utf-16"), "UTF-16 XML"),
        (lambda xml: xml.replace(b'encoding="UTF-8"', b'encoding="ISO-8859-1"'), "encoded as ISO-8859-1"),
        (lambda xml: b"<junk" + b"A" * 40_000 + b"/>" + xml[xml.index(b"?>") + 2 :], "without markup"),
    ],
)
def test_xlsx_xml_tricks_are_refused(change, problem):
    content = rewrite_member(xlsx_craft.xlsx([["date", "AAPL"], ["2024-01-02", 1]]), "xl/worksheets/sheet1.xml", change)
    assert problem in str(refused(content, "p.xlsx"))


def test_xlsx_parts_other_than_sheets_are_small_and_shared_strings_bounded():
    base = xlsx_craft.xlsx([["date", "AAPL"], ["2024-01-02", 1]])
    big_styles = rewrite_member(
        base, "xl/styles.xml", lambda xml: xml.replace(b"</styleSheet>", b"<x/>" * 600_000 + b"</styleSheet>")
    )
    assert "part xl/styles.xml unpacks to 2,400,712 bytes, over the limit of 2,097,152" in str(
        refused(big_styles, "p.xlsx")
    )
    strings = xlsx_craft.shared_strings_xml(["x" * 100] * 90_000)
    big_strings = rewrite_member(base, "xl/sharedStrings.xml", lambda _xml: strings)
    assert "the shared strings xl/sharedStrings.xml unpacks to" in str(refused(big_strings, "p.xlsx"))


def test_a_large_workbook_is_read_by_the_capped_child_process(monkeypatch):
    """Above XLSX_IN_PROCESS_BYTES of XML the sheet is read in a child process; the result is the same."""
    rows = [["date", "symbol", "close"]] + [[f"2024-01-{d:02d}", "AAPL", float(d)] for d in range(2, 30)]
    content = xlsx_craft.xlsx(rows, dimension="A1:C2")
    in_process = parse(content, "p.xlsx").prices
    monkeypatch.setattr(xlsx_reader, "XLSX_IN_PROCESS_BYTES", 0)
    pd_testing = pytest.importorskip("pandas.testing")
    pd_testing.assert_frame_equal(parse(content, "p.xlsx").prices, in_process)
    bad = xlsx_craft.xlsx([["date", "symbol", "close"], ["2263-01-01", "ſpy", "1e-9"]])
    assert problems(refused(bad, "p.xlsx")) == [
        (2, "date", "date is in the future (after 2024-12-31)"),
        (2, "close", "close is outside the accepted range 1e-06 to 1e+09"),
        (2, "symbol", "symbol 'ſpy' changes under Unicode NFKC normalisation (to 'spy'); type it in plain ASCII"),
    ]
    long_cell = xlsx_craft.xlsx([["date", "AAPL"], ["2024-01-02", "9" * 150]])
    assert "cell holds 150 characters" in str(refused(long_cell, "p.xlsx"))
    assert "not a valid XLSX workbook" in str(
        refused(rewrite_member(content, "xl/worksheets/sheet1.xml", lambda xml: xml[:-40]), "p.xlsx")
    )


def test_a_dividend_column_is_read_blank_and_zero_are_none():
    from core.infra.providers.files import parse_price_file

    data = parse_price_file(
        b"date,symbol,close,dividend\n2024-01-02,AAA,10,\n2024-01-03,AAA,10.5,0.2\n2024-01-04,AAA,10.4,0\n",
        "d.csv",
        today=date(2024, 6, 1),
    )
    assert data.dividends is not None and data.dividends.to_dict("records") == [
        {"date": datetime(2024, 1, 3), "symbol": "AAA", "dividend": 0.2}
    ]
    assert problems(refused("date,symbol,close,dividend\n2024-01-02,AAA,10,-1\n")) == [
        (2, "dividend", "dividend must be greater than zero")
    ]
