"""Dashboard: the selected config version's performance, allocation, risk and data freshness."""

import streamlit as st

from ui import cache, risk_view, sidebar, strategy_view
from ui import dashboard_view as view
from ui.auth import ALL_ROLES, require_user
from ui.errors import shown_errors

user = require_user(ALL_ROLES)
with shown_errors():
    token = cache.token()
    config_id = sidebar.selected_config_id()
    if config_id is None:
        st.info("No strategy config exists yet; create one on the Strategy page.")
        st.stop()
    data = cache.dashboard_data(token, config_id)
    st.title(f"Dashboard · {data.config_label}")
    if cache.demo_data_shown(token):
        sidebar.demo_badge()
    if data.empty:
        st.info(
            "This version has not been computed yet. Compare it on the Strategy page, or queue its compute on "
            "the Tasks page."
        )
        st.stop()
    st.caption(f"As of {data.as_of} · benchmark {data.benchmark_symbol or 'none'}")
    view.compute_notes(data.warnings)
    view.kpis(data)
    view.charts_panel(data, token)  # a fragment: range, log scale and section changes rerun only it
    # computed ahead on the prewarm thread, once per data version, shortest first: the Allocation and Risk
    # sections' first figures, the Strategy lab's market inputs and its first preview and comparison (the active
    # version), then this version's Scenarios view with its default inputs (the Monte Carlo and stress replay take
    # seconds at 500 assets)
    view.prewarm(data, token)
    cache.prewarm_market_inputs(token)
    strategy_view.prewarm(token, cache.versions(token))
    risk_view.prewarm(token, config_id)
