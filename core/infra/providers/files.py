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

import csv
import io
import os
import posixpath
import re
import struct
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from core.errors import ImportValidationError, RowProblem
from core.infra.providers import xlsx_rows
from core.infra.providers.base import (
    DATE_DTYPE,
    MarketDataProvider,
    ProgressCallback,
    ProviderData,
    empty_market_caps,
    empty_prices,
    filter_dates,
    normalise_symbols,
    report,
)
from core.schemas.asset import AssetInfo, symbol_problem

MAX_BYTES = 20_000_000
SOURCE = "file"
LONG_REQUIRED = ("date", "symbol", "close")
LONG_OPTIONAL = ("market_cap", "shares_outstanding", "dividend")

#: Earliest accepted price date; the latest is "today" (passed in).
MIN_DATE = date(1900, 1, 1)
#: Accepted closes, per unit (inclusive): below a millionth or above a billion is a data error.
CLOSE_RANGE = (1e-6, 1e9)
#: Accepted market capitalisations in currency units (inclusive): a thousand to a hundred trillion.
MARKET_CAP_RANGE = (1e3, 1e14)
#: Accepted shares outstanding (inclusive): one share to ten trillion.
SHARES_RANGE = (1.0, 1e13)
#: Accepted cash dividends per share going ex that day (inclusive); a blank or 0 cell is no dividend (issue 15).
DIVIDEND_RANGE = (1e-6, 1e6)

MAX_ROWS = 1_048_576  # Excel's own row limit
MAX_CELLS = 4_000_000  # data rows x header width
MAX_CELL_CHARS = 100  # no date, number or symbol needs more
MAX_TEXT_CHARS = 40_000_000  # all cell text together
MAX_PROBLEMS = 1_000  # problems listed; the rest are counted
XLSX_MAX_DIRECTORY_BYTES = 1 << 20
XLSX_MAX_MEMBERS = 1_000
XLSX_MAX_UNPACKED_BYTES = 128 << 20
XLSX_MAX_SHARED_STRINGS_BYTES = 8 << 20
XLSX_MAX_PART_BYTES = 2 << 20  # any XML part other than a worksheet and the shared strings
XLSX_MAX_ELEMENTS = 10_000_000  # start tags over all XML parts (about four million numeric cells)
XLSX_MAX_XML_RUN = 32 << 10  # bytes between two '<'
XLSX_MAX_ROW = xlsx_rows.MAX_ROW
XLSX_IN_PROCESS_BYTES = 4 << 20  # XML up to this is read in-process (at most ~35x in memory: ~150 MB)
XLSX_READER_MEMORY_BYTES = 450 << 20  # address space of the child process that reads a larger workbook
XLSX_READER_CPU_SECONDS = 120
XLSX_MAX_COLUMN = 16_384  # XFD

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
#: ISO date with an optional valid time of day (no zone); ASCII digits only (evaluated by Arrow's RE2).
_ISO_DATE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[ T](?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]+)?)?)?"
_CSV_SUFFIXES = (".csv", ".txt")
_XLSX_SUFFIXES = (".xlsx", ".xlsm")
_CHUNK_CELLS = 1 << 16  # cells held as Python strings before moving them to Arrow
_READ_CHUNK = 1 << 20


# --------------------------------------------------------------------------- problems
class _Problems:
    """Problems found so far; the first :data:`MAX_PROBLEMS` are kept, the rest only counted."""

    def __init__(self) -> None:
        self.items: list[RowProblem] = []
        self.more = 0

    def __bool__(self) -> bool:
        return bool(self.items)

    def add(self, row: int | None, column: str | None, problem: str, value: Any = None) -> None:
        if len(self.items) < MAX_PROBLEMS:
            self.items.append(RowProblem(row, column, problem, value))
        else:
            self.more += 1

    def add_at(
        self, positions: np.ndarray, rows: np.ndarray, column: str | None, problem: str, values: pd.Series | None = None
    ) -> None:
        """One problem per position (indices into ``rows`` and ``values``)."""
        room = max(0, MAX_PROBLEMS - len(self.items))
        self.more += max(0, len(positions) - room)
        for p in positions[:room]:
            self.items.append(RowProblem(int(rows[p]), column, problem, None if values is None else values.iloc[p]))

    def error(self, filename: str) -> ImportValidationError:
        unique: dict[tuple[int | None, str | None, str], RowProblem] = {}
        for p in self.items:  # a wide row with a bad date would otherwise repeat once per symbol
            unique.setdefault((p.row, p.column, p.problem), p)
        listed = sorted(unique.values(), key=lambda p: p.row or 0)
        if self.more:
            listed.append(RowProblem(None, None, f"{self.more:,} more problems not listed"))
        return ImportValidationError(listed, source=filename)


