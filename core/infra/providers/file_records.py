"""The price file's header and records: long or wide layout, one record per price, sorted, into the contract's frames.

:func:`_header_problems` decides the layout from the normalised header; :func:`_long_records` and
:func:`_wide_records` turn the grid's columns into compact :class:`_Records` (closes, market caps, dividends within
their accepted ranges); :func:`_sorted_records` orders the valid ones by symbol and date and reports repeats;
:func:`_long_frame` builds the long frames :class:`ProviderData` holds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from core.errors import RowProblem
from core.infra.providers import file_grid
from core.infra.providers.base import DATE_DTYPE, empty_market_caps, empty_prices
from core.infra.providers.file_cells import _OK, _number_problems, _parse_numbers
from core.infra.providers.file_grid import _Grid, _Problems
from core.schemas.asset import symbol_problem

LONG_REQUIRED = ("date", "symbol", "close")
LONG_OPTIONAL = ("market_cap", "shares_outstanding", "dividend")

#: Accepted closes, per unit (inclusive): below a millionth or above a billion is a data error.
CLOSE_RANGE = (1e-6, 1e9)
#: Accepted market capitalisations in currency units (inclusive): a thousand to a hundred trillion.
MARKET_CAP_RANGE = (1e3, 1e14)
#: Accepted shares outstanding (inclusive): one share to ten trillion.
SHARES_RANGE = (1.0, 1e13)
#: Accepted cash dividends per share going ex that day (inclusive); a blank or 0 cell is no dividend (issue 15).
DIVIDEND_RANGE = (1e-6, 1e6)

_ALIASES = {
    "ticker": "symbol",
    "market_cap": "market_cap",
    "marketcap": "market_cap",
    "market_capitalisation": "market_cap",
    "market_capitalization": "market_cap",
    "shares": "shares_outstanding",
    "shares_outstanding": "shares_outstanding",
    "sharesoutstanding": "shares_outstanding",
}


def _normalise_header(name: Any) -> str:
    text = "" if name is None else str(name).strip()
    key = re.sub(r"[\s\-]+", "_", text.lower())
    return _ALIASES.get(key, key)


# --------------------------------------------------------------------------- validation
def _header_problems(
    header: list[str], raw_header: list[Any], header_row: int, known: set[str] | None
) -> tuple[str, list[RowProblem]]:
    """Decide long or wide layout and list header problems (all on the header row)."""
    problems: list[RowProblem] = []
    seen: set[str] = set()
    for position, name in enumerate(header):
        if not name:
            problems.append(RowProblem(header_row, f"column {position + 1}", "column has no header"))
        elif name in seen:
            problems.append(RowProblem(header_row, name, "duplicate column"))
        seen.add(name)
    if "date" not in seen:
        problems.append(RowProblem(header_row, "date", "missing column 'date'"))
    is_long = "symbol" in seen or "close" in seen or any(name in seen for name in LONG_OPTIONAL)
    if is_long:
        for required in LONG_REQUIRED:
            if required not in seen and required != "date":
                problems.append(RowProblem(header_row, required, f"missing column '{required}'"))
        for raw, name in zip(raw_header, header):
            if name and name not in LONG_REQUIRED + LONG_OPTIONAL:
                problems.append(
                    RowProblem(
                        header_row,
                        str(raw),
                        "unknown column (expected date, symbol, close"
                        " and optionally market_cap or shares_outstanding,"
                        " dividend)",
                        raw,
                    )
                )
        if "market_cap" in seen and "shares_outstanding" in seen:
            problems.append(
                RowProblem(
                    header_row,
                    "shares_outstanding",
                    "give market caps one way: a market_cap column or a shares_outstanding column, not both",
                )
            )
        return "long", problems
    for raw, name in zip(raw_header, header):
        if not name or name == "date":
            continue
        problem = symbol_problem(raw)
        if problem is not None:
            problems.append(RowProblem(header_row, str(raw), problem, raw))
        elif known is not None and str(raw).strip().upper() not in known:
            problems.append(RowProblem(header_row, str(raw), "unknown symbol", raw))
    if len([n for n in header if n and n != "date"]) == 0:
        problems.append(
            RowProblem(
                header_row,
                None,
                "no price columns: expected date, symbol, close (long) or date plus one column per symbol (wide)",
            )
        )
    return "wide", problems


@dataclass
class _Records:
    """One candidate price per record: position of its data row, symbol index, close (and market cap).

    Compact on purpose (int32 positions and symbol indices): a wide file of four million cells is four million
    records. Wide records come column by column; ``segments[k]`` is the slice of symbol ``k``'s records."""

    row_pos: np.ndarray  # int32 index into the grid's data rows
    symbol: np.ndarray  # int32 index into ``symbols``, -1 when the symbol is refused
    symbols: list[str]
    close: np.ndarray
    market_cap: np.ndarray | None = None
    segments: list[tuple[int, int]] | None = None
    dividend: np.ndarray | None = None


