"""Plotly figure builders with one palette, so every screen draws the index, the benchmark and the
categories in the same colours; sectors take :func:`core.services.palette.sector_color`, the colour the
reports use too.

Builders take plain pandas objects (fractions for returns and weights) and return ``go.Figure``; they
never read the database or session state. Trace names are stable (tests look for them).

Screen resolution: a line longer than :data:`SCREEN_POINTS` points is sent downsampled by :func:`for_screen`
(MinMaxLTTB from the maintained ``tsdownsample`` library): the points kept are real data points, the first and
the last among them and every local extreme, so a window's start, its end value and each peak and trough read
exactly as before; only points a screen could not separate are left out (issue 17). SVG lines are kept (not
``scattergl``): at this size they draw as fast, and WebGL contexts are limited per page.

Layout (:func:`_layout`), the same on every chart so nothing overlaps at any width: the title sits in its
own row below the strip where Plotly's toolbar (modebar) appears, and the legend sits under the plot.
No template is set: the app's chart element (:mod:`ui.plotly_element`) supplies the look from the browser's
theme (light or dark, as the browser prefers); :func:`for_dark` lightens the few fixed dark colours when the dark
theme is on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.quant.periods import YEAR_TOTAL
from core.services.palette import OTHER_COLOR, sector_color

INDEX_COLOR = "#1f4e79"
BENCHMARK_COLOR = "#e07b39"
POSITIVE_COLOR = "#2e7d32"
NEGATIVE_COLOR = "#c62828"
NEUTRAL_COLOR = "#8a94a6"
#: Categories (assets, sectors, compared versions) in this order; index and benchmark colours come first.
CATEGORY_COLORS: tuple[str, ...] = (
    "#1f4e79",
    "#e07b39",
    "#3a9d8f",
    "#8e5ea2",
    "#c9a227",
    "#5b8cc9",
    "#d1495b",
    "#66a182",
    "#7d6b5d",
    "#b5838d",
    "#2f6690",
    "#9c6644",
    "#6c757d",
)
DIVERGING_SCALE = [[0.0, NEGATIVE_COLOR], [0.5, "#f7f7f7"], [1.0, POSITIVE_COLOR]]
CORRELATION_SCALE = [[0.0, "#2166ac"], [0.5, "#f7f7f7"], [1.0, "#b2182b"]]

INDEX_TRACE = "Index"
GROWTH = 10_000.0
RANGES: tuple[str, ...] = ("1M", "3M", "6M", "YTD", "1Y", "3Y", "5Y", "Max")
_HEIGHT = 360
#: Pixels at the top of every figure kept for Plotly's modebar (its buttons are 22 px plus padding);
#: the title is drawn below this strip, so the toolbar never covers it.
MODEBAR_STRIP = 30
#: Height of the title row under the modebar strip.
TITLE_ROW = 28
#: Lighter stand-ins for the fixed colours that are too dark on a dark background.
DARK_THEME_COLORS = {INDEX_COLOR: "#6fa8dc", "#2f6690": "#7fb2e5", NEUTRAL_COLOR: "#aab3c2"}


def _rgb(color: str) -> tuple[int, int, int] | None:
    """The red, green and blue of ``#rrggbb``, ``rgb(r, g, b)`` or ``rgba(r, g, b, a)``; None for anything else."""
    text = color.strip().lower()
    if len(text) == 7 and text.startswith("#"):
        try:
            return int(text[1:3], 16), int(text[3:5], 16), int(text[5:7], 16)
        except ValueError:
            return None
    if text.startswith(("rgb(", "rgba(")) and text.endswith(")"):
        parts = [p.strip() for p in text[text.index("(") + 1 : -1].split(",")]
        if len(parts) in (3, 4):
            try:
                return int(float(parts[0])), int(float(parts[1])), int(float(parts[2]))
            except ValueError:
                return None
    return None


_DARK_BY_RGB = {_rgb(light): dark for light, dark in DARK_THEME_COLORS.items()}


def translucent(color: str, alpha: float) -> str:
    """``#rrggbb`` as ``rgba(r,g,b,alpha)`` (a band's fill): :func:`for_dark` swaps it like the colour itself."""
    red, green, blue = _rgb(color) or (0, 0, 0)
    return f"rgba({red},{green},{blue},{alpha:g})"


