"""Plotly figure builders with one palette, so every screen draws the index, the benchmark and the
categories in the same colours.

Builders take plain pandas objects (fractions for returns and weights) and return ``go.Figure``; they
never read the database or session state. Trace names are stable (tests look for them).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

INDEX_COLOR = "#1f4e79"
BENCHMARK_COLOR = "#e07b39"
POSITIVE_COLOR = "#2e7d32"
NEGATIVE_COLOR = "#c62828"
NEUTRAL_COLOR = "#8a94a6"
#: Categories (assets, sectors, compared versions) in this order; index and benchmark colours come first.
CATEGORY_COLORS: tuple[str, ...] = (
    "#1f4e79", "#e07b39", "#3a9d8f", "#8e5ea2", "#c9a227", "#5b8cc9", "#d1495b", "#66a182",
    "#7d6b5d", "#b5838d", "#2f6690", "#9c6644", "#6c757d",
)
DIVERGING_SCALE = [[0.0, NEGATIVE_COLOR], [0.5, "#f7f7f7"], [1.0, POSITIVE_COLOR]]
CORRELATION_SCALE = [[0.0, "#2166ac"], [0.5, "#f7f7f7"], [1.0, "#b2182b"]]

INDEX_TRACE = "Index"
GROWTH = 10_000.0
RANGES: tuple[str, ...] = ("1M", "3M", "6M", "YTD", "1Y", "3Y", "5Y", "Max")
_HEIGHT = 360


def color_for(i: int) -> str:
    return CATEGORY_COLORS[i % len(CATEGORY_COLORS)]


def _layout(fig: go.Figure, title: str | None = None, *, height: int = _HEIGHT, percent_y: bool = False) -> go.Figure:
    fig.update_layout(
        title=title, height=height, margin={"l": 10, "r": 10, "t": 40 if title else 10, "b": 10},
        # legend top-right, so it never sits on the title (top-left)
        hovermode="x unified", legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "right", "x": 1},
        template="plotly_white",
    )
    if percent_y:
        fig.update_yaxes(tickformat=".0%")
    return fig


def range_start(index: pd.DatetimeIndex, choice: str) -> pd.Timestamp | None:
    """The first date shown for a range choice (None = everything)."""
    if len(index) == 0 or choice == "Max":
        return None
    end = index[-1]
    if choice == "YTD":
        return pd.Timestamp(end.year, 1, 1)
    months = {"1M": 1, "3M": 3, "6M": 6, "1Y": 12, "3Y": 36, "5Y": 60}[choice]
    return end - pd.DateOffset(months=months)


def clip_range(series: pd.Series | None, start: pd.Timestamp | None) -> pd.Series | None:
    if series is None or start is None:
        return series
    return series.loc[start:]


def index_vs_benchmark(index: pd.Series, benchmark: pd.Series | None, benchmark_name: str | None = None, *,
                       log_scale: bool = False, rebase: bool = True) -> go.Figure:
    """Index and benchmark levels; with ``rebase`` both start at the index's first shown value."""
    fig = go.Figure()
    if len(index):
        fig.add_trace(go.Scatter(x=index.index, y=index.to_numpy(), name=INDEX_TRACE, mode="lines",
                                 line={"color": INDEX_COLOR, "width": 2}))
    if benchmark is not None and len(benchmark) and len(index):
        b = benchmark.dropna()
        if rebase and len(b):
            b = b / b.iloc[0] * float(index.iloc[0])
        fig.add_trace(go.Scatter(x=b.index, y=b.to_numpy(), name=benchmark_name or "Benchmark", mode="lines",
                                 line={"color": BENCHMARK_COLOR, "width": 1.5}))
    _layout(fig, "Index vs benchmark", height=420)
    fig.update_yaxes(type="log" if log_scale else "linear", title="Level")
    return fig


