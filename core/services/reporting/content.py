"""What each report type says: sections of paragraphs, tables and charts, built from one analytics view.

Format modules (:mod:`.html`, :mod:`.pdf`, :mod:`.xlsx`, :mod:`.csv_zip`) only *render* a
:class:`ReportDocument`; every number in every format comes from the same
:class:`core.services.analytics.PerformanceView`, so the formats (and the dashboard) agree.

The document model itself (blocks, :func:`fmt`) lives in :mod:`.document`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from core.quant.periods import PERIOD_LABELS, TRAILING_PERIODS, YEAR_TOTAL, year_labels
from core.quant.risk import METRIC_DEFINITIONS
from core.schemas.strategy import basis_label, describe_config
from core.services.analytics import PerformanceView
from core.services.palette import sector_color
from core.services.reporting.document import (  # noqa: F401  (re-exported: the format modules' model)
    DEMO_NOTICE,
    DOC_ROWS,
    MISSING,
    Chart,
    Column,
    KeyValues,
    Paragraph,
    ReportDocument,
    Section,
    Table,
    chart_values,
    fmt,
    is_missing,
    table_rows,
)

REPORT_TYPES: dict[str, str] = {
    "performance": "Performance tear sheet",
    "allocation": "Allocation and rebalancing",
    "risk": "Risk report",
    "benchmark": "Benchmark comparison",
}
FORMATS: tuple[str, ...] = ("html", "pdf", "xlsx", "csv")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


# --------------------------------------------------------------------------- tables
def _bench_label(view: PerformanceView) -> str:
    return view.benchmark_symbol or "Benchmark"


def summary_table(
    view: PerformanceView, keys: list[str] | None = None, name: str = "Summary", title: str = "Summary metrics"
) -> Table:
    frame = view.metrics_table
    if keys is not None:
        frame = frame.set_index("key").reindex([k for k in keys if k in set(frame["key"])]).reset_index()
    cols = [Column("key", "Key", doc=False), Column("label", "Metric"), Column("index", "Index", "unit")]
    if view.benchmark is not None:
        cols.append(Column("benchmark", _bench_label(view), "unit"))
    cols += [Column("unit", "Unit"), Column("reason", "Note")]
    return Table(
        name,
        title,
        frame.reset_index(drop=True),
        cols,
        note="Over the period; benchmark-relative metrics have no benchmark column. "
        "n/a: undefined (see note). Sharpe, Sortino and alpha use the "
        f"{view.risk_free_label or 'risk-free rate 0.00 % a year'}.",
    )


def series_table(view: PerformanceView) -> Table:
    frame = pd.DataFrame(
        {"date": view.index_level.index, "level": view.index_level.to_numpy(), "index": view.index.to_numpy()}
    )
    cols = [
        Column("date", "Date", "date"),
        Column("level", "Index level", "level"),
        Column("index", "Index (base 100)", "level"),
    ]
    if view.benchmark is not None:
        frame["benchmark"] = view.benchmark.reindex(view.index_level.index).to_numpy()
        cols.append(Column("benchmark", f"{_bench_label(view)} (base 100)", "level"))
    frame["drawdown"] = view.drawdown.reindex(view.index_level.index).to_numpy()
    cols.append(Column("drawdown", "Drawdown", "pct"))
    return Table(
        "Series",
        "Index and benchmark series",
        frame,
        cols,
        show=False,
        note="Daily levels; base 100 at the first date of the period.",
    )


def weights_history_table(view: PerformanceView) -> Table:
    wh = view.weights_history
    frame = (
        wh.reset_index().rename(columns={wh.index.name or "index": "date"})
        if not wh.empty
        else pd.DataFrame(columns=["date"])
    )
    frame.columns = [str(c) for c in frame.columns]
    cols = [Column("date", "Rebalance date", "date")] + [Column(str(c), str(c), "pct") for c in wh.columns]
    return Table(
        "Weights history",
        "Weights at each rebalance (after trading)",
        frame,
        cols,
        show=False,
        note="The first row is the allocation in force at the start of the period.",
    )


def _year_labels(view: PerformanceView) -> dict[int, str]:
    """Partial years marked ("2018 (from 03-28)", "2026 (to 11-27)"): periods.year_labels of the period."""
    return year_labels(view.index_level.index, to_date=False)


def monthly_table(
    monthly: pd.DataFrame, yearly: pd.Series | None, name: str, title: str, labels: dict[int, str] | None = None
) -> Table:
    """Months 1..12 and the year total (the yearly return, equal to the compounded months); with ``labels``
    the documents show each year's label (partial years marked), the exports keep the year number too."""
    frame = monthly.copy()
    frame.columns = [MONTHS[int(m) - 1] for m in frame.columns]
    if yearly is not None:
        frame["Year"] = yearly.reindex(frame.index)
    frame = frame.reset_index().rename(columns={"year": "year"})
    frame["year"] = frame["year"].astype(int)
    if labels:
        frame.insert(1, "period", [labels.get(int(y), str(y)) for y in frame["year"]])
        cols = [Column("year", "Year", "year", doc=False), Column("period", "Year")]
    else:
        cols = [Column("year", "Year", "year")]
    cols += [Column(m, m, "pct") for m in MONTHS]
    if yearly is not None:
        cols.append(Column("Year", "Year total", "pct"))
    return Table(name, title, frame, cols)


