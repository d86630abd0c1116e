"""``python -m core serve``: the app process is ready before its first visitor (no browser in these tests).

With ``streamlit run Home.py`` nothing of the app ran until a browser opened a page: no migrations, no in-app worker
running the schedules, no ``/metrics`` (Prometheus saw the target down after every restart). ``serve`` starts them
first, then Streamlit in the same process.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text

from tests.conftest import PG_ADMIN_URL
from tests.e2e.conftest import PROJECT_ROOT, free_port, wait_for_health


def _serve(data_dir: Path, **env: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    full_env = {**os.environ, "DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1", **env}
    for key in ("DATABASE_URL", "REDIS_URL", "METRICS_PORT"):
        if key not in env:
            full_env.pop(key, None)
    log = open(data_dir / "serve.log", "w")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(
        [sys.executable, "-m", "core", "serve", "--server.port", str(port), "--server.address", "127.0.0.1",
         "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=PROJECT_ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(base_url, process, timeout_s=120)
    except Exception:
        process.kill()
        raise
    return process, base_url


def _stop(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        raise


def _metrics(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            values[sample.name + (f"{{{labels}}}" if labels else "")] = sample.value
    return values


def test_serve_migrates_runs_jobs_and_serves_metrics_before_any_visitor(tmp_path) -> None:
    metrics_port = free_port()
    env = {"METRICS_PORT": str(metrics_port), "DEMO_ON_EMPTY": "true", "EMBEDDED_WORKER": "true"}
    process, _base = _serve(tmp_path, **env)
    try:
        # no browser has opened a page: /metrics answers, the in-app worker beats, the demo universe is there
        deadline = time.monotonic() + 30
        while True:
            seen = _metrics(metrics_port)
            if seen.get("autoindex_workers_alive", 0) >= 1 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert seen.get("autoindex_workers_alive") == 1.0, seen
        assert seen['autoindex_active_sessions{state="signed_in"}'] == 0.0
        assert seen["autoindex_data_staleness_max_business_days"] >= 0.0  # prices were seeded and read
        # a job queued from the command line is run by the app's own worker, still with no visitor
        queued = subprocess.run(
            [sys.executable, "-m", "core", "jobs", "enqueue", "compute", "--wait", "--timeout", "90"],
            cwd=PROJECT_ROOT,
            env={**os.environ, "DATA_DIR": str(tmp_path), "EMBEDDED_WORKER": "false"},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert queued.returncode == 0, queued.stdout + queued.stderr
        assert "succeeded" in queued.stderr  # --wait follows the run on stderr; exit 0 = it succeeded
    finally:
        code = _stop(process)
    assert code == 0
    log = (tmp_path / "serve.log").read_text()
    assert "embedded job consumer stopped" in log  # a clean stop: a running job gets its chance to finish


def test_serve_starts_the_app_although_the_database_is_not_reachable_yet(tmp_path) -> None:
    env = {
        "DATABASE_URL": f"postgresql+psycopg://postgres:not-in-logs@127.0.0.1:{free_port()}/nothing",
        "DB_CONNECT_TIMEOUT_S": "1",
        "EMBEDDED_WORKER": "false",
    }
    started = time.monotonic()
    process, base_url = _serve(tmp_path, **env)
    try:
        assert time.monotonic() - started < 30  # the server listens at once; the start-up waits on its own thread
        with urllib.request.urlopen(f"{base_url}/_stcore/health", timeout=5) as response:
            assert response.status == 200
        _wait_for_line(tmp_path / "serve.log", "start-up failed; retrying")
    finally:
        _stop(process)
    assert "not-in-logs" not in (tmp_path / "serve.log").read_text()


def _wait_for_line(path: Path, text: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in path.read_text():
        assert time.monotonic() < deadline, f"{text!r} not logged in {timeout_s} s"
        time.sleep(0.2)


def test_a_database_that_comes_up_later_is_migrated_without_a_visitor(tmp_path) -> None:
    """The app's PostgreSQL database is created only after the app started (a database slower to come up than
    DB_CONNECT_TIMEOUT_S): the start-up thread keeps trying, then migrates, seeds and starts the worker, with no
    browser anywhere."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"autoindex_later_{uuid.uuid4().hex[:10]}"
    metrics_port = free_port()
    env = {
        "DATABASE_URL": admin.url.set(database=name).render_as_string(hide_password=False),
        "DB_CONNECT_TIMEOUT_S": "1",
        "METRICS_PORT": str(metrics_port),
        "DEMO_ON_EMPTY": "true",
        "EMBEDDED_WORKER": "true",
    }
    process, _base = _serve(tmp_path, **env)
    try:
        _wait_for_line(tmp_path / "serve.log", "start-up failed; retrying")
        assert _metrics(metrics_port).get("autoindex_workers_alive", 0) == 0  # no database, no worker yet
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        deadline = time.monotonic() + 90
        seen: dict[str, float] = {}
        while time.monotonic() < deadline and seen.get("autoindex_workers_alive", 0) < 1:
            time.sleep(0.5)
            seen = _metrics(metrics_port)
        assert seen.get("autoindex_workers_alive") == 1.0, seen  # migrated, seeded and the worker beating
        assert seen["autoindex_data_staleness_max_business_days"] >= 0.0
        assert "start-up done (attempt " in (tmp_path / "serve.log").read_text()
    finally:
        _stop(process)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_a_mistyped_option_or_a_taken_metrics_port_stops_serve_before_anything_starts(tmp_path) -> None:
    run = {"cwd": PROJECT_ROOT, "capture_output": True, "text": True, "timeout": 120}
    env = {**os.environ, "DATA_DIR": str(tmp_path), "DEMO_ON_EMPTY": "true"}
    env.pop("DATABASE_URL", None)
    env.pop("METRICS_PORT", None)
    typo = subprocess.run([sys.executable, "-m", "core", "serve", "--server.prot", "1"], env=env, **run)
    assert typo.returncode == 2 and "No such option '--server.prot'" in typo.stderr, typo.stderr
    helped = subprocess.run([sys.executable, "-m", "core", "serve", "--help"], env=env, **run)
    assert helped.returncode == 0 and "streamlit run" in helped.stdout
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = subprocess.run(
            [sys.executable, "-m", "core", "serve", "--server.port", str(free_port())],
            env={**env, "METRICS_PORT": str(port)},
            **run,
        )
    assert busy.returncode == 2 and f"METRICS_PORT {port} cannot be served" in busy.stderr, busy.stderr
    assert not (tmp_path / "autoindex.db").exists()  # none of them migrated, seeded or started a worker
