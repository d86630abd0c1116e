"""Every request enters through Home.py, whatever URL it opens first.

Streamlit has two multipage modes. With a ``pages/`` folder beside the entry point it starts each server
process in the legacy "pages directory" mode (``PagesManager.uses_pages_directory``) and stays there until a
script calls ``st.navigation``. So when the first request after a start is a deep link such as ``/tasks``,
Streamlit runs ``pages/tasks.py`` by itself: Home.py never runs, so there is no start-up (migrations,
embedded worker), no role-filtered navigation (the raw file list shows instead) and no sidebar.

Every page calls :func:`ui.auth.require_user` first, which calls :func:`enter_through_home`: when the run was
started by the legacy router, it switches the process to ``st.navigation`` mode, as Home's own
``st.navigation`` call would, and reruns. The rerun executes Home.py, whose navigation resolves the same URL
(a page's identity is its URL path in both modes) to the same page, now with start-up, sidebar and login gate.

Streamlit has no public switch for this mode; the class attribute is read and written here only, and the
tests pin the behaviour (tests/e2e/test_deep_links.py).
"""

from __future__ import annotations

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager


def enter_through_home() -> None:
    """Rerun through Home.py when this run was started by Streamlit's legacy pages/ router (see module doc)."""
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def requested_page() -> str | None:
    """The URL path of the page this run was asked for (``"admin"`` for ``/admin``), read before
    ``st.navigation`` resolves it; None when the request named no page or it cannot be told.

    ``st.navigation`` silently runs the default page for a URL that is not among the pages it was given (a
    page the user's role does not include), and ``st.context.url`` reports the page it resolved to, not the
    one asked for; the script run's intent (page name, or the hash of a page's URL path) still holds it.
    """
    from streamlit.runtime.scriptrunner import get_script_run_ctx
    from streamlit.util import calc_hash

    from ui.navigation import PAGES, url_path_of

    ctx = get_script_run_ctx()
    manager = getattr(ctx, "pages_manager", None)
    if manager is None:
        return None
    name = (manager.intended_page_name or "").strip("/")
    if name:
        return name
    wanted = manager.intended_page_script_hash
    if wanted:
        for spec in PAGES:
            if calc_hash(url_path_of(spec)) == wanted:
                return url_path_of(spec)
    return None
