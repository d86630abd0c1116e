"""Tasks: queue jobs, follow them live, browse the history, retry or cancel, see the schedule and the workers."""

import streamlit as st

from ui import tasks_view as view
from ui.auth import ALL_ROLES, require_user

user = require_user(ALL_ROLES)
st.title("Tasks")
st.caption("Your runs" if not user.is_admin else "All runs (admin)")
with st.container(border=True):
    st.subheader("Queue a job")
    view.queue_forms(user)
st.subheader("Live")
view.live_panel(user)
st.subheader("History")
view.history(user)
view.run_detail(user)
schedule, workers = st.columns(2)
with schedule:
    st.subheader("Schedule")
    view.schedule_table()
with workers:
    st.subheader("Workers")
    view.workers_table()
