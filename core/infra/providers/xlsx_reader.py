"""An uploaded XLSX workbook into the grid of cells: its raw bytes checked first, then its rows read safely.

:class:`_XlsxScan` (with :class:`_RowOrder`) checks the zip container and every XML part against the ``XLSX_*``
bounds before openpyxl sees anything; :func:`_read_xlsx` then reads the first worksheet through :mod:`.xlsx_rows`,
in this process when its XML is small, else in a child process capped by the operating system
(:func:`_read_xlsx_in_child`). The bounds are described in :mod:`.files`, which re-exports them.
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
from pathlib import Path
from xml.etree import ElementTree

import numpy as np

from core.errors import ImportValidationError
from core.infra.providers import file_grid, xlsx_rows
from core.infra.providers.file_grid import _GridBuilder, _refuse_file

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
_READ_CHUNK = 1 << 20


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
            for number, cells in xlsx_rows.sheet_rows(content, max_cell_chars=file_grid.MAX_CELL_CHARS):
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
        str(file_grid.MAX_CELL_CHARS),
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
