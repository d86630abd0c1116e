"""AppTest of the Tasks page: queue with parameters, live panel, history visibility, detail, cancel, retry,
schedule and workers. No worker runs (EMBEDDED_WORKER=false), so queued runs stay queued."""

from __future__ import annotations

import pytest

from jobs.queue import set_immediate
from tests.app.conftest import ADMIN, ANALYST, make_app, texts

PAGE = "pages/tasks.py"


@pytest.fixture
def jobs_queue(app_db):
    """The project's Huey instance on this module's SQLite queue, emptied."""
    import jobs

    saved = jobs.huey.storage, jobs.huey.immediate
    jobs.reconfigure()
    jobs.huey.flush()
    yield jobs.huey
    jobs.huey.flush()
    set_immediate(jobs.huey, saved[1], storage=saved[0])


def _button(at, label: str):  # type: ignore[no-untyped-def]
    return next(b for b in at.button if b.label == label)


def test_analyst_is_offered_no_price_refresh_and_the_service_refuses_one(jobs_queue):
    from core.errors import PermissionDenied
    from core.services import runs as svc

    at = make_app(ANALYST[0], page=PAGE)
    assert not at.exception
    assert "Refresh prices" not in [t.label for t in at.tabs]
    assert "Queue refresh" not in [b.label for b in at.button]
    assert "Price refreshes are queued by administrators." in texts(at)
    before = svc.count_runs()
    with pytest.raises(PermissionDenied, match="for admin users"):
        svc.enqueue("refresh", {}, user=ANALYST[0], huey=jobs_queue)
    assert svc.count_runs() == before


def test_admin_queues_a_refresh_sees_it_live_and_cancels_it(jobs_queue):
    from core.services import runs as svc

    at = make_app(ADMIN[0], page=PAGE)
    assert not at.exception
    at.text_input(key="tasks_refresh_symbols").set_value("aapl, msft")
    at.checkbox(key="tasks_refresh_full").check()
    _button(at, "Queue refresh").click().run()
    assert not at.exception
    run = svc.list_runs(viewer=None, user=ADMIN[0])[0]
    assert run.kind == "refresh" and run.state == "queued"
    assert run.args == {"provider": "demo", "symbols": ["AAPL", "MSFT"], "full": True}
    assert f"Queued refresh prices as run {run.id}" in texts(at)
    at.run()  # the rerun a run starting or finishing causes: which run was queued is still said
    assert f"Queued refresh prices as run {run.id}" in texts(at)
    assert texts(at).count(f"Queued refresh prices as run {run.id}.") == 1
    assert any(f"run {run.id}" in p.proto.text for p in at.get("progress"))  # the live panel
    assert at.selectbox(key="tasks_selected_run").value == run.id
    _button(at, "Cancel").click().run()
    assert svc.get_run(run.id).state == "cancelled"
    assert "Retry" in [b.label for b in at.button]


def test_bad_symbols_are_refused_with_the_field_named(jobs_queue):
    from core.services import runs as svc

    before = svc.count_runs()
    at = make_app(ADMIN[0], page=PAGE)
    at.text_input(key="tasks_refresh_symbols").set_value("not a symbol!")
    _button(at, "Queue refresh").click().run()
    assert not at.exception
    assert any("symbols" in e.value for e in at.error)
    assert svc.count_runs() == before


def test_analysts_see_only_their_runs_admins_all_with_traceback(jobs_queue):
    from core.services import runs as svc

    mine = svc.enqueue("compute", {}, user=ANALYST[0])
    theirs = svc.enqueue("compute", {}, user=ADMIN[0])
    svc.mark_running(theirs, worker="w")
    svc.record_error(theirs, RuntimeError("boom"), will_retry=False)

    at = make_app(ANALYST[0], page=PAGE)
    table = at.dataframe[0].value
    assert mine in table["ID"].tolist() and theirs not in table["ID"].tolist()

    at = make_app(ADMIN[0], page=PAGE)
    assert {mine, theirs} <= set(at.dataframe[0].value["ID"].tolist())
    at.selectbox(key="tasks_selected_run").set_value(theirs).run()
    assert "RuntimeError: boom" in texts(at)
    assert any("Traceback" in e.label for e in at.expander)
    _button(at, "Retry").click().run()
    new = svc.list_runs(viewer=None)[0]
    assert new.retry_of_id == theirs and new.state == "queued"