def dark_color(color: str) -> str:
    """``color`` as drawn in the dark theme: a fixed colour of :data:`DARK_THEME_COLORS`, written as ``#rrggbb`` or as
    ``rgb``/``rgba`` of the same red, green and blue (a fill keeps its transparency), becomes its lighter stand-in;
    anything else is unchanged."""
    if color in DARK_THEME_COLORS:
        return DARK_THEME_COLORS[color]
    rgb = _rgb(color)
    stand_in = _DARK_BY_RGB.get(rgb) if rgb is not None else None
    if stand_in is None or not color.strip().lower().startswith("rgba("):
        return stand_in or color
    alpha = color.strip()[:-1].split(",")[3].strip()
    return translucent(stand_in, float(alpha))


def colorway(dark: bool = False) -> list[str]:
    """The colours Plotly gives traces that name none (:data:`CATEGORY_COLORS` in order), the dark theme's stand-ins
    swapped in when ``dark``: the first, the index's navy, was a bar nobody could see on the dark background."""
    return [dark_color(c) for c in CATEGORY_COLORS] if dark else list(CATEGORY_COLORS)


#: Most points per line sent to the browser: about one per pixel of a full-width chart on a wide screen.
SCREEN_POINTS = 1000


def for_screen(series: pd.Series, n_out: int = SCREEN_POINTS) -> pd.Series:
    """``series`` as drawn: unchanged up to ``n_out`` points, else ``n_out`` of its points chosen by MinMaxLTTB
    (tsdownsample) over its dates, which keeps the first and last points and the extremes. Missing values are
    dropped first (a line does not draw them)."""
    s = series.dropna()
    if len(s) <= n_out:
        return s
    from tsdownsample import MinMaxLTTBDownsampler

    index = s.index
    x = index.asi8 if isinstance(index, pd.DatetimeIndex) else np.arange(len(s), dtype=np.int64)
    downsampler = MinMaxLTTBDownsampler()  # type: ignore[no-untyped-call]  # tsdownsample ships no annotations
    keep = downsampler.downsample(np.ascontiguousarray(x), s.to_numpy(dtype=float), n_out=n_out)
    return s.iloc[np.sort(keep)]


#: Most dates a stacked area sends: one per ~6 px of a full-width chart (issue 17: 10 years of weekly rebalances,
#: 14 sectors x 511 dates, were 190 KiB, which Streamlit's chart component copies twice per mount; at 150 dates the
#: Allocation section settles about 0.03 s sooner, measured A/B three times).
AREA_POINTS = 150


def for_screen_rows(frame: pd.DataFrame, n_out: int = AREA_POINTS) -> pd.DataFrame:
    """``frame`` unchanged up to ``n_out`` rows, else ``n_out`` of its rows evenly spaced over its positions (the
    first and the last always among them). A stacked area needs the same dates in every trace, so rows are chosen
    whole (not per column as :func:`for_screen` does for a line); every value kept is the frame's own."""
    if len(frame) <= n_out:
        return frame
    positions = np.unique(np.linspace(0, len(frame) - 1, n_out).round().astype(int))
    return frame.iloc[positions]


def x_values(index: pd.Index) -> pd.Index:
    """A chart's x values as sent to the browser: daily dates as ``YYYY-MM-DD`` (Plotly reads them as dates; the
    full timestamps Plotly would write are twice as long and were two thirds of a weight chart's bytes), any other
    index unchanged."""
    if isinstance(index, pd.DatetimeIndex) and index.tz is None and (index == index.normalize()).all():
        return pd.Index(index.strftime("%Y-%m-%d"))
    return index


def screen_line(series: pd.Series, n_out: int = SCREEN_POINTS, **kwargs) -> go.Scatter:  # type: ignore[no-untyped-def]
    """A line trace of ``series`` at screen resolution (:func:`for_screen`, at most ``n_out`` points)."""
    shown = for_screen(series, n_out)
    return go.Scatter(x=x_values(shown.index), y=shown.to_numpy(), **kwargs)


def color_for(i: int) -> str:
    return CATEGORY_COLORS[i % len(CATEGORY_COLORS)]