def _refuse(problems: list[RowProblem], filename: str) -> ImportValidationError:
    found = _Problems()
    for p in problems:
        found.add(p.row, p.column, p.problem, p.value)
    return found.error(filename)


def _refuse_file(
    filename: str, problem: str, row: int | None = None, column: str | None = None, value: Any = None
) -> ImportValidationError:
    return ImportValidationError([RowProblem(row, column, problem, value)], source=filename)


def _normalise_header(name: Any) -> str:
    text = "" if name is None else str(name).strip()
    key = re.sub(r"[\s\-]+", "_", text.lower())
    return _ALIASES.get(key, key)


# --------------------------------------------------------------------------- the grid of cells
@dataclass
class _Grid:
    """The file as text: the header's cells, then one ``str`` Series per header position ("" = blank)."""

    header_row: int
    header: list[str]
    rows: np.ndarray  # file row number of each data row
    columns: list[pd.Series]


class _GridBuilder:
    """Takes rows as lists of text as they are read, enforcing the row, cell and text bounds on the way,
    and keeps them column by column in Arrow strings (a few bytes a cell, not a Python object each)."""

    def __init__(self, filename: str, problems: _Problems) -> None:
        self.filename = filename
        self.problems = problems
        self.header_row = 0
        self.header: list[str] | None = None
        self.width = 0
        self.data_rows = 0
        self.cells = 0
        self.chars = 0
        self._pending: list[list[str]] = []
        self._pending_rows: list[int] = []
        self._chunks: list[list[pa.Array]] = []
        self._row_chunks: list[np.ndarray] = []

    def add(self, number: int, cells: list[str]) -> None:
        """Row ``number`` of the file (blank rows are skipped)."""
        if not cells or not any(map(str.strip, cells)):
            return
        longest = max(map(len, cells))
        if longest > MAX_CELL_CHARS:
            position = next(i for i, c in enumerate(cells) if len(c) == longest)
            raise _refuse_file(
                self.filename,
                f"cell holds {longest:,} characters, over the limit of {MAX_CELL_CHARS}",
                number,
                f"column {position + 1}",
                cells[position][:40] + "…",
            )
        self.chars += sum(map(len, cells))
        if self.chars > MAX_TEXT_CHARS:
            raise _refuse_file(
                self.filename,
                f"file holds more than {MAX_TEXT_CHARS:,} characters of cell text; split it into smaller files",
                number,
            )
        if self.header is None:
            self.header_row, self.header, self.width = number, cells, len(cells)
            return
        self.data_rows += 1
        if self.data_rows > MAX_ROWS:
            raise _refuse_file(
                self.filename, f"file has more than {MAX_ROWS:,} data rows; split it into smaller files", number
            )
        width = self.width
        if len(cells) > width:
            extra = [c for c in cells[width:] if c.strip()]
            if extra:
                self.problems.add(number, None, f"row has {len(cells)} values but the header has {width}", extra[0])
            cells = cells[:width]
        elif len(cells) < width:
            cells = cells + [""] * (width - len(cells))
        self.cells += width
        if self.cells > MAX_CELLS:
            raise _refuse_file(
                self.filename, f"file has more than {MAX_CELLS:,} cells; split it into smaller files", number
            )
        self._pending.append(cells)
        self._pending_rows.append(number)
        if len(self._pending) * width >= _CHUNK_CELLS:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        self._chunks.append([pa.array(column, type=pa.large_string()) for column in zip(*self._pending)])
        self._row_chunks.append(np.asarray(self._pending_rows, dtype=np.int64))
        self._pending.clear()
        self._pending_rows.clear()

    def grid(self) -> _Grid | None:
        """Everything read, or ``None`` when the file had no non-blank row."""
        self._flush()
        if self.header is None:
            return None
        columns = [
            pd.Series(
                pd.array(pa.chunked_array([chunk[j] for chunk in self._chunks], type=pa.large_string()), dtype="str")
            )
            for j in range(self.width)
        ]
        rows = np.concatenate(self._row_chunks) if self._row_chunks else np.empty(0, dtype=np.int64)
        self._chunks.clear()
        return _Grid(self.header_row, self.header, rows, columns)


