"""Strategy configs: validated, versioned, one active version app-wide."""
from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update

from core.db import unit_of_work
from core.errors import NotFoundError, ValidationFailed
from core.models import StrategyConfigRow
from core.schemas.strategy import DEFAULT_CONFIG, StrategyConfig, validate_config
from core.schemas.strategy_version import ConfigVersionOut
from core.services import audit

DEFAULT_NAME = "AutoIndex Core"
NAME_MAX = 100


def _out(row: StrategyConfigRow) -> ConfigVersionOut:
    return ConfigVersionOut.model_validate(row, from_attributes=True)


def parse_params(params: dict[str, Any] | StrategyConfig) -> StrategyConfig:
    """Validate params; ValidationFailed maps each bad field to its message."""
    if isinstance(params, StrategyConfig):
        return params
    cfg, errors = validate_config(dict(params))
    if errors or cfg is None:
        raise ValidationFailed(errors or {"config": "invalid"})
    return cfg


def list_versions(name: str | None = None) -> list[ConfigVersionOut]:
    with unit_of_work() as session:
        q = select(StrategyConfigRow).order_by(StrategyConfigRow.name, StrategyConfigRow.version.desc())
        if name:
            q = q.where(StrategyConfigRow.name == name)
        return [_out(r) for r in session.scalars(q)]


def get_version(config_id: int) -> ConfigVersionOut:
    with unit_of_work() as session:
        row = session.get(StrategyConfigRow, config_id)
        if row is None:
            raise NotFoundError(f"no strategy config with id {config_id}")
        return _out(row)


def active_version() -> ConfigVersionOut | None:
    with unit_of_work() as session:
        row = session.scalar(select(StrategyConfigRow).where(StrategyConfigRow.is_active.is_(True)))
        return _out(row) if row else None


def save_version(name: str, params: dict[str, Any] | StrategyConfig, *, note: str | None = None,
                 actor: str | None = None, parent_id: int | None = None, activate: bool = False) -> ConfigVersionOut:
    """Validate and save ``params`` as the next version of ``name``; nothing is written if invalid."""
    errors: dict[str, str] = {}
    name = (name or "").strip()
    if not name or len(name) > NAME_MAX:
        errors["name"] = f"is required (at most {NAME_MAX} characters)"
    if note is not None and len(note) > 2000:
        errors["note"] = "must be at most 2000 characters"
    try:
        cfg = parse_params(params)
    except ValidationFailed as exc:
        errors.update(exc.errors)
        cfg = None
    if errors or cfg is None:
        raise ValidationFailed(errors)
    with unit_of_work() as session:
        version = int(session.scalar(select(func.max(StrategyConfigRow.version)).where(StrategyConfigRow.name == name)) or 0) + 1
        row = StrategyConfigRow(name=name, version=version, params=cfg.model_dump(mode="json"), note=note,
                                created_by=actor, parent_id=parent_id, is_active=False)
        session.add(row)
        session.flush()
        if activate:
            session.execute(update(StrategyConfigRow).values(is_active=False))
            row.is_active = True
        audit.record(session, actor, "config.save", f"{name} v{version}", {"id": row.id, "note": note})
        session.commit()
        return _out(row)


def activate_version(config_id: int, *, actor: str | None = None) -> ConfigVersionOut:
    """Make ``config_id`` the one active version (callers then queue a recompute)."""
    with unit_of_work() as session:
        row = session.get(StrategyConfigRow, config_id)
        if row is None:
            raise NotFoundError(f"no strategy config with id {config_id}")
        session.execute(update(StrategyConfigRow).values(is_active=False))
        row.is_active = True
        audit.record(session, actor, "config.activate", f"{row.name} v{row.version}", {"id": row.id})
        session.commit()
        return _out(row)


def ensure_default_config() -> ConfigVersionOut:
    """Create and activate the shipped default (momentum 0.4, market cap 0.3, risk parity 0.3, weekly) if none exists."""
    existing = active_version()
    if existing:
        return existing
    versions = list_versions()
    if versions:
        return activate_version(versions[0].id, actor="system")
    return save_version(DEFAULT_NAME, DEFAULT_CONFIG, note="shipped default", actor="system", activate=True)


def config_errors(params: dict[str, Any]) -> dict[str, str]:
    """Per-field messages for ``params`` (empty when valid): for instant validation in forms."""
    return validate_config(dict(params))[1]
