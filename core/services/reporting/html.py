"""HTML rendering: one self-contained file with interactive Plotly charts and a print stylesheet.

plotly.js is embedded once (no CDN, no network); figures are plain Plotly JSON built here from the
:class:`~.content.Chart` specs (no plotly Python figure objects: faster, and nothing to validate).
The embedded library contains URL strings for map tiles and attributions that these charts never use;
their ``://`` is written as the equivalent JavaScript escape ``:\\/\\/`` so the file holds no literal
http(s) address at all (a string's value is unchanged, so the library behaves the same).
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from core.services.palette import SERIES_COLORS
from core.services.reporting.document import Chart, KeyValues, Paragraph, ReportDocument, Table, table_rows

if TYPE_CHECKING:
    import jinja2

TEMPLATE_DIR = Path(__file__).with_name("templates")
PALETTE = SERIES_COLORS  # one list for both formats (core/services/palette.py)
#: Red for losses, white at zero, green for gains (the same scale as the PDF's).
DIVERGING = [[0.0, "#b2182b"], [0.25, "#ef8a62"], [0.5, "#f7f7f7"], [0.75, "#7fbf7b"], [1.0, "#1b7837"]]
_TICKFORMAT = {"pct": ".1%", "ratio": ".2f", "level": ",.0f"}
_HOVERFORMAT = {"pct": ".2%", "ratio": ".2f", "level": ",.2f"}


@functools.lru_cache(maxsize=1)
def plotly_js() -> str:
    """plotly.js (from the installed plotly package), with ``://`` escaped and ``</script`` made safe."""
    from plotly.offline import get_plotlyjs

    js: str = get_plotlyjs()  # plotly is untyped
    return js.replace("://", ":\\/\\/").replace("</script", "<\\/script")


@functools.lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _values(values: Any) -> list[float | None]:
    arr = np.asarray(
        pd.Series(values).to_numpy(dtype=float) if not isinstance(values, np.ndarray) else values, dtype=float
    )
    return [float(v) if math.isfinite(v) else None for v in arr.tolist()]


def _labels(x: Any) -> list[Any]:
    if isinstance(x, (pd.DatetimeIndex, pd.Series)) and pd.api.types.is_datetime64_any_dtype(x):
        return [d.strftime("%Y-%m-%d") for d in pd.DatetimeIndex(x)]
    return [str(v) if not isinstance(v, (int, float)) else v for v in list(x)]


def _x_of(chart: Chart, values: Any) -> Any:
    if chart.x is not None:
        return chart.x
    return values.index if isinstance(values, pd.Series) else list(range(len(values)))