def drawdowns_table(view: PerformanceView) -> Table:
    cols = [
        Column("start", "Start (peak)", "date"),
        Column("trough", "Trough", "date"),
        Column("recovery", "Recovery", "date"),
        Column("depth", "Depth", "pct"),
        Column("length", "Length (days)", "int"),
        Column("duration_to_trough", "Days to trough", "int"),
    ]
    return Table(
        "Drawdowns",
        f"Worst {len(view.drawdowns)} drawdowns",
        view.drawdowns,
        cols,
        note="Trading days; n/a recovery: not recovered by the end of the period.",
    )


def trades_table(view: PerformanceView, show: bool = False) -> Table:
    cols = [
        Column("date", "Date", "date"),
        Column("symbol", "Symbol"),
        Column("name", "Name"),
        Column("before", "Weight before", "pct"),
        Column("after", "Weight after", "pct"),
        Column("trade", "Trade", "pct"),
    ]
    frame = view.trades.sort_values(["date", "trade"], ascending=[False, False], ignore_index=True)
    return Table(
        "Trades",
        "Trades at each rebalance",
        frame,
        cols,
        show=show,
        doc_rows=DOC_ROWS,
        note="Trade = weight after - weight before (drifted), fractions of the index level. "
        "Newest first; the XLSX/CSV exports hold every trade.",
    )


def trailing_table(view: PerformanceView) -> Table:
    labels = {"since_inception": "Since inception"}
    frame = view.trailing.reset_index()
    frame["period"] = frame["period"].map(lambda p: labels.get(p, p))
    cols = [Column("period", "Period"), Column("index", "Index", "pct")]
    if view.benchmark is not None:
        cols.append(Column("benchmark", _bench_label(view), "pct"))
    return Table(
        "Trailing returns",
        f"Trailing returns as of {view.end_date}",
        frame,
        cols,
        note="3Y, 5Y, 10Y annualised; since inception annualised when longer than a year.",
    )


def yearly_table(view: PerformanceView) -> Table:
    frame = view.yearly_returns.reset_index()
    labels = _year_labels(view)
    frame.insert(1, "period", [labels.get(int(y), str(y)) for y in frame["year"]])
    cols = [Column("year", "Year", "year", doc=False), Column("period", "Year"), Column("index", "Index", "pct")]
    if view.benchmark is not None:
        cols += [Column("benchmark", _bench_label(view), "pct"), Column("excess", "Excess", "pct")]
    return Table(
        "Yearly returns",
        "Calendar-year returns",
        frame,
        cols,
        note="Partial years are marked: the first is measured from the period's base date, the last to its end date.",
    )


