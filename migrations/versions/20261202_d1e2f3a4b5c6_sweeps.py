"""parameter sweeps (issue 14)

``sweeps`` (a grid over a saved version, owned like a report, with its parent task run), ``sweep_chunks`` (the
units of work the workers claim; unique per sweep and chunk number) and ``sweep_variants`` (one result row per
grid point, unique per sweep and variant: stored exactly once).

Revision ID: d1e2f3a4b5c6
Revises: c3e5a7b9d1f2
Create Date: 2026-12-02 10:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import core.models.base

revision: str = "d1e2f3a4b5c6"
down_revision: str | None = "c3e5a7b9d1f2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _utc() -> sa.types.TypeEngine:
    return core.models.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sweeps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("config_id", sa.Integer(), nullable=True),
        sa.Column("config_label", sa.String(length=120), nullable=False),
        sa.Column("base_params", _json(), nullable=False),
        sa.Column("grid", _json(), nullable=False),
        sa.Column("split_date", sa.Date(), nullable=True),
        sa.Column("walk_forward", _json(), nullable=True),
        sa.Column("risk_free_rate", sa.Float(), nullable=False, server_default="0"),
        sa.Column("n_variants", sa.Integer(), nullable=False),
        sa.Column("n_chunks", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("task_run_id", sa.Integer(), nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("finished_at", _utc(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("summary", _json(), nullable=True),
        sa.ForeignKeyConstraint(["config_id"], ["strategy_configs.id"],
                                name=op.f("fk_sweeps_config_id_strategy_configs"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["task_run_id"], ["task_runs.id"],
                                name=op.f("fk_sweeps_task_run_id_task_runs"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sweeps")),
    )
    op.create_index("ix_sweeps_owner_created", "sweeps", ["owner", "created_at"], unique=False)
    op.create_table(
        "sweep_chunks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sweep_id", sa.Integer(), nullable=False),
        sa.Column("chunk", sa.Integer(), nullable=False),
        sa.Column("start", sa.Integer(), nullable=False),
        sa.Column("stop", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("token", sa.String(length=32), nullable=True),
        sa.Column("worker", sa.String(length=128), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("started_at", _utc(), nullable=True),
        sa.Column("finished_at", _utc(), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["sweep_id"], ["sweeps.id"], name=op.f("fk_sweep_chunks_sweep_id_sweeps"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sweep_chunks")),
        sa.UniqueConstraint("sweep_id", "chunk", name=op.f("uq_sweep_chunks_sweep_id")),
    )
    op.create_index("ix_sweep_chunks_sweep_state", "sweep_chunks", ["sweep_id", "state"], unique=False)
    op.create_table(
        "sweep_variants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sweep_id", sa.Integer(), nullable=False),
        sa.Column("variant", sa.Integer(), nullable=False),
        sa.Column("params", _json(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("metrics", _json(), nullable=True),
        sa.ForeignKeyConstraint(["sweep_id"], ["sweeps.id"], name=op.f("fk_sweep_variants_sweep_id_sweeps"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sweep_variants")),
        sa.UniqueConstraint("sweep_id", "variant", name=op.f("uq_sweep_variants_sweep_id")),
    )


def downgrade() -> None:
    op.drop_table("sweep_variants")
    op.drop_index("ix_sweep_chunks_sweep_state", table_name="sweep_chunks")
    op.drop_table("sweep_chunks")
    op.drop_index("ix_sweeps_owner_created", table_name="sweeps")
    op.drop_table("sweeps")
