"""Price import from CSV and XLSX files, refused as a whole when anything is wrong.

Accepted layouts (headers case-insensitive, surrounding spaces ignored):

* **long**: ``date, symbol, close[, market_cap]`` -- one row per date and symbol
  (``ticker`` is accepted for ``symbol``, ``market cap``/``marketcap`` for ``market_cap``);
* **wide**: ``date`` plus one column per symbol holding closes; an empty cell means
  "no price that day" (instruments have different histories).

Dates are ISO ``YYYY-MM-DD`` (optionally with a time, which is dropped) or real Excel
date cells; ambiguous forms such as ``01/02/2024`` are refused rather than guessed.
Numbers use a dot as decimal separator, no thousands separators. CSV files must be
UTF-8 (a BOM is fine); ``,``, ``;`` and tab delimiters are detected from the header.

Validation collects *every* problem before deciding, then raises one
:class:`ImportValidationError` whose ``rows`` hold a :class:`RowProblem` per offending
cell, numbered as in the file (header = row 1, spreadsheet rows as Excel shows them).
Nothing is ever imported partially.
"""
from __future__ import annotations

import csv
import io
import re
import zipfile
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from core.errors import ImportValidationError, ProviderError, RowProblem
from core.schemas.asset import SYMBOL_PATTERN, AssetInfo
from core.services.providers.base import (
    MarketDataProvider, ProgressCallback, ProviderData, empty_market_caps, filter_dates,
    normalise_long_frame, normalise_symbols, report,
)

MAX_BYTES = 20_000_000
SOURCE = "file"
LONG_REQUIRED = ("date", "symbol", "close")
LONG_OPTIONAL = ("market_cap",)
_ALIASES = {"ticker": "symbol", "market_cap": "market_cap", "marketcap": "market_cap",
            "market_capitalisation": "market_cap", "market_capitalization": "market_cap"}
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$")
_SYMBOL = re.compile(SYMBOL_PATTERN)
_CSV_SUFFIXES = (".csv", ".txt")
_XLSX_SUFFIXES = (".xlsx", ".xlsm")


def _refuse(problems: list[RowProblem], filename: str) -> ImportValidationError:
    unique: dict[tuple, RowProblem] = {}
    for p in problems:  # a wide row with a bad date would otherwise repeat once per symbol
        unique.setdefault((p.row, p.column, p.problem), p)
    return ImportValidationError(sorted(unique.values(), key=lambda p: (p.row or 0)), source=filename)


def _normalise_header(name: Any) -> str:
    text = "" if name is None else str(name).strip()
    key = re.sub(r"[\s\-]+", "_", text.lower())
    return _ALIASES.get(key, key)


# --------------------------------------------------------------------------- reading
def _read_csv(content: bytes, filename: str) -> list[tuple[int, list[Any]]]:
    """Return ``[(row_number, cells)]`` of non-blank rows; refuse non-UTF-8 or unreadable CSV."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = content[: exc.start].count(b"\n") + 1
        raise _refuse([RowProblem(line, None, f"not UTF-8 text (byte 0x{content[exc.start]:02x} at offset "
                                              f"{exc.start}); save the file as 'CSV UTF-8'")], filename) from None
    first_line = text.split("\n", 1)[0]
    delimiter = max([",", ";", "\t"], key=lambda d: (first_line.count(d), d == ","))
    rows: list[tuple[int, list[Any]]] = []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        for cells in reader:
            if any(c.strip() for c in cells):
                rows.append((reader.line_num, cells))
    except csv.Error as exc:
        raise _refuse([RowProblem(reader.line_num, None, f"unreadable CSV: {exc}")], filename) from None
    return rows


def _read_xlsx(content: bytes, filename: str) -> list[tuple[int, list[Any]]]:
    """Return ``[(row_number, cells)]`` of the first worksheet's non-blank rows."""
    import openpyxl  # local: only imports pay for it
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, TypeError) as exc:
        raise _refuse([RowProblem(None, None, f"not a valid XLSX workbook ({type(exc).__name__})")],
                      filename) from None
    except Exception as exc:  # openpyxl raises a zoo of errors on corrupt files
        raise _refuse([RowProblem(None, None, f"not a valid XLSX workbook ({type(exc).__name__})")],
                      filename) from None
    try:
        if not workbook.worksheets:
            raise _refuse([RowProblem(None, None, "workbook has no worksheet")], filename)
        sheet = workbook.worksheets[0]
        rows = []
        for number, cells in enumerate(sheet.iter_rows(values_only=True), start=1):
            values = list(cells)
            while values and (values[-1] is None or (isinstance(values[-1], str) and not values[-1].strip())):
                values.pop()
            if values and any(v is not None and not (isinstance(v, str) and not v.strip()) for v in values):
                rows.append((number, values))
        return rows
    finally:
        workbook.close()


