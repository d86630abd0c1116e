"""A sweep whose parent run dies, and its recovery by a retry of the run, under several actors: found by a review
session attacking that recovery (each test in the first section failed before its fix). SQLite and PostgreSQL (the
``db`` fixture). Times are passed in where the clock matters; the queue is held (nobody consumes it) and runs are
driven by hand, as in test_sweeps.py."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from tests.integration.test_sweeps import _grid, _held_queue, _seed


@pytest.fixture
def seeded(db):
    _seed()
    return db


def _dead_worker(name: str = "far-host:4242:gone") -> str:
    from core.models import utcnow
    from core.services import workers

    workers.heartbeat(name, hostname="far-host", pid=4242, now=utcnow() - dt.timedelta(minutes=1))
    return name


def _live_worker(name: str = "near-host:77:live") -> str:
    from core.services import workers

    workers.heartbeat(name, hostname="near-host", pid=77)
    return name


def _variants(sweep_id: int) -> list[int]:
    from core.db import unit_of_work
    from core.models import SweepVariant

    with unit_of_work() as session:
        return sorted(session.scalars(select(SweepVariant.variant).where(SweepVariant.sweep_id == sweep_id)).all())


def _interrupted_sweep(grid, *, chunk_size: int = 2):
    """A queued sweep whose parent run's worker died with its second chunk in flight; reconciled (run and sweep
    failed). Returns (sweep, dead worker, in-flight claim)."""
    from core.services import runs, sweeps, workers

    sweep = sweeps.start("ada", grid, queue=True, chunk_size=chunk_size)
    dead = _dead_worker()
    assert runs.mark_running(sweep.task_run_id, worker=dead)
    assert sweeps._set_status(sweep.id, "running", ("queued",))
    assert sweeps.run_chunk(*sweeps._claim(sweep.id, dead)) == chunk_size
    claim = sweeps._claim(sweep.id, dead)
    assert claim is not None
    assert workers.reconcile_interrupted(current_worker="me") == [sweep.task_run_id]
    assert sweeps.get_sweep(sweep.id, "ada").status == "failed"
    return sweep, dead, claim


# --------------------------------------------------------------------------- found by attacking it (fixed)
def test_cancelling_a_resumed_sweep_cancels_the_retry_run_making_it(seeded):
    """The retry is a new run; the sweep named the old (failed) one, so Cancel on the Research page cancelled the
    sweep and left the retry run running (it then ended "succeeded" for a cancelled sweep). The retry and the run
    driving the sweep now name themselves on it (``task_run_id``)."""
    from core.services import runs, sweeps

    with _held_queue():
        sweep, _, _ = _interrupted_sweep(_grid("momentum_lookback=21,63,126", "cost_bps=0,20"))
        retry = runs.retry(sweep.task_run_id, "ada")
        assert sweeps.get_sweep(sweep.id, "ada").task_run_id == retry
        live = _live_worker()
        assert runs.mark_running(retry, worker=live)  # a worker took the retry ...
        assert sweeps._set_status(sweep.id, "running", ("queued",), error=None)  # ... and drive() resumed the sweep
        cancelled = sweeps.cancel(sweep.id, "ada")
        assert cancelled.status == "cancelled"
        assert runs.get_run(retry, "ada").state == "cancelled", (cancelled.task_run_id, retry)


def test_a_sweep_whose_retry_is_queued_is_not_shown_failed_and_can_be_cancelled(seeded):
    """Between Retry and a worker taking it (a busy queue: minutes), the sweep stays 'failed ... retry its run on
    the Tasks page' (the Research page says to retry what is already retried) and Cancel on the Research page is
    refused ('only queued or running sweeps can be cancelled'), while the queued retry will resume it."""
    from core.services import runs, sweeps

    with _held_queue():
        sweep, _, _ = _interrupted_sweep(_grid("momentum_lookback=21,63,126", "cost_bps=0,20"))
        retry = runs.retry(sweep.task_run_id, "ada")
        assert runs.get_run(retry, "ada").state == "queued"
        assert sweeps.get_sweep(sweep.id, "ada").status in ("queued", "running")
        assert sweeps.cancel(sweep.id, "ada").status == "cancelled"


def test_a_sweep_is_driven_by_one_run_and_an_old_parents_death_does_not_fail_it(seeded):
    """Retry pressed twice (a double click, two tabs, the owner and an administrator) queued two parent runs of one
    sweep, and the death of one failed the sweep under the other. A second run of a sweep whose run is queued or
    running is refused (as a report's is), and a run that no longer drives the sweep (a partitioned old parent,
    reconciled late) does not fail it."""
    from core.errors import ValidationFailed
    from core.services import runs, sweeps, workers

    grid = _grid("momentum_lookback=21,63,126", "cost_bps=0,20")
    with _held_queue():
        sweep, _, _ = _interrupted_sweep(grid)
        first = runs.retry(sweep.task_run_id, "ada")
        with pytest.raises(ValidationFailed, match=f"already queued or running \\(run {first}\\)"):
            runs.retry(sweep.task_run_id, "ann")  # the administrator's click, a moment later
        live = _live_worker()
        assert runs.mark_running(first, worker=live)
        assert sweeps._set_status(sweep.id, "running", ("queued",), error=None)
        # a run of the same sweep that no longer drives it (written before this rule, or by hand), running on a
        # worker that has since died, is reconciled now: its sweep, driven by the live run, is left alone
        from core.db import unit_of_work
        from core.models import TaskRun

        with unit_of_work() as session:
            other = TaskRun(kind="sweep", args={"sweep_id": sweep.id}, state="running", worker=_dead_worker())
            session.add(other)
            session.commit()
            other_id = other.id
        assert workers.reconcile_interrupted(current_worker="me") == [other_id]
        assert sweeps.get_sweep(sweep.id, "ada").status == "running"
        assert runs.get_run(first, "ada").state == "running"


def test_a_helper_that_stores_the_last_chunk_after_its_parent_died_finishes_the_sweep(seeded):
    """help_with's docstring: 'The last chunk stored finishes the sweep (also when its parent run was lost with
    its worker)'. After 5b01f5b the sweep is marked failed when the parent dies, and finish() only moves a
    'running' sweep: a helper that stores the last chunk leaves a sweep with EVERY variant stored shown as
    'failed ... retry its run ... to finish the sweep', until someone retries a run that has nothing left to do."""
    from core.services import sweeps, workers

    grid = _grid("momentum_lookback=21,63", "cost_bps=0,20")  # 4 variants, 2 chunks
    with _held_queue():
        sweep = sweeps.start("ada", grid, queue=True, chunk_size=2)
        from core.services import runs

        dead = _dead_worker()
        live = _live_worker()
        assert runs.mark_running(sweep.task_run_id, worker=dead)
        assert sweeps._set_status(sweep.id, "running", ("queued",))
        assert sweeps.run_chunk(*sweeps._claim(sweep.id, dead)) == 2  # the parent stored chunk 0, then died
        helper_claim = sweeps._claim(sweep.id, live)  # a helper on a live worker is running chunk 1
        assert workers.reconcile_interrupted(current_worker="me") == [sweep.task_run_id]
        assert sweeps.run_chunk(*helper_claim) == 2  # the helper's claim is valid: it stores the last chunk
        assert sweeps.help_with(sweep.id, worker=live) == 0  # the helper loop's end: all chunks done -> finish()
    assert _variants(sweep.id) == list(range(grid.count))
    out = sweeps.get_sweep(sweep.id, "ada")
    assert out.done_variants == out.n_variants
    assert out.status == "succeeded", (out.status, out.error)


# --------------------------------------------------------------------------- attacks that held
def test_held_retry_while_the_old_parent_is_still_alive_stores_each_variant_once(seeded):
    """Network partition: the old parent's heartbeat is stale (reconciled) but its process still runs its chunk.
    A retry drives the sweep to the end (the stale chunk re-queued at once); the old parent's late write stores
    nothing; every variant once; the old run stays failed, the retry succeeded."""
    from core.db import unit_of_work
    from core.models import SweepVariant
    from core.services import runs, sweeps
    from jobs.queue import InlineQueue

    grid = _grid("momentum_lookback=21,63,126", "cost_bps=0,20")
    inline = sweeps.start("ada", grid, chunk_size=2)
    with _held_queue():
        sweep, _, claim = _interrupted_sweep(grid)
    retry = runs.retry(sweep.task_run_id, "ada", huey=InlineQueue())
    assert runs.get_run(retry, "ada").state == "succeeded"
    assert sweeps.run_chunk(*claim) == 0  # the late writer (alive behind the partition) stores nothing
    assert sweeps.drive(sweep.id, worker="far-host:4242:gone")["status"] == "succeeded"  # old driver's loop: no-op
    done = sweeps.get_sweep(sweep.id, "ada")
    assert done.status == "succeeded" and done.done_variants == grid.count
    with unit_of_work() as session:
        n = session.scalar(select(func.count(SweepVariant.id)).where(SweepVariant.sweep_id == sweep.id))
    assert n == grid.count and _variants(sweep.id) == list(range(grid.count))
    assert runs.get_run(sweep.task_run_id, "ada").state == "failed"
    assert sweeps.export_csv(sweep.id, "ada") == sweeps.export_csv(inline.id, "ada")


def test_held_old_parent_sees_failed_and_stops_and_its_stored_chunk_is_kept(seeded):
    """The old (partitioned) parent finishes its in-flight chunk after being reconciled, then stops (status not
    running) without finishing; a retry then finishes with the chunk it stored kept (not recomputed)."""
    from core.db import unit_of_work
    from core.models import SweepChunk
    from core.services import runs, sweeps
    from jobs.queue import InlineQueue

    grid = _grid("momentum_lookback=21,63,126", "cost_bps=0,20")
    with _held_queue():
        sweep, dead, claim = _interrupted_sweep(grid)
        assert sweeps.run_chunk(*claim) == 2  # nobody took it over: stored
        assert sweeps._claim(sweep.id, dead) is None  # the old parent claims nothing more
        assert sweeps.get_sweep(sweep.id, "ada").status == "failed"
    retry = runs.retry(sweep.task_run_id, "ada", huey=InlineQueue())
    assert runs.get_run(retry, "ada").state == "succeeded"
    with unit_of_work() as session:
        attempts = session.scalars(
            select(SweepChunk.attempts).where(SweepChunk.sweep_id == sweep.id).order_by(SweepChunk.chunk)
        ).all()
    assert attempts == [1, 1, 1]
    assert sweeps.get_sweep(sweep.id, "ada").status == "succeeded"


def test_held_cancelled_then_parent_interrupted_stays_cancelled(seeded):
    from core.services import runs, sweeps, workers

    with _held_queue():
        sweep = sweeps.start("ada", _grid("cost_bps=0,10,20,30"), queue=True, chunk_size=1)
        dead = _dead_worker()
        assert runs.mark_running(sweep.task_run_id, worker=dead)
        assert sweeps._set_status(sweep.id, "running", ("queued",))
        assert sweeps._claim(sweep.id, dead) is not None
        assert sweeps.cancel(sweep.id, "ada").status == "cancelled"
        assert workers.reconcile_interrupted(current_worker="me") == []  # the run is cancelled, not running
        out = sweeps.get_sweep(sweep.id, "ada")
        assert out.status == "cancelled" and out.error == "cancelled by ada"
        # a retry of the cancelled run does not resurrect the cancelled sweep
        retry = runs.retry(sweep.task_run_id, "ada")
        assert runs.mark_running(retry, worker="me")
        assert sweeps.drive(sweep.id, worker="me")["status"] == "cancelled"


def test_held_lost_queued_parent_fails_its_sweep_and_a_retry_finishes_it(seeded):
    import jobs
    from core.services import runs, sweeps
    from core.services.workers import LOST_ERROR, LostMessageWatch
    from jobs.queue import InlineQueue

    grid = _grid("cost_bps=0,10,20,30")
    with _held_queue():
        sweep = sweeps.start("ada", grid, queue=True, chunk_size=2)
        jobs.huey.storage.flush_queue()  # the message is lost
        t0 = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=60)
        watch = LostMessageWatch(grace_s=30, confirm_s=10)
        assert watch.check(t0, huey=jobs.huey) == []
        assert watch.check(t0 + dt.timedelta(seconds=11), huey=jobs.huey) == [sweep.task_run_id]
    out = sweeps.get_sweep(sweep.id, "ada")
    assert out.status == "failed" and out.error.startswith(LOST_ERROR) and "retry" in out.error
    assert len(out.error) <= 2000
    assert runs.get_run(runs.retry(sweep.task_run_id, "ada", huey=InlineQueue()), "ada").state == "succeeded"
    assert sweeps.get_sweep(sweep.id, "ada").status == "succeeded"
    assert _variants(sweep.id) == list(range(grid.count))


def test_held_admin_retry_after_the_owner_was_deactivated_and_other_analyst_refused(seeded):
    from core.errors import NotFoundError
    from core.services import runs, sweeps, users
    from jobs.queue import InlineQueue

    grid = _grid("momentum_lookback=21,63,126", "cost_bps=0,20")
    with _held_queue():
        sweep, _, _ = _interrupted_sweep(grid)
    with pytest.raises(NotFoundError):
        runs.retry(sweep.task_run_id, "eve", huey=InlineQueue())
    users.update_user("ada", actor="ann", is_active=False)
    retry = runs.retry(sweep.task_run_id, "ann", huey=InlineQueue())
    assert runs.get_run(retry, "ann").state == "succeeded"
    out = sweeps.get_sweep(sweep.id, "ann")
    assert out.status == "succeeded" and out.owner == "ada" and out.done_variants == grid.count


def test_held_chunk_without_worker_is_requeued_after_its_grace_and_the_long_dead_at_once(seeded):
    from core.db import unit_of_work
    from core.models import SweepChunk, utcnow
    from core.services import sweeps, workers

    with _held_queue():
        sweep = sweeps.start("ada", _grid("cost_bps=0,10,20,30"), queue=True, chunk_size=1)
    assert sweeps._set_status(sweep.id, "running", ("queued",))
    now = utcnow()
    nobody = sweeps._claim(sweep.id, None, now=now)
    # a worker whose last beat is older than workers_status's hour is "unknown" again: its chunk, claimed long ago,
    # is past the grace anyway
    workers.heartbeat("far-host:9:ancient", hostname="far-host", pid=9, now=now - dt.timedelta(hours=3))
    ancient = sweeps._claim(sweep.id, "far-host:9:ancient", now=now - dt.timedelta(hours=3))
    assert nobody and ancient
    assert sweeps._requeue_stale(sweep.id, me="me", now=now + dt.timedelta(seconds=1)) == [ancient[0]]
    assert sweeps._requeue_stale(sweep.id, me="me", now=now + dt.timedelta(seconds=6)) == [nobody[0]]
    with unit_of_work() as session:
        states = session.scalars(select(SweepChunk.state).where(SweepChunk.sweep_id == sweep.id)).all()
    assert sorted(states) == ["queued"] * 4


def test_held_interrupted_report_run_fails_a_queued_or_running_report_only(seeded):
    from core.db import unit_of_work
    from core.models import Report
    from core.services import runs, workers

    dead = _dead_worker()
    ids = {}
    with unit_of_work() as session:
        for status in ("queued", "running", "done", "failed"):
            r = Report(report_type="risk", period="YTD", format="pdf", status=status, owner="ada")
            session.add(r)
            session.flush()
            ids[status] = r.id
        session.commit()
    with _held_queue():
        run_ids = {}
        for status, rid in ids.items():
            if status in ("queued", "running"):
                run_ids[status] = runs.enqueue("report", {"report_id": rid}, user="ada")
                assert runs.mark_running(run_ids[status], worker=dead)
    assert sorted(workers.reconcile_interrupted(current_worker="me")) == sorted(run_ids.values())
    with unit_of_work() as session:
        got = {s: (session.get(Report, rid).status, session.get(Report, rid).error) for s, rid in ids.items()}
    assert got["queued"][0] == "failed" and got["running"][0] == "failed"
    assert got["running"][1] == f"interrupted: worker {dead} stopped"  # no sweep hint on a report
    assert got["done"] == ("done", None) and got["failed"][0] == "failed"
