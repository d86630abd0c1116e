"""Account: two-factor authentication for the logged-in user (the password is changed from the sidebar)."""

import streamlit as st

from ui import account_view as view
from ui.auth import account_line, require_user
from ui.errors import shown_errors

user = require_user()
st.title("Account")
st.caption(f"{user.name} · {account_line(user)}")
with shown_errors():
    view.two_factor_section(user)
