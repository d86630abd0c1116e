"""Page speed benchmarks (targets from issue 4), printed as one line each.

    python bench/pages.py [--assets 500] [--years 10] [--skip-browser]

* Dashboard first render (cold caches) with 500 assets x 10 years in the database: target < 1.5 s (AppTest)
* Dashboard warm rerun: target < 0.3 s (AppTest)
* Strategy preview (engine + risk metrics) for 50 assets x 10 years: target < 0.5 s
* Headless Chromium: navigation to the drawn main dashboard chart: target < 3 s

Each figure runs in its own temporary DATA_DIR seeded with ``python -m core seed-demo``.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

ADMIN = ("bench", "Bench Admin", "bench password 2024")
TARGETS = {"dashboard_first": 1.5, "dashboard_warm": 0.3, "strategy_preview": 0.5, "browser_chart": 3.0}


def _use_data_dir(path: Path) -> None:
    from core.config import reset_settings_cache
    from core.db import reset_engine_cache

    os.environ["DATA_DIR"] = str(path)
    os.environ["DEMO_ON_EMPTY"] = "false"
    os.environ["EMBEDDED_WORKER"] = "false"
    os.environ.pop("DATABASE_URL", None)
    reset_engine_cache()
    reset_settings_cache()


def seed(path: Path, assets: int, years: float) -> None:
    env = {**os.environ, "DATA_DIR": str(path), "LOG_LEVEL": "WARNING"}
    env.pop("DATABASE_URL", None)
    subprocess.run([sys.executable, "-m", "core", "seed-demo", "--assets", str(assets), "--years", str(years)],
                   cwd=PROJECT_ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    _use_data_dir(path)
    from core.services import bootstrap, users

    bootstrap.start_up(seed_if_empty=False)  # default config + its compute
    if users.count_users() == 0:
        users.create_user(*ADMIN, role="admin")


def _report(name: str, seconds: float, detail: str = "") -> None:
    target = TARGETS[name]
    verdict = "OK" if seconds < target else "SLOW"
    print(f"{name:<18} {seconds:7.3f} s  (target < {target} s) {verdict} {detail}".rstrip(), flush=True)


def bench_dashboard(path: Path) -> None:
    import streamlit as st
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.testing.v1 import AppTest

    original = PagesManager.__init__

    def init(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False  # what Home.py's st.navigation does in a real server

    PagesManager.__init__ = init  # type: ignore[method-assign]
    at = AppTest.from_file(str(PROJECT_ROOT / "Home.py"), default_timeout=120)
    from core.services import users

    at.session_state["auth_username"] = ADMIN[0]  # a logged-in session: the name and its credential version
    at.session_state["auth_credential_version"] = users.get_user(ADMIN[0]).credential_version
    at.run()  # process start-up (cache_resource) is not part of a page render
    firsts, warms = [], []
    for _ in range(3):
        st.cache_data.clear()
        start = time.perf_counter()
        at.run()
        firsts.append(time.perf_counter() - start)
        assert not at.exception, at.exception
        assert at.get("plotly_chart"), "dashboard drew no chart"
        for _ in range(3):
            start = time.perf_counter()
            at.run()
            warms.append(time.perf_counter() - start)
    _report("dashboard_first", statistics.median(firsts), f"median of {len(firsts)}")
    _report("dashboard_warm", statistics.median(warms), f"median of {len(warms)}")


def bench_preview(path: Path) -> None:
    from core.schemas.strategy import DEFAULT_CONFIG
    from ui import cache
    from ui.strategy_view import _backtest

    token = cache.token()
    cache.market_inputs(token)  # loaded once per data version; every edit reuses it
    inputs = cache.market_inputs(token)
    times = []
    for cost in range(5):
        params = DEFAULT_CONFIG.model_copy(update={"cost_bps": float(cost + 1)}).model_dump_json()
        start = time.perf_counter()
        _backtest(token, params)
        times.append(time.perf_counter() - start)
    _report("strategy_preview", statistics.median(times),
            f"{inputs.prices.shape[1]} assets x {inputs.prices.shape[0]} days, median of {len(times)}")


def bench_browser(path: Path) -> None:
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(PROJECT_ROOT))
    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, start_server, stop_server

    process, base_url = start_server(path, {"DEMO_ON_EMPTY": "false"})
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.set_default_timeout(60_000)
            page.goto(base_url)
            page.get_by_label("Username").fill(ADMIN[0])
            page.get_by_label("Password", exact=True).fill(ADMIN[2])
            page.get_by_role("button", name="Log in").click()
            page.locator("[data-testid='stPlotlyChart'] .main-svg").first.wait_for()
            for _ in range(50):  # the re-authentication cookie lets a fresh navigation skip the login form
                if any(c["name"] == "autoindex_auth" for c in page.context.cookies()):
                    break
                page.wait_for_timeout(100)
            times = []
            for _ in range(3):
                start = time.perf_counter()
                page.goto(base_url)
                page.locator("[data-testid='stPlotlyChart'] .main-svg").first.wait_for()
                times.append(time.perf_counter() - start)
            browser.close()
        _report("browser_chart", statistics.median(times), f"median of {len(times)} navigations")
    finally:
        stop_server(process)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assets", type=int, default=500)
    parser.add_argument("--years", type=float, default=10)
    parser.add_argument("--preview-assets", type=int, default=50)
    parser.add_argument("--skip-browser", action="store_true")
    args = parser.parse_args()
    import logging

    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="autoindex-bench-") as tmp:
        big, small = Path(tmp) / "big", Path(tmp) / "small"
        big.mkdir()
        small.mkdir()
        started = time.perf_counter()
        seed(small, args.preview_assets, args.years)
        bench_preview(small)
        seed(big, args.assets, args.years)
        print(f"(seeded {args.assets} assets x {args.years:g} years in {time.perf_counter() - started:.0f} s)")
        bench_dashboard(big)
        if not args.skip_browser:
            bench_browser(big)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
