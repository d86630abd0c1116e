"""Parameter sweeps: a grid over a saved version, run in chunks on the job workers, one stored row per variant.

The life of a sweep (docs/methodology.md "Research: parameter sweeps"; README "Research (parameter sweeps)")::

    start()    -> the sweep row, its chunks (variants [start, stop)) and, with ``queue=True``, one parent run
                  (kind ``sweep``) on Tasks; without, the chunks run now in this process
    drive()    -> the parent run's body (on a worker): fans helper jobs out over the workers, then claims and runs
                  chunks itself, re-queues the chunks of dead workers, reports progress, and finishes the sweep
    help_with()-> a helper job: claims and runs chunks until none is left
    cancel()   -> queued chunks are no longer claimed; the parent run ends cancelled

Exactly once: a chunk is claimed with a fresh token (a conditional UPDATE), and its variants are inserted in the same
transaction that moves the chunk from ``running`` with that token to ``done``: a late writer whose claim was taken
over (its worker was thought dead) stores nothing, and ``(sweep_id, variant)`` is unique besides. A chunk whose
worker died (kill -9: its heartbeat stops, or its pid is gone on this host) is re-queued by the driver and run again.

Each variant is ``compute.run_backtest`` of the base version's parameters with the variant's fields, on prices
cleaned once per set of hygiene fields and shared signals (:mod:`core.quant.batch`), so a variant's numbers are those
of a single backtest. Sweeps are owned like reports: an analyst sees their own, an admin all (checked here, on
fresh state). :func:`start` is the single entry point (a rate limit may wrap it).
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import math
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, cast

import numpy as np
import pandas as pd
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from core.config import get_settings
from core.db import unit_of_work, write_lock
from core.errors import AutoIndexError, NotFoundError, ValidationFailed, error_text
from core.infra import ratelimit
from core.models import AuditEvent, StrategyConfigRow, Sweep, SweepChunk, SweepVariant, TaskRun
from core.models.base import id_in_range, utcnow
from core.quant.batch import SharedCleaning, batch_order
from core.quant.overfitting import ReturnStats, deflated_sharpe, return_stats, walk_forward_windows
from core.quant.risk import daily_rf, finite_or_none, risk_metrics
from core.schemas.strategy import StrategyConfig, errors_by_field
from core.schemas.strategy_version import ConfigVersionOut
from core.schemas.sweep import METRIC_KEYS, Grid, SweepOut, WalkForward
from core.services import app_settings, audit, runs, strategies, workers
from core.services.access import ALL_ROLES, Principal, owns, resolve, visible_to
from core.services.compute import BacktestRun, run_backtest
from core.services.market import MarketInputs, load_market_inputs, risk_free
from core.services.reporting.formula_guard import neutralise_frame

log = logging.getLogger(__name__)

Progress = Callable[[float, str], None]

#: The seven reports' Summary keys computed per window (turnover and costs come from the rebalances).
RISK_KEYS: tuple[str, ...] = METRIC_KEYS[:7]
#: Seconds a running chunk's worker may be unknown before its chunk is re-queued (a worker beats every 5 s).
STALE_GRACE_S = 5.0
#: Attempts of one chunk before the sweep fails (a chunk that kills its worker every time).
MAX_CHUNK_ATTEMPTS = 4
#: Helper jobs queued per sweep at most (each claims chunks until none is left).
MAX_HELPERS = 64


# --------------------------------------------------------------------------- planning
def chunk_size_for(n_variants: int) -> int:
    """About 32 chunks (enough to spread over the workers and to lose little with a dead one), 4..100 variants."""
    return max(4, min(100, math.ceil(n_variants / 32)))


def _out(row: Sweep, done: int) -> SweepOut:
    out = SweepOut.model_validate(row)
    out.done_variants = done
    return out


def _done_count(session: Session, sweep_id: int) -> int:
    return int(session.scalar(select(func.count(SweepVariant.id)).where(SweepVariant.sweep_id == sweep_id)) or 0)


def start(
    actor: Any,
    grid: Grid | dict[str, Any],
    *,
    config_id: int | None = None,
    split: dt.date | None = None,
    walk_forward: WalkForward | dict[str, Any] | None = None,
    queue: bool = False,
    chunk_size: int | None = None,
    progress: Progress | None = None,
    huey: Any = None,
) -> SweepOut:
    """Start a sweep of ``grid`` over the version ``config_id`` (default: the active one); return it.

    ``queue=True``: one parent run (kind ``sweep``) is queued; its chunks fan out over the workers and
    :func:`get_sweep` follows it. Otherwise the chunks run now, in this process, and the finished sweep is returned.
    Raises ValidationFailed (a bad grid, more than 10,000 variants, a split and walk-forward together, a split
    outside the prices) or NotFoundError before anything is written.
    """
    grid = (grid if isinstance(grid, Grid) else Grid.model_validate(grid)).check()
    wf = WalkForward.model_validate(walk_forward) if isinstance(walk_forward, dict) else walk_forward
    if split is not None and wf is not None:
        raise ValidationFailed({"split": "choose a split date or rolling walk-forward windows, not both"})
    n = grid.count
    size = max(1, int(chunk_size)) if chunk_size else chunk_size_for(n)
    n_chunks = math.ceil(n / size)
    with unit_of_work() as session:
        write_lock(session)
        principal = resolve(session, actor, ALL_ROLES, action="running sweeps", lock=True)
        if queue:  # the parent run counts as a queued job: refused before anything is written, not after
            ratelimit.check("job", principal)
        ratelimit.hit("sweep", principal)  # per user (core/infra/ratelimit.py); the system is not limited
        base = _base_version(session, config_id)
        inputs = _market(session)
        if inputs.prices.empty:
            raise AutoIndexError("no prices stored; refresh or import market data first")
        _check_split(inputs.prices.index, split, wf)
        rate = risk_free(session).rate
        row = Sweep(
            owner=principal.username,
            config_id=base.id,
            config_label=f"{base.name} v{base.version}",
            base_params=dict(base.params),
            grid=grid.model_dump(mode="json"),
            split_date=split,
            risk_free_rate=rate,
            walk_forward=wf.model_dump() if wf else None,
            n_variants=n,
            n_chunks=n_chunks,
            status="queued",
        )
        session.add(row)
        session.flush()
        sweep_id = row.id
        session.add_all(
            SweepChunk(
                sweep_id=sweep_id, chunk=c, start=c * size, stop=min(n, (c + 1) * size), state="queued", attempts=0
            )
            for c in range(n_chunks)
        )
        session.refresh(row, ["created_at"])
        _adopt(session, row)
        event = AuditEvent(
            actor=principal.username,
            action="sweep.start",
            target=f"sweep {sweep_id}",
            detail={"config_id": base.id, "variants": n, "fields": grid.columns, "queued": queue},
        )
        session.add(event)  # kept to be marked when the queue refuses the sweep below
        session.flush()
        event_id = event.id
        session.commit()
    if not queue:
        drive(sweep_id, worker=workers.worker_identity()["worker_id"], progress=progress)
        return get_sweep(sweep_id, actor)
    runs.enqueue_for(
        "sweep", {"sweep_id": sweep_id}, user=actor, huey=huey, row=Sweep, row_id=sweep_id, audit_event_id=event_id
    )
    return get_sweep(sweep_id, actor)


def _base_version(session: Session, config_id: int | None) -> StrategyConfigRow:
    if config_id is None:
        row = session.scalar(select(StrategyConfigRow).where(StrategyConfigRow.is_active.is_(True)))
        if row is None:
            raise NotFoundError("no active strategy config; choose a version with --config")
        return row
    row = session.get(StrategyConfigRow, config_id) if id_in_range(config_id) else None
    if row is None:
        raise ValidationFailed({"config": f"no strategy config with id {config_id}"})
    return row


def _check_split(dates: pd.DatetimeIndex, split: dt.date | None, wf: WalkForward | None) -> None:
    if split is not None:
        when = pd.Timestamp(split)
        if not dates[0] < when < dates[-1]:
            raise ValidationFailed(
                {"split": f"must fall inside the prices ({dates[0].date()} .. {dates[-1].date()}); got {split}"}
            )
    if wf is not None and not walk_forward_windows(dates, wf.train_years, wf.test_months, wf.step_months):
        raise ValidationFailed(
            {
                "walk_forward": f"the prices ({dates[0].date()} .. {dates[-1].date()}) are too short "
                f"for {wf.train_years:g} years of training and {wf.test_months} "
                "months of testing"
            }
        )


# --------------------------------------------------------------------------- market inputs, per process
_cache: dict[str, Any] = {}


def _market(session: Session, sweep: Sweep | None = None) -> MarketInputs:
    """The market inputs, loaded once per process for a sweep and data version (its chunks read the same prices).

    The key names the database, its data version and the sweep (id and creation time): a database recreated with
    the same data version (tests truncate and reseed) is never served another's prices."""
    key = (
        get_settings().effective_database_url,
        app_settings.data_version(session),
        (sweep.id, str(sweep.created_at)) if sweep is not None else None,
    )
    if _cache.get("key") != key:
        _cache.clear()
        _cache.update(key=key, inputs=load_market_inputs(session))
    return cast(MarketInputs, _cache["inputs"])


