"""XLSX rendering: an "About" sheet, then one sheet per table with raw numbers and number formats.

Percentages are stored as fractions with a ``0.00%`` format (so a formula sees 0.0123, the eye 1.23%),
ratios ``0.00``, levels ``#,##0.00``, dates as Excel dates; header rows are frozen and filtered; column
widths follow the content (8 to 48 characters). Missing values are empty cells. Every text cell is
neutralised against formula injection (:mod:`.formula_guard`). Written with XlsxWriter.
"""

from __future__ import annotations

import datetime as dt
import io
import math
from typing import Any

import pandas as pd
import xlsxwriter

from core.services.reporting.document import Column, ReportDocument, Table, fmt, is_missing
from core.services.reporting.formula_guard import neutralise

NUMBER_FORMATS = {
    "pct": "0.00%",
    "ratio": "0.00",
    "level": "#,##0.00",
    "int": "#,##0",
    "year": "0",
    "date": "yyyy-mm-dd",
}
MIN_WIDTH, MAX_WIDTH = 8, 48


def _sheet_name(name: str, used: set[str]) -> str:
    base = "".join(ch for ch in name if ch not in "[]:*?/\\")[:31] or "Sheet"
    candidate, n = base, 2
    while candidate.lower() in used:
        suffix = f" {n}"
        candidate, n = base[: 31 - len(suffix)] + suffix, n + 1
    used.add(candidate.lower())
    return candidate


def _as_datetime(value: Any) -> dt.datetime | None:
    if isinstance(value, pd.Timestamp):
        moment: dt.datetime = value.to_pydatetime()
        return moment.replace(tzinfo=None)
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    return None


def _column_values(frame: pd.DataFrame, col: Column, kind: str) -> list[Any]:
    """The column as Python values: floats (NaN when missing) for numbers, datetimes / None for dates."""
    if col.key not in frame.columns:
        return [None] * len(frame)
    series = frame[col.key]
    if kind in ("pct", "ratio", "level", "int", "year"):
        numbers: list[Any] = pd.to_numeric(series, errors="coerce").astype(float).tolist()
        return numbers
    if kind == "date":
        return [
            None if v is pd.NaT or v is None else _as_datetime(v)
            for v in pd.to_datetime(series, errors="coerce").tolist()
        ]
    values: list[Any] = series.tolist()
    return values


def _text(ws: Any, row: int, column: int, text: str, cell_format: Any = None) -> None:
    """Every text cell of the workbook is written here, neutralised against formula injection."""
    ws.write_string(row, column, neutralise(text), cell_format)


def _write_table(wb: xlsxwriter.Workbook, ws: Any, table: Table, formats: dict[str, Any]) -> None:
    cols: list[Column] = table.columns
    frame = table.frame
    widths = [len(c.label) + 2 for c in cols]
    for j, col in enumerate(cols):
        _text(ws, 0, j, col.label, formats["header"])
    units = frame["unit"].tolist() if "unit" in frame.columns else None
    isfinite = math.isfinite
    for j, col in enumerate(cols):
        if col.kind == "unit":
            kinds = [
                "pct" if units is not None and u == "fraction" else "ratio" for u in (units or [None] * len(frame))
            ]
            values = _column_values(frame, col, "ratio")
        else:
            kinds = None
            values = _column_values(frame, col, col.kind)
        kind = col.kind
        write_number, write_datetime = ws.write_number, ws.write_datetime
        for i, value in enumerate(values):
            row = i + 1
            if kinds is not None:
                kind = kinds[i]
            if kind in ("pct", "ratio", "level", "int", "year"):
                if value is not None and isfinite(value):
                    write_number(row, j, value, formats[kind])
                    if i < 200:
                        widths[j] = max(widths[j], len(fmt(value, kind)) + 2)
                continue
            if kind == "date":
                if value is not None:
                    write_datetime(row, j, value, formats["date"])
                    widths[j] = max(widths[j], 11)
                continue
            if is_missing(value):
                continue
            text = str(value)
            _text(ws, row, j, text, formats["text"])
            if i < 200:
                widths[j] = max(widths[j], len(text) + 1)
    for j, w in enumerate(widths):
        ws.set_column(j, j, max(MIN_WIDTH, min(MAX_WIDTH, w)))
    ws.freeze_panes(1, 1 if len(cols) > 8 else 0)
    if len(frame) and cols:
        ws.autofilter(0, 0, len(frame), len(cols) - 1)


