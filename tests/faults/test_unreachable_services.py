"""The database unreachable at start-up (CLI and app), and Redis down while configured (pages, queueing)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jobs.queue import set_immediate
from tests.app.conftest import charts
from tests.faults.conftest import CLOSED_PORT

ROOT = Path(__file__).resolve().parents[2]
DEAD_DB = f"postgresql://autoindex:Sup3r-Secret-pw@127.0.0.1:{CLOSED_PORT}/autoindex"
DEAD_REDIS = f"redis://127.0.0.1:{CLOSED_PORT}/0"

pytestmark = pytest.mark.timeout(120)


def _cli(args: list[str], env: dict[str, str], timeout: float = 60) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "core", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    return proc, time.monotonic() - started


@pytest.mark.parametrize("how", ["--timeout", "DB_CONNECT_TIMEOUT_S"])
def test_cli_migrate_with_the_database_down_retries_then_fails_with_one_clear_line(tmp_path, how):
    env = {**os.environ, "DATA_DIR": str(tmp_path), "DATABASE_URL": DEAD_DB, "LOG_LEVEL": "INFO"}
    env.pop("REDIS_URL", None)
    args = ["migrate"]
    if how == "--timeout":
        args += ["--timeout", "2"]
    else:
        env["DB_CONNECT_TIMEOUT_S"] = "2"
    proc, took = _cli(args, env)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert took < 20, f"bounded retries, took {took:.1f} s"
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    assert "unreachable after" in errors[0] and f"127.0.0.1:{CLOSED_PORT}" in errors[0], errors[0]
    attempts = int(errors[0].split("unreachable after ")[1].split()[0])
    assert attempts >= 3, errors[0]  # it did retry (0.25 + 0.5 + 1 s ... within 2 s)
    assert proc.stderr.count("retrying in") == attempts - 1
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "Sup3r-Secret-pw" not in proc.stderr + proc.stdout  # the URL's password is redacted


@pytest.fixture
def dead_db_env(tmp_path, monkeypatch):
    from tests.conftest import _reset_caches

    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", DEAD_DB)
    monkeypatch.setenv("DB_CONNECT_TIMEOUT_S", "1")
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("EMBEDDED_WORKER", "false")
    _reset_caches()
    yield
    _reset_caches()


def _apptest(path: str, username: str | None = None):  # type: ignore[no-untyped-def]
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / path), default_timeout=60)
    if username:
        from tests.app.conftest import log_in

        log_in(at, username)
    return at.run()


def _all_text(at) -> str:  # type: ignore[no-untyped-def]
    parts = []
    for kind in ("title", "markdown", "caption", "error", "info", "warning", "exception"):
        parts.extend(str(getattr(e, "value", e)) for e in getattr(at, kind))
    return "\n".join(parts)


def test_home_with_the_database_down_shows_one_readable_error(dead_db_env):
    started = time.monotonic()
    at = _apptest("Home.py")
    assert not at.exception, at.exception
    assert time.monotonic() - started < 30
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "unreachable after" in errors[0], errors
    assert "Sup3r-Secret-pw" not in _all_text(at) and "Traceback" not in _all_text(at)
    assert not at.text_input  # no login or setup form over a dead database


@pytest.mark.parametrize("path", ["pages/dashboard.py", "pages/tasks.py", "pages/admin.py"])
@pytest.mark.parametrize("username", [None, "someone"])
def test_a_page_reached_directly_with_the_database_down_never_shows_a_traceback(dead_db_env, path, username):
    at = _apptest(path, username)
    assert not at.exception, [e.value for e in at.exception]
    assert "Sup3r-Secret-pw" not in _all_text(at)


# --------------------------------------------------------------------------- Redis down
@pytest.fixture(scope="module")
def redis_down_app(tmp_path_factory):
    """The AppTest database (demo data, admin + analyst) with REDIS_URL pointing at a closed port."""
    import jobs
    from tests.app.conftest import ADMIN, ANALYST, _reset_caches

    data_dir = tmp_path_factory.mktemp("redisdown")
    keys = ("DATA_DIR", "DATABASE_URL", "REDIS_URL", "DEMO_ON_EMPTY", "EMBEDDED_WORKER")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update({"DATA_DIR": str(data_dir), "DEMO_ON_EMPTY": "true", "EMBEDDED_WORKER": "false"})
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("REDIS_URL", None)
    _reset_caches()
    from core.services import bootstrap, users

    bootstrap.start_up()
    users.create_user(ADMIN[0], ADMIN[1], ADMIN[2], role="admin")
    users.create_user(ANALYST[0], ANALYST[1], ANALYST[2], role="analyst")
    os.environ["REDIS_URL"] = DEAD_REDIS
    _reset_caches()
    saved_huey = jobs.huey.storage, jobs.huey.immediate
    jobs.reconfigure()
    yield data_dir
    set_immediate(jobs.huey, saved_huey[1], storage=saved_huey[0])
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    _reset_caches()


@pytest.fixture
def _navigation_mode(monkeypatch):
    from streamlit.runtime.pages_manager import PagesManager

    from tests.app.conftest import _navigation_mode as fixture  # noqa: F401

    original = PagesManager.__init__

    def init(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)


PAGES = (
    "pages/dashboard.py",
    "pages/strategy.py",
    "pages/reports.py",
    "pages/tasks.py",
    "pages/data.py",
    "pages/diagnostics.py",
    "pages/admin.py",
)


@pytest.mark.slow
@pytest.mark.parametrize("path", PAGES)
def test_every_page_renders_with_redis_down(redis_down_app, _navigation_mode, path):
    from tests.app.conftest import make_app

    started = time.monotonic()
    at = make_app("admin", page=path)  # through Home.py's navigation, as a browser gets there
    assert not at.exception, [e.value for e in at.exception]
    assert at.title, "the page drew its content"
    if path == "pages/dashboard.py":
        assert charts(at), "charts come from the database when the cache is down"
    assert time.monotonic() - started < 45


def test_queueing_with_redis_down_shows_queue_unavailable_and_writes_nothing(redis_down_app, _navigation_mode):
    from core.services import runs as run_service

    before = run_service.count_runs()
    at = _apptest("pages/tasks.py", "analyst")
    assert not at.exception
    button = next(b for b in at.button if b.label == "Queue recompute")
    at = button.click().run()
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    assert any(e.startswith("queue unavailable") for e in errors), errors
    assert run_service.count_runs() == before


def test_services_with_redis_down_raise_queue_unavailable_and_leave_no_rows(redis_down_app):
    from core.services import reports
    from core.services import runs as run_service
    from core.services.ports import QueueUnavailable

    runs, listed = run_service.count_runs(), len(reports.list_reports(None))
    with pytest.raises(QueueUnavailable, match="^queue unavailable: "):
        run_service.enqueue("compute", {}, user="analyst")
    with pytest.raises(QueueUnavailable, match="^queue unavailable: "):
        reports.request_report("performance", "1Y", "csv", owner="analyst")
    assert run_service.count_runs() == runs and len(reports.list_reports(None)) == listed
    with pytest.raises(QueueUnavailable):
        run_service.queue_depth()
