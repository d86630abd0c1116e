"""Research screen helpers: start a parameter sweep, follow it, read and download its results, promote a variant.

Layout only: every action calls :mod:`core.services.sweeps` (which checks the user again on fresh state). Widget keys
are the ``KEY_*`` constants below (all prefixed ``research_``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.errors import AutoIndexError, ValidationFailed
from core.quant.risk import METRIC_DEFINITIONS
from core.schemas.strategy_version import ConfigVersionOut
from core.schemas.sweep import MAX_VARIANTS, SLEEVE_AXIS, SWEEPABLE, Grid, SweepOut, parse_param
from core.schemas.user import UserOut
from core.services import compute, sweeps
from ui import auth, forms, plotly_element, tables
from ui.errors import show_error, shown_errors
from ui.format import plural
from ui.live import keep_choice, rerun_when_changed
from ui.strategy_view import FIELDS, field_label

KEY_BASE = "research_base"
KEY_FIELDS = "research_fields"
KEY_VALUES = "research_values_"  # + field name
KEY_SPLIT_MODE = "research_split_mode"
KEY_SPLIT_DATE = "research_split_date"
KEY_WF = "research_walk_forward"
KEY_SELECTED = "research_selected"
KEY_METRIC = "research_metric"
KEY_X, KEY_Y = "research_x", "research_y"
KEY_FIX = "research_fix_"  # + field name
KEY_PROMOTE = "research_promote_variant"
KEY_PROMOTE_NAME = "research_promote_name"
KEY_NOTICE = "research_notice"
KEY_LIVE_SIGNATURE = "research_live_signature"

#: Seconds between two looks at a queued or running sweep (as the Tasks and Reports live panels).
LIVE_REFRESH_S = 1.5
#: Sweep states that can still change by themselves (a worker moves them on).
ACTIVE_STATES = ("queued", "running")

#: Example values shown for a field when it is chosen.
EXAMPLES = {
    "momentum_lookback": "63,126,252",
    "risk_parity_lookback": "21:126:21",
    "top_n": "none,10,20",
    "max_weight": "none,0.05,0.1",
    "drift_band": "none,0.02",
    "cost_bps": "0,10,25",
    "rebalance": "monthly,quarterly",
    "momentum_threshold": "0,0.05",
    SLEEVE_AXIS: "0.25",
}
_SPLITS = ("No split", "Split date", "Rolling windows")
#: Metrics a sweep stores beyond :data:`core.quant.risk.METRIC_DEFINITIONS`: (label, unit).
_EXTRA_METRICS = {
    "turnover": ("Turnover per year", "fraction"),
    "costs": ("Total costs", "fraction"),
    "deflated_sharpe": ("Deflated Sharpe", "ratio"),
}
_PREFIXES = {"is_": "In-sample ", "oos_": "Out-of-sample "}
#: The results table's own columns.
_COLUMN_LABELS = {"variant": "Variant", "rank": "Rank", "error": "Error"}


def field_name(field: str) -> str:
    """A sweepable field as the Strategy lab names it; without its percent unit where the grid takes the stored
    fraction (``max_weight=none,0.05``): "Max weight per asset"."""
    if field == SLEEVE_AXIS:
        return "Sleeve mixes"
    ui = FIELDS.get(field)
    label = field_label(field)
    return label.split(" (")[0] if ui is not None and ui.scale != 1 else label


def _values_label(field: str) -> str:
    ui = FIELDS.get(field)
    if field == SLEEVE_AXIS:
        return "Sleeve mixes: a step, or sleeves and a step"
    fractions = ui is not None and ui.scale != 1
    return f"{field_name(field)}: values" + (" (as fractions: 0.05 is 5%)" if fractions else "")


def _metric(column: str) -> tuple[str, str]:
    """A results column's label and unit: ``oos_cagr`` -> ("Out-of-sample CAGR", "fraction")."""
    prefix = next((p for p in _PREFIXES if column.startswith(p)), "")
    key = column[len(prefix) :]
    label, unit = _EXTRA_METRICS.get(key) or (METRIC_DEFINITIONS[key][0], METRIC_DEFINITIONS[key][2])
    return _PREFIXES.get(prefix, "") + label, unit


