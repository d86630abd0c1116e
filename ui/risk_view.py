"""The Dashboard Scenarios section: issue 15's panels: Monte Carlo projection, stress scenarios (historical and
hypothetical), factor regression and the comparison series.

Layout only: every number comes from :func:`core.services.risk_views.risk_view` (the risk report shows the same
data) and :func:`core.services.market` (comparisons); definitions in docs/methodology.md. Session-state keys are
prefixed ``risk15_``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.quant.montecarlo import METHODS
from core.quant.stress import Shock
from core.schemas.strategy import basis_label
from core.services.dashboard import DashboardData
from core.services.risk_views import MonteCarloParams, RiskView
from ui import cache, charts, plotly_element, tables
from ui.auth import actor
from ui.errors import shown_errors

KEY = "risk15_"
_METHOD_LABELS = {"bootstrap": "Block bootstrap", "normal": "Normal", "t": "Student-t"}
#: The Monte Carlo inputs the section opens with (its widgets' defaults), which the Dashboard computes ahead.
DEFAULT_TARGET = 20_000.0
DEFAULTS = MonteCarloParams(years=10, method=METHODS[0], seed=0, contribution=0.0, target=DEFAULT_TARGET)
#: Bars of the maximum-drawdown histogram (binned on the server: the browser gets 40 bars, not 10,000 values).
DRAWDOWN_BINS = 40


def prewarm(token: str, config_id: int) -> None:
    """Compute this version's Risk view with the section's defaults ahead, on the prewarm thread (served app)."""
    cache.prewarm_risk_view(
        token, config_id, actor=actor(), monte_carlo=DEFAULTS, shocks=shocks_of(_default_shock_rows())
    )


def _basis(data: DashboardData) -> str:
    return basis_label(data.basis)


def _figure(fig: go.Figure, title: str, basis: str | None, *, height: int, percent_y: bool = False) -> go.Figure:
    """``fig`` in the Dashboard's shared layout (:func:`ui.charts.layout`: the title under the modebar strip, so
    the toolbar never covers it at any width), its title naming the price basis (:func:`ui.charts.with_basis`)."""
    return charts.with_basis(charts.layout(fig, title, height=height, percent_y=percent_y), basis)


def _fan(view: RiskView) -> go.Figure:
    fan = view.monte_carlo_table()  # monthly steps: at most 360 rows
    fig = go.Figure()
    # the index's colour from the one palette (charts.for_dark lightens it, fills too, in the dark theme); opaque
    # enough that the outer band and its legend swatch still show on the dark background
    outer, inner = charts.translucent(charts.INDEX_COLOR, 0.22), charts.translucent(charts.INDEX_COLOR, 0.45)
    fig.add_trace(go.Scatter(x=fan["years"], y=fan["p95"], line={"width": 0}, name="p95", showlegend=False))
    fig.add_trace(
        go.Scatter(
            x=fan["years"],
            y=fan["p5"],
            fill="tonexty",
            line={"width": 0},
            name="p5-p95",
            fillcolor=outer,
        )
    )
    fig.add_trace(go.Scatter(x=fan["years"], y=fan["p75"], line={"width": 0}, name="p75", showlegend=False))
    fig.add_trace(
        go.Scatter(
            x=fan["years"],
            y=fan["p25"],
            fill="tonexty",
            line={"width": 0},
            name="p25-p75",
            fillcolor=inner,
        )
    )
    fig.add_trace(go.Scatter(x=fan["years"], y=fan["p50"], name="median", line={"color": charts.INDEX_COLOR}))
    _figure(fig, "Monte Carlo projection", view.basis, height=360)
    fig.update_layout(xaxis_title="years", yaxis_title="value")
    return fig


def drawdown_bins(drawdowns: np.ndarray, bins: int = DRAWDOWN_BINS) -> tuple[np.ndarray, np.ndarray]:
    """Counts and edges of the paths' maximum drawdowns in ``bins`` equal bins (:func:`numpy.histogram`)."""
    values = np.asarray(drawdowns, dtype=float)
    counts, edges = np.histogram(values[np.isfinite(values)], bins=bins)
    return counts, edges


