"""Price import from CSV and XLSX files, refused as a whole when anything is wrong.

Accepted layouts (headers case-insensitive, surrounding spaces ignored):

* **long**: ``date, symbol, close[, market_cap | shares_outstanding][, dividend]`` -- one row per date
  and symbol (``ticker`` is accepted for ``symbol``, ``market cap``/``marketcap`` for
  ``market_cap``, ``shares``/``shares outstanding`` for ``shares_outstanding``). With
  ``shares_outstanding`` the market cap of a row is ``close x shares_outstanding`` (the count
  of shares on that date; a blank cell means no cap that day). A file gives market caps one
  way: both columns at once is refused;
* **wide**: ``date`` plus one column per symbol holding closes; an empty cell means
  "no price that day" (instruments have different histories).

Dates are ISO ``YYYY-MM-DD`` (optionally with a time, which is dropped) or real Excel
date cells, from :data:`MIN_DATE` (1900-01-01) to today; anything else -- year 0001, 1600,
2263 or 9999, an Excel serial number outside Excel's calendar, a time -- is a row error.
Ambiguous forms such as ``01/02/2024`` are refused rather than guessed.
Numbers use a dot as decimal separator, no thousands separators. CSV files must be
UTF-8 (a BOM is fine); ``,``, ``;`` and tab delimiters are detected from the header.
Symbols follow the one symbol rule (:func:`core.schemas.asset.symbol_problem`): plain ASCII,
unchanged by NFKC normalisation and case folding, so ``ſpy`` is refused instead of landing on SPY.

Sanity range (a value outside it is a row error, as is NaN or infinity):

* ``close``: :data:`CLOSE_RANGE` = 1e-6 .. 1e9 per unit of the instrument's currency;
* ``market_cap``: :data:`MARKET_CAP_RANGE` = 1e3 .. 1e14 currency units (also for a cap
  computed from shares);
* ``shares_outstanding``: :data:`SHARES_RANGE` = 1 .. 1e13 shares.

Bounds. Every limit is checked while reading, before the data is held in memory, and refuses the
file with one line naming it, so any file up to ``IMPORT_MAX_BYTES`` is refused or parsed in well
under 500 MB (figures in tests/unit/test_import_bounds.py):

* at most :data:`MAX_ROWS` data rows, :data:`MAX_CELLS` cells (rows x header width),
  :data:`MAX_TEXT_CHARS` characters of cell text, and :data:`MAX_CELL_CHARS` characters in any cell;
* XLSX, before openpyxl sees the file: the zip directory (:data:`XLSX_MAX_DIRECTORY_BYTES`,
  :data:`XLSX_MAX_MEMBERS` members); the declared unpacked size of all members
  (:data:`XLSX_MAX_UNPACKED_BYTES`; :mod:`zipfile` never inflates a member past its declared size,
  so a lying header is a CRC error, not a bomb); the shared strings
  (:data:`XLSX_MAX_SHARED_STRINGS_BYTES`); every other XML part that openpyxl reads whole
  (:data:`XLSX_MAX_PART_BYTES` each); the XML elements of all parts (:data:`XLSX_MAX_ELEMENTS`);
  the longest text between two tags (:data:`XLSX_MAX_XML_RUN`, which bounds any cell); XML parts
  must be UTF-8 without a DTD (no entity expansion);
* XLSX, while reading: openpyxl's streaming reader keeps every XML element it does not know
  until the sheet ends (100-400 bytes each), so a workbook whose XML exceeds
  :data:`XLSX_IN_PROCESS_BYTES` is read by a child process (:mod:`.xlsx_rows`) whose address space
  the kernel caps at :data:`XLSX_READER_MEMORY_BYTES` and CPU at :data:`XLSX_READER_CPU_SECONDS`;
* XLSX worksheets are read whole whatever their ``<dimension ref>`` says (openpyxl's read-only
  mode trusts it; :meth:`ReadOnlyWorksheet.reset_dimensions` is its documented remedy), and
  their rows and cells must be numbered in increasing order: openpyxl silently skips a row
  numbered out of order and a cell to the left of an earlier one, so such a file is refused.

Validation collects *every* problem before deciding (the first :data:`MAX_PROBLEMS` are listed),
then raises one :class:`ImportValidationError` whose ``rows`` hold a :class:`RowProblem` per
offending cell, numbered as in the file (header = row 1, spreadsheet rows as Excel shows them).
Nothing is ever imported partially.
"""

from __future__ import annotations

from datetime import date

import numpy as np

