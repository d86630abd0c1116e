"""Access: logged-out visitors see only the login; analysts reach no admin page (navigation, switch_page or the
page file directly) and no other user's task runs or reports (service and page); lockout after 5 failures."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.app.conftest import ADMIN, ANALYST, charts, make_app, page_app
from tests.security.conftest import page_dump

pytestmark = pytest.mark.timeout(120)

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
OTHER = ("olga", "Olga Other", "olga's long password 1")


def _assert_only_login(at) -> None:  # type: ignore[no-untyped-def]
    assert not at.exception, [e.value for e in at.exception]
    assert [t.value for t in at.title] == ["AutoIndex"]
    assert {t.key for t in at.text_input} >= {"login_username", "login_password"}
    assert not at.dataframe and not charts(at) and not at.metric and not at.tabs
    assert len(at.sidebar.children) == 0
    assert not at.selectbox and not at.download_button
    assert [b.label for b in at.button] == ["Log in"]


def test_logged_out_home_shows_only_the_login(app_db):
    _assert_only_login(make_app())


@pytest.mark.parametrize("path", ALL_PAGES)
def test_logged_out_switch_page_to_any_page_is_refused(app_db, path):
    at = make_app()
    with pytest.raises(Exception):  # the only page of a logged-out navigation is the login
        at.switch_page(path).run()


@pytest.mark.parametrize("path", ALL_PAGES)
def test_logged_out_page_file_run_directly_shows_only_the_login(app_db, path):
    _assert_only_login(page_app(path))


@pytest.mark.parametrize("username", ["nobody", "", "admin' OR '1'='1"])
def test_a_forged_session_username_of_no_user_sees_only_the_login(app_db, username):
    at = page_app("pages/admin.py", username or None)
    _assert_only_login(at)


def test_analyst_navigation_has_no_admin_page(app_db):
    from ui.navigation import PAGES, roles_for

    titles = {s.title for s in PAGES if "analyst" in s.roles}  # pages_for() builds st.navigation from these
    assert not titles & {"Admin", "Diagnostics"}
    assert all(roles_for(path) == ("admin",) for path in ADMIN_PAGES)
    assert roles_for("pages/not_listed.py") == ("admin",)  # an unlisted page is admin-only
    at = make_app(ANALYST[0])
    for path in ADMIN_PAGES:
        with pytest.raises(Exception):
            at.switch_page(path).run()


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_analyst_running_an_admin_page_file_directly_is_denied_and_sees_nothing(app_db, path):
    from core.services import users

    _ensure_other()
    at = page_app(path, ANALYST[0])
    assert not at.exception
    assert any("Access denied" in e.value for e in at.error)
    assert not at.title and not at.dataframe and not at.button and not at.tabs and not at.text_input
    dump = page_dump(at)
    for user in users.list_users():  # the user list never leaks
        if user.username not in (ANALYST[0], ADMIN[0]):  # "admin" is also a word of the denial message
            assert user.username not in dump


def _ensure_other() -> None:
    from core.errors import ValidationFailed
    from core.services import users

    try:
        users.create_user(*OTHER[:3], role="analyst")
    except ValidationFailed:  # created by an earlier test of this module
        pass


@pytest.fixture
def other_users_work(app_db, monkeypatch):
    """Runs and reports of another analyst and the admin (queued on an in-memory queue: nothing executes)."""
    from huey.storage import MemoryStorage

    import jobs
    from core.services import reports
    from core.services import runs as run_service

    _ensure_other()
    monkeypatch.setattr(jobs.huey, "storage", MemoryStorage("security"))
    monkeypatch.setattr(jobs.huey, "immediate_use_memory", False)
    monkeypatch.setattr(jobs.huey, "immediate", False)
    queue = jobs.huey
    runs = {who: run_service.enqueue("compute", {}, user=who, huey=queue) for who in (OTHER[0], ADMIN[0], ANALYST[0])}
    report_ids = {
        who: reports.request_report("performance", "1Y", "csv", owner=who, huey=queue)
        for who in (OTHER[0], ADMIN[0], ANALYST[0])
    }
    return runs, report_ids, queue


def test_analyst_cannot_see_or_act_on_other_users_runs(other_users_work):
    from core.errors import NotFoundError
    from core.schemas.task import RunFilters
    from core.services import runs as run_service
    from core.services import users

    runs, _, queue = other_users_work
    analyst = users.get_user(ANALYST[0])
    visible = run_service.list_runs(viewer=analyst, limit=1000)
    assert visible and {r.queued_by for r in visible} == {ANALYST[0]}
    assert {r.queued_by for r in run_service.list_runs(RunFilters(user=OTHER[0]), viewer=analyst)} == {ANALYST[0]}
    assert run_service.run_users(analyst) == [ANALYST[0]]
    assert run_service.count_runs(viewer=analyst) == len(run_service.list_runs(viewer=analyst, limit=1000))
    assert all(r.queued_by == ANALYST[0] for r in run_service.active_runs(analyst))
    for who in (OTHER[0], ADMIN[0]):
        with pytest.raises(NotFoundError):
            run_service.get_run(runs[who], analyst)
        with pytest.raises(NotFoundError):
            run_service.cancel(runs[who], analyst, huey=queue)
        with pytest.raises(NotFoundError):
            run_service.retry(runs[who], analyst, huey=queue)
        assert run_service.get_run(runs[who], None).state == "queued"  # untouched
    assert run_service.get_run(runs[ANALYST[0]], analyst).queued_by == ANALYST[0]


def test_analyst_cannot_see_download_or_delete_other_users_reports(other_users_work):
    from core.errors import NotFoundError, PermissionDenied
    from core.services import reports, users

    _, report_ids, _ = other_users_work
    analyst = users.get_user(ANALYST[0])
    assert {r.owner for r in reports.list_reports(analyst)} == {ANALYST[0]}
    assert {r.owner for r in reports.list_reports(analyst, {"owner": OTHER[0]})} == {ANALYST[0]}
    for who in (OTHER[0], ADMIN[0]):
        for action in (reports.get_report, reports.download, reports.delete):
            with pytest.raises((PermissionDenied, NotFoundError)):
                action(report_ids[who], analyst)
        assert reports.get_report(report_ids[who], None).owner == who  # not deleted


@pytest.mark.parametrize("path", ["pages/tasks.py", "pages/reports.py"])
def test_analyst_pages_show_no_trace_of_other_users_runs_or_reports(other_users_work, path):
    at = make_app(ANALYST[0], page=path)
    assert not at.exception, [e.value for e in at.exception]
    dump = page_dump(at)
    assert OTHER[0] not in dump  # ("admin" is a word of the page text, so the other owner checked is olga)
    assert OTHER[0] in page_dump(make_app(ADMIN[0], page=path))  # meaningful: the admin does see olga's


def test_lockout_service_level_counts_failures_and_expires(app_db):
    from core.errors import AuthenticationError
    from core.services import audit, users

    name, password = "lockme", "lockme password 2024"
    users.create_user(name, "Lock Me", password)
    t0 = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.timezone.utc)
    for i in range(4):
        with pytest.raises(AuthenticationError):
            users.authenticate(name, "wrong password!!", now=t0 + dt.timedelta(seconds=i))
    assert users.authenticate(name, password, now=t0 + dt.timedelta(seconds=5)).username == name  # resets count
    for i in range(5):
        with pytest.raises(AuthenticationError):
            users.authenticate(name, "wrong password!!", now=t0 + dt.timedelta(seconds=10 + i))
    with pytest.raises(AuthenticationError, match="locked"):  # the right password is refused while locked
        users.authenticate(name, password, now=t0 + dt.timedelta(minutes=14))
    assert users.authenticate(name, password, now=t0 + dt.timedelta(minutes=16)).username == name
    events = audit.list_events(actor=name)
    assert (events["action"] == "auth.lockout").sum() >= 1 or (
        audit.list_events(action="auth.lockout")["target"] == name
    ).any()


def test_locked_user_cannot_log_in_through_the_page_nor_keep_a_session(app_db):
    from core.services import users

    name, password = "lockpage", "lockpage password 2024"
    users.create_user(name, "Lock Page", password)
    at = make_app()
    for _ in range(5):
        at.text_input(key="login_username").input(name)
        at.text_input(key="login_password").input("not the password")
        at = at.button[0].click().run()
    at.text_input(key="login_username").input(name)
    at.text_input(key="login_password").input(password)
    at = at.button[0].click().run()
    assert any("locked" in e.value.lower() for e in at.error)
    assert [t.value for t in at.title] == ["AutoIndex"]
    # a session that already carries the username is dropped while the account is locked
    _assert_only_login(page_app("pages/dashboard.py", name))
    assert password not in page_dump(at)
