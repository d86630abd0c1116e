"""Strategy configs: validated, versioned, one active version app-wide."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.db import lock_table, unit_of_work
from core.errors import NotFoundError, ValidationFailed
from core.infra.locks import SEED, hold
from core.models import StrategyConfigRow
from core.models.base import id_in_range
from core.schemas.strategy import DEFAULT_CONFIG, StrategyConfig, validate_config
from core.schemas.strategy_version import ConfigVersionOut
from core.services import app_settings, audit, market, runs
from core.services.access import ADMIN_ONLY, ALL_ROLES, SYSTEM, resolve
from core.services.ports import QueueUnavailable, fallback_queue

log = logging.getLogger(__name__)

DEFAULT_NAME = "AutoIndex Core"
NAME_MAX = 100


def _out(row: StrategyConfigRow) -> ConfigVersionOut:
    return ConfigVersionOut.model_validate(row, from_attributes=True)


def _serialise_versions(session: Session) -> None:
    """One writer of versions at a time: the next version number and "exactly one active version" are decided
    on what is committed. The partial unique index ``uq_strategy_configs_one_active`` backs the rule in the
    schema."""
    lock_table(session, "strategy_configs")


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
        row = session.get(StrategyConfigRow, config_id) if id_in_range(config_id) else None
        if row is None:
            raise NotFoundError(f"no strategy config with id {config_id}")
        return _out(row)


def active_version() -> ConfigVersionOut | None:
    with unit_of_work() as session:
        row = session.scalar(select(StrategyConfigRow).where(StrategyConfigRow.is_active.is_(True)))
        return _out(row) if row else None


def save_version(
    name: str,
    params: dict[str, Any] | StrategyConfig,
    *,
    note: str | None = None,
    actor: Any = None,
    parent_id: int | None = None,
    activate: bool = False,
) -> ConfigVersionOut:
    """Validate and save ``params`` as the next version of ``name``; nothing is written if invalid.

    Any active user may save; ``activate`` (the house index for everyone) is for admins, checked on fresh
    state. ``actor`` None is the system."""
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
        _serialise_versions(session)
        principal = resolve(
            session,
            actor,
            ADMIN_ONLY if activate else ALL_ROLES,
            action="activating a version" if activate else "saving a version",
            lock=True,
        )
        if (
            parent_id is not None
            and (session.get(StrategyConfigRow, parent_id) if id_in_range(parent_id) else None) is None
        ):
            raise ValidationFailed({"parent_id": f"no strategy config with id {parent_id}"})
        infeasible = market.universe_errors(session, cfg)  # issue 15: caps, exclusions and symbols vs the universe
        if infeasible:
            raise ValidationFailed(infeasible)
        version = (
            int(session.scalar(select(func.max(StrategyConfigRow.version)).where(StrategyConfigRow.name == name)) or 0)
            + 1
        )
        row = StrategyConfigRow(
            name=name,
            version=version,
            params=cfg.model_dump(mode="json"),
            note=note,
            created_by=principal.username,
            parent_id=parent_id,
            is_active=False,
        )
        session.add(row)
        session.flush()
        if activate:
            session.execute(update(StrategyConfigRow).values(is_active=False))
            row.is_active = True
        audit.record(session, principal.username, "config.save", f"{name} v{version}", {"id": row.id, "note": note})
        app_settings.bump_data_version(session)  # the UI cache key: the version lists and labels change
        try:
            session.commit()
        except IntegrityError:  # another save of the same name took this version number at the same moment
            session.rollback()
            raise ValidationFailed({"name": f"{name} v{version} was just saved by someone else; save again"}) from None
        return _out(row)


def activate_version(config_id: int, *, actor: Any = None) -> ConfigVersionOut:
    """Make ``config_id`` the one active version (admins only, checked on fresh state). ``actor`` None is the
    system. This only switches the flag: :func:`activate` also queues the recompute (what the app does)."""
    with unit_of_work() as session:
        _serialise_versions(session)
        principal = resolve(session, actor, ADMIN_ONLY, action="activating a version", lock=True)
        row = session.get(StrategyConfigRow, config_id) if id_in_range(config_id) else None
        if row is None:
            raise NotFoundError(f"no strategy config with id {config_id}")
        session.execute(update(StrategyConfigRow).values(is_active=False))
        row.is_active = True
        audit.record(session, principal.username, "config.activate", f"{row.name} v{row.version}", {"id": row.id})
        app_settings.bump_data_version(session)  # the UI cache key: which version is active changes
        session.commit()
        return _out(row)


@dataclass(frozen=True)
class Activation:
    """A version made active and what followed: ``recompute`` as :func:`queue_compute` returns it."""

    version: ConfigVersionOut
    recompute: dict[str, Any]


def queue_compute(config_id: int, *, actor: Any) -> dict[str, Any]:
    """Queue the compute of ``config_id`` as ``actor`` (a run on the Tasks page); return what happened.

    ``{"queued": True, "run_id": n, "inline": False}`` when a worker will run it. When the job queue is
    unavailable and the process has a no-worker fallback (:func:`core.services.ports.fallback_queue`), the run
    is computed here and now: ``inline`` True, with its final ``state``, ``result`` and ``error``. With no
    fallback: ``{"queued": False, "reason": ...}`` and a warning in the log (``python -m core compute`` computes
    it by hand). Raises only for the caller's own errors (PermissionDenied, a config that does not exist)."""
    params = {"config_id": config_id}
    try:
        return {"queued": True, "inline": False, "run_id": runs.enqueue("compute", params, user=actor)}
    except QueueUnavailable as exc:
        fallback = fallback_queue()
        if fallback is None:
            log.warning("config %s activated but its recompute was not queued: %s", config_id, exc)
            return {"queued": False, "reason": str(exc)}
        log.warning("%s; computing config %s in this process", exc, config_id)
    run_id = runs.enqueue("compute", params, user=actor, huey=fallback)
    run = runs.get_run(run_id, actor)
    return {
        "queued": True,
        "inline": True,
        "run_id": run_id,
        "state": str(run.state),
        "result": run.result,
        "error": run.error,
    }