def _write_about(ws: Any, doc: ReportDocument, formats: dict[str, Any]) -> None:
    ws.set_column(0, 0, 22)
    ws.set_column(1, 1, 90)
    ws.set_column(2, 2, 12)
    _text(ws, 0, 0, f"AutoIndex — {doc.title}", formats["title"])
    r = 2
    for label, value in doc.meta:
        _text(ws, r, 0, label, formats["bold"])
        _text(ws, r, 1, value, formats["wrap"])
        r += 1
    if doc.demo_notice:
        r += 1
        _text(ws, r, 0, "Notice", formats["notice"])
        _text(ws, r, 1, doc.demo_notice, formats["notice_wrap"])
        r += 1
    for warning in doc.warnings:
        _text(ws, r, 0, "Warning", formats["bold"])
        _text(ws, r, 1, warning, formats["wrap"])
        r += 1
    r += 1
    _text(ws, r, 0, "Methodology", formats["section"])
    r += 1
    for rule, text in doc.methodology:
        _text(ws, r, 0, rule, formats["bold"])
        _text(ws, r, 1, text, formats["wrap"])
        r += 1
    r += 1
    _text(ws, r, 0, "Metric definitions", formats["section"])
    _text(ws, r, 2, "Unit", formats["bold"])
    r += 1
    for label, formula, unit in doc.definitions:
        _text(ws, r, 0, label, formats["bold"])
        _text(ws, r, 1, formula, formats["wrap"])
        _text(ws, r, 2, unit)
        r += 1
    r += 1
    _text(ws, r, 0, "Conventions", formats["section"])
    _text(
        ws,
        r + 1,
        1,
        "Daily simple returns; 252 trading days a year; risk-free rate 0. Percent cells hold "
        "fractions (0.05 = 5%). Empty cells: undefined (too little data).",
        formats["wrap"],
    )
    _text(ws, r + 3, 0, "Sheets", formats["section"])
    for k, table in enumerate(doc.export_tables):
        _text(ws, r + 4 + k, 0, table.name, formats["bold"])
        _text(ws, r + 4 + k, 1, table.title + (f" — {table.note}" if table.note else ""), formats["wrap"])


def render_xlsx(doc: ReportDocument) -> bytes:
    buffer = io.BytesIO()
    wb = xlsxwriter.Workbook(buffer, {"in_memory": True, "nan_inf_to_errors": True, "remove_timezone": True})
    wb.set_properties(
        {
            "title": f"{doc.title} — {doc.config_label}",
            "author": doc.generated_by,
            "company": "AutoIndex",
            "comments": doc.demo_notice or "",
        }
    )
    formats: dict[str, Any] = {k: wb.add_format({"num_format": v}) for k, v in NUMBER_FORMATS.items()}
    formats.update(
        {
            "text": wb.add_format({}),
            "header": wb.add_format(
                {
                    "bold": True,
                    "bg_color": "#1F3A5F",
                    "font_color": "#FFFFFF",
                    "text_wrap": True,
                    "valign": "top",
                    "border": 1,
                }
            ),
            "title": wb.add_format({"bold": True, "font_size": 14}),
            "section": wb.add_format({"bold": True, "font_size": 12, "font_color": "#1F3A5F"}),
            "bold": wb.add_format({"bold": True, "valign": "top"}),
            "wrap": wb.add_format({"text_wrap": True, "valign": "top"}),
            "notice": wb.add_format({"bold": True, "font_color": "#B00020", "valign": "top"}),
            "notice_wrap": wb.add_format({"bold": True, "font_color": "#B00020", "text_wrap": True, "valign": "top"}),
        }
    )
    used: set[str] = set()
    _write_about(wb.add_worksheet(_sheet_name("About", used)), doc, formats)
    for table in doc.export_tables:
        _write_table(wb, wb.add_worksheet(_sheet_name(table.name, used)), table, formats)
    wb.close()
    return buffer.getvalue()
