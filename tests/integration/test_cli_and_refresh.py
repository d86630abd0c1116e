"""The CLI as a person runs it, and refreshes end to end into the database (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from core.db import unit_of_work
from core.errors import ImportValidationError, ProviderError
from tests.stubs.twelvedata_stub import STUB_TODAY, Fault, start_stub

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "a long enough passphrase"


def run_cli(
    *args: str, stdin: str | None = None, env_extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run(
        [sys.executable, "-m", "core", *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def _price_rows() -> list[tuple]:
    with unit_of_work() as s:
        return [
            tuple(r)
            for r in s.execute(
                text("SELECT a.symbol, p.date, p.close FROM prices p JOIN assets a ON a.id = p.asset_id ORDER BY 1, 2")
            )
        ]


def test_help_on_every_command(data_dir):
    for command in ("migrate", "seed-demo", "create-user", "refresh", "import-prices", "compute"):
        result = run_cli(command, "--help")
        assert result.returncode == 0, result.stderr
        assert "usage:" in result.stdout


def test_create_user_from_stdin_and_policy_errors(db):
    ok = run_cli("create-user", "alice", "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n")
    assert ok.returncode == 0, ok.stderr
    assert "created admin alice" in ok.stdout
    assert PASSWORD not in ok.stdout + ok.stderr
    bad = run_cli("create-user", "bob", "--password-stdin", stdin="short\n")
    assert bad.returncode == 2
    assert "password: must be at least 10 characters" in bad.stderr
    from core.services import users

    assert [u.username for u in users.list_users()] == ["alice"]


def test_seed_demo_twice_changes_nothing_the_second_time(data_dir):
    first = run_cli("seed-demo", "--years", "1")
    assert first.returncode == 0, first.stderr
    again = run_cli("seed-demo", "--years", "1")
    assert again.returncode == 0, again.stderr
    assert "demo data: 0 new prices, 0 updated" in again.stdout
    compute = run_cli("compute")
    assert compute.returncode == 0, compute.stderr
    assert "computed config" in compute.stdout


def test_import_bad_file_refused_and_database_unchanged(db, tmp_path):
    from core.services.bootstrap import seed_demo

    seed_demo(years=0.2, end=dt.date(2024, 6, 28))
    before = _price_rows()
    bad = tmp_path / "bad.csv"
    bad.write_text("date,symbol,close\n2024-06-03,AAPL,10\n2024-06-04,AAPL,-3\nnot-a-date,MSFT,5\n2024-06-05,NOPE,1\n")
    env = {"DATABASE_URL": os.environ.get("DATABASE_URL", "")} if os.environ.get("DATABASE_URL") else None
    result = run_cli("import-prices", str(bad), env_extra=env)
    assert result.returncode == 2
    assert "row 3" in result.stderr and "row 4" in result.stderr and "NOPE" in result.stderr
    assert _price_rows() == before

    good = tmp_path / "good.csv"
    good.write_text("date,AAPL,MSFT\n2024-06-03,111.5,222.25\n")
    result = run_cli("import-prices", str(good), env_extra=env)
    assert result.returncode == 0, result.stderr
    rows = {(s, str(d)): c for s, d, c in _price_rows()}
    assert rows[("AAPL", "2024-06-03")] == 111.5 and rows[("MSFT", "2024-06-03")] == 222.25


def test_twelvedata_refresh_incremental_and_idempotent(db, monkeypatch):
    from core.infra.providers.twelvedata import TwelveDataProvider
    from core.services.refresh import refresh_prices

    base_url, controller, stop = start_stub()
    try:

        def provider():
            return TwelveDataProvider("stub-key", base_url=base_url, credits_per_minute=1000, sleep=lambda s: None)

        symbols = ["AAPL", "MSFT", "^GSPC"]
        from core.schemas.asset import AssetInfo
        from core.services import prices

        with unit_of_work() as s:
            prices.upsert_assets(s, [AssetInfo(symbol=x, name=x, source="twelvedata") for x in symbols])
            s.commit()
        first = refresh_prices("twelvedata", symbols, full=True, provider=provider(), today=STUB_TODAY)
        assert first["rows_new"] > 0
        snapshot = _price_rows()
        served = controller.closes("AAPL")
        stored = {str(d): c for s, d, c in snapshot if s == "AAPL"}
        assert stored == pytest.approx(served)

        again = refresh_prices("twelvedata", symbols, provider=provider(), today=STUB_TODAY)
        assert (again["rows_new"], again["rows_updated"]) == (0, 0)
        assert _price_rows() == snapshot

        controller.push(Fault(status=500), Fault(status=500), Fault(status=500), Fault(status=500))
        with pytest.raises(ProviderError):
            refresh_prices("twelvedata", symbols, full=True, provider=provider(), today=STUB_TODAY)
        assert _price_rows() == snapshot
    finally:
        stop()


def test_import_service_rejects_and_lists_rows(db):
    from core.services.bootstrap import seed_demo
    from core.services.refresh import import_price_file

    seed_demo(years=0.1, end=dt.date(2024, 6, 28))
    before = _price_rows()
    content = "date,symbol,close\n" + "".join(f"2024-06-{d:02d},AAPL,0\n" for d in range(3, 28))
    with pytest.raises(ImportValidationError) as exc:
        import_price_file(content.encode(), "zeros.csv")
    assert len(exc.value.rows) >= 20 and "more" in str(exc.value)
    assert _price_rows() == before
