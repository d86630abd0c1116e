"""Reports: request a report (type, period, format), follow its generation, download or delete past ones."""

import streamlit as st

from ui import reports_view as view
from ui.auth import ALL_ROLES, require_user

user = require_user(ALL_ROLES)
st.title("Reports")
st.caption(
    "Performance tear sheet, allocation, risk and benchmark reports as HTML, PDF, XLSX or CSV. "
    + ("All users' reports (admin)." if user.is_admin else "Only you (and admins) can see your reports.")
)
with st.container(border=True):
    st.subheader("New report")
    view.request_form(user)
st.subheader("In progress")
view.pending_panel(user)
st.subheader("History")
view.history(user)