def growth_of(index: pd.Series, benchmark: pd.Series | None, benchmark_name: str | None = None,
              amount: float = GROWTH) -> go.Figure:
    """What ``amount`` invested at the first shown date would be worth."""
    fig = go.Figure()
    if len(index):
        fig.add_trace(go.Scatter(x=index.index, y=(index / index.iloc[0] * amount).to_numpy(), name=INDEX_TRACE,
                                 line={"color": INDEX_COLOR}))
    if benchmark is not None and len(benchmark.dropna()):
        b = benchmark.dropna()
        fig.add_trace(go.Scatter(x=b.index, y=(b / b.iloc[0] * amount).to_numpy(), name=benchmark_name or "Benchmark",
                                 line={"color": BENCHMARK_COLOR}))
    _layout(fig, f"Growth of {amount:,.0f}")
    fig.update_yaxes(tickformat=",.0f")
    return fig


def underwater(drawdown: pd.Series | None, benchmark_drawdown: pd.Series | None = None,
               benchmark_name: str | None = None) -> go.Figure:
    """Drawdown from the running peak (fractions, <= 0)."""
    fig = go.Figure()
    if drawdown is not None and len(drawdown):
        fig.add_trace(go.Scatter(x=drawdown.index, y=drawdown.to_numpy(), name=INDEX_TRACE, fill="tozeroy",
                                 line={"color": INDEX_COLOR, "width": 1}))
    if benchmark_drawdown is not None and len(benchmark_drawdown):
        fig.add_trace(go.Scatter(x=benchmark_drawdown.index, y=benchmark_drawdown.to_numpy(),
                                 name=benchmark_name or "Benchmark", line={"color": BENCHMARK_COLOR, "width": 1}))
    return _layout(fig, "Underwater (drawdown)", percent_y=True)


def allocation_bar(frame: pd.DataFrame, label: str, title: str, top: int = 20) -> go.Figure:
    """Horizontal bars of ``frame[label]`` by ``frame['weight']`` (largest first, at most ``top``)."""
    shown = frame.nlargest(top, "weight") if len(frame) else frame
    fig = go.Figure(go.Bar(x=shown["weight"].to_numpy() if len(shown) else [],
                           y=shown[label].astype(str).to_numpy() if len(shown) else [],
                           orientation="h", name=title, marker={"color": INDEX_COLOR}))
    _layout(fig, title, height=max(260, 22 * len(shown) + 80))
    fig.update_xaxes(tickformat=".1%")
    fig.update_yaxes(autorange="reversed")
    return fig


def allocation_pie(frame: pd.DataFrame, label: str, title: str) -> go.Figure:
    fig = go.Figure(go.Pie(labels=frame[label].astype(str).to_numpy() if len(frame) else [],
                           values=frame["weight"].to_numpy() if len(frame) else [], hole=0.45, name=title,
                           sort=False, marker={"colors": [color_for(i + 2) for i in range(len(frame))]}))
    return _layout(fig, title)


def allocation_area(history: pd.DataFrame, title: str) -> go.Figure:
    """Stacked weights over rebalance dates, one trace per column."""
    fig = go.Figure()
    for i, column in enumerate(history.columns):
        fig.add_trace(go.Scatter(x=history.index, y=history[column].to_numpy(), name=str(column), stackgroup="w",
                                 mode="lines", line={"width": 0.5, "color": NEUTRAL_COLOR if column == "Other"
                                                     else color_for(i + 2)}))
    _layout(fig, title, height=400, percent_y=True)
    fig.update_layout(hovermode="x")
    return fig


ROLLING_LABELS = {"vol": "Rolling volatility", "sharpe": "Rolling Sharpe", "beta": "Rolling beta"}