def _drawdown_histogram(drawdowns: np.ndarray, basis: str | None) -> go.Figure:
    counts, edges = drawdown_bins(drawdowns)
    centers, widths = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
    ranges = [f"{lo:.1%} to {hi:.1%}" for lo, hi in zip(edges[:-1], edges[1:])]
    fig = go.Figure(
        go.Bar(
            x=centers,
            y=counts,
            width=widths,
            customdata=ranges,
            hovertemplate="%{customdata}: %{y} paths<extra></extra>",
            name="paths",
        )
    )
    _figure(fig, "Distribution of the maximum drawdown", basis, height=260)
    fig.update_layout(xaxis_tickformat=".0%", hovermode="closest", bargap=0.05, yaxis_title="paths")
    return fig


def _default_shock_rows() -> pd.DataFrame:
    """The hypothetical shocks the section opens with (editable rows)."""
    return pd.DataFrame({"kind": ["asset_class", "asset_class"], "target": ["equity", "bond"], "shock %": [-30.0, 5.0]})


def shocks_of(frame: pd.DataFrame) -> list[Shock]:
    """The shocks the editor's rows name (rows without a kind, target or number are skipped)."""
    out = []
    for row in frame.dropna().itertuples(index=False):
        kind, target, shock = str(row[0]), str(row[1]).strip(), float(row[2])
        if target and kind in ("asset", "sector", "asset_class"):
            out.append(Shock(kind, target, shock / 100.0))  # type: ignore[arg-type]
    return out


#: The shock rows while the editor is not drawn (its expander closed, or another section shown): Streamlit drops
#: an editor's edits in a run that does not draw it.
SHOCK_ROWS = KEY + "shock_rows"
#: The rows the open editor started from, and the number of times it was opened (its key: fresh edits each time).
SHOCK_BASE, SHOCK_OPENED = KEY + "shock_base", KEY + "shock_opened"
SHOCKS_OPEN = KEY + "shocks_open"


def _editor_key() -> str:
    """The shock editor's key for its current opening (a fresh editor, with no edits, each time it is opened)."""
    return f"{KEY}shocks{st.session_state.get(SHOCK_OPENED, 0)}"


def _shocks() -> list[Shock]:
    """The hypothetical shocks: an editor drawn only while its expander is open (issue 17: a table editor, even in a
    closed expander, was a third of the Scenarios section's time in the browser). While closed, the rows last
    edited (the defaults at first) apply; opened again, the editor starts from them."""
    held = st.session_state.get(SHOCK_ROWS)
    rows = _default_shock_rows() if held is None else held
    box = st.expander(
        "Hypothetical shocks (applied in the stress scenarios)",
        icon=":material/bolt:",
        key=SHOCKS_OPEN,
        on_change="rerun",
    )
    if not box.open and (SHOCK_BASE not in st.session_state or _editor_key() not in st.session_state):
        st.session_state.pop(SHOCK_BASE, None)  # not drawn in the last run (another section): nothing pending
        return shocks_of(rows)
    if SHOCK_BASE not in st.session_state:  # just opened: the edits start from the rows that apply
        st.session_state[SHOCK_BASE] = rows
        st.session_state[SHOCK_OPENED] = int(st.session_state.get(SHOCK_OPENED, 0)) + 1
    # Drawn while open, and once more in the run that closes it (inside the closed expander): an edit committed by
    # the very click that closes it arrives in that run, and only the editor applies its own edits.
    with box:
        frame = st.data_editor(
            st.session_state[SHOCK_BASE],
            key=_editor_key(),
            num_rows="dynamic",
            width="stretch",
            column_config={
                "kind": st.column_config.SelectboxColumn("Applies to", options=["asset", "sector", "asset_class"]),
                "target": st.column_config.TextColumn("Symbol, sector or class"),
                "shock %": st.column_config.NumberColumn("Shock %", min_value=-100.0, max_value=1000.0),
            },
        )
    st.session_state[SHOCK_ROWS] = frame
    if not box.open:
        st.session_state.pop(SHOCK_BASE, None)
    return shocks_of(frame)


