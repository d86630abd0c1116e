"""deploy/prometheus and deploy/grafana: the rules pass ``promtool check rules`` and their unit tests, every metric
the rules and the dashboard name is one the code exposes, and a real Prometheus (Debian's package) scrapes a running
worker and a running app on 127.0.0.1.

promtool and prometheus come from Debian's ``prometheus`` package (scripts/test-services.sh installs it as root); a
missing binary is a failure, never a skip.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROM_DIR = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "autoindex.json"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: apt-get install -y prometheus (scripts/test-services.sh does it as root)")
    return path


def _run(*args: str, cwd: Path = PROM_DIR) -> str:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_promtool_checks_the_rules_and_the_config():
    out = _run(_tool("promtool"), "check", "rules", "alerts.yml")
    assert "SUCCESS: 8 rules found" in out
    _run(_tool("promtool"), "check", "config", "prometheus.yml")


def test_the_rules_fire_as_their_unit_tests_say():
    """Worker down after 2 min, login spike, queue backlog, job failure rate, data stale (promtool test rules)."""
    assert "SUCCESS" in _run(_tool("promtool"), "test", "rules", "alerts_test.yml")


def _names(text: str) -> set[str]:
    return set(re.findall(r"\bautoindex_[a-z_]+", text))


def test_every_metric_named_by_the_rules_and_the_dashboard_is_exposed(sqlite_db):
    from prometheus_client.parser import text_string_to_metric_families

    from core.infra import metrics
    from core.services import operations

    metrics.observe_job("compute", "succeeded", 1.0)
    metrics.observe_page("Dashboard", 10.0)
    metrics.count_login("success")
    operations.register_readers()
    families = list(text_string_to_metric_families(metrics.render()))
    exposed = {s.name for f in families for s in f.samples} | {f.name for f in families}  # empty families too
    exposed |= {"autoindex_active_sessions"}  # the app's session count (ui.monitoring), served by app processes
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    named = _names((PROM_DIR / "alerts.yml").read_text()) | _names(exprs)
    assert named, "no metric named"
    assert named <= exposed, named - exposed
    assert len(dashboard["panels"]) >= 10 and dashboard["uid"] == "autoindex"


# --------------------------------------------------------------------------- a real Prometheus
def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _query(prom: str, expr: str) -> list[dict]:
    url = f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())["data"]["result"]


def _wait(predicate, timeout_s: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except OSError as exc:
            last = exc
        time.sleep(0.5)
    raise AssertionError(f"{what} within {timeout_s} s (last: {last!r})")


@pytest.mark.timeout(240)
def test_a_real_prometheus_scrapes_a_worker_and_the_app(tmp_path, browser):
    """Worker (SQLite queue, ``--metrics-port``) and app (``METRICS_PORT``, first session opened in Chromium) on
    127.0.0.1; Prometheus scrapes both every second: both targets up, the worker's heartbeat seen, the login page
    render observed, the login counted."""
    from tests.e2e.conftest import start_server, stop_server
    from tests.e2e.test_app_flow import login

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    worker_port, app_metrics_port, prom_port = _free_port(), _free_port(), _free_port()
    env = {**__import__("os").environ, "DATA_DIR": str(data_dir), "DEMO_ON_EMPTY": "false", "METRICS_HOST": "127.0.0.1"}
    for key in ("DATABASE_URL", "REDIS_URL", "METRICS_PORT"):
        env.pop(key, None)
    subprocess.run(
        [sys.executable, "-m", "core", "migrate"], cwd=ROOT, env=env, check=True, capture_output=True, timeout=120
    )
    subprocess.run(
        [sys.executable, "-m", "core", "create-user", "ops", "--role", "admin", "--password-stdin"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
        input=b"correct horse battery staple\n",
    )
    worker_log = open(data_dir / "worker.log", "w")  # noqa: SIM115 - closed below
    worker = subprocess.Popen(
        [sys.executable, "-m", "core", "worker", "-w", "1", "--metrics-port", str(worker_port)],
        cwd=ROOT,
        env=env,
        stdout=worker_log,
        stderr=subprocess.STDOUT,
    )
    app, base_url = start_server(
        data_dir, {"METRICS_PORT": str(app_metrics_port), "METRICS_HOST": "127.0.0.1", "DEMO_ON_EMPTY": "false"}
    )
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"rule_files: ['{PROM_DIR / 'alerts.yml'}']\n"
        "scrape_configs:\n"
        f"  - job_name: autoindex-worker\n    static_configs: [{{targets: ['127.0.0.1:{worker_port}']}}]\n"
        f"  - job_name: autoindex-app\n    static_configs: [{{targets: ['127.0.0.1:{app_metrics_port}']}}]\n"
    )
    prom_log = open(tmp_path / "prometheus.log", "w")  # noqa: SIM115 - closed below
    prometheus = subprocess.Popen(
        [
            _tool("prometheus"),
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ],
        stdout=prom_log,
        stderr=subprocess.STDOUT,
    )
    prom = f"http://127.0.0.1:{prom_port}"
    page = browser.new_page()
    try:
        # Streamlit runs Home.py (and starts the app's /metrics) for a session only
        login(page, base_url, "ops", "correct horse battery staple")
        page.get_by_role("heading", name=re.compile("Dashboard")).wait_for(timeout=90_000)
        up = _wait(
            lambda: (
                {r["metric"]["job"]: r["value"][1] for r in _query(prom, "up")}
                if all(v == "1" for v in {r["metric"]["job"]: r["value"][1] for r in _query(prom, "up")}.values())
                and len(_query(prom, "up")) == 2
                else None
            ),
            60,
            "both targets up",
        )
        assert up == {"autoindex-worker": "1", "autoindex-app": "1"}
        alive = _wait(
            lambda: [
                r for r in _query(prom, 'autoindex_workers_alive{job="autoindex-worker"}') if float(r["value"][1]) >= 1
            ],
            60,
            "the worker's heartbeat",
        )
        assert alive
        sessions = _wait(lambda: _query(prom, 'autoindex_active_sessions{job="autoindex-app"}'), 30, "sessions")
        assert sum(float(r["value"][1]) for r in sessions) >= 1
        renders = _wait(lambda: _query(prom, "autoindex_page_render_seconds_count"), 30, "a page render")
        assert {r["metric"]["job"] for r in renders} == {"autoindex-app"}
        logins = _wait(lambda: _query(prom, 'autoindex_logins_total{outcome="success"}'), 30, "the login")
        assert float(logins[0]["value"][1]) >= 1
        assert _query(prom, 'autoindex_state_read_ok{reader="queue",job="autoindex-worker"}')[0]["value"][1] == "1"
        rules = json.loads(urllib.request.urlopen(f"{prom}/api/v1/rules", timeout=5).read())["data"]["groups"]
        assert rules[0]["name"] == "autoindex" and len(rules[0]["rules"]) == 8
    finally:
        page.close()
        for process in (prometheus, worker):
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        stop_server(app)
        worker_log.close()
        prom_log.close()