def _adopt(session: Session, sweep: Sweep) -> None:
    """The inputs :func:`start` just read (same transaction) become the new sweep's."""
    key = _cache.get("key")
    if key is not None and key[2] is None:
        _cache["key"] = (key[0], key[1], (sweep.id, str(sweep.created_at)))


def _shared_cleaning(inputs: MarketInputs) -> SharedCleaning:
    shared = _cache.get("cleaning")
    if shared is None or shared.prices is not inputs.prices:
        shared = _cache["cleaning"] = SharedCleaning(inputs.prices)
    return cast(SharedCleaning, shared)


# --------------------------------------------------------------------------- one variant's metrics
def _window_metrics(
    values: pd.Series, run: BacktestRun, lo: pd.Timestamp | None, hi: pd.Timestamp | None, rf: float = 0.0
) -> dict[str, float | None]:
    """The Summary metrics of the levels in ``[lo, hi]``, turnover per year and costs of the rebalances after ``lo``
    (the first allocation counts when the window starts with the index)."""
    v = values
    if lo is not None:
        v = v[v.index >= lo]
    if hi is not None:
        v = v[v.index <= hi]
    m = risk_metrics(v, rf=rf)
    out: dict[str, float | None] = {k: finite_or_none(m.get(k)) for k in RISK_KEYS}
    reb_t, reb_c = run.result.turnover, run.result.costs
    in_window = np.ones(len(reb_t), dtype=bool)
    if lo is not None and len(values) and lo > values.index[0]:
        in_window &= reb_t.index > lo
    if hi is not None:
        in_window &= reb_t.index <= hi
    years = (v.index[-1] - v.index[0]).days / 365.25 if len(v) >= 2 else 0.0
    out["turnover"] = float(reb_t[in_window].sum()) / years if years > 0 else None
    out["costs"] = float(reb_c[in_window].sum())
    return out


