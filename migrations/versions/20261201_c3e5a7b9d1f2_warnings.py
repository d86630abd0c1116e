"""runs that succeed with warnings, and the warnings of a config version's last compute

* ``task_runs.state`` gains ``succeeded_with_warnings`` (a refresh that skipped symbols a real provider does not
  know); the column widens from 16 to 32 characters to hold it.
* ``strategy_configs.compute_warnings``: the engine's warnings of the version's last stored compute (a sleeve
  left out for want of market caps, ...), shown on the Dashboard. NULL until the version is computed again.

Revision ID: c3e5a7b9d1f2
Revises: b7d9e1f3a5c6
Create Date: 2026-12-01 10:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "c3e5a7b9d1f2"
down_revision: str | None = "b7d9e1f3a5c6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD = "state IN ('queued','running','succeeded','failed','retrying','cancelled','skipped')"
_NEW = ("state IN ('queued','running','succeeded','succeeded_with_warnings','failed','retrying','cancelled',"
        "'skipped')")


def upgrade() -> None:
    with op.batch_alter_table("task_runs") as batch_op:
        batch_op.drop_constraint(op.f("ck_task_runs_state"), type_="check")
        batch_op.alter_column("state", existing_type=sa.String(16), type_=sa.String(32),
                              existing_nullable=False)
        batch_op.create_check_constraint("state", _NEW)
    with op.batch_alter_table("strategy_configs") as batch_op:
        batch_op.add_column(sa.Column("compute_warnings", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
                                      nullable=True))


def downgrade() -> None:
    op.execute("UPDATE task_runs SET state = 'succeeded' WHERE state = 'succeeded_with_warnings'")
    with op.batch_alter_table("strategy_configs") as batch_op:
        batch_op.drop_column("compute_warnings")
    with op.batch_alter_table("task_runs") as batch_op:
        batch_op.drop_constraint(op.f("ck_task_runs_state"), type_="check")
        batch_op.alter_column("state", existing_type=sa.String(32), type_=sa.String(16), existing_nullable=False)
        batch_op.create_check_constraint("state", _OLD)