def figure(chart: Chart) -> dict[str, Any]:
    """Plotly JSON (data + layout) of ``chart``."""
    data: list[dict[str, Any]] = []
    layout: dict[str, Any] = {
        "title": {"text": chart.title, "x": 0.01, "font": {"size": 15}},
        "margin": {"l": 60, "r": 20, "t": 48, "b": 40},
        "height": 360,
        "legend": {"orientation": "h", "y": -0.15},
        "hovermode": "x unified",
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
        "xaxis": {"gridcolor": "#eeeeee"},
        "yaxis": {
            "gridcolor": "#eeeeee",
            "tickformat": _TICKFORMAT.get(chart.y_kind, ""),
            "hoverformat": _HOVERFORMAT.get(chart.y_kind, ""),
        },
        "colorway": PALETTE,
    }
    if chart.log_y:
        layout["yaxis"]["type"] = "log"
    if chart.kind in ("line", "area"):
        for name, values in chart.series.items():
            trace: dict[str, Any] = {
                "type": "scatter",
                "mode": "lines",
                "name": name,
                "x": _labels(_x_of(chart, values)),
                "y": _values(values),
                "line": {"width": 1.5},
            }
            color = (chart.colors or {}).get(name)
            if chart.kind == "area":
                if chart.stacked:
                    trace["stackgroup"] = "one"
                    trace["line"] = {"width": 0.5}
                else:
                    trace["fill"] = "tozeroy"
            if color:
                trace["line"]["color"] = color
                if chart.kind == "area" and chart.stacked:
                    trace["fillcolor"] = color
            data.append(trace)
        if chart.kind == "line" and isinstance(chart.x, pd.DatetimeIndex) and len(chart.x) > 300:
            # top right, away from the title (top left)
            layout["xaxis"]["rangeselector"] = {
                "x": 1,
                "xanchor": "right",
                "y": 1.02,
                "yanchor": "bottom",
                "buttons": [
                    {"count": 6, "label": "6M", "step": "month", "stepmode": "backward"},
                    {"count": 1, "label": "1Y", "step": "year", "stepmode": "backward"},
                    {"count": 3, "label": "3Y", "step": "year", "stepmode": "backward"},
                    {"step": "all", "label": "All"},
                ],
            }
    elif chart.kind in ("bar", "barh"):
        for name, values in chart.series.items():
            if chart.kind == "bar":
                data.append({"type": "bar", "name": name, "x": _labels(chart.x), "y": _values(values)})
            else:
                bar: dict[str, Any] = {
                    "type": "bar",
                    "orientation": "h",
                    "name": name,
                    "y": _labels(chart.x),
                    "x": _values(values),
                }
                if chart.bar_colors:
                    bar["marker"] = {"color": list(chart.bar_colors)}
                data.append(bar)
        layout["barmode"] = "group"
        if chart.kind == "barh":
            layout["hovermode"] = "closest"
            layout["xaxis"].update(
                {"tickformat": _TICKFORMAT.get(chart.y_kind, ""), "hoverformat": _HOVERFORMAT.get(chart.y_kind, "")}
            )
            layout["yaxis"] = {"autorange": "reversed", "automargin": True}
            layout["height"] = max(300, 22 * len(chart.x) + 90)
            layout["showlegend"] = False
    elif chart.kind == "heatmap":
        z = np.asarray(chart.z, dtype=float)
        fmt = ".1%" if chart.y_kind == "pct" else ".2f"
        data.append(
            {
                "type": "heatmap",
                "z": [[float(v) if math.isfinite(v) else None for v in row] for row in z],
                "x": list(chart.x),
                "y": list(chart.y),
                "colorscale": DIVERGING,
                "zmid": 0,
                "texttemplate": "%{z:" + fmt + "}",
                "hovertemplate": "%{y} %{x}: %{z:" + fmt + "}<extra></extra>",
                "colorbar": {"tickformat": _TICKFORMAT.get(chart.y_kind, "")},
            }
        )
        layout["hovermode"] = "closest"
        layout["yaxis"] = {"autorange": "reversed", "type": "category", "automargin": True}
        layout["xaxis"] = {"type": "category", "automargin": True}
        layout["height"] = max(300, 28 * len(chart.y) + 120)
    elif chart.kind == "histogram":
        for name, values in chart.series.items():
            data.append(
                {
                    "type": "histogram",
                    "name": name,
                    "x": _values(values),
                    "opacity": 0.6,
                    "nbinsx": 60,
                    "histnorm": "probability",
                }
            )
        layout["barmode"] = "overlay"
        layout["hovermode"] = "closest"
        layout["xaxis"].update({"tickformat": ".1%"})
        layout["yaxis"].update({"tickformat": ".0%", "title": {"text": "share of days"}})
    else:
        raise ValueError(f"unknown chart kind {chart.kind!r}")
    return {"data": data, "layout": layout}


def render_html(doc: ReportDocument) -> bytes:
    sections = []
    n_chart = 0
    for s_idx, section in enumerate(doc.sections):
        blocks: list[dict[str, Any]] = []
        for block in section.blocks:
            if isinstance(block, Chart):
                n_chart += 1
                blocks.append(
                    {
                        "kind": "chart",
                        "id": f"chart-{n_chart}",
                        "title": block.title,
                        "json": json.dumps(figure(block), separators=(",", ":"), allow_nan=False).replace("</", "<\\/"),
                    }
                )
            elif isinstance(block, Table) and block.show:
                frame = block.doc_frame()
                blocks.append(
                    {
                        "kind": "table",
                        "title": block.title,
                        "note": block.note,
                        "headers": [c.label for c in block.doc_columns],
                        "numeric": [c.kind not in ("text", "date") for c in block.doc_columns],
                        "rows": table_rows(block, frame),
                        "truncated": len(block.frame) - len(frame),
                    }
                )
            elif isinstance(block, Paragraph):
                blocks.append({"kind": "text", "text": block.text})
            elif isinstance(block, KeyValues):
                blocks.append({"kind": "kv", "title": block.title, "items": block.items})
        sections.append({"id": f"s{s_idx + 1}", "title": section.title, "blocks": blocks})
    html = (
        _environment()
        .get_template("report.html.j2")
        .render(doc=doc, sections=sections, plotly_js=plotly_js(), config={"displaylogo": False, "responsive": True})
    )
    return html.encode("utf-8")