def _layout(fig: go.Figure, title: str | None = None, *, height: int = _HEIGHT, percent_y: bool = False) -> go.Figure:
    top = MODEBAR_STRIP + TITLE_ROW if title else MODEBAR_STRIP
    fig.update_layout(
        # The title's top edge just below the modebar strip (pad: pixels from the container's top).
        title={
            "text": title,
            "x": 0,
            "xanchor": "left",
            "xref": "container",
            "pad": {"l": 10, "t": MODEBAR_STRIP + 4},
            "y": 1,
            "yref": "container",
            "yanchor": "top",
            "font": {"size": 15},
        }
        if title
        else None,
        height=height,
        margin={"l": 10, "r": 10, "t": top, "b": 10},
        hovermode="x unified",
        # Under the plot (the bottom margin grows to hold it): never on the title, whatever its length.
        legend={
            "orientation": "h",
            "x": 0,
            "xanchor": "left",
            "y": 0,
            "yanchor": "bottom",
            "yref": "container",
            "font": {"size": 11},
        },
    )
    if percent_y:
        fig.update_yaxes(tickformat=".0%")
    return fig


#: Approximate advance (px) of tick-label characters in the 12 px font of Streamlit's Plotly theme.
_CHAR_PX = {**dict.fromkeys("0123456789", 6.7), ",": 3.4, ".": 3.4, "%": 10.7, "\u2212": 7.0, "k": 6.2, "M": 10.0}
#: Left margin beside the tick labels (Plotly's tick padding and the theme's 8 px pad), and for a y-axis title.
_LEFT_PAD, _Y_TITLE = 21.0, 24.0
#: Bottom margin for the date tick labels, and for each row of a legend under the plot.
_X_LABELS, _LEGEND_ROW = 36, 29
#: Bottom margin for an x-axis title, and the right margin a numeric x axis's last tick label needs.
_X_TITLE, _NUMERIC_X_RIGHT = 31, 20
#: A colour bar beside a heatmap: its distance from the plot, its thickness (set by the builders) and the padding
#: around its tick labels.
_COLORBAR_PAD, COLORBAR_THICKNESS, _COLORBAR_LABEL_PAD = 10, 14, 28
#: Width (px) a legend row is assumed to have (a chart on a desktop screen; a narrower one pushes its margin).
_LEGEND_WIDTH = 600.0


def _label_px(text: str) -> float:
    def width(ch: str) -> float:
        if ch in _CHAR_PX:
            return _CHAR_PX[ch]
        if ch.isupper():
            return 8.2
        return 6.2 if ch.isalpha() else 3.6

    return sum(width(ch) for ch in text)


def _tick_text(value: float, tickformat: str | None) -> str:
    """The tick label Plotly would write for ``value`` (the widest one is what the margin must hold)."""
    sign = "\u2212" if value < 0 else ""
    size = abs(value)
    if tickformat and tickformat.endswith("%"):
        return f"{sign}{size * 100:.0f}%"
    if tickformat == ",.0f":
        return f"{sign}{size:,.0f}"
    if size >= 10_000:
        return f"{sign}{size / 1000:.0f}k" if size < 1_000_000 else f"{sign}{size / 1e6:.1f}M"
    return f"{sign}{size:.0f}" if size >= 10 else f"{sign}{size:.1f}"