# --------------------------------------------------------------------------- reading CSV
def _read_csv(content: bytes, filename: str, builder: _GridBuilder) -> None:
    """Feed the CSV's rows to ``builder``; refuse non-UTF-8 or unreadable CSV."""
    try:
        content.decode("utf-8")  # checked whole (then dropped) so the message can name the line
    except UnicodeDecodeError as exc:
        line = content[: exc.start].count(b"\n") + 1
        raise _refuse_file(
            filename,
            f"not UTF-8 text (byte 0x{content[exc.start]:02x} at offset {exc.start}); save the file as 'CSV UTF-8'",
            line,
        ) from None
    end = content.find(b"\n", 0, 1 << 16)
    first_line = content[: end if end >= 0 else 1 << 16].decode("utf-8", errors="replace")
    delimiter = max([",", ";", "\t"], key=lambda d: (first_line.count(d), d == ","))
    stream = io.TextIOWrapper(io.BytesIO(content), encoding="utf-8-sig", newline="")
    reader = csv.reader(stream, delimiter=delimiter, strict=True)
    try:
        for cells in reader:
            builder.add(reader.line_num, cells)
    except csv.Error as exc:
        raise _refuse_file(filename, f"unreadable CSV: {exc}", reader.line_num) from None


# --------------------------------------------------------------------------- reading XLSX
_XML_DECLARED_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*?\sencoding\s*=\s*["']([^"']*)["']""")
_ROW_OR_CELL = re.compile(rb"<(?:[A-Za-z_][\w.\-]*:)?(row|c)(?=[\s/>])([^<]*)")
_R_ATTRIBUTE = re.compile(rb'\sr\s*=\s*"([^"]*)"')
_CELL_REFERENCE = re.compile(rb"^\$?([A-Za-z]{1,3})\$?[0-9]+$")
_SHARED_STRINGS_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"
_WORKSHEET_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"
_WORKSHEET_RELATIONSHIP = "/worksheet"
_LT, _SLASH, _QUESTION, _BANG = (ord(c) for c in "</?!")


def _utf16_by_expat_rules(start: bytes) -> str | None:
    """The UTF-16 codec expat would pick for a document starting with these bytes (None: UTF-8)."""
    if start[:2] == b"\xfe\xff" or start[:1] == b"\x00":
        return "utf-16-be"
    if start[:2] == b"\xff\xfe" or start[1:2] == b"\x00":
        return "utf-16-le"
    return None


def _column_number(letters: bytes) -> int:
    number = 0
    for ch in letters.upper():
        number = number * 26 + ch - 64
    return number


class _XlsxScan:
    """Bounds of an XLSX container, checked on its raw bytes before openpyxl parses anything."""

    def __init__(self, content: bytes, filename: str) -> None:
        self.content = content
        self.filename = filename
        self.elements = 0
        self.xml_bytes = 0
        self._scanned: set[tuple[str, int]] = set()

    def refuse(self, problem: str) -> ImportValidationError:
        return _refuse_file(self.filename, problem)

    def check(self) -> int:
        """Refuse the workbook if a bound is broken; return the unpacked size of its XML parts."""
        self._check_directory()
        try:
            archive = zipfile.ZipFile(io.BytesIO(self.content))
        except Exception as exc:  # BadZipFile, OSError, ValueError, struct.error, ...
            raise self.refuse(f"not a valid XLSX workbook ({type(exc).__name__})") from None
        with archive:
            members = archive.infolist()
            if len(members) > XLSX_MAX_MEMBERS:
                raise self.refuse(f"workbook has {len(members):,} parts, over the limit of {XLSX_MAX_MEMBERS:,}")
            unpacked = sum(m.file_size for m in members)
            if unpacked > XLSX_MAX_UNPACKED_BYTES:
                raise self.refuse(
                    f"workbook unpacks to {unpacked:,} bytes, over the limit of "
                    f"{XLSX_MAX_UNPACKED_BYTES:,}; save it as CSV"
                )
            try:
                worksheets, shared_strings = self._classify(archive)
                for member in members:
                    self._scan_member(
                        archive,
                        member,
                        streamed=member.filename in worksheets,
                        shared=member.filename in shared_strings,
                    )
            except ImportValidationError:
                raise
            except Exception as exc:  # zipfile, zlib, bz2, lzma and expat each have their own errors
                raise self.refuse(f"not a valid XLSX workbook ({type(exc).__name__})") from None
        return self.xml_bytes

    def _check_directory(self) -> None:
        """The zip's central directory is what :mod:`zipfile` turns into objects: bound it first."""
        content = self.content
        end = content.rfind(b"PK\x05\x06", max(0, len(content) - 65_557))
        if end < 0 or len(content) < end + 22:
            raise self.refuse("not a valid XLSX workbook (no zip directory)")
        entries, directory_size = struct.unpack_from("<HI", content, end + 10)
        locator = end - 20
        if locator >= 56 and content[locator : locator + 4] == b"PK\x06\x07":
            record = locator - 56  # where zipfile reads the zip64 record
            if content[record : record + 4] != b"PK\x06\x06":
                raise self.refuse("not a valid XLSX workbook (corrupt zip64 directory)")
            entries, directory_size = struct.unpack_from("<QQ", content, record + 32)
        if directory_size > XLSX_MAX_DIRECTORY_BYTES or entries > XLSX_MAX_MEMBERS:
            raise self.refuse(
                f"workbook has {entries:,} parts in a {directory_size:,}-byte directory, over the "
                f"limit of {XLSX_MAX_MEMBERS:,} parts"
            )

    def _small_xml(self, archive: zipfile.ZipFile, name: str) -> ElementTree.Element | None:
        try:
            member = archive.getinfo(name)
        except KeyError:
            return None
        if member.file_size > XLSX_MAX_PART_BYTES:
            raise self.refuse(
                f"part {name} unpacks to {member.file_size:,} bytes, over the limit of {XLSX_MAX_PART_BYTES:,}"
            )
        self._scan_member(archive, member, streamed=False, shared=False)  # no DTD, UTF-8: safe to parse whole
        return ElementTree.fromstring(archive.read(member))

    def _classify(self, archive: zipfile.ZipFile) -> tuple[set[str], set[str]]:
        """Which parts openpyxl streams (worksheets) and which hold the shared strings; every other part is
        read whole, so it must be small. Paths are resolved exactly as openpyxl resolves them."""
        types = self._small_xml(archive, "[Content_Types].xml")
        if types is None:
            raise self.refuse("not a valid XLSX workbook (no [Content_Types].xml)")
        shared, whole = set(), set()
        for element in types:
            if element.tag.rsplit("}", 1)[-1] == "Override":
                part = (element.get("PartName") or "").lstrip("/")
                content_type = element.get("ContentType")
                if content_type == _SHARED_STRINGS_TYPE:
                    shared.add(part)
                elif content_type != _WORKSHEET_TYPE:
                    whole.add(part)
        worksheets, other_targets = set(), set()
        for member in archive.infolist():
            if not member.filename.endswith(".rels"):
                continue
            root = self._small_xml(archive, member.filename)
            parent = posixpath.split(posixpath.dirname(member.filename))[0]
            for rel in root if root is not None else []:
                if rel.get("TargetMode") == "External":
                    continue
                target = rel.get("Target") or ""
                target = target[1:] if target.startswith("/") else posixpath.normpath(posixpath.join(parent, target))
                if (rel.get("Type") or "").endswith(_WORKSHEET_RELATIONSHIP):
                    worksheets.add(target)
                else:
                    other_targets.add(target)
        return worksheets - other_targets - whole - shared, shared

    def _scan_member(self, archive: zipfile.ZipFile, member: zipfile.ZipInfo, *, streamed: bool, shared: bool) -> None:
        """Stream one part through the checks (1 MiB at a time)."""
        name = member.filename
        if (name, member.header_offset) in self._scanned:
            return
        self._scanned.add((name, member.header_offset))
        with archive.open(member) as stream:
            buffer = stream.read(_READ_CHUNK)
            utf16 = _utf16_by_expat_rules(buffer)
            if utf16 is not None:  # expat would read it as UTF-16: XML we refuse, or binary it cannot parse
                if buffer[:4096].decode(utf16, errors="replace").lstrip("\ufeff \t\r\n")[:1] == "<":
                    raise self.refuse(f"part {name} is UTF-16 XML; a workbook's XML is UTF-8")
                return
            text = buffer[3:] if buffer.startswith(b"\xef\xbb\xbf") else buffer
            if not text.lstrip()[:1] == b"<":
                return  # not XML (an image, a printer setting): openpyxl never parses it
            declared = _XML_DECLARED_ENCODING.match(text)
            if declared and declared.group(1).lower() not in (b"utf-8", b"utf8", b"us-ascii", b"ascii"):
                raise self.refuse(
                    f"part {name} is encoded as {declared.group(1).decode('ascii', 'replace')}, not UTF-8"
                )
            self.xml_bytes += member.file_size
            limit = (
                XLSX_MAX_UNPACKED_BYTES
                if streamed
                else XLSX_MAX_SHARED_STRINGS_BYTES
                if shared
                else XLSX_MAX_PART_BYTES
            )
            if member.file_size > limit:
                what = "the shared strings" if shared else "part"
                raise self.refuse(f"{what} {name} unpacks to {member.file_size:,} bytes, over the limit of {limit:,}")
            rows = _RowOrder(self, name)
            while True:
                more = stream.read(_READ_CHUNK)
                cut = buffer.rfind(b"<") if more else len(buffer)
                if cut < 0:
                    cut = 0
                self._scan_text(buffer, cut, name, rows)
                if not more:
                    break
                buffer = buffer[cut:] + more

    def _scan_text(self, buffer: bytes, cut: int, name: str, rows: _RowOrder) -> None:
        """Check ``buffer[:cut]``, which ends just before a '<' (or at the end of the part)."""
        if len(buffer) - cut > XLSX_MAX_XML_RUN:
            raise self.refuse(
                f"part {name} holds more than {XLSX_MAX_XML_RUN:,} bytes without markup "
                "(a cell or attribute that long is not a price)"
            )
        if not cut:
            return
        data = np.frombuffer(buffer, dtype=np.uint8)
        opens = np.flatnonzero(data[:cut] == _LT)
        bounds = np.concatenate(([0], opens, [cut]))
        if int(np.diff(bounds).max()) > XLSX_MAX_XML_RUN:
            raise self.refuse(
                f"part {name} holds more than {XLSX_MAX_XML_RUN:,} bytes without markup "
                "(a cell or attribute that long is not a price)"
            )
        following = data[np.minimum(opens + 1, len(data) - 1)]
        self.elements += int(np.count_nonzero((following != _SLASH) & (following != _QUESTION) & (following != _BANG)))
        if self.elements > XLSX_MAX_ELEMENTS:
            raise self.refuse(
                f"workbook has more than {XLSX_MAX_ELEMENTS:,} XML elements (about four million cells); save it as CSV"
            )
        body = buffer[:cut]
        if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
            raise self.refuse(f"part {name} declares a DTD, which a workbook never needs")
        rows.scan(body)


