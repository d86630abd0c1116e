"""AppTest: the Strategy lab's first preview and comparison of a data version are computed ahead once the
Dashboard is drawn (issue 17: the Dashboard -> Strategy switch spent 0.27 s of server CPU running them), shared by
every session, with the numbers of a plain run, and a run read ahead counts toward nobody's preview limit."""

from __future__ import annotations

import json

import pytest

from tests.app.conftest import ADMIN, ANALYST, make_app


@pytest.fixture
def backtests(monkeypatch):  # type: ignore[no-untyped-def]
    """A served app's caches, emptied, and the config of every Strategy-lab backtest actually run."""
    from core.services import compute
    from ui import cache

    cache.clear()
    runs: list[dict] = []
    real = compute.run_backtest

    def counted(cfg, *args, **kwargs):  # type: ignore[no-untyped-def]
        runs.append(cfg.model_dump())
        return real(cfg, *args, **kwargs)

    monkeypatch.setattr(compute, "run_backtest", counted)
    monkeypatch.setattr(cache, "served", lambda: True)  # prewarms run only in a served app
    return runs


def _preview_level(at) -> float:  # type: ignore[no-untyped-def]
    from tests.app.conftest import plotly_figures
    from tests.app.test_dashboard_look import _array

    figure = next(f for title, f in plotly_figures(at).items() if title.startswith("Preview and saved versions"))
    return float(_array(figure["data"][0]["y"])[-1])


def test_the_dashboard_runs_the_strategy_labs_first_preview_ahead(app_db, backtests) -> None:
    from core.services import strategies
    from core.services.compute import run_backtest
    from core.services.market import load_market_inputs
    from ui import cache
    from ui.strategy_view import form_params

    at = make_app(ANALYST[0])
    assert not at.exception
    assert cache._prewarm.idle(120)
    active = strategies.active_version()
    ran = len(backtests)
    assert ran >= 1  # the editor's params and the stored ones give one run when they are the same config
    at.switch_page("pages/strategy.py").run()
    assert not at.exception
    assert any(c.value.startswith("Preview:") for c in at.caption)
    assert len(backtests) == ran, backtests[ran:]  # preview and comparison were read, not run again
    # the numbers of a plain run of the version as the editor loads it
    from core.db import unit_of_work

    with unit_of_work() as session:
        inputs = load_market_inputs(session)
    plain = run_backtest(strategies.parse_params(form_params(active.params)), inputs)
    assert _preview_level(at) == pytest.approx(float(plain.values.iloc[-1] / plain.values.dropna().iloc[0] * 100))
    # another user's session reads the same runs
    other = make_app(ADMIN[0], page="pages/strategy.py")
    assert not other.exception and len(backtests) == ran + 1  # + the plain run above, nothing more


def test_the_editor_params_of_a_loaded_version_are_what_the_prewarm_runs(app_db) -> None:
    """form_params (what the prewarm runs) are the editor's params right after the page loads the version: were
    they apart, the first preview would be run again."""
    from core.schemas.strategy import StrategyConfig
    from core.services import strategies
    from ui import state
    from ui.strategy_view import form_params, params_of

    at = make_app(ANALYST[0], page="pages/strategy.py")
    assert not at.exception
    fields = {name: at.session_state[state.field_prefix_key(name)] for name in StrategyConfig.model_fields}
    expected = form_params(strategies.active_version().params)
    assert json.dumps(params_of(fields), sort_keys=True) == json.dumps(expected, sort_keys=True)


# --- found by attacking this change (a separate session's brief: break it); each failed before the fix ---------

PASSWORD = "a long enough password 123"


def test_a_preview_that_fails_is_charged_again_on_every_rerun_that_runs_it(app_db, backtests, monkeypatch) -> None:
    """A config that passes validation but whose run raises (a benchmark stored without prices yet) ran its whole
    backtest again on every rerun without counting toward the limit: a failed run is forgotten, and the rerun
    that starts it again is charged."""
    from core.config import reset_settings_cache
    from core.services import universe, users

    monkeypatch.setattr("ui.cache.served", lambda: False)
    monkeypatch.setenv("RATE_LIMIT_PREVIEW", "2/minute")
    reset_settings_cache()
    try:
        universe.add_asset("NOPX", "No prices yet", is_benchmark=True, actor=ADMIN[0])
        users.create_user("mallory", "Mallory", PASSWORD)
        at = make_app("mallory", page="pages/strategy.py")  # the first preview: charged
        assert not at.exception
        at.session_state["strategy_more"] = True  # "Benchmark, basis, caps and exclusions" opened: the same preview
        at.run()
        at.text_input(key="strategy_field_benchmark").set_value("NOPX").run()  # charged, fails
        assert any("NOPX" in e.value for e in at.error), [e.value for e in at.error]
        before = len(backtests)
        for _ in range(5):
            at.run()
        assert any("too many previews" in e.value for e in at.error)
        assert len(backtests) == before  # refused before anything ran
    finally:
        reset_settings_cache()


def test_two_calls_arriving_together_are_charged_once_for_the_one_run(app_db, backtests, monkeypatch) -> None:
    import threading
    import time

    from core.services import compute, strategies
    from ui import cache

    real = compute.run_backtest
    monkeypatch.setattr(compute, "run_backtest", lambda c, *a, **k: (time.sleep(0.3), real(c, *a, **k))[1])
    token = cache.token()
    params = {**strategies.active_version().params, "cost_bps": 12.345}
    charged: list[int] = []
    barrier = threading.Barrier(2)
    got: list[object] = []

    def tab() -> None:
        barrier.wait()
        got.append(cache.backtest(token, params, on_compute=lambda: (charged.append(1), time.sleep(0.05))))

    threads = [threading.Thread(target=tab) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(charged) == 1 and len(got) == 2 and got[0] is got[1]


def test_a_dashboard_rerun_does_no_work_for_the_strategy_prewarm(app_db, backtests, monkeypatch) -> None:
    """The prewarm's validation reads every asset: it runs once per data version on the prewarm thread, not in
    every Dashboard run."""
    from core.services import market
    from ui import cache

    at = make_app(ANALYST[0])
    assert cache._prewarm.idle(120) and not at.exception
    calls: list[int] = []
    real = market.universe_errors
    monkeypatch.setattr(market, "universe_errors", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    at.run()
    at.run()
    assert cache._prewarm.idle(120) and not at.exception
    assert calls == []


def test_a_failing_prewarm_never_shows_an_error_on_the_dashboard(app_db, backtests, monkeypatch) -> None:
    from sqlalchemy.exc import OperationalError

    from core.services import strategies
    from ui import cache

    def busy(params):  # type: ignore[no-untyped-def]
        raise OperationalError("select", {}, Exception("database is locked"))

    monkeypatch.setattr(strategies, "config_errors", busy)
    at = make_app(ANALYST[0])
    assert cache._prewarm.idle(120)
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