def variant_metrics(
    run: BacktestRun, split: dt.date | None = None, windows: Sequence[Any] = (), rf: float = 0.0
) -> dict[str, Any]:
    """The stored metrics of one variant (docs/methodology.md, "Research: parameter sweeps").

    No split: the Summary keys over the whole index, ``turnover`` per year and ``costs`` summed (as
    :class:`BacktestRun` gives them). A split date: the same keys prefixed ``is_`` (levels up to the date) and
    ``oos_`` (from the date's level on). Rolling windows: ``is_`` keys are the mean over the training windows,
    ``oos_`` keys those of the test windows' returns stitched together. ``_stats`` keeps what the deflated Sharpe
    needs of the excess returns (over ``rf``, the sweep's annual risk-free rate) the ranking uses (out-of-sample
    with a split, else all); ``_windows`` each window's
    in-sample Sharpe and out-of-sample return (the walk-forward selection).
    """
    values = run.values
    rf_d = daily_rf(rf)
    if split is None and not windows:
        out: dict[str, Any] = {k: finite_or_none(run.metrics.get(k)) for k in RISK_KEYS}
        out["turnover"] = run.turnover_per_year
        out["costs"] = run.total_costs
        out["_stats"] = return_stats(values.pct_change().to_numpy()[1:] - rf_d).as_dict()
        return out
    out = {}
    if split is not None:
        cut = pd.Timestamp(split)
        is_values = values[values.index <= cut]
        oos_from = is_values.index[-1] if len(is_values) else None
        ins = _window_metrics(values, run, None, cut, rf)
        oos = _window_metrics(values, run, oos_from, None, rf)
        oos_values = values[values.index >= oos_from] if oos_from is not None else values
        stats = return_stats(oos_values.pct_change().to_numpy()[1:] - rf_d)
        out.update({f"is_{k}": v for k, v in ins.items()} | {f"oos_{k}": v for k, v in oos.items()})
        out["_stats"] = dict(stats.as_dict())
        return out
    per_window = [
        (
            _window_metrics(values, run, w.train_start, w.train_end, rf),
            _window_metrics(values, run, w.train_end, w.test_end, rf),
        )
        for w in windows
    ]
    out = {}
    for k in METRIC_KEYS:
        numbers = [float(x) for m, _ in per_window if (x := m[k]) is not None]
        out[f"is_{k}"] = float(np.mean(numbers)) if numbers else None
    pieces = []
    for w in windows:
        segment = values[(values.index >= w.train_end) & (values.index <= w.test_end)]
        pieces.append(segment.pct_change().iloc[1:])
    returns = pd.concat(pieces) if pieces else pd.Series(dtype=float)
    returns = returns[~returns.index.duplicated(keep="first")].dropna()
    stitched = (
        pd.concat([pd.Series([1.0], index=[returns.index[0] - pd.Timedelta(days=1)]), (1.0 + returns).cumprod()])
        if len(returns)
        else pd.Series(dtype=float)
    )
    m = risk_metrics(stitched, rf=rf)
    for k in RISK_KEYS:
        out[f"oos_{k}"] = finite_or_none(m.get(k))
    years = sum((w.test_end - w.train_end).days for w in windows) / 365.25
    out["oos_turnover"] = (
        sum(
            o["turnover"] * (w.test_end - w.train_end).days / 365.25
            for (_, o), w in zip(per_window, windows)
            if o["turnover"] is not None
        )
        / years
        if years > 0
        else None
    )
    out["oos_costs"] = float(sum(o["costs"] or 0.0 for _, o in per_window))
    out["_stats"] = return_stats(returns.to_numpy() - rf_d).as_dict()
    out["_windows"] = [[i["sharpe"], o["total_return"]] for i, o in per_window]
    return out


