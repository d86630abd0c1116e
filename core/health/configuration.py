"""The configuration card: every setting (secrets redacted) and the versions of the app and its key dependencies."""

from __future__ import annotations

import functools
import importlib.metadata
import platform

import pandas as pd

from core.config import PROJECT_ROOT, get_settings
from core.health.base import INFO, Check, Context, register

#: Distributions whose versions the configuration card lists.
KEY_PACKAGES = (
    "streamlit",
    "sqlalchemy",
    "alembic",
    "pandas",
    "numpy",
    "pydantic",
    "huey",
    "redis",
    "psycopg",
    "plotly",
)


CONFIGURATION_RULES = ["informational: every secret is shown only as set / not set, URLs without passwords"]


def app_version() -> str:
    """The deployed commit (short hash, from .git without running git), or ``unknown``."""
    git = PROJECT_ROOT / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if head.startswith("ref: "):
            ref = head[5:]
            path = git / ref
            if path.is_file():
                return path.read_text().strip()[:10]
            packed = git / "packed-refs"
            for line in packed.read_text().splitlines() if packed.is_file() else []:
                if line.endswith(" " + ref):
                    return line.split()[0][:10]
            return "unknown"
        return head[:10]
    except OSError:
        return "unknown"


@functools.lru_cache(maxsize=1)
def versions() -> dict[str, str]:
    """App commit, Python and the key dependencies' versions (read once per process: they change on restart)."""
    out = {"autoindex": app_version(), "python": platform.python_version()}
    for name in KEY_PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


@register(
    "configuration",
    "Configuration",
    shows="every setting with secrets redacted; app, Python and key dependency versions",
    rules=CONFIGURATION_RULES,
    needs_database=False,
    order=90,
)
def check_configuration(ctx: Context, check: Check) -> None:
    check.status = INFO
    settings = get_settings()
    redacted = settings.redacted()
    check.tables["settings"] = pd.DataFrame(sorted(redacted.items()), columns=["setting", "value"])
    check.tables["versions"] = pd.DataFrame(list(versions().items()), columns=["component", "version"])
    check.facts.update(
        {
            "database": "sqlite" if settings.is_sqlite else "postgresql",
            "queue": "redis" if settings.redis_url else "sqlite",
            "cache": "redis" if settings.redis_url else "in-process",
        }
    )
    check.summary = (
        f"{check.facts['database']} database, {check.facts['queue']} queue, {check.facts['cache']} "
        f"cache; Python {platform.python_version()}"
    )
    return
