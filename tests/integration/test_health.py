"""Health checks, the Redis cache and telemetry against real SQLite, PostgreSQL and Redis.

Redis tests use database 12 and a unique key prefix per test, and delete only their own keys.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text

from core import health
from tests.conftest import REDIS_BASE

PROJECT_ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("AUTOINDEX_TEST_HEALTH_REDIS", f"{REDIS_BASE}/12")
CLOSED_PORT_REDIS = "redis://127.0.0.1:1/0"
CLOSED_PORT_PG = "postgresql+psycopg://postgres@127.0.0.1:1/autoindex"
NOW = dt.datetime(2026, 3, 13, 15, 0, tzinfo=dt.timezone.utc)  # a Friday
TODAY = NOW.date()


def _reset() -> None:
    from core.config import reset_settings_cache
    from core.db import reset_engine_cache
    from core.infra.cache import reset_cache_instances

    reset_engine_cache()
    reset_settings_cache()
    reset_cache_instances()


@pytest.fixture
def memory_huey():  # type: ignore[no-untyped-def]
    """A queue the checks can read without touching the process-wide Huey instance."""
    from huey import MemoryHuey

    return MemoryHuey("health-test", utc=True)


@pytest.fixture
def redis_prefix():  # type: ignore[no-untyped-def]
    """A unique key prefix on Redis db 12; every key under it is deleted afterwards."""
    import redis

    prefix = f"autoindex-test-{uuid.uuid4().hex[:10]}"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=500))
    if keys:
        client.unlink(*keys)
    client.close()


@pytest.fixture
def pg_db(data_dir, monkeypatch, request) -> str:  # type: ignore[no-untyped-def]
    """An empty migrated PostgreSQL database (no SQLite twin: the tests need PostgreSQL locks)."""
    from core.db import migrate
    from tests.conftest import _truncate_pg

    url = request.getfixturevalue("pg_database")
    monkeypatch.setenv("DATABASE_URL", url)
    _reset()
    migrate(timeout_s=10)
    _truncate_pg(url)
    return url


def _add_asset(
    symbol: str, *, benchmark: bool = False, last: dt.date = TODAY, days: int = 30, skip: int = 0, active: bool = True
) -> None:
    """An asset with ``days`` business days of prices ending at ``last`` (``skip`` of them left out)."""
    import pandas as pd

    from core.db import unit_of_work
    from core.models import Asset, Price

    dates = pd.bdate_range(end=last, periods=days)
    with unit_of_work() as session:
        asset = Asset(symbol=symbol, name=symbol, is_benchmark=benchmark, source="demo", is_active=active)
        session.add(asset)
        session.flush()
        kept = [d for i, d in enumerate(dates) if not (0 < i <= skip)]
        session.add_all([Price(asset_id=asset.id, date=d.date(), close=100.0 + i) for i, d in enumerate(kept)])
        session.commit()


def _add_run(
    kind: str,
    state: str,
    *,
    queued_at: dt.datetime = NOW - dt.timedelta(hours=1),
    duration_s: float | None = None,
    error: str | None = None,
) -> None:
    from core.db import unit_of_work
    from core.models import TaskRun

    with unit_of_work() as session:
        finished = queued_at + dt.timedelta(seconds=duration_s or 0) if duration_s is not None else None
        session.add(
            TaskRun(
                kind=kind,
                args={},
                state=state,
                queued_at=queued_at,
                started_at=queued_at if finished else None,
                finished_at=finished,
                duration_s=duration_s,
                error=error,
            )
        )
        session.commit()


def _run(**kwargs):  # type: ignore[no-untyped-def]
    kwargs.setdefault("now", NOW)
    kwargs.setdefault("today", TODAY)
    return health.run_checks(**kwargs)


# --------------------------------------------------------------------------- database
def test_healthy_database_card(db, memory_huey) -> None:
    _add_asset("^GSPC", benchmark=True)
    _add_asset("AAA", skip=2)
    report = _run(huey=memory_huey)
    database = report.check("database")
    assert database.status == "ok", database.findings
    assert database.facts["dialect"] in ("sqlite", "postgresql")
    assert database.facts["at_head"] is True and database.facts["size_bytes"] > 0
    counts = dict(zip(database.tables["row counts"]["table"], database.tables["row counts"]["rows"]))
    assert counts["prices"] == 58 and counts["assets"] == 2
    assert "error if the database is unreachable" in database.rules
    freshness = report.check("freshness")
    assert freshness.status == "ok", freshness.findings
    table = freshness.tables["freshness"]
    assert list(table["symbol"]) == ["^GSPC", "AAA"]  # benchmark first
    assert list(table["gaps"]) == [0, 2] and list(table["stale_days"]) == [0, 0]
    json.dumps(report.as_dict())  # the CLI's --json output is serialisable


def test_unreachable_database_is_an_error_card_not_a_traceback(data_dir, monkeypatch, memory_huey) -> None:
    monkeypatch.setenv("DATABASE_URL", CLOSED_PORT_PG)
    _reset()
    started = time.perf_counter()
    report = _run(huey=memory_huey)
    assert time.perf_counter() - started < 5
    assert report.status == "error"
    database = report.check("database")
    assert database.status == "error"
    assert database.summary.startswith("database unreachable:")
    assert "Traceback" not in database.summary and len(database.summary) < 400
    for key in ("workers", "freshness", "jobs", "performance"):
        assert report.check(key).summary == "not checked: the database is unreachable"
    assert report.check("configuration").status == "info"  # checks without the database still run


def test_unmigrated_database_is_an_error(data_dir, memory_huey) -> None:
    report = _run(huey=memory_huey)
    database = report.check("database")
    assert database.status == "error"
    assert database.findings[0].startswith("schema at no revision (never migrated), newest migration is ")
    assert report.check("freshness").summary.startswith("check failed: OperationalError: no such table")


def test_slow_check_times_out_into_an_error_card(sqlite_db, monkeypatch, memory_huey) -> None:
    def slow(_ctx, _card):  # type: ignore[no-untyped-def]
        time.sleep(3)
        raise AssertionError("never reached in time")

    monkeypatch.setitem(health.REGISTRY, "freshness", dataclasses.replace(health.REGISTRY["freshness"], run=slow))
    started = time.perf_counter()
    report = _run(huey=memory_huey, timeout_s=0.5)
    assert time.perf_counter() - started < 2
    freshness = report.check("freshness")
    assert freshness.status == "error" and freshness.summary == "did not answer within 0.5 s"
    assert freshness.rules == list(health.REGISTRY["freshness"].rules) and freshness.title == "Data freshness"
    assert report.check("database").status == "ok"


def test_locked_postgresql_table_is_an_error_card_within_the_timeout(pg_db, memory_huey) -> None:
    _add_asset("^GSPC", benchmark=True)
    blocker = create_engine(pg_db)
    conn = blocker.connect()
    try:
        conn.execute(text("LOCK TABLE prices IN ACCESS EXCLUSIVE MODE"))
        started = time.perf_counter()
        report = _run(huey=memory_huey, timeout_s=1.0, only=("database", "freshness"))
        assert time.perf_counter() - started < 3
        for key in ("database", "freshness"):
            card = report.check(key)
            assert card.status == "error"
            assert "statement timeout" in card.summary or "did not answer" in card.summary, card.summary
    finally:
        conn.rollback()
        conn.close()
        blocker.dispose()


def test_failing_check_becomes_a_short_error(sqlite_db, monkeypatch, memory_huey) -> None:
    def broken(_ctx, _card):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom\nsecond line with detail")

    monkeypatch.setitem(health.REGISTRY, "jobs", dataclasses.replace(health.REGISTRY["jobs"], run=broken))
    report = _run(huey=memory_huey)
    assert report.check("jobs").summary == "check failed: RuntimeError: boom"


# --------------------------------------------------------------------------- freshness
def test_stale_benchmark_is_a_warning_then_an_error(db, memory_huey) -> None:
    # NOW is Friday 13th 15:00 UTC, before the close: Thursday 12th is the last completed business day,
    # so a last price on Friday 6th is 4 business days stale (9, 10, 11, 12 March).
    _add_asset("^GSPC", benchmark=True, last=dt.date(2026, 3, 6))
    _add_asset("AAA")
    card = _run(huey=memory_huey, only=("freshness",)).check("freshness")
    assert card.status == "warning"
    assert card.findings == ["benchmark ^GSPC is 4 business days stale"]
    assert card.facts["benchmark_stale_days"] == 4


def test_very_stale_benchmark_and_assets(sqlite_db, memory_huey) -> None:
    _add_asset("^GSPC", benchmark=True, last=dt.date(2026, 2, 20))  # 14 business days (23 Feb .. 12 Mar)
    _add_asset("OLD", last=dt.date(2026, 3, 2))  # 8 business days (3 .. 12 Mar)
    _add_asset("NEW")
    card = _run(huey=memory_huey, only=("freshness",)).check("freshness")
    assert card.status == "error"
    assert "benchmark ^GSPC is 14 business days stale" in card.findings
    assert any("1 active asset(s) more than 5 business days stale: OLD" in f for f in card.findings)


def test_no_prices_is_a_warning(sqlite_db, memory_huey) -> None:
    card = _run(huey=memory_huey, only=("freshness",)).check("freshness")
    assert card.status == "warning" and card.findings == ["no prices stored"]


# --------------------------------------------------------------------------- workers and jobs
def test_dead_worker_while_jobs_wait_is_an_alert(db, memory_huey) -> None:
    from core.services import workers as worker_service

    worker_service.heartbeat(
        "other-host:123:abc", hostname="other-host", pid=123, workers=4, now=NOW - dt.timedelta(minutes=10)
    )
    card = _run(huey=memory_huey, only=("workers",)).check("workers")
    assert card.status == "warning" and card.findings == ["no worker alive"]
    _add_run("refresh", "queued", queued_at=NOW - dt.timedelta(minutes=5))
    card = _run(huey=memory_huey, only=("workers",)).check("workers")
    assert card.status == "error"
    assert card.findings[0].startswith("no worker alive while 1 job(s) wait; last heartbeat")
    assert list(card.tables["workers"]["alive"]) == [False]
    worker_service.heartbeat(
        "other-host:123:abc", hostname="other-host", pid=123, workers=4, now=NOW - dt.timedelta(seconds=2)
    )
    card = _run(huey=memory_huey, only=("workers",)).check("workers")
    assert card.status == "ok"
    assert card.summary == "1 worker(s) alive (4 threads), 1 job(s) waiting"


def test_job_durations_failure_rate_and_last_runs(db, memory_huey) -> None:
    for i in range(10):
        _add_run("compute", "succeeded", duration_s=float(i + 1), queued_at=NOW - dt.timedelta(hours=20 - i))
    _add_run("refresh", "succeeded", duration_s=30.0, queued_at=NOW - dt.timedelta(hours=5))
    _add_run(
        "refresh", "failed", duration_s=2.0, error="ProviderError: rate limited", queued_at=NOW - dt.timedelta(hours=2)
    )
    _add_run("refresh", "succeeded", duration_s=99.0, queued_at=NOW - dt.timedelta(days=9))  # outside 7 days
    card = _run(huey=memory_huey, only=("jobs",)).check("jobs")
    stats = card.tables["durations by kind (7 days)"].set_index("kind")
    assert stats.loc["compute", "runs"] == 10 and stats.loc["compute", "failure_rate"] == 0
    assert stats.loc["compute", "p50_s"] == pytest.approx(5.5)
    assert stats.loc["compute", "p95_s"] == pytest.approx(9.55)
    assert stats.loc["refresh", "failure_rate"] == pytest.approx(0.5)
    assert stats.loc["refresh", "max_s"] == pytest.approx(30.0)
    assert card.status == "warning"
    assert any(f.startswith("the last refresh") and "rate limited" in f for f in card.findings)
    assert card.facts["failure_rate_7d"] == pytest.approx(1 / 12)
    last = card.tables["last runs"].set_index("job")
    assert last.loc["refresh", "state"] == "failed" and last.loc["compute", "state"] == "succeeded"


def test_queue_card_reads_pending_scheduled_and_locks(sqlite_db, memory_huey) -> None:
    @memory_huey.task()
    def noop() -> None:
        return None

    noop()
    memory_huey.add_schedule(noop.s())  # what a consumer does with a task whose time has not come
    from core.infra.locks import hold

    with hold("refresh"):
        card = _run(huey=memory_huey, only=("queue",)).check("queue")
    assert card.status == "ok"
    assert card.facts["pending"] == 1 and card.facts["scheduled"] == 1
    assert card.facts["locks_held"] == ["refresh"]
    assert _run(huey=memory_huey, only=("queue",)).check("queue").facts["locks_held"] == []


# --------------------------------------------------------------------------- redis and the cache
def test_redis_up_card_and_cache_namespaces(sqlite_db, monkeypatch, memory_huey, redis_prefix) -> None:
    from core.infra.cache import build_cache

    monkeypatch.setenv("REDIS_URL", REDIS_URL)
    _reset()
    cache = build_cache(REDIS_URL, prefix=redis_prefix, data_version=lambda: 7)
    cache.get_or_compute("index", "a", lambda: 1)
    cache.get_or_compute("index", "a", lambda: 1)
    cache.get_or_compute("metrics", "a", lambda: 2)
    report = _run(huey=memory_huey, cache=cache, only=("redis", "cache"))
    redis_card = report.check("redis")
    assert redis_card.status == "ok", redis_card.findings
    assert redis_card.facts["version"] and redis_card.facts["used_memory"]
    namespaces = report.check("cache").tables["namespaces"].set_index("namespace")
    assert tuple(namespaces.loc["index", ["keys", "hits", "misses"]]) == (1, 1, 1)
    assert tuple(namespaces.loc["metrics", ["keys", "hits", "misses"]]) == (1, 0, 1)


def test_redis_hit_miss_clear_and_refresh_invalidation(db, redis_prefix) -> None:
    """On the shared Redis store: counters, SCAN-based clearing of one namespace, and a data-version bump
    (what refresh and compute do) making the next read recompute."""
    from core.db import unit_of_work
    from core.infra.cache import build_cache
    from core.models import Asset
    from core.services import prices as price_store

    cache = build_cache(REDIS_URL, prefix=redis_prefix)  # data version read from the database

    def asset_count() -> int:
        with unit_of_work() as session:
            return int(session.scalar(select(func.count(Asset.id))))

    assert cache.get_or_compute("index", "assets", asset_count) == 0
    _add_asset("AAA")
    assert cache.get_or_compute("index", "assets", asset_count) == 0  # cached: same data version
    with unit_of_work() as session:
        price_store.mark_refreshed(session)  # what a refresh does in its transaction
        session.commit()
    assert cache.get_or_compute("index", "assets", asset_count) == 1
    cache.get_or_compute("metrics", "x", lambda: "m")
    stats = {s.namespace: s for s in cache.stats()}
    assert (stats["index"].hits, stats["index"].misses, stats["index"].keys) == (1, 2, 2)
    assert cache.clear("index") == 2
    stats = {s.namespace: s for s in cache.stats()}
    assert stats["index"].keys == 0 and stats["metrics"].keys == 1
    assert stats["index"].hits == 1  # counters survive a clear
    assert cache.clear_all() == 1


def test_redis_configured_but_down(sqlite_db, monkeypatch, memory_huey) -> None:
    from core.infra.cache import get_cache

    monkeypatch.setenv("REDIS_URL", CLOSED_PORT_REDIS)
    _reset()
    report = _run(huey=memory_huey)
    redis_card = report.check("redis")
    assert redis_card.status == "error"
    assert redis_card.summary.startswith("unreachable at redis://127.0.0.1:1/0: ConnectionError")
    assert report.check("cache").status == "warning"
    assert report.status == "error"
    # reads fall back to computing
    assert get_cache().get_or_compute("index", "k", lambda: "computed") == "computed"
    _reset()


# --------------------------------------------------------------------------- telemetry
def test_timings_are_batched_summarised_and_pruned(sqlite_db) -> None:
    from core.db import unit_of_work
    from core.infra import telemetry
    from core.models import Timing

    telemetry.discard_pending()
    for ms in range(1, 101):
        telemetry.record_timing("page", "Dashboard", float(ms), at=NOW - dt.timedelta(hours=1))
    telemetry.record_timing("service", "fast", 1.0)  # below SERVICE_MIN_MS: not kept
    telemetry.record_timing("service", "dashboard.dashboard_data", 900.0, at=NOW - dt.timedelta(hours=1))
    with telemetry.timed("page", "Strategy"):
        pass
    telemetry.flush(now=NOW)
    old = NOW - dt.timedelta(days=telemetry.RETENTION_DAYS + 1)
    with unit_of_work() as session:
        session.add(Timing(at=old, kind="page", name="Ancient", duration_ms=5.0))
        session.commit()
    stats = telemetry.timing_stats(7, now=NOW)
    pages = stats.pages.set_index("name")
    assert pages.loc["Dashboard", "count"] == 100
    assert pages.loc["Dashboard", "p50_ms"] == pytest.approx(50.5)
    assert pages.loc["Dashboard", "p95_ms"] == pytest.approx(95.05)
    assert "Ancient" not in pages.index
    assert list(stats.slowest_services["name"]) == ["dashboard.dashboard_data"]
    telemetry._state["last_prune"] = float("-inf")  # prune due
    telemetry.flush(now=NOW)
    with unit_of_work() as session:
        names = set(session.scalars(select(Timing.name)))
    assert "Ancient" not in names and "Dashboard" in names
    card = _run(only=("performance",)).check("performance")
    assert card.status == "ok" and "Dashboard" in list(card.tables["page timings"]["name"])


def test_slow_page_is_a_warning(sqlite_db) -> None:
    from core.infra import telemetry

    telemetry.discard_pending()
    for _ in range(5):
        telemetry.record_timing("page", "Reports", 2500.0, at=NOW - dt.timedelta(minutes=5))
    card = _run(only=("performance",)).check("performance")
    assert card.status == "warning" and card.findings == ["Reports: p95 2.5 s"]


# --------------------------------------------------------------------------- configuration and CLI
def test_configuration_hides_secrets(sqlite_db, monkeypatch) -> None:
    monkeypatch.setenv("TWELVEDATA_API_KEY", "sekret-api-key-123")
    monkeypatch.setenv("REDIS_URL", "redis://:hunter2pass@127.0.0.1:1/0")
    _reset()
    card = _run(only=("configuration",)).check("configuration")
    dumped = json.dumps(card.as_dict())
    assert "sekret-api-key-123" not in dumped and "hunter2pass" not in dumped
    settings = dict(zip(card.tables["settings"]["setting"], card.tables["settings"]["value"]))
    assert settings["twelvedata_api_key"] == "(set, hidden)"
    versions = dict(zip(card.tables["versions"]["component"], card.tables["versions"]["version"]))
    assert versions["python"].startswith("3.") and versions["sqlalchemy"][0].isdigit()
    _reset()


def _cli(env_overrides: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "-m", "core", "health", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_exit_codes(sqlite_db, data_dir) -> None:
    _add_asset("^GSPC", benchmark=True, last=dt.date.today())
    ok = _cli({"DATA_DIR": data_dir, "EMBEDDED_WORKER": "false"}, "--json")
    assert ok.returncode == 0, ok.stderr
    report = json.loads(ok.stdout)
    assert report["status"] in ("ok", "warning")
    assert [c["key"] for c in report["checks"]][:2] == ["database", "redis"]
    down = _cli({"DATA_DIR": data_dir, "DATABASE_URL": CLOSED_PORT_PG})
    assert down.returncode == 1
    assert "[ERROR] Database: database unreachable" in down.stdout
    assert "Traceback" not in down.stdout + down.stderr


# --------------------------------------------------------------------------- one rule, one home
def test_readme_diagnostics_table_is_the_registry() -> None:
    """Every check's title, what it shows and every rule it applies, registered once, is the README's table."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert health.rules_table() in readme
    assert [s.key for s in health.registered()] == [
        "database",
        "redis",
        "queue",
        "workers",
        "freshness",
        "jobs",
        "performance",
        "cache",
        "configuration",
    ]


def test_freshness_card_takes_the_benchmark_by_the_one_rule_over_active_benchmarks(sqlite_db, memory_huey) -> None:
    """An inactive ^GSPC is not the benchmark (core.services.market.choose_benchmark over active benchmarks): the
    card names the active one, as the Dashboard, reports and compute do."""
    from core.db import unit_of_work
    from core.services.market import benchmark_symbol

    _add_asset("^GSPC", benchmark=True, last=dt.date(2026, 2, 2), active=False)  # very stale, but inactive
    _add_asset("^NDX", benchmark=True)
    _add_asset("AAA")
    card = _run(huey=memory_huey, only=("freshness",)).check("freshness")
    with unit_of_work() as session:
        assert benchmark_symbol(session) == "^NDX"
    assert card.facts["benchmark"] == "^NDX" and card.status == "ok", card.findings
