"""Dashboard: the selected config version's performance, allocation, risk and data freshness."""
import streamlit as st

from ui import cache, dashboard_view as view, sidebar
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
        st.info("This version has not been computed yet; activate it on the Strategy page to compute it.")
        st.stop()
    st.caption(f"As of {data.as_of} · benchmark {data.benchmark_symbol or 'none'}")
    view.kpis(data)
    start, _log = view.main_chart(data)
    performance, allocation, risk, freshness = st.tabs(["Performance", "Allocation", "Risk", "Data freshness"])
    with performance:
        view.performance(data, start)
    with allocation:
        view.allocation(data)
    with risk:
        view.risk(data)
    with freshness:
        view.freshness(cache.freshness(token))