def preset_margins(fig: go.Figure) -> go.Figure:
    """Start a line chart with the left and bottom margins its tick labels and legend will need.

    The chart element's template turns ``automargin`` on: Plotly draws the chart, measures the labels and the legend,
    and draws it all again with the margins grown to hold them (issue 17: 15-40 ms per draw here, and Streamlit
    draws each chart twice when it mounts it). Margins that already hold them change nothing and skip that second
    pass; ``automargin`` stays on (the chart element's template, :mod:`ui.plotly_element`), so a label wider than
    estimated still fits, at the old cost. Lines with a numeric y axis (linear or log) and bars standing on a numeric
    x axis (histograms) are preset here, heatmaps and horizontal bars (their legend too) by
    :func:`_preset_category_margins`; pies, bars standing on categories and anything else are left to Plotly."""
    traces = list(fig.data)
    kinds = {getattr(t, "type", None) for t in traces}
    numeric_x = bool(traces) and all(_numeric(getattr(t, "x", None)) for t in traces)
    standing = kinds == {"bar"} and numeric_x and all(t.orientation in (None, "v") for t in traces)  # a histogram
    if traces and kinds <= {"heatmap", "bar"} and not standing:
        return _preset_category_margins(fig, traces)
    if not traces or not (kinds == {"scatter"} or standing):
        return fig
    yaxis = fig.layout.yaxis
    if yaxis.type in ("category", "date"):
        return fig
    try:
        values = [np.asarray(t.y, dtype=float) for t in traces if t.y is not None and len(t.y)]
    except (TypeError, ValueError):  # not numbers (categories, dates): Plotly measures them itself
        return fig
    log = yaxis.type == "log"
    # A log axis draws only positive values and labels them as a linear one would (100, 150, 200; 1000, 2000, 5000;
    # 10k, 20k): its widest label is the widest of the shown range's ends too. It was left to Plotly, which (the
    # chart element draws without Streamlit's theme) left it at the 10 px margin: "00" for 100, under the title.
    values = [v[np.isfinite(v) & (v > 0)] if log else v[np.isfinite(v)] for v in values]
    values = [v for v in values if v.size]
    if not values:
        return fig
    low, high = min(float(v.min()) for v in values), max(float(v.max()) for v in values)
    if standing:  # bars stand on zero
        low, high = min(low, 0.0), max(high, 0.0)
    if any(getattr(t, "stackgroup", None) for t in traces):  # stacked: the top is the sum (weights: at most 100 %)
        high = max(high, sum(float(v.max()) for v in values))
        if yaxis.tickformat and yaxis.tickformat.endswith("%"):
            high = min(high, 1.0)
    widest = max(_label_px(_tick_text(low, yaxis.tickformat)), _label_px(_tick_text(high, yaxis.tickformat)))
    left = widest + _CHAR_PX["0"] + _LEFT_PAD + (_Y_TITLE if yaxis.title.text else 0.0)
    bottom = _X_LABELS + _LEGEND_ROW * _legend_rows(fig, traces) + (_X_TITLE if fig.layout.xaxis.title.text else 0)
    # a numeric x axis (years, returns) puts a tick label on the plot's right edge: half of it sticks out
    right = _NUMERIC_X_RIGHT if numeric_x and not standing else None
    return _grow_margins(fig, left, bottom, right)


def _legend_rows(fig: go.Figure, traces: list) -> int:  # type: ignore[type-arg]
    """Rows of the legend under the plot (none for a single trace, which Plotly draws without a legend)."""
    shown = [t for t in traces if t.showlegend is not False and getattr(t, "type", None) != "heatmap"]
    if len(shown) <= 1 or fig.layout.showlegend is False:
        return 0
    width = sum(_label_px(str(t.name or "")) + 40.0 for t in shown)
    return int(np.ceil(width / _LEGEND_WIDTH))


def _numeric(values) -> bool:  # type: ignore[no-untyped-def]
    """Whether a trace's x values are plain numbers (not dates, not categories)."""
    if values is None or len(values) == 0:
        return False
    try:
        return np.asarray(values).dtype.kind in "iuf"
    except (TypeError, ValueError):
        return False


def _grow_margins(fig: go.Figure, left: float, bottom: float, right: float | None = None) -> go.Figure:
    """Left, bottom (and right) margins at least ``left`` / ``bottom`` / ``right`` px (never smaller than the figure
    asked for)."""
    margin = fig.layout.margin
    grown = {"l": max(margin.l or 0, int(np.ceil(left))), "b": max(margin.b or 0, int(np.ceil(bottom)))}
    if right is not None:
        grown["r"] = max(margin.r or 0, int(np.ceil(right)))
    fig.update_layout(margin=grown)
    return fig


#: Bottom margin under a heatmap's short column labels (months), as Plotly draws them here.
_X_CATEGORIES = 42


