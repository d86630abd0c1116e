"""AppTest of the Research page: the variant count before a run, a grid over 10,000 refused with its count, queueing
a sweep (a parent run on Tasks), reading a finished sweep (table, charts, downloads), promoting a variant, and owner
access (another analyst does not see the sweep). No worker runs: finished sweeps are made inline."""

from __future__ import annotations

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
    assert "**4 variants** (at most 10,000) over momentum_lookback, rebalance" in texts(at)
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
    assert "Best by `sharpe`" in texts(at)
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