class _RowOrder:
    """Rows of a worksheet must be numbered upwards and cells left to right, as Excel writes them:
    openpyxl's streaming reader silently skips a row numbered at or below an earlier one and a cell
    to the left of an earlier cell of its row (and, without a dimension, beyond its row's last cell)."""

    def __init__(self, owner: _XlsxScan, name: str) -> None:
        self.owner = owner
        self.name = name
        self.row = 0
        self.column = 0
        self.in_row = False

    def refuse(self, problem: str) -> ImportValidationError:
        return self.owner.refuse(f"part {self.name}: {problem}")

    def scan(self, body: bytes) -> None:
        for match in _ROW_OR_CELL.finditer(body):
            tag, rest = match.group(1), match.group(2)
            head, closed, _text = rest.rpartition(b">")  # an attribute value may hold '>'; text may follow
            if not closed or b"'" in head:  # Excel quotes with '"': a "'" could hide an r="..."
                raise self.refuse(f"unexpected markup in a <{tag.decode()}> tag")
            reference = _R_ATTRIBUTE.search(b" " + head)
            if tag == b"row":
                number = self.row + 1
                if reference is not None:
                    try:
                        number = int(reference.group(1))
                    except ValueError:
                        raise self.refuse(f"row number {reference.group(1)[:20]!r} is not a whole number") from None
                if number < 1:
                    raise self.refuse(f"row number {number} is not a row (rows start at 1)")
                if number <= self.row:
                    raise self.refuse(f"row {number} comes after row {self.row} (rows must be in order)")
                if number > XLSX_MAX_ROW:
                    raise self.refuse(f"row {number:,} is beyond Excel's last row {XLSX_MAX_ROW:,}")
                self.row, self.column, self.in_row = number, 0, True
                continue
            if not self.in_row:
                raise self.refuse("a cell outside any row")
            column = self.column + 1
            if reference is not None:
                letters = _CELL_REFERENCE.match(reference.group(1))
                if letters is None:
                    raise self.refuse(f"cell reference {reference.group(1)[:20]!r} is not valid")
                column = _column_number(letters.group(1))
            if column <= self.column:
                raise self.refuse(f"row {self.row}: cells are not in column order")
            if column > XLSX_MAX_COLUMN:
                raise self.refuse(f"row {self.row}: a cell beyond Excel's last column XFD")
            self.column = column


