"""End-to-end fixtures: the app started as the README starts it (``python -m core serve``, which runs ``streamlit run
Home.py`` in its own process after its start-up) on a free port with its own DATA_DIR, and headless Chromium.

The server starts once per session on an empty database (the demo universe is seeded on first start);
tests in tests/e2e/test_app_flow.py run in file order because the first one creates the administrator.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
from tests.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402,F401  (the browser fixture lives there)

START_TIMEOUT_S = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_health(base_url: str, process: subprocess.Popen, timeout_s: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(f"{base_url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.25)
    raise TimeoutError(f"streamlit did not become healthy at {base_url} within {timeout_s}s")


#: How a test server is started: ``serve`` (``python -m core serve``, the README's command: migrations, the demo
#: universe and the embedded worker start before any visitor) or ``streamlit`` (plain ``streamlit run Home.py``:
#: nothing runs until a browser session does, the harder case the deep-link tests keep).
LAUNCHERS = {
    "serve": [sys.executable, "-m", "core", "serve"],
    "streamlit": [sys.executable, "-m", "streamlit", "run", str(PROJECT_ROOT / "Home.py")],
}


def start_server(
    data_dir: Path, extra_env: dict[str, str] | None = None, *, launcher: str = "serve"
) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {
        **os.environ,
        "DATA_DIR": str(data_dir),
        "DEMO_ON_EMPTY": "true",
        "EMBEDDED_WORKER": "false",
        "PYTHONUNBUFFERED": "1",
        **(extra_env or {}),
    }
    for key in ("DATABASE_URL", "REDIS_URL", "COOKIE_KEY"):
        env.pop(key, None)
    log = open(data_dir / "server.log", "w")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(
        [
            *LAUNCHERS[launcher],
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(base_url, process)
    except Exception:
        process.terminate()
        raise
    return process, base_url


def stop_server(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="session")
def e2e_data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("e2e-data")


@pytest.fixture(scope="session")
def server(e2e_data_dir) -> Iterator[str]:
    """Base URL of a running AutoIndex server on an empty database."""
    process, base_url = start_server(e2e_data_dir)
    yield base_url
    stop_server(process)


@pytest.fixture
def fresh_server(tmp_path) -> Iterator[tuple[str, Path]]:
    """A server of its own on an empty database (for the first-run flow): (base URL, data dir)."""
    process, base_url = start_server(tmp_path)
    yield base_url, tmp_path
    stop_server(process)


@pytest.fixture(scope="session")
def admin_account(server, e2e_data_dir) -> tuple[str, str, str]:
    """The administrator of the shared server, created through the services (so tests do not depend on order)."""
    from core.config import reset_settings_cache
    from core.db import reset_engine_cache

    account = ("admin", "Ada Admin", "correct horse battery staple")
    saved = {k: os.environ.get(k) for k in ("DATA_DIR", "DATABASE_URL")}
    os.environ["DATA_DIR"] = str(e2e_data_dir)
    os.environ.pop("DATABASE_URL", None)
    reset_engine_cache()
    reset_settings_cache()
    try:
        from core.db import migrate
        from core.services import users

        migrate(timeout_s=30)  # the server migrates on its first visit; no visit may have happened yet
        if not any(u.username == account[0] for u in users.list_users()):
            users.create_user(account[0], account[1], account[2], role="admin")
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        reset_engine_cache()
        reset_settings_cache()
    return account


@pytest.fixture
def page(browser) -> Iterator[object]:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


@pytest.fixture
def service_env(e2e_data_dir, monkeypatch) -> Iterator[None]:
    """Let the test process call services on the server's database (SQLite in WAL mode)."""
    from core.config import reset_settings_cache
    from core.db import reset_engine_cache

    monkeypatch.setenv("DATA_DIR", str(e2e_data_dir))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    reset_engine_cache()
    reset_settings_cache()
    yield
    reset_engine_cache()
    reset_settings_cache()
