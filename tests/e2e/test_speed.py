"""What a person's clicks cost the server, counted on the Streamlit websocket (issue 17; bench/wire.py decodes each
message): a login is one whole-app run (the re-authentication cookie's report reruns only its fragment), and a
range, log-scale or section change on the Dashboard reruns only the charts fragment, never the page. No timings are
asserted (the machine is shared); the counts cannot pass by luck.
"""

from __future__ import annotations

import pytest

from bench.wire import Wire

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def _segment(page, name: str):  # type: ignore[no-untyped-def]
    return page.get_by_role("radio", name=name, exact=True)


def test_login_is_one_page_run_and_dashboard_toggles_rerun_only_their_fragment(server, admin_account, browser) -> None:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    wire = Wire().attach(page)
    try:
        page.goto(server)
        page.get_by_label("Username").fill(admin_account[0])
        page.get_by_label("Password", exact=True).fill(admin_account[2])
        wire.mark()
        page.get_by_role("button", name="Log in").click()
        for _ in range(600):  # until the browser holds the re-authentication cookie
            if any(c["name"] == "autoindex_auth" for c in context.cookies()):
                break
            page.wait_for_timeout(100)
        step = wire.settle(page, "login", min_charts=1, timeout_s=120)
        assert not step.timed_out
        assert any(c["name"] == "autoindex_auth" for c in context.cookies())
        # One run draws the Dashboard; writing the cookie reruns only its fragment, never the page again.
        assert step.app_runs == 1 and step.cut_runs == 0, step

        for name, control in (
            ("section", _segment(page, "Risk")),
            ("section", _segment(page, "Performance")),
            ("range", _segment(page, "1Y")),
            ("range", _segment(page, "Max")),
            ("log scale", page.get_by_text("Log scale", exact=True)),
        ):
            wire.mark()
            control.click()
            step = wire.settle(page, name, min_charts=2)
            assert not step.timed_out, step
            assert step.app_runs == 0 and step.fragment_runs == 1, step
        assert page.locator("[data-testid='stException']").count() == 0
    finally:
        context.close()
