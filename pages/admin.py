"""Admin: users and roles, registration mode and invitations, the audit log (administrators only)."""

import streamlit as st

from core.services import users
from ui import admin_view as view
from ui import alerts_view
from ui.auth import ADMIN_ONLY, require_user
from ui.errors import shown_errors

user = require_user(ADMIN_ONLY)
st.title("Admin")
with shown_errors():
    all_users = users.list_users(actor=user)
    users_tab, registration_tab, audit_tab, alerts_tab = st.tabs(
        ["Users and roles", "Registration", "Audit log", "Alerts"]
    )
    with users_tab:
        view.users_table(all_users)
        left, right = st.columns(2)
        with left, st.expander("Create a user"):
            view.create_user_form(user)
        with right, st.expander("Change role, deactivate, unlock, reset password or two-factor", expanded=True):
            view.edit_user_form(user, all_users)
    with registration_tab:
        view.registration(user)
    with audit_tab:
        view.audit_log(all_users)
    with alerts_tab:
        alerts_view.draw(user)