def comparisons(data: DashboardData, series: dict[str, pd.Series], *, dark: bool = False) -> None:
    """Index, benchmark and the version's comparison series, rebased to 100 at the first common date."""
    if not series:
        return
    lines = {"Index": data.index}
    if data.benchmark is not None:
        lines[data.benchmark_symbol or "Benchmark"] = data.benchmark
    lines.update(series)
    frame = pd.DataFrame(lines).dropna()
    if frame.empty:
        return
    frame = frame / frame.iloc[0] * 100
    fig = go.Figure([charts.screen_line(frame[c], name=c) for c in frame.columns])
    _figure(fig, "Index, benchmark and comparisons (rebased to 100)", data.basis, height=340)
    plotly_element.show(charts.preset_margins(fig), KEY + "comparisons", dark=dark)


#: The Scenarios section's views, one drawn at a time (a section switch draws its charts only, issue 17).
VIEWS: tuple[str, ...] = ("Monte Carlo", "Stress scenarios", "Factor regression")


def _monte_carlo_inputs(shown: bool) -> MonteCarloParams:
    """The Monte Carlo inputs: their widgets when ``shown`` (values kept while another view is drawn), else the
    values they hold (the defaults until changed)."""
    if not shown:
        held = st.session_state
        return MonteCarloParams(
            years=int(held.get(KEY + "years", DEFAULTS.years)),
            method=held.get(KEY + "method", DEFAULTS.method),
            seed=int(held.get(KEY + "seed", DEFAULTS.seed)),
            contribution=float(held.get(KEY + "contribution", DEFAULTS.contribution)),
            target=float(held.get(KEY + "target", DEFAULT_TARGET)),
        )
    c1, c2, c3, c4, c5 = st.columns(5)
    years = int(c1.number_input("Years", 1, 30, DEFAULTS.years, key=KEY + "years", persist_state="page"))
    method = c2.selectbox(
        "Method",
        METHODS,
        index=METHODS.index(DEFAULTS.method),
        format_func=lambda m: _METHOD_LABELS[m],
        key=KEY + "method",
        persist_state="page",
    )
    contribution = float(
        c3.number_input(
            "Yearly contribution",
            value=DEFAULTS.contribution,
            help="Added at the end of each simulated year (currency units); a negative amount is a yearly withdrawal.",
            step=1000.0,
            key=KEY + "contribution",
            persist_state="page",
        )
    )
    target = float(
        c4.number_input(
            "Target value", value=DEFAULT_TARGET, min_value=1.0, step=1000.0, key=KEY + "target", persist_state="page"
        )
    )
    seed = int(c5.number_input("Seed", 0, 2**31 - 1, DEFAULTS.seed, key=KEY + "seed", persist_state="page"))
    return MonteCarloParams(years=years, method=method, seed=seed, contribution=contribution, target=target)


def risk_panels(
    data: DashboardData, comparison_series: dict[str, pd.Series] | None = None, *, dark: bool | None = None
) -> None:
    """The comparison series, then one of the Monte Carlo, stress and factor views (:data:`VIEWS`) of the version
    ``data`` shows. Every view's inputs feed the one risk view (computed once per data version and inputs); a
    view's own widgets are drawn with it and keep their values while another view is shown. Charts are drawn in the
    dark theme's colours when ``dark`` (None: :func:`ui.plotly_element.dark_theme`)."""
    dark = plotly_element.dark_theme() if dark is None else dark
    basis = _basis(data)
    st.caption(f"Basis: {basis}. Sharpe, Sortino and alpha use the {data.risk_free_label or 'risk-free rate 0'}.")
    with shown_errors():
        comparisons(data, comparison_series or {}, dark=dark)
        shocks = _shocks()  # above the views whatever the view: the stress view applies them
        shown = (
            st.segmented_control(
                "Scenario view",
                VIEWS,
                key=KEY + "view",
                default=VIEWS[0],
                required=True,  # clicking the chosen view keeps it chosen
                label_visibility="collapsed",
                persist_state="page",  # kept while another Dashboard section is shown, like the inputs
            )
            or VIEWS[0]
        )
        st.subheader("Monte Carlo projection" if shown == VIEWS[0] else shown)
        params = _monte_carlo_inputs(shown == VIEWS[0])
        if shown == VIEWS[2]:
            newey_west = st.toggle("Newey-West standard errors", key=KEY + "nw", persist_state="page")
        else:
            newey_west = bool(st.session_state.get(KEY + "nw", False))
        token = cache.token()
        view = cache.risk_view(  # once per data version and inputs, shared (issue 17: seconds of CPU per run)
            token, data.config_id, actor=actor(), shocks=shocks, newey_west=newey_west, monte_carlo=params
        )

        def figure(name: str, build: Any) -> Any:
            """The section's figure ``name``, built once per data version, inputs and theme (shared, never changed):
            its fixed colours lightened in the dark theme (:func:`ui.charts.for_dark`), its margins preset."""
            inputs = repr((params, tuple(shocks), bool(newey_west)))

            def themed() -> go.Figure:
                fig = build()
                return charts.preset_margins(charts.for_dark(fig) if dark else fig)

            return cache.figure(token, (KEY + name, data.config_id, data.basis, dark, inputs), themed)

        def plot(name: str, build: Any) -> None:
            """Draw the figure ``name`` (:func:`figure`) under its own element key, in the theme's colours."""
            plotly_element.show(figure(name, build), KEY + name, dark=dark)

        for note in view.notes:
            st.info(note)
        if shown == VIEWS[0]:
            _monte_carlo_view(view, params, data.basis, plot)
        elif shown == VIEWS[1]:
            _stress_view(view, data.basis, plot)
        else:
            _factor_view(view, data.basis, plot)


