"""Running the registered checks side by side, each bounded in time, into one :class:`HealthReport`."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import logging
import time
from typing import Any

from sqlalchemy import text

from core.config import get_settings, redact_url
from core.errors import one_line
from core.health.base import CHECK_TIMEOUT_S, ERROR, Check, CheckSpec, Context, HealthReport, overall, registered

log = logging.getLogger(__name__)


def _ping_database(timeout_s: float) -> None:
    from core.db import get_engine

    engine = get_engine()
    with engine.connect() as conn:  # a transaction: SET LOCAL ends with it, the pooled connection is unchanged
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"SET LOCAL statement_timeout = {int(timeout_s * 1000)}"))
        conn.execute(text("SELECT 1"))
        conn.rollback()


def _failed(spec: CheckSpec, reason: str, started: float) -> Check:
    check = spec.card()
    check.status, check.summary, check.findings = ERROR, reason, [reason]
    check.duration_ms = (time.perf_counter() - started) * 1000
    return check


def _run_one(spec: CheckSpec, ctx: Context) -> Check:
    started = time.perf_counter()
    check = spec.card()
    try:
        spec.run(ctx, check)
    except Exception as exc:  # noqa: BLE001 - a failing check is a card, never a traceback
        log.warning("health check %s failed: %s", spec.key, one_line(exc), exc_info=log.isEnabledFor(logging.DEBUG))
        return _failed(spec, f"check failed: {one_line(exc)}", started)
    check.duration_ms = (time.perf_counter() - started) * 1000
    return check


def run_checks(
    *,
    now: dt.datetime | None = None,
    today: dt.date | None = None,
    timeout_s: float = CHECK_TIMEOUT_S,
    only: tuple[str, ...] | None = None,
    huey: Any = None,
    cache: Any = None,
) -> HealthReport:
    """Run every registered check (or those named in ``only``) in parallel; never raises.

    First one quick ``SELECT 1`` (bounded by ``timeout_s``): when the database does not answer, the
    database card says why and the checks that need it are reported as not run, instead of each
    waiting for its own timeout.
    """
    started = time.perf_counter()
    now = now or dt.datetime.now(dt.timezone.utc)
    ctx = Context(now=now, today=today or now.date(), timeout_s=timeout_s, huey=huey, cache=cache)
    selected = [spec for spec in registered() if only is None or spec.key in only]
    pool = concurrent.futures.ThreadPoolExecutor(
        max_workers=max(1, len(selected)), thread_name_prefix="autoindex-health"
    )
    results: dict[str, Check] = {}
    try:
        db_reason: str | None = None
        if any(spec.needs_database for spec in selected):
            ping = pool.submit(_ping_database, timeout_s)
            try:
                ping.result(timeout=timeout_s)
            except concurrent.futures.TimeoutError:
                db_reason = f"database did not answer within {timeout_s:g} s"
            except Exception as exc:  # noqa: BLE001
                db_reason = f"database unreachable: {one_line(exc)}"
        ctx.database_ok = db_reason is None
        futures: dict[str, concurrent.futures.Future[Check]] = {}
        for spec in selected:
            if db_reason is not None and spec.needs_database:
                if spec.key == "database":
                    check = _failed(spec, db_reason, started)
                    check.facts["url"] = redact_url(get_settings().effective_database_url)
                    results[spec.key] = check
                else:
                    results[spec.key] = _failed(spec, "not checked: the database is unreachable", started)
                continue
            futures[spec.key] = pool.submit(_run_one, spec, ctx)
        deadline = time.monotonic() + timeout_s
        for spec in selected:
            future = futures.get(spec.key)
            if future is None:
                continue
            try:
                results[spec.key] = future.result(timeout=max(0.0, deadline - time.monotonic()))
            except concurrent.futures.TimeoutError:
                results[spec.key] = _failed(spec, f"did not answer within {timeout_s:g} s", started)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    checks = [results[spec.key] for spec in selected]
    return HealthReport(
        status=overall(checks), checks=checks, at=now, duration_ms=(time.perf_counter() - started) * 1000
    )
