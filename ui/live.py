"""Views that stay true: a self-refreshing fragment reruns the whole page when something it watched ends.

A fragment with ``run_every`` redraws only itself, so tables and details drawn outside it (run history, run
detail, report history with its download button) would keep showing a state that is over ("queued" after the
report is done). The live fragments therefore pass what they see now (id -> state) to
:func:`rerun_when_changed`; when something seen at the previous tick has left or changed state, the whole page
reruns once and every view on it shows the same state. Something new appearing does not rerun the page (the
run that queued it already shows it, and the rerun would swallow that run's success line), and progress alone
does not either: the live panel shows it.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import streamlit as st


def rerun_when_changed(key: str, seen: Mapping[Hashable, Hashable]) -> None:
    """Remember ``seen`` under ``key``; rerun the app when an entry of the previous tick left or changed."""
    previous = st.session_state.get(key)
    st.session_state[key] = dict(seen)
    if previous and any(seen.get(k) != v for k, v in previous.items()):
        st.rerun(scope="app")


def keep_choice(key: str, options: Sequence[Hashable]) -> None:
    """Keep the choice of the picker under ``key`` among ``options`` (the first when it is gone), stated again
    before the picker is drawn.

    A picker's browser side holds the chosen option's label as text, not its id. When the label changes
    (``run 4 · … · queued`` -> ``… · succeeded``) and the id stays chosen, Streamlit keeps the id but sends the
    browser no value, so the browser keeps showing the old label under a detail that says otherwise. A value set
    through session state before the widget is sent with it (``set_value``), so the browser shows the label
    ``format_func`` gives from this run's state. Options are ids, so a changed label never resets the choice."""
    chosen = st.session_state.get(key)
    st.session_state[key] = chosen if chosen in options else options[0]
