"""The dashboard's sections, drawn from one cached :class:`core.services.dashboard.DashboardData`.

Cost per view (issue 17): the charts, the range and log-scale controls and the section selector live in one
fragment (:func:`charts_panel`), so a range, log-scale, section or allocation-view change reruns only that
fragment, not the page (no authentication, sidebar, header or KPIs again). Only the chosen section is built
(lazy sections). Every figure is built once per data version and view (:func:`ui.cache.figure`) and reused by
every session and rerun; long lines are sent at screen resolution (:func:`ui.charts.for_screen`).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Hashable
from typing import NamedTuple

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.infra.telemetry import timed
from core.quant.periods import KPI_PERIODS
from core.services.dashboard import DashboardData
from core.services.freshness import STALE_HELP
from core.services.palette import sector_color
from ui import cache, charts, plotly_element, state, tables
from ui.errors import shown_errors
from ui.format import MISSING, metric_value, number, pct
from ui.risk_view import comparison_series_for, risk_panels

#: The Dashboard's sections, one drawn per run. "Scenarios" (issue 15's forward-looking panels) is apart from
#: "Risk" (the measured metrics) so that neither sends eight charts at once (issue 17: section switch <= 0.3 s).
SECTIONS: tuple[str, ...] = ("Performance", "Allocation", "Risk", "Scenarios", "Data freshness")
#: The Risk section's rolling metrics, one full-width chart at a time (three narrow charts cost the browser more).
ROLLING_KINDS: tuple[str, ...] = ("vol", "sharpe", "beta")
#: A short modebar (it sits in the strip charts.MODEBAR_STRIP keeps above every title).
PLOT_CONFIG = {
    "displaylogo": False,
    "responsive": True,
    "modeBarButtonsToRemove": [
        "select2d",
        "lasso2d",
        "zoomIn2d",
        "zoomOut2d",
        "autoScale2d",
        "toggleSpikelines",
        "hoverClosestCartesian",
        "hoverCompareCartesian",
    ],
}


def dark_theme() -> bool:
    """True when the browser shows the dark theme (:func:`ui.plotly_element.dark_theme`, the one reading of it)."""
    return plotly_element.dark_theme()


def _themed(build: go.Figure | Callable[[], go.Figure], dark: bool, basis: str | None = None) -> str:
    """The figure as the chart element sends it (:func:`ui.plotly_element.spec`): built, its title naming ``basis``
    when given, dark colours swapped in when ``dark``, margins preset."""
    fig = build if isinstance(build, go.Figure) else build()
    if basis is not None:
        charts.with_basis(fig, basis)
    if dark:
        charts.for_dark(fig)
    charts.preset_margins(fig)
    return plotly_element.spec(fig)


class Chart(NamedTuple):
    """A Dashboard chart: how it is built, its element key and its cache view (:func:`plot`)."""

    build: Callable[[], go.Figure]
    key: str
    view: tuple[Hashable, ...] = ()


def _sent(chart: Chart, dark: bool, basis: str | None) -> str:
    """The chart's figure JSON: from the figure cache when it has a view (built there once), else built now."""
    if chart.view:
        view = chart.view
        built = cache.figure(
            str(view[0]), (chart.key, dark, basis, *view[1:]), lambda: _themed(chart.build, dark, basis)
        )
        return str(built)
    return _themed(chart.build, dark, basis)


def plot(
    build: go.Figure | Callable[[], go.Figure], key: str, view: tuple[Hashable, ...] = (), *, basis: str | None = None
) -> None:
    """Draw a figure (or the one ``build()`` makes) in the app's chart element (light or dark, as the browser
    prefers).

    ``basis`` (a version's price basis) is appended to the title (:func:`ui.charts.with_basis`): every Dashboard
    chart passes it. With ``view`` (the data version token, the config id and every argument the figure depends on)
    the figure is built and serialised once and reused (:func:`ui.cache.figure`); without it, on every run."""
    figure = build if callable(build) else (lambda: build)
    dark = dark_theme()
    plotly_element.show(_sent(Chart(figure, key, view), dark, basis), key, PLOT_CONFIG, dark=dark)


def draw(chart: Chart, basis: str | None) -> None:
    plot(chart.build, chart.key, chart.view, basis=basis)


