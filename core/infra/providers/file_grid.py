"""The price file as a grid of text cells: the bounds enforced while it is read, the problems found, the CSV reader.

:class:`_GridBuilder` takes rows of text from either reader (CSV here, XLSX in :mod:`.xlsx_reader`) and refuses the
file as soon as it breaks :data:`MAX_ROWS`, :data:`MAX_CELLS`, :data:`MAX_TEXT_CHARS` or :data:`MAX_CELL_CHARS`;
:class:`_Problems` collects the row problems of every later check (the first :data:`MAX_PROBLEMS`). These limits are
defined here and re-exported by :mod:`.files`; the other modules read them through this one, so a test patches them
here.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from core.errors import ImportValidationError, RowProblem

MAX_ROWS = 1_048_576  # Excel's own row limit
MAX_CELLS = 4_000_000  # data rows x header width
MAX_CELL_CHARS = 100  # no date, number or symbol needs more
MAX_TEXT_CHARS = 40_000_000  # all cell text together
MAX_PROBLEMS = 1_000  # problems listed; the rest are counted
_CHUNK_CELLS = 1 << 16  # cells held as Python strings before moving them to Arrow


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
