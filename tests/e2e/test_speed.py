"""What a person's clicks cost the server, counted on the Streamlit websocket (issue 17; bench/wire.py decodes each
message): a login is one whole-app run (the re-authentication cookie's report reruns only its fragment), and a
range, log-scale or section change on the Dashboard reruns only the charts fragment, never the page. No timings are
asserted (the machine is shared); the counts cannot pass by luck.
"""

from __future__ import annotations

import pytest

from bench.wire import Wire

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


#: Per chart drawn: the left / bottom margins its figure asked for and those Plotly drew it with.
MARGINS = """() => Array.from(document.querySelectorAll('.js-plotly-plot'))
  .filter(e => e._fullLayout && !e.closest('.st-key-chart_preload'))
  .map(e => ({title: (e.layout.title || {}).text || '', asked_l: (e.layout.margin || {}).l || 0,
              asked_b: (e.layout.margin || {}).b || 0, asked_r: (e.layout.margin || {}).r || 0,
              l: Math.round(e._fullLayout._size.l), b: Math.round(e._fullLayout._size.b),
              r: Math.round(e._fullLayout._size.r)}))"""


def _segment(page, name: str):  # type: ignore[no-untyped-def]
    return page.get_by_role("radio", name=name, exact=True)


def test_login_is_one_page_run_and_dashboard_toggles_rerun_only_their_fragment(server, admin_account, browser) -> None:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    wire = Wire().attach(page)
    try:
        page.goto(server)
        page.get_by_label("Username").wait_for()
        # The form is drawn before the login page's run has finished (it goes on to the registration notice and the
        # chart preload); a click before that finishes cuts that run short, as it would for a person that fast (CI,
        # 2026-11-29: the loaded machine paused over 0.4 s inside the run and the login step counted the cut run).
        # So wait for the page's first run to finish, then for quiet.
        wire.settle(page, "open login form", expect_run=True)
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
        # One run draws the Dashboard; writing the cookie reruns only its fragment, never the page again (cut_runs
        # counts page runs cut short; the cookie component reporting twice at once cuts its own fragment run, which
        # is cut_fragment_runs: CI, 2026-11-29).
        assert step.app_runs == 1 and step.cut_runs == 0, step
        # The cookie component reports the written cookie in the next second or so: only its fragment reruns (CI,
        # 2026-11-29: those runs fell into the first toggle below when it was clicked at once).
        wire.mark()
        page.wait_for_timeout(1500)
        after = wire.settle(page, "cookie written", expect_run=False)
        assert after.app_runs == 0, after

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
        # Each chart whose margins were preset for its labels and legend (ui.charts.preset_margins) was drawn with
        # them as they are: Plotly's automargin found nothing to grow, so it did not draw the chart a second time.
        drawn = page.evaluate(MARGINS)
        preset = [c for c in drawn if c["asked_l"] > 10]
        assert len(preset) >= 3, drawn  # the main chart, growth, underwater, monthly
        assert all(c["l"] == c["asked_l"] and c["b"] == c["asked_b"] for c in preset), preset
        # the correlation heatmap (labels turned, colour bar) and the Monte Carlo fan and drawdown histogram too
        for section, titles in (("Risk", ("Correlation",)), ("Scenarios", ("Monte Carlo", "Distribution"))):
            wire.mark()
            _segment(page, section).click()
            assert not wire.settle(page, section, min_charts=2).timed_out
            drawn = [c for c in page.evaluate(MARGINS) if c["title"].replace("<b>", "").startswith(titles)]
            assert len(drawn) == len(titles), drawn
            assert all((c["l"], c["b"], c["r"]) == (c["asked_l"], c["asked_b"], c["asked_r"]) for c in drawn), drawn
    finally:
        context.close()


# ----------------------------------------------------------------- the Strategy lab's shared inputs (no browser)
@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):  # type: ignore[no-untyped-def]
    """The demo universe computed in a database of its own (DATA_DIR restored afterwards)."""
    import os

    from core.config import reset_settings_cache
    from core.db import reset_engine_cache

    keys = ("DATA_DIR", "DATABASE_URL", "DEMO_ON_EMPTY", "EMBEDDED_WORKER")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update(
        {"DATA_DIR": str(tmp_path_factory.mktemp("speed-db")), "DEMO_ON_EMPTY": "true", "EMBEDDED_WORKER": "false"}
    )
    os.environ.pop("DATABASE_URL", None)
    reset_engine_cache()
    reset_settings_cache()
    from core.services import bootstrap

    bootstrap.start_up()
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    reset_engine_cache()
    reset_settings_cache()


