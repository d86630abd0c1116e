"""The app's pages and which roles see them (st.navigation is built from this table only)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from core.services.access import ADMIN_ONLY, ALL_ROLES

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class PageSpec:
    path: str
    title: str
    icon: str
    roles: tuple[str, ...]
    default: bool = False


PAGES: tuple[PageSpec, ...] = (
    PageSpec("pages/dashboard.py", "Dashboard", ":material/monitoring:", ALL_ROLES, default=True),
    PageSpec("pages/strategy.py", "Strategy", ":material/tune:", ALL_ROLES),
    PageSpec("pages/research.py", "Research", ":material/science:", ALL_ROLES),
    PageSpec("pages/reports.py", "Reports", ":material/description:", ALL_ROLES),
    PageSpec("pages/tasks.py", "Tasks", ":material/schedule:", ALL_ROLES),
    PageSpec("pages/data.py", "Data", ":material/database:", ALL_ROLES),
    PageSpec("pages/diagnostics.py", "Diagnostics", ":material/health_and_safety:", ADMIN_ONLY),
    PageSpec("pages/admin.py", "Admin", ":material/admin_panel_settings:", ADMIN_ONLY),
    PageSpec("pages/account.py", "Account", ":material/account_circle:", ALL_ROLES),
)


def roles_for(path: str) -> tuple[str, ...]:
    for spec in PAGES:
        if spec.path == path:
            return spec.roles
    return ADMIN_ONLY


def url_path_of(spec: PageSpec) -> str:
    """The page's URL path (``/tasks`` for pages/tasks.py)."""
    return Path(spec.path).stem


def pages_for(role: str) -> list[st.Page]:
    """st.Page objects for the pages ``role`` may see (an unlisted page cannot be reached by URL)."""
    return [
        st.Page(
            str(PROJECT_ROOT / spec.path),
            title=spec.title,
            icon=spec.icon,
            default=spec.default,
            url_path=url_path_of(spec),
        )
        for spec in PAGES
        if role in spec.roles
    ]


def forbidden_for(role: str, url_path: str | None) -> PageSpec | None:
    """The page at ``url_path`` when it exists but ``role`` may not see it (None otherwise)."""
    for spec in PAGES:
        if url_path_of(spec) == url_path and role not in spec.roles:
            return spec
    return None
