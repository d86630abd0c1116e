"""users.credential_version: bumped by a password change or reset, a role change, deactivation and logout

Every re-authentication cookie and every session carries the version it was issued under; a mismatch ends it.

Revision ID: a1c3e5f7b9d2
Revises: 4d62d19a1fa2
Create Date: 2026-11-29 01:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a1c3e5f7b9d2"
down_revision: str | None = "4d62d19a1fa2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("credential_version", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("credential_version")
