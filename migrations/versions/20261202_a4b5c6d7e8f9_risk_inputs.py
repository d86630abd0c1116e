"""factor series, dividends and benchmark blends (issue 15)

* ``dividends``: cash dividend per share of an asset going ex on a date; the total-return basis reinvests it
  (core.quant.engine.total_return_prices).
* ``factor_values``: imported daily factor series (``date, factor, value`` files, e.g. Fama-French), grouped in
  named factor sets; the demo's synthetic set is flagged ``is_demo``.
* Benchmark blends, comparisons, caps, exclusions and the price basis live in the config's params (JSON): no
  column is needed for them.

Revision ID: a4b5c6d7e8f9
Revises: f3a4b5c6d7e8
Create Date: 2026-12-02 10:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a4b5c6d7e8f9"
down_revision: str | None = "f3a4b5c6d7e8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dividends",
        sa.Column("asset_id", sa.Integer(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("dividend", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["asset_id"], ["assets.id"], name=op.f("fk_dividends_asset_id_assets"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("asset_id", "date", name=op.f("pk_dividends")),
    )
    op.create_table(
        "factor_values",
        sa.Column("factor_set", sa.String(64), nullable=False),
        sa.Column("factor", sa.String(32), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("is_demo", sa.Boolean(), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("factor_set", "factor", "date", name=op.f("pk_factor_values")),
    )


def downgrade() -> None:
    op.drop_table("factor_values")
    op.drop_table("dividends")
