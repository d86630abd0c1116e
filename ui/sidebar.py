"""The shared sidebar drawn by Home.py on every page: user, logout, config version, demo badge."""

from __future__ import annotations

import streamlit as st

from core.schemas.user import UserOut
from ui import auth, cache, state
from ui.errors import shown_errors

DEMO_BADGE = "Synthetic demo data"


def demo_badge() -> None:
    """The visible "synthetic demo data" label (drawn wherever demo data is shown)."""
    st.badge(DEMO_BADGE, icon=":material/science:", color="orange")


def config_selector(token: str) -> None:
    """The config version shown on the dashboard; defaults to the active version."""
    versions = cache.versions(token)
    if not versions:
        st.caption("No strategy config yet.")
        return
    ids = [v.id for v in versions]
    labels = {v.id: v.label for v in versions}
    if st.session_state.get(state.SIDEBAR_CONFIG_ID) not in ids:
        active = next((v.id for v in versions if v.is_active), ids[0])
        st.session_state[state.SIDEBAR_CONFIG_ID] = active
    st.selectbox(
        "Config version shown",
        ids,
        key=state.SIDEBAR_CONFIG_ID,
        format_func=lambda i: labels[i],
        help="The strategy config version whose results the dashboard shows.",
    )


def selected_config_id() -> int | None:
    value = st.session_state.get(state.SIDEBAR_CONFIG_ID)
    return int(value) if value is not None else None


def draw(user: UserOut) -> None:
    with st.sidebar:
        with shown_errors():
            token = cache.token()
            config_selector(token)
            if cache.demo_data_shown(token):
                demo_badge()
        st.divider()
        st.markdown(f"**{user.name}**  \n{auth.account_line(user)}")
        with st.expander("Change password"):
            auth.change_password_form()
        auth.logout_button()
