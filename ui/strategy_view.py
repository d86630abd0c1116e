"""The Strategy lab: config editor with per-field validation, live preview, comparison, save, activate, history.

Every config input has the key ``strategy_field_<name>``; the params are read from session state at the
start of the run, validated with :func:`core.services.strategies.config_errors`, and each message is
drawn right under its input. The preview runs the engine on every change (cached per params).
"""
from __future__ import annotations

import json
import types
import typing
from typing import Any

import pandas as pd
import streamlit as st

from core.errors import AutoIndexError, ValidationFailed
from core.schemas.strategy import DEFAULT_CONFIG, FIELD_HELP, SLEEVES, StrategyConfig, describe_config
from core.schemas.strategy_version import ConfigVersionOut
from core.schemas.user import UserOut
from core.services import strategies
from ui import auth, cache, charts, forms, state, tables
from ui.dashboard_view import plot
from ui.format import metric_value
from ui.recompute import recompute

FORM = "strategy"
PREVIEW = "Preview (unsaved)"
GROUPS: dict[str, tuple[str, ...]] = {
    "Sleeves": SLEEVES,
    "Signals": ("momentum_lookback", "momentum_threshold", "risk_parity_lookback", "market_cap_sqrt"),
    "Constraints and rebalancing": ("top_n", "max_weight", "min_history", "rebalance", "drift_band", "cost_bps"),
    "Data hygiene": ("min_price", "ffill_limit", "return_clip", "outlier_z", "outlier_window", "base_value"),
}
COMPARE_METRICS = ("total_return", "cagr", "volatility", "sharpe", "sortino", "max_drawdown", "calmar", "beta",
                   "tracking_error", "information_ratio")


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


def load_params(params: dict[str, Any]) -> None:
    """Put ``params`` into the field widgets (validated defaults fill what is missing)."""
    full = StrategyConfig.model_validate(params).model_dump() if not strategies.config_errors(params) else \
        {**DEFAULT_CONFIG.model_dump(), **params}
    for name in StrategyConfig.model_fields:
        base, _optional = _field_kind(name)
        value = full.get(name)
        if value is not None and base is float:
            value = float(value)
        if value is not None and base is int:
            value = int(value)
        st.session_state[_key(name)] = value


def current_params() -> dict[str, Any]:
    return {name: st.session_state.get(_key(name)) for name in StrategyConfig.model_fields}


def ensure_loaded(versions: list[ConfigVersionOut]) -> ConfigVersionOut | None:
    """Start from the chosen base version; (re)load its params when the choice changes or after navigation."""
    if not versions:
        return None
    ids = [v.id for v in versions]
    if st.session_state.get(state.STRATEGY_BASE_ID) not in ids:
        st.session_state[state.STRATEGY_BASE_ID] = next((v.id for v in versions if v.is_active), ids[0])
    base = next(v for v in versions if v.id == st.session_state[state.STRATEGY_BASE_ID])
    draft = st.session_state.get(state.STRATEGY_DRAFT)
    if st.session_state.get(state.STRATEGY_LOADED_ID) != base.id:
        load_params(base.params)
        st.session_state[state.STRATEGY_LOADED_ID] = base.id
        st.session_state[state.STRATEGY_NAME] = base.name
    elif any(_key(n) not in st.session_state for n in StrategyConfig.model_fields):
        load_params(draft or base.params)  # widget state is dropped when another page was shown
    st.session_state.setdefault(state.STRATEGY_NAME, base.name)
    return base


def base_selector(versions: list[ConfigVersionOut]) -> None:
    labels = {v.id: v.label for v in versions}
    st.selectbox("Start from version", list(labels), key=state.STRATEGY_BASE_ID, format_func=lambda i: labels[i],
                 help="Loads that version's parameters into the editor.")


def _input(name: str, errors: dict[str, str]) -> None:
    base, optional = _field_kind(name)
    label = name.replace("_", " ").capitalize()
    help_text = FIELD_HELP.get(name)
    key = _key(name)
    if name == "rebalance":
        st.selectbox(label, list(typing.get_args(StrategyConfig.model_fields[name].annotation)), key=key,
                     help=help_text)
    elif base is bool:
        st.checkbox(label, key=key, help=help_text)
    elif base is int:
        st.number_input(label + (" (optional)" if optional else ""), step=1, key=key, help=help_text,
                        placeholder="none" if optional else None)
    else:
        st.number_input(label + (" (optional)" if optional else ""), step=0.05 if name in SLEEVES else 0.01,
                        format="%.4f", key=key, help=help_text, placeholder="none" if optional else None)
    if name in errors:
        st.error(errors[name], icon=":material/error:")


def editor(errors: dict[str, str]) -> None:
    columns = st.columns(len(GROUPS))
    for column, (group, names) in zip(columns, GROUPS.items()):
        with column:
            st.markdown(f"**{group}**")
            for name in names:
                _input(name, errors)
    other = {k: v for k, v in errors.items() if k not in StrategyConfig.model_fields}
    for key, message in other.items():
        st.error(f"{key}: {message}")


