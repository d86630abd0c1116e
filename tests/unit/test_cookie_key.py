"""The re-authentication cookie's signing key: weak or example keys are refused; the generated key file is
never read half-written, even by processes starting at the same moment."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import ConfigurationError

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("value", ["x", "short-but-not-32-characters", "replace-with-64-hex-characters"])
def test_a_weak_or_example_cookie_key_stops_start_up_with_the_variable_named(data_dir, monkeypatch, value):
    from core.config import reset_settings_cache
    from core.services.bootstrap import cookie_key

    monkeypatch.setenv("COOKIE_KEY", value)
    reset_settings_cache()
    with pytest.raises(ConfigurationError, match="^COOKIE_KEY: "):
        cookie_key()


def test_a_long_random_cookie_key_is_used_as_given(data_dir, monkeypatch):
    from core.config import reset_settings_cache
    from core.services.bootstrap import cookie_key

    monkeypatch.setenv("COOKIE_KEY", "a" * 16 + "b" * 16)
    reset_settings_cache()
    assert cookie_key() == "a" * 16 + "b" * 16


def test_processes_starting_at_once_all_read_the_same_full_generated_key(tmp_path):
    script = (
        "import os, time; from core.services.bootstrap import cookie_key; "
        "time.sleep(max(0.0, float(os.environ['START']) - time.time())); print(cookie_key())"
    )
    import time

    for _ in range(2):
        data = tmp_path / f"d{_}"
        data.mkdir()
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "DATA_DIR": str(data), "START": str(time.time() + 3.0)}
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", script],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(6)
        ]
        keys = {p.communicate(timeout=60)[0].strip() for p in procs}
        assert len(keys) == 1 and len(keys.pop()) == 64
        assert [p.name for p in data.iterdir() if p.name.startswith(".cookie_key")] == []


def test_an_empty_key_file_left_by_a_crash_is_replaced(data_dir):
    from core.services.bootstrap import cookie_key

    (Path(data_dir) / "cookie_key").write_text("")
    key = cookie_key()
    assert len(key) == 64 and cookie_key() == key