def _read_xlsx(content: bytes, filename: str, builder: _GridBuilder) -> None:
    """Feed the first worksheet's rows to ``builder``: in this process when the workbook's XML is small,
    else in a child process capped at :data:`XLSX_READER_MEMORY_BYTES` and :data:`XLSX_READER_CPU_SECONDS`."""
    xml_bytes = _XlsxScan(content, filename).check()
    try:
        if xml_bytes <= XLSX_IN_PROCESS_BYTES:
            for number, cells in xlsx_rows.sheet_rows(content, max_cell_chars=MAX_CELL_CHARS):
                builder.add(number, cells)
        else:
            _read_xlsx_in_child(content, filename, builder)
    except xlsx_rows.SheetError as exc:
        raise _refuse_file(filename, exc.problem, exc.row, exc.column, exc.value) from None


def _read_xlsx_in_child(content: bytes, filename: str, builder: _GridBuilder) -> None:
    """Run :mod:`.xlsx_rows` as a script under OS limits and read its CSV records as they come."""
    command = [
        sys.executable,
        "-I",
        str(Path(xlsx_rows.__file__)),
        str(XLSX_READER_MEMORY_BYTES),
        str(XLSX_READER_CPU_SECONDS),
        str(MAX_CELL_CHARS),
    ]
    environment = {"PATH": os.environ.get("PATH", ""), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    try:
        child = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=environment
        )
    except OSError as exc:
        raise _refuse_file(
            filename, f"the workbook reader could not be started ({exc.strerror or exc}); save the file as CSV"
        ) from None
    unreadable = False
    try:
        assert child.stdin is not None and child.stdout is not None
        try:
            child.stdin.write(content)  # the child reads all of stdin before it writes anything
            child.stdin.close()
        except BrokenPipeError:
            pass  # it died at once; its exit code tells
        for record in csv.reader(io.TextIOWrapper(child.stdout, encoding="utf-8", newline="")):
            if record and record[0] == "!":
                row, column, problem, value = (record[1:] + ["", "", "", ""])[:4]
                raise xlsx_rows.SheetError(
                    problem or "not a valid XLSX workbook",
                    int(row) if row.isdigit() else None,
                    column or None,
                    value or None,
                )
            builder.add(int(record[0]), record[1:])
        code = child.wait()
    except (csv.Error, ValueError, UnicodeDecodeError):  # output cut short by a limit, or not the protocol
        unreadable = True
        child.kill()
        code = child.wait()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    if code != 0 or unreadable:
        raise _refuse_file(
            filename,
            f"workbook could not be read within {XLSX_READER_MEMORY_BYTES >> 20} MB of memory "
            f"and {XLSX_READER_CPU_SECONDS} s of CPU (its XML expands too far); save it as CSV",
        )


