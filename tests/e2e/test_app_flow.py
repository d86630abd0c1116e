"""End-to-end in headless Chromium: first-run admin, login, dashboard chart, strategy preview and save, logout,
a wrong password and a locked account. The first-run test has a server of its own; the others share one whose
administrator the ``admin_account`` fixture creates, so any test runs alone or in any order."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.e2e

ADMIN = ("admin", "Ada Admin", "correct horse battery staple")


def _wait_app(page) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_selector("[data-testid='stApp']")


def login(page, base_url: str, username: str, password: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(base_url)
    _wait_app(page)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()


def wait_signed_in(page, timeout_s: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    """The dashboard is drawn and the cookie component has settled (it reruns the script once when it mounts)."""
    import time

    page.get_by_role("heading", name=re.compile("Dashboard")).wait_for(timeout=60_000)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if any(c["name"] == "autoindex_auth" for c in page.context.cookies()):
            page.wait_for_timeout(500)
            return
        page.wait_for_timeout(100)
    raise AssertionError("the re-authentication cookie was not written")


def test_first_run_creates_the_admin(fresh_server, page) -> None:
    server, e2e_data_dir = fresh_server
    page.goto(server)
    page.get_by_text("Welcome to AutoIndex").wait_for()
    token = (e2e_data_dir / "setup_token.txt").read_text().strip()
    page.get_by_label("Setup token").fill(token)
    page.get_by_label("Administrator username").fill(ADMIN[0])
    page.get_by_label("Full name").fill(ADMIN[1])
    page.get_by_label("Password", exact=True).fill(ADMIN[2])
    page.get_by_label("Repeat password").fill(ADMIN[2])
    page.get_by_role("button", name="Create administrator").click()
    wait_signed_in(page)
    assert not (e2e_data_dir / "setup_token.txt").exists()


def test_login_and_dashboard_chart_is_drawn(server, page, admin_account) -> None:
    login(page, server, ADMIN[0], ADMIN[2])
    wait_signed_in(page)
    chart = page.locator("[data-testid='stPlotlyChart']").first
    chart.locator(".main-svg").first.wait_for()
    assert chart.locator("g.trace").count() >= 2  # index and benchmark lines
    page.get_by_text("Synthetic demo data").first.wait_for()


def test_strategy_preview_and_save(server, page, admin_account) -> None:
    login(page, server, ADMIN[0], ADMIN[2])
    wait_signed_in(page)
    page.locator("[data-testid='stSidebarNav']").get_by_text("Strategy").click()
    page.get_by_role("heading", name=re.compile("Strategy lab")).wait_for()
    cost = page.get_by_role("spinbutton", name="Trading cost (bps of turnover)")
    cost.fill("15.0")
    cost.press("Enter")
    preview = page.locator("[data-testid='stPlotlyChart']").first
    preview.locator(".main-svg").first.wait_for()
    page.get_by_text("Preview (unsaved)").first.wait_for()
    page.get_by_role("tab", name="Save").click()
    page.get_by_label("Note (why this version)").fill("e2e: 15 bps costs")
    page.get_by_role("button", name="Save as new version").click()
    page.wait_for_timeout(1500)
    page.get_by_role("tab", name="Save").click()  # the rerun may show the first tab again
    page.get_by_text(re.compile(r"Saved AutoIndex Core v\d")).wait_for()


def test_logout_shows_the_login_form(server, page, admin_account) -> None:
    login(page, server, ADMIN[0], ADMIN[2])
    wait_signed_in(page)
    page.get_by_role("button", name="Log out").click()
    page.get_by_role("button", name="Log in").wait_for()
    page.reload()
    _wait_app(page)
    page.get_by_role("button", name="Log in").wait_for()  # the cookie was deleted: no silent re-login


def test_wrong_password_is_refused(server, page, admin_account) -> None:
    login(page, server, ADMIN[0], "definitely not it")
    page.get_by_text("Wrong username or password").wait_for()
    assert page.get_by_role("heading", name=re.compile("Dashboard")).count() == 0


def test_locked_account(server, page, service_env, admin_account) -> None:
    from core.services import users

    users.create_user("locky", "Lock Y", "locky password 2024")
    for _ in range(5):
        login(page, server, "locky", "wrong password 12345")
        page.locator("[data-testid='stAlert']").first.wait_for()
    page.get_by_text(re.compile("locked", re.I)).first.wait_for()
    login(page, server, "locky", "locky password 2024")
    page.get_by_text(re.compile("account locked", re.I)).first.wait_for()
    assert page.get_by_role("heading", name=re.compile("Dashboard")).count() == 0


def test_the_strategy_labs_more_fields_are_drawn_when_opened_and_keep_their_values(server, page, admin_account) -> None:
    """Issue 17: "Benchmark, basis, caps and exclusions" draws its fields only while it is open (a lighter page
    switch). What was typed there holds while it is closed, through an edit of another field and a visit to
    another page; a value refused there is named while it is closed."""
    act = _signed_in_actions(page, server)

    act(lambda: page.locator("[data-testid='stSidebarNav']").get_by_text("Strategy").click())
    page.get_by_role("heading", name=re.compile("Strategy lab")).wait_for()
    header = page.get_by_text("Benchmark, basis, caps and exclusions", exact=True)
    exclusions = page.get_by_role("textbox", name="Exclusions (symbols)", exact=True)
    assert exclusions.count() == 0  # closed: not drawn
    act(header.click)
    act(lambda: (exclusions.fill("TSLA"), exclusions.press("Enter")))
    act(header.click)  # closed again
    assert exclusions.count() == 0
    cost = page.get_by_role("spinbutton", name="Trading cost (bps of turnover)")
    act(lambda: (cost.fill("12.0"), cost.press("Enter")))
    act(lambda: page.locator("[data-testid='stSidebarNav']").get_by_text("Data", exact=True).click())
    act(lambda: page.locator("[data-testid='stSidebarNav']").get_by_text("Strategy").click())
    assert exclusions.count() == 0
    act(header.click)
    assert exclusions.input_value() == "TSLA"
    assert cost.input_value() == "12.0"

    blend = page.get_by_role("textbox", name="Or a blend (SYMBOL=% , ...)", exact=True)
    act(lambda: (blend.fill("SPY=60, IEF=50"), blend.press("Enter")))
    page.get_by_text(re.compile("blend weights must sum to 1")).first.wait_for()
    act(header.click)  # closed while a field there is refused: the message names the field
    assert blend.count() == 0
    page.get_by_text(
        re.compile(r"^Or a blend .*\(under Benchmark, basis, caps and exclusions\): .*blend weights must sum to 1")
    ).wait_for()
    act(header.click)
    assert blend.input_value() == "SPY=60, IEF=50"
    assert page.locator("[data-testid='stException']").count() == 0


def test_hypothetical_shocks_edited_in_the_browser_apply_after_the_editor_is_closed(
    server, page, admin_account
) -> None:
    """Issue 17: the shock editor is drawn only while its expander is open. A shock typed into it in Chromium moves
    the stress view's hypothetical return, and still applies once the expander is closed and after a visit to
    another section; opened again, the editor shows the edited rows."""
    page.set_viewport_size({"width": 1280, "height": 900})
    act = _signed_in_actions(page, server)

    def segment(name: str):  # type: ignore[no-untyped-def]
        return page.get_by_role("radio", name=name, exact=True)

    def hypothetical() -> str:
        metric = page.locator("[data-testid='stMetric']", has_text="Index return under the hypothetical shocks")
        return metric.locator("[data-testid='stMetricValue']").inner_text()

    act(segment("Scenarios").click)
    act(segment("Stress scenarios").click)
    before = hypothetical()
    header = page.get_by_text("Hypothetical shocks (applied in the stress scenarios)", exact=True)
    expander = page.locator("[data-testid='stExpander']", has_text="Hypothetical shocks")
    grid = expander.locator("[data-testid='stDataFrame']")
    assert grid.count() == 0  # closed: not drawn
    act(header.click)
    grid.first.wait_for()
    box = grid.first.bounding_box()
    assert box is not None
    # the first row's "Shock %" cell: the grid's last column, one row below the header
    # the first row's "Shock %" cell (the grid's last column, one row below the header): a double click opens its
    # editor on the value, which is replaced
    page.mouse.dblclick(box["x"] + box["width"] - 40, box["y"] + 35 + 17)
    cell = page.locator("[data-testid='stDataFrameResizable'] input, .gdg-growing-entry textarea, #portal input")
    cell.first.wait_for()
    cell.first.fill("-60")
    act(lambda: page.keyboard.press("Enter"))
    after = hypothetical()
    assert after != before, (before, after)
    act(header.click)  # closed (the editor is drawn once more, hidden, in the run the click makes)
    grid.first.wait_for(state="hidden", timeout=10_000)  # the expander's closing animation may still run
    assert hypothetical() == after
    act(segment("Performance").click)
    act(segment("Scenarios").click)
    assert grid.count() == 0 and hypothetical() == after  # the edited rows still apply
    act(header.click)
    grid.first.wait_for()
    assert page.locator("[data-testid='stException']").count() == 0


def _signed_in_actions(page, server: str):  # type: ignore[no-untyped-def]
    """Log the administrator in; a function that does one action and waits until the run it caused has settled
    (``bench.wire``: the websocket quiet, every chart drawn)."""
    from bench.wire import Wire

    wire = Wire().attach(page)
    login(page, server, ADMIN[0], ADMIN[2])
    wait_signed_in(page)

    def act(do) -> None:  # type: ignore[no-untyped-def]
        wire.mark()
        do()
        assert not wire.settle(page, "step", timeout_s=60).timed_out

    return act
