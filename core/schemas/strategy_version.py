"""Saved strategy config versions as they leave the services."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict


class ConfigVersionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    version: int
    params: dict[str, Any]
    note: str | None
    is_active: bool
    created_by: str | None
    created_at: dt.datetime
    parent_id: int | None
    computed_at: dt.datetime | None

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}" + (" (active)" if self.is_active else "")
