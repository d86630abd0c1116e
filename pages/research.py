"""Research: parameter sweeps over a saved version, on the job workers; results, heatmaps, downloads, promote."""

import streamlit as st

from ui import cache
from ui import research_view as view
from ui.auth import ALL_ROLES, require_user
from ui.errors import shown_errors

user = require_user(ALL_ROLES)
st.title("Research")
st.caption(
    "Sweep config fields over a grid, check them out of sample, and promote the robust one. "
    + ("All users' sweeps (admin)." if user.is_admin else "Only you (and admins) can see your sweeps.")
)
with shown_errors():
    view.page(user, cache.versions(cache.token()))
