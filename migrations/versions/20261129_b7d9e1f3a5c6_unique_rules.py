"""one active strategy version and case-insensitive user names and emails, enforced by the schema

Revision ID: b7d9e1f3a5c6
Revises: a1c3e5f7b9d2
Create Date: 2026-11-29 02:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b7d9e1f3a5c6"
down_revision: str | None = "a1c3e5f7b9d2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # keep only the newest active version should an older database hold several (the rule was not enforced)
    op.execute("UPDATE strategy_configs SET is_active = false WHERE is_active AND id <> "
               "(SELECT max(id) FROM strategy_configs WHERE is_active)")
    op.create_index("uq_strategy_configs_one_active", "strategy_configs", ["is_active"], unique=True,
                    sqlite_where=sa.text("is_active"), postgresql_where=sa.text("is_active"))
    op.create_index("uq_users_username_lower", "users", [sa.text("lower(username)")], unique=True)
    op.create_index("uq_users_email_lower", "users", [sa.text("lower(email)")], unique=True)


def downgrade() -> None:
    op.drop_index("uq_users_email_lower", table_name="users")
    op.drop_index("uq_users_username_lower", table_name="users")
    op.drop_index("uq_strategy_configs_one_active", table_name="strategy_configs")