from core.infra.providers.base import (
    MarketDataProvider,
    ProgressCallback,
    ProviderData,
    empty_market_caps,
    filter_dates,
    normalise_symbols,
    report,
)
from core.infra.providers.file_cells import MIN_DATE, _date_problems, _parse_dates
from core.infra.providers.file_grid import (
    MAX_CELL_CHARS,
    MAX_CELLS,
    MAX_PROBLEMS,
    MAX_ROWS,
    MAX_TEXT_CHARS,
    _GridBuilder,
    _Problems,
    _read_csv,
    _refuse,
    _refuse_file,
)
from core.infra.providers.file_records import (
    CLOSE_RANGE,
    DIVIDEND_RANGE,
    LONG_OPTIONAL,
    LONG_REQUIRED,
    MARKET_CAP_RANGE,
    SHARES_RANGE,
    _header_problems,
    _long_frame,
    _long_records,
    _normalise_header,
    _sorted_records,
    _wide_records,
)
from core.infra.providers.xlsx_reader import (
    XLSX_IN_PROCESS_BYTES,
    XLSX_MAX_COLUMN,
    XLSX_MAX_DIRECTORY_BYTES,
    XLSX_MAX_ELEMENTS,
    XLSX_MAX_MEMBERS,
    XLSX_MAX_PART_BYTES,
    XLSX_MAX_ROW,
    XLSX_MAX_SHARED_STRINGS_BYTES,
    XLSX_MAX_UNPACKED_BYTES,
    XLSX_MAX_XML_RUN,
    XLSX_READER_CPU_SECONDS,
    XLSX_READER_MEMORY_BYTES,
    _read_xlsx,
)
from core.schemas.asset import AssetInfo

# The limits and ranges documented above are defined in the module that reads them (file_grid, file_cells,
# file_records, xlsx_reader) and re-exported here: to change one in a test, patch it on that module.
__all__ = [
    "CLOSE_RANGE",
    "DIVIDEND_RANGE",
    "LONG_OPTIONAL",
    "LONG_REQUIRED",
    "MARKET_CAP_RANGE",
    "MAX_BYTES",
    "MAX_CELL_CHARS",
    "MAX_CELLS",
    "MAX_PROBLEMS",
    "MAX_ROWS",
    "MAX_TEXT_CHARS",
    "MIN_DATE",
    "SHARES_RANGE",
    "SOURCE",
    "XLSX_IN_PROCESS_BYTES",
    "XLSX_MAX_COLUMN",
    "XLSX_MAX_DIRECTORY_BYTES",
    "XLSX_MAX_ELEMENTS",
    "XLSX_MAX_MEMBERS",
    "XLSX_MAX_PART_BYTES",
    "XLSX_MAX_ROW",
    "XLSX_MAX_SHARED_STRINGS_BYTES",
    "XLSX_MAX_UNPACKED_BYTES",
    "XLSX_MAX_XML_RUN",
    "XLSX_READER_CPU_SECONDS",
    "XLSX_READER_MEMORY_BYTES",
    "FileImportProvider",
    "parse_price_file",
]

MAX_BYTES = 20_000_000
SOURCE = "file"
_CSV_SUFFIXES = (".csv", ".txt")
_XLSX_SUFFIXES = (".xlsx", ".xlsm")