def test_history_filters_schedule_and_workers(jobs_queue):
    at = make_app(ADMIN[0], page=PAGE)
    at.selectbox(key="tasks_filter_state").set_value("succeeded").run()
    assert not at.exception
    assert "No runs match these filters." in texts(at) or all("succeeded" in s for s in at.dataframe[0].value["State"])
    frames = [d.value for d in at.dataframe]
    schedule = next(f for f in frames if "cron (UTC)" in f.columns)
    assert "30 22 * * 1-5" in schedule["cron (UTC)"].tolist()
    assert "No worker has reported yet" in texts(at) or any("worker" in f.columns for f in frames)


def test_a_run_that_succeeded_with_warnings_is_marked_filtered_and_explained(jobs_queue):
    """Issue 12: the new final state, marked with a plain-font '!' (no emoji font needed), in the State filter,
    and the run detail shows each warning."""
    from core.services import runs as svc

    run_id = svc.enqueue("refresh", {"provider": "twelvedata", "symbols": "AAPL,NOPE"}, user=ADMIN[0])
    warnings = ["NOPE: skipped, not known to twelvedata (TwelveData error 404: symbol not found)"]
    svc.mark_running(run_id, worker="w")
    svc.store_result(run_id, {"rows_new": 3, "warnings": warnings})
    assert svc.mark_succeeded(run_id, warnings=warnings)
    assert not svc.mark_succeeded(run_id)  # Huey's completion signal afterwards changes nothing
    run = svc.get_run(run_id)
    assert run.state == "succeeded_with_warnings" and run.is_final and run.progress == 1.0

    at = make_app(ADMIN[0], page=PAGE)
    state = at.selectbox(key="tasks_filter_state")
    assert "succeeded_with_warnings" in state.options or "succeeded with warnings" in state.options
    state.set_value("succeeded_with_warnings").run()
    assert not at.exception
    table = at.dataframe[0].value
    assert table["ID"].tolist() == [run_id]
    assert table["State"].tolist() == ["! succeeded with warnings"]
    at.selectbox(key="tasks_selected_run").set_value(run_id).run()
    assert warnings[0] in [str(w.value) for w in at.warning]


def test_the_run_picker_says_the_state_the_chosen_run_is_in_now(jobs_queue):
    """Newcomer walk: the Run picker read "run 4 · Recompute index · queued" right above a detail saying "succeeded".
    The browser holds the chosen option's label as text; with the id still chosen, Streamlit sent it no value, so it
    kept the old label. The page now sends the choice on every run: the browser shows this run's label, and the
    choice stays on the same run."""
    from core.services import runs as svc

    run_id = svc.enqueue("compute", {}, user=ADMIN[0])
    at = make_app(ADMIN[0], page=PAGE)
    at.selectbox(key="tasks_selected_run").set_value(run_id).run()
    assert at.selectbox(key="tasks_selected_run").proto.raw_value == f"run {run_id} · Recompute index · queued"
    svc.mark_running(run_id, worker="w")
    svc.mark_succeeded(run_id)
    at.run()  # the rerun the live panel asks for when the run ends
    picker = at.selectbox(key="tasks_selected_run")
    fresh = f"run {run_id} · Recompute index · succeeded"
    assert picker.value == run_id and fresh in picker.options
    assert picker.proto.set_value and picker.proto.raw_value == fresh  # what the browser shows in the picker
    assert "✓ succeeded" in [m.value for m in at.metric]


def test_run_detail_reads_as_words_and_the_history_headers_alike(jobs_queue):
    """Newcomer walk: the detail showed raw JSON (``{"config_id": NULL}``), the headers mixed "ID, Kind, State"
    with "progress, queued by, queued at (UTC)", and a sweep's kind read "sweep" beside "Recompute index"."""
    from core.schemas.sweep import parse_grid
    from core.services import runs as svc
    from core.services import sweeps

    run_id = svc.enqueue("compute", {}, user=ADMIN[0])
    sweep = sweeps.start(ADMIN[0], parse_grid(["cost_bps=0,25"]), queue=True)
    at = make_app(ADMIN[0], page=PAGE)
    at.selectbox(key="tasks_selected_run").set_value(run_id).run()
    assert not at.exception
    assert "Config version: the active version" in texts(at)
    assert not at.json
    table = at.dataframe[0].value
    assert list(table.columns) == [
        "ID",
        "Kind",
        "State",
        "Progress",
        "Queued by",
        "Queued at (UTC)",
        "Duration (s)",
        "Attempts",
        "Message",
    ]
    kinds = dict(zip(table["ID"], table["Kind"]))
    assert kinds[sweep.task_run_id] == "Parameter sweep" and kinds[run_id] == "Recompute index"
    at.selectbox(key="tasks_selected_run").set_value(sweep.task_run_id).run()
    assert f"Run {sweep.task_run_id}: Parameter sweep" in texts(at)
    assert f"Sweep: {sweep.id}" in texts(at)
