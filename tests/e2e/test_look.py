"""How the Dashboard looks in real Chromium (issue 12, item 8): the browser's dark preference gives a dark page
with charts themed to match; at 390 px wide no control of the header row is clipped; Plotly's toolbar (modebar)
never covers a chart title. Screenshots are written to tests/e2e/artifacts/ (gitignored) for a person to look at.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import PROJECT_ROOT, start_server, stop_server
from tests.e2e.test_app_flow import login, wait_signed_in

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

ADMIN = ("admin", "Ada Admin", "correct horse battery staple")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
RANGES = ("1M", "3M", "6M", "YTD", "1Y", "3Y", "5Y", "Max")
SECTIONS = ("Performance", "Allocation", "Risk", "Scenarios", "Data freshness")


@pytest.fixture(scope="module")
def look_server(tmp_path_factory):  # type: ignore[no-untyped-def]
    """A server on its own database: demo data seeded and computed through the CLI, one administrator."""
    data_dir = tmp_path_factory.mktemp("look-data")
    env = {**os.environ, "DATA_DIR": str(data_dir), "PYTHONPATH": str(PROJECT_ROOT), "DEMO_ON_EMPTY": "false"}
    for key in ("DATABASE_URL", "REDIS_URL"):
        env.pop(key, None)
    for command in (["migrate"], ["seed-demo"], ["compute"]):
        done = subprocess.run(
            [sys.executable, "-m", "core", *command],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    create = subprocess.run(
        [
            sys.executable,
            "-m",
            "core",
            "create-user",
            ADMIN[0],
            "--name",
            ADMIN[1],
            "--role",
            "admin",
            "--password-stdin",
        ],
        cwd=PROJECT_ROOT,
        env=env,
        input=ADMIN[2] + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert create.returncode == 0, create.stdout + create.stderr
    process, base_url = start_server(data_dir, {"DEMO_ON_EMPTY": "false"})
    yield base_url
    stop_server(process)


def _open_dashboard(browser, base_url: str, **context_args):  # type: ignore[no-untyped-def]
    context = browser.new_context(**context_args)
    page = context.new_page()
    page.set_default_timeout(60_000)
    login(page, base_url, ADMIN[0], ADMIN[2])
    wait_signed_in(page)
    _charts_drawn(page)
    return context, page


def _charts_drawn(page, count: int = 1) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {count}")
    page.wait_for_timeout(800)  # let the responsive layout settle


_SCROLL_VERTICALLY = """e => {
  let p = e.parentElement;
  while (p && !(/(auto|scroll)/.test(getComputedStyle(p).overflowY) && p.scrollHeight > p.clientHeight)) p = p.parentElement;
  const r = e.getBoundingClientRect();
  if (p) p.scrollTop += r.top - window.innerHeight / 2; else window.scrollBy(0, r.top - window.innerHeight / 2);
}"""
_DRAWN_AT_CENTRE = """e => { const r = e.getBoundingClientRect();
  const h = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
  return !!h && (e.contains(h) || h.contains(e)); }"""
_NO_SIDEWAYS_SCROLL = """e => { for (let p = e.parentElement; p && p !== document.body; p = p.parentElement) {
    if (p.scrollWidth > p.clientWidth + 1 && /(auto|scroll|hidden)/.test(getComputedStyle(p).overflowX)) return false; }
  return true; }"""


def _segment(page, name: str):  # type: ignore[no-untyped-def]
    """A button of a segmented control (Streamlit gives them the radio role)."""
    return page.get_by_role("radio", name=name, exact=True)


def _screenshot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    """The whole page: the app scrolls inside its own container, so the viewport is made as tall as the page
    for the picture, then put back."""
    size = page.viewport_size
    height = page.evaluate(
        "Math.max(...Array.from(document.querySelectorAll('[data-testid=stMain], "
        "[data-testid=stMainBlockContainer]')).map(e => e.scrollHeight), 0)"
    )
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], min(int(height) + 80, 8000))})
    page.wait_for_timeout(1200)
    page.screenshot(path=str(ARTIFACTS / name))
    page.set_viewport_size(size)
    page.wait_for_timeout(800)


def _luminance(css_color: str) -> float:
    r, g, b = (int(v) for v in re.findall(r"\d+", css_color)[:3])
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255


def _boxes_intersect(a: dict, b: dict) -> bool:
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


def _modebar_clear_of_titles(page) -> int:  # type: ignore[no-untyped-def]
    """Hover each chart (the modebar shows on hover) and check its modebar box misses its title box."""
    plots = page.locator(".js-plotly-plot")
    checked = 0
    for i in range(plots.count()):
        plot = plots.nth(i)
        plot.scroll_into_view_if_needed()
        plot.hover()
        title = plot.locator(".gtitle")
        modebar = plot.locator(".modebar")
        if title.count() == 0 or modebar.count() == 0:
            continue
        t, m = title.first.bounding_box(), modebar.first.bounding_box()
        if not t or not m or m["width"] == 0:
            continue
        assert not _boxes_intersect(t, m), (title.first.text_content(), t, m)
        checked += 1
    return checked


def _every_section(page, action) -> int:  # type: ignore[no-untyped-def]
    total = 0
    for section in SECTIONS:
        _segment(page, section).click()
        page.wait_for_timeout(1500)
        if section != "Data freshness":
            _charts_drawn(page, 2)
        total += action(page, section)
    return total


def test_dark_preference_gives_a_dark_dashboard_and_charts(look_server, browser) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    context, page = _open_dashboard(browser, look_server, color_scheme="dark", viewport={"width": 1280, "height": 900})
    try:
        background = page.evaluate("getComputedStyle(document.querySelector('[data-testid=stApp]')).backgroundColor")
        assert _luminance(background) < 0.2, background
        text = page.evaluate("getComputedStyle(document.querySelector('h1')).color")
        assert _luminance(text) > 0.6, text
        # The charts follow: titles drawn in a light colour, no white paper behind them.
        title_fill = page.locator(".js-plotly-plot .gtitle").first.evaluate("e => getComputedStyle(e).fill")
        assert _luminance(title_fill) > 0.6, title_fill
        paper = page.locator(".js-plotly-plot .main-svg .bg").first
        if paper.count():
            fill = paper.evaluate("e => getComputedStyle(e).fill")
            assert "255, 255, 255" not in fill, fill
        _screenshot(page, "dashboard-dark.png")

        def shot(p, section: str) -> int:  # type: ignore[no-untyped-def]
            _screenshot(p, f"dashboard-dark-{section.lower().replace(' ', '-')}.png")
            return _modebar_clear_of_titles(p)

        assert _every_section(page, shot) >= 8
    finally:
        context.close()


def test_at_390_px_nothing_is_clipped_and_the_toolbar_leaves_titles_alone(look_server, browser) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    width = 390
    context, page = _open_dashboard(
        browser,
        look_server,
        viewport={"width": width, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    try:
        assert page.evaluate("document.documentElement.scrollWidth") <= width  # no sideways scrolling
        controls = [_segment(page, name) for name in RANGES + SECTIONS]
        controls.append(page.get_by_text("Log scale", exact=True))
        for control in controls:
            # Scrolled into view vertically only (scrollIntoView would also scroll a row that overflows sideways,
            # hiding the very clipping this test looks for).
            control.evaluate(_SCROLL_VERTICALLY)
            page.wait_for_timeout(100)
            box = control.bounding_box()
            assert box is not None
            assert box["x"] >= 0 and box["x"] + box["width"] <= width, (control, box)
            # Not cut off by a parent: the element drawn at its centre is the control itself, and no ancestor
            # scrolls sideways.
            assert control.evaluate(_DRAWN_AT_CENTRE), control
            assert control.evaluate(_NO_SIDEWAYS_SCROLL), control
        _screenshot(page, "dashboard-390px.png")
        _segment(page, "1Y").click()
        page.wait_for_timeout(1500)
        page.get_by_text(re.compile(r"1Y: both rebased to 100")).wait_for()

        def check(p, section: str) -> int:  # type: ignore[no-untyped-def]
            _screenshot(p, f"dashboard-390px-{section.lower().replace(' ', '-')}.png")
            return _modebar_clear_of_titles(p)

        assert _every_section(page, check) >= 8
    finally:
        context.close()