def kpis(data: DashboardData) -> None:
    """Index level and 1D / MTD / YTD / 1Y returns, each beside the benchmark's."""
    bench = data.benchmark_symbol or "benchmark"
    columns = st.columns(1 + len(KPI_PERIODS))
    columns[0].metric("Index level", number(data.level), help=f"As of {data.as_of}; base value at inception.")
    for column, period in zip(columns[1:], KPI_PERIODS):
        idx, bm = data.kpis.loc[period, "index"], data.kpis.loc[period, "benchmark"]
        excess = None if idx is None or bm is None else idx - bm
        column.metric(
            f"{period} return",
            pct(idx),
            delta=None if excess is None else f"{pct(excess, signed=True)} vs {bench}",
            help=f"{bench}: {pct(bm)}",
        )
        column.caption(f"{bench}: {pct(bm)}")


def _view(data: DashboardData, token: str, *parts: Hashable) -> tuple[Hashable, ...]:
    return (token, data.config_id, *parts)


def main_chart(data: DashboardData, token: str = "") -> tuple[pd.Timestamp | None, bool]:
    """Index vs benchmark from the first allocation; a window (1M..5Y, YTD) rebases both to 100 at its
    start, and the caption gives each one's return over it (the analytics' period return)."""
    # Wraps onto two lines on a narrow screen instead of being clipped.
    with st.container(horizontal=True, vertical_alignment="center", gap="small"):
        choice = (
            st.segmented_control(
                "Range",
                charts.RANGES,
                key=state.DASH_RANGE,
                default="Max",
                label_visibility="collapsed",
                width="content",
                wrap=True,
            )
            or "Max"
        )
        log_scale = st.toggle("Log scale", key=state.DASH_LOG_SCALE, width="content")
    index, bench = data.chart_index, data.chart_benchmark
    start = charts.range_start(index.index, choice)
    shown = charts.clip_range(index, start)
    assert shown is not None  # clip_range keeps a Series a Series
    shown_bench = charts.clip_range(bench, start)
    windowed = start is not None and shown.index[0] > index.index[0]
    plot(
        lambda: charts.index_vs_benchmark(
            shown, shown_bench, data.benchmark_symbol, log_scale=log_scale, base=100.0 if windowed else None
        ),
        "chart_main",
        _view(data, token, start, log_scale) if token else (),
        basis=data.basis,
    )
    if windowed and len(shown) > 1:
        parts = [f"Index {pct(float(shown.iloc[-1]) / float(shown.iloc[0]) - 1.0, signed=True)}"]
        if shown_bench is not None and len(shown_bench.dropna()) > 1:
            b = shown_bench.dropna()
            parts.append(f"{data.benchmark_symbol} {pct(float(b.iloc[-1]) / float(b.iloc[0]) - 1.0, signed=True)}")
        st.caption(
            f"{choice}: both rebased to 100 at the close of {shown.index[0]:%Y-%m-%d}; "
            f"return since then: {', '.join(parts)}."
        )
    elif data.first_allocation is not None:
        st.caption(f"From the first allocation on {data.first_allocation} (the index is at its base value before it).")
    return start, log_scale


def performance(data: DashboardData, start: pd.Timestamp | None, token: str = "") -> None:
    windowed = _view(data, token, start) if token else ()
    left, right = st.columns(2)
    with left:
        plot(
            lambda: charts.growth_of(
                charts.clip_range(data.chart_index, start),
                charts.clip_range(data.chart_benchmark, start),
                data.benchmark_symbol,
            ),
            "chart_growth",
            windowed,
            basis=data.basis,
        )
    with right:
        plot(
            lambda: charts.underwater(charts.clip_range(data.drawdown, start)),
            "chart_underwater",
            windowed,
            basis=data.basis,
        )
    plot(
        lambda: charts.monthly_heatmap(data.monthly_returns, data.yearly_returns, data.year_labels),
        "chart_monthly",
        _view(data, token) if token else (),
        basis=data.basis,
    )
    st.caption(
        "Year = the calendar-year return (the months compounded). Partial years are marked: the first is "
        "measured from the first allocation, the current one to date."
    )


