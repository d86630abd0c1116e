"""Admin."""
import streamlit as st

from ui.auth import ADMIN_ONLY, require_user

user = require_user(ADMIN_ONLY)
st.title("Admin")
