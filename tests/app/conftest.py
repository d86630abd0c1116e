"""AppTest fixtures: a seeded, computed database per module, users of each role, and a helper to run pages.

Streamlit quirk handled here: with a ``pages/`` folder next to the entry point, Streamlit starts in the
legacy "pages directory" mode until the first ``st.navigation`` call switches it off for the process
(Home.py always calls st.navigation). AppTest resets that process-wide flag before every run, so its
second run would execute the page file without Home.py. The autouse fixture below restores the
production behaviour (flag off) for every AppTest run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ADMIN = ("admin", "Ada Admin", "correct horse battery staple")
ANALYST = ("analyst", "Ann Analyst", "analyst password 2024")
TIMEOUT = 60


@pytest.fixture(autouse=True)
def _navigation_mode(monkeypatch) -> None:
    from streamlit.runtime.pages_manager import PagesManager

    original = PagesManager.__init__

    def init(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)


def _reset_caches() -> None:
    from core.config import reset_settings_cache
    from core.db import reset_engine_cache

    reset_engine_cache()
    reset_settings_cache()


@pytest.fixture(scope="module")
def app_db(tmp_path_factory) -> Iterator[Path]:
    """A migrated database with the demo universe computed, an admin and an analyst (shared per module)."""
    data_dir = tmp_path_factory.mktemp("appdata")
    saved = {
        k: os.environ.get(k) for k in ("DATA_DIR", "DATABASE_URL", "REDIS_URL", "DEMO_ON_EMPTY", "EMBEDDED_WORKER")
    }
    os.environ["DATA_DIR"] = str(data_dir)
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("REDIS_URL", None)
    os.environ["DEMO_ON_EMPTY"] = "true"
    os.environ["EMBEDDED_WORKER"] = "false"
    _reset_caches()
    from core.services import bootstrap, users

    bootstrap.start_up()
    users.create_user(ADMIN[0], ADMIN[1], ADMIN[2], role="admin")
    users.create_user(ANALYST[0], ANALYST[1], ANALYST[2], role="analyst")
    yield data_dir
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    _reset_caches()


def log_in(at, username: str) -> None:  # type: ignore[no-untyped-def]
    """Put a logged-in session into ``at``, as the login form leaves it: the username and the account's
    credential version (a user that does not exist, or a database that is down, gives version 0)."""
    from core.errors import AutoIndexError
    from core.services import users

    at.session_state["auth_username"] = username
    try:
        at.session_state["auth_credential_version"] = users.get_user(username).credential_version
    except AutoIndexError:
        at.session_state["auth_credential_version"] = 0


def make_app(username: str | None = None, page: str | None = None):  # type: ignore[no-untyped-def]
    """An AppTest of Home.py, logged in as ``username`` (None: logged out), optionally on ``page``."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(PROJECT_ROOT / "Home.py"), default_timeout=TIMEOUT)
    if username:
        log_in(at, username)
    at.run()
    if page:
        at.switch_page(page).run()
    return at


def page_app(path: str, username: str | None = None):  # type: ignore[no-untyped-def]
    """An AppTest of one page file run on its own (as if reached by URL without Home's navigation)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(PROJECT_ROOT / path), default_timeout=TIMEOUT)
    if username:
        log_in(at, username)
    return at.run()


def charts(at) -> list[dict]:  # type: ignore[no-untyped-def]
    """Every Plotly chart the run drew (the app's chart element, ``ui.plotly_element``), as the figure dict sent to
    the browser; ``st.plotly_chart`` elements too, so a page that went back to it is still seen."""
    from ui.plotly_element import figure_of

    drawn = [figure_of(e) for e in at.get("bidi_component")]
    drawn += [json.loads(e.proto.spec) for e in at.get("plotly_chart")]
    return [f for f in drawn if f is not None]


def plotly_figures(at) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    """Every drawn Plotly chart, by its title, as the figure dict sent to the browser."""
    out = {}
    for number, spec in enumerate(charts(at)):
        title = (spec.get("layout", {}).get("title") or {}).get("text") or f"untitled chart {number}"
        out[title] = spec
    return out


def trace_names(figure: dict) -> list[str]:
    return [t.get("name") for t in figure.get("data", [])]


def texts(at) -> str:  # type: ignore[no-untyped-def]
    """All markdown, caption, title, error, info and warning text of the last run, joined."""
    parts = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "error", "info", "warning", "success"):
        parts.extend(str(e.value) for e in getattr(at, kind))
    return "\n".join(parts)
