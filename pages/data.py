"""Data: the universe, per-asset history and quality; import and provider settings for admins."""

import streamlit as st

from ui import cache
from ui import data_view as view
from ui.auth import ALL_ROLES, require_user
from ui.errors import shown_errors

user = require_user(ALL_ROLES)
st.title("Data")
with shown_errors():
    token = cache.token()
    assets = cache.universe(token)
    if not user.is_admin:
        st.caption("Read-only: an administrator imports prices and manages the universe.")
    names = ["Universe", "Asset history"] + (["Import prices", "Provider"] if user.is_admin else [])
    tabs = dict(zip(names, st.tabs(names)))
    with tabs["Universe"]:
        view.universe_table(assets)
        if user.is_admin:
            left, right = st.columns(2)
            with left, st.expander("Add an asset"):
                view.add_asset_form(user)
            with right, st.expander("Deactivate or reactivate an asset"):
                view.activation_form(user, assets)
    with tabs["Asset history"]:
        view.asset_history(token, assets["symbol"].tolist())
    if user.is_admin:
        with tabs["Import prices"]:
            view.import_form(user)
        with tabs["Provider"]:
            view.provider_form(user)
