"""The Strategy lab: config editor with per-field validation, live preview, comparison, save, activate, history.

Every config input has the key ``strategy_field_<name>``; the params are read from session state at the
start of the run, validated with :func:`core.services.strategies.config_errors`, and each message is
drawn right under its input. The preview runs the engine on every change (cached per params).
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st

from core.errors import AutoIndexError, ValidationFailed
from core.infra import ratelimit
from core.schemas.strategy import (
    DEFAULT_CONFIG,
    FIELD_HELP,
    SLEEVE_SUM_RULE,
    SLEEVES,
    StrategyConfig,
    describe_config,
)
from core.schemas.strategy_version import ConfigVersionOut
from core.schemas.user import UserOut
from core.services import strategies
from ui import auth, cache, charts, forms, state, tables
from ui.dashboard_view import plot
from ui.format import metric_value
from ui.recompute import recompute_line

FORM = "strategy"
PREVIEW = "Preview (unsaved)"
GROUPS: dict[str, tuple[str, ...]] = {
    "Sleeves": SLEEVES,
    "Signals": ("momentum_lookback", "momentum_threshold", "risk_parity_lookback", "market_cap_sqrt"),
    "Constraints and rebalancing": ("top_n", "max_weight", "min_history", "rebalance", "drift_band", "cost_bps"),
    "Data hygiene": ("min_price", "ffill_limit", "return_clip", "outlier_z", "outlier_window", "base_value"),
}
#: Issue 15's fields, in an expander below the four groups: benchmark and basis, caps and exclusions.
MORE_GROUPS: dict[str, tuple[str, ...]] = {
    "Benchmark and basis": ("basis", "benchmark", "benchmark_blend", "comparisons"),
    "Caps, minimums and exclusions": ("sector_caps", "asset_class_caps", "min_weight", "min_holdings", "exclusions"),
}
MORE_FIELDS: tuple[str, ...] = tuple(n for g in MORE_GROUPS.values() for n in g)
#: Fields typed as text: "SYMBOL=percent, ..." for the weight maps, "A, B" for the lists, "" for none.
TEXT_FIELDS = ("benchmark", "benchmark_blend", "comparisons", "sector_caps", "asset_class_caps", "exclusions")
COMPARE_METRICS = (
    "total_return",
    "cagr",
    "volatility",
    "sharpe",
    "sortino",
    "max_drawdown",
    "calmar",
    "beta",
    "tracking_error",
    "information_ratio",
)
BENCHMARK = "Benchmark"


@dataclass(frozen=True)
class FieldUI:
    """How a config field reads in the editor: its label with the unit, and the factor from the stored value to
    what is typed (100 for fractions shown in percent)."""

    label: str
    scale: float = 1.0
    step: float | None = None
    format: str = "%.2f"


FIELDS: dict[str, FieldUI] = {
    "equal": FieldUI("Equal-weight sleeve (%)", 100, 5),
    "momentum": FieldUI("Momentum sleeve (%)", 100, 5),
    "market_cap": FieldUI("Market-cap sleeve (%)", 100, 5),
    "risk_parity": FieldUI("Risk-parity sleeve (%)", 100, 5),
    "momentum_lookback": FieldUI("Momentum lookback (trading days)"),
    "momentum_threshold": FieldUI("Momentum threshold (% trailing return)", 100, 1),
    "risk_parity_lookback": FieldUI("Risk-parity lookback (trading days)"),
    "market_cap_sqrt": FieldUI("Damp caps (square root)"),
    "top_n": FieldUI("Top N assets"),
    "max_weight": FieldUI("Max weight per asset (%)", 100, 1),
    "min_history": FieldUI("Minimum history (trading days)"),
    "rebalance": FieldUI("Rebalance"),
    "drift_band": FieldUI("Drift band (% points)", 100, 1),
    "cost_bps": FieldUI("Trading cost (bps of turnover)", 1, 1, "%.1f"),
    "min_price": FieldUI("Minimum price (currency units)", 1, 0.01),
    "ffill_limit": FieldUI("Forward-fill limit (trading days)"),
    "return_clip": FieldUI("Daily return clip (%)", 100, 5),
    "outlier_z": FieldUI("Outlier threshold (standard deviations)", 1, 0.5, "%.1f"),
    "outlier_window": FieldUI("Outlier window (trading days)"),
    "base_value": FieldUI("Base value (index points)", 1, 1),
    "basis": FieldUI("Basis"),
    "benchmark": FieldUI("Benchmark symbol"),
    "benchmark_blend": FieldUI("Or a blend (SYMBOL=% , ...)"),
    "comparisons": FieldUI("Comparison symbols (up to 3)"),
    "sector_caps": FieldUI("Sector caps (Sector=% , ...)"),
    "asset_class_caps": FieldUI("Asset-class caps (class=% , ...)"),
    "min_weight": FieldUI("Minimum weight (%)", 100, 0.5),
    "min_holdings": FieldUI("Minimum holdings"),
    "exclusions": FieldUI("Exclusions (symbols)"),
}


def to_text(name: str, value: Any) -> str:
    """A text field's stored value as typed: weight maps in percent (``SPY=60, IEF=40``), lists comma-separated."""
    if value is None:
        return ""
    if isinstance(value, dict):
        return ", ".join(f"{k}={round(float(v) * 100, 10):.12g}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


def from_text(name: str, text: Any) -> Any:
    """What a text field means as a param; text that does not parse goes through as text, so validation names it
    beside the field."""
    raw = "" if text is None else str(text).strip()
    if name == "benchmark":
        return raw or None
    if name in ("comparisons", "exclusions"):
        return [part.strip().upper() for part in raw.split(",") if part.strip()]
    if not raw:
        return None
    out: dict[str, float] = {}
    for part in raw.split(","):
        key, sep, number = part.rpartition("=")
        try:
            out[key.strip().upper() if name == "benchmark_blend" else key.strip()] = round(float(number) / 100.0, 12)
        except ValueError:
            return raw
        if not sep:
            return raw
    return out


def sentences(warnings: list[str]) -> str:
    """Engine warnings as sentences (capitalised, full stop)."""
    return " ".join(w[:1].upper() + w[1:] + ("" if w.endswith(".") else ".") for w in warnings if w)


def field_label(name: str) -> str:
    """The editor's label for a config field (with its unit)."""
    return FIELDS[name].label if name in FIELDS else name.replace("_", " ").capitalize()


def _field_kind(name: str) -> tuple[type, bool]:
    """(base type, optional) of a StrategyConfig field."""
    annotation = StrategyConfig.model_fields[name].annotation
    args = typing.get_args(annotation)
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        base = next(a for a in args if a is not type(None))
        return base, True
    if typing.get_origin(annotation) is typing.Literal:
        return str, False
    return annotation, False  # type: ignore[return-value]


def _key(name: str) -> str:
    return state.field_prefix_key(name)


def field_values(params: dict[str, Any]) -> dict[str, Any]:
    """What each field widget holds when ``params`` are loaded into the editor (validated defaults fill what is
    missing; fractions typed in the field's unit; text fields as typed), by field name."""
    full = (
        StrategyConfig.model_validate(params).model_dump()
        if not strategies.config_errors(params)
        else {**DEFAULT_CONFIG.model_dump(), **params}
    )
    values: dict[str, Any] = {}
    for name in StrategyConfig.model_fields:
        base, _optional = _field_kind(name)
        value = full.get(name)
        if name in TEXT_FIELDS:
            values[name] = to_text(name, value)
            continue
        try:
            if value is not None and base is float:
                value = round(float(value) * _scale(name), 10)  # typed in the field's unit (percent for fractions)
            if value is not None and base is int:
                value = int(value)
        except (TypeError, ValueError, OverflowError):  # a stored value of the wrong type: the field starts empty
            value = None
        values[name] = value
    return values


def load_params(params: dict[str, Any]) -> None:
    """Put ``params`` into the field widgets (:func:`field_values`), and into the values held for the fields of
    the closed expander."""
    values = field_values(params)
    for name, value in values.items():
        st.session_state[_key(name)] = value
    st.session_state[state.STRATEGY_HELD] = {n: values[n] for n in MORE_FIELDS}


def _scale(name: str) -> float:
    return FIELDS[name].scale if name in FIELDS else 1.0


def params_of(values: typing.Mapping[str, Any]) -> dict[str, Any]:
    """Config params from field widget values by field name (percent fields back to fractions)."""
    params: dict[str, Any] = {}
    for name in StrategyConfig.model_fields:
        value = values.get(name)
        if name in TEXT_FIELDS:
            params[name] = from_text(name, value)
            continue
        base, _optional = _field_kind(name)
        if value is not None and base is float and _scale(name) != 1:
            value = round(float(value) / _scale(name), 12)
        params[name] = value
    return params


def current_params() -> dict[str, Any]:
    """The editor's values as config params (:func:`params_of` the field widgets; for the fields of the
    "Benchmark, basis, caps and exclusions" expander, the values held for them unless their widgets were drawn
    in the last run: :func:`_field_value`)."""
    return params_of({name: _field_value(name) for name in StrategyConfig.model_fields})


def _field_value(name: str) -> Any:
    """What field ``name`` holds: its widget's value, or for a field of the closed expander the value held for it
    (its widget's value when it was drawn in the last run: an edit committed by the very click that closes the
    expander arrives in the run that no longer draws it)."""
    key = _key(name)
    if name not in MORE_FIELDS or (st.session_state.get(state.STRATEGY_MORE_DRAWN) and key in st.session_state):
        return st.session_state.get(key)
    return st.session_state.get(state.STRATEGY_HELD, {}).get(name)


def form_params(params: dict[str, Any]) -> dict[str, Any]:
    """The params the editor gives for a version it has just loaded: what its first preview runs."""
    return params_of(field_values(params))


def ensure_loaded(versions: list[ConfigVersionOut]) -> ConfigVersionOut | None:
    """Start from the chosen base version; (re)load its params when the choice changes or after navigation."""
    if not versions:
        return None
    ids = [v.id for v in versions]
    if st.session_state.get(state.STRATEGY_BASE_ID) not in ids:  # first visit, or the selector's state was dropped
        loaded = st.session_state.get(state.STRATEGY_LOADED_ID)  # by a visit to another page: the same base again
        st.session_state[state.STRATEGY_BASE_ID] = (
            loaded if loaded in ids else next((v.id for v in versions if v.is_active), ids[0])
        )
    base = next(v for v in versions if v.id == st.session_state[state.STRATEGY_BASE_ID])
    draft = st.session_state.get(state.STRATEGY_DRAFT)
    if st.session_state.get(state.STRATEGY_LOADED_ID) != base.id:
        load_params(base.params)
        st.session_state[state.STRATEGY_LOADED_ID] = base.id
        st.session_state[state.STRATEGY_NAME] = base.name
    elif state.STRATEGY_HELD not in st.session_state or any(
        _key(n) not in st.session_state for n in StrategyConfig.model_fields if n not in MORE_FIELDS
    ):
        load_params(draft or base.params)  # widget state is dropped when another page was shown
    st.session_state.setdefault(state.STRATEGY_NAME, base.name)
    return base


def base_selector(versions: list[ConfigVersionOut]) -> None:
    labels = {v.id: v.label for v in versions}
    st.selectbox(
        "Start from version",
        list(labels),
        key=state.STRATEGY_BASE_ID,
        format_func=lambda i: labels[i],
        help="Loads that version's parameters into the editor.",
    )


def _input(name: str, errors: dict[str, str], placeholder: str | None = None) -> None:
    base, optional = _field_kind(name)
    ui = FIELDS.get(name, FieldUI(name.replace("_", " ").capitalize()))
    label = ui.label + (" — optional" if optional else "")
    help_text = FIELD_HELP.get(name)
    if ui.scale == 100 and help_text:
        help_text += " Typed in percent here."
    key = _key(name)
    if name in TEXT_FIELDS:
        st.text_input(ui.label, key=key, help=help_text, placeholder=placeholder or "none")
    elif name in ("rebalance", "basis"):
        st.selectbox(
            label, list(typing.get_args(StrategyConfig.model_fields[name].annotation)), key=key, help=help_text
        )
    elif base is bool:
        st.checkbox(label, key=key, help=help_text)
    elif base is int:
        st.number_input(label, step=1, key=key, help=help_text, placeholder="none" if optional else None)
    else:
        st.number_input(
            label,
            step=float(ui.step or 0.01),
            format=ui.format,
            key=key,  # a float step: no int warning
            help=help_text,
            placeholder="none" if optional else None,
        )
    if name in errors:
        st.error(errors[name], icon=":material/error:")


def _field_columns(
    groups: dict[str, tuple[str, ...]],
    errors: dict[str, str],
    below: dict[str, str] | None = None,
    placeholders: dict[str, str] | None = None,
) -> None:
    """One column per group: its name in bold, then its fields' inputs (an empty text field shows its entry of
    ``placeholders``, else "none"), then the group's own message (``below``)."""
    for column, (group, names) in zip(st.columns(len(groups)), groups.items()):
        with column:
            st.markdown(f"**{group}**")
            for name in names:
                _input(name, errors, (placeholders or {}).get(name))
            if below and group in below:
                st.error(below[group], icon=":material/error:")


def sleeve_sum_message(errors: dict[str, str]) -> str | None:
    """The sleeve-sum rule, broken, once and in the editor's terms (the sleeves are typed in percent), or None.

    The config check names each of the four sleeves with the rule in stored terms ("must sum to 1 (equal +
    momentum + market_cap + risk_parity = 1.2)"): right for an API or a batch, four times over and in the wrong
    unit under four percent fields."""
    if not any(errors.get(s, "").startswith(SLEEVE_SUM_RULE) for s in SLEEVES):
        return None
    typed = [_field_value(s) for s in SLEEVES]
    total = sum(float(v) for v in typed if isinstance(v, (int, float)))
    return f"The four sleeve weights add up to {total:.4g}%; they must add up to 100%."


def editor(errors: dict[str, str]) -> None:
    sleeve_sum = sleeve_sum_message(errors)
    if sleeve_sum:  # said once below the sleeves, not under each of them
        errors = {k: v for k, v in errors.items() if not (k in SLEEVES and v.startswith(SLEEVE_SUM_RULE))}
    _field_columns(GROUPS, errors, below={"Sleeves": sleeve_sum} if sleeve_sum else None)
    more_fields(errors)
    other = {k: v for k, v in errors.items() if k not in StrategyConfig.model_fields}
    for key, message in other.items():
        st.error(f"{key}: {message}")


def benchmark_placeholder() -> str:
    """What an empty "Benchmark symbol" means: the default benchmark the Dashboard and the comparison use (the
    market inputs' :func:`core.services.market.choose_benchmark` over the active benchmark assets)."""
    default = cache.market_inputs(cache.token()).benchmark_symbol
    return f"default: {default}" if default else "none (no benchmark asset is active)"


def more_fields(errors: dict[str, str]) -> None:
    """The "Benchmark, basis, caps and exclusions" expander, its nine fields drawn only while it is open (issue
    17: they were a tenth of a second of the browser's switch to this page). While closed, their values are held
    (:data:`state.STRATEGY_HELD`) and count as typed; when it opens, the widgets start from them. A value
    refused there is named below it while it is closed, and shown beside its field when it is open."""
    held = dict(st.session_state.get(state.STRATEGY_HELD, {}))
    more = st.expander("Benchmark, basis, caps and exclusions", key=state.STRATEGY_MORE, on_change="rerun")
    if more.open:
        if not st.session_state.get(state.STRATEGY_MORE_DRAWN):
            for name in MORE_FIELDS:  # not drawn in the last run: its widgets start from the held values
                st.session_state[_key(name)] = held.get(name)
        with more:
            _field_columns(MORE_GROUPS, errors, placeholders={"benchmark": benchmark_placeholder()})
        st.session_state[state.STRATEGY_HELD] = {n: st.session_state.get(_key(n)) for n in MORE_FIELDS}
    else:
        if st.session_state.get(state.STRATEGY_MORE_DRAWN):  # closed by this run: keep what the widgets last held
            st.session_state[state.STRATEGY_HELD] = {n: _field_value(n) for n in MORE_FIELDS}
        for name in (n for n in MORE_FIELDS if n in errors):  # closed: the message names its field
            label = FIELDS.get(name, FieldUI(name)).label
            st.error(f"{label} (under Benchmark, basis, caps and exclusions): {errors[name]}", icon=":material/error:")
    st.session_state[state.STRATEGY_MORE_DRAWN] = bool(more.open)


def preview(token: str, params: dict[str, Any]) -> dict[str, Any]:
    """A config run over the stored market data (:func:`ui.cache.backtest`: once per data version and params,
    shared by every session, maybe computed ahead by :func:`prewarm`): the preview, and any saved version compared
    without being activated. A run this call starts counts toward the user's preview limit (a retry of one that
    failed too); a run read, or waited for, does not."""
    if cache.backtest_ready(token, params):
        return cache.backtest(token, params)
    with st.spinner("Running the backtest…"):
        return cache.backtest(token, params, on_compute=lambda: ratelimit.hit("preview", auth.actor()))


def prewarm(token: str, versions: list[ConfigVersionOut]) -> None:
    """Run ahead, on the prewarm thread, what the Strategy lab shows first: the active version's preview as the
    editor loads it and the same version in the comparison (served app; validated there, not in this run)."""
    active = next((v for v in versions if v.is_active), None)
    if active is None:
        return

    def first_runs() -> list[dict[str, Any]]:
        if strategies.config_errors(active.params):
            return []  # the page shows the errors; nothing to run ahead
        return [form_params(active.params), active.params]

    cache.prewarm_backtests(("strategy lab", active.id), token, first_runs)


#: Rows of the comparison beyond the risk metrics: (label, key in a backtest dict, unit).
EXTRA_ROWS = (
    ("Turnover per year", "turnover_per_year", "fraction"),
    ("Total costs", "total_costs", "fraction"),
    ("Rebalances", "rebalances", "count"),
)


def _cell(value: Any, unit: str) -> str:
    if unit == "count":
        return "" if value is None else f"{int(value):,}"
    return metric_value(value, unit)


def _difference(a: Any, b: Any, unit: str) -> str:
    if a is None or b is None or unit == "count":
        return "" if unit != "count" or a is None or b is None else f"{int(a) - int(b):+,}"
    try:
        delta = float(a) - float(b)
    except (TypeError, ValueError):
        return ""
    return f"{delta * 100:+.2f} pp" if unit == "fraction" else f"{delta:+.2f}"


def compare_table(runs: dict[str, dict[str, Any]], benchmark: dict[str, Any], reference: str | None) -> pd.DataFrame:
    """Metrics (rows) × runs (columns), then the benchmark and "preview − reference"; fractions in percent,
    differences in percentage points."""
    from core.quant.risk import METRIC_DEFINITIONS

    rows: dict[str, dict[str, str]] = {}
    for key in COMPARE_METRICS:
        label, _formula, unit = METRIC_DEFINITIONS[key]
        row = {name: _cell(run["metrics"].get(key), unit) for name, run in runs.items()}
        row[BENCHMARK] = _cell(benchmark.get(key), unit) if benchmark else ""
        if reference and PREVIEW in runs:
            row[f"Preview − {reference}"] = _difference(
                runs[PREVIEW]["metrics"].get(key), runs[reference]["metrics"].get(key), unit
            )
        rows[label] = row
    for label, key, unit in EXTRA_ROWS:
        row = {name: _cell(run.get(key), unit) for name, run in runs.items()}
        row[BENCHMARK] = ""
        if reference and PREVIEW in runs:
            row[f"Preview − {reference}"] = _difference(runs[PREVIEW].get(key), runs[reference].get(key), unit)
        rows[label] = row
    return pd.DataFrame(rows).T


def compare(token: str, versions: list[ConfigVersionOut], preview_result: dict[str, Any] | None) -> None:
    """The preview beside any saved versions, each backtested on the fly (cached): no version has to be
    activated, or even computed, to be compared."""
    labels = {v.id: v.label for v in versions}
    by_id = {v.id: v for v in versions}
    default = [v.id for v in versions if v.is_active][:1]
    chosen = st.multiselect(
        "Compare with saved versions",
        list(labels),
        key=state.STRATEGY_COMPARE_IDS,
        default=default if state.STRATEGY_COMPARE_IDS not in st.session_state else None,
        format_func=lambda i: labels[i],
        help="Any saved version is backtested on the fly over the stored prices; activating "
        "one is not needed to compare it.",
    )
    runs: dict[str, dict[str, Any]] = {}
    if preview_result is not None:
        runs[PREVIEW] = preview_result
    for config_id in chosen:
        try:
            runs[labels[config_id]] = preview(token, by_id[config_id].params)
        except AutoIndexError as exc:
            st.warning(f"{labels[config_id]}: {exc}")
    first = next(iter(runs.values()), None)
    bench = first.get("benchmark") if first else None
    plot(
        charts.compare_curves(
            {name: run["values"] for name, run in runs.items()},
            bench,
            first.get("benchmark_symbol") if first else None,
            title="Preview and saved versions (rebased to 100)",
        ),
        key="chart_compare",
    )
    if runs:
        reference = next((labels[i] for i in chosen if labels[i] in runs), None)
        # the benchmark of the first run (the preview's), alone over that run's dates: the Dashboard's definition
        bench_metrics = (first or {}).get("benchmark_metrics") or {}
        tables.show(compare_table(runs, bench_metrics, reference), hide_index=False)


def _on_save() -> None:
    params = current_params()
    name = st.session_state.get(state.STRATEGY_NAME) or ""
    note = st.session_state.get(state.STRATEGY_NOTE) or ""
    errors: dict[str, str] = {}
    if not note.strip():
        errors["note"] = "is required: say why this version exists"
    if errors:
        forms.set_errors("strategy_save", errors)
        return
    recompute: dict[str, Any] | None = None
    try:
        if st.session_state.pop(state.STRATEGY_ACTIVATE_ON_SAVE, False):  # the service queues the recompute
            activation = strategies.save_and_activate(
                name,
                params,
                note=note.strip(),
                actor=auth.actor(),
                parent_id=st.session_state.get(state.STRATEGY_BASE_ID),
            )
            saved, recompute = activation.version, activation.recompute
        else:
            saved = strategies.save_version(
                name,
                params,
                note=note.strip(),
                actor=auth.actor(),
                parent_id=st.session_state.get(state.STRATEGY_BASE_ID),
            )
    except ValidationFailed as exc:
        forms.set_errors("strategy_save", exc.errors)
        return
    except AutoIndexError as exc:  # e.g. activating without the admin role, or the session ended
        forms.set_errors("strategy_save", {"version": str(exc)})
        return
    forms.clear("strategy_save")
    message = f"Saved {saved.label}."
    if recompute is not None:
        message += " " + recompute_line(recompute)
        st.session_state[state.SIDEBAR_CONFIG_ID] = saved.id  # the sidebar shows the version just activated
    st.session_state[state.STRATEGY_NOTE] = ""
    st.session_state[state.STRATEGY_BASE_ID] = saved.id
    st.session_state[state.STRATEGY_LOADED_ID] = saved.id
    forms.set_notice("strategy_save", message)


def notices() -> None:
    """Outcome lines of the last save or activation, drawn above the tabs so a rerun cannot hide them."""
    forms.notice("strategy_save")
    forms.notice("strategy_activate")


def save_form(user: UserOut, errors: dict[str, str]) -> None:
    with st.form("strategy_save"):
        forms.text_field("strategy_save", "name", "Config name", key=state.STRATEGY_NAME, max_chars=strategies.NAME_MAX)
        st.text_area("Note (why this version)", key=state.STRATEGY_NOTE, max_chars=2000)
        forms.field_error("strategy_save", "note")
        if user.is_admin:
            st.checkbox("Activate after saving (recomputes the index)", key=state.STRATEGY_ACTIVATE_ON_SAVE)
        save_errors = {k: v for k, v in forms.errors("strategy_save").items() if k not in ("name", "note")}
        for key, message in save_errors.items():
            st.error(f"{key.replace('_', ' ')}: {message}")
        st.form_submit_button("Save as new version", type="primary", disabled=bool(errors), on_click=_on_save)
    if errors:
        st.caption("Fix the fields marked above to save.")


def _on_activate() -> None:
    config_id = st.session_state.get(state.STRATEGY_ACTIVATE_ID)
    if config_id is None:  # no saved version to choose (int(None) used to raise in the callback)
        forms.set_errors("strategy_activate", {"version": "there is no saved version to activate"})
        return
    try:
        activation = strategies.activate(int(config_id), actor=auth.actor())
        version = activation.version
        forms.set_notice("strategy_activate", f"{version.label} is now active. " + recompute_line(activation.recompute))
        st.session_state[state.SIDEBAR_CONFIG_ID] = version.id
    except AutoIndexError as exc:
        forms.set_errors("strategy_activate", {"version": str(exc)})


def activate_form(user: UserOut, versions: list[ConfigVersionOut]) -> None:
    labels = {v.id: v.label for v in versions}
    st.selectbox("Version to activate", list(labels), key=state.STRATEGY_ACTIVATE_ID, format_func=lambda i: labels[i])
    forms.field_error("strategy_activate", "version")
    st.button("Activate", on_click=_on_activate, key="strategy_activate_button")


def history(versions: list[ConfigVersionOut]) -> None:
    by_id = {v.id: v for v in versions}
    frame = pd.DataFrame(
        [
            {
                "version": v.label.replace(" (active)", ""),
                "active": v.is_active,
                "created_by": v.created_by,
                "created_at": v.created_at,
                "note": v.note,
                "based_on": by_id[v.parent_id].label.replace(" (active)", "") if v.parent_id in by_id else None,
                "computed_at": v.computed_at,
            }
            for v in sorted(versions, key=lambda v: v.created_at, reverse=True)
        ]
    )
    tables.show(frame)


def methodology(params: dict[str, Any]) -> None:
    try:
        rules = describe_config(params)
    except Exception:  # invalid params: the field messages already say why
        return
    st.markdown("\n".join(f"- **{name}**: {text}" for name, text in rules))


def remember_draft() -> None:
    st.session_state[state.STRATEGY_DRAFT] = current_params()