# --------------------------------------------------------------------------- chunks
def _claim(sweep_id: int, worker: str | None, now: dt.datetime | None = None) -> tuple[int, str] | None:
    """Claim the first queued chunk of a running sweep: ``(chunk id, token)``, or None when none is left."""
    for _ in range(20):  # another worker may take the chunk between the read and the update: try the next
        with unit_of_work() as session:
            status = session.scalar(select(Sweep.status).where(Sweep.id == sweep_id))
            if status != "running":
                return None
            chunk_id = session.scalar(
                select(SweepChunk.id)
                .where(SweepChunk.sweep_id == sweep_id, SweepChunk.state == "queued")
                .order_by(SweepChunk.chunk)
                .limit(1)
            )
            if chunk_id is None:
                return None
            token = uuid.uuid4().hex
            taken = session.execute(
                update(SweepChunk)
                .where(SweepChunk.id == chunk_id, SweepChunk.state == "queued")
                .values(
                    state="running",
                    token=token,
                    worker=worker,
                    attempts=SweepChunk.attempts + 1,
                    started_at=now or utcnow(),
                )
            )
            session.commit()
            if cast(Any, taken).rowcount == 1:
                return chunk_id, token
    return None


def _release(chunk_id: int, token: str) -> None:
    """Give a claimed chunk back to the queue (its attempt failed before storing)."""
    with unit_of_work() as session:
        session.execute(
            update(SweepChunk)
            .where(SweepChunk.id == chunk_id, SweepChunk.token == token, SweepChunk.state == "running")
            .values(state="queued", token=None, worker=None)
        )
        session.commit()


def run_chunk(chunk_id: int, token: str) -> int:
    """Compute the variants of a claimed chunk and store them with the chunk's completion; return how many were
    stored (0 when the claim was taken over meanwhile: another attempt stores them)."""
    started = time.perf_counter()
    with unit_of_work() as session:
        chunk = session.get(SweepChunk, chunk_id)
        if chunk is None:
            return 0
        sweep = session.get(Sweep, chunk.sweep_id)
        if sweep is None:
            return 0
        grid = Grid.model_validate(sweep.grid)
        base, lo, hi, split, wf = dict(sweep.base_params), chunk.start, chunk.stop, sweep.split_date, sweep.walk_forward
        rf = float(sweep.risk_free_rate)
        sweep_id = chunk.sweep_id
        inputs = _market(session, sweep)
    windows = (
        []
        if wf is None
        else walk_forward_windows(inputs.prices.index, wf["train_years"], wf["test_months"], wf.get("step_months"))
    )
    rows = _compute_variants(grid, base, range(lo, hi), inputs, split, windows, rf)
    with unit_of_work() as session:
        write_lock(session)
        done = session.execute(
            update(SweepChunk)
            .where(SweepChunk.id == chunk_id, SweepChunk.token == token, SweepChunk.state == "running")
            .values(state="done", finished_at=utcnow(), duration_s=time.perf_counter() - started)
        )
        if cast(Any, done).rowcount != 1:
            session.rollback()
            log.warning("sweep chunk %s: the claim was taken over; its results were not stored", chunk_id)
            return 0
        session.add_all(SweepVariant(sweep_id=sweep_id, **row) for row in rows)
        session.commit()
    return len(rows)


def _compute_variants(
    grid: Grid,
    base: dict[str, Any],
    numbers: range,
    inputs: MarketInputs,
    split: dt.date | None,
    windows: Sequence[Any],
    rf: float,
) -> list[dict[str, Any]]:
    """One row per variant (``variant``, ``params``, ``error``, ``metrics``), sharing the cleaning and signals."""
    shared = _shared_cleaning(inputs)
    for cleaned in shared._by_key.values():  # noqa: SLF001 - the signals memo is per chunk (bounded memory)
        cleaned.memo.clear()
    overrides = [grid.variant(n) for n in numbers]
    configs: list[StrategyConfig | None] = []
    errors: dict[int, str] = {}
    for i, fields in enumerate(overrides):
        try:
            configs.append(StrategyConfig.model_validate({**base, **fields}))
        except Exception as exc:  # noqa: BLE001 - pydantic's ValidationError (or a TypeError): the variant's error
            configs.append(None)
            errors[i] = _schema_error(exc)
    rows: dict[int, dict[str, Any]] = {}
    for i in batch_order(configs):
        metrics, error = None, errors.get(i)
        cfg = configs[i]
        if cfg is not None:
            try:
                run = run_backtest(cfg, inputs, cleaned=shared.for_config(cfg), rf=rf)
                metrics = variant_metrics(run, split, windows, rf)
            except AutoIndexError as exc:
                error = error_text(exc)
        rows[i] = {"variant": numbers[i], "params": overrides[i], "error": error, "metrics": metrics}
    return [rows[i] for i in range(len(overrides))]


