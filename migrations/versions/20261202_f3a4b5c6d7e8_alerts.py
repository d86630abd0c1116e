"""alert notifications (issue 16)

``alert_notifications``: one row per alert that fired, keyed by rule and episode (unique), so that a firing alert
is sent once whichever process evaluates the rules; status, attempts and the outcome per channel.

Revision ID: f3a4b5c6d7e8
Revises: e2f3a4b5c6d7
Create Date: 2026-12-02 10:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import core.models.base

revision: str = "f3a4b5c6d7e8"
down_revision: str | None = "e2f3a4b5c6d7"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alert_notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("rule", sa.String(length=32), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("first_at", core.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_attempt_at", core.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("sent_at", core.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("channels", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                  nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_notifications")),
        sa.UniqueConstraint("key", name=op.f("uq_alert_notifications_key")),
    )


def downgrade() -> None:
    op.drop_table("alert_notifications")
