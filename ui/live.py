"""Views that stay true: a self-refreshing fragment reruns the whole page when what it watches changes.

A fragment with ``run_every`` redraws only itself, so tables and details drawn outside it (run history, run
detail, report history with its download button) would keep showing a state that is over ("queued" after the
report is done). The live fragments therefore pass a small signature of what they see (ids and states) to
:func:`rerun_when_changed`; when it differs from the previous tick, the whole page reruns once and every view
on it shows the same state. Progress alone does not rerun the page: the live panel shows it.
"""
from __future__ import annotations

from collections.abc import Hashable

import streamlit as st


def rerun_when_changed(key: str, signature: Hashable) -> None:
    """Remember ``signature`` under ``key``; rerun the app when it differs from the one seen last time."""
    previous = st.session_state.get(key)
    st.session_state[key] = signature
    if previous is not None and previous != signature:
        st.rerun(scope="app")
