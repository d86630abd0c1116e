"""CSV rendering: a zip with one CSV per table (machine keys as headers, raw values) and a README.

Numbers are written at full precision (fractions, not percent); dates as YYYY-MM-DD; missing values
are empty; text cells that a spreadsheet would run as a formula are neutralised (``formula_guard``).
``README.txt`` carries the title, period, source (with the synthetic-data notice), the
methodology and the metric definitions, so the files stand on their own.
"""

from __future__ import annotations

import io
import zipfile

from core.services.reporting.document import ReportDocument, Table
from core.services.reporting.formula_guard import neutralise_frame


def table_csv(table: Table) -> str:
    keys = [c.key for c in table.columns]
    frame = neutralise_frame(table.frame.reindex(columns=keys))
    # CRLF (RFC 4180) makes the writer quote any text holding a CR or LF; with "\n" alone a CR inside a name
    # is written bare, and a spreadsheet starts a new row (and a new, unneutralised cell) there.
    text: str = frame.to_csv(index=False, date_format="%Y-%m-%d", lineterminator="\r\n")
    return text


def readme(doc: ReportDocument) -> str:
    lines = [f"AutoIndex - {doc.title}", ""]
    lines += [f"{label}: {value}" for label, value in doc.meta]
    if doc.demo_notice:
        lines += ["", "NOTICE: " + doc.demo_notice]
    lines += [f"Warning: {w}" for w in doc.warnings]
    lines += ["", "Files", "-----"]
    for table in doc.export_tables:
        columns = ", ".join(
            f"{c.key} ({c.label}, {c.kind})" if c.key != c.label else f"{c.key} ({c.kind})" for c in table.columns
        )
        lines.append(f"{table.csv_name}: {table.title}. Columns: {columns}." + (f" {table.note}" if table.note else ""))
    lines += [
        "",
        "Conventions: daily simple returns; 252 trading days a year; risk-free rate 0; kind pct = a "
        "fraction (0.05 = 5%), unit = see the row's unit column; empty = undefined.",
        "",
        "Methodology",
        "-----------",
    ]
    lines += [f"{rule}: {text}" for rule, text in doc.methodology]
    lines += ["", "Metric definitions", "------------------"]
    lines += [f"{label}: {formula} ({unit})" for label, formula, unit in doc.definitions]
    return "\n".join(lines) + "\n"


def render_csv_zip(doc: ReportDocument) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("README.txt", readme(doc))
        for table in doc.export_tables:
            zf.writestr(table.csv_name, table_csv(table))
    return buffer.getvalue()