def metric_name(column: str) -> str:
    """A results metric as people read it: ``max_drawdown`` -> "Max drawdown"."""
    try:
        return _metric(column)[0]
    except KeyError:
        return str(tables.header(column))


def _grid() -> tuple[Grid | None, str | None]:
    """The grid the form describes, or the reason it cannot run."""
    fields = st.session_state.get(KEY_FIELDS) or []
    if not fields:
        return None, "choose at least one field to sweep"
    try:
        axes = [parse_param(f"{f}={st.session_state.get(KEY_VALUES + f, EXAMPLES.get(f, ''))}") for f in fields]
        return Grid(axes=axes).check(), None
    except ValidationFailed as exc:
        return None, "; ".join(exc.errors.values())


def start_form(user: UserOut, versions: list[ConfigVersionOut]) -> None:
    """Base version, fields and values, split; the variant count before it runs; Run."""
    if not versions:
        st.info("Save a strategy version first (Strategy page).")
        return
    labels: dict[int, str] = {v.id: f"{v.name} v{v.version}" + (" (active)" if v.is_active else "") for v in versions}
    ids = list(labels)
    active = next((v.id for v in versions if v.is_active), versions[0].id)
    st.selectbox("Start from version", ids, format_func=lambda i: labels[i], key=KEY_BASE, index=ids.index(active))
    st.multiselect(
        "Fields to sweep",
        [SLEEVE_AXIS, *SWEEPABLE],
        key=KEY_FIELDS,
        format_func=field_name,
        help="Values: a list (63,126,252), a range (start:stop:step), none for no value; sleeves: a "
        "simplex step (0.25) or sleeves and a step (equal+momentum:0.1).",
    )
    for field in st.session_state.get(KEY_FIELDS) or []:
        st.text_input(_values_label(field), value=EXAMPLES.get(field, ""), key=KEY_VALUES + field)
    mode = st.radio("Out-of-sample check", _SPLITS, horizontal=True, key=KEY_SPLIT_MODE)
    split, walk_forward = None, None
    if mode == _SPLITS[1]:
        split = st.date_input("In-sample up to", value=dt.date.today() - dt.timedelta(days=730), key=KEY_SPLIT_DATE)
    elif mode == _SPLITS[2]:
        text = st.text_input("Train years : test months : step months", value="3:12", key=KEY_WF)
        parts = [p for p in text.split(":") if p.strip()]
        try:
            walk_forward = {"train_years": float(parts[0]), "test_months": int(parts[1])}
            if len(parts) > 2:
                walk_forward["step_months"] = int(parts[2])
        except (IndexError, ValueError):
            st.error("write train years : test months[: step months], e.g. 3:12")
            return
    grid, problem = _grid()
    if problem:
        st.caption(problem)
        return
    assert grid is not None
    st.markdown(
        f"**{plural(grid.count, 'variant')}** (at most {MAX_VARIANTS:,}) over "
        + ", ".join(field_name(c) for c in grid.columns)
    )
    if st.button("Run sweep on the workers", type="primary"):
        try:
            sweep = sweeps.start(
                auth.actor(),
                grid,
                config_id=st.session_state.get(KEY_BASE),
                split=split,
                walk_forward=walk_forward,
                queue=True,
            )
        except AutoIndexError as exc:
            show_error(exc)
            return
        st.session_state[KEY_SELECTED] = sweep.id
        # kept up for a while: the rerun the sweep's end causes must not swallow which run was queued
        forms.set_notice(
            KEY_NOTICE, f"Sweep {sweep.id} queued as run {sweep.task_run_id} ({plural(sweep.n_chunks, 'chunk')})."
        )
        st.rerun()