# --------------------------------------------------------------------------- cell parsing
def _parse_dates(cells: pd.Series) -> pd.Series:
    """ISO strings and datetime/date objects -> normalised Timestamps; anything else -> NaT."""
    raw = cells.tolist()
    is_datetime = np.fromiter((isinstance(v, (datetime, date)) for v in raw), dtype=bool, count=len(raw))
    text = [v.strip() if isinstance(v, str) else "" for v in raw]
    is_iso = np.fromiter((bool(t) and _ISO_DATE.match(t) is not None for t in text), dtype=bool, count=len(raw))
    out = pd.Series(pd.NaT, index=cells.index, dtype="datetime64[ns]")
    if is_iso.any():
        iso = pd.Series([t for t, ok in zip(text, is_iso) if ok], dtype=object)
        out[is_iso] = pd.to_datetime(iso, format="ISO8601", errors="coerce").astype("datetime64[ns]").to_numpy()
    if is_datetime.any():
        stamps = [pd.Timestamp(v) for v, ok in zip(raw, is_datetime) if ok]
        out[is_datetime] = pd.to_datetime(pd.Series(stamps, dtype=object)).astype("datetime64[ns]").to_numpy()
    return out.dt.normalize()


def _parse_numbers(cells: pd.Series) -> pd.Series:
    """Numbers and numeric strings -> float; booleans, blanks and garbage -> NaN (callers decide)."""
    def one(v: Any) -> Any:
        if isinstance(v, bool) or v is None:
            return None
        if isinstance(v, (int, float, np.number)):
            return float(v)
        return str(v).strip() or None
    values = pd.to_numeric(pd.Series([one(v) for v in cells.tolist()], index=cells.index, dtype=object),
                           errors="coerce").astype("float64")
    return values.where(np.isfinite(values))


def _is_blank(cells: pd.Series) -> np.ndarray:
    raw = cells.tolist()
    return np.fromiter((v is None or (isinstance(v, float) and np.isnan(v)) or (isinstance(v, str) and not v.strip())
                        for v in raw), dtype=bool, count=len(raw))


# --------------------------------------------------------------------------- validation
def _header_problems(header: list[str], raw_header: list[Any], header_row: int,
                     known: set[str] | None) -> tuple[str, list[RowProblem]]:
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
    is_long = "symbol" in seen or "close" in seen or "market_cap" in seen
    if is_long:
        for required in LONG_REQUIRED:
            if required not in seen and required != "date":
                problems.append(RowProblem(header_row, required, f"missing column '{required}'"))
        for raw, name in zip(raw_header, header):
            if name and name not in LONG_REQUIRED + LONG_OPTIONAL:
                problems.append(RowProblem(header_row, str(raw), "unknown column (expected date, symbol, close"
                                                                  " and optionally market_cap)", raw))
        return "long", problems
    for raw, name in zip(raw_header, header):
        if not name or name == "date":
            continue
        symbol = str(raw).strip().upper()
        if not _SYMBOL.match(symbol):
            problems.append(RowProblem(header_row, str(raw), "column is not a valid symbol", raw))
        elif known is not None and symbol not in known:
            problems.append(RowProblem(header_row, str(raw), "unknown symbol", raw))
    if len([n for n in header if n and n != "date"]) == 0:
        problems.append(RowProblem(header_row, None, "no price columns: expected date, symbol, close "
                                                     "(long) or date plus one column per symbol (wide)"))
    return "wide", problems


def _records(rows: list[tuple[int, list[Any]]], header: list[str], raw_header: list[Any], layout: str,
             problems: list[RowProblem]) -> pd.DataFrame:
    """Long records ``[row, date, symbol, close, market_cap]`` of raw cells (not yet parsed)."""
    width = len(header)
    numbers, matrix = [], []
    for number, cells in rows:
        extra = [c for c in cells[width:] if not (c is None or (isinstance(c, str) and not c.strip()))]
        if extra:
            problems.append(RowProblem(number, None, f"row has {len(cells)} values but the header has {width}",
                                       extra[0]))
        matrix.append((list(cells[:width]) + [None] * max(0, width - len(cells))))
        numbers.append(number)
    table = pd.DataFrame(matrix, columns=range(width), dtype=object)
    table.insert(0, "row", np.asarray(numbers, dtype=np.int64))
    date_pos = header.index("date")
    if layout == "long":
        pos = {name: header.index(name) for name in LONG_REQUIRED + LONG_OPTIONAL if name in header}
        return pd.DataFrame({
            "row": table["row"], "date": table[date_pos], "symbol": table[pos["symbol"]],
            "close": table[pos["close"]],
            "market_cap": table[pos["market_cap"]] if "market_cap" in pos else None,
        })
    parts = []
    for position, (raw, name) in enumerate(zip(raw_header, header)):
        if not name or name == "date":
            continue
        cells = table[position]
        keep = ~_is_blank(cells)
        parts.append(pd.DataFrame({"row": table["row"][keep], "date": table[date_pos][keep],
                                   "symbol": str(raw).strip(), "close": cells[keep], "market_cap": None}))
    if not parts:
        return pd.DataFrame(columns=["row", "date", "symbol", "close", "market_cap"])
    return pd.concat(parts, ignore_index=True)