def allocation_now(data: DashboardData, token: str) -> tuple[Chart, Chart]:
    """The Allocation section's two charts of today's weights: by asset (top 20) and by sector."""
    same = _view(data, token) if token else ()
    return (
        Chart(
            lambda: charts.allocation_bar(data.allocation_now, "symbol", "Allocation now by asset (top 20)"),
            "chart_alloc_asset",
            same,
        ),
        Chart(
            lambda: charts.allocation_pie(
                data.allocation_sectors, "sector", "Allocation now by sector", color_of=sector_color
            ),
            "chart_alloc_sector",
            same,
        ),
    )


#: The Allocation section's over-time views (the first is the default).
ALLOCATION_VIEWS: tuple[str, ...] = ("By sector", "Top holdings")


def allocation_history(data: DashboardData, token: str, view: str) -> Chart:
    """The Allocation section's weights over time, by sector or by top holding (``view``)."""
    by_sector = view == ALLOCATION_VIEWS[0]
    history = data.allocation_history_sectors if by_sector else data.allocation_history_assets
    return Chart(
        lambda: charts.allocation_area(
            history, f"Allocation over time ({view.lower()})", color_of=sector_color if by_sector else None
        ),
        "chart_alloc_history",
        _view(data, token, view) if token else (),
    )


def allocation(data: DashboardData, token: str = "") -> None:
    if data.allocation_now.empty:
        st.info("No allocation stored for this version yet; compute it from the Strategy or Tasks page.")
        return
    st.caption(f"Weights drifted with prices to {data.as_of} from the last rebalance on {data.last_rebalance}.")
    by_asset, by_sector = allocation_now(data, token)
    left, right = st.columns(2)
    with left:
        draw(by_asset, data.basis)
    with right:
        draw(by_sector, data.basis)
    view = st.radio("Allocation over time", ALLOCATION_VIEWS, key=state.DASH_ALLOC_VIEW, horizontal=True)
    draw(allocation_history(data, token, view), data.basis)


def metrics_table(metrics: pd.DataFrame, benchmark_symbol: str | None = None) -> None:
    """Risk metrics of the index and, beside them, of its benchmark (the same risk functions over the same
    dates); hover a metric name for its definition (METRIC_DEFINITIONS)."""
    bench = html.escape(benchmark_symbol or "Benchmark")
    has_bench = "benchmark" in metrics.columns
    rows: list[tuple[str, list[str]]] = []  # (metric and value cells, notes)
    for m in metrics.itertuples():
        value = metric_value(m.value, m.unit)
        notes = [html.escape(m.reason)] if value == MISSING and isinstance(m.reason, str) else []
        cells = f'<td style="text-align:right">{value}</td>'
        if has_bench:
            b_value = metric_value(m.benchmark, m.unit)
            if (
                b_value == MISSING
                and isinstance(m.benchmark_reason, str)
                and m.benchmark_reason != "relative to the benchmark"
            ):
                notes.append(f"{bench}: {html.escape(m.benchmark_reason)}")
            cells += f'<td style="text-align:right">{b_value}</td>'
        rows.append((f'<td><abbr title="{html.escape(m.formula)}">{html.escape(m.label)}</abbr></td>{cells}', notes))
    # the Note column only when a value is missing for a reason: an empty column in every row reads as broken
    has_notes = any(notes for _, notes in rows)
    body = "".join(
        f"<tr>{cells}" + (f"<td>{'; '.join(notes)}</td>" if has_notes else "") + "</tr>" for cells, notes in rows
    )
    head = (
        "<th>Metric</th><th>Index</th>"
        + (f"<th>{bench}</th>" if has_bench else "")
        + ("<th>Note</th>" if has_notes else "")
    )
    st.markdown(
        f'<div style="overflow-x:auto"><table class="autoindex-metrics"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>",
        unsafe_allow_html=True,
    )
    st.caption(
        "Hover a metric for its formula. Daily simple returns, 252 periods a year, rf = 0; the benchmark "
        f"over the same dates as the index. Beta, alpha, correlation, tracking error, information ratio and "
        f"captures compare the index with {bench}, so the benchmark column has none."
    )