def _schema_error(exc: Exception) -> str:
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        return "; ".join(f"{field}: {message}" for field, message in errors_by_field(exc).items())
    return f"{type(exc).__name__}: {exc}"


# --------------------------------------------------------------------------- driving a sweep
def _set_status(sweep_id: int, status: str, from_states: tuple[str, ...], **values: Any) -> bool:
    with unit_of_work() as session:
        changed = session.execute(
            update(Sweep).where(Sweep.id == sweep_id, Sweep.status.in_(from_states)).values(status=status, **values)
        )
        session.commit()
        return bool(cast(Any, changed).rowcount)


def _requeue_stale(sweep_id: int, *, me: str | None, now: dt.datetime | None = None) -> list[int]:
    """Put back the running chunks whose worker is dead (or unknown for more than STALE_GRACE_S); return them."""
    now = now or utcnow()
    alive = {w.worker_id for w in workers.workers_status(now=now) if w.alive}
    if me:
        alive.add(me)
    with unit_of_work() as session:
        rows = session.execute(
            select(
                SweepChunk.id, SweepChunk.token, SweepChunk.worker, SweepChunk.started_at, SweepChunk.attempts
            ).where(SweepChunk.sweep_id == sweep_id, SweepChunk.state == "running")
        ).all()
    requeued = []
    for chunk_id, token, worker, started_at, attempts in rows:
        if worker in alive or token is None:
            continue
        if (
            started_at is not None
            and (now - runs.as_utc(started_at)).total_seconds() < STALE_GRACE_S
            and (worker is None or not _known_worker(worker))
        ):
            continue  # a worker that has not written its first heartbeat yet: given STALE_GRACE_S to write it
        if attempts >= MAX_CHUNK_ATTEMPTS:
            raise AutoIndexError(
                f"sweep {sweep_id}: a chunk was lost {attempts} times with its worker; "
                "the sweep stops (check the workers' memory and logs)"
            )
        _release(chunk_id, token)
        requeued.append(chunk_id)
        log.warning("sweep %s: chunk %s re-queued (worker %s is gone)", sweep_id, chunk_id, worker)
    return requeued


def _known_worker(worker: str) -> bool:
    """A worker with a heartbeat row (alive or not); an unknown one may not have written its first beat yet."""
    return any(w.worker_id == worker for w in workers.workers_status())


def _counts(sweep_id: int) -> dict[str, int]:
    with unit_of_work() as session:
        pairs = session.execute(
            select(SweepChunk.state, func.count(SweepChunk.id))
            .where(SweepChunk.sweep_id == sweep_id)
            .group_by(SweepChunk.state)
        ).all()
    return {str(state): int(n) for state, n in pairs}


def help_with(sweep_id: int, *, worker: str | None) -> int:
    """A helper job's body: claim and run chunks of ``sweep_id`` until none is queued; return how many it stored.
    The last chunk stored finishes the sweep (also when its parent run was lost with its worker)."""
    stored = 0
    while (claim := _claim(sweep_id, worker)) is not None:
        chunk_id, token = claim
        try:
            stored += run_chunk(chunk_id, token)
        except Exception:
            _release(chunk_id, token)
            raise
    if _counts(sweep_id).keys() == {"done"}:
        finish(sweep_id)
    return stored