def parse_price_file(
    content: bytes,
    filename: str,
    *,
    known_symbols: set[str] | None = None,
    today: date | None = None,
    max_bytes: int = MAX_BYTES,
) -> ProviderData:
    """Parse and validate a CSV or XLSX price file.

    Args:
        content: the file's bytes.
        filename: its name; the suffix (.csv/.txt or .xlsx/.xlsm) selects the reader.
        known_symbols: if given, every symbol must be one of these (case-insensitive).
        today: dates after it are refused as "in the future"; default ``date.today()``.
        max_bytes: larger files are refused before parsing.

    Returns:
        :class:`ProviderData` with source ``"file"``: prices, market caps (long layout with
        a ``market_cap`` column, or ``close x shares_outstanding``; blank cells simply have
        none) and one minimal
        :class:`AssetInfo` per symbol (asset class ``other``; the caller merges what it knows).

    Raises:
        ImportValidationError: the file is refused; ``rows`` lists every problem (the first
            :data:`MAX_PROBLEMS`), or names the bound it broke.
    """
    today = today or date.today()
    known = {s.strip().upper() for s in known_symbols} if known_symbols is not None else None
    if len(content) > max_bytes:
        raise _refuse_file(filename, f"file is {len(content):,} bytes, over the limit of {max_bytes:,} bytes")
    if not content or not content.strip():
        raise _refuse_file(filename, "file is empty")
    found = _Problems()
    builder = _GridBuilder(filename, found)
    lower = filename.lower()
    if lower.endswith(_XLSX_SUFFIXES):
        _read_xlsx(content, filename, builder)
    elif lower.endswith(_CSV_SUFFIXES):
        if content[:4] == b"PK\x03\x04":
            raise _refuse_file(filename, "file is a spreadsheet/zip, not CSV text; upload it with an .xlsx name")
        _read_csv(content, filename, builder)
    else:
        raise _refuse_file(filename, "unsupported file type: use .csv or .xlsx")
    grid = builder.grid()
    if grid is None:
        raise _refuse_file(filename, "file is empty (no header and no rows)")

    header = [_normalise_header(h) for h in grid.header]
    layout, header_problems = _header_problems(header, grid.header, grid.header_row, known)
    if header_problems:
        raise _refuse(header_problems, filename)
    if not len(grid.rows):
        raise _refuse_file(filename, "file has a header but no data rows")

    date_text = grid.columns[header.index("date")]
    days, status = _parse_dates(date_text, today)
    _date_problems(found, status, grid.rows, date_text, today)
    del date_text
    records = _long_records(grid, header, found, known) if layout == "long" else _wide_records(grid, header, found)
    grid.columns = []  # every text column has been read
    order = _sorted_records(found, records, days, status, grid.rows, layout)
    if found or found.more:
        raise found.error(filename)

    if records.market_cap is not None:
        with_cap = order[~np.isnan(records.market_cap[order])]
        market_caps = _long_frame(records, with_cap, days, records.market_cap, "market_cap")
    else:
        market_caps = empty_market_caps()
    dividends = None
    if records.dividend is not None:
        with_div = order[~np.isnan(records.dividend[order])]
        if len(with_div):
            dividends = _long_frame(records, with_div, days, records.dividend, "dividend")
    closes, records.close = records.close, np.empty(0)
    prices = _long_frame(records, order, days, closes, "close")
    del closes, records, order
    assets = [
        AssetInfo(symbol=s, name=s, asset_class="other", source=SOURCE)
        for s in sorted(prices["symbol"].unique().tolist())
    ]
    return ProviderData(prices, market_caps, assets, SOURCE, dividends=dividends)


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

    def __init__(
        self,
        content: bytes,
        filename: str,
        *,
        known_symbols: set[str] | None = None,
        today: date | None = None,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self.content = content
        self.filename = filename
        self.known_symbols = known_symbols
        self.today = today
        self.max_bytes = max_bytes
        self._parsed: ProviderData | None = None

    def parsed(self) -> ProviderData:
        """Everything in the file; raises :class:`ImportValidationError` if it is refused."""
        if self._parsed is None:
            self._parsed = parse_price_file(
                self.content,
                self.filename,
                known_symbols=self.known_symbols,
                today=self.today,
                max_bytes=self.max_bytes,
            )
        return self._parsed

    def universe(self) -> list[AssetInfo]:
        """The symbols found in the file (parses it; may raise ImportValidationError)."""
        return list(self.parsed().assets)

    def fetch(
        self,
        symbols: list[str] | None,
        start: date | None = None,
        end: date | None = None,
        *,
        progress: ProgressCallback | None = None,
    ) -> ProviderData:
        """The file's rows for ``symbols`` (None = all) within ``[start, end]``.

        Raises ImportValidationError when the file is refused, ProviderError for a requested symbol the
        symbol rule refuses. A requested symbol the file does not contain is skipped
        (``ProviderData.skipped``), like an unknown symbol of any provider.
        """
        report(progress, 0.0, f"reading {self.filename}")
        data = self.parsed()
        wanted = normalise_symbols(symbols)
        prices, caps, assets = data.prices, data.market_caps, data.assets
        skipped: dict[str, str] = {}
        if wanted is not None:
            present = {a.symbol for a in assets}
            skipped = {symbol: f"not in {self.filename}" for symbol in wanted if symbol not in present}
            prices = prices[prices["symbol"].isin(wanted)].reset_index(drop=True)
            caps = caps[caps["symbol"].isin(wanted)].reset_index(drop=True)
            assets = [a for a in assets if a.symbol in set(wanted)]
        dividends = data.dividends
        if dividends is not None and wanted is not None:
            dividends = dividends[dividends["symbol"].isin(wanted)].reset_index(drop=True)
        result = ProviderData(
            filter_dates(prices, start, end),
            filter_dates(caps, start, end),
            assets,
            self.name,
            skipped=skipped,
            dividends=filter_dates(dividends, start, end) if dividends is not None else None,
        )
        report(progress, 1.0, f"{len(result.prices)} prices read from {self.filename}")
        return result