def _preset_category_margins(fig: go.Figure, traces: list) -> go.Figure:  # type: ignore[type-arg]
    """:func:`preset_margins` for heatmaps and horizontal bars: the left margin holds the longest row label. Bars
    standing up, rotated column labels (more than 5 characters) and colour bars are left to ``automargin``."""
    if any(
        getattr(t, "orientation", None) == "v" or getattr(t, "type", None) == "bar" and t.orientation != "h"
        for t in traces
    ):
        return fig
    heatmaps = [t for t in traces if getattr(t, "type", None) == "heatmap"]
    right = None
    scaled = [t for t in heatmaps if t.showscale is not False]
    if scaled:  # a colour bar: only one whose thickness and tick labels the builder set can be measured here
        bar = scaled[0].colorbar
        if bar.thickness != COLORBAR_THICKNESS or bar.tickvals is None:
            return fig
        labels = [str(t) for t in (bar.ticktext or [_tick_text(float(v), bar.tickformat) for v in bar.tickvals])]
        right = _COLORBAR_PAD + COLORBAR_THICKNESS + _COLORBAR_LABEL_PAD + max(_label_px(x) for x in labels)
    rows = [str(v) for t in traces if t.y is not None for v in t.y]
    columns = [str(v) for t in heatmaps if t.x is not None for v in t.x]
    if not rows:
        return fig
    angle = fig.layout.xaxis.tickangle
    if isinstance(angle, (int, float)) and columns:  # turned by the builder, whatever the width
        turn = np.radians(abs(float(angle)))
        bottom = max(_label_px(c) for c in columns) * np.sin(turn) + 12.0 * np.cos(turn) + _X_CATEGORIES - 12.0
    elif len(columns) > 13 or any(len(c) > 5 for c in columns):  # many or long columns: Plotly may turn them
        return fig
    else:
        bottom = _X_CATEGORIES if columns else _X_LABELS
    # grouped horizontal bars (index and benchmark) put their legend under the plot, below the value labels
    bottom += _LEGEND_ROW * _legend_rows(fig, traces)
    if not heatmaps:  # bars along a numeric x axis: a tick label on the plot's right edge sticks out by half
        right = max(right or 0.0, _NUMERIC_X_RIGHT)
    left = max(_label_px(r) for r in rows) + _LEFT_PAD + 4.0
    return _grow_margins(fig, left, bottom, right)


def layout(fig: go.Figure, title: str | None = None, *, height: int = _HEIGHT, percent_y: bool = False) -> go.Figure:
    """The shared layout (:func:`_layout`: title below the modebar strip, legend under the plot) for figures built
    outside this module."""
    return _layout(fig, title, height=height, percent_y=percent_y)


def with_basis(fig: go.Figure, basis: str | None) -> go.Figure:
    """``fig`` with the price basis (:func:`core.schemas.strategy.basis_label`) after its title: every Dashboard
    chart says whether it shows price or total return (issue 15, item 7)."""
    from core.schemas.strategy import basis_label

    title = fig.layout.title.text
    if title:
        fig.update_layout(title_text=f"{title} · {basis_label(basis)}")
    return fig


def for_dark(fig: go.Figure) -> go.Figure:
    """Swap the fixed colours that would vanish on a dark background (:data:`DARK_THEME_COLORS`, by
    :func:`dark_color`): lines, markers (a bar's, a pie's slices) and fills (a band's ``fillcolor``, its legend
    swatch too)."""

    def swapped(value: Any) -> Any:
        if isinstance(value, str):
            new = dark_color(value)
            return value if new == value else new
        if isinstance(value, (list, tuple)) and any(isinstance(v, str) and dark_color(v) != v for v in value):
            return [swapped(v) for v in value]
        return value

    def swap(trace) -> None:  # type: ignore[no-untyped-def]
        # Each trace type has its own colour properties (a pie's marker has ``colors``, no ``color``; a heatmap
        # has no line; a bar has no ``fillcolor``): only those the type has are read, so every trace type goes
        # through.
        for part, names in (("line", ("color",)), ("marker", ("color", "colors")), (None, ("fillcolor",))):
            holder = trace if part is None else getattr(trace, part, None) if part in trace else None
            for name in names:
                if holder is not None and name in holder:
                    value = holder[name]
                    new = swapped(value)
                    if new is not value:
                        holder[name] = new

    fig.for_each_trace(swap)
    return fig


