"""AppTest: login gate, first-run setup, login / lockout / logout, and role checks on every page."""

from __future__ import annotations

import pytest

from tests.app.conftest import ADMIN, ANALYST, charts, make_app, page_app, texts

ALL_PAGES = (
    "pages/dashboard.py",
    "pages/strategy.py",
    "pages/reports.py",
    "pages/tasks.py",
    "pages/data.py",
    "pages/diagnostics.py",
    "pages/admin.py",
)
ADMIN_PAGES = ("pages/admin.py", "pages/diagnostics.py")


def _login(at, username: str, password: str):  # type: ignore[no-untyped-def]
    at.text_input(key="login_username").input(username)
    at.text_input(key="login_password").input(password)
    return at.button[0].click().run()


def test_logged_out_home_shows_only_the_login_form(app_db) -> None:
    at = make_app()
    assert not at.exception
    assert [t.value for t in at.title] == ["AutoIndex"]
    assert at.text_input(key="login_username") is not None
    assert len(at.sidebar.children) == 0
    assert not charts(at)


@pytest.mark.parametrize("path", ALL_PAGES)
def test_every_page_logged_out_shows_the_login_form(app_db, path: str) -> None:
    at = page_app(path)
    assert not at.exception
    assert [t.value for t in at.title] == ["AutoIndex"]
    assert not charts(at) and not at.dataframe


@pytest.mark.parametrize("path", ALL_PAGES)
@pytest.mark.parametrize("username", [ADMIN[0], ANALYST[0]])
def test_every_page_draws_for_its_roles(app_db, path: str, username: str) -> None:
    at = page_app(path, username)
    assert not at.exception, at.exception
    denied = any("Access denied" in e.value for e in at.error)
    assert denied == (username == ANALYST[0] and path in ADMIN_PAGES)
    if denied:
        assert not at.title and not at.dataframe and not at.button


def test_analyst_navigation_lacks_admin_pages_and_switching_there_fails(app_db) -> None:
    at = make_app(ANALYST[0])
    assert not at.exception
    with pytest.raises(Exception):
        at.switch_page("pages/admin.py").run()
    at = make_app(ADMIN[0], page="pages/admin.py")
    assert [t.value for t in at.title] == ["Admin"]


def test_login_wrong_password_then_right(app_db) -> None:
    from core.services import audit

    at = make_app()
    at = _login(at, ANALYST[0], "not the password at all")
    assert any("wrong username or password" in e.value.lower() for e in at.error)
    assert "auth_username" not in at.session_state or at.session_state["auth_username"] is None
    at = _login(at, ANALYST[0], ANALYST[2])
    assert not at.exception
    assert at.title[0].value.startswith("Dashboard")
    events = audit.list_events(actor=ANALYST[0], action="auth.login")
    assert set(events["outcome"]) >= {"ok", "failed"}


def test_lockout_after_five_failures(app_db) -> None:
    from core.services import users

    users.create_user("locky", "Lock Y", "locky password 2024")
    at = make_app()
    for _ in range(5):
        at = _login(at, "locky", "wrong password 12345")
    assert any("locked" in e.value.lower() for e in at.error)
    at = _login(at, "locky", "locky password 2024")
    assert any("locked" in e.value.lower() for e in at.error)
    assert "Dashboard" not in texts(at)
    assert users.get_user("locky").locked_until is not None
    users.update_user("locky", actor=None, unlock=True)


def test_logout_returns_to_login_and_is_audited(app_db) -> None:
    from core.services import audit

    at = make_app(ADMIN[0])
    at.sidebar.button(key="logout_button").click().run()
    assert [t.value for t in at.title] == ["AutoIndex"]
    assert at.session_state["auth_logged_out"] is True
    assert len(audit.list_events(actor=ADMIN[0], action="auth.logout")) >= 1


def test_deactivated_user_loses_access_on_next_run(app_db) -> None:
    from core.services import users

    users.create_user("leaver", "Lea Ver", "leaver password 2024")
    at = make_app("leaver")
    assert at.title[0].value.startswith("Dashboard")
    users.update_user("leaver", actor=None, is_active=False)
    at.run()
    assert [t.value for t in at.title] == ["AutoIndex"]


@pytest.fixture
def empty_db(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    from tests.app.conftest import _reset_caches

    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DEMO_ON_EMPTY", "false")
    monkeypatch.setenv("EMBEDDED_WORKER", "false")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    _reset_caches()
    yield tmp_path
    _reset_caches()


def test_first_run_asks_only_for_token_and_admin_account(empty_db) -> None:
    from core.services import users

    at = make_app()
    assert at.title[0].value == "Welcome to AutoIndex"
    keys = {t.key for t in at.text_input}
    assert keys == {"setup_token", "setup_username", "setup_name", "setup_email", "setup_password", "setup_password2"}
    token = (empty_db / "setup_token.txt").read_text().strip()

    at.text_input(key="setup_username").input("r!")  # three problems in one submission: all shown, by label
    at.text_input(key="setup_password").input("short")
    at.text_input(key="setup_password2").input("shorter")
    at = at.button[0].click().run()
    shown = [e.value for e in at.error]
    assert any(e.startswith("Administrator username: ") for e in shown), shown
    assert any(e.startswith("Password: ") for e in shown), shown
    assert any(e.startswith("Repeat password: does not match") for e in shown), shown
    assert any(e.startswith("Setup token: is required") for e in shown), shown
    assert any(e.startswith("Full name: ") for e in shown), shown
    assert not any("Password2" in e or "password2" in e for e in shown), shown
    assert users.count_users() == 0

    at.text_input(key="setup_token").input("wrong-token")
    at.text_input(key="setup_username").input("root")
    at.text_input(key="setup_name").input("Root Admin")
    at.text_input(key="setup_password").input("root password 2024")
    at.text_input(key="setup_password2").input("root password 2024")
    at = at.button[0].click().run()
    assert any("Setup token" in e.value for e in at.error)
    assert users.count_users() == 0

    at.text_input(key="setup_token").input(token)
    at.text_input(key="setup_password").input("short")
    at.text_input(key="setup_password2").input("short")
    at = at.button[0].click().run()
    assert any("Password:" in e.value for e in at.error)
    assert users.count_users() == 0

    at.text_input(key="setup_password").input("root password 2024")
    at.text_input(key="setup_password2").input("root password 2024")
    at = at.button[0].click().run()
    assert not at.exception
    assert users.get_user("root").role == "admin"
    assert not (empty_db / "setup_token.txt").exists()
    assert "Welcome to AutoIndex" not in texts(at)
