"""DATA_DIR must be a directory AutoIndex can write in; otherwise one line names it (issue 11, case 14)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import check_data_dir, get_settings, reset_settings_cache
from core.errors import ConfigurationError
from tests.integration.paths_support import read_only


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda tmp: Path("/proc/x"), "cannot create /proc/x: No such file or directory"),
        (lambda tmp: (tmp / "file").write_text("x") and tmp / "file", "exists and is not a directory"),
        (lambda tmp: (tmp / "file").write_text("x") and tmp / "file" / "sub", "Not a directory"),
    ],
)
def test_unusable_data_dir_is_one_line_naming_the_variable(tmp_path, make, expected):
    path = make(tmp_path)
    with pytest.raises(ConfigurationError) as info:
        check_data_dir(path)
    assert info.value.variable == "DATA_DIR"
    assert str(info.value).startswith("DATA_DIR: ") and expected in str(info.value)
    assert "\n" not in str(info.value)


def test_read_only_data_dir_is_refused_and_nothing_is_left_in_a_good_one(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    with read_only(locked):
        with pytest.raises(ConfigurationError, match=r"DATA_DIR: cannot write in .*locked"):
            check_data_dir(locked)
    check_data_dir(tmp_path / "new" / "deeper")  # created, parents too
    assert list((tmp_path / "new" / "deeper").iterdir()) == []  # the write probe is removed


def test_get_settings_checks_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("DATA_DIR", "/proc/x")
    reset_settings_cache()
    try:
        with pytest.raises(ConfigurationError, match="DATA_DIR: cannot create /proc/x"):
            get_settings()
    finally:
        monkeypatch.setenv("DATA_DIR", str(tmp_path))
        reset_settings_cache()