def range_start(index: pd.DatetimeIndex, choice: str) -> pd.Timestamp | None:
    """The window start of a range choice (None = everything): :func:`core.quant.periods.base_date` of the last
    date (YTD: 31 December of the previous year; 1M..5Y: the last date minus 1..60 calendar months)."""
    from core.quant.periods import base_date

    if len(index) == 0 or choice == "Max":
        return None
    return pd.Timestamp(base_date(choice, index[-1].date()))


def clip_range(series: pd.Series | None, start: pd.Timestamp | None) -> pd.Series | None:
    """``series`` from its base for a window starting at ``start``: the last value on or before ``start``
    and everything after (:func:`core.quant.periods.period_series`); the whole series when ``start``
    is None or before its first value."""
    from core.quant.periods import period_series

    if series is None or start is None or series.empty:
        return series
    clipped = period_series(series, start, series.index[-1])
    return series if clipped.empty else clipped


def rebased(series: pd.Series | None, base: float = 100.0) -> pd.Series | None:
    """``series / series[0] * base`` (the first non-missing value becomes ``base``)."""
    if series is None:
        return None
    s = series.dropna()
    if s.empty or float(s.iloc[0]) == 0:
        return s
    return s / float(s.iloc[0]) * base


def index_vs_benchmark(
    index: pd.Series,
    benchmark: pd.Series | None,
    benchmark_name: str | None = None,
    *,
    log_scale: bool = False,
    rebase: bool = True,
    base: float | None = None,
) -> go.Figure:
    """Index and benchmark levels.

    With ``base`` (a window), both lines are rebased to ``base`` at the window's first date, so the last
    value minus ``base`` is each one's return over the window. Without it the index keeps its stored levels
    and, with ``rebase``, the benchmark starts at the index's first shown value.
    """
    fig = go.Figure()
    if base is not None:
        index = rebased(index, base)
    if len(index):
        fig.add_trace(screen_line(index, name=INDEX_TRACE, mode="lines", line={"color": INDEX_COLOR, "width": 2}))
    if benchmark is not None and len(benchmark) and len(index):
        b = benchmark.dropna()
        if len(b) and base is not None:
            b = rebased(b, base)
        elif rebase and len(b):
            b = b / b.iloc[0] * float(index.iloc[0])
        fig.add_trace(
            screen_line(
                b, name=benchmark_name or "Benchmark", mode="lines", line={"color": BENCHMARK_COLOR, "width": 1.5}
            )
        )
    _layout(fig, "Index vs benchmark", height=420)
    axis_title = "Level" if base is None or not len(index) else f"Rebased to {base:g} on {index.index[0]:%Y-%m-%d}"
    fig.update_yaxes(type="log" if log_scale else "linear", title=axis_title)
    return fig


def growth_of(
    index: pd.Series, benchmark: pd.Series | None, benchmark_name: str | None = None, amount: float = GROWTH
) -> go.Figure:
    """What ``amount`` invested at the first shown date would be worth."""
    fig = go.Figure()
    if len(index):
        fig.add_trace(screen_line(index / index.iloc[0] * amount, name=INDEX_TRACE, line={"color": INDEX_COLOR}))
    if benchmark is not None and len(benchmark.dropna()):
        b = benchmark.dropna()
        fig.add_trace(
            screen_line(b / b.iloc[0] * amount, name=benchmark_name or "Benchmark", line={"color": BENCHMARK_COLOR})
        )
    _layout(fig, f"Growth of {amount:,.0f}")
    fig.update_yaxes(tickformat=",.0f")
    return fig


def underwater(
    drawdown: pd.Series | None, benchmark_drawdown: pd.Series | None = None, benchmark_name: str | None = None
) -> go.Figure:
    """Drawdown from the running peak (fractions, <= 0)."""
    fig = go.Figure()
    if drawdown is not None and len(drawdown):
        fig.add_trace(screen_line(drawdown, name=INDEX_TRACE, fill="tozeroy", line={"color": INDEX_COLOR, "width": 1}))
    if benchmark_drawdown is not None and len(benchmark_drawdown):
        fig.add_trace(
            screen_line(
                benchmark_drawdown, name=benchmark_name or "Benchmark", line={"color": BENCHMARK_COLOR, "width": 1}
            )
        )
    return _layout(fig, "Underwater (drawdown)", percent_y=True)