def _core_exports(view: PerformanceView) -> list[Table]:
    """The tables every report exports (XLSX sheets / CSV files), whatever its type."""
    return [
        summary_table(view),
        series_table(view),
        weights_history_table(view),
        monthly_table(
            view.monthly_returns,
            view.yearly_returns["index"],
            "Monthly returns",
            "Monthly returns (index)",
            _year_labels(view),
        ),
        drawdowns_table(view),
        trades_table(view),
    ]


# --------------------------------------------------------------------------- charts
def _cum(series: pd.Series) -> pd.Series:
    return series / 100.0 - 1.0


def _lines(view: PerformanceView, fn: Callable[[pd.Series], pd.Series], title: str, key: str, **kw: Any) -> Chart:
    series = {"Index": fn(view.index)}
    if view.benchmark is not None:
        series[_bench_label(view)] = fn(view.benchmark)
    return Chart(key, title, "line", x=view.index.index, series=series, **kw)


def _rolling_chart(view: PerformanceView, metric: str, title: str, y_kind: str) -> Chart | None:
    cols = [c for c in view.rolling.columns if c.startswith(metric + "_")]
    if not cols or view.rolling[cols].isna().all().all():
        return None
    series = {f"{c.split('_')[-1]} days": view.rolling[c] for c in cols}
    return Chart(f"rolling_{metric}", title, "line", x=view.rolling.index, series=series, y_kind=y_kind)


def _heatmap(
    monthly: pd.DataFrame, title: str, key: str, yearly: pd.Series | None = None, labels: dict[int, str] | None = None
) -> Chart:
    """Months (and, with ``yearly``, a year-total column) by year; rows named by ``labels``."""
    z = monthly.to_numpy(dtype=float)
    x = list(MONTHS)
    if yearly is not None:
        z = np.column_stack([z, yearly.reindex(monthly.index).to_numpy(dtype=float)]) if len(z) else z
        x.append(YEAR_TOTAL)
    names = labels or {}
    return Chart(key, title, "heatmap", x=x, y=[names.get(int(y), str(y)) for y in monthly.index], z=z)


def _distribution(view: PerformanceView) -> Chart:
    series = {"Index": view.returns["index"].dropna().to_numpy()}
    if "benchmark" in view.returns:
        series[_bench_label(view)] = view.returns["benchmark"].dropna().to_numpy()
    return Chart("distribution", "Distribution of daily returns", "histogram", series=series)


def _underwater(view: PerformanceView) -> Chart:
    series = {"Index": view.drawdown}
    if view.benchmark_drawdown is not None:
        series[_bench_label(view)] = view.benchmark_drawdown
    return Chart(
        "underwater", "Underwater (drawdown from the running peak)", "area", x=view.drawdown.index, series=series
    )


def _yearly_bars(view: PerformanceView) -> Chart:
    yr = view.yearly_returns
    series = {"Index": yr["index"]}
    if "benchmark" in yr:
        series[_bench_label(view)] = yr["benchmark"]
    labels = _year_labels(view)
    return Chart(
        "annual", "Annual returns vs benchmark", "bar", x=[labels.get(int(y), str(y)) for y in yr.index], series=series
    )


def _present(*blocks: Any) -> list[Any]:
    return [b for b in blocks if b is not None]


