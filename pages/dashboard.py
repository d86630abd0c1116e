"""Dashboard."""
import streamlit as st

from ui.auth import ALL_ROLES, require_user

user = require_user(ALL_ROLES)
st.title("Dashboard")