def drive(
    sweep_id: int,
    *,
    worker: str | None,
    progress: Progress | None = None,
    fan_out: Callable[[int], None] | None = None,
    poll_s: float = 0.2,
    run_id: int | None = None,
) -> dict[str, Any]:
    """The parent run's body: fan out ``fan_out(n)`` helper jobs, then run chunks here as well, re-queue the chunks
    of dead workers, report progress, and finish the sweep; return its summary. A sweep that is already finished
    (a retried parent) returns at once; a cancelled one stops before its next chunk. ``run_id`` (the parent run)
    becomes the sweep's ``task_run_id``: the run a cancel reaches and whose death fails the sweep."""
    report = progress or (lambda _f, _m: None)
    linked = {"task_run_id": run_id} if run_id is not None else {}
    if not _set_status(sweep_id, "running", ("queued", "running", "failed"), error=None, finished_at=None, **linked):
        return _final_result(sweep_id)
    with unit_of_work() as session:
        n_chunks = int(session.scalar(select(Sweep.n_chunks).where(Sweep.id == sweep_id)) or 0)
    if fan_out is not None and n_chunks > 1:
        fan_out(min(n_chunks - 1, MAX_HELPERS))
    try:
        while True:
            claim = _claim(sweep_id, worker)
            if claim is not None:
                chunk_id, token = claim
                try:
                    run_chunk(chunk_id, token)
                except Exception:
                    _release(chunk_id, token)
                    raise
            counts = _counts(sweep_id)
            done = counts.get("done", 0)
            report(done / n_chunks if n_chunks else 1.0, f"{done} of {n_chunks} chunks stored")
            if done == n_chunks:
                return finish(sweep_id)
            if _status(sweep_id) != "running":
                return _final_result(sweep_id)
            if claim is None:
                _requeue_stale(sweep_id, me=worker)
                time.sleep(poll_s)
    except Exception as exc:
        _set_status(sweep_id, "failed", ("running",), error=error_text(exc), finished_at=utcnow())
        raise


def _status(sweep_id: int) -> str | None:
    with unit_of_work() as session:
        return session.scalar(select(Sweep.status).where(Sweep.id == sweep_id))


def _final_result(sweep_id: int) -> dict[str, Any]:
    with unit_of_work() as session:
        row = session.get(Sweep, sweep_id)
        if row is None:
            raise NotFoundError(f"no sweep with id {sweep_id}")
        return {
            "sweep_id": sweep_id,
            "status": row.status,
            "variants": row.n_variants,
            "stored": _done_count(session, sweep_id),
            **(row.summary or {}),
        }


def finish(sweep_id: int) -> dict[str, Any]:
    """running (or failed: its parent run died while a helper stored the last chunk) -> succeeded with its summary
    (once, whoever stores the last chunk); return the result summary. Call it when every chunk is done."""
    frame = _frame(sweep_id)
    summary = _summary(frame, sweep_id)
    _set_status(sweep_id, "succeeded", ("running", "failed"), finished_at=utcnow(), summary=summary, error=None)
    return _final_result(sweep_id)


# --------------------------------------------------------------------------- reading
def _visible(session: Session, sweep_id: int, viewer: Any) -> tuple[Sweep, Principal]:
    principal = resolve(session, viewer, ALL_ROLES, action="reading sweeps")
    row = session.get(Sweep, sweep_id) if id_in_range(sweep_id) else None
    if row is None or not owns(principal, row.owner):
        raise NotFoundError(f"no sweep with id {sweep_id}")
    return row, principal


def get_sweep(sweep_id: int, viewer: Any) -> SweepOut:
    """One sweep (NotFoundError for a sweep the viewer may not see) with how many variants are stored."""
    with unit_of_work() as session:
        row, _ = _visible(session, sweep_id, viewer)
        return _out(row, _done_count(session, sweep_id))


def list_sweeps(viewer: Any, limit: int = 50) -> list[SweepOut]:
    """Sweeps newest first: an analyst's own, or everyone's for an admin."""
    with unit_of_work() as session:
        principal = resolve(session, viewer, ALL_ROLES, action="reading sweeps")
        q = visible_to(select(Sweep), Sweep.owner, principal).order_by(Sweep.created_at.desc(), Sweep.id.desc())
        rows = session.scalars(q.limit(max(1, min(int(limit), 500)))).all()
        counts = (
            dict(
                session.execute(
                    select(SweepVariant.sweep_id, func.count(SweepVariant.id))
                    .where(SweepVariant.sweep_id.in_([r.id for r in rows]))
                    .group_by(SweepVariant.sweep_id)
                ).all()
            )
            if rows
            else {}
        )
        return [_out(r, int(counts.get(r.id, 0))) for r in rows]