# --------------------------------------------------------------------------- the four types
def _performance(view: PerformanceView) -> list[Section]:
    m = view.metrics
    headline = (
        f"Over the period the index returned {fmt(m.get('total_return'), 'pct')} "
        f"(CAGR {fmt(m.get('cagr'), 'pct')}, volatility {fmt(m.get('volatility'), 'pct')}, "
        f"Sharpe {fmt(m.get('sharpe'), 'ratio')}, max drawdown {fmt(m.get('max_drawdown'), 'pct')})"
    )
    if view.benchmark is not None:
        headline += f"; {_bench_label(view)} returned {fmt(view.benchmark_metrics.get('total_return'), 'pct')}"
    return [
        Section(
            "Performance",
            [
                Paragraph(headline + "."),
                _lines(view, _cum, "Cumulative return vs benchmark", "cumulative"),
                _lines(
                    view,
                    lambda s: s,
                    "Cumulative growth (log scale, base 100)",
                    "cumulative_log",
                    y_kind="level",
                    log_y=True,
                ),
                _lines(view, lambda s: s * 100.0, "Growth of 10,000", "growth_10000", y_kind="level"),
                _yearly_bars(view),
                yearly_table(view),
                _heatmap(
                    view.monthly_returns,
                    "Monthly returns (index)",
                    "monthly_heatmap",
                    view.yearly_returns["index"],
                    _year_labels(view),
                ),
                monthly_table(
                    view.monthly_returns,
                    view.yearly_returns["index"],
                    "Monthly returns",
                    "Monthly returns (index)",
                    _year_labels(view),
                ),
                _distribution(view),
            ],
        ),
        Section(
            "Risk",
            _present(
                _rolling_chart(view, "vol", "Rolling volatility (annualised)", "pct"),
                _rolling_chart(view, "sharpe", "Rolling Sharpe ratio", "ratio"),
                _rolling_chart(view, "beta", "Rolling beta to the benchmark", "ratio"),
                _underwater(view),
                drawdowns_table(view),
            ),
        ),
        Section("Metrics", [summary_table(view), trailing_table(view)]),
    ]


