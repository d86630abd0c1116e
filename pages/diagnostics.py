"""Diagnostics (placeholder: being built in its own issue)."""
import streamlit as st

from ui.auth import ADMIN_ONLY, require_user

user = require_user(ADMIN_ONLY)
st.title("Diagnostics")
st.info("This screen is being built; it will appear here shortly.")
