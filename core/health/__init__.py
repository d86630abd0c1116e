"""System health as data: every check the Diagnostics page and ``python -m core health`` show.

Each check is one module of this package that registers its key, title, what it shows and its rules once
(:func:`core.health.base.register`) and fills a :class:`Check`: a status (``ok``, ``warning``, ``error``, or
``info`` when it does not apply), a one-line summary, the *rules* that decide its status written out in words,
the findings that triggered a rule, a few facts and tables. :func:`run_checks` runs them all side by side in
threads, each bounded by ``timeout_s`` (PostgreSQL queries also carry a ``statement_timeout``); a check that
raises or does not answer in time becomes an ``error`` card with a short reason, never a traceback. The overall
status is the worst status of any check (``info`` counts as ok). The README's Diagnostics table is
:func:`rules_table` (a test keeps them equal).

Speed: every query is an aggregate (GROUP BY, COUNT, MIN/MAX) or a LIMITed read, so the whole report
takes well under a second with 1.26 M prices and 10,000 task runs (see bench/diagnostics.py).

Times are UTC; ``now`` and ``today`` are passed in so that tests control the clock.
"""

from __future__ import annotations

# each check module registers itself when imported
from core.health import cache, configuration, database, freshness, jobs, performance, queue, redis_server, workers
from core.health.base import (
    CHECK_TIMEOUT_S,
    ERROR,
    INFO,
    OK,
    REGISTRY,
    STATS_DAYS,
    WARNING,
    Check,
    CheckSpec,
    Context,
    HealthReport,
    overall,
    registered,
    rules_table,
)
from core.health.database import write_probe
from core.health.runner import run_checks

__all__ = [
    "CHECK_TIMEOUT_S",
    "ERROR",
    "INFO",
    "OK",
    "REGISTRY",
    "STATS_DAYS",
    "WARNING",
    "Check",
    "CheckSpec",
    "Context",
    "HealthReport",
    "cache",
    "configuration",
    "database",
    "freshness",
    "jobs",
    "overall",
    "performance",
    "queue",
    "redis_server",
    "registered",
    "rules_table",
    "run_checks",
    "workers",
    "write_probe",
]
