"""PDF rendering: title page, one chapter per section, methodology and definitions, "Page N of M".

Charts are drawn with matplotlib (object API with the Agg canvas: thread-safe, no display, no browser)
into PNG images; the document is laid out with ReportLab's platypus. Tables never overflow the page:
column widths are fitted to the frame (text cells wrap), tables wider than :data:`MAX_COLUMNS` are cut
into column blocks that repeat the first column, and long tables continue on the next page with their
header repeated.

Why matplotlib rather than Plotly + Kaleido: Kaleido (1.x) drives a headless Chromium, which every
worker host would need. Measured on the ten charts of a 3-year tear sheet (same machine, same run,
/usr/bin/chromium): Kaleido 35 s, matplotlib 2.0 s — Kaleido alone would blow the 5 s PDF budget.
matplotlib needs nothing outside the venv.
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
import pandas as pd

from core.services.palette import SERIES_COLORS
from core.services.reporting.document import Chart, KeyValues, Paragraph, ReportDocument, Table, table_rows

ACCENT = "#1F3A5F"
PALETTE = SERIES_COLORS  # one list for both formats (core/services/palette.py)
#: Most table columns drawn side by side; wider tables are cut into blocks.
MAX_COLUMNS = 14
#: Most legend entries in one row under a chart.
LEGEND_COLUMNS = 5
CHART_DPI = 100
CHART_WIDTH_IN = 7.0


# --------------------------------------------------------------------------- charts (matplotlib)
def _percent_axis(axis: Any, decimals: int = 0) -> None:
    from matplotlib.ticker import PercentFormatter

    axis.set_major_formatter(PercentFormatter(1.0, decimals=decimals))


def _x_values(chart: Chart, values: Any) -> Any:
    from matplotlib.dates import date2num

    x = chart.x if chart.x is not None else (values.index if isinstance(values, pd.Series) else None)
    if isinstance(x, pd.DatetimeIndex):
        return date2num(x.to_numpy())  # type: ignore[no-untyped-call]  # matplotlib.dates has no annotations
    return x


def _floats(values: Any) -> np.ndarray:
    return np.asarray(
        pd.Series(values).to_numpy(dtype=float) if not isinstance(values, np.ndarray) else values, dtype=float
    )


def chart_png(chart: Chart) -> tuple[bytes, float]:
    """The PNG of ``chart`` and its height / width ratio."""
    from matplotlib.colors import LinearSegmentedColormap
    from matplotlib.figure import Figure

    height = 2.7
    legend = len(chart.series) > 1 and chart.kind not in ("barh", "heatmap")
    # The legend goes under the plot, in rows of at most LEGEND_COLUMNS entries: the figure grows by its rows.
    legend_cols = min(LEGEND_COLUMNS, max(1, len(chart.series)))
    legend_in = (math.ceil(len(chart.series) / legend_cols) * 0.17 + 0.1) if legend else 0.0
    if chart.kind == "barh":
        height = min(8.5, max(1.8, 0.2 * len(chart.x) + 0.8))
    elif chart.kind == "heatmap":
        height = min(8.5, max(2.0, 0.3 * len(chart.y) + 1.0))
    height += legend_in
    fig = Figure(figsize=(CHART_WIDTH_IN, height), dpi=CHART_DPI)
    ax = fig.add_subplot(111)
    ax.set_title(chart.title, loc="left", fontsize=9.5, color=ACCENT, fontweight="bold")
    ax.tick_params(labelsize=7)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(True, color="#e6e6e6", linewidth=0.6)
    ax.set_axisbelow(True)
    if chart.kind in ("line", "area"):
        if chart.kind == "area" and chart.stacked:
            names = list(chart.series)
            x = _x_values(chart, chart.series[names[0]])
            ys = [np.nan_to_num(_floats(chart.series[n])) for n in names]
            colors = [(chart.colors or {}).get(n) or PALETTE[k % len(PALETTE)] for k, n in enumerate(names)]
            ax.stackplot(x, *ys, labels=names, colors=colors, alpha=0.9, linewidth=0)
            ax.set_ylim(0, max(1.0, float(np.sum(ys, axis=0).max()) if ys else 1.0))
        else:
            for k, (name, values) in enumerate(chart.series.items()):
                y = _floats(values)
                x = _x_values(chart, values)
                color = (chart.colors or {}).get(name) or PALETTE[k % len(PALETTE)]
                ax.plot(x, y, label=name, color=color, linewidth=1.0)
                if chart.kind == "area":
                    ax.fill_between(x, np.nan_to_num(y), 0, color=color, alpha=0.25, linewidth=0)
        if chart.log_y:
            from matplotlib.ticker import FuncFormatter

            ax.set_yscale("log")
            plain = FuncFormatter(lambda v, _pos: f"{v:,.0f}")
            ax.yaxis.set_major_formatter(plain)
            ax.yaxis.set_minor_formatter(plain)
            ax.tick_params(axis="y", which="minor", labelsize=6)
        if chart.y_kind == "pct":
            _percent_axis(ax.yaxis)
        if isinstance(chart.x, pd.DatetimeIndex) or isinstance(next(iter(chart.series.values()), None), pd.Series):
            from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

            # matplotlib.dates has no annotations
            locator = AutoDateLocator(maxticks=8)  # type: ignore[no-untyped-call]
            ax.xaxis.set_major_locator(locator)
            ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    elif chart.kind == "bar":
        labels = [v.strftime("%Y-%m") if isinstance(v, pd.Timestamp) else str(v) for v in list(chart.x)]
        n = max(1, len(chart.series))
        pos = np.arange(len(labels))
        width = 0.8 / n
        for k, (name, values) in enumerate(chart.series.items()):
            ax.bar(
                pos + (k - (n - 1) / 2) * width,
                np.nan_to_num(_floats(values)),
                width,
                label=name,
                color=PALETTE[k % len(PALETTE)],
            )
        step = max(1, math.ceil(len(labels) / 10))
        ax.set_xticks(pos[::step], labels[::step])
        if chart.y_kind == "pct":
            _percent_axis(ax.yaxis)
        ax.axhline(0, color="#999999", linewidth=0.6)
    elif chart.kind == "barh":
        labels = [str(v) for v in chart.x]
        values = np.nan_to_num(_floats(next(iter(chart.series.values()))))
        pos = np.arange(len(labels))
        colors = (
            list(chart.bar_colors)
            if chart.bar_colors and len(chart.bar_colors) == len(values)
            else [PALETTE[0] if v >= 0 else PALETTE[1] for v in values]
        )
        ax.barh(pos, values, color=colors)
        ax.set_yticks(pos, labels, fontsize=6.5 if len(labels) > 25 else 7)
        ax.invert_yaxis()
        if chart.y_kind == "pct":
            _percent_axis(ax.xaxis, 1)
        ax.axvline(0, color="#999999", linewidth=0.6)
        legend = False
    elif chart.kind == "heatmap":
        z = np.asarray(chart.z, dtype=float)
        finite = z[np.isfinite(z)]
        bound = float(np.abs(finite).max()) if finite.size else 1.0
        bound = bound or 1.0
        cmap = LinearSegmentedColormap.from_list(
            "diverging", ["#b2182b", "#ef8a62", "#f7f7f7", "#7fbf7b", "#1b7837"]
        ).with_extremes(bad="#eeeeee")
        ax.imshow(np.ma.masked_invalid(z), cmap=cmap, vmin=-bound, vmax=bound, aspect="auto")
        ax.set_xticks(
            range(len(chart.x)),
            [str(v) for v in chart.x],
            fontsize=6.5,
            rotation=45 if len(chart.x) > 12 or chart.y_kind == "ratio" else 0,
        )
        ax.set_yticks(range(len(chart.y)), [str(v) for v in chart.y], fontsize=6.5)
        ax.grid(False)
        size = 5.5 if z.shape[1] > 12 else 6
        for i in range(z.shape[0]):
            for j in range(z.shape[1]):
                v = z[i, j]
                if math.isfinite(v):
                    text = f"{v * 100:.1f}" if chart.y_kind == "pct" else f"{v:.2f}"
                    ax.text(j, i, text, ha="center", va="center", fontsize=size, color="#111111")
        legend = False
    elif chart.kind == "histogram":
        for k, (name, values) in enumerate(chart.series.items()):
            v = _floats(values)
            v = v[np.isfinite(v)]
            if v.size:
                ax.hist(
                    v,
                    bins=60,
                    alpha=0.55,
                    label=name,
                    color=PALETTE[k % len(PALETTE)],
                    weights=np.full(v.size, 1.0 / v.size),
                )
        _percent_axis(ax.xaxis, 1)
        _percent_axis(ax.yaxis)
        ax.set_ylabel("share of days", fontsize=7)
    else:
        raise ValueError(f"unknown chart kind {chart.kind!r}")
    if legend:
        handles, labels = ax.get_legend_handles_labels()
        if handles:
            # Under the x-axis labels, never over the title or the data.
            fig.legend(
                handles,
                labels,
                fontsize=7,
                frameon=False,
                loc="lower left",
                ncol=legend_cols,
                bbox_to_anchor=(0.06, 0.0),
                borderaxespad=0.3,
            )
    # Fixed margins (tight_layout measures every label: it doubled the drawing time).
    left = 0.08
    if chart.kind in ("barh", "heatmap"):
        longest = max((len(str(v)) for v in (chart.x if chart.kind == "barh" else chart.y)), default=4)
        left = min(0.35, 0.03 + 0.0115 * longest)
    bottom = 0.3 if chart.kind == "heatmap" and chart.y_kind == "ratio" else 0.55 / height
    bottom = min(0.35, bottom) + legend_in / height
    fig.subplots_adjust(left=left, right=0.985, top=1 - 0.32 / height, bottom=bottom)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=CHART_DPI)
    return buffer.getvalue(), height / CHART_WIDTH_IN


# --------------------------------------------------------------------------- layout (ReportLab)
def _styles() -> dict[str, Any]:
    from reportlab.lib import colors
    from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet

    base = getSampleStyleSheet()
    accent = colors.HexColor(ACCENT)
    return {
        "title": ParagraphStyle(
            "title", parent=base["Title"], fontSize=26, leading=31, textColor=accent, alignment=0, spaceAfter=6
        ),
        "subtitle": ParagraphStyle("subtitle", parent=base["Normal"], fontSize=13, leading=17, spaceAfter=16),
        "h1": ParagraphStyle(
            "h1", parent=base["Heading1"], fontSize=16, leading=20, textColor=accent, spaceBefore=0, spaceAfter=8
        ),
        "h3": ParagraphStyle("h3", parent=base["Heading3"], fontSize=10, leading=13, spaceBefore=8, spaceAfter=4),
        "body": ParagraphStyle("body", parent=base["Normal"], fontSize=9, leading=12, spaceAfter=6),
        "note": ParagraphStyle(
            "note", parent=base["Normal"], fontSize=7.5, leading=9.5, textColor=colors.HexColor("#5f6b7a"), spaceAfter=8
        ),
        "cell": ParagraphStyle("cell", parent=base["Normal"], fontSize=7.5, leading=9),
        "cell_head": ParagraphStyle(
            "cell_head",
            parent=base["Normal"],
            fontSize=7.5,
            leading=9,
            textColor=colors.white,
            fontName="Helvetica-Bold",
        ),
        "notice": ParagraphStyle(
            "notice",
            parent=base["Normal"],
            fontSize=10,
            leading=13,
            textColor=colors.HexColor("#B00020"),
            fontName="Helvetica-Bold",
            borderColor=colors.HexColor("#B00020"),
            borderWidth=1.2,
            borderPadding=7,
            backColor=colors.HexColor("#FFF4F5"),
            spaceBefore=10,
            spaceAfter=14,
        ),
    }


def _esc(text: Any) -> str:
    from xml.sax.saxutils import escape

    return escape(str(text))


def _fit_widths(headers: list[str], rows: list[list[str]], available: float, font_size: float = 7.5) -> list[float]:
    """Column widths in points: proportional to content, never wider than ``available`` in total."""
    char = font_size * 0.52
    head_char = font_size * 0.64  # bold, often capitals: wider than body text
    pad = 14  # reportlab's default cell padding is 6 pt each side
    wants = []
    for j, head in enumerate(headers):
        longest_body = max([0] + [len(r[j]) for r in rows[:300]])
        # a header wraps at spaces, so only its longest word must fit on one line
        longest_word = max((len(w) for w in head.split()), default=0)
        wants.append(max(min(longest_body, 60) * char, min(longest_word, 24) * head_char) + pad)
    total = sum(wants)
    if total <= available:
        return wants
    # Shrink the widest (text) columns first: they wrap; numbers keep their width where possible.
    floor = [min(w, 11 * char + pad) for w in wants]
    spare = available - sum(floor)
    if spare <= 0:
        return [available / len(wants)] * len(wants)
    extra = [w - f for w, f in zip(wants, floor)]
    scale = spare / sum(extra) if sum(extra) else 0
    return [f + e * scale for f, e in zip(floor, extra)]


def _table_flowables(table: Table, styles: dict[str, Any], available: float) -> list[Any]:
    from reportlab.lib import colors
    from reportlab.platypus import KeepTogether, LongTable, Spacer, TableStyle
    from reportlab.platypus import Paragraph as P

    columns = table.doc_columns
    frame = table.doc_frame()
    rows = table_rows(table, frame)
    out: list[Any] = [P(_esc(table.title), styles["h3"])]
    if not rows:
        out.append(P("No data in this period.", styles["note"]))
        return out
    numeric = [c.kind not in ("text", "date") for c in columns]
    blocks: list[list[int]]
    if len(columns) <= MAX_COLUMNS:
        blocks = [list(range(len(columns)))]
    else:
        per = MAX_COLUMNS - 1
        blocks = [[0] + list(range(k, min(k + per, len(columns)))) for k in range(1, len(columns), per)]
    for b_idx, block in enumerate(blocks):
        headers = [columns[j].label for j in block]
        cells = [[r[j] for j in block] for r in rows]
        widths = _fit_widths(headers, cells, available)
        data = [[P(_esc(h), styles["cell_head"]) for h in headers]]
        for r in cells:
            data.append([c if numeric[j] or len(c) < 18 else P(_esc(c), styles["cell"]) for c, j in zip(r, block)])
        t = LongTable(data, colWidths=widths, repeatRows=1, hAlign="LEFT")
        style = [
            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor(ACCENT)),
            ("FONTNAME", (0, 1), (-1, -1), "Helvetica"),
            ("FONTSIZE", (0, 0), (-1, -1), 7.5),
            ("LEADING", (0, 0), (-1, -1), 9),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("LINEBELOW", (0, 1), (-1, -1), 0.25, colors.HexColor("#dde3ea")),
            ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#f6f8fa")]),
            ("TOPPADDING", (0, 0), (-1, -1), 2),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
            ("LEFTPADDING", (0, 0), (-1, -1), 3),
            ("RIGHTPADDING", (0, 0), (-1, -1), 3),
        ]
        for k, j in enumerate(block):
            if numeric[j]:
                style.append(("ALIGN", (k, 1), (k, -1), "RIGHT"))
        t.setStyle(TableStyle(style))
        if len(blocks) > 1:
            out.append(P(f"Columns {b_idx + 1} of {len(blocks)}", styles["note"]))
        out.append(KeepTogether([t]) if len(data) < 12 else t)
        out.append(Spacer(1, 4))
    truncated = len(table.frame) - len(frame)
    notes = []
    if truncated > 0:
        notes.append(f"{truncated} more rows in the XLSX / CSV exports.")
    if table.note:
        notes.append(table.note)
    if notes:
        out.append(P(_esc(" ".join(notes)), styles["note"]))
    return out


def render_pdf(doc: ReportDocument) -> bytes:
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.pdfgen import canvas as rl_canvas
    from reportlab.platypus import Image, KeepTogether, PageBreak, SimpleDocTemplate, Spacer, TableStyle
    from reportlab.platypus import Paragraph as P
    from reportlab.platypus import Table as RLTable

    styles = _styles()
    page_w, page_h = A4
    margin = 15 * mm
    available = page_w - 2 * margin
    footer_left = f"AutoIndex · {doc.title} · {doc.config_label} · {doc.period} {doc.start} to {doc.end}"
    if doc.demo:
        footer_left += " · synthetic demo data"

    class NumberedCanvas(rl_canvas.Canvas):  # type: ignore[misc]  # ReportLab ships no type information
        """Defers page output so the footer can say "Page N of M"."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._saved: list[dict[str, Any]] = []

        def showPage(self) -> None:  # noqa: N802 - ReportLab API
            self._saved.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            total = len(self._saved)
            for state in self._saved:
                self.__dict__.update(state)
                self.setFont("Helvetica", 7)
                self.setFillColor(colors.HexColor("#5f6b7a"))
                self.drawString(margin, 9 * mm, footer_left[:150])
                self.drawRightString(page_w - margin, 9 * mm, f"Page {self._pageNumber} of {total}")
                super().showPage()
            super().save()

    story: list[Any] = []
    # ---- title page
    story += [
        Spacer(1, 30 * mm),
        P("AutoIndex", styles["subtitle"]),
        P(_esc(doc.title), styles["title"]),
        P(_esc(f"{doc.config_label} · {doc.period_text}"), styles["subtitle"]),
    ]
    meta = RLTable(
        [[P(f"<b>{_esc(k)}</b>", styles["cell"]), P(_esc(v), styles["cell"])] for k, v in doc.meta],
        colWidths=[32 * mm, available - 32 * mm],
        hAlign="LEFT",
    )
    meta.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("FONTSIZE", (0, 0), (-1, -1), 9),
                ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.HexColor("#dde3ea")),
            ]
        )
    )
    story.append(meta)
    if doc.demo_notice:
        story.append(P(_esc(doc.demo_notice), styles["notice"]))
    for warning in doc.warnings:
        story.append(P(_esc("Warning: " + warning), styles["body"]))
    story.append(Spacer(1, 8 * mm))
    story.append(P("Contents", styles["h3"]))
    for k, section in enumerate(doc.sections, 1):
        story.append(P(f"{k}. {_esc(section.title)}", styles["body"]))
    story.append(P(f"{len(doc.sections) + 1}. Methodology and metric definitions", styles["body"]))
    # ---- sections
    for k, section in enumerate(doc.sections, 1):
        story.append(PageBreak())
        story.append(P(f"{k}. {_esc(section.title)}", styles["h1"]))
        for block in section.blocks:
            if isinstance(block, Paragraph):
                story.append(P(_esc(block.text), styles["body"]))
            elif isinstance(block, Chart):
                png, ratio = chart_png(block)
                width = available
                height = min(width * ratio, page_h - 2 * margin - 30 * mm)
                story.append(KeepTogether([Image(io.BytesIO(png), width=height / ratio, height=height), Spacer(1, 4)]))
            elif isinstance(block, Table) and block.show:
                story += _table_flowables(block, styles, available)
            elif isinstance(block, KeyValues):
                story.append(P(_esc(block.title), styles["h3"]))
                story += [P(f"<b>{_esc(a)}</b>: {_esc(b)}", styles["body"]) for a, b in block.items]
    # ---- methodology and definitions
    story.append(PageBreak())
    story.append(P(f"{len(doc.sections) + 1}. Methodology and metric definitions", styles["h1"]))
    story.append(
        P(
            _esc(f"{doc.config_label}: the rules of the strategy configuration this index was computed with."),
            styles["body"],
        )
    )
    rules = RLTable(
        [[P(f"<b>{_esc(r)}</b>", styles["cell"]), P(_esc(t), styles["cell"])] for r, t in doc.methodology],
        colWidths=[35 * mm, available - 35 * mm],
        hAlign="LEFT",
        repeatRows=0,
    )
    rules.setStyle(
        TableStyle(
            [("VALIGN", (0, 0), (-1, -1), "TOP"), ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.HexColor("#dde3ea"))]
        )
    )
    story += [
        rules,
        Spacer(1, 6 * mm),
        P("Metric definitions", styles["h3"]),
        P(
            "Daily simple returns r of the index and b of the benchmark, aligned by date; 252 trading days a "
            "year; risk-free rate 0. n/a marks an undefined value (too little data, zero variance), never a "
            "zero.",
            styles["body"],
        ),
    ]
    defs = RLTable(
        [
            [
                P(f"<b>{_esc(label)}</b>", styles["cell"]),
                P(_esc(formula), styles["cell"]),
                P(_esc(unit), styles["cell"]),
            ]
            for label, formula, unit in doc.definitions
        ],
        colWidths=[38 * mm, available - 58 * mm, 20 * mm],
        hAlign="LEFT",
    )
    defs.setStyle(
        TableStyle(
            [("VALIGN", (0, 0), (-1, -1), "TOP"), ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.HexColor("#dde3ea"))]
        )
    )
    story.append(defs)

    buffer = io.BytesIO()
    template = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=margin,
        rightMargin=margin,
        topMargin=margin,
        bottomMargin=18 * mm,
        title=f"{doc.title} — {doc.config_label}",
        author=doc.generated_by,
        subject=doc.period_text,
        creator="AutoIndex",
    )
    template.build(story, canvasmaker=NumberedCanvas)
    return buffer.getvalue()