# --------------------------------------------------------------------------- cell parsing
_OK, _BLANK, _BAD, _EARLY, _FUTURE = range(5)


def _parse_dates(text: pd.Series, today: date) -> tuple[np.ndarray, np.ndarray]:
    """ISO text -> ``(days, status)``: ``datetime64[D]`` (NaT unless OK) and one of _OK/_BLANK/_BAD/_EARLY/_FUTURE.

    Parsed field by field with Arrow and numpy (no Python object per cell, no pandas Timestamp), so a year such
    as 0001 or 9999 is judged on its digits and never meets pandas' nanosecond range; the time, when present,
    must be a valid time of day and is then dropped. A long file repeats each date once per symbol, so the
    distinct texts are parsed when they are few.
    """
    codes, uniques = pd.factorize(text)
    if 2 * len(uniques) <= len(text):
        days, status = _parse_dates(pd.Series(uniques, dtype="str"), today)
        return days[codes], status[codes]
    del codes, uniques
    stripped = pa.array(text.str.strip())
    blank = pc.equal(stripped, "").to_numpy(zero_copy_only=False)
    iso = pc.match_substring_regex(stripped, "^" + _ISO_DATE + "$").to_numpy(zero_copy_only=False)
    digits = pc.if_else(pa.array(iso), stripped, "1970-01-01")

    def field(start: int, stop: int) -> np.ndarray:
        numbers: np.ndarray = pc.cast(pc.utf8_slice_codeunits(digits, start, stop), pa.int32()).to_numpy(
            zero_copy_only=False
        )
        return numbers

    year, month, day = field(0, 4), field(5, 7), field(8, 10)
    del stripped
    real = iso & (month >= 1) & (month <= 12) & (day >= 1) & (day <= 31)
    months = np.where(real, (year.astype(np.int64) - 1970) * 12 + month - 1, 0).astype("datetime64[M]")
    days = months.astype("datetime64[D]") + np.where(real, day - 1, 0).astype("timedelta64[D]")
    real &= days.astype("datetime64[M]") == months  # 2024-02-30 rolls into March: not a date
    early = real & (days < np.datetime64(MIN_DATE, "D"))
    future = real & (days > np.datetime64(today, "D"))
    status = np.full(len(text), _BAD, dtype=np.int8)
    status[blank] = _BLANK
    status[early] = _EARLY
    status[future] = _FUTURE
    status[real & ~early & ~future] = _OK
    days[status != _OK] = np.datetime64("NaT")
    return days, status