def _problems_where(mask: np.ndarray, records: pd.DataFrame, column: str, problem: str,
                    values: pd.Series | None = None, column_label: pd.Series | None = None) -> list[RowProblem]:
    if not mask.any():
        return []
    rows = records["row"].to_numpy()[mask]
    vals = (values if values is not None else records[column]).to_numpy()[mask]
    labels = column_label.to_numpy()[mask] if column_label is not None else [column] * len(rows)
    return [RowProblem(int(r), str(c), problem, v) for r, c, v in zip(rows, labels, vals)]


def parse_price_file(content: bytes, filename: str, *, known_symbols: set[str] | None = None,
                     today: date | None = None, max_bytes: int = MAX_BYTES) -> ProviderData:
    """Parse and validate a CSV or XLSX price file.

    Args:
        content: the file's bytes.
        filename: its name; the suffix (.csv/.txt or .xlsx/.xlsm) selects the reader.
        known_symbols: if given, every symbol must be one of these (case-insensitive).
        today: dates after it are refused as "in the future"; default ``date.today()``.
        max_bytes: larger files are refused before parsing.

    Returns:
        :class:`ProviderData` with source ``"file"``: prices, market caps (long layout with
        a ``market_cap`` column; blank cells simply have none) and one minimal
        :class:`AssetInfo` per symbol (asset class ``other``; the caller merges what it knows).

    Raises:
        ImportValidationError: the file is refused; ``rows`` lists every problem.
    """
    today = today or date.today()
    known = {s.strip().upper() for s in known_symbols} if known_symbols is not None else None
    if len(content) > max_bytes:
        raise _refuse([RowProblem(None, None, f"file is {len(content):,} bytes, over the limit of "
                                              f"{max_bytes:,} bytes")], filename)
    if not content or not content.strip():
        raise _refuse([RowProblem(None, None, "file is empty")], filename)
    lower = filename.lower()
    if lower.endswith(_XLSX_SUFFIXES):
        rows = _read_xlsx(content, filename)
    elif lower.endswith(_CSV_SUFFIXES):
        if content[:4] == b"PK\x03\x04":
            raise _refuse([RowProblem(None, None, "file is a spreadsheet/zip, not CSV text; "
                                                  "upload it with an .xlsx name")], filename)
        rows = _read_csv(content, filename)
    else:
        raise _refuse([RowProblem(None, None, "unsupported file type: use .csv or .xlsx")], filename)
    if not rows:
        raise _refuse([RowProblem(None, None, "file is empty (no header and no rows)")], filename)

    header_row, raw_header = rows[0]
    header = [_normalise_header(h) for h in raw_header]
    layout, problems = _header_problems(header, raw_header, header_row, known)
    if problems:
        raise _refuse(problems, filename)
    data_rows = rows[1:]
    if not data_rows:
        raise _refuse([RowProblem(None, None, "file has a header but no data rows")], filename)

    records = _records(data_rows, header, raw_header, layout, problems)
    dates = _parse_dates(records["date"])
    closes = _parse_numbers(records["close"])
    symbols = pd.Series(["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v).strip().upper()
                         for v in records["symbol"].tolist()], index=records.index, dtype="str")
    label = records["symbol"].astype(str) if layout == "wide" else None

    date_blank = _is_blank(records["date"])
    problems += _problems_where(date_blank, records, "date", "missing date")
    bad_date = dates.isna().to_numpy() & ~date_blank
    problems += _problems_where(bad_date, records, "date", "unparsable date (expected YYYY-MM-DD)")
    future = (dates > pd.Timestamp(today)).to_numpy()
    problems += _problems_where(future, records, "date", f"date is in the future (after {today})")

    close_blank = _is_blank(records["close"])
    problems += _problems_where(close_blank, records, "close", "missing close", column_label=label)
    bad_close = closes.isna().to_numpy() & ~close_blank
    problems += _problems_where(bad_close, records, "close", "close is not a number", column_label=label)
    non_positive = (closes <= 0).to_numpy()
    problems += _problems_where(non_positive, records, "close", "close must be greater than zero",
                                column_label=label)

    caps = None
    if layout == "long" and "market_cap" in header:
        caps = _parse_numbers(records["market_cap"])
        cap_blank = _is_blank(records["market_cap"])
        problems += _problems_where(caps.isna().to_numpy() & ~cap_blank, records, "market_cap",
                                    "market_cap is not a number")
        problems += _problems_where((caps <= 0).to_numpy(), records, "market_cap",
                                    "market_cap must be greater than zero")

    if layout == "long":
        sym_blank = (symbols == "").to_numpy()
        problems += _problems_where(sym_blank, records, "symbol", "missing symbol")
        bad_sym = ~sym_blank & ~symbols.map(lambda s: _SYMBOL.match(s) is not None).to_numpy(dtype=bool)
        problems += _problems_where(bad_sym, records, "symbol", "invalid symbol")
        if known is not None:
            unknown = ~sym_blank & ~bad_sym & ~symbols.isin(known).to_numpy()
            problems += _problems_where(unknown, records, "symbol", "unknown symbol")

    keyed = pd.DataFrame({"date": dates, "symbol": symbols, "row": records["row"]})
    valid_key = (~dates.isna() & (symbols != "")).to_numpy()
    dup = keyed["date"].notna().to_numpy() & valid_key & keyed.duplicated(["date", "symbol"], keep="first").to_numpy()
    if dup.any():
        first_row = keyed[valid_key].groupby(["date", "symbol"])["row"].transform("min")
        first_row = first_row.reindex(keyed.index)
        for r, s, d, f in zip(keyed["row"][dup], keyed["symbol"][dup], keyed["date"][dup], first_row[dup]):
            problems.append(RowProblem(int(r), s if layout == "wide" else "date",
                                       f"duplicate {s} on {d.date()} (first at row {int(f)})"))
    if problems:
        raise _refuse(problems, filename)

    prices = normalise_long_frame(pd.DataFrame({"date": dates, "symbol": symbols, "close": closes}), "close")
    market_caps = empty_market_caps()
    if caps is not None and caps.notna().any():
        has = caps.notna().to_numpy()
        market_caps = normalise_long_frame(pd.DataFrame({"date": dates[has], "symbol": symbols[has],
                                                         "market_cap": caps[has]}), "market_cap")
    assets = [AssetInfo(symbol=s, name=s, asset_class="other", source=SOURCE)
              for s in sorted(prices["symbol"].unique().tolist())]
    return ProviderData(prices, market_caps, assets, SOURCE)


