"""The Diagnostics screen: overall status, one card per health check with its rules, the detail tables,
cache contents and the admin cache actions (each audited).

Everything shown comes from :func:`core.health.run_checks` (the same checks as
``python -m core health``); a check that fails or times out arrives as an error card, so nothing here
can raise a traceback onto the page.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
import streamlit as st

from core import health
from core.errors import AutoIndexError
from core.infra import cache as cache_service
from core.schemas.user import UserOut
from core.services import access, audit, cache_admin
from core.services.freshness import STALE_HELP
from ui import auth, forms
from ui import cache as ui_cache
from ui import tables as table_view

log = logging.getLogger(__name__)

#: Session-state key of the namespace picker (kept here until ui/state.py gathers it).
DIAG_NAMESPACE = "diag_namespace"
#: Form name of the cache actions' success / error notices.
NOTICE = "diagnostics_cache"

_ICON = {
    "ok": ":material/check_circle:",
    "warning": ":material/warning:",
    "error": ":material/error:",
    "info": ":material/info:",
}
_COLOR = {"ok": "green", "warning": "orange", "error": "red", "info": "gray"}
_LABEL = {"ok": "OK", "warning": "Warning", "error": "Error", "info": "Not applicable"}


def _badge(status: str) -> str:
    return f":{_COLOR.get(status, 'gray')}-badge[{_ICON.get(status, '')} {_LABEL.get(status, status)}]"


def status_header(report: health.HealthReport) -> None:
    """The overall status line, with the failing checks named."""
    failing = [c.title for c in report.checks if c.status in ("warning", "error")]
    text = (
        f"Overall status: **{report.status.upper()}**"
        + (f" — attention: {', '.join(failing)}" if failing else " — every check passed")
        + f"  \nChecked {report.at:%Y-%m-%d %H:%M:%S} UTC in {report.duration_ms:.0f} ms; "
        "the rules behind each status are written on its card."
    )
    {"ok": st.success, "warning": st.warning, "error": st.error}.get(report.status, st.info)(
        text, icon=_ICON.get(report.status)
    )


def _fact_text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value)) or "none"
    return "—" if value is None else str(value)


def card(check: health.Check) -> None:
    """One check: status badge, summary, what triggered it, its rules, and its facts."""
    with st.container(border=True):
        st.markdown(f"**{check.title}** {_badge(check.status)}")
        st.markdown(check.summary or "—")
        for finding in check.findings:
            if finding != check.summary:
                (st.error if check.status == "error" else st.warning)(finding)
        if check.rules:
            st.caption("Rules: " + "; ".join(check.rules) + ".")
        if check.facts:
            with st.expander("Details"):
                table_view.show(
                    pd.DataFrame({"fact": list(check.facts), "value": [_fact_text(v) for v in check.facts.values()]}),
                    hide_index=True,
                    width="stretch",
                )
        st.caption(f"checked in {check.duration_ms:.0f} ms")


def cards(report: health.HealthReport, columns: int = 3) -> None:
    cols = st.columns(columns)
    for i, check in enumerate(report.checks):
        with cols[i % columns]:
            card(check)


def _table(
    report: health.HealthReport, key: str, name: str, empty: str, column_config: dict[str, Any] | None = None
) -> None:
    try:
        frame = report.check(key).tables.get(name)
    except KeyError:
        frame = None
    if frame is None or frame.empty:
        st.caption(empty)
        return
    table_view.show(frame, column_config=column_config)


def _tenths(label: str | None = None) -> Any:
    """A number column to one decimal (a percentile of milliseconds or KiB: more digits are noise)."""
    return st.column_config.NumberColumn(label, format="%.1f")


#: The timing tables' columns (:class:`core.infra.telemetry.TimingStats`): ms and KiB to one decimal.
TIMING_COLUMNS = {
    "p50_ms": _tenths(),
    "p95_ms": _tenths(),
    "max_ms": _tenths(),
    "cpu_p50_ms": _tenths("CPU p50 (ms)"),
    "cpu_p95_ms": _tenths("CPU p95 (ms)"),
    "figure_kib_p50": _tenths("Figure p50 (KiB)"),
}


def tables(report: health.HealthReport) -> None:
    """The detail tables, one tab each."""
    tabs = st.tabs(["Data freshness", "Jobs", "Page timings", "Workers", "Row counts", "Configuration"])
    with tabs[0]:
        st.caption(
            f"Benchmark first. {STALE_HELP} Gaps = business days between the first and last price with no price."
        )
        _table(report, "freshness", "freshness", "No assets stored.")
    with tabs[1]:
        st.markdown("**Last refresh and compute**")
        _table(report, "jobs", "last runs", "No runs recorded.")
        st.markdown(f"**Durations by kind over {health.STATS_DAYS} days** (seconds; failure rate of finished runs)")
        _table(report, "jobs", "durations by kind (7 days)", f"No runs in the last {health.STATS_DAYS} days.")
    with tabs[2]:
        st.markdown(
            f"**Page render times over {health.STATS_DAYS} days** (ms; one row per page and per fragment: "
            "count = runs; cpu = server CPU per run; figure KiB = figure JSON sent per run)"
        )
        _table(report, "performance", "page timings", "No page timings recorded yet.", TIMING_COLUMNS)
        st.markdown("**Slowest service calls** (ms)")
        _table(report, "performance", "slowest service calls", "No slow service calls recorded.", TIMING_COLUMNS)
    with tabs[3]:
        _table(report, "workers", "workers", "No worker has sent a heartbeat in the last hour.")
    with tabs[4]:
        _table(report, "database", "row counts", "Row counts unavailable.")
    with tabs[5]:
        st.caption("Secrets are shown only as set / not set; URLs without their password.")
        _table(report, "configuration", "settings", "Settings unavailable.")
        _table(report, "configuration", "versions", "Versions unavailable.")


# --------------------------------------------------------------------------- cache actions
def _on_clear(namespace: str | None) -> None:
    """Clear one namespace (or all) through the cache service, which checks the admin role and audits."""
    try:
        deleted = cache_admin.clear(namespace, actor=auth.actor())
    except AutoIndexError as exc:
        forms.set_errors(NOTICE, {"cache": exc.message})
        return
    forms.clear(NOTICE)
    forms.set_notice(
        NOTICE,
        f"Cleared namespace {namespace}: {deleted} key(s) deleted."
        if namespace
        else f"Cleared every cache namespace: {deleted} key(s) deleted.",
    )


def _on_clear_namespace() -> None:
    _on_clear(str(st.session_state.get(DIAG_NAMESPACE) or "") or None)


def _on_clear_all() -> None:
    _on_clear(None)


def _on_clear_streamlit() -> None:
    try:
        who = access.check(auth.actor(), access.ADMIN_ONLY, action="clearing the cache")
    except AutoIndexError as exc:
        forms.set_errors(NOTICE, {"cache": exc.message})
        return
    ui_cache.clear()  # ui/cache.py: the one place that touches Streamlit's caches
    audit.record_now(who.username, "cache.clear_streamlit", "st.cache_data")
    forms.clear(NOTICE)
    forms.set_notice(NOTICE, "Cleared Streamlit's data caches; every page reads fresh data on its next run.")


def cache_panel(report: health.HealthReport, user: UserOut) -> None:
    """Cache contents per namespace and the three clearing actions (admins only; each audited)."""
    st.subheader("Cache")
    forms.notice(NOTICE)
    forms.other_errors(NOTICE, ())
    try:
        check = report.check("cache")
    except KeyError:
        check = None
    frame = check.tables.get("namespaces") if check is not None else None
    if check is not None and frame is not None and not frame.empty:
        st.caption(
            f"Backend: {check.facts.get('backend')}. Keys count every data version still within its TTL; "
            "a refresh or compute bumps the data version, so older entries are never read again."
        )
        table_view.show(frame, column_config={"hit_rate": st.column_config.NumberColumn("hit rate", format="percent")})
        namespaces = list(frame["namespace"])
    else:
        st.caption(check.summary if check is not None else "Cache statistics unavailable.")
        namespaces = sorted(cache_service.NAMESPACES)
    left, middle, right = st.columns(3)
    with left:
        st.selectbox("Namespace", namespaces, key=DIAG_NAMESPACE)
        st.button("Clear namespace", key="diag_clear_namespace", on_click=_on_clear_namespace, icon=":material/delete:")
    with middle:
        st.caption("Every namespace of the AutoIndex cache (shared by all app replicas and workers with Redis).")
        st.button("Clear all namespaces", key="diag_clear_all", on_click=_on_clear_all, icon=":material/delete_sweep:")
    with right:
        st.caption("Streamlit's st.cache_data of this app process.")
        st.button(
            "Clear Streamlit caches", key="diag_clear_streamlit", on_click=_on_clear_streamlit, icon=":material/cached:"
        )


def draw(user: UserOut) -> None:
    """The whole screen."""
    title, action = st.columns([5, 1], vertical_alignment="bottom")
    with title:
        st.title("Diagnostics")
    with action:
        st.button("Check again", key="diag_recheck", icon=":material/refresh:")
    report = health.run_checks()
    status_header(report)
    cards(report)
    tables(report)
    cache_panel(report, user)
