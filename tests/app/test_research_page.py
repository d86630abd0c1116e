"""AppTest of the Research page: the variant count before a run, a grid over 10,000 refused with its count, queueing
a sweep (a parent run on Tasks), reading a finished sweep (table, charts, downloads), promoting a variant, and owner
access (another analyst does not see the sweep). No worker runs: finished sweeps are made inline."""

from __future__ import annotations

import json

import pytest

from jobs.queue import set_immediate
from tests.app.conftest import ADMIN, ANALYST, charts, make_app, texts

PAGE = "pages/research.py"


@pytest.fixture
def jobs_queue(app_db):
    import jobs

    saved = jobs.huey.storage, jobs.huey.immediate
    jobs.reconfigure()
    jobs.huey.flush()
    yield jobs.huey
    jobs.huey.flush()
    set_immediate(jobs.huey, saved[1], storage=saved[0])


def _button(at, label: str):  # type: ignore[no-untyped-def]
    return next(b for b in at.button if b.label == label)


def _choose(at, fields: dict[str, str]):  # type: ignore[no-untyped-def]
    at.multiselect(key="research_fields").set_value(list(fields)).run()
    for field, values in fields.items():
        at.text_input(key=f"research_values_{field}").set_value(values)
    return at.run()


def test_count_shown_and_too_many_refused(jobs_queue):
    at = make_app(ANALYST[0], page=PAGE)
    assert not at.exception
    at = _choose(at, {"momentum_lookback": "63,126", "rebalance": "monthly,quarterly"})
    assert "**4 variants** (at most 10,000) over Momentum lookback (trading days), Rebalance" in texts(at)
    at = _choose(at, {"momentum_lookback": "2:2000:1", "cost_bps": "0,5,10,20,40,80"})
    assert "the grid has 11,994 variants; at most 10,000" in texts(at)
    assert not [b for b in at.button if b.label == "Run sweep on the workers"]


def test_queue_read_promote_and_owner_access(jobs_queue):
    from core.schemas.sweep import parse_grid
    from core.services import runs, sweeps

    at = make_app(ANALYST[0], page=PAGE)
    at = _choose(at, {"cost_bps": "0,25"})
    _button(at, "Run sweep on the workers").click().run()
    assert not at.exception
    queued = sweeps.list_sweeps(ANALYST[0])[0]
    assert queued.status == "queued" and queued.n_variants == 2
    assert runs.get_run(queued.task_run_id, ANALYST[0]).kind == "sweep"
    assert f"Sweep {queued.id} queued as run {queued.task_run_id}" in texts(at)

    done = sweeps.start(ANALYST[0], parse_grid(["momentum_lookback=63,126", "max_weight=none,0.2"]))
    at = make_app(ANALYST[0], page=PAGE)
    at.selectbox(key="research_selected").set_value(done.id).run()
    assert not at.exception
    assert "Best by Sharpe ratio" in texts(at)
    assert len(charts(at)) >= 1
    assert {b.proto.label for b in at.get("download_button")} >= {"Download CSV", "Download XLSX"}
    at.selectbox(key="research_promote_variant").set_value(3)
    at.get("form_submit_button")[0].click()
    at.run()
    assert not at.exception
    assert f"promoted from sweep {done.id}" in texts(at) and "variant 3: momentum_lookback=126" in texts(at)

    other = make_app(ADMIN[0], page=PAGE)  # an admin sees every sweep
    assert not other.exception
    ids = other.selectbox(key="research_selected").options
    assert str(done.id) in " ".join(ids)
    from core.errors import NotFoundError
    from core.services import users

    users.create_user("carol", "Carol Analyst", "carol's long password 1", role="analyst")
    with pytest.raises(NotFoundError, match="no sweep"):
        sweeps.get_sweep(done.id, "carol")
    theirs = make_app("carol", page=PAGE)  # another analyst sees none of them
    assert not theirs.exception and "No sweeps yet." in texts(theirs)


def test_a_heatmap_of_a_cap_against_no_cap_keeps_no_cap_and_orders_numbers_as_numbers(jobs_queue):
    """Found while testing the charts in tabs: a sweep of ``max_weight=none,0.2`` (cap or no cap, a first question)
    drew no heatmap ("needs two swept fields"): pandas dropped the missing value when counting and pivoting. And
    lookbacks were ordered as text (126, 252, 63). Each cell is the variant's own metric."""
    import numpy as np

    from core.schemas.sweep import parse_grid
    from core.services import sweeps
    from tests.app.test_dashboard_look import _array

    done = sweeps.start(ANALYST[0], parse_grid(["momentum_lookback=63,126,252", "max_weight=none,0.2"]))
    at = make_app(ANALYST[0], page=PAGE)
    at.selectbox(key="research_selected").set_value(done.id).run()
    assert not at.exception
    assert "A heatmap needs two swept fields" not in texts(at)
    heat = next(f["data"][0] for f in charts(at) if f["data"][0]["type"] == "heatmap")
    x, y = [str(v) for v in heat["x"]], [str(v) for v in heat["y"]]
    assert at.selectbox(key="research_x").value == "momentum_lookback"
    assert x == ["63", "126", "252"] and y == ["0.2", "none"]
    metric = at.selectbox(key="research_metric").value
    frame = sweeps.results(done.id, ANALYST[0])
    z = np.asarray(_array(heat["z"]), dtype=float).reshape(len(y), len(x))
    for i, cap in enumerate(y):
        for j, lookback in enumerate(x):
            capped = frame["max_weight"].isna() if cap == "none" else frame["max_weight"] == float(cap)
            row = frame[(frame["momentum_lookback"] == int(lookback)) & capped]
            assert len(row) == 1 and z[i, j] == pytest.approx(float(row[metric].iloc[0]), rel=1e-12)


