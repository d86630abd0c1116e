"""The dashboard's sections, drawn from one cached :class:`core.services.dashboard.DashboardData`."""
from __future__ import annotations

import html

import pandas as pd
import streamlit as st

from core.services.dashboard import KPI_PERIODS, DashboardData
from core.services.freshness import STALE_HELP
from ui import charts, state, tables
from ui.format import MISSING, metric_value, number, pct

SECTIONS: tuple[str, ...] = ("Performance", "Allocation", "Risk", "Data freshness")
PLOT_CONFIG = {"displaylogo": False, "responsive": True}


def plot(fig, key: str) -> None:  # type: ignore[no-untyped-def]
    st.plotly_chart(fig, key=key, config=PLOT_CONFIG, width="stretch")


def kpis(data: DashboardData) -> None:
    """Index level and 1D / MTD / YTD / 1Y returns, each beside the benchmark's."""
    bench = data.benchmark_symbol or "benchmark"
    columns = st.columns(1 + len(KPI_PERIODS))
    columns[0].metric("Index level", number(data.level), help=f"As of {data.as_of}; base value at inception.")
    for column, period in zip(columns[1:], KPI_PERIODS):
        idx, bm = data.kpis.loc[period, "index"], data.kpis.loc[period, "benchmark"]
        excess = None if idx is None or bm is None else idx - bm
        column.metric(f"{period} return", pct(idx), delta=None if excess is None else f"{pct(excess, signed=True)} vs {bench}",
                      help=f"{bench}: {pct(bm)}")
        column.caption(f"{bench}: {pct(bm)}")


def main_chart(data: DashboardData) -> tuple[pd.Timestamp | None, bool]:
    left, right = st.columns([4, 1])
    with left:
        choice = st.segmented_control("Range", charts.RANGES, key=state.DASH_RANGE, default="Max",
                                      label_visibility="collapsed") or "Max"
    with right:
        log_scale = st.toggle("Log scale", key=state.DASH_LOG_SCALE)
    start = charts.range_start(data.index.index, choice)
    plot(charts.index_vs_benchmark(charts.clip_range(data.index, start), charts.clip_range(data.benchmark, start),
                                   data.benchmark_symbol, log_scale=log_scale), key="chart_main")
    return start, log_scale


def performance(data: DashboardData, start: pd.Timestamp | None) -> None:
    left, right = st.columns(2)
    with left:
        plot(charts.growth_of(charts.clip_range(data.index, start), charts.clip_range(data.benchmark, start),
                              data.benchmark_symbol), key="chart_growth")
    with right:
        plot(charts.underwater(charts.clip_range(data.drawdown, start)), key="chart_underwater")
    plot(charts.monthly_heatmap(data.monthly_returns), key="chart_monthly")


def allocation(data: DashboardData) -> None:
    if data.allocation_now.empty:
        st.info("No allocation stored for this version yet; compute it from the Strategy or Tasks page.")
        return
    st.caption(f"Weights drifted with prices to {data.as_of} from the last rebalance on {data.last_rebalance}.")
    left, right = st.columns(2)
    with left:
        plot(charts.allocation_bar(data.allocation_now, "symbol", "Allocation now by asset (top 20)"),
             key="chart_alloc_asset")
    with right:
        plot(charts.allocation_pie(data.allocation_sectors, "sector", "Allocation now by sector"),
             key="chart_alloc_sector")
    view = st.radio("Allocation over time", ["By sector", "Top holdings"], key=state.DASH_ALLOC_VIEW,
                    horizontal=True)
    history = data.allocation_history_sectors if view == "By sector" else data.allocation_history_assets
    plot(charts.allocation_area(history, f"Allocation over time ({view.lower()})"), key="chart_alloc_history")


def metrics_table(metrics: pd.DataFrame) -> None:
    """Risk metrics; hover a metric name for its definition (METRIC_DEFINITIONS)."""
    rows = []
    for m in metrics.itertuples():
        value = metric_value(m.value, m.unit)
        note = html.escape(m.reason) if value == MISSING and isinstance(m.reason, str) else ""
        rows.append(f'<tr><td><abbr title="{html.escape(m.formula)}">{html.escape(m.label)}</abbr></td>'
                    f'<td style="text-align:right">{value}</td><td>{note}</td></tr>')
    st.markdown('<table class="autoindex-metrics"><thead><tr><th>Metric</th><th>Value</th><th>Note</th></tr>'
                "</thead><tbody>" + "".join(rows) + "</tbody></table>", unsafe_allow_html=True)
    st.caption("Hover a metric for its formula. Daily simple returns, 252 periods a year, rf = 0.")


def risk(data: DashboardData) -> None:
    left, right = st.columns([2, 3])
    with left:
        metrics_table(data.metrics)
    with right:
        plot(charts.correlation_heatmap(data.correlation), key="chart_correlation")
    columns = st.columns(3)
    for column, kind in zip(columns, ("vol", "sharpe", "beta")):
        with column:
            plot(charts.rolling(data.rolling, kind), key=f"chart_rolling_{kind}")


def freshness(frame: pd.DataFrame) -> None:
    """Per-asset freshness; the number and its words follow :mod:`core.services.freshness` (the one rule)."""
    stale = frame[frame["stale_days"].fillna(0) > 0]
    st.caption(f"{len(frame)} assets; {len(stale)} not up to date. {STALE_HELP}")
    tables.show(frame, column_config={
        "first_date": st.column_config.DateColumn("First price"),
        "last_date": st.column_config.DateColumn("Last price"),
    })