def history(user: UserOut) -> SweepOut | None:
    """The sweeps the user may see; returns the selected one."""
    forms.notice(KEY_NOTICE)
    items = sweeps.list_sweeps(auth.actor())
    if not items:
        st.caption("No sweeps yet.")
        return None
    table = pd.DataFrame(
        [
            {
                "sweep": s.id,
                "version": s.config_label,
                "variants": s.n_variants,
                "status": s.status,
                "stored": f"{s.progress:.0%}",
                "owner": s.owner,
                "created": s.created_at,
            }
            for s in items
        ]
    )
    tables.show(table)
    ids = [s.id for s in items]
    keep_choice(KEY_SELECTED, ids)  # the label below follows the sweep's status (it ends while chosen)
    chosen = st.selectbox(
        "Sweep",
        ids,
        key=KEY_SELECTED,
        format_func=lambda i: next(
            f"{s.id}: {s.config_label}, {plural(s.n_variants, 'variant')}, {s.status}" for s in items if s.id == i
        ),
    )
    return next(s for s in items if s.id == chosen)


@st.fragment(run_every=LIVE_REFRESH_S)
def follow(sweep_id: int) -> None:
    """A queued or running sweep's progress and Cancel, read again on every tick; when the sweep ends (or moves from
    queued to running) the whole page reruns once, so the history, the picker and the results below show it."""
    with shown_errors():
        sweep = sweeps.get_sweep(sweep_id, auth.actor())
        if sweep.status in ACTIVE_STATES:
            progress(sweep)
        rerun_when_changed(KEY_LIVE_SIGNATURE, {sweep.id: sweep.status})


def progress(sweep: SweepOut) -> None:
    st.progress(
        sweep.progress, text=f"{sweep.done_variants:,} of {sweep.n_variants:,} variants stored ({sweep.status})"
    )
    if st.button("Cancel sweep"):
        try:
            sweeps.cancel(sweep.id, auth.actor())
        except AutoIndexError as exc:
            show_error(exc)
            return
        st.rerun()


#: How a swept field's missing value (``max_weight=none``: no cap) is labelled on the heatmap, as in the grid.
NONE_LABEL = "none"


def _label(value: Any) -> str:
    missing = pd.api.types.is_scalar(value) and pd.isna(value)  # None, NaN and pandas' NA alike; a list is a value
    return NONE_LABEL if missing else str(value)


def _order(label: str) -> tuple[bool, float, str]:
    """Numbers in numeric order (63 before 126), then text, ``none`` last."""
    try:
        number = float(label)
    except ValueError:
        number = float("inf")
    return label == NONE_LABEL, number, label


def _heatmap(frame: pd.DataFrame, columns: list[str], metrics: list[str]) -> None:
    # each swept value as a label, a missing one as "none" (pandas drops NaN when counting or pivoting: a sweep of
    # a cap against no cap showed no heatmap)
    labels = pd.DataFrame({c: frame[c].map(_label) for c in columns}, index=frame.index)
    varying = [c for c in columns if labels[c].nunique() > 1]
    if len(varying) < 2:
        st.caption("A heatmap needs two swept fields with more than one value.")
        return
    c1, c2, c3 = st.columns(3)
    metric = c1.selectbox("Metric", metrics, key=KEY_METRIC, format_func=metric_name)
    x = c2.selectbox("X", varying, key=KEY_X, format_func=field_name)
    y = c3.selectbox("Y", [c for c in varying if c != x], key=KEY_Y, format_func=field_name)
    keep = pd.Series(True, index=frame.index)
    for field in (c for c in varying if c not in (x, y)):
        values = sorted(labels[field].unique(), key=_order)
        fixed = st.selectbox(f"{field_name(field)} fixed at", values, key=KEY_FIX + field)
        keep &= labels[field] == fixed
    view = pd.DataFrame({"x": labels.loc[keep, x], "y": labels.loc[keep, y], "z": frame.loc[keep, metric]})
    pivot = view.pivot_table(index="y", columns="x", values="z", aggfunc="first", dropna=False).reindex(
        index=sorted(view["y"].unique(), key=_order), columns=sorted(view["x"].unique(), key=_order)
    )
    fig = go.Figure(
        go.Heatmap(
            z=pivot.to_numpy(),
            x=list(pivot.columns),
            y=list(pivot.index),
            colorscale="RdYlGn",
            colorbar={"title": metric_name(metric)},
        )
    )
    fig.update_layout(
        height=380,
        margin={"l": 40, "r": 10, "t": 30, "b": 40},
        xaxis_title=field_name(x),
        yaxis_title=field_name(y),
    )
    plotly_element.show(fig, "research_heatmap")