class FileImportProvider(MarketDataProvider):
    """A provider over one uploaded file (parsed once, on first use).

    Args:
        content: the file's bytes.
        filename: its name (selects CSV or XLSX).
        known_symbols: if given, symbols outside it refuse the import.
        today: "now" for the future-date check; default ``date.today()``.
        max_bytes: size limit.
    """

    name = SOURCE

    def __init__(self, content: bytes, filename: str, *, known_symbols: set[str] | None = None,
                 today: date | None = None, max_bytes: int = MAX_BYTES) -> None:
        self.content = content
        self.filename = filename
        self.known_symbols = known_symbols
        self.today = today
        self.max_bytes = max_bytes
        self._parsed: ProviderData | None = None

    def parsed(self) -> ProviderData:
        """Everything in the file; raises :class:`ImportValidationError` if it is refused."""
        if self._parsed is None:
            self._parsed = parse_price_file(self.content, self.filename, known_symbols=self.known_symbols,
                                            today=self.today, max_bytes=self.max_bytes)
        return self._parsed

    def universe(self) -> list[AssetInfo]:
        """The symbols found in the file (parses it; may raise ImportValidationError)."""
        return list(self.parsed().assets)

    def fetch(self, symbols: list[str] | None, start: date | None = None, end: date | None = None, *,
              progress: ProgressCallback | None = None) -> ProviderData:
        """The file's rows for ``symbols`` (None = all) within ``[start, end]``.

        Raises ImportValidationError when the file is refused, ProviderError for a
        requested symbol the file does not contain.
        """
        report(progress, 0.0, f"reading {self.filename}")
        data = self.parsed()
        wanted = normalise_symbols(symbols)
        prices, caps, assets = data.prices, data.market_caps, data.assets
        if wanted is not None:
            present = {a.symbol for a in assets}
            for symbol in wanted:
                if symbol not in present:
                    raise ProviderError(f"not in {self.filename}", symbol, status=404)
            prices = prices[prices["symbol"].isin(wanted)].reset_index(drop=True)
            caps = caps[caps["symbol"].isin(wanted)].reset_index(drop=True)
            assets = [a for a in assets if a.symbol in set(wanted)]
        result = ProviderData(filter_dates(prices, start, end), filter_dates(caps, start, end), assets, self.name)
        report(progress, 1.0, f"{len(result.prices)} prices read from {self.filename}")
        return result
