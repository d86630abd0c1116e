"""The rows of an XLSX workbook's first worksheet as text, read with openpyxl -- here, or in a capped child process.

:func:`sheet_rows` is the only place that turns a worksheet into rows. :mod:`.xlsx_reader` calls it in-process for a
small workbook, and for a large one runs this file as a script in a child process whose address space and CPU
time are limited by the operating system::

    python -I xlsx_rows.py MEMORY_BYTES CPU_SECONDS MAX_CELL_CHARS < workbook.xlsx > rows.csv

The child writes one CSV record per non-blank row (``row_number,cell,cell,...``), or ``!,row,column,problem,value``
when the sheet is refused, and exits 0; any other exit (the memory or CPU limit was hit) is a refusal too.

Why a child process: openpyxl's streaming (read-only) reader keeps every XML element it does not recognise
until the end of the sheet, at some 100-400 bytes each, so a few kilobytes of compressed markup can expand to
gigabytes. Bounds on the raw bytes (see :mod:`.xlsx_reader`) keep a small workbook harmless in-process; a large one is
read where the kernel enforces the limit (RLIMIT_AS), so no workbook can take more memory than that, whatever
its XML holds.

Only the standard library and openpyxl are imported here, so the child starts in about 0.1 s.
"""

from __future__ import annotations

import csv
import io
import sys
import warnings
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

#: Excel's last row; a sheet claiming more is refused.
MAX_ROW = 1_048_576

# openpyxl warns once per odd cell (a date serial outside Excel's calendar) and per workbook without a default
# style; a hostile file would flood the log. The cells themselves are refused as row errors.
warnings.filterwarnings("ignore", message=r"Cell .* is marked as a date", category=UserWarning, module=r"openpyxl")
warnings.filterwarnings(
    "ignore", message=r"Workbook contains no default style", category=UserWarning, module=r"openpyxl"
)


class SheetError(Exception):
    """The worksheet cannot be read; ``row`` / ``column`` / ``value`` locate the problem when known."""

    def __init__(self, problem: str, row: int | None = None, column: str | None = None, value: Any = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.row = row
        self.column = column
        self.value = value


def cell_text(value: Any) -> str:
    """A cell as the text a CSV would hold: dates in ISO form, numbers at full precision, booleans TRUE/FALSE.

    A time or a duration keeps its own text (it is not a date); an Excel error (including a date serial
    outside Excel's calendar, which openpyxl reads as ``#VALUE!``) keeps the error's text.
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    return str(value)


def sheet_rows(content: bytes, *, max_cell_chars: int) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(row_number, cells)`` for every non-blank row of the first worksheet, trailing blanks dropped.

    The whole sheet is read whatever its ``<dimension ref>`` says: openpyxl's read-only mode stops at the
    dimension a file claims, and :meth:`ReadOnlyWorksheet.reset_dimensions` is its documented remedy.

    Raises:
        SheetError: not a workbook, no worksheet, an unreadable sheet, a row beyond :data:`MAX_ROW`, or a cell
            longer than ``max_cell_chars``.
    """
    import openpyxl

    try:
        workbook = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True, keep_links=False)
    except MemoryError:
        raise
    except Exception as exc:  # openpyxl raises a zoo of errors on corrupt files
        raise SheetError(f"not a valid XLSX workbook ({type(exc).__name__})") from None
    try:
        if not workbook.worksheets:
            raise SheetError("workbook has no worksheet")
        sheet = workbook.worksheets[0]
        sheet.reset_dimensions()
        rows = sheet.iter_rows(values_only=True)
        number = 0
        while True:
            try:
                values = next(rows)
            except StopIteration:
                return
            except MemoryError:
                raise
            except Exception as exc:  # a corrupt sheet fails inside openpyxl's parser
                raise SheetError(f"not a valid XLSX workbook: the sheet is unreadable ({type(exc).__name__})") from None
            number += 1
            if number > MAX_ROW:
                raise SheetError(f"sheet has more than {MAX_ROW:,} rows")
            if not values:
                continue
            cells = [cell_text(v) for v in values]
            while cells and not cells[-1].strip():
                cells.pop()
            if not cells:
                continue
            longest = max(map(len, cells))
            if longest > max_cell_chars:
                position = next(i for i, c in enumerate(cells) if len(c) == longest)
                raise SheetError(
                    f"cell holds {longest:,} characters, over the limit of {max_cell_chars}",
                    number,
                    f"column {position + 1}",
                    cells[position][:40] + "…",
                )
            yield number, cells
    finally:
        workbook.close()


def main(argv: list[str]) -> int:
    """The child process: limits first, then the workbook from stdin, rows to stdout (see the module docstring)."""
    import resource

    memory, cpu, max_cell_chars = (int(a) for a in argv[1:4])
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    warnings.simplefilter("ignore")  # openpyxl warns once per odd cell; nobody reads this process's stderr
    content = sys.stdin.buffer.read()
    out = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="")
    writer = csv.writer(out, lineterminator="\n")
    try:
        for number, cells in sheet_rows(content, max_cell_chars=max_cell_chars):
            writer.writerow([number, *cells])
    except SheetError as exc:
        writer.writerow(
            [
                "!",
                "" if exc.row is None else exc.row,
                exc.column or "",
                exc.problem,
                "" if exc.value is None else str(exc.value),
            ]
        )
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
