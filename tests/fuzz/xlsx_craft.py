"""Hand-made XLSX files for the import tests: the raw parts of a minimal workbook, written with or without
the lies a hostile file tells (a wrong ``<dimension>``, a declared size that is not the real one, a member
that inflates to gigabytes). Building the parts directly is ~100x faster than openpyxl, which the fuzz needs.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from xml.sax.saxutils import escape

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
CT = "application/vnd.openxmlformats-officedocument.spreadsheetml"

CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    f'<Override PartName="/xl/workbook.xml" ContentType="{CT}.sheet.main+xml"/>'
    f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{CT}.worksheet+xml"/>'
    f'<Override PartName="/xl/styles.xml" ContentType="{CT}.styles+xml"/>'
    f'<Override PartName="/xl/sharedStrings.xml" ContentType="{CT}.sharedStrings+xml"/>'
    "</Types>"
).encode()
ROOT_RELS = (
    f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{PKG_RELS}">'
    f'<Relationship Id="rId1" Type="{RELS}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
).encode()
WORKBOOK = (
    f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{MAIN}" xmlns:r="{RELS}">'
    '<sheets><sheet name="Prices" sheetId="1" r:id="rId1"/></sheets></workbook>'
).encode()
WORKBOOK_RELS = (
    f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{PKG_RELS}">'
    f'<Relationship Id="rId1" Type="{RELS}/worksheet" Target="worksheets/sheet1.xml"/>'
    f'<Relationship Id="rId2" Type="{RELS}/styles" Target="styles.xml"/>'
    f'<Relationship Id="rId3" Type="{RELS}/sharedStrings" Target="sharedStrings.xml"/>'
    "</Relationships>"
).encode()
#: Style 0 is General, style 1 a date (built-in format 14), so a number in a style-1 cell is a real date cell.
STYLES = (
    f'<?xml version="1.0" encoding="UTF-8"?><styleSheet xmlns="{MAIN}">'
    '<fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="1"><fill><patternFill patternType="none"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="14" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs><cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
).encode()


def column_letters(number: int) -> str:
    letters = ""
    while number:
        number, rest = divmod(number - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def cell_xml(reference: str, value: object) -> str:
    """One ``<c>``: str -> inline string, float/int -> number, ("date", serial) -> date-styled number,
    ("shared", index) -> shared string, ("raw", xml) -> as given."""
    if isinstance(value, tuple) and value[0] == "date":
        return f'<c r="{reference}" s="1"><v>{value[1]}</v></c>'
    if isinstance(value, tuple) and value[0] == "shared":
        return f'<c r="{reference}" t="s"><v>{value[1]}</v></c>'
    if isinstance(value, tuple) and value[0] == "raw":
        return value[1]
    if isinstance(value, bool):
        return f'<c r="{reference}" t="b"><v>{int(value)}</v></c>'
    if isinstance(value, (int, float)):
        return f'<c r="{reference}"><v>{value!r}</v></c>'
    return f'<c r="{reference}" t="inlineStr"><is><t xml:space="preserve">{escape(str(value))}</t></is></c>'


def sheet_xml(
    rows: list[list[object]],
    *,
    dimension: str | None = None,
    row_numbers: list[int] | None = None,
    before_data: str = "",
) -> bytes:
    """A worksheet holding ``rows`` (row ``i`` numbered ``row_numbers[i]``, default 1, 2, ...)."""
    numbers = row_numbers or list(range(1, len(rows) + 1))
    body = "".join(
        f'<row r="{n}">'
        + "".join(cell_xml(f"{column_letters(j + 1)}{n}", v) for j, v in enumerate(row) if v is not None)
        + "</row>"
        for n, row in zip(numbers, rows)
    )
    dim = f'<dimension ref="{dimension}"/>' if dimension else ""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{MAIN}">{dim}{before_data}'
        f"<sheetData>{body}</sheetData></worksheet>"
    ).encode()


def shared_strings_xml(strings: list[str]) -> bytes:
    items = "".join(f"<si><t>{escape(s)}</t></si>" for s in strings)
    return f'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{MAIN}" count="{len(strings)}">{items}</sst>'.encode()


def workbook_parts(sheet: bytes, shared: bytes | None = None) -> dict[str, bytes]:
    return {
        "[Content_Types].xml": CONTENT_TYPES,
        "_rels/.rels": ROOT_RELS,
        "xl/workbook.xml": WORKBOOK,
        "xl/_rels/workbook.xml.rels": WORKBOOK_RELS,
        "xl/styles.xml": STYLES,
        "xl/sharedStrings.xml": shared if shared is not None else shared_strings_xml([]),
        "xl/worksheets/sheet1.xml": sheet,
    }


def zip_parts(parts: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def xlsx(rows: list[list[object]], **sheet_options) -> bytes:
    """A whole workbook holding ``rows`` on its only sheet."""
    return zip_parts(workbook_parts(sheet_xml(rows, **sheet_options)))


# --------------------------------------------------------------------------- zip files written by hand
def _deflate_pieces(prefix: bytes, repeated: bytes, times: int, suffix: bytes) -> tuple[list[bytes], int, int]:
    """Raw deflate of prefix + repeated*times + suffix, compressing ``repeated`` once: after a full flush the
    compressor references nothing earlier, so that piece is valid again at any later point of the stream."""
    head = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = head.compress(prefix) + head.flush(zlib.Z_FULL_FLUSH)
    middle = zlib.compressobj(9, zlib.DEFLATED, -15)
    piece = middle.compress(repeated) + middle.flush(zlib.Z_FULL_FLUSH)
    tail = zlib.compressobj(9, zlib.DEFLATED, -15)
    last = tail.compress(suffix) + tail.flush(zlib.Z_FINISH)
    crc = zlib.crc32(prefix)
    for _ in range(times):
        crc = zlib.crc32(repeated, crc)
    crc = zlib.crc32(suffix, crc)
    size = len(prefix) + len(repeated) * times + len(suffix)
    return [first] + [piece] * times + [last], crc, size


def raw_zip(members: list[tuple[str, list[bytes], int, int]], *, declared_sizes: dict[str, int] | None = None) -> bytes:
    """A zip of already-deflated members ``(name, compressed_pieces, crc, size)``; ``declared_sizes`` lets a
    member claim an unpacked size that is not its real one."""
    out = io.BytesIO()
    directory = []
    for name, pieces, crc, size in members:
        size = (declared_sizes or {}).get(name, size)
        compressed = sum(len(p) for p in pieces)
        offset = out.tell()
        encoded = name.encode()
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, crc, compressed, size, len(encoded), 0))
        out.write(encoded)
        for p in pieces:
            out.write(p)
        directory.append(
            struct.pack(
                "<IHHHHHHIIIHHHHHII",
                0x02014B50,
                20,
                20,
                0,
                8,
                0,
                0x21,
                crc,
                compressed,
                size,
                len(encoded),
                0,
                0,
                0,
                0,
                0,
                offset,
            )
            + encoded
        )
    start = out.tell()
    for entry in directory:
        out.write(entry)
    out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(directory), len(directory), out.tell() - start, start, 0))
    return out.getvalue()


def _plain(name: str, data: bytes) -> tuple[str, list[bytes], int, int]:
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    return name, [packer.compress(data) + packer.flush()], zlib.crc32(data), len(data)


def bomb_xlsx(cell_bytes: int = 2 << 30, *, declared_size: int | None = None) -> bytes:
    """A ~2 MB workbook whose sheet holds one inline-string cell of ``cell_bytes`` 'A's (default 2 GiB) below a
    normal header row. ``declared_size`` makes the sheet claim another unpacked size in the zip directory."""
    chunk = b"A" * (1 << 20)
    prefix = (
        f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{MAIN}"><sheetData>'
        '<row r="1"><c r="A1" t="inlineStr"><is><t>date</t></is></c>'
        '<c r="B1" t="inlineStr"><is><t>AAPL</t></is></c></row>'
        '<row r="2"><c r="A2" t="inlineStr"><is><t>2024-01-02</t></is></c>'
        '<c r="B2" t="inlineStr"><is><t>'
    ).encode()
    suffix = b"</t></is></c></row></sheetData></worksheet>"
    pieces, crc, size = _deflate_pieces(prefix, chunk, cell_bytes // len(chunk), suffix)
    parts = workbook_parts(b"")
    members = [_plain(name, data) for name, data in parts.items() if name != "xl/worksheets/sheet1.xml"]
    members.append(("xl/worksheets/sheet1.xml", pieces, crc, size))
    declared = {"xl/worksheets/sheet1.xml": declared_size} if declared_size is not None else None
    return raw_zip(members, declared_sizes=declared)


def huge_shared_strings_xlsx(sheet: bytes, unpacked_bytes: int = 9 << 20) -> bytes:
    """A small workbook whose shared strings part really unpacks to ``unpacked_bytes`` (one string repeated)."""
    prefix = f'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{MAIN}">'.encode()
    item = b"<si><t>AAPL</t></si>" * 52_429  # ~1 MiB
    pieces, crc, size = _deflate_pieces(prefix, item, max(1, unpacked_bytes // len(item)), b"</sst>")
    parts = workbook_parts(sheet)
    members = [_plain(name, data) for name, data in parts.items() if name != "xl/sharedStrings.xml"]
    members.append(("xl/sharedStrings.xml", pieces, crc, size))
    return raw_zip(members)
