import re, time
from tests.e2e import test_app_flow as f
def test_dbg(server, page, e2e_data_dir):
    f.test_first_run_creates_the_admin(server, page, e2e_data_dir)
    page.context.clear_cookies()
    page.goto(server)
    time.sleep(4)
    page.screenshot(path="/tmp/dbg.png")
    print(page.context.cookies())
    f.login(page, server, f.ADMIN[0], f.ADMIN[2])
    page.get_by_role("heading", name=re.compile("Dashboard")).wait_for()
    page.locator("[data-testid='stSidebarNav']").get_by_text("Strategy").click()
    time.sleep(5)
    page.screenshot(path="/tmp/dbg2.png")
