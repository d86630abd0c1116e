"""Several actors at once, in headless Chromium against a real server (issue 11, cases 1, 2 and 4).

Each test drives two browser contexts (two people, or one person's old cookie) while the test process changes
the same accounts through the services, as another admin would.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.e2e.test_app_flow import ADMIN, _wait_app, login, wait_signed_in

pytestmark = pytest.mark.e2e

PASSWORD = "a perfectly long password 1"


def _user(username: str, role: str) -> None:
    from core.errors import NotFoundError
    from core.services import users

    try:
        users.get_user(username)
    except NotFoundError:
        users.create_user(username, username.title(), PASSWORD, role=role)


def _new_page(browser, cookies=None):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    if cookies:
        context.add_cookies(cookies)
    page = context.new_page()
    page.set_default_timeout(20_000)
    return page


def _go(page, title: str) -> None:  # type: ignore[no-untyped-def]
    page.locator("[data-testid='stSidebarNav']").get_by_text(title, exact=True).click()
    page.get_by_role("heading", name=re.compile(title)).first.wait_for()


def _choose(page, label: str, option: str) -> None:  # type: ignore[no-untyped-def]
    page.get_by_label(label, exact=True).click()
    page.get_by_role("option", name=option, exact=True).click()


def _login_form_with(page, message: str) -> None:  # type: ignore[no-untyped-def]
    page.get_by_role("button", name="Log in").wait_for()
    page.get_by_text(re.compile(message)).first.wait_for()
    assert page.get_by_role("heading", name=re.compile("Dashboard|Admin")).count() == 0


def test_a_demoted_admin_cannot_restore_itself_from_an_open_admin_page(server, browser, service_env, admin_account):
    """Case 1: boss2 has Admin -> edit boss2 open; another admin demotes and deactivates boss2; boss2 clicks
    "Save role and status" (its widgets still say admin, active). Nothing changes and boss2's session ends."""
    from core.services import users

    _user("boss2", "admin")
    page = _new_page(browser)
    try:
        login(page, server, "boss2", PASSWORD)
        wait_signed_in(page)
        _go(page, "Admin")
        _choose(page, "User", "boss2")
        page.get_by_role("button", name="Save role and status").wait_for()
        users.update_user("boss2", actor=ADMIN[0], role="analyst", is_active=False)  # the other admin
        page.get_by_role("button", name="Save role and status").click()
        _login_form_with(page, "Your account is not active|Your session ended")
        after = users.get_user("boss2")
        assert (after.role, after.is_active) == ("analyst", False)
    finally:
        page.context.close()


def _report_runs(report_id: int) -> int:
    from sqlalchemy import select

    from core.db import unit_of_work
    from core.models import TaskRun

    with unit_of_work() as session:
        runs = session.scalars(select(TaskRun).where(TaskRun.kind == "report")).all()
        return sum(1 for r in runs if (r.args or {}).get("report_id") == report_id)


def test_an_analyst_cannot_regenerate_another_users_report_and_a_double_click_queues_once(
    server, browser, service_env, admin_account
):
    """Case 2: Tasks -> Generate report offers only the analyst's own reports (the service refuses another
    user's id: tests/concurrency/test_accounts.py); clicking "Queue report" twice queues one job."""
    from core.services import reports

    _user("rita", "analyst")
    page = _new_page(browser)
    try:
        login(page, server, "rita", PASSWORD)
        wait_signed_in(page)  # the server has started up (demo data computed) by now
        theirs = reports.request_report("performance", "MTD", "csv", owner=ADMIN[0], inline=True)
        mine = reports.request_report("performance", "MTD", "csv", owner="rita", inline=True)
        _go(page, "Tasks")
        page.get_by_role("tab", name="Generate report").click()
        page.get_by_label("Report", exact=True).click()
        options = page.get_by_role("option").all_inner_texts()
        assert any(o.startswith(f"#{mine} ") for o in options), options
        assert not any(o.startswith(f"#{theirs} ") for o in options), options
        page.get_by_role("option").filter(has_text=re.compile(rf"^#{mine} ")).click()
        page.get_by_role("button", name="Queue report").dblclick()
        page.get_by_text(re.compile(r"Queued generate report as run \d+|already queued")).first.wait_for()
        page.wait_for_timeout(2000)  # let a second submission land, if there were one
        assert _report_runs(mine) == 1 and _report_runs(theirs) == 0
    finally:
        page.context.close()


def test_a_password_reset_ends_the_open_session_and_refuses_the_old_cookie(server, browser, service_env, admin_account):
    """Case 4: after an admin resets the password, the user's open tab is logged out on its next click and a
    copy of the old re-authentication cookie opens nothing."""
    from core.services import users

    _user("olaf", "analyst")
    page = _new_page(browser)
    replay = None
    try:
        login(page, server, "olaf", PASSWORD)
        wait_signed_in(page)
        cookies = [c for c in page.context.cookies() if c["name"] == "autoindex_auth"]
        assert cookies
        users.set_password("olaf", "reset by the admin 2026", actor=ADMIN[0])
        replay = _new_page(browser, cookies)
        replay.goto(server)
        _wait_app(replay)
        replay.get_by_role("button", name="Log in").wait_for()
        assert replay.get_by_role("heading", name=re.compile("Dashboard")).count() == 0
        # the open tab: its next run (a click, or the cookie component's own rerun) ends the session
        link = page.locator("[data-testid='stSidebarNav']").get_by_text("Reports", exact=True)
        if page.get_by_role("button", name="Log in").count() == 0 and link.count():
            try:
                link.click(timeout=5_000)
            except PlaywrightTimeout:  # the session ended on its own rerun meanwhile: the form is there
                pass
        _login_form_with(page, "Your session ended")
    finally:
        page.context.close()
        if replay is not None:
            replay.context.close()


def test_an_analyst_compares_a_saved_version_without_activating_it(server, browser, service_env, admin_account):
    """Issue 12: compare without activating — a version saved by someone else and never computed appears in the
    comparison chart and table, computed on the fly; the house index stays as it was."""
    from core.services import strategies

    _user("cara", "analyst")
    page = _new_page(browser)
    try:
        login(page, server, "cara", PASSWORD)
        wait_signed_in(page)
        active_before = strategies.active_version().id
        version = strategies.save_version(
            "E2E compare", {"equal": 1.0, "rebalance": "quarterly"}, note="e2e", actor=ADMIN[0]
        )
        _go(page, "Strategy")
        for attempt in range(3):  # a rerun of the page (the cookie component's) may close the open list
            page.get_by_role("combobox", name="Compare with saved versions").click()
            try:
                page.get_by_role("option", name=version.label, exact=True).click(timeout=5_000)
                break
            except PlaywrightTimeout:
                if attempt == 2:
                    raise
                page.keyboard.press("Escape")
        page.keyboard.press("Escape")
        chart = page.locator("[data-testid='stPlotlyChart']").first
        chart.locator("g.trace").nth(2).wait_for()  # preview, the active version, the new one
        chart.get_by_text(version.label).first.wait_for()  # its legend entry
        page.get_by_text("Preview − ").first.wait_for(state="attached")  # the table's difference column (canvas grid)
        assert strategies.active_version().id == active_before
    finally:
        page.context.close()