def risk(data: DashboardData, token: str = "") -> None:
    left, right = st.columns(2)
    with left:
        metrics_table(data.metrics, data.benchmark_symbol)
    with right:
        draw(correlation(data, token), data.basis)
    labels = {kind: charts.ROLLING_LABELS[kind] for kind in ROLLING_KINDS}
    kind = (
        st.segmented_control(
            "Rolling metric",
            ROLLING_KINDS,
            format_func=labels.__getitem__,
            key=state.DASH_ROLLING,
            default=ROLLING_KINDS[0],
            label_visibility="collapsed",
        )
        or ROLLING_KINDS[0]
    )
    draw(rolling(data, token, kind), data.basis)


def correlation(data: DashboardData, token: str) -> Chart:
    return Chart(
        lambda: charts.correlation_heatmap(data.correlation), "chart_correlation", _view(data, token) if token else ()
    )


def rolling(data: DashboardData, token: str, kind: str) -> Chart:
    return Chart(
        lambda: charts.rolling(data.rolling, kind), f"chart_rolling_{kind}", _view(data, token) if token else ()
    )


def prewarm(data: DashboardData, token: str) -> None:
    """Build ahead, on the prewarm thread, the figures the Allocation and Risk sections show first (their default
    views, in this browser's theme), so the first visit of either after a data change sends figures already built
    (issue 17: ~0.05 s of server time at 500 assets). Queued on every Dashboard run (:func:`ui.cache.prewarm_figures`:
    a figure still cached is a lookup). Served app only; nothing without a token (figures then are not cached)."""
    if not token or data.empty:
        return
    dark = dark_theme()
    section_charts = [correlation(data, token), rolling(data, token, ROLLING_KINDS[0])]
    if not data.allocation_now.empty:
        section_charts[:0] = [*allocation_now(data, token), allocation_history(data, token, ALLOCATION_VIEWS[0])]

    def build_all() -> None:
        for chart in section_charts:
            _sent(chart, dark, data.basis)

    cache.prewarm_figures(("dashboard sections", data.config_id, dark), token, build_all)


def freshness(frame: pd.DataFrame) -> None:
    """Per-asset freshness; the number and its words follow :mod:`core.services.freshness` (the one rule)."""
    stale = frame[frame["stale_days"].fillna(0) > 0]
    st.caption(f"{len(frame)} assets; {len(stale)} not up to date. {STALE_HELP}")
    tables.show(
        frame,
        column_config={
            "first_date": st.column_config.DateColumn("First price"),
            "last_date": st.column_config.DateColumn("Last price"),
        },
    )


#: Words of engine warnings that change what the index is (a sleeve or assets left out, a flat or empty index);
#: the others (a sleeve empty while its lookback fills, a cap leaving cash) are routine notes.
MATERIAL_WARNINGS = ("left out", "flat index", "never invest", "no market caps")


def compute_notes(warnings: list[str]) -> None:
    """What the last compute of this version had to leave out: material ones as a warning, routine notes folded."""
    material = [w for w in warnings if any(word in w for word in MATERIAL_WARNINGS)]
    routine = [w for w in warnings if w not in material]
    if material:
        st.warning("\n".join(f"- {w}" for w in material))
    if routine:
        with st.expander(f"Notes from the last compute ({len(routine)})", icon=":material/info:"):
            st.markdown("\n".join(f"- {w}" for w in routine))


@st.fragment
def charts_panel(data: DashboardData, token: str) -> None:
    """Main chart with its range and log-scale controls, the section selector and the chosen section: one
    fragment, so changing any of them reruns only this (issue 17). Only the chosen section is built."""
    with timed("page", "Dashboard · charts (fragment)"), shown_errors():
        start, _log = main_chart(data, token)
        # One section per run (not st.tabs, which would build every chart on every rerun).
        section = (
            st.segmented_control(
                "Section",
                SECTIONS,
                key=state.DASH_SECTION,
                default=SECTIONS[0],
                required=True,  # clicking the chosen section keeps it chosen
                label_visibility="collapsed",
                wrap=True,
            )
            or SECTIONS[0]
        )
        if section == "Performance":
            performance(data, start, token)
        elif section == "Allocation":
            allocation(data, token)
        elif section == "Risk":
            risk(data, token)
        elif section == "Scenarios":
            risk_panels(
                data, comparison_series_for(data), dark=dark_theme()
            )  # issue 15: comparisons, Monte Carlo, stress, factors
        else:
            freshness(cache.freshness(token))
