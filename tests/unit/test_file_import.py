"""CSV/XLSX price import: good files parse, every bad input refuses the whole file with row numbers."""
from __future__ import annotations

import io
from datetime import date, datetime

import openpyxl
import pytest

from core.errors import ImportValidationError, ProviderError
from core.services.providers import FileImportProvider, parse_price_file

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
    data = parse(" Date ,SYMBOL,Close,Market Cap\n2024-01-03,msft,370.5,\n2024-01-02,AAPL,185.25,2.9e12\n"
                 "2024-01-02,MSFT,371,2.75e12\n")
    assert data.source == "file"
    assert data.prices.to_dict("list") == {
        "date": [datetime(2024, 1, 2), datetime(2024, 1, 2), datetime(2024, 1, 3)],
        "symbol": ["AAPL", "MSFT", "MSFT"], "close": [185.25, 371.0, 370.5]}
    assert list(data.market_caps["symbol"]) == ["AAPL", "MSFT"]
    assert [a.symbol for a in data.assets] == ["AAPL", "MSFT"]


def test_wide_csv_semicolon_with_gaps_and_bom():
    data = parse("\ufeffdate;AAPL;^GSPC\n2024-01-02;185;4742.8\n2024-01-03;;4704.8\n")
    assert len(data.prices) == 3
    assert data.prices.groupby("symbol").size().to_dict() == {"AAPL": 1, "^GSPC": 2}
    assert data.market_caps.empty


def test_long_xlsx_with_date_cells_and_blank_rows():
    content = xlsx([["Date", "Symbol", "Close"], [datetime(2024, 1, 2), "AAPL", 185.0], [None, None, None],
                    ["2024-01-03", "AAPL", "186.5"]])
    data = parse(content, "prices.xlsx")
    assert list(data.prices["close"]) == [185.0, 186.5]


def test_wide_xlsx():
    data = parse(xlsx([["date", "AAPL", "MSFT"], [date(2024, 1, 2), 185, 370], [date(2024, 1, 3), 186, None]]),
                 "p.xlsx")
    assert len(data.prices) == 3


def test_known_symbols_are_case_insensitive():
    data = parse("date,symbol,close\n2024-01-02,aapl,1\n", known_symbols={"AAPL"})
    assert list(data.prices["symbol"]) == ["AAPL"]


def test_file_provider_filters_and_names_missing_symbols():
    provider = FileImportProvider(b"date,AAPL,MSFT\n2024-01-02,1,2\n2024-01-03,1.5,2.5\n", "w.csv", today=TODAY)
    assert [a.symbol for a in provider.universe()] == ["AAPL", "MSFT"]
    data = provider.fetch(["msft"], start=date(2024, 1, 3))
    assert list(data.prices["close"]) == [2.5]
    with pytest.raises(ProviderError) as info:
        provider.fetch(["TSLA"])
    assert info.value.symbol == "TSLA"


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
        (1, "price", "unknown column (expected date, symbol, close and optionally market_cap)"),
        (1, "volume", "unknown column (expected date, symbol, close and optionally market_cap)"),
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
    text = ("date,symbol,close,market_cap\n"
            "2024-01-02,AAPL,185,\n"        # row 2 fine
            "02/01/2024,AAPL,185,\n"        # row 3 ambiguous date
            "2024-01-03,AAPL,abc,\n"        # row 4 not a number
            "2024-01-04,AAPL,0,\n"          # row 5 zero price
            "2024-01-05,AAPL,-3,\n"         # row 6 negative
            "2025-06-01,AAPL,190,\n"        # row 7 future
            "2024-01-02,AAPL,186,\n"        # row 8 duplicate of row 2
            "2024-01-08,,1,\n"              # row 9 missing symbol
            "2024-01-09,AAPL,,\n"           # row 10 missing close
            ",AAPL,1,\n"                    # row 11 missing date
            "2024-01-10,AAPL,1,-5\n"        # row 12 negative market cap
            "2024-01-11,AAPL,1,x\n"         # row 13 market cap not a number
            "2024-01-12,AAPL,1,,extra\n"    # row 14 too many values
            "2024-01-15,AAPL,nan,\n")       # row 15 NaN is not a price
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
    assert sum(1 for r in rows if r[0] == 4) == 1          # one problem per bad date, not one per symbol


def test_xlsx_rows_are_numbered_like_excel():
    content = xlsx([["date", "symbol", "close"], [date(2024, 1, 2), "AAPL", 1.0], [None, None, None],
                    [date(2024, 1, 3), "AAPL", -2.0], [date(2024, 1, 4), "AAPL", "n/a"]])
    assert problems(refused(content, "p.xlsx")) == [
        (4, "close", "close must be greater than zero"), (5, "close", "close is not a number")]


def test_message_lists_first_20_and_counts_the_rest():
    text = "date,symbol,close\n" + "".join(f"2024-01-02,S{i},-1\n" for i in range(45))
    error = refused(text)
    assert len(error.rows) == 45
    message = str(error)
    assert message.startswith("prices.csv refused, 45 problem(s): row 2: close:")
    assert "row 21: close" in message and "row 22:" not in message
    assert message.endswith("(and 25 more)")
    assert error.rows[-1].as_dict() == {"row": 46, "column": "close", "problem": "close must be greater than zero",
                                        "value": "-1"}


def test_nothing_is_returned_when_one_row_is_bad():
    good = "".join(f"2024-01-{d:02d},AAPL,{d}\n" for d in range(2, 30))
    with pytest.raises(ImportValidationError):
        parse("date,symbol,close\n" + good + "2024-01-30,AAPL,0\n")
