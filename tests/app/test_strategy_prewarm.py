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