def _frame(sweep_id: int) -> pd.DataFrame:
    with unit_of_work() as session:
        sweep = session.get(Sweep, sweep_id)
        if sweep is None:
            raise NotFoundError(f"no sweep with id {sweep_id}")
        grid = Grid.model_validate(sweep.grid)
        has_split = sweep.split_date is not None or sweep.walk_forward is not None
        rows = session.execute(
            select(SweepVariant.variant, SweepVariant.params, SweepVariant.error, SweepVariant.metrics)
            .where(SweepVariant.sweep_id == sweep_id)
            .order_by(SweepVariant.variant)
        ).all()
    keys = [f"{p}{k}" for p in ("is_", "oos_") for k in METRIC_KEYS] if has_split else list(METRIC_KEYS)
    records = []
    stats: list[ReturnStats | None] = []
    windows: list[Any] = []
    for variant, params, error, metrics in rows:
        record: dict[str, Any] = {"variant": int(variant)}
        record.update({c: (params or {}).get(c) for c in grid.columns})
        record["error"] = error
        m = metrics or {}
        record.update({k: m.get(k) for k in keys})
        s = m.get("_stats")
        stats.append(_stats_of(s) if s else None)
        windows.append(m.get("_windows"))
        records.append(record)
    columns = ["variant", *grid.columns, "error", *keys]
    frame = pd.DataFrame.from_records(records, columns=columns)
    for k in keys:
        frame[k] = pd.to_numeric(frame[k], errors="coerce")
    sharpes = np.array([s.sharpe if s is not None else math.nan for s in stats], dtype=float)
    finite = np.isfinite(sharpes)
    n_trials = int(finite.sum())
    variance = float(np.var(sharpes[finite], ddof=1)) if n_trials >= 2 else 0.0
    frame["deflated_sharpe"] = [deflated_sharpe(s, n_trials, variance) if s is not None else math.nan for s in stats]
    frame.attrs.update(n_trials=n_trials, sr_variance=variance, has_split=has_split, windows=windows)
    return frame


def _stats_of(stored: dict[str, Any]) -> ReturnStats:
    def number(key: str) -> float:
        value = stored.get(key)
        return math.nan if value is None else float(value)

    return ReturnStats(number("sr"), number("skew"), number("kurt"), int(stored.get("n") or 0))


def _summary(frame: pd.DataFrame, sweep_id: int) -> dict[str, Any]:
    rank = "oos_sharpe" if frame.attrs.get("has_split") else "sharpe"
    ok = frame[frame["error"].isna() & frame[rank].notna()] if len(frame) else frame
    best = ok.sort_values([rank, "variant"], ascending=[False, True]).head(1)
    summary: dict[str, Any] = {
        "n_trials": frame.attrs.get("n_trials", 0),
        "sr_variance": frame.attrs.get("sr_variance"),
        "errors": int(frame["error"].notna().sum()) if len(frame) else 0,
        "ranked_by": rank,
    }
    if len(best):
        summary.update(
            best_variant=int(best["variant"].iloc[0]),
            best_sharpe=finite_or_none(best[rank].iloc[0]),
            best_deflated_sharpe=finite_or_none(best["deflated_sharpe"].iloc[0]),
        )
    windows = [w for w in frame.attrs.get("windows", []) if w]
    if windows and len(windows) == len(frame):
        selection = _walk_forward_selection(frame["variant"].tolist(), frame.attrs["windows"])
        if selection:
            summary["walk_forward"] = selection
    return summary


def _walk_forward_selection(variants: list[int], windows: list[Any]) -> dict[str, Any] | None:
    """Walk-forward optimisation: in each window the variant with the best in-sample Sharpe, and the test return it
    earned; the stitched out-of-sample return of that policy."""
    lengths = {len(w) for w in windows if w}
    if len(lengths) != 1:
        return None
    picks, growth = [], 1.0
    for k in range(lengths.pop()):
        candidates = [
            (w[k][0], -v, w[k][1])
            for v, w in zip(variants, windows)
            if w and w[k][0] is not None and w[k][1] is not None
        ]
        if not candidates:
            return None
        sharpe, neg_variant, test_return = max(candidates)
        picks.append({"window": k, "variant": -neg_variant, "is_sharpe": sharpe, "oos_return": test_return})
        growth *= 1.0 + test_return
    return {"picks": picks, "oos_total_return": growth - 1.0}


def results(sweep_id: int, viewer: Any) -> pd.DataFrame:
    """One row per stored variant: ``variant``, the swept fields, ``error``, the metrics (``is_``/``oos_`` with a
    split) and ``deflated_sharpe``; ranked by out-of-sample (or full-period) Sharpe, errors last."""
    with unit_of_work() as session:
        _visible(session, sweep_id, viewer)
    frame = _frame(sweep_id)
    rank = "oos_sharpe" if frame.attrs.get("has_split") else "sharpe"
    frame.insert(1, "rank", frame[rank].rank(ascending=False, method="first"))
    return frame


def export_table(sweep_id: int, viewer: Any) -> pd.DataFrame:
    """The CSV/XLSX table (issue 14): one row per variant in variant order; ``deflated_sharpe`` only with a split.

    Text cells (values typed into the grid, variant errors quoting them) are made inert for spreadsheets
    (:mod:`core.services.reporting.formula_guard`): ``rebalance==HYPERLINK(...)`` is a value a user can sweep."""
    frame = results(sweep_id, viewer).drop(columns=["rank"])
    if not frame.attrs.get("has_split"):
        frame = frame.drop(columns=["deflated_sharpe"])
    return neutralise_frame(frame)