def rolling(frame: pd.DataFrame | None, kind: str, windows: tuple[int, ...] = (63, 252)) -> go.Figure:
    """Rolling ``kind`` (vol, sharpe, beta) for each window, from ``risk.rolling_metrics`` columns."""
    fig = go.Figure()
    if frame is not None:
        for i, w in enumerate(windows):
            column = f"{kind}_{w}"
            if column in frame:
                s = frame[column].dropna()
                fig.add_trace(go.Scatter(x=s.index, y=s.to_numpy(), name=f"{w} days", mode="lines",
                                         line={"color": INDEX_COLOR if i == 0 else color_for(i + 2)}))
    return _layout(fig, ROLLING_LABELS.get(kind, kind), percent_y=(kind == "vol"))


MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def monthly_heatmap(monthly: pd.DataFrame | None) -> go.Figure:
    """Calendar-month returns (rows = years, columns = months 1..12) as a red/green heatmap."""
    fig = go.Figure()
    if monthly is not None and len(monthly):
        z = monthly.reindex(columns=range(1, 13)).to_numpy(dtype=float)
        text = np.where(np.isnan(z), "", np.char.mod("%.1f%%", np.nan_to_num(z) * 100))
        limit = float(np.nanmax(np.abs(z))) if np.isfinite(z).any() else 0.1
        fig.add_trace(go.Heatmap(z=z, x=list(MONTHS), y=[str(y) for y in monthly.index], text=text,
                                 texttemplate="%{text}", colorscale=DIVERGING_SCALE, zmin=-limit, zmax=limit,
                                 name="Monthly returns", hovertemplate="%{y} %{x}: %{text}<extra></extra>",
                                 showscale=False))
    _layout(fig, "Monthly returns", height=max(240, 28 * (len(monthly) if monthly is not None else 0) + 80))
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_layout(hovermode="closest")
    return fig


def correlation_heatmap(matrix: pd.DataFrame | None) -> go.Figure:
    fig = go.Figure()
    if matrix is not None and len(matrix):
        z = matrix.to_numpy(dtype=float)
        labels = [str(c) for c in matrix.columns]
        fig.add_trace(go.Heatmap(z=z, x=labels, y=labels, zmin=-1, zmax=1, colorscale=CORRELATION_SCALE,
                                 text=np.where(np.isnan(z), "", np.char.mod("%.2f", np.nan_to_num(z))),
                                 texttemplate="%{text}", name="Correlation"))
    _layout(fig, "Correlation of daily returns (last year)", height=460)
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(hovermode="closest")
    return fig


def compare_curves(curves: dict[str, pd.Series], benchmark: pd.Series | None = None,
                   benchmark_name: str | None = None, *, log_scale: bool = False, title: str = "Index levels") -> go.Figure:
    """Several index curves (e.g. versions or a preview) on one chart, rebased to 100 at their common start."""
    fig = go.Figure()
    starts = [s.dropna().index[0] for s in curves.values() if len(s.dropna())]
    start = max(starts) if starts else None
    for i, (name, series) in enumerate(curves.items()):
        s = series.dropna()
        if start is not None:
            s = s.loc[start:]
        if len(s):
            fig.add_trace(go.Scatter(x=s.index, y=(s / s.iloc[0] * 100).to_numpy(), name=name, mode="lines",
                                     line={"color": INDEX_COLOR if i == 0 else color_for(i + 1), "width": 2 if i == 0 else 1.5}))
    if benchmark is not None and start is not None:
        b = benchmark.dropna().loc[start:]
        if len(b):
            fig.add_trace(go.Scatter(x=b.index, y=(b / b.iloc[0] * 100).to_numpy(), name=benchmark_name or "Benchmark",
                                     mode="lines", line={"color": BENCHMARK_COLOR, "width": 1.5, "dash": "dot"}))
    _layout(fig, title, height=420)
    fig.update_yaxes(type="log" if log_scale else "linear")
    return fig


def price_chart(prices: pd.Series, symbol: str) -> go.Figure:
    fig = go.Figure(go.Scatter(x=prices.index, y=prices.to_numpy(), name=symbol, mode="lines",
                               line={"color": INDEX_COLOR}))
    return _layout(fig, f"{symbol} daily close")
