"""Secrets never leak: the cookie key, passwords (and their hashes) and TWELVEDATA_API_KEY appear in no server or
CLI log, no page and no exported report; XSRF protection stays on in the config and in the running server."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import tomllib
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path

import pytest

from tests.app.conftest import ADMIN, ANALYST, make_app
from tests.security.conftest import page_dump

ROOT = Path(__file__).resolve().parents[2]
COOKIE_KEY = "ck-Secret-9f8e7d6c5b4a39281706-e5d4c3b2a1"
API_KEY = "td-Secret-1a2b3c4d5e6f7a8b9c0d"
PASSWORD = "pw-Secret correct horse 42"
WRONG_PASSWORD = "pw-Secret wrong guess 43"
SECRETS = (COOKIE_KEY, API_KEY, PASSWORD, WRONG_PASSWORD, "$2b$", "$2a$")
ALL_PAGES = (
    "pages/dashboard.py",
    "pages/strategy.py",
    "pages/reports.py",
    "pages/tasks.py",
    "pages/data.py",
    "pages/diagnostics.py",
    "pages/admin.py",
)

pytestmark = pytest.mark.timeout(180)


def _leaks(text: str | bytes, secrets=SECRETS) -> list[str]:
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return [s for s in secrets if s in text]


# --------------------------------------------------------------------------- XSRF
def test_xsrf_protection_is_on_in_the_shipped_config():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["enableXsrfProtection"] is True
    assert config["client"]["showErrorDetails"] == "none"  # tracebacks never reach the browser


# --------------------------------------------------------------------------- a real server and browser
@pytest.fixture(scope="module")
def real_server(tmp_path_factory):
    from tests.e2e.conftest import start_server, stop_server

    data_dir = tmp_path_factory.mktemp("secrets-server")
    process, base_url = start_server(
        data_dir, {"COOKIE_KEY": COOKIE_KEY, "TWELVEDATA_API_KEY": API_KEY, "LOG_LEVEL": "DEBUG"}
    )
    try:
        yield base_url, data_dir, process
    finally:
        stop_server(process)


def test_running_server_refuses_state_changing_requests_without_the_xsrf_token(real_server):
    base_url, _, _ = real_server
    request = urllib.request.Request(f"{base_url}/_stcore/upload_file/session/file", data=b"x", method="PUT")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    # 403 "XSRF token missing or invalid" (with protection off the same request gets 400)
    assert info.value.code == 403 and b"XSRF" in info.value.read()


@pytest.mark.slow
def test_secrets_never_appear_in_the_server_log_of_a_real_session(real_server, browser):
    from tests.e2e.test_app_flow import login, wait_signed_in

    base_url, data_dir, process = real_server
    contexts = [browser.new_context(viewport={"width": 1440, "height": 900}), browser.new_context()]
    try:
        page = contexts[0].new_page()
        page.set_default_timeout(30_000)
        page.goto(base_url)
        page.get_by_text("Welcome to AutoIndex").wait_for(timeout=90_000)
        token = (data_dir / "setup_token.txt").read_text().strip()
        page.get_by_label("Setup token").fill(token)
        page.get_by_label("Administrator username").fill("secadmin")
        page.get_by_label("Full name").fill("Sec Admin")
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_label("Repeat password").fill(PASSWORD)
        page.get_by_role("button", name="Create administrator").click()
        wait_signed_in(page)
        cookie = next(c["value"] for c in page.context.cookies() if c["name"] == "autoindex_auth")
        for path in ("diagnostics", "admin", "data", "tasks"):
            page.goto(f"{base_url}/{path}")
            page.locator("h1").first.wait_for()
            assert not _leaks(page.content()), path
        fresh = contexts[1].new_page()
        fresh.set_default_timeout(30_000)
        login(fresh, base_url, "secadmin", WRONG_PASSWORD)
        fresh.get_by_text(re.compile("invalid|wrong|incorrect", re.I)).first.wait_for()
        login(fresh, base_url, "secadmin", PASSWORD)
        wait_signed_in(fresh)
    finally:
        for context in contexts:
            context.close()
    log = (data_dir / "server.log").read_text(errors="replace")
    assert "setup token" in log.lower()  # the log was captured (the token is meant to be printed once)
    assert not _leaks(log), _leaks(log)
    assert cookie not in log  # nor the signed re-authentication cookie


def test_secrets_never_appear_in_cli_output(tmp_path):
    from tests.stubs.twelvedata_stub import Fault, start_stub

    base_url, stub, stop = start_stub(api_key=API_KEY)
    env = {
        **os.environ,
        "DATA_DIR": str(tmp_path),
        "COOKIE_KEY": COOKIE_KEY,
        "TWELVEDATA_API_KEY": API_KEY,
        "TWELVEDATA_BASE_URL": base_url,
        "TWELVEDATA_CREDITS_PER_MINUTE": "1000",
        "DEMO_ON_EMPTY": "false",
    }
    for key in ("DATABASE_URL", "REDIS_URL"):
        env.pop(key, None)
    outputs = []

    def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [sys.executable, "-m", "core", "--log-level", "DEBUG", *args],
            cwd=ROOT,
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )
        outputs.append(proc.stdout + proc.stderr)
        return proc

    try:
        assert (
            cli("create-user", "cliuser", "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n").returncode == 0
        )
        assert cli("seed-demo", "--years", "0.2").returncode == 0
        assert cli("refresh", "--provider", "twelvedata", "--symbols", "AAPL,MSFT").returncode == 0
        stub.push(Fault(status=401, error=(401, f"**apikey** {API_KEY} is incorrect")))  # a server echoing the key
        assert cli("refresh", "--provider", "twelvedata", "--symbols", "AAPL").returncode == 2
        assert any(
            "Authorization" in r.headers.get("authorization", "") or r.headers.get("authorization")
            for r in stub.requests
        )  # the key really was sent (in a header, not the URL)
        assert not any(API_KEY in r.path for r in stub.requests)
    finally:
        stop()
    text = "\n".join(outputs)
    assert "DEBUG" in text or "INFO" in text  # logging was on
    assert not _leaks(text), (_leaks(text), text[-3000:])


# --------------------------------------------------------------------------- pages and exports
@pytest.fixture
def secret_env(app_db, monkeypatch):
    from tests.app.conftest import _reset_caches

    monkeypatch.setenv("COOKIE_KEY", COOKIE_KEY)
    monkeypatch.setenv("TWELVEDATA_API_KEY", API_KEY)
    _reset_caches()
    yield
    _reset_caches()


@pytest.mark.parametrize("path", ALL_PAGES)
def test_no_page_shows_a_secret_or_a_password_hash(secret_env, path):
    for username in (ADMIN[0], ANALYST[0]):
        at = (
            make_app(username, page=path)
            if path not in ("pages/admin.py", "pages/diagnostics.py") or username == ADMIN[0]
            else None
        )
        if at is None:
            continue
        assert not at.exception
        dump = page_dump(at)
        assert not _leaks(dump, SECRETS + (ADMIN[2], ANALYST[2])), (path, username)


def _export_texts(data: bytes) -> list[bytes]:
    """The bytes of an export plus every member of a zip (XLSX, CSV bundle) and every Flate stream of a PDF."""
    parts = [data]
    if data[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            parts += [archive.read(name) for name in archive.namelist()]
    if data[:4] == b"%PDF":
        for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
            try:
                parts.append(zlib.decompress(stream))
            except zlib.error:
                pass
    return parts


@pytest.mark.parametrize("fmt", ["html", "pdf", "xlsx", "csv"])
def test_no_export_carries_a_secret(secret_env, fmt):
    from core.services.reports import build_report_bytes

    filename, data = build_report_bytes("performance", "max", fmt, generated_by=ADMIN[0])
    assert data
    for part in _export_texts(data):
        assert not _leaks(part, SECRETS + (ADMIN[2], ANALYST[2])), (filename, fmt)