def activate(config_id: int, *, actor: Any) -> Activation:
    """Make ``config_id`` the active version and queue its recompute (:func:`queue_compute`): the index everyone
    sees follows the activation. Admins only, checked on fresh state."""
    version = activate_version(config_id, actor=actor)
    return Activation(version, queue_compute(version.id, actor=actor))


def save_and_activate(
    name: str,
    params: dict[str, Any] | StrategyConfig,
    *,
    note: str | None = None,
    actor: Any,
    parent_id: int | None = None,
) -> Activation:
    """:func:`save_version` with ``activate`` (admins only), then its recompute queued (:func:`queue_compute`)."""
    version = save_version(name, params, note=note, actor=actor, parent_id=parent_id, activate=True)
    return Activation(version, queue_compute(version.id, actor=actor))


def ensure_default_config() -> ConfigVersionOut:
    """Create and activate the shipped default (momentum 0.4, market cap 0.3, risk parity 0.3, weekly) if none exists.

    Checks and creates under the ``seed`` lock (:mod:`core.infra.locks`): processes starting at once
    (three CLI computes on a fresh database) create one default, the others find it."""
    existing = active_version()
    if existing:
        return existing
    with hold(SEED, holder="system"):
        return _ensure_default_config()


def _ensure_default_config() -> ConfigVersionOut:
    existing = active_version()
    if existing:
        return existing
    versions = list_versions()
    if versions:
        return activate_version(versions[0].id, actor=SYSTEM)
    return save_version(DEFAULT_NAME, DEFAULT_CONFIG, note="shipped default", actor=SYSTEM, activate=True)


def config_errors(params: dict[str, Any]) -> dict[str, str]:
    """Per-field messages for ``params`` (empty when valid): for instant validation in forms."""
    cfg, errors = validate_config(dict(params))
    if cfg is not None and not errors:
        with unit_of_work() as session:
            errors = market.universe_errors(session, cfg)
    return errors