def _allocation(view: PerformanceView) -> list[Section]:
    wn, sw = view.weights_now, view.sector_weights
    reb = view.rebalances
    current_cols = [
        Column("symbol", "Symbol"),
        Column("name", "Name"),
        Column("sector", "Sector"),
        Column("weight", "Weight", "pct"),
    ]
    att = view.attribution
    attribution = pd.DataFrame(
        [
            {"item": "Assets (sum of contributions)", "value": att["assets"]},
            {"item": "Transaction costs", "value": -att["cost_drag"]},
            {"item": "Other (data hygiene, rounding)", "value": att["residual"]},
            {"item": "Index return over the period", "value": att["total"]},
        ]
    )
    total_turnover = float(reb["turnover"].sum()) if len(reb) else 0.0
    total_cost = float(reb["cost"].sum()) if len(reb) else 0.0
    hist = view.sector_weights_history
    blocks_hist: list[Any] = []
    if not hist.empty:
        blocks_hist.append(
            Chart(
                "sector_history",
                "Sector weights at each rebalance",
                "area",
                x=hist.index,
                series={str(c): hist[c] for c in hist.columns},
                stacked=True,
                colors={str(c): sector_color(c) for c in hist.columns},
            )
        )
    wh = view.weights_history
    if not wh.empty:
        top = list(wh.columns[:10])
        series = {str(c): wh[c] for c in top}
        if len(wh.columns) > 10:
            series["Other"] = wh[wh.columns[10:]].sum(axis=1)
        blocks_hist.append(
            Chart(
                "asset_history",
                "Asset weights at each rebalance (largest 10 + other)",
                "area",
                x=wh.index,
                series=series,
                stacked=True,
                colors={"Other": sector_color("Other")},
            )
        )
    return [
        Section(
            "Current allocation",
            [
                Paragraph(
                    f"Weights at the close of {view.end_date}, drifted with prices since the last rebalance; "
                    f"{len(wn)} holdings."
                ),
                Chart(
                    "weights_now",
                    "Current weights by asset",
                    "barh",
                    x=wn["symbol"].tolist(),
                    series={"Weight": wn["weight"].to_numpy()},
                ),
                Table("Current weights", "Current weights by asset", wn, current_cols),
                Chart(
                    "sector_now",
                    "Current weights by sector",
                    "barh",
                    x=sw["sector"].tolist(),
                    series={"Weight": sw["weight"].to_numpy()},
                    bar_colors=[sector_color(s) for s in sw["sector"]],
                ),
                Table(
                    "Sector weights",
                    "Current weights by sector",
                    sw,
                    [Column("sector", "Sector"), Column("weight", "Weight", "pct")],
                ),
            ],
        ),
        Section("Weight history", blocks_hist + [weights_history_table(view)]),
        Section(
            "Rebalancing",
            [
                Paragraph(
                    f"{len(reb)} rebalances in the period; total turnover {fmt(total_turnover, 'pct')}, "
                    f"costs paid {fmt(total_cost, 'pct')} of the index level (sum over rebalances), a drag "
                    f"of {fmt(att['cost_drag'], 'pct')} on the period return."
                ),
                Chart(
                    "turnover", "Turnover at each rebalance", "bar", x=reb["date"], series={"Turnover": reb["turnover"]}
                ),
                Table(
                    "Rebalances",
                    "Rebalances: turnover and costs",
                    reb.sort_values("date", ascending=False, ignore_index=True),
                    [
                        Column("date", "Date", "date"),
                        Column("turnover", "Turnover", "pct"),
                        Column("cost", "Cost", "pct"),
                        Column("buys", "Buys", "int"),
                        Column("sells", "Sells", "int"),
                    ],
                    doc_rows=DOC_ROWS,
                    note="Newest first. Turnover = sum of |trade weights|; cost as a fraction "
                    "of the pre-trade level. The exports hold every rebalance.",
                ),
                trades_table(view, show=True),
            ],
        ),
        Section(
            "Contribution to return",
            [
                Chart(
                    "contribution",
                    "Contribution by asset",
                    "barh",
                    x=view.contribution["symbol"].tolist(),
                    series={"Contribution": view.contribution["contribution"].to_numpy()},
                ),
                Table(
                    "Contribution",
                    "Contribution to return by asset",
                    view.contribution,
                    [
                        Column("symbol", "Symbol"),
                        Column("name", "Name"),
                        Column("sector", "Sector"),
                        Column("avg_weight", "Average weight", "pct"),
                        Column("contribution", "Contribution", "pct"),
                    ],
                ),
                Chart(
                    "sector_contribution",
                    "Contribution by sector",
                    "barh",
                    x=view.sector_contribution["sector"].tolist(),
                    series={"Contribution": view.sector_contribution["contribution"].to_numpy()},
                ),
                Table(
                    "Sector contribution",
                    "Contribution to return by sector",
                    view.sector_contribution,
                    [Column("sector", "Sector"), Column("contribution", "Contribution", "pct")],
                ),
                Table(
                    "Attribution",
                    "From contributions to the index return",
                    attribution,
                    [Column("item", "Item"), Column("value", "Return", "pct")],
                    note="Contribution_i = sum over days of weight(t-1) x level(t-1) x return_i(t) / base level.",
                ),
            ],
        ),
        Section(
            "Metrics",
            [
                summary_table(
                    view,
                    ["total_return", "cagr", "volatility", "sharpe", "max_drawdown"],
                    name="Key metrics",
                    title="Key metrics",
                )
            ],
        ),
    ]


RISK_KEYS = [
    "volatility",
    "var_95",
    "cvar_95",
    "var_99",
    "cvar_99",
    "max_drawdown",
    "current_drawdown",
    "sharpe",
    "sortino",
    "calmar",
    "beta",
    "correlation",
]
BENCHMARK_KEYS = [
    "total_return",
    "cagr",
    "volatility",
    "sharpe",
    "max_drawdown",
    "beta",
    "alpha",
    "correlation",
    "tracking_error",
    "information_ratio",
    "up_capture",
    "down_capture",
]


