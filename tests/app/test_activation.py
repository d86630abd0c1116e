"""Activation follows one path, decided in the service (core.services.strategies.activate / save_and_activate):
the recompute is queued there, and after save-and-activate the sidebar shows the new version, as after
"Activate" (issue 13: the two UI paths disagreed)."""

from __future__ import annotations

from tests.app.conftest import ADMIN, make_app


def _compute_runs_of(config_id: int) -> list:  # type: ignore[type-arg]
    from core.services import runs

    return [r for r in runs.list_runs(kind="compute", limit=1000) if r.args.get("config_id") == config_id]


def test_save_and_activate_queues_the_recompute_and_the_sidebar_shows_the_new_version(app_db) -> None:
    from core.services import strategies

    before = strategies.active_version()
    at = make_app(ADMIN[0], page="pages/strategy.py")
    assert at.sidebar.selectbox(key="sidebar_config_id").value == before.id
    at.checkbox(key="strategy_activate_on_save").check()
    at.text_area(key="strategy_note").input("activate on save")
    at = next(b for b in at.button if b.label == "Save as new version").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    active = strategies.active_version()
    assert active.id != before.id and active.note == "activate on save"
    assert at.sidebar.selectbox(key="sidebar_config_id").value == active.id
    queued = _compute_runs_of(active.id)
    assert len(queued) == 1 and queued[0].queued_by == ADMIN[0]
    assert any(f"Saved {active.label}. Recompute queued as task {queued[0].id}" in s.value for s in at.success)


def test_activation_while_the_queue_is_down_computes_here_as_a_recorded_run(app_db, monkeypatch) -> None:
    """The no-worker fallback (jobs.queue.InlineQueue, wired as core.services.ports.fallback_queue): the run is
    computed in this process and recorded; the user reads what happened."""
    import jobs
    from core.services import compute, strategies

    def refuse() -> None:
        raise ConnectionError("queue went away")

    monkeypatch.setattr(jobs.HueyQueue, "ping", lambda self: refuse())
    version = strategies.save_version("Activated while down", {"equal": 1.0}, note="down")
    at = make_app(ADMIN[0], page="pages/strategy.py")
    at.selectbox(key="strategy_activate_id").set_value(version.id).run()
    at = at.button(key="strategy_activate_button").click().run()
    assert not at.exception
    [run] = _compute_runs_of(version.id)
    assert run.state == "succeeded" and run.worker and run.result["final_level"] > 0
    assert not compute.stored_index(version.id).empty
    assert any(f"computed here (run {run.id})" in s.value for s in at.success)
    assert at.sidebar.selectbox(key="sidebar_config_id").value == version.id