def _parse_numbers(text: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Numeric text -> ``(float64 values, blank)``; garbage is NaN (``inf`` stays inf: callers refuse it)."""
    stripped = text.str.strip()
    blank = (stripped == "").to_numpy(dtype=bool)
    values = pd.to_numeric(stripped.where(~blank), errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    return values, blank


def _number_problems(
    found: _Problems,
    values: np.ndarray,
    blank: np.ndarray,
    rows: np.ndarray,
    text: pd.Series,
    column: str,
    name: str,
    bounds: tuple[float, float],
    *,
    required: bool,
) -> np.ndarray:
    """Record the problems of one numeric column; returns the mask of usable values."""
    nan = np.isnan(values)
    infinite = np.isinf(values)
    if required:
        found.add_at(np.flatnonzero(blank), rows, column, f"missing {name}")
    found.add_at(np.flatnonzero(nan & ~blank), rows, column, f"{name} is not a number", text)
    found.add_at(np.flatnonzero(infinite), rows, column, f"{name} is not finite", text)
    finite = ~nan & ~infinite
    with np.errstate(invalid="ignore"):
        non_positive = finite & (values <= 0)
        outside = finite & ~non_positive & ((values < bounds[0]) | (values > bounds[1]))
    found.add_at(np.flatnonzero(non_positive), rows, column, f"{name} must be greater than zero", text)
    found.add_at(
        np.flatnonzero(outside),
        rows,
        column,
        f"{name} is outside the accepted range {bounds[0]:g} to {bounds[1]:g}",
        text,
    )
    usable: np.ndarray = finite & ~non_positive & ~outside
    return usable


def _date_problems(found: _Problems, status: np.ndarray, rows: np.ndarray, text: pd.Series, today: date) -> None:
    found.add_at(np.flatnonzero(status == _BLANK), rows, "date", "missing date")
    found.add_at(np.flatnonzero(status == _BAD), rows, "date", "unparsable date (expected YYYY-MM-DD)", text)
    found.add_at(np.flatnonzero(status == _EARLY), rows, "date", f"date is before {MIN_DATE}", text)
    found.add_at(np.flatnonzero(status == _FUTURE), rows, "date", f"date is in the future (after {today})", text)


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
    for at in repeated[:MAX_PROBLEMS]:
        record, original = chosen[at], chosen[first[at]]
        name = records.symbols[records.symbol[record]]
        found.add(
            int(rows[records.row_pos[record]]),
            name if layout == "wide" else "date",
            f"duplicate {name} on {days[records.row_pos[record]]} (first at row {int(rows[records.row_pos[original]])})",
        )
    found.more += max(0, len(repeated) - MAX_PROBLEMS)


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
