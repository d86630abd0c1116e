"""Reports (placeholder: being built in its own issue)."""
import streamlit as st

from ui.auth import ALL_ROLES, require_user

user = require_user(ALL_ROLES)
st.title("Reports")
st.info("This screen is being built; it will appear here shortly.")