def _monte_carlo_view(view: RiskView, params: MonteCarloParams, basis: str | None, plot: Any) -> None:
    if view.monte_carlo is None:
        return
    mc = view.monte_carlo
    left, right = st.columns([3, 1])
    with left:
        plot("fan", lambda: _fan(view))
    with right:
        dd = mc.drawdown_percentiles()
        st.metric("Probability of a loss", f"{mc.prob_loss:.1%}")
        st.metric(f"Probability of reaching {params.target:,.0f}", f"{(mc.prob_target or 0):.1%}")
        st.metric("Median max drawdown", f"{dd['p50']:.1%}", help=f"worst 5 %: {dd['p5']:.1%}")
    plot("dd", lambda: _drawdown_histogram(mc.max_drawdowns, basis))


def _stress_view(view: RiskView, basis: str | None, plot: Any) -> None:
    stress = view.stress_table()
    covered = stress[stress["covered"]]
    if len(covered):
        plot("stress", lambda: _stress_figure(covered, view.benchmark_symbol, basis))
    percent = st.column_config.NumberColumn(format="percent")  # a number column: a missing return is blank
    tables.show(
        stress.assign(covered=stress["covered"].map({True: "yes", False: "not covered"})),
        column_config={"index_return": percent, "benchmark_return": percent},
    )
    if view.hypothetical is not None:
        total, _applied = view.hypothetical
        st.metric("Index return under the hypothetical shocks", f"{total:.2%}")


def _factor_view(view: RiskView, basis: str | None, plot: Any) -> None:
    if view.factor is None or view.factor_set is None:
        return
    reg = view.factor
    st.caption(
        f"Factor set {view.factor_set.label}; {reg.nobs} days; R² {reg.r2:.3f}; alpha "
        f"{reg.alpha_annual:.2%} a year; "
        + (f"Newey-West ({reg.hac_lags} lags)" if reg.newey_west else "classical OLS")
        + " standard errors."
    )
    tables.show(
        view.factor_table(),
        column_config={
            "beta": st.column_config.NumberColumn(format="%.4f"),
            "t_stat": st.column_config.NumberColumn(format="%.2f"),
        },
    )
    if view.rolling_betas is not None:
        betas = view.rolling_betas.drop(
            columns=[c for c in view.rolling_betas.columns if c.startswith("alpha")]
        ).dropna(how="all")
        if len(betas):
            plot("betas", lambda: _betas_figure(betas, basis))