def _risk(view: PerformanceView) -> list[Section]:
    m = view.metrics
    days_cols = [Column("date", "Date", "date"), Column("index", "Index", "pct")]
    weeks_cols = [Column("week_ending", "Week ending", "date"), Column("index", "Index", "pct")]
    if view.benchmark is not None:
        days_cols.append(Column("benchmark", _bench_label(view), "pct"))
        weeks_cols.append(Column("benchmark", _bench_label(view), "pct"))
    corr = view.correlation.copy()
    corr_frame = corr.reset_index(names="asset") if not corr.empty else pd.DataFrame(columns=["asset"])
    corr_frame.columns = [str(c) for c in corr_frame.columns]
    corr_cols = [Column("asset", "")] + [Column(str(c), str(c), "ratio") for c in corr.columns]
    sections = [
        Section(
            "Risk summary",
            [
                Paragraph(
                    f"Volatility {fmt(m.get('volatility'), 'pct')} a year; on a typical bad day (1 in 20) the "
                    f"index lost at least {fmt(_neg(m.get('var_95')), 'pct')} (VaR 95%), "
                    f"{fmt(_neg(m.get('cvar_95')), 'pct')} on average beyond it (CVaR 95%)."
                ),
                summary_table(view, RISK_KEYS, name="Risk metrics", title="Risk metrics"),
                _rolling_chart(view, "vol", "Rolling volatility (annualised)", "pct"),
                _distribution(view),
            ],
        ),
        Section("Drawdowns", [_underwater(view), drawdowns_table(view)]),
        Section(
            "Worst days and weeks",
            [
                Table("Worst days", f"Worst {len(view.worst_days)} days", view.worst_days, days_cols),
                Table(
                    "Worst weeks",
                    f"Worst {len(view.worst_weeks)} weeks",
                    view.worst_weeks,
                    weeks_cols,
                    note="Weeks end on Friday; the first week is measured from the start of the period.",
                ),
            ],
        ),
        Section(
            "Stress periods",
            [
                Paragraph("The worst calendar months of the benchmark in the period and how the index fared."),
                Table(
                    "Stress periods",
                    "Worst benchmark months",
                    view.stress,
                    [
                        Column("month", "Month"),
                        Column("benchmark", _bench_label(view), "pct"),
                        Column("index", "Index", "pct"),
                        Column("excess", "Index - benchmark", "pct"),
                    ],
                ),
            ]
            if view.benchmark is not None
            else [Paragraph("No benchmark: stress periods are not available.")],
        ),
        Section(
            "Correlation and beta",
            _present(
                Paragraph(
                    "Pearson correlation of daily returns over the period: the index, the benchmark and the "
                    "largest current holdings."
                ),
                _heatmap_corr(corr),
                Table("Correlation", "Correlation matrix of daily returns", corr_frame, corr_cols),
                _rolling_chart(view, "beta", "Rolling beta to the benchmark", "ratio"),
            ),
        ),
    ]
    return sections


def _heatmap_corr(corr: pd.DataFrame) -> Chart | None:
    if corr.empty:
        return None
    labels = [str(c) for c in corr.columns]
    return Chart(
        "correlation",
        "Correlation of daily returns",
        "heatmap",
        x=labels,
        y=labels,
        z=corr.to_numpy(dtype=float),
        y_kind="ratio",
    )


def _neg(value: Any) -> Any:
    return None if is_missing(value) else -float(value)


