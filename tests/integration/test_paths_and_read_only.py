"""Unusable paths and read-only databases get one line naming the problem (issue 11, case 14).

* ``report --out`` an existing directory, a missing directory, a file's child, an unwritable place: exit 2, one
  ``error: out: ...`` line, no traceback, no ``.part`` (or any other) file left behind;
* ``DATA_DIR`` unusable (``/proc/x``, a file, a read-only directory): exit 2, one ``error: DATA_DIR: ...`` line;
* a read-only database (SQLite file ``chmod 444`` (+ ``chattr +i`` as root), a read-only directory,
  ``PRAGMA query_only``; PostgreSQL ``default_transaction_read_only = on``): writes raise
  DatabaseReadOnlyError naming the database, ``python -m core health`` shows the database card as ERROR and
  exits 1 (also with ``--strict``).

The CLI runs in real subprocesses against a real SQLite database (and PostgreSQL where noted).
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, event, text

from core.config import PROJECT_ROOT
from core.errors import DatabaseReadOnlyError, ValidationFailed
from tests.integration.paths_support import read_only

pytestmark = pytest.mark.timeout(300)

REPORT = ["report", "--type", "performance", "--period", "max", "--format", "csv"]


def _cli(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "REPORTS_DIR")}
    full.update({"EMBEDDED_WORKER": "false", "DEMO_ON_EMPTY": "false", **env})
    return subprocess.run(
        [sys.executable, "-m", "core", *args],
        cwd=PROJECT_ROOT,
        env=full,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _one_error_line(proc: subprocess.CompletedProcess[str], starts: str) -> str:
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out, out
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    assert errors[0].startswith(starts), errors[0]
    return errors[0]


@pytest.fixture(scope="module")
def computed_dir(tmp_path_factory) -> Iterator[Path]:
    """A DATA_DIR holding a seeded, computed SQLite database (built in a subprocess: the test process's settings
    stay untouched)."""
    data = tmp_path_factory.mktemp("computed")
    code = (
        "import datetime as dt; from core.db import migrate; from core.services.bootstrap import seed_demo; "
        "from core.services import compute, strategies; migrate(timeout_s=10); "
        "seed_demo(years=0.3, end=dt.date(2024, 6, 28)); "
        "compute.compute_config(strategies.ensure_default_config().id)"
    )
    env = {**os.environ, "DATA_DIR": str(data), "DEMO_ON_EMPTY": "false", "PYTHONPATH": str(PROJECT_ROOT)}
    for key in ("DATABASE_URL", "REDIS_URL", "REPORTS_DIR"):
        env.pop(key, None)
    subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, env=env, check=True, timeout=180)
    yield data


def _listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# --------------------------------------------------------------------------- report --out
def test_report_out_an_existing_directory_is_one_line_and_leaves_nothing(computed_dir, tmp_path):
    target = tmp_path / "reports"
    target.mkdir()
    proc = _cli({"DATA_DIR": str(computed_dir)}, *REPORT, "--out", str(target))
    assert proc.returncode == 2
    line = _one_error_line(proc, f"error: out: {target} is a directory")
    assert "give a file name" in line
    assert _listing(tmp_path) == ["reports"] and _listing(target) == []


@pytest.mark.parametrize(
    "where, message",
    [
        (lambda tmp: tmp / "missing" / "r.zip", "error: out: directory {tmp}/missing does not exist"),
        (
            lambda tmp: (tmp / "plain").write_text("x") and tmp / "plain" / "r.zip",
            "error: out: {tmp}/plain is not a directory",
        ),
        (lambda tmp: Path("/proc/r.zip"), "error: out: cannot write /proc/r.zip: "),
    ],
)
def test_report_out_unusable_paths_are_one_line(computed_dir, tmp_path, where, message):
    before = _listing(tmp_path)
    out = where(tmp_path)
    before = _listing(tmp_path)
    proc = _cli({"DATA_DIR": str(computed_dir)}, *REPORT, "--out", str(out))
    assert proc.returncode == 2
    _one_error_line(proc, message.format(tmp=tmp_path))
    assert _listing(tmp_path) == before
    assert not list(Path("/proc").glob(".r.zip.*"))


def test_report_out_in_a_read_only_directory_leaves_no_part_file(computed_dir, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    with read_only(locked):
        proc = _cli({"DATA_DIR": str(computed_dir)}, *REPORT, "--out", str(locked / "r.zip"))
    assert proc.returncode == 2
    _one_error_line(proc, f"error: out: cannot write {locked}/r.zip: ")
    assert _listing(locked) == []


def test_report_out_replaces_an_existing_file_whole(computed_dir, tmp_path):
    out = tmp_path / "r.zip"
    out.write_bytes(b"old")
    out.chmod(0o640)
    proc = _cli({"DATA_DIR": str(computed_dir)}, *REPORT, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes()[:2] == b"PK" and (out.stat().st_mode & 0o777) == 0o640
    assert _listing(tmp_path) == ["r.zip"]


def test_a_write_that_runs_out_of_space_removes_its_temporary_file(tmp_path):
    """A real ENOSPC: a 64 KiB tmpfs (needs mount privileges; skipped where they are missing)."""
    from core.services.reports import write_file_atomically

    mnt = tmp_path / "tiny"
    mnt.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        (mnt / "r.zip").write_bytes(b"previous")
        with pytest.raises(ValidationFailed) as info:
            write_file_atomically(mnt / "r.zip", b"x" * 1_000_000)
        assert info.value.errors["out"].startswith(f"cannot write {mnt}/r.zip: No space left on device")
        assert _listing(mnt) == ["r.zip"] and (mnt / "r.zip").read_bytes() == b"previous"
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


# --------------------------------------------------------------------------- DATA_DIR
@pytest.mark.parametrize("command", [["migrate"], ["health"], ["worker"], ["jobs", "list"], [*REPORT, "--out", "x"]])
@pytest.mark.parametrize(
    "data_dir, expected",
    [
        ("/proc/x", "error: DATA_DIR: cannot create /proc/x: No such file or directory"),
        ("{tmp}/plain", "error: DATA_DIR: {tmp}/plain exists and is not a directory"),
    ],
)
def test_unusable_data_dir_is_one_line_for_every_command(tmp_path, command, data_dir, expected):
    (tmp_path / "plain").write_text("x")
    proc = _cli({"DATA_DIR": data_dir.format(tmp=tmp_path)}, *command, timeout=60)
    assert proc.returncode == 2
    _one_error_line(proc, expected.format(tmp=tmp_path))


def test_read_only_data_dir_is_one_line(tmp_path):
    locked = tmp_path / "data"
    locked.mkdir()
    with read_only(locked):
        proc = _cli({"DATA_DIR": str(locked)}, "migrate", timeout=60)
    assert proc.returncode == 2
    _one_error_line(proc, f"error: DATA_DIR: cannot write in {locked}: ")


# --------------------------------------------------------------------------- read-only SQLite via the CLI
def test_read_only_sqlite_file_health_is_an_error_and_writes_are_one_line(computed_dir):
    database = computed_dir / "autoindex.db"
    env = {"DATA_DIR": str(computed_dir)}
    healthy = _cli(env, "health")
    assert "[   OK] Database: sqlite, reachable, writable" in healthy.stdout, healthy.stdout
    with read_only(database):
        for args in (["health"], ["health", "--strict"]):
            proc = _cli(env, *args)
            assert proc.returncode == 1, proc.stdout + proc.stderr
            assert "[ERROR] Database: sqlite, reachable, READ-ONLY" in proc.stdout
            assert "read-only: writes are refused (attempt to write a readonly database)" in proc.stdout
            assert "Traceback" not in proc.stdout + proc.stderr
        proc = _cli(env, "compute")
        assert proc.returncode == 2
        _one_error_line(
            proc, f"error: database sqlite:///{database} is read-only: attempt to write a readonly database"
        )
    assert "writable" in _cli(env, "health").stdout


def test_sqlite_database_in_a_read_only_directory_is_one_line(computed_dir, tmp_path):
    """DATABASE_URL outside DATA_DIR, in a directory nothing can be written in."""
    import shutil

    holder = tmp_path / "db"
    holder.mkdir()
    shutil.copy(computed_dir / "autoindex.db", holder / "autoindex.db")
    env = {"DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": f"sqlite:///{holder}/autoindex.db"}
    with read_only(holder / "autoindex.db"), read_only(holder):
        health = _cli(env, "health", "--strict")
        compute = _cli(env, "compute")
    assert health.returncode == 1 and "[ERROR] Database" in health.stdout
    assert "Traceback" not in health.stdout + health.stderr
    assert compute.returncode == 2
    _one_error_line(compute, f"error: database sqlite:///{holder}/autoindex.db ")


# --------------------------------------------------------------------------- read-only at service level, both dialects
def _make_read_only(db_url: str, pg_admin_url: str | None) -> None:
    """SQLite: PRAGMA query_only on every new connection; PostgreSQL: default_transaction_read_only."""
    from core.db import get_engine, reset_engine_cache

    reset_engine_cache()
    if db_url.startswith("sqlite"):
        event.listen(get_engine(), "connect", lambda conn, _rec: conn.execute("PRAGMA query_only = 1"))
    else:
        name = db_url.rsplit("/", 1)[-1]
        admin = create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on'))
        admin.dispose()


def _make_writable(db_url: str, pg_admin_url: str | None) -> None:
    from core.db import reset_engine_cache

    if db_url.startswith("postgresql"):
        name = db_url.rsplit("/", 1)[-1]
        admin = create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" RESET default_transaction_read_only'))
        admin.dispose()
    reset_engine_cache()


def test_read_only_database_refuses_writes_with_one_line_and_health_says_error(db):
    from sqlalchemy import func, select

    from core.db import unit_of_work
    from core.health import run_checks, write_probe
    from core.models import AuditEvent
    from core.services import audit
    from tests.conftest import PG_ADMIN_URL

    assert write_probe() is None
    _make_read_only(db, PG_ADMIN_URL)
    try:
        with pytest.raises(DatabaseReadOnlyError) as info:
            audit.record_now("tester", "test.write", None)
        message = str(info.value)
        assert message.startswith("database ") and " is read-only: " in message and "\n" not in message
        assert "[SQL" not in message and "audit_events" not in message  # the driver's line, never the statement
        reason = write_probe()
        assert reason is not None
        if db.startswith("postgresql"):
            assert reason == "transactions are read-only (default_transaction_read_only = on)"
        else:
            assert reason == "PRAGMA query_only is on"
        card = run_checks(only=("database",), now=dt.datetime.now(dt.timezone.utc)).check("database")
        assert card.status == "error" and card.facts["writable"] is False
        assert any(f.startswith("read-only: writes are refused") for f in card.findings)
    finally:
        _make_writable(db, PG_ADMIN_URL)
    with unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == 0
    card = run_checks(only=("database",)).check("database")
    assert card.facts["writable"] is True and card.status in ("ok", "warning")


def test_app_start_up_with_an_unusable_data_dir_shows_one_line(monkeypatch):
    """Home.py (AppTest): the page says what is wrong with DATA_DIR in one line; no traceback."""
    from streamlit.testing.v1 import AppTest

    from tests.conftest import _reset_caches

    monkeypatch.setenv("DATA_DIR", "/proc/x")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    _reset_caches()
    try:
        at = AppTest.from_file(str(PROJECT_ROOT / "Home.py"), default_timeout=60).run()
        assert not at.exception, [e.value for e in at.exception]
        assert [e.value for e in at.error] == ["DATA_DIR: cannot create /proc/x: No such file or directory"]
    finally:
        monkeypatch.undo()
        _reset_caches()
