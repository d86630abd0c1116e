"""Strategy lab: edit a config with instant validation, preview it, compare, save, activate, history."""

import streamlit as st

from core.services import strategies
from ui import cache
from ui import strategy_view as view
from ui.auth import ALL_ROLES, require_user
from ui.errors import shown_errors

user = require_user(ALL_ROLES)
st.title("Strategy lab")
with shown_errors():
    token = cache.token()
    versions = cache.versions(token)
    view.ensure_loaded(versions)
    if versions:
        view.base_selector(versions)
    params = view.current_params()
    errors = strategies.config_errors(params)
    view.editor(errors)
    view.remember_draft()
    preview_result = None
    if errors:
        st.warning("The preview is paused until every field is valid.")
    else:
        with shown_errors():
            preview_result = view.preview(token, params)
            st.caption(
                f"Preview: {preview_result['rebalances']} rebalances. " + view.sentences(preview_result["warnings"][:3])
            )
    view.notices()
    names = ["Preview and compare", "Save"] + (["Activate"] if user.is_admin else []) + ["History"]
    tabs = dict(zip(names, st.tabs(names)))
    with tabs["Preview and compare"]:
        view.compare(token, versions, preview_result)
        view.methodology(params)
    with tabs["Save"]:
        view.save_form(user, errors)
    if user.is_admin:  # activation changes the house index for everyone (the service checks the role again)
        with tabs["Activate"]:
            view.activate_form(user, versions)
    with tabs["History"]:
        view.history(versions)