def _scatter(frame: pd.DataFrame, prefix: str, active: ConfigVersionOut | None) -> None:
    vol, cagr, sharpe = f"{prefix}volatility", f"{prefix}cagr", f"{prefix}sharpe"
    fig = go.Figure(
        go.Scatter(
            x=frame[vol],
            y=frame[cagr],
            mode="markers",
            text=frame["variant"],
            marker={
                "color": frame[sharpe],
                "colorscale": "Viridis",
                "showscale": True,
                "colorbar": {"title": "Sharpe"},
            },
            hovertemplate="variant %{text}<br>vol %{x:.2%}<br>CAGR %{y:.2%}<extra></extra>",
            name="variants",
        )
    )
    if active is not None:
        stored = compute.stored_metrics(active.id)
        a_vol, a_cagr = (stored.get("volatility") or (None,))[0], (stored.get("cagr") or (None,))[0]
        if a_vol is not None and a_cagr is not None:
            fig.add_trace(
                go.Scatter(
                    x=[a_vol],
                    y=[a_cagr],
                    mode="markers+text",
                    text=["active"],
                    textposition="top center",
                    name=f"active: {active.name} v{active.version}",
                    marker={"symbol": "star", "size": 16, "color": "crimson"},
                )
            )
        else:
            st.caption("The active version has no stored metrics yet (compute it to mark it here).")
    fig.update_layout(
        height=380,
        xaxis_title="Volatility",
        yaxis_title="CAGR",
        xaxis_tickformat=".0%",
        yaxis_tickformat=".0%",
        margin={"l": 40, "r": 10, "t": 30, "b": 40},
    )
    plotly_element.show(fig, "research_scatter")


