"""The risk report's sections "Monte Carlo", "Stress scenarios" and "Factor regression" (issue 15).

Built from :func:`core.services.risk_views.risk_view` (the numbers of the Dashboard's Risk tab), as document blocks
(chart titles get the price basis in :func:`core.services.reporting.content.build_document`, like every report chart)
that every format renders: HTML and PDF draw the paragraphs, charts and tables; XLSX writes each table as a sheet
of exactly the section's name ("Monte Carlo": one row per horizon step with ``p5 .. p95``; "Stress scenarios":
``scenario, start, end, index_return, benchmark_return, covered``; "Factor regression": ``factor, beta, t_stat``
and a row with the R²); CSV writes them as files. Definitions: docs/methodology.md.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from core.services.access import SYSTEM
from core.services.reporting.document import Chart, Column, Paragraph, Section, Table, fmt
from core.services.risk_views import RiskView, risk_view

__all__ = ["SECTION_NAMES", "risk_sections", "sections_for"]

SECTION_NAMES = ("Monte Carlo", "Stress scenarios", "Factor regression")


def _monte_carlo(view: RiskView) -> Section:
    mc, p = view.monte_carlo, view.monte_carlo_params
    if mc is None:
        return Section("Monte Carlo", [Paragraph(n) for n in view.notes if n.startswith("Monte Carlo")])
    method = {
        "bootstrap": f"stationary block bootstrap of the index's daily returns (mean block {mc.block_length:g} days)",
        "normal": "normal daily log returns",
        "t": "Student-t daily log returns (5 degrees of freedom)",
    }[mc.method]
    dd = mc.drawdown_percentiles()
    items = [
        ("Method", method),
        ("Paths", f"{mc.n_paths:,}, seed {mc.seed}"),
        ("Horizon", f"{mc.years} years"),
        ("Start value", f"{p.start_value:,.0f}"),
        ("Yearly contribution", f"{p.contribution:,.0f}" if p.contribution else "none"),
        ("Probability of a loss", fmt(mc.prob_loss, "pct")),
        ("Median max drawdown", fmt(dd["p50"], "pct")),
        ("Max drawdown, worst 5 %", fmt(dd["p5"], "pct")),
    ]
    if mc.prob_target is not None and p.target is not None:
        items.append((f"Probability of reaching {p.target:,.0f}", fmt(mc.prob_target, "pct")))
    fan = view.monte_carlo_table()
    chart = Chart(
        "monte_carlo",
        "Monte Carlo fan: percentiles of the value",
        "line",
        x=fan["years"],
        series={f"p{q}": fan[f"p{q}"] for q in (5, 25, 50, 75, 95)},
        y_kind="level",
    )
    table = Table(
        "Monte Carlo",
        "Percentiles of the projected value by horizon step",
        fan,
        [Column("step", "step", "int"), Column("years", "years", "ratio")]
        + [Column(f"p{q}", f"p{q}", "level") for q in (5, 25, 50, 75, 95)],
        doc_rows=12,
        note="A projection from past daily returns, not a forecast.",
    )
    summary = Paragraph(
        "Projection: " + "; ".join(f"{k} {v}" if k == "Method" else f"{k.lower()}: {v}" for k, v in items) + "."
    )
    return Section("Monte Carlo", [summary, chart, table])


def _stress(view: RiskView) -> Section:
    frame = view.stress_table()
    blocks: list[Any] = [
        Paragraph(
            "Named historical windows replayed on the current weights (bought and held, cash earns nothing); "
            "'not covered' where the stored prices do not reach the window."
        )
    ]
    covered = frame[frame["covered"]]
    if len(covered):
        series = {"Index": covered["index_return"].to_numpy()}
        if covered["benchmark_return"].notna().any():
            series[view.benchmark_symbol or "Benchmark"] = covered["benchmark_return"].to_numpy()
        blocks.append(
            Chart("stress", "Stress scenarios", "bar", x=list(covered["scenario"]), series=series, y_kind="pct")
        )
    frame = frame.assign(covered=frame["covered"].map({True: "yes", False: "not covered"}))
    blocks.append(
        Table(
            "Stress scenarios",
            "Stress scenarios",
            frame,
            [
                Column("scenario", "scenario"),
                Column("start", "start", "date"),
                Column("end", "end", "date"),
                Column("index_return", "index_return", "pct"),
                Column("benchmark_return", "benchmark_return", "pct"),
                Column("covered", "covered"),
                Column("note", "note", doc=False),
            ],
        )
    )
    if view.hypothetical is not None:
        total, applied = view.hypothetical
        shocks = ", ".join(f"{s.kind} {s.target} {s.shock * 100:+g}%" for s in view.shocks)
        blocks.append(Paragraph(f"Hypothetical shocks ({shocks}): index return {fmt(total, 'pct')}."))
        blocks.append(
            Table(
                "Hypothetical shocks",
                "Shock applied to each holding",
                pd.DataFrame(
                    {
                        "symbol": applied.index,
                        "weight": view.weights.reindex(applied.index).values,
                        "shock": applied.values,
                    }
                ),
                [Column("symbol", "Symbol"), Column("weight", "Weight", "pct"), Column("shock", "Shock", "pct")],
            )
        )
    return Section("Stress scenarios", blocks)


def _factors(view: RiskView) -> Section:
    reg = view.factor
    if reg is None or view.factor_set is None:
        return Section(
            "Factor regression",
            [Paragraph(n) for n in view.notes if n.startswith("Factor")] or [Paragraph("No factor regression.")],
        )
    errors = f"Newey-West ({reg.hac_lags} lags)" if reg.newey_west else "classical OLS"
    blocks: list[Any] = [
        Paragraph(
            f"OLS of the index's daily excess returns ({view.risk_free_label}) on the factor set "
            f"{view.factor_set.label}, {reg.nobs} days: R² {fmt(reg.r2, 'ratio')}, alpha "
            f"{fmt(reg.alpha_annual, 'pct')} a year; t-statistics from {errors} standard errors."
        ),
        Table(
            "Factor regression",
            "Factor betas",
            view.factor_table(),
            [Column("factor", "factor"), Column("beta", "beta", "ratio"), Column("t_stat", "t_stat", "ratio")],
            note="The last row holds the R² of the regression in the beta column.",
        ),
    ]
    if view.rolling_betas is not None and view.rolling_betas.notna().any().any():
        betas = view.rolling_betas.drop(columns=[c for c in view.rolling_betas.columns if c.startswith("alpha")])
        blocks.append(
            Chart(
                "rolling_factor_betas",
                "Rolling factor betas (252 days)",
                "line",
                x=betas.index,
                series={c: betas[c] for c in betas.columns},
                y_kind="ratio",
            )
        )
    return Section("Factor regression", blocks)


def sections_for(view: RiskView) -> list[Section]:
    """The three sections of ``view``, in the order of :data:`SECTION_NAMES`."""
    return [_monte_carlo(view), _stress(view), _factors(view)]


def risk_sections(config_id: int) -> list[Section]:
    """The three sections of a config version with the default parameters (the report is already authorised: it
    runs as the system for a request whose owner was checked when it was queued)."""
    return sections_for(risk_view(config_id, actor=SYSTEM))


def comparison_section(view: Any) -> Section | None:
    """The benchmark report's "Comparison series": the version's up to three extra series beside the index and its
    benchmark over the report's period (rebased to 100), with the same risk metrics at the same rate; None when the
    version names none."""
    from core.quant.risk import risk_metrics
    from core.services.risk_views import comparison_series_of

    series = comparison_series_of(view.config_id)
    if not series:
        return None
    start, end = pd.Timestamp(view.base_date), pd.Timestamp(view.end_date)
    lines = {"Index": view.index_level}
    if view.benchmark is not None:
        lines[view.benchmark_symbol or "Benchmark"] = view.benchmark
    for name, levels in series.items():
        lines[name] = levels.reindex(levels.index.union(view.index_level.index)).ffill().reindex(view.index_level.index)
    frame = pd.DataFrame(lines).loc[start:end].dropna()
    if len(frame) < 2:
        return Section("Comparison series", [Paragraph("The comparison series have no prices in this period.")])
    rebased = frame / frame.iloc[0] * 100.0
    rows = []
    for name in frame.columns:
        m = risk_metrics(frame[name], None, rf=view.risk_free)
        rows.append(
            {
                "series": name,
                "total_return": m.get("total_return"),
                "cagr": m.get("cagr"),
                "volatility": m.get("volatility"),
                "sharpe": m.get("sharpe"),
                "max_drawdown": m.get("max_drawdown"),
            }
        )
    return Section(
        "Comparison series",
        [
            Chart(
                "comparisons",
                "Index, benchmark and comparison series (rebased to 100)",
                "line",
                x=rebased.index,
                series={c: rebased[c] for c in rebased.columns},
                y_kind="level",
            ),
            Table(
                "Comparison series",
                "Index, benchmark and comparison series",
                pd.DataFrame(rows),
                [
                    Column("series", "Series"),
                    Column("total_return", "Total return", "pct"),
                    Column("cagr", "CAGR", "pct"),
                    Column("volatility", "Volatility", "pct"),
                    Column("sharpe", "Sharpe", "ratio"),
                    Column("max_drawdown", "Max drawdown", "pct"),
                ],
                note=f"Over the dates all series share; Sharpe at the {view.risk_free_label or 'risk-free rate 0'}.",
            ),
        ],
    )
