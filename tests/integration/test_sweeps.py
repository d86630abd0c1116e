"""Parameter sweeps on SQLite and PostgreSQL: inline and queued runs agree, every variant equals a single backtest of
its config, refused variants are rows with their error, limits and access, promote; and the scaled-out path (Redis,
two real `huey_consumer` processes) with one worker killed by SIGKILL in the middle of a chunk: the sweep still
completes, each variant stored exactly once, with the numbers of the inline run."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import math
import os
import time

import pytest
from sqlalchemy import func, select

from tests.conftest import REDIS_BASE

#: Redis database of the scaled-out sweep test (its keys are removed before and after).
SWEEP_REDIS_URL = os.environ.get("AUTOINDEX_TEST_SWEEP_REDIS", f"{REDIS_BASE}/9")


def _seed(n_assets: int | None = None, years: float = 2) -> None:
    from core.services import users
    from core.services.bootstrap import seed_demo
    from core.services.strategies import ensure_default_config

    seed_demo(n_assets=n_assets, years=years, end=dt.date(2024, 12, 31))
    ensure_default_config()
    for name, role in (("ann", "admin"), ("ada", "analyst"), ("eve", "analyst")):
        users.create_user(name, name.title(), f"{name}'s long password 1", role=role)


def _grid(*params: str):
    from core.schemas.sweep import parse_grid

    return parse_grid(list(params))


@pytest.fixture
def seeded(db):
    _seed()
    return db


def test_inline_sweep_rows_equal_single_backtests(seeded):
    from core.db import unit_of_work
    from core.services import sweeps
    from core.services.compute import run_backtest
    from core.services.market import load_market_inputs
    from core.services.strategies import active_version

    grid = _grid("momentum_lookback=21,63", "sleeves=equal+momentum:0.5", "top_n=none,3,0")
    sweep = sweeps.start("ada", grid, chunk_size=5)
    assert sweep.status == "succeeded" and sweep.n_variants == 18 and sweep.done_variants == 18
    frame = sweeps.results(sweep.id, "ada")
    assert list(frame["variant"]) == list(range(18))
    refused = frame[frame["top_n"] == 0]
    assert len(refused) == 6 and refused["error"].str.contains("top_n must be between 1").all()
    assert refused["sharpe"].isna().all()
    base = active_version().params
    with unit_of_work() as session:
        inputs = load_market_inputs(session)
    for row in frame[frame["error"].isna()].itertuples():
        params = {
            **base,
            "momentum_lookback": row.momentum_lookback,
            "equal": row.equal,
            "momentum": row.momentum,
            "market_cap": row.market_cap,
            "risk_parity": row.risk_parity,
            "top_n": None
            if row.top_n is None or (isinstance(row.top_n, float) and math.isnan(row.top_n))
            else int(row.top_n),
        }
        single = run_backtest(params, inputs)
        for key in ("total_return", "cagr", "volatility", "sharpe", "sortino", "max_drawdown", "calmar"):
            assert getattr(row, key) == pytest.approx(single.metrics[key], rel=1e-12, abs=1e-15), key
        assert row.turnover == pytest.approx(single.turnover_per_year, rel=1e-12)
        assert row.costs == pytest.approx(single.total_costs, rel=1e-12, abs=1e-15)


def test_csv_columns_and_split(seeded):
    from core.services import sweeps

    plain = sweeps.start("ada", _grid("momentum_lookback=21,63", "rebalance=monthly,quarterly"))
    header = next(csv.reader(io.StringIO(sweeps.export_csv(plain.id, "ada").decode())))
    assert header == [
        "variant",
        "momentum_lookback",
        "rebalance",
        "error",
        "total_return",
        "cagr",
        "volatility",
        "sharpe",
        "sortino",
        "max_drawdown",
        "calmar",
        "turnover",
        "costs",
    ]
    split = sweeps.start("ada", _grid("momentum_lookback=21,63", "max_weight=none,0.2"), split=dt.date(2024, 1, 2))
    rows = list(csv.DictReader(io.StringIO(sweeps.export_csv(split.id, "ada").decode())))
    keys = rows[0].keys()
    for metric in ("total_return", "sharpe", "turnover", "costs"):
        assert f"is_{metric}" in keys and f"oos_{metric}" in keys and metric not in keys
    assert "deflated_sharpe" in keys
    for row in rows:
        assert 0.0 <= float(row["deflated_sharpe"]) <= 1.0
    done = sweeps.get_sweep(split.id, "ada")
    assert done.summary["ranked_by"] == "oos_sharpe" and done.summary["n_trials"] == 4
    xlsx = sweeps.export_xlsx(split.id, "ada")
    assert xlsx[:2] == b"PK"


def test_refusals_write_nothing(seeded):
    from core.db import unit_of_work
    from core.errors import ValidationFailed
    from core.models import Sweep
    from core.services import sweeps

    with pytest.raises(ValidationFailed, match="10,000"):
        _grid("momentum_lookback=2:2000:1", "top_n=none,5,10,20,40,80")
    with pytest.raises(ValidationFailed, match="not a config field"):
        _grid("lookback=1,2")
    with pytest.raises(ValidationFailed) as exc:
        sweeps.start("ada", _grid("cost_bps=0,10"), split=dt.date(1990, 1, 1))
    assert "split" in exc.value.errors
    with unit_of_work() as session:
        assert session.scalar(select(func.count(Sweep.id))) == 0


def test_owner_access_promote_and_cancel_rules(seeded):
    from core.errors import NotFoundError, ValidationFailed
    from core.services import sweeps
    from core.services.strategies import get_version

    sweep = sweeps.start("ada", _grid("cost_bps=0,25"))
    with pytest.raises(NotFoundError):
        sweeps.get_sweep(sweep.id, "eve")
    with pytest.raises(NotFoundError):
        sweeps.results(sweep.id, "eve")
    assert [s.id for s in sweeps.list_sweeps("eve")] == []
    assert [s.id for s in sweeps.list_sweeps("ann")] == [sweep.id]
    version = sweeps.promote(sweep.id, 1, "ada")
    assert f"sweep {sweep.id}" in version.note and "variant 1" in version.note and "cost_bps=25" in version.note
    assert get_version(version.id).params["cost_bps"] == 25 and not version.is_active
    with pytest.raises(NotFoundError):
        sweeps.promote(sweep.id, 1, "eve")
    with pytest.raises(ValidationFailed, match="only queued or running"):
        sweeps.cancel(sweep.id, "ada")


def test_queued_on_the_inline_queue_gives_the_inline_numbers(seeded):
    from core.services import runs, sweeps
    from jobs.queue import InlineQueue

    grid = _grid("momentum_lookback=21,63,126", "cost_bps=0,20")
    inline = sweeps.start("ada", grid, chunk_size=2)
    queued = sweeps.start("ada", grid, queue=True, chunk_size=2, huey=InlineQueue())
    assert queued.status == "succeeded" and queued.task_run_id is not None
    run = runs.get_run(queued.task_run_id, "ada")
    assert run.kind == "sweep" and run.state == "succeeded" and run.queued_by == "ada"
    assert sweeps.export_csv(inline.id, "ada") == sweeps.export_csv(queued.id, "ada")


def test_the_configured_risk_free_rate_is_the_sweeps_and_is_fixed_when_it_starts(seeded, monkeypatch):
    """Sharpe and Sortino of every variant use RISK_FREE_RATE as the stored compute does (the definition in
    docs/methodology.md computed here from the variant's levels); a chunk run after the setting changed keeps the
    sweep's rate."""
    import numpy as np

    from core.config import reset_settings_cache
    from core.db import unit_of_work
    from core.services import sweeps
    from core.services.compute import run_backtest
    from core.services.market import load_market_inputs
    from core.services.strategies import active_version

    monkeypatch.setenv("RISK_FREE_RATE", "0.04")
    reset_settings_cache()
    sweep = sweeps.start("ada", _grid("momentum_lookback=21,63"))
    frame = sweeps.results(sweep.id, "ada")
    with unit_of_work() as session:
        inputs = load_market_inputs(session)
    for row in frame.itertuples():
        single = run_backtest({**active_version().params, "momentum_lookback": row.momentum_lookback}, inputs)
        r = single.values.pct_change().dropna().to_numpy() - ((1.04) ** (1 / 252) - 1)
        assert row.sharpe == pytest.approx(r.mean() / r.std(ddof=1) * np.sqrt(252), rel=1e-10)
        assert row.sharpe < single.metrics["sharpe"]  # the rate is not 0: lower than at rf = 0
    monkeypatch.setenv("RISK_FREE_RATE", "0")
    reset_settings_cache()
    again = sweeps.start("ada", _grid("momentum_lookback=21,63"))
    assert list(sweeps.results(again.id, "ada")["sharpe"]) != list(frame["sharpe"])
    with unit_of_work() as session:
        from core.models import Sweep

        assert session.get(Sweep, sweep.id).risk_free_rate == 0.04


# --------------------------------------------------------------------------- scaled out, a worker killed
@pytest.mark.slow
@pytest.mark.timeout(240)
def test_redis_workers_one_killed_mid_chunk(data_dir, pg_database, monkeypatch, tmp_path):
    import jobs
    from core.db import unit_of_work
    from core.models import SweepChunk, SweepVariant
    from core.services import runs, sweeps
    from jobs.queue import set_immediate
    from tests.conftest import _reset_caches, _truncate_pg
    from tests.integration.conftest import flush_job_keys
    from tests.integration.jobs_support import Consumers, wait_for

    flush_job_keys(SWEEP_REDIS_URL)
    monkeypatch.setenv("DATABASE_URL", pg_database)
    monkeypatch.setenv("REDIS_URL", SWEEP_REDIS_URL)
    monkeypatch.setenv(
        "PYTHONPATH",
        os.pathsep.join(
            filter(None, [str(__import__("pathlib").Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH")])
        ),
    )
    _reset_caches()
    from core.db import migrate

    migrate(timeout_s=10)
    _truncate_pg(pg_database)
    _reset_caches()
    _seed(n_assets=60, years=3)
    saved = jobs.huey.storage, jobs.huey.immediate
    jobs.reconfigure()
    consumers = Consumers(dict(os.environ), tmp_path, mode="huey_consumer")
    try:
        a = consumers.start(workers=1)
        b = consumers.start(workers=1)
        grid = _grid("momentum_lookback=21,63,126", "drift_band=0.01,0.02,0.05", "rebalance=daily,weekly")
        sweep = sweeps.start("ada", grid, queue=True, chunk_size=3)
        assert sweep.n_chunks == 6

        def victim():
            """A chunk running on a worker that is not the parent run's: its consumer process."""
            parent = runs.get_run(sweep.task_run_id).worker
            with unit_of_work() as session:
                workers = session.scalars(
                    select(SweepChunk.worker).where(SweepChunk.sweep_id == sweep.id, SweepChunk.state == "running")
                ).all()
            for worker in workers:
                if worker and worker != parent:
                    pid = int(worker.split(":")[1])
                    return next((p for p in (a, b) if p.pid == pid), None)
            return None

        proc = wait_for(victim, 120, 0.02, "a helper chunk running on the worker without the parent run")
        consumers.kill9(proc)
        killed_at = time.monotonic()
        final = wait_for(
            lambda: (s := sweeps.get_sweep(sweep.id, "ada")).status not in ("queued", "running") and s,
            150,
            0.2,
            f"sweep {sweep.id} to finish\n{consumers.logs()}",
        )
        assert final.status == "succeeded", (final.error, consumers.logs())
        assert time.monotonic() - killed_at < 120
        with unit_of_work() as session:
            numbers = session.scalars(select(SweepVariant.variant).where(SweepVariant.sweep_id == sweep.id)).all()
            attempts = session.scalars(select(SweepChunk.attempts).where(SweepChunk.sweep_id == sweep.id)).all()
        assert sorted(numbers) == list(range(grid.count))  # each variant exactly once
        assert max(attempts) >= 2  # the killed chunk ran again
        # a helper may store the last chunk: the parent run ends at its next look (within a poll interval)
        parent = wait_for(lambda: (r := runs.get_run(sweep.task_run_id)).is_final and r, 30, 0.1, "the parent run")
        assert parent.state == "succeeded", parent.error
        queued_csv = sweeps.export_csv(sweep.id, "ada")
    finally:
        consumers.close()
        flush_job_keys(SWEEP_REDIS_URL)
        set_immediate(jobs.huey, saved[1], storage=saved[0])
    inline = sweeps.start("ada", grid, chunk_size=3)
    assert sweeps.export_csv(inline.id, "ada") == queued_csv  # the inline and queued runs give identical numbers


@contextlib.contextmanager
def _held_queue():  # type: ignore[no-untyped-def]
    """The process's queue on memory that nobody consumes: queued runs wait, to be driven by hand."""
    from huey.storage import MemoryStorage

    import jobs
    from jobs.queue import set_immediate

    was, storage = jobs.huey.immediate, jobs.huey.storage
    set_immediate(jobs.huey, False, storage=MemoryStorage("held"))
    try:
        yield
    finally:
        set_immediate(jobs.huey, was, storage=storage)


def test_a_sweep_whose_parent_run_died_fails_with_it_and_a_retry_of_the_run_finishes_it(seeded):
    """The parent run's worker is killed (kill -9) after one chunk, with the next in flight. The worker that finds
    the run interrupted marks the sweep failed with it (before: the sweep showed "running" for ever and the dead
    worker's chunk was never run), helpers stop claiming, and a retry of the run on Tasks resumes the sweep:
    the dead worker's chunk is run again, each variant stored exactly once, the numbers of the inline run."""
    from core.db import unit_of_work
    from core.models import SweepChunk, SweepVariant, utcnow
    from core.services import runs, sweeps, workers
    from jobs.queue import InlineQueue

    grid = _grid("momentum_lookback=21,63,126", "cost_bps=0,20")
    inline = sweeps.start("ada", grid, chunk_size=2)
    with _held_queue():
        sweep = sweeps.start("ada", grid, queue=True, chunk_size=2)
        assert sweep.status == "queued" and sweep.n_chunks == 3
        dead = "far-host:4242:gone"  # its heartbeat stopped a minute ago
        workers.heartbeat(dead, hostname="far-host", pid=4242, now=utcnow() - dt.timedelta(minutes=1))
        assert runs.mark_running(sweep.task_run_id, worker=dead)
        assert sweeps._set_status(sweep.id, "running", ("queued",))
        assert sweeps.run_chunk(*sweeps._claim(sweep.id, dead)) == 2
        assert sweeps._claim(sweep.id, dead) is not None  # in flight when the worker died
        assert workers.reconcile_interrupted(current_worker="me") == [sweep.task_run_id]
        run = runs.get_run(sweep.task_run_id, "ada")
        assert run.state == "failed" and run.error.startswith("interrupted")
        failed = sweeps.get_sweep(sweep.id, "ada")
        assert failed.status == "failed" and failed.error.startswith("interrupted") and "retry" in failed.error
        assert failed.done_variants == 2
        assert sweeps.help_with(sweep.id, worker="me") == 0  # a helper on a live worker claims nothing more
    retry = runs.retry(sweep.task_run_id, "ada", huey=InlineQueue())
    assert runs.get_run(retry, "ada").state == "succeeded"
    done = sweeps.get_sweep(sweep.id, "ada")
    assert done.status == "succeeded" and done.error is None and done.done_variants == grid.count
    with unit_of_work() as session:
        numbers = session.scalars(select(SweepVariant.variant).where(SweepVariant.sweep_id == sweep.id)).all()
        attempts = session.scalars(
            select(SweepChunk.attempts).where(SweepChunk.sweep_id == sweep.id).order_by(SweepChunk.chunk)
        ).all()
    assert sorted(numbers) == list(range(grid.count))
    assert attempts == [1, 2, 1]  # the dead worker's chunk ran again, at once (its worker is known and dead)
    assert sweeps.export_csv(sweep.id, "ada") == sweeps.export_csv(inline.id, "ada")


def test_a_chunk_of_a_worker_not_yet_known_is_given_its_grace_and_a_dead_ones_is_not(seeded):
    """A chunk claimed by a worker with no heartbeat yet (just started) is left alone for STALE_GRACE_S; a chunk of
    a worker known to be dead is put back at once (before, the two were the other way round)."""
    from core.models import utcnow
    from core.services import sweeps, workers

    with _held_queue():
        sweep = sweeps.start("ada", _grid("cost_bps=0,10,20,30"), queue=True, chunk_size=1)
    assert sweeps._set_status(sweep.id, "running", ("queued",))
    workers.heartbeat("far-host:7:dead", hostname="far-host", pid=7, now=utcnow() - dt.timedelta(minutes=1))
    now = utcnow()
    new = sweeps._claim(sweep.id, "far-host:8:new", now=now)
    dead = sweeps._claim(sweep.id, "far-host:7:dead", now=now)
    assert new and dead
    soon = now + dt.timedelta(seconds=1)
    assert sweeps._requeue_stale(sweep.id, me="me", now=soon) == [dead[0]]
    later = now + dt.timedelta(seconds=sweeps.STALE_GRACE_S + 1)
    assert sweeps._requeue_stale(sweep.id, me="me", now=later) == [new[0]]