def allocation_bar(frame: pd.DataFrame, label: str, title: str, top: int = 20) -> go.Figure:
    """Horizontal bars of ``frame[label]`` by ``frame['weight']`` (largest first, at most ``top``)."""
    shown = frame.nlargest(top, "weight") if len(frame) else frame
    fig = go.Figure(
        go.Bar(
            x=shown["weight"].to_numpy() if len(shown) else [],
            y=shown[label].astype(str).to_numpy() if len(shown) else [],
            orientation="h",
            name=title,
            marker={"color": INDEX_COLOR},
        )
    )
    _layout(fig, title, height=max(260, 22 * len(shown) + 80))
    fig.update_xaxes(tickformat=".1%")
    fig.update_yaxes(autorange="reversed")
    return fig


def allocation_pie(
    frame: pd.DataFrame, label: str, title: str, color_of: Callable[[str], str] | None = None
) -> go.Figure:
    """A donut of ``frame['weight']`` by ``frame[label]``; ``color_of`` names each slice's colour
    (:func:`core.services.palette.sector_color` for sectors), else the category palette in order."""
    labels = frame[label].astype(str).tolist() if len(frame) else []
    colors = [color_of(name) for name in labels] if color_of else [color_for(i + 2) for i in range(len(labels))]
    fig = go.Figure(
        go.Pie(
            labels=labels,
            values=frame["weight"].to_numpy() if len(frame) else [],
            hole=0.45,
            name=title,
            sort=False,
            marker={"colors": colors},
            # inside and level: Plotly then does not try each slice's label at several angles and outside it (a
            # two thirds of the donut's drawing time here, issue 17); a slice too thin for its label shows it on hover
            textposition="inside",
            insidetextorientation="horizontal",
        )
    )
    return _layout(fig, title)


def allocation_area(history: pd.DataFrame, title: str, color_of: Callable[[str], str] | None = None) -> go.Figure:
    """Stacked weights over rebalance dates, one trace per column, at most :data:`AREA_POINTS` dates
    (:func:`for_screen_rows`); ``color_of`` as in :func:`allocation_pie` ("Other" is always the neutral grey)."""
    fig = go.Figure()
    history = for_screen_rows(history)
    dates = x_values(history.index)
    for i, column in enumerate(history.columns):
        name = str(column)
        color = OTHER_COLOR if name == "Other" else (color_of(name) if color_of else color_for(i + 2))
        fig.add_trace(
            go.Scatter(
                x=dates,
                y=history[column].to_numpy(),
                name=name,
                stackgroup="w",
                mode="lines",
                line={"width": 0.5, "color": color},
                fillcolor=color,
            )
        )
    _layout(fig, title, height=440, percent_y=True)
    fig.update_layout(hovermode="x")
    return fig


def sector_colors(names) -> list[str]:  # type: ignore[no-untyped-def]
    """The sector colours of ``names`` (the one mapping the reports use too)."""
    return [sector_color(n) for n in names]


ROLLING_LABELS = {"vol": "Rolling volatility", "sharpe": "Rolling Sharpe", "beta": "Rolling beta"}


def rolling(frame: pd.DataFrame | None, kind: str, windows: tuple[int, ...] = (63, 252)) -> go.Figure:
    """Rolling ``kind`` (vol, sharpe, beta) for each window, from ``risk.rolling_metrics`` columns."""
    fig = go.Figure()
    if frame is not None:
        for i, w in enumerate(windows):
            column = f"{kind}_{w}"
            if column in frame:
                fig.add_trace(
                    screen_line(
                        frame[column],
                        name=f"{w} days",
                        mode="lines",
                        line={"color": INDEX_COLOR if i == 0 else color_for(i + 2)},
                    )
                )
    return _layout(fig, ROLLING_LABELS.get(kind, kind), percent_y=(kind == "vol"))


MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def monthly_heatmap(
    monthly: pd.DataFrame | None, yearly: pd.Series | None = None, year_labels: dict[int, str] | None = None
) -> go.Figure:
    """Calendar-month returns (rows = years, columns = months 1..12) as a red/green heatmap, plus a
    :data:`~core.quant.periods.YEAR_TOTAL` column holding ``yearly`` (the yearly returns, equal to the
    compounded months) when given. Rows are labelled by ``year_labels`` (partial years marked). The colour
    range is set by the months; a year total beyond it shows the range's end colour."""
    fig = go.Figure()
    if monthly is not None and len(monthly):
        z = monthly.reindex(columns=range(1, 13)).to_numpy(dtype=float)
        limit = float(np.nanmax(np.abs(z))) if np.isfinite(z).any() else 0.1
        columns = list(MONTHS)
        if yearly is not None:
            z = np.column_stack([z, yearly.reindex(monthly.index).to_numpy(dtype=float)])
            columns.append(YEAR_TOTAL)
        text = np.where(np.isnan(z), "", np.char.mod("%.1f%%", np.nan_to_num(z) * 100))
        labels = year_labels or {}
        fig.add_trace(
            go.Heatmap(
                z=z,
                x=columns,
                y=[labels.get(int(y), str(y)) for y in monthly.index],
                text=text,
                texttemplate="%{text}",
                colorscale=DIVERGING_SCALE,
                zmin=-limit,
                zmax=limit,
                name="Monthly returns",
                hovertemplate="%{y} %{x}: %{text}<extra></extra>",
                showscale=False,
                xgap=1,
                ygap=1,
            )
        )
    _layout(fig, "Monthly returns", height=max(260, 30 * (len(monthly) if monthly is not None else 0) + 100))
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_layout(hovermode="closest")
    return fig


def correlation_heatmap(matrix: pd.DataFrame | None) -> go.Figure:
    fig = go.Figure()
    if matrix is not None and len(matrix):
        z = matrix.to_numpy(dtype=float)
        labels = [str(c) for c in matrix.columns]
        fig.add_trace(
            go.Heatmap(
                z=z,
                x=labels,
                y=labels,
                zmin=-1,
                zmax=1,
                colorscale=CORRELATION_SCALE,
                text=np.where(np.isnan(z), "", np.char.mod("%.2f", np.nan_to_num(z))),
                texttemplate="%{text}",
                name="Correlation",
                colorbar={"thickness": COLORBAR_THICKNESS, "tickvals": [-1, -0.5, 0, 0.5, 1]},
            )
        )
    _layout(fig, "Correlation of daily returns (last year)", height=460)
    fig.update_yaxes(autorange="reversed")
    if matrix is not None and (len(matrix.columns) > 6 or any(len(str(c)) > 5 for c in matrix.columns)):
        fig.update_xaxes(tickangle=-45)  # turned at any width, so the margin under them is known before drawing
    fig.update_layout(hovermode="closest")
    return fig


def compare_curves(
    curves: dict[str, pd.Series],
    benchmark: pd.Series | None = None,
    benchmark_name: str | None = None,
    *,
    log_scale: bool = False,
    title: str = "Index levels",
) -> go.Figure:
    """Several index curves (e.g. versions or a preview) on one chart, rebased to 100 at their common start."""
    fig = go.Figure()
    starts = [s.dropna().index[0] for s in curves.values() if len(s.dropna())]
    start = max(starts) if starts else None
    for i, (name, series) in enumerate(curves.items()):
        s = series.dropna()
        if start is not None:
            s = s.loc[start:]
        if len(s):
            fig.add_trace(
                screen_line(
                    s / s.iloc[0] * 100,
                    name=name,
                    mode="lines",
                    line={"color": INDEX_COLOR if i == 0 else color_for(i + 1), "width": 2 if i == 0 else 1.5},
                )
            )
    if benchmark is not None and start is not None:
        b = benchmark.dropna().loc[start:]
        if len(b):
            fig.add_trace(
                screen_line(
                    b / b.iloc[0] * 100,
                    name=benchmark_name or "Benchmark",
                    mode="lines",
                    line={"color": BENCHMARK_COLOR, "width": 1.5, "dash": "dot"},
                )
            )
    _layout(fig, title, height=420)
    fig.update_yaxes(type="log" if log_scale else "linear")
    return fig


def price_chart(prices: pd.Series, symbol: str) -> go.Figure:
    fig = go.Figure(screen_line(prices, name=symbol, mode="lines", line={"color": INDEX_COLOR}))
    return _layout(fig, f"{symbol} daily close")
