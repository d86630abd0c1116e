"""AutoIndex entry point: start-up, first-run admin setup, login gate, navigation and the shared sidebar.

Run with ``python -m core serve`` (``./start.sh``; start-up before the first visitor: cli/serve.py) or ``streamlit run
Home.py``. Pages live in pages/ and each calls ``ui.auth.require_user`` first.
"""

from __future__ import annotations

import logging

import streamlit as st

st.set_page_config(page_title="AutoIndex", page_icon=":material/monitoring:", layout="wide")

from core.config import get_settings  # noqa: E402
from core.errors import AutoIndexError  # noqa: E402
from core.infra.telemetry import timed  # noqa: E402
from core.logs import configure_logging  # noqa: E402
from ui import account_view, auth, monitoring, navigation, sidebar  # noqa: E402
from ui.entry import requested_page  # noqa: E402
from ui.errors import show_error  # noqa: E402


@st.cache_resource(show_spinner="Preparing the database…")
def _start_up(database_url: str) -> dict[str, object]:
    """Migrate, seed the demo universe on an empty database, compute the default config (once per process)."""
    from core.services.bootstrap import start_up_once

    return start_up_once()


@st.cache_resource(show_spinner=False)
def _background_worker(database_url: str) -> bool:
    """The in-app job consumer (no-op when jobs run elsewhere), started once per process."""
    try:
        from jobs.embedded import ensure_started

        ensure_started()
    except Exception:  # the app stays usable without the worker; Diagnostics shows its status
        logging.getLogger("autoindex.home").exception("could not start the embedded job worker")
        return False
    return True


@st.fragment
def _cookie_writer() -> None:
    """The re-authentication cookie's browser component (:func:`ui.auth.flush_cookie_action`) in a fragment: when
    the browser reports the cookie written, only this reruns, not the page just drawn (issue 17: a login cost
    two or three whole Dashboard runs)."""
    auth.flush_cookie_action()


def _single_page(page, title: str, url_path: str) -> None:  # type: ignore[no-untyped-def]
    """Navigation with one hidden page: logged-out visitors see nothing but this form, whatever the URL."""
    st.navigation([st.Page(page, title=title, url_path=url_path, default=True)], position="hidden").run()


def main() -> None:
    try:
        configure_logging()
        url = get_settings().effective_database_url
        _start_up(url)
        _background_worker(url)
        monitoring.start()  # /metrics when METRICS_PORT is set, the alert watchdog, the session count
        from core.services import users

        no_users = users.count_users() == 0
        user = None if no_users else auth.current_user()
    except AutoIndexError as exc:
        show_error(exc)
        st.stop()
    if no_users and not st.session_state.get(auth.state.AUTH_USERNAME):
        from ui.setup import setup_screen

        _single_page(setup_screen, "Set up AutoIndex", "setup")
        return
    if user is None:
        _single_page(auth.login_screen, "Log in", "login")
        return
    if account_view.gate_needed(user):  # ADMIN_2FA=required: an administrator enrols before any page
        _single_page(account_view.enrolment_required_screen, "Two-factor authentication", "two-factor")
        return
    user = auth.require_user(auth.ALL_ROLES)
    forbidden = navigation.forbidden_for(user.role, requested_page())
    page = st.navigation(navigation.pages_for(user.role))
    sidebar.draw(user)
    with st.sidebar:
        _cookie_writer()
    if forbidden is not None:  # a URL of a page this role may not see: say so, never redirect silently
        st.error(
            f"You do not have access to this page ({forbidden.title} is for administrators). "
            "Choose a page in the sidebar.",
            icon=":material/block:",
        )
        return
    with timed("page", page.title):  # p50/p95 per page on the Diagnostics page
        page.run()


main()