@st.cache_data(show_spinner="Running the backtest…", max_entries=32)
def _preview(token: str, params_json: str) -> dict[str, Any]:
    from core.services.engine import backtest
    from core.services.risk import risk_metrics

    inputs = cache.market_inputs(token)
    if inputs.prices.empty:
        raise AutoIndexError("no prices stored; refresh or import market data first")
    result = backtest(inputs.prices, StrategyConfig.model_validate(json.loads(params_json)),
                      market_caps=inputs.market_caps)
    values = result.values.dropna()
    bench = inputs.benchmark.reindex(values.index).ffill() if inputs.benchmark is not None else None
    return {"values": values, "metrics": risk_metrics(values, bench), "warnings": list(result.warnings)[:10],
            "rebalances": len(result.rebalance_dates), "benchmark": bench,
            "benchmark_symbol": inputs.benchmark_symbol}


def preview(token: str, params: dict[str, Any]) -> dict[str, Any]:
    return _preview(token, json.dumps(params, sort_keys=True, default=str))


def _metric_rows(values: dict[str, dict[str, Any]]) -> pd.DataFrame:
    from core.services.risk import METRIC_DEFINITIONS

    rows = {}
    for key in COMPARE_METRICS:
        label, _formula, unit = METRIC_DEFINITIONS[key]
        rows[label] = {name: metric_value(m.get(key), unit) for name, m in values.items()}
    return pd.DataFrame(rows).T


def compare(token: str, versions: list[ConfigVersionOut], preview_result: dict[str, Any] | None) -> None:
    labels = {v.id: v.label for v in versions}
    default = [v.id for v in versions if v.is_active][:1]
    chosen = st.multiselect("Compare with saved versions", list(labels), key=state.STRATEGY_COMPARE_IDS,
                            default=default if state.STRATEGY_COMPARE_IDS not in st.session_state else None,
                            format_func=lambda i: labels[i])
    curves: dict[str, pd.Series] = {}
    metrics: dict[str, dict[str, Any]] = {}
    if preview_result is not None:
        curves[PREVIEW] = preview_result["values"]
        metrics[PREVIEW] = preview_result["metrics"]
    missing = []
    for config_id in chosen:
        series = cache.stored_index(token, config_id)
        if series.empty:
            missing.append(labels[config_id])
            continue
        curves[labels[config_id]] = series
        metrics[labels[config_id]] = {k: v for k, (v, _r) in cache.stored_metrics(token, config_id).items()}
    if missing:
        st.caption("Not computed yet (activate to compute): " + ", ".join(missing))
    bench = preview_result.get("benchmark") if preview_result else None
    plot(charts.compare_curves(curves, bench, preview_result.get("benchmark_symbol") if preview_result else None,
                               title="Preview and saved versions (rebased to 100)"), key="chart_compare")
    if metrics:
        tables.show(_metric_rows(metrics), hide_index=False)


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
    try:
        saved = strategies.save_version(name, params, note=note.strip(), actor=auth.actor(),
                                        parent_id=st.session_state.get(state.STRATEGY_BASE_ID),
                                        activate=bool(st.session_state.pop(state.STRATEGY_ACTIVATE_ON_SAVE, False)))
    except ValidationFailed as exc:
        forms.set_errors("strategy_save", exc.errors)
        return
    except AutoIndexError as exc:  # e.g. activating without the admin role, or the session ended
        forms.set_errors("strategy_save", {"version": str(exc)})
        return
    forms.clear("strategy_save")
    message = f"Saved {saved.label}."
    if saved.is_active:
        try:
            message += " " + recompute(saved.id, auth.actor())
        except AutoIndexError as exc:
            message += f" Computing it failed: {exc}"
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
    try:
        version = strategies.activate_version(int(config_id), actor=auth.actor())
        forms.set_notice("strategy_activate", f"{version.label} is now active. " + recompute(version.id, auth.actor()))
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
    frame = pd.DataFrame([{
        "version": v.label.replace(" (active)", ""), "active": v.is_active, "created_by": v.created_by,
        "created_at": v.created_at, "note": v.note,
        "based_on": by_id[v.parent_id].label.replace(" (active)", "") if v.parent_id in by_id else None,
        "computed_at": v.computed_at,
    } for v in sorted(versions, key=lambda v: v.created_at, reverse=True)])
    tables.show(frame)


def methodology(params: dict[str, Any]) -> None:
    try:
        rules = describe_config(params)
    except Exception:  # invalid params: the field messages already say why
        return
    st.markdown("\n".join(f"- **{name}**: {text}" for name, text in rules))


def remember_draft() -> None:
    st.session_state[state.STRATEGY_DRAFT] = current_params()