def export_csv(sweep_id: int, viewer: Any) -> bytes:
    buffer = io.StringIO()
    export_table(sweep_id, viewer).to_csv(buffer, index=False)  # shortest exact repr of every float
    return buffer.getvalue().encode()


def export_xlsx(sweep_id: int, viewer: Any) -> bytes:
    buffer = io.BytesIO()
    table = export_table(sweep_id, viewer)
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        table.to_excel(writer, sheet_name="Variants", index=False)
    return buffer.getvalue()


# --------------------------------------------------------------------------- actions
def cancel(sweep_id: int, actor: Any, *, huey: Any = None) -> SweepOut:
    """Stop a queued or running sweep: no chunk starts any more (the running ones finish and are kept) and its
    parent run ends cancelled. The owner or an admin."""
    with unit_of_work() as session:
        row, principal = _visible(session, sweep_id, actor)
        if row.status not in ("queued", "running"):
            raise ValidationFailed(
                {"sweep": f"sweep {sweep_id} is {row.status}; only queued or running sweeps can be cancelled"}
            )
        run_id = row.task_run_id
        run_state = session.scalar(select(TaskRun.state).where(TaskRun.id == run_id)) if run_id else None
    if run_id and run_state in ("queued", "retrying"):
        runs.cancel(run_id, actor, huey=huey)
    if not _set_status(
        sweep_id, "cancelled", ("queued", "running"), finished_at=utcnow(), error=f"cancelled by {principal.username}"
    ):
        # it finished (its last chunk stored) or failed between the read above and here: its run is left alone
        raise ValidationFailed(
            {"sweep": f"sweep {sweep_id} is {_status(sweep_id)}; only queued or running sweeps can be cancelled"}
        )
    if run_id and run_state == "running":
        # the runs service cancels only waiting runs; a running sweep stops at its next chunk, decided here
        with unit_of_work() as session:
            session.execute(
                update(TaskRun)
                .where(TaskRun.id == run_id, TaskRun.state == "running")
                .values(state="cancelled", message=f"cancelled by {principal.username}", finished_at=utcnow())
            )
            session.commit()
    audit.record_now(principal.username, "sweep.cancel", f"sweep {sweep_id}")
    return get_sweep(sweep_id, actor)


def variant_params(sweep_id: int, variant: int, viewer: Any) -> dict[str, Any]:
    """The full parameters of a stored variant without an error (the base version's, with the variant's fields)."""
    with unit_of_work() as session:
        sweep, _ = _visible(session, sweep_id, viewer)
        row = session.scalar(
            select(SweepVariant).where(SweepVariant.sweep_id == sweep_id, SweepVariant.variant == variant)
        )
        if row is None:
            raise ValidationFailed({"variant": f"sweep {sweep_id} has no stored variant {variant}"})
        if row.error:
            raise ValidationFailed({"variant": f"variant {variant} has an error and cannot be used: {row.error}"})
        return {**sweep.base_params, **row.params}


def promote(sweep_id: int, variant: int, actor: Any, *, name: str | None = None) -> ConfigVersionOut:
    """Save a variant as a new version (of the base version's name unless ``name``); its note names the sweep and
    the variant. Not activated: activation stays an admin's decision on the Strategy page."""
    params = variant_params(sweep_id, variant, actor)
    with unit_of_work() as session:
        sweep, _ = _visible(session, sweep_id, actor)
        base_id, label, overrides = (
            sweep.config_id,
            sweep.config_label,
            Grid.model_validate(sweep.grid).variant(variant),
        )
        base_name = (
            session.scalar(select(StrategyConfigRow.name).where(StrategyConfigRow.id == base_id)) if base_id else None
        )
    fields = ", ".join(f"{k}={v}" for k, v in overrides.items())
    note = f"promoted from sweep {sweep_id} (over {label}), variant {variant}: {fields}"[:2000]
    target = (name or base_name or label.rsplit(" v", 1)[0]).strip()
    saved: ConfigVersionOut = strategies.save_version(target, params, note=note, actor=actor, parent_id=base_id)
    return saved


def delete_sweep(sweep_id: int, actor: Any) -> None:
    """Remove a finished sweep and its rows (the owner or an admin)."""
    with unit_of_work() as session:
        row, principal = _visible(session, sweep_id, actor)
        if row.status in ("queued", "running"):
            raise ValidationFailed({"sweep": f"sweep {sweep_id} is {row.status}; cancel it first"})
        for model in (SweepVariant, SweepChunk):  # explicit: SQLite may run without foreign-key cascades
            session.execute(delete(model).where(model.sweep_id == sweep_id))
        session.delete(row)
        audit.record(session, principal.username, "sweep.delete", f"sweep {sweep_id}", {})
        session.commit()