def test_market_inputs_are_loaded_once_per_data_version_and_shared(demo_db, monkeypatch) -> None:
    import threading

    from core.services import market
    from ui import cache

    cache.clear()
    loads: list[int] = []
    real = market.load_market_inputs

    def counted(session, *args, **kwargs):  # type: ignore[no-untyped-def]
        loads.append(1)
        return real(session, *args, **kwargs)

    monkeypatch.setattr(market, "load_market_inputs", counted)
    token = cache.token()
    got: list[object] = []
    threads = [threading.Thread(target=lambda: got.append(cache.market_data(token))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loads) == 1 and len({id(g) for g in got}) == 1  # four sessions at once: one load, one object
    assert cache.market_inputs(token) is got[0].inputs  # type: ignore[attr-defined]
    cache.market_data(token + "|next version")
    assert len(loads) == 2  # another data version is another load
    cache.clear()


def test_a_failed_load_is_not_kept(demo_db, monkeypatch) -> None:
    from core.services import market
    from ui import cache

    cache.clear()
    real = market.load_market_inputs
    monkeypatch.setattr(market, "load_market_inputs", lambda *a, **k: (_ for _ in ()).throw(OSError("disk gone")))
    token = cache.token()
    with pytest.raises(OSError, match="disk gone"):
        cache.market_data(token)
    monkeypatch.setattr(market, "load_market_inputs", real)
    assert not cache.market_data(token).inputs.prices.empty  # the next call loads again
    cache.clear()


def test_previews_on_shared_cleaned_prices_give_the_numbers_of_a_plain_backtest(demo_db) -> None:
    import numpy as np

    from core.schemas.strategy import DEFAULT_CONFIG
    from core.services.compute import run_backtest
    from ui import cache

    cache.clear()
    market = cache.market_data(cache.token())
    base = DEFAULT_CONFIG.model_dump()
    variants = [
        base,
        {**base, "cost_bps": 25.0},
        {**base, "top_n": 5, "max_weight": 0.3},
        {**base, "outlier_z": 4.0},
        {**base, "cost_bps": 3.0},
    ]  # hygiene kept, changed, then kept again
    for params in variants:
        cfg = DEFAULT_CONFIG.model_validate(params)
        shared = run_backtest(cfg, market.inputs, cleaned=market.cleaned(cfg))
        plain = run_backtest(cfg, market.inputs)
        assert np.array_equal(shared.values.to_numpy(), plain.values.to_numpy())
        assert shared.values.index.equals(plain.values.index)
        assert shared.metrics == plain.metrics
    cache.clear()


def test_day_codes_equal_numpy_unique() -> None:
    import numpy as np

    from core.services.prices import _codes, _distinct

    rng = np.random.default_rng(17)
    for low, high, n in ((-800_000, -799_000, 5000), (0, 3, 10), (18_000, 21_000, 100_000), (0, 200_000, 1000)):
        days = rng.integers(low, high, n)
        expected_days, expected_codes = np.unique(days, return_inverse=True)
        got_days, got_codes = _codes(days)
        assert np.array_equal(got_days, expected_days) and np.array_equal(got_codes, expected_codes)
        ids = np.abs(days) % 700
        assert np.array_equal(_distinct(ids), np.unique(ids))
    empty = np.empty(0, np.int64)
    assert _codes(empty)[0].size == 0 and _distinct(empty).size == 0


def test_storing_factors_moves_the_data_version(demo_db) -> None:
    """The Risk section's view is cached per data version (ui.cache.risk_view): a factor import must move it."""
    import pandas as pd

    from core.db import unit_of_work
    from core.services import app_settings, factors

    with unit_of_work() as session:
        before = app_settings.data_version(session)
    frame = pd.DataFrame(
        {"date": pd.to_datetime(["2024-01-02", "2024-01-03"]), "factor": ["MKT", "MKT"], "value": [0.01, -0.02]}
    )
    with unit_of_work() as session:
        factors.store_factors(session, "speed test set", frame)
        session.commit()
    with unit_of_work() as session:
        assert app_settings.data_version(session) > before
