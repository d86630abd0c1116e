"""Views stay true without a reload (issue 12): when a job ends, the Reports history shows the finished report
with its download button, and the Tasks run detail shows the final state, with no reload of the page."""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import start_server, stop_server
from tests.e2e.test_app_flow import login, wait_signed_in
from tests.e2e.test_deep_links import ADMIN, own_data_dir  # noqa: F401  (fixture)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def test_history_and_run_detail_update_when_the_job_ends(own_data_dir, browser):  # noqa: F811
    process, base_url = start_server(own_data_dir, {"EMBEDDED_WORKER": "true"})
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    try:
        page = context.new_page()
        page.set_default_timeout(60_000)
        login(page, base_url, ADMIN[0], ADMIN[2])
        wait_signed_in(page)
        page.locator("[data-testid='stSidebarNav']").get_by_text("Reports", exact=True).click()
        page.get_by_role("heading", name="Reports").first.wait_for()
        page.get_by_role("button", name="Generate report").click()
        page.get_by_text(re.compile(r"Report \d+ queued")).first.wait_for()
        # no reload from here on: the live panel notices the end of the job and redraws the history
        page.get_by_role("button", name=re.compile(r"^Download autoindex-")).wait_for(timeout=90_000)
        assert page.get_by_text("No report is being generated.").count() == 1

        page.locator("[data-testid='stSidebarNav']").get_by_text("Tasks", exact=True).click()
        page.get_by_role("heading", name="Tasks").first.wait_for()
        page.get_by_role("tab", name="Recompute index").click()
        page.get_by_role("button", name="Queue recompute").click()
        run = re.search(
            r"run (\d+)", page.get_by_text(re.compile(r"Queued recompute index as run \d+")).first.inner_text()
        ).group(1)
        page.get_by_role("heading", name=re.compile(rf"Run {run}:")).wait_for()
        detail_state = page.locator("[data-testid='stMetric']").filter(has_text="State")
        detail_state.filter(has_text="succeeded").wait_for(timeout=90_000)
    finally:
        context.close()
        stop_server(process)
