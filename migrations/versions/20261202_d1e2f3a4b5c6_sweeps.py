"""parameter sweeps (issue 14)

Placeholder in the revision chain, filled in by the issue's work (no schema change yet).

Revision ID: d1e2f3a4b5c6
Revises: c3e5a7b9d1f2
Create Date: 2026-12-02 10:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

revision: str = "d1e2f3a4b5c6"
down_revision: str | None = "c3e5a7b9d1f2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