def results(user: UserOut, sweep: SweepOut, active: ConfigVersionOut | None) -> None:
    """Summary, the sortable table, heatmap, scatter, in- vs out-of-sample, downloads and Promote."""
    frame = sweeps.results(sweep.id, auth.actor())
    summary = sweep.summary or {}
    if summary.get("best_variant") is not None:
        st.markdown(
            f"Best by {metric_name(summary['ranked_by'])}: **variant {summary['best_variant']}** (Sharpe "
            f"{summary['best_sharpe']:.2f}, deflated Sharpe {summary.get('best_deflated_sharpe') or 0:.2f} "
            f"given {summary['n_trials']} variants tried); {summary.get('errors', 0)} variant(s) refused."
        )
    if summary.get("walk_forward"):
        st.caption(
            f"Walk-forward selection (best in-sample Sharpe per window): out-of-sample return "
            f"{summary['walk_forward']['oos_total_return']:.2%}."
        )
    columns = sweep.columns
    prefix = "oos_" if sweep.has_split else ""
    metrics = [c for c in frame.columns if c not in ("variant", "rank", "error", *columns)]
    results_table(frame.sort_values("rank"), columns)
    ok = frame[frame["error"].isna()]
    tabs = st.tabs(["Heatmap", "Volatility vs CAGR"] + (["In vs out of sample"] if sweep.has_split else []))
    with tabs[0]:
        _heatmap(ok, columns, metrics)
    with tabs[1]:
        _scatter(ok, prefix, active)
    if sweep.has_split:
        with tabs[2]:
            fig = go.Figure(
                go.Scatter(
                    x=ok["is_sharpe"],
                    y=ok["oos_sharpe"],
                    mode="markers",
                    text=ok["variant"],
                    hovertemplate="variant %{text}<br>IS %{x:.2f}<br>OOS %{y:.2f}<extra></extra>",
                )
            )
            fig.update_layout(
                height=380,
                xaxis_title="In-sample Sharpe",
                yaxis_title="Out-of-sample Sharpe",
                margin={"l": 40, "r": 10, "t": 30, "b": 40},
            )
            plotly_element.show(fig, "research_in_vs_out")
    c1, c2 = st.columns(2)
    c1.download_button("Download CSV", sweeps.export_csv(sweep.id, auth.actor()), f"sweep-{sweep.id}.csv", "text/csv")
    c2.download_button(
        "Download XLSX",
        sweeps.export_xlsx(sweep.id, auth.actor()),
        f"sweep-{sweep.id}.xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
    _promote_form(sweep, ok)


def results_table(frame: pd.DataFrame, columns: list[str]) -> None:
    """The variants as people read them: the Strategy lab's field names, metric names, fractions in percent, an
    empty error cell for a variant that ran, ``none`` for a swept field left unset (as on the heatmap)."""
    shown = frame.copy()
    for column in columns:
        if shown[column].map(lambda v: pd.api.types.is_scalar(v) and pd.isna(v)).any():
            shown[column] = shown[column].map(_label)
    if "rank" in shown:
        shown["rank"] = shown["rank"].astype("Int64")
    names = {c: _COLUMN_LABELS.get(c) or (field_name(c) if c in columns else metric_name(c)) for c in shown.columns}
    percent = {
        names[c]: st.column_config.NumberColumn(names[c], format="percent")
        for c in shown.columns
        if c not in columns and c not in _COLUMN_LABELS and c in names and _unit(c) == "fraction"
    }
    tables.show(shown.rename(columns=names), column_config=percent or None)


def _unit(column: str) -> str | None:
    try:
        return _metric(column)[1]
    except KeyError:
        return None


def _promote_form(sweep: SweepOut, ok: pd.DataFrame) -> None:
    if ok.empty:
        return
    with st.form("research_promote"):
        st.markdown("**Promote a variant** to a new saved version (its note names this sweep and the variant).")
        variant = st.selectbox("Variant", [int(v) for v in ok.sort_values("rank")["variant"]], key=KEY_PROMOTE)
        name = st.text_input("Version name (default: the base version's name)", key=KEY_PROMOTE_NAME)
        if st.form_submit_button("Promote"):
            try:
                saved = sweeps.promote(sweep.id, int(variant), auth.actor(), name=name or None)
            except AutoIndexError as exc:
                show_error(exc)
                return
            st.success(f"Saved {saved.name} v{saved.version}: {saved.note}")


def page(user: UserOut, versions: list[ConfigVersionOut]) -> None:
    """The whole screen (pages/research.py draws this)."""
    active: Any = next((v for v in versions if v.is_active), None)
    with st.container(border=True):
        st.subheader("New sweep")
        start_form(user, versions)
    st.subheader("Sweeps")
    sweep = history(user)
    if sweep is None:
        return
    if sweep.status in ACTIVE_STATES:
        follow(sweep.id)
        return
    st.session_state.pop(KEY_LIVE_SIGNATURE, None)  # a sweep followed earlier ended: the next one starts afresh
    if sweep.status == "succeeded":
        results(user, sweep, active)
    else:
        st.warning(f"Sweep {sweep.id} {sweep.status}: {sweep.error or 'see the Tasks page'}")
        if sweep.done_variants:
            results(user, sweep, active)