def _long_records(grid: _Grid, header: list[str], found: _Problems, known: set[str] | None) -> _Records:
    rows = grid.rows
    column = {name: grid.columns[header.index(name)] for name in LONG_REQUIRED + LONG_OPTIONAL if name in header}
    closes, close_blank = _parse_numbers(column["close"])
    _number_problems(found, closes, close_blank, rows, column["close"], "close", "close", CLOSE_RANGE, required=True)
    caps = None
    if "market_cap" in column:
        caps, cap_blank = _parse_numbers(column["market_cap"])
        _number_problems(
            found,
            caps,
            cap_blank,
            rows,
            column["market_cap"],
            "market_cap",
            "market_cap",
            MARKET_CAP_RANGE,
            required=False,
        )
    elif "shares_outstanding" in column:
        caps = _caps_from_shares(found, closes, rows, column["shares_outstanding"])
    dividends = None
    if "dividend" in column:
        parsed, div_blank = _parse_numbers(column["dividend"])
        dividends = parsed.copy()
        none = div_blank | (dividends == 0)
        dividends[none] = np.nan
        usable = _number_problems(
            found, dividends, none, rows, column["dividend"], "dividend", "dividend", DIVIDEND_RANGE, required=False
        )
        dividends = np.where(usable, dividends, np.nan)
    codes, uniques = pd.factorize(column["symbol"].str.strip())
    canonical: list[str] = []
    index_of: dict[str, int] = {}
    remap = np.full(len(uniques), -1, dtype=np.int32)
    unknown = np.zeros(len(uniques), dtype=bool)
    refused: list[tuple[int, str]] = []
    for u, text in enumerate(uniques.tolist()):
        problem = symbol_problem(text)
        if problem is not None:
            refused.append((u, problem))
            continue
        symbol = text.upper()
        if known is not None and symbol not in known:
            unknown[u] = True
            continue
        remap[u] = index_of.setdefault(symbol, len(canonical))
        if remap[u] == len(canonical):
            canonical.append(symbol)
    for u, problem in refused:
        found.add_at(np.flatnonzero(codes == u), rows, "symbol", problem, column["symbol"])
    if unknown.any():
        found.add_at(np.flatnonzero(unknown[codes]), rows, "symbol", "unknown symbol", column["symbol"])
    return _Records(np.arange(len(rows), dtype=np.int32), remap[codes], canonical, closes, caps, dividend=dividends)


def _caps_from_shares(found: _Problems, closes: np.ndarray, rows: np.ndarray, text: pd.Series) -> np.ndarray:
    """Market caps ``close x shares_outstanding`` per row (NaN where the shares cell is blank); problems with
    the shares, or a resulting cap outside :data:`MARKET_CAP_RANGE`, are row problems of that column."""
    shares, blank = _parse_numbers(text)
    usable = _number_problems(
        found, shares, blank, rows, text, "shares_outstanding", "shares_outstanding", SHARES_RANGE, required=False
    )
    with np.errstate(invalid="ignore", over="ignore"):
        caps = np.where(usable, closes * shares, np.nan)
        outside = usable & np.isfinite(closes) & ((caps < MARKET_CAP_RANGE[0]) | (caps > MARKET_CAP_RANGE[1]))
    found.add_at(
        np.flatnonzero(outside),
        rows,
        "shares_outstanding",
        f"market cap (close x shares_outstanding) is outside the accepted range {MARKET_CAP_RANGE[0]:g} "
        f"to {MARKET_CAP_RANGE[1]:g}",
        text,
    )
    return caps


