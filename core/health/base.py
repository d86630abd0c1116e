"""What every health check shares: the card (:class:`Check`), the report, the context, and the registry.

A check is one module of this package with one function decorated by :func:`register`, which records its key,
title, what it shows and its rules ONCE; the runner (:mod:`core.health.runner`) builds the card from the
registration, so an error card (timeout, failure, database down) carries the same title and rules as a normal one,
and the README's Diagnostics table is generated from the same registry (:func:`rules_table`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy import text

from core.services.runs import jsonable

OK, WARNING, ERROR, INFO = "ok", "warning", "error", "info"
_RANK = {OK: 0, INFO: 0, WARNING: 1, ERROR: 2}

#: Seconds each check may take before it becomes an error card.
CHECK_TIMEOUT_S = 5.0
#: Days the job and page statistics look back.
STATS_DAYS = 7


@dataclass
class Check:
    """One card. ``rules`` say when the status is warning / error; ``findings`` say which rule fired."""

    key: str
    title: str
    status: str = OK
    summary: str = ""
    rules: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    duration_ms: float = 0.0

    def raise_to(self, status: str, finding: str) -> None:
        """Record ``finding`` and raise the status to ``status`` if that is worse."""
        self.findings.append(finding)
        if _RANK[status] > _RANK[self.status] or (self.status == INFO and status != INFO):
            self.status = status

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "status": self.status,
            "summary": self.summary,
            "rules": self.rules,
            "findings": self.findings,
            "facts": jsonable(self.facts),
            "tables": {name: records(frame) for name, frame in self.tables.items()},
            "duration_ms": round(self.duration_ms, 1),
        }


@dataclass
class HealthReport:
    """Every check, the overall status and when it was taken."""

    status: str
    checks: list[Check]
    at: dt.datetime
    duration_ms: float

    def check(self, key: str) -> Check:
        for c in self.checks:
            if c.key == key:
                return c
        raise KeyError(key)

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "at": self.at.isoformat(),
            "duration_ms": round(self.duration_ms, 1),
            "checks": [c.as_dict() for c in self.checks],
        }


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of ``frame`` as JSON-ready dicts (missing values as None)."""
    return [jsonable(r) for r in frame.astype(object).where(frame.notna(), None).to_dict(orient="records")]


def overall(checks: list[Check]) -> str:
    """The worst status of ``checks`` (``info`` counts as ok)."""
    worst = max((_RANK[c.status] for c in checks), default=0)
    return {0: OK, 1: WARNING, 2: ERROR}[worst]


@dataclass
class Context:
    """What every check may use; built once per report."""

    now: dt.datetime
    today: dt.date
    timeout_s: float
    huey: Any = None
    cache: Any = None
    database_ok: bool = True


@contextlib.contextmanager
def read_session(ctx: Context) -> Iterator[Any]:
    """A read-only unit of work whose PostgreSQL statements stop after the check's timeout."""
    from core.db import unit_of_work

    with unit_of_work() as session:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text(f"SET LOCAL statement_timeout = {int(ctx.timeout_s * 1000)}"))
        yield session


# --------------------------------------------------------------------------- the registry
@dataclass(frozen=True)
class CheckSpec:
    """A registered check: its key, title, what its card shows, the rules behind its status, the function that
    fills the card, and whether it needs the database (not run when the database does not answer)."""

    key: str
    title: str
    shows: str
    rules: tuple[str, ...]
    run: Callable[[Context, Check], None]
    needs_database: bool
    order: int

    def card(self) -> Check:
        """An empty card of this check (status ok)."""
        return Check(self.key, self.title, rules=list(self.rules))


#: Every check by key (:func:`registered` lists them in display order).
REGISTRY: dict[str, CheckSpec] = {}


def register(
    key: str, title: str, *, shows: str, rules: list[str] | tuple[str, ...], needs_database: bool, order: int
) -> Callable[[Callable[[Context, Check], None]], Callable[[Context, Check], None]]:
    """Register the decorated ``run(ctx, card)`` as the check ``key`` (shown at position ``order``): it fills the
    card it is given (status, summary, findings, facts, tables)."""

    def decorate(run: Callable[[Context, Check], None]) -> Callable[[Context, Check], None]:
        REGISTRY[key] = CheckSpec(key, title, shows, tuple(rules), run, needs_database, order)
        return run

    return decorate


def registered() -> list[CheckSpec]:
    """Every registered check in display order."""
    return sorted(REGISTRY.values(), key=lambda spec: spec.order)


def rules_table() -> str:
    """The README's Diagnostics table (markdown), from the registry: every check, what it shows, every rule."""
    lines = ["| check | what it shows | rules behind its status |", "| --- | --- | --- |"]
    lines += [f"| {s.title} | {s.shows} | {'; '.join(s.rules)} |" for s in registered()]
    return "\n".join(lines)