def _benchmark(view: PerformanceView) -> list[Section]:
    if view.benchmark is None:
        return [
            Section(
                "Benchmark comparison",
                [Paragraph("No benchmark prices are stored for this period, so there is nothing to compare against.")],
            ),
            Section("Metrics", [summary_table(view)]),
        ]
    m = view.metrics
    rel = (view.index / view.benchmark.reindex(view.index.index) - 1.0).rename("Relative")
    excess_cols = [c for c in view.rolling.columns if c.startswith("excess_")]
    return [
        Section(
            "Relative performance",
            [
                Paragraph(
                    f"The index returned {fmt(m.get('total_return'), 'pct')} against "
                    f"{fmt(view.benchmark_metrics.get('total_return'), 'pct')} for {_bench_label(view)}; "
                    f"tracking error {fmt(m.get('tracking_error'), 'pct')}, information ratio "
                    f"{fmt(m.get('information_ratio'), 'ratio')}, beta {fmt(m.get('beta'), 'ratio')}."
                ),
                _lines(view, _cum, "Cumulative return vs benchmark", "cumulative"),
                Chart(
                    "relative",
                    f"Relative performance (index / {_bench_label(view)} - 1)",
                    "line",
                    x=rel.index,
                    series={"Relative": rel},
                ),
                summary_table(view, BENCHMARK_KEYS, name="Benchmark metrics", title="Index vs benchmark"),
            ],
        ),
        Section(
            "Rolling excess return",
            _present(
                Chart(
                    "rolling_excess",
                    "Rolling excess return (index - benchmark, trailing window)",
                    "line",
                    x=view.rolling.index,
                    series={f"{c.split('_')[-1]} days": view.rolling[c] for c in excess_cols},
                )
                if excess_cols
                else None,
                _rolling_chart(view, "beta", "Rolling beta to the benchmark", "ratio"),
            ),
        ),
        Section("Calendar comparison", [_yearly_bars(view), yearly_table(view), trailing_table(view)]),
    ]


_BUILDERS = {"performance": _performance, "allocation": _allocation, "risk": _risk, "benchmark": _benchmark}


def build_document(
    report_type: str, period: str, view: PerformanceView, *, generated_by: str, generated_at: dt.datetime
) -> ReportDocument:
    """The document of ``report_type`` for ``view`` (a ValueError for an unknown type)."""
    if report_type not in _BUILDERS:
        raise ValueError(f"unknown report type {report_type!r}")
    sections = _BUILDERS[report_type](view)
    if report_type == "risk":  # issue 15: "Monte Carlo", "Stress scenarios", "Factor regression"
        from core.services.reporting.risk_sections import risk_sections

        sections = sections + risk_sections(view.config_id)
    if report_type == "benchmark":  # issue 15: up to three comparison series of the version
        from core.services.reporting.risk_sections import comparison_section

        extra = comparison_section(view)
        sections = sections + ([extra] if extra is not None else [])
    basis = basis_label(view.params.get("basis"))
    for section in sections:  # issue 15, item 7: the basis on every chart title (and on the cover, below)
        for block in section.blocks:
            if isinstance(block, Chart):
                block.title = f"{block.title} · {basis}"
    doc_tables = [b for s in sections for b in s.blocks if isinstance(b, Table) and b.export]
    exports: list[Table] = []
    seen: set[str] = set()
    for table in _core_exports(view) + doc_tables:
        if table.name not in seen:
            seen.add(table.name)
            exports.append(table)
    definitions = [(label, formula, unit) for label, formula, unit in METRIC_DEFINITIONS.values()]
    try:
        methodology = describe_config(view.params)
    except Exception as exc:  # noqa: BLE001 - an old stored config must not stop the report
        methodology = [("Configuration", f"could not be described: {exc}")]
    return ReportDocument(
        report_type=report_type,
        title=REPORT_TYPES[report_type],
        period=period,
        config_label=f"{view.config_label} · {basis}",
        period_label=PERIOD_LABELS.get(period, period),
        start=view.base_date,
        end=view.end_date,
        generated_at=generated_at,
        generated_by=generated_by,
        sources=view.sources,
        demo=view.demo,
        benchmark_symbol=view.benchmark_symbol,
        sections=sections,
        methodology=methodology,
        definitions=definitions,
        export_tables=exports,
        warnings=list(view.warnings),
    )


__all__ = [
    "REPORT_TYPES",
    "FORMATS",
    "MISSING",
    "DEMO_NOTICE",
    "Column",
    "Table",
    "Chart",
    "Paragraph",
    "KeyValues",
    "Section",
    "ReportDocument",
    "fmt",
    "build_document",
    "table_rows",
    "is_missing",
    "TRAILING_PERIODS",
]
