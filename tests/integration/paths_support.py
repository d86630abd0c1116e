"""Making a file or directory really read-only in tests, also for root (issue 11, case 14).

``chmod 444`` does not stop root (it bypasses permission bits), so as root the immutable attribute
(``chattr +i``) is set as well; it refuses every write, also root's, and is always removed again.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def _chattr(flag: str, path: Path) -> bool:
    if shutil.which("chattr") is None:
        return False
    return subprocess.run(["chattr", flag, str(path)], capture_output=True).returncode == 0


@contextlib.contextmanager
def read_only(path: Path | str) -> Iterator[Path]:
    """``chmod a-w`` on ``path`` (and ``chattr +i`` when running as root); restored on exit."""
    path = Path(path)
    mode = path.stat().st_mode & 0o7777
    path.chmod(mode & ~0o222)
    immutable = False
    try:
        if os.geteuid() == 0:
            immutable = _chattr("+i", path)
            if not immutable:
                pytest.skip(f"running as root and chattr +i is not available on {path}: cannot make it read-only")
        yield path
    finally:
        if immutable:
            _chattr("-i", path)
        path.chmod(mode)
