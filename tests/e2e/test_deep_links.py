"""Deep links as the first request after a restart (issue 12): the same start-up, navigation, sidebar and login
gate as "/", and the embedded worker runs jobs queued from the command line."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.e2e.conftest import PROJECT_ROOT, start_server, stop_server
from tests.e2e.test_app_flow import _wait_app, login, wait_signed_in

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

ADMIN = ("admin", "Ada Admin", "correct horse battery staple")
NAV_TITLES = ["Dashboard", "Strategy", "Research", "Reports", "Tasks", "Data", "Diagnostics", "Admin", "Account"]


@pytest.fixture
def own_data_dir(tmp_path, monkeypatch):
    """A data directory with a migrated database and an administrator, the test process pointed at it."""
    from core.config import reset_settings_cache
    from core.db import migrate, reset_engine_cache

    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    reset_engine_cache()
    reset_settings_cache()
    migrate(timeout_s=30)
    from core.services import users

    users.create_user(*ADMIN, role="admin")
    yield tmp_path
    reset_engine_cache()
    reset_settings_cache()


def _nav_titles(page) -> list[str]:  # type: ignore[no-untyped-def]
    nav = page.locator("[data-testid='stSidebarNav']")
    nav.wait_for()
    # each link reads "<material icon name>\n<title>"
    return [t.strip().splitlines()[-1] for t in nav.locator("a").all_inner_texts() if t.strip()]


@pytest.mark.parametrize("path", ["tasks", "diagnostics"])
def test_a_deep_link_as_the_first_request_after_a_restart_enters_through_home(own_data_dir, browser, path):
    env = {"EMBEDDED_WORKER": "true"}
    process, base_url = start_server(own_data_dir, env, launcher="streamlit")
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    try:
        page = context.new_page()
        page.set_default_timeout(60_000)
        login(page, base_url, ADMIN[0], ADMIN[2])
        wait_signed_in(page)
        stop_server(process)
        process, base_url = start_server(
            own_data_dir, env, launcher="streamlit"
        )  # a restart: nothing has run in this process yet
        page.goto(f"{base_url}/{path}")
        _wait_app(page)
        page.get_by_role("heading", name=re.compile(path.title())).first.wait_for()
        assert _nav_titles(page) == NAV_TITLES  # the role's navigation, not Streamlit's raw file list
        page.get_by_role("button", name="Log out").wait_for()  # the sidebar's user block
        page.get_by_text(ADMIN[1]).first.wait_for()
        # the embedded worker started with this first request: a job queued from the CLI runs
        cli_env = {**os.environ, "DATA_DIR": str(own_data_dir), "PYTHONPATH": str(PROJECT_ROOT)}
        cli_env.pop("DATABASE_URL", None)
        done = subprocess.run(
            [sys.executable, "-m", "core", "jobs", "enqueue", "compute", "--wait"],
            cwd=PROJECT_ROOT,
            env=cli_env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    finally:
        context.close()
        stop_server(process)


def test_a_deep_link_without_a_cookie_shows_only_the_login(own_data_dir, browser):
    process, base_url = start_server(own_data_dir, launcher="streamlit")
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(60_000)
        page.goto(f"{base_url}/admin")
        _wait_app(page)
        page.get_by_role("button", name="Log in").wait_for()
        assert page.locator("[data-testid='stSidebarNav']").count() == 0
        assert page.get_by_role("heading", name=re.compile("Admin")).count() == 0
    finally:
        context.close()
        stop_server(process)


@pytest.mark.parametrize("path", ["admin", "diagnostics"])
def test_an_analyst_opening_an_admin_url_is_told_so(own_data_dir, browser, path):
    from core.services import users

    users.create_user("ann", "Ann Analyst", "analyst password 2026", role="analyst")
    process, base_url = start_server(own_data_dir, launcher="streamlit")
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    try:
        page = context.new_page()
        page.set_default_timeout(60_000)
        login(page, base_url, "ann", "analyst password 2026")
        wait_signed_in(page)
        page.goto(f"{base_url}/{path}")
        _wait_app(page)
        page.get_by_text("You do not have access to this page").wait_for()
        assert "Admin" not in _nav_titles(page) and "Diagnostics" not in _nav_titles(page)
        assert page.get_by_role("heading", name=re.compile("Admin|Diagnostics")).count() == 0
        assert page.get_by_role("heading", name=re.compile("Dashboard")).count() == 0  # no silent redirect
    finally:
        context.close()
        stop_server(process)