def _stress_figure(covered: pd.DataFrame, benchmark_symbol: str | None, basis: str | None) -> go.Figure:
    """Each covered scenario's index (and benchmark) return as bars lying along a percent axis, one row per scenario,
    the first at the top. Lying, not standing: a scenario's name is a row label whose width the margin is preset for
    (:func:`ui.charts.preset_margins`), at any screen width; standing, the names sat under bars Plotly could turn or
    cut ("2022 rate shock" at 390 px) and under the legend."""
    rows = covered["scenario"].astype(str).to_numpy()
    fig = go.Figure(
        [
            go.Bar(
                y=rows,
                x=covered["index_return"].to_numpy(dtype=float),
                name="Index",
                orientation="h",
                marker={"color": charts.INDEX_COLOR},
            )
        ]
    )
    if covered["benchmark_return"].notna().any():
        fig.add_trace(
            go.Bar(
                y=rows,
                x=covered["benchmark_return"].to_numpy(dtype=float),
                name=benchmark_symbol or "Benchmark",
                orientation="h",
                marker={"color": charts.BENCHMARK_COLOR},
            )
        )
    _figure(fig, "Stress scenarios on the current weights", basis, height=max(300, 46 * len(rows) + 140))
    fig.update_xaxes(tickformat=".0%")
    # the first scenario at the top, and within a row the index above the benchmark (the legend's order)
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(hovermode="closest", barmode="group")
    return fig


def _betas_figure(betas: pd.DataFrame, basis: str | None) -> go.Figure:
    fig = go.Figure([charts.screen_line(betas[c], name=c) for c in betas.columns])
    _figure(fig, "Rolling factor betas, 252 days", basis, height=300)
    return fig


def comparison_series_for(data: DashboardData) -> dict[str, Any]:
    """The comparison series of the version (from the price store), or nothing when it names none."""
    from core.services.risk_views import comparison_series_of

    return comparison_series_of(data.config_id)


#: Session-state key of the rows a refused factor file had (shown under the form until its next submission).
FACTOR_PROBLEMS = KEY + "factor_problems"


def _on_import_factors(on_submit: Callable[[], None] | None = None) -> None:
    from core.errors import AutoIndexError, ImportValidationError
    from core.services.factors import import_factors
    from ui import forms

    if on_submit is not None:
        on_submit()
    upload = st.session_state.get(KEY + "factor_file")
    st.session_state.pop(FACTOR_PROBLEMS, None)
    if upload is None:
        forms.set_errors("factors", {"file": "choose a CSV file first"})
        return
    try:
        out = import_factors(
            upload.getvalue(),
            upload.name,
            str(st.session_state.get(KEY + "factor_set") or ""),
            actor=actor(),
            unit="percent" if st.session_state.get(KEY + "factor_percent") else "fraction",
        )
    except ImportValidationError as exc:
        st.session_state[FACTOR_PROBLEMS] = [p.as_dict() for p in exc.rows]
        forms.set_errors("factors", {"file": f"refused: {len(exc.rows)} problem(s), nothing was imported"})
        return
    except AutoIndexError as exc:
        forms.set_errors("factors", getattr(exc, "errors", None) or {"file": str(exc)})
        return
    forms.clear("factors")
    forms.set_notice(
        "factors",
        f"Imported factor set {out['set']}: {out['rows']} values of "
        f"{', '.join(map(str, out['factors']))} ({out['first']} .. {out['last']}).",  # type: ignore[call-overload]
    )


def factor_import_form(on_submit: Callable[[], None] | None = None) -> None:
    """Data page (admins): import a factor CSV ``date, factor, value`` as a named set (replaced whole);
    ``on_submit`` is called first when the import is clicked (the page drops its other forms' messages)."""
    from ui import forms

    st.markdown("**Factor series** (for the factor regression on the Dashboard's Scenarios section)")
    st.caption(
        "Columns: date, factor, value: daily factor returns (e.g. Fama-French Mkt-RF, SMB, HML, RF). A factor "
        "named RF is the daily risk-free rate. One bad row refuses the file and nothing is written."
    )
    forms.notice("factors")
    st.text_input("Factor set name", key=KEY + "factor_set", placeholder="FF3 daily")
    forms.field_error("factors", "set_name")
    st.file_uploader("Factor file", type=["csv"], key=KEY + "factor_file")
    forms.field_error("factors", "file")
    st.checkbox("Values are in percent (divide by 100)", key=KEY + "factor_percent")
    st.button("Import factors", key=KEY + "factor_import", on_click=_on_import_factors, args=(on_submit,))
    problems = st.session_state.get(FACTOR_PROBLEMS)
    if problems:
        tables.show(pd.DataFrame(problems, columns=["row", "column", "problem", "value"]))
