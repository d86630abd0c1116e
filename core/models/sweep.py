"""Parameter sweeps: the sweep (a grid over a saved version), its chunks (units of work for the workers) and its
variants (one row per grid point: parameters, error, metrics). See :mod:`core.services.sweeps`."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Date, Float, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base, utcnow

SWEEP_STATES = ("queued", "running", "succeeded", "failed", "cancelled")
CHUNK_STATES = ("queued", "running", "done")


class Sweep(Base):
    """A grid over one saved version; owned like a report (analysts see their own, admins all)."""

    __tablename__ = "sweeps"
    __table_args__ = (Index("ix_sweeps_owner_created", "owner", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    owner: Mapped[str] = mapped_column(String(64))
    config_id: Mapped[int | None] = mapped_column(ForeignKey("strategy_configs.id", ondelete="SET NULL"))
    #: The version's name and number when the sweep started (kept when the version is deleted).
    config_label: Mapped[str] = mapped_column(String(120))
    #: The base parameters every variant starts from (a copy: later versions change nothing here).
    base_params: Mapped[dict[str, Any]]
    #: The grid: ``{"axes": [{"name": ..., "values": [...]}, ...]}`` (core.schemas.sweep.Grid).
    grid: Mapped[dict[str, Any]]
    split_date: Mapped[dt.date | None] = mapped_column(Date)
    #: Rolling walk-forward: ``{"train_years": ..., "test_months": ..., "step_months": ...}`` or None.
    walk_forward: Mapped[dict[str, Any] | None]
    #: The annual risk-free rate of every variant's Sharpe, Sortino and deflated Sharpe, fixed when the sweep starts
    #: (core.services.market.risk_free: RISK_FREE_RATE or RISK_FREE_SYMBOL's average yield), so that inline and
    #: queued chunks, and chunks retried after a settings change, give the same numbers.
    risk_free_rate: Mapped[float] = mapped_column(Float, default=0.0)
    n_variants: Mapped[int]
    n_chunks: Mapped[int]
    status: Mapped[str] = mapped_column(String(16), default="queued")
    task_run_id: Mapped[int | None] = mapped_column(ForeignKey("task_runs.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    #: Written when the last chunk is stored: trials, best variants, walk-forward selection.
    summary: Mapped[dict[str, Any] | None]


class SweepChunk(Base):
    """Variants ``[start, stop)`` of a sweep: claimed by one worker at a time (``token``), stored at once."""

    __tablename__ = "sweep_chunks"
    __table_args__ = (UniqueConstraint("sweep_id", "chunk"), Index("ix_sweep_chunks_sweep_state", "sweep_id", "state"))

    id: Mapped[int] = mapped_column(primary_key=True)
    sweep_id: Mapped[int] = mapped_column(ForeignKey("sweeps.id", ondelete="CASCADE"))
    chunk: Mapped[int]
    start: Mapped[int]
    stop: Mapped[int]
    state: Mapped[str] = mapped_column(String(16), default="queued")
    #: The claim of the attempt now running; a late writer with another token stores nothing.
    token: Mapped[str | None] = mapped_column(String(32))
    worker: Mapped[str | None] = mapped_column(String(128))
    attempts: Mapped[int] = mapped_column(default=0)
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]
    duration_s: Mapped[float | None] = mapped_column(Float)


class SweepVariant(Base):
    """One grid point's result: the swept fields' values, the schema's or engine's error, the metrics."""

    __tablename__ = "sweep_variants"
    __table_args__ = (UniqueConstraint("sweep_id", "variant"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sweep_id: Mapped[int] = mapped_column(ForeignKey("sweeps.id", ondelete="CASCADE"))
    variant: Mapped[int]
    params: Mapped[dict[str, Any]]
    error: Mapped[str | None] = mapped_column(Text)
    metrics: Mapped[dict[str, Any] | None]
