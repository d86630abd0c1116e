"""Report rendering: :mod:`.content` decides what a report says; one module per format renders it.

``render(doc, fmt)`` returns the file's bytes for ``fmt`` in :data:`content.FORMATS`
(html, pdf, xlsx, csv — the CSV format is a zip of one CSV per table).
"""

from __future__ import annotations

from core.services.reporting.content import FORMATS, REPORT_TYPES
from core.services.reporting.document import ReportDocument

#: File extension and MIME type of each format.
EXTENSIONS: dict[str, str] = {"html": "html", "pdf": "pdf", "xlsx": "xlsx", "csv": "zip"}
MIME_TYPES: dict[str, str] = {
    "html": "text/html",
    "pdf": "application/pdf",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "application/zip",
}


def render(doc: ReportDocument, fmt: str) -> bytes:
    """The bytes of ``doc`` in ``fmt`` (ValueError for an unknown format)."""
    if fmt == "html":
        from core.services.reporting.html import render_html

        return render_html(doc)
    if fmt == "pdf":
        from core.services.reporting.pdf import render_pdf

        return render_pdf(doc)
    if fmt == "xlsx":
        from core.services.reporting.xlsx import render_xlsx

        return render_xlsx(doc)
    if fmt == "csv":
        from core.services.reporting.csv_zip import render_csv_zip

        return render_csv_zip(doc)
    raise ValueError(f"unknown report format {fmt!r}; choose one of {', '.join(FORMATS)}")


__all__ = ["EXTENSIONS", "MIME_TYPES", "FORMATS", "REPORT_TYPES", "render"]