def _wide_records(grid: _Grid, header: list[str], found: _Problems) -> _Records:
    """Records of the non-blank cells, column by column; each text column is dropped once read."""
    rows = grid.rows
    price_columns = [j for j, name in enumerate(header) if name and name != "date"]
    capacity = len(rows) * len(price_columns)  # <= MAX_CELLS
    row_pos = np.empty(capacity, dtype=np.int32)
    symbol = np.empty(capacity, dtype=np.int32)
    close = np.empty(capacity, dtype=np.float64)
    symbols: list[str] = []
    segments: list[tuple[int, int]] = []
    filled = 0
    for j in price_columns:
        cells = grid.columns[j]
        label = str(grid.header[j])
        values, blank = _parse_numbers(cells)
        _number_problems(found, values, blank, rows, cells, label, "close", CLOSE_RANGE, required=False)
        keep = np.flatnonzero(~blank)
        row_pos[filled : filled + len(keep)] = keep
        symbol[filled : filled + len(keep)] = len(symbols)
        close[filled : filled + len(keep)] = values[keep]
        segments.append((filled, filled + len(keep)))
        filled += len(keep)
        symbols.append(grid.header[j].strip().upper())
        grid.columns[j] = cells.iloc[:0]  # the text is no longer needed
    return _Records(row_pos[:filled], symbol[:filled], symbols, close[:filled], segments=segments)


def _report_repeats(
    found: _Problems,
    records: _Records,
    chosen: np.ndarray,
    sorted_key: np.ndarray,
    days: np.ndarray,
    rows: np.ndarray,
    layout: str,
) -> None:
    """A problem per record whose key equals the previous one (``chosen``: records in key order)."""
    repeated = np.flatnonzero(sorted_key[1:] == sorted_key[:-1]) + 1
    if not len(repeated):
        return
    starts = np.where(np.concatenate(([True], sorted_key[1:] != sorted_key[:-1])), np.arange(len(sorted_key)), 0)
    first = np.maximum.accumulate(starts)
    for at in repeated[: file_grid.MAX_PROBLEMS]:
        record, original = chosen[at], chosen[first[at]]
        name = records.symbols[records.symbol[record]]
        found.add(
            int(rows[records.row_pos[record]]),
            name if layout == "wide" else "date",
            f"duplicate {name} on {days[records.row_pos[record]]} (first at row {int(rows[records.row_pos[original]])})",
        )
    found.more += max(0, len(repeated) - file_grid.MAX_PROBLEMS)


def _sorted_records(
    found: _Problems, records: _Records, days: np.ndarray, status: np.ndarray, rows: np.ndarray, layout: str
) -> np.ndarray:
    """Positions of the valid records sorted by (symbol, date); a problem per repeated (symbol, date).

    A wide file is sorted one symbol column at a time (never a sort key over all its cells); a long file has at
    most :data:`MAX_ROWS` records, sorted by one int64 key.
    """
    by_name = sorted(range(len(records.symbols)), key=records.symbols.__getitem__)
    day_numbers = days.astype(np.int64)  # per data row; NaT rows are never valid
    if records.segments is not None:
        order = np.empty(len(records.row_pos), dtype=np.int32)
        filled = 0
        for k in by_name:
            start, stop = records.segments[k]
            valid = start + np.flatnonzero(status[records.row_pos[start:stop]] == _OK)
            key = day_numbers[records.row_pos[valid]]
            permutation = np.argsort(key, kind="stable")
            chosen = valid[permutation]
            _report_repeats(found, records, chosen, key[permutation], days, rows, layout)
            order[filled : filled + len(chosen)] = chosen
            filled += len(chosen)
        return order[:filled]
    rank = np.zeros(len(records.symbols), dtype=np.int64)
    rank[by_name] = np.arange(len(by_name))
    candidates = np.flatnonzero((records.symbol >= 0) & (status[records.row_pos] == _OK))
    key = rank[records.symbol[candidates]] << 32
    key += day_numbers[records.row_pos[candidates]] + (1 << 31)
    permutation = np.argsort(key, kind="stable")
    chosen = candidates[permutation]
    _report_repeats(found, records, chosen, key[permutation], days, rows, layout)
    return chosen


def _long_frame(
    records: _Records, order: np.ndarray, days: np.ndarray, values: np.ndarray, value_column: str
) -> pd.DataFrame:
    """The contract's long frame for the records in ``order`` (already sorted by symbol and date).

    Built one column at a time (a four-million-row frame is 110 MB; its temporaries should not all coexist).
    """
    if not len(order):
        return empty_prices() if value_column == "close" else empty_market_caps()
    frame = pd.DataFrame({value_column: values[order]}, copy=False)
    symbol_text = pa.DictionaryArray.from_arrays(
        pa.array(records.symbol[order], type=pa.int32()), pa.array(records.symbols, type=pa.large_string())
    ).cast(pa.large_string())
    frame.insert(0, "symbol", pd.Series(pd.array(symbol_text, dtype="str")))
    del symbol_text
    frame.insert(0, "date", days.astype(DATE_DTYPE)[records.row_pos[order]])
    return frame
