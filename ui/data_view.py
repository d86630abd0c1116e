"""The Data screen: universe, per-asset history and quality, price import, provider settings (admin writes)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.errors import AutoIndexError, ImportValidationError, ValidationFailed
from core.schemas.user import UserOut
from core.services import universe
from core.services.freshness import STALE_HELP, STALE_LABEL
from ui import auth, cache, charts, forms, state, tables
from ui.dashboard_view import plot
from ui.format import MISSING
from ui.risk_view import FACTOR_PROBLEMS, factor_import_form

ASSET_CLASSES = ("equity", "etf", "commodity", "bond", "index", "other")
#: The Data page's forms, each with the session-state key of the refused rows its message goes with. A message
#: belongs to its form's last submission, and the page shows only the last submission's: a refused price file
#: and then a refused factor file left two messages up about two different forms.
PAGE_FORMS: dict[str, str | None] = {
    "add_asset": None,
    "deactivate": None,
    "import": state.DATA_IMPORT_PROBLEMS,
    "factors": FACTOR_PROBLEMS,
    "provider": None,
}


def _submitting(form: str) -> None:
    """Called first by each form's callback: drop what the page's other forms last said (errors, refused rows)."""
    for other, problems in PAGE_FORMS.items():
        if other != form:
            forms.clear(other)
            if problems is not None:
                st.session_state.pop(problems, None)


def universe_table(frame: pd.DataFrame) -> None:
    active = int(frame["active"].sum()) if len(frame) else 0
    st.caption(
        f"{len(frame)} assets, {active} active. Gaps = business days without a price between the first and "
        f"last price. {STALE_HELP}"
    )
    tables.show(
        frame,
        column_config={
            "first_date": st.column_config.DateColumn("First price"),
            "last_date": st.column_config.DateColumn("Last price"),
        },
    )


def _on_add_asset() -> None:
    _submitting("add_asset")
    get = st.session_state.get
    try:
        info = universe.add_asset(
            get(state.DATA_NEW_SYMBOL) or "",
            get(state.DATA_NEW_NAME) or "",
            asset_class=get(state.DATA_NEW_CLASS) or "equity",
            sector=get(state.DATA_NEW_SECTOR),
            currency=get(state.DATA_NEW_CURRENCY) or "USD",
            is_benchmark=bool(get(state.DATA_NEW_BENCHMARK)),
            actor=auth.actor(),
        )
    except ValidationFailed as exc:
        forms.set_errors("add_asset", exc.errors)
        return
    except AutoIndexError as exc:
        forms.set_errors("add_asset", {"symbol": str(exc)})
        return
    forms.clear("add_asset")
    for key in (state.DATA_NEW_SYMBOL, state.DATA_NEW_NAME, state.DATA_NEW_SECTOR):
        st.session_state[key] = ""
    forms.set_notice("add_asset", f"Added {info['symbol']}; import or refresh its prices next.")


def add_asset_form(user: UserOut) -> None:
    forms.notice("add_asset")
    with st.form("add_asset"):
        forms.text_field("add_asset", "symbol", "Symbol", key=state.DATA_NEW_SYMBOL)
        forms.text_field("add_asset", "name", "Name", key=state.DATA_NEW_NAME)
        st.selectbox("Asset class", ASSET_CLASSES, key=state.DATA_NEW_CLASS)
        forms.field_error("add_asset", "asset_class")
        forms.text_field("add_asset", "sector", "Sector (optional)", key=state.DATA_NEW_SECTOR)
        forms.text_field(
            "add_asset", "currency", "Currency", key=state.DATA_NEW_CURRENCY, value=None, placeholder="USD"
        )
        st.checkbox("Benchmark", key=state.DATA_NEW_BENCHMARK)
        forms.other_errors("add_asset", ("symbol", "name", "asset_class", "sector", "currency"))
        st.form_submit_button("Add asset", on_click=_on_add_asset)


def _on_toggle_active(active_symbols: set[str]) -> None:
    _submitting("deactivate")
    symbol = st.session_state.get(state.DATA_DEACTIVATE)
    if not symbol:
        forms.set_errors("deactivate", {"symbol": "choose an asset"})
        return
    try:
        universe.set_active(symbol, symbol not in active_symbols, actor=auth.actor())
    except AutoIndexError as exc:
        forms.set_errors("deactivate", {"symbol": str(exc)})
        return
    forms.clear("deactivate")
    forms.set_notice("deactivate", f"{symbol} is now {'inactive' if symbol in active_symbols else 'active'}.")


def activation_form(user: UserOut, frame: pd.DataFrame) -> None:
    forms.notice("deactivate")
    active = set(frame.loc[frame["active"], "symbol"]) if len(frame) else set()
    st.selectbox(
        "Asset",
        frame["symbol"].tolist(),
        key=state.DATA_DEACTIVATE,
        index=None,
        placeholder="Choose an asset",
        format_func=lambda s: f"{s} ({'active' if s in active else 'inactive'})",
    )
    forms.field_error("deactivate", "symbol")
    chosen = st.session_state.get(state.DATA_DEACTIVATE)
    st.button(
        "Reactivate" if chosen and chosen not in active else "Deactivate",
        key="data_toggle_active",
        on_click=_on_toggle_active,
        args=(active,),
        help="Inactive assets keep their prices but are left out of every compute.",
    )


def asset_history(token: str, symbols: list[str]) -> None:
    if not symbols:
        st.info("The universe is empty.")
        return
    symbol = st.selectbox("Asset", symbols, key=state.DATA_ASSET)
    history = cache.asset_history(token, symbol)
    q = history.quality
    columns = st.columns(5)
    columns[0].metric("Prices", f"{q['prices']:,}")
    columns[1].metric("Last price", str(q["last_date"] or MISSING))
    columns[2].metric(
        "Gaps (business days)",
        MISSING if q["gaps"] is None else f"{q['gaps']:,}",
        help=f"Longest gap: {q['longest_gap']} business days",
    )
    columns[3].metric("Unchanged closes", MISSING if q["unchanged_days"] is None else f"{q['unchanged_days']:,}")
    columns[4].metric(STALE_LABEL, MISSING if q["stale_days"] is None else str(q["stale_days"]), help=STALE_HELP)
    if len(history.prices):
        plot(charts.price_chart(history.prices, symbol), key="chart_asset_price")
    if history.missing_dates:
        with st.expander(f"Missing business days ({len(history.missing_dates)} most recent shown)"):
            st.write(", ".join(str(d) for d in history.missing_dates[-60:]))


def _on_import() -> None:
    _submitting("import")
    upload = st.session_state.get(state.DATA_IMPORT_FILE)
    st.session_state.pop(state.DATA_IMPORT_PROBLEMS, None)
    if upload is None:
        forms.set_errors("import", {"file": "choose a CSV or XLSX file first"})
        return
    from core.services.refresh import import_price_file

    try:
        summary = import_price_file(
            upload.getvalue(),
            upload.name,
            actor=auth.actor(),
            allow_new_symbols=bool(st.session_state.get(state.DATA_IMPORT_ALLOW_NEW)),
        )
    except ImportValidationError as exc:
        st.session_state[state.DATA_IMPORT_PROBLEMS] = [p.as_dict() for p in exc.rows]
        forms.set_errors("import", {"file": f"refused: {len(exc.rows)} problem(s), nothing was imported"})
        return
    except AutoIndexError as exc:
        forms.set_errors("import", {"file": str(exc)})
        return
    forms.clear("import")
    recompute = summary.get("recompute")
    follow = (
        f" Recompute of {recompute['config']} queued as run {recompute['run_id']} (see Tasks)."
        if isinstance(recompute, dict) and recompute.get("queued")
        else f" Recompute not queued: {recompute.get('reason')}."
        if isinstance(recompute, dict)
        else ""
    )
    forms.set_notice(
        "import",
        f"Imported {upload.name}: {summary['rows_new']} new, {summary['rows_updated']} "
        f"updated, {summary['rows_unchanged']} unchanged prices.{follow}",
    )


def import_form(user: UserOut) -> None:
    st.caption(
        "Columns: date, symbol, close (optional market_cap or shares_outstanding, and dividend: cash per "
        "share going ex that day, for the total-return basis); one row per symbol "
        "and date. The file is "
        "checked as a whole: one bad row refuses it and nothing is written."
    )
    forms.notice("import")
    st.file_uploader("Price file", type=["csv", "xlsx"], key=state.DATA_IMPORT_FILE)
    forms.field_error("import", "file")
    st.checkbox("Allow symbols not yet in the universe", key=state.DATA_IMPORT_ALLOW_NEW)
    st.button("Import", key="data_import_button", on_click=_on_import, type="primary")
    problems = st.session_state.get(state.DATA_IMPORT_PROBLEMS)
    if problems:
        tables.show(
            pd.DataFrame(problems, columns=["row", "column", "problem", "value"]), hide_index=True, width="stretch"
        )
    st.divider()
    factor_import_form(on_submit=lambda: _submitting("factors"))  # issue 15: factor sets for the regression


def _on_provider() -> None:
    _submitting("provider")
    try:
        universe.put_provider_settings(
            st.session_state.get(state.DATA_PROVIDER) or "",
            st.session_state.get(state.DATA_PROVIDER_SYMBOLS) or "",
            actor=auth.actor(),
        )
    except ValidationFailed as exc:
        forms.set_errors("provider", exc.errors)
        return
    except AutoIndexError as exc:
        forms.set_errors("provider", {"provider": str(exc)})
        return
    forms.clear("provider")
    forms.set_notice("provider", "Provider settings saved.")


def provider_form(user: UserOut) -> None:
    from core.config import get_settings
    from core.infra.providers.registry import PROVIDER_NAMES

    current = universe.provider_settings()
    st.session_state.setdefault(state.DATA_PROVIDER, current["name"])
    st.session_state.setdefault(state.DATA_PROVIDER_SYMBOLS, current["symbols"])
    forms.notice("provider")
    with st.form("provider"):
        st.selectbox("Provider for refreshes", PROVIDER_NAMES, key=state.DATA_PROVIDER)
        forms.field_error("provider", "provider")
        st.text_area(
            "Symbols to refresh (comma separated; empty = the active universe)", key=state.DATA_PROVIDER_SYMBOLS
        )
        forms.field_error("provider", "symbols")
        st.form_submit_button("Save provider settings", on_click=_on_provider)
    key_state = "set (hidden)" if get_settings().twelvedata_api_key else "not set"
    st.caption(
        f"TwelveData API key: {key_state}. Keys come from the environment (TWELVEDATA_API_KEY) or "
        ".streamlit/secrets.toml and are never stored in the database or shown."
    )