def _tick(sweep_id: int) -> None:
    """What the follow panel's own timer runs on the page: the fragment, on the sweep it was drawn for. A whole-app
    rerun it asks for reruns this script; ``ticks`` counts the runs."""
    import streamlit as st

    from ui import research_view

    st.session_state["ticks"] = st.session_state.get("ticks", 0) + 1
    research_view.follow(sweep_id)


def test_a_queued_sweep_is_followed_until_it_ends_then_its_results_show(jobs_queue):
    """Newcomer walk: the page stayed on "0 of 3 variants stored (queued)" with a Cancel button after the sweep had
    finished (Tasks said so); only reopening the page showed the results. The progress is now a panel that reads the
    sweep again on its own timer and reruns the whole page once when the sweep ends."""
    from streamlit.testing.v1 import AppTest

    from core.services import sweeps
    from tests.app.conftest import log_in

    at = make_app(ANALYST[0], page=PAGE)
    at = _choose(at, {"cost_bps": "0,25"})
    _button(at, "Run sweep on the workers").click().run()
    queued = sweeps.list_sweeps(ANALYST[0])[0]
    assert any("0 of 2 variants stored (queued)" in p.proto.text for p in at.get("progress"))
    assert "Cancel sweep" in [b.label for b in at.button]

    tick = AppTest.from_function(_tick, args=(queued.id,), default_timeout=60)
    log_in(tick, ANALYST[0])
    tick.run()
    assert tick.session_state["ticks"] == 1  # still queued: the panel redraws itself only
    sweeps.drive(queued.id, worker=None)  # a worker runs it
    tick.run()
    assert not tick.exception
    assert tick.session_state["ticks"] == 3  # the tick that saw it end reran the whole app, once

    at.run()  # that whole-app rerun on the page
    assert not at.exception
    assert not at.get("progress") and "Cancel sweep" not in [b.label for b in at.button]
    assert "Best by Sharpe ratio" in texts(at)
    assert f"Sweep {queued.id} queued as run {queued.task_run_id} (1 chunk)." in texts(at)  # not swallowed


def test_fields_and_results_read_as_the_strategy_lab_names_them(jobs_queue):
    """Newcomer walk: field options and headers were code names (momentum_lookback, total_return, max_drawdown),
    returns were fractions (1.0034), a variant that ran had "None" as its error, times ended in "+00:00"."""
    from core.schemas.sweep import parse_grid
    from core.services import sweeps

    at = make_app(ANALYST[0], page=PAGE)
    fields = at.multiselect(key="research_fields")
    assert "Momentum lookback (trading days)" in fields.options and "momentum_lookback" not in fields.options
    assert "Max weight per asset" in fields.options  # typed as fractions here: no "(%)"
    at = _choose(at, {"momentum_lookback": "63,126"})
    assert "**2 variants** (at most 10,000) over Momentum lookback (trading days)" in texts(at)

    done = sweeps.start(ANALYST[0], parse_grid(["momentum_lookback=63,126", "max_weight=none,0.2"]))
    at = make_app(ANALYST[0], page=PAGE)
    at.selectbox(key="research_selected").set_value(done.id).run()
    assert not at.exception
    history, table = at.dataframe[0], at.dataframe[1]
    assert "Created (UTC)" in history.value.columns and "+00:00" not in " ".join(
        map(str, history.value["Created (UTC)"])
    )
    columns = list(table.value.columns)
    assert {"Variant", "Rank", "Momentum lookback (trading days)", "Max weight per asset", "Error"} <= set(columns)
    assert {"Total return", "CAGR", "Max drawdown", "Sharpe ratio"} <= set(columns)
    assert not {"total_return", "cagr", "max_drawdown", "momentum_lookback"} & set(columns)
    assert set(table.value["Error"]) == {""} and set(table.value["Max weight per asset"]) == {"none", "0.2"}
    config = json.loads(table.proto.columns)  # the fraction columns are drawn in percent, the ratios not
    percent = {name for name, c in config.items() if c.get("type_config", {}).get("format") == "percent"}
    assert {"Total return", "CAGR", "Max drawdown", "Volatility"} <= percent and "Sharpe ratio" not in percent
    assert at.selectbox(key="research_x").options[0] in ("Momentum lookback (trading days)", "Max weight per asset")
