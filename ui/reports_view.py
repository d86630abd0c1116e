"""Reports screen helpers: the request form, pending reports with live progress, the history with
filters, and download / delete of one report. Layout only: every action calls :mod:`core.services.reports`.

Widget keys are the ``KEY_*`` constants below (all prefixed ``reports_``) so they cannot collide with
another screen's keys.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.errors import AutoIndexError
from core.quant.periods import PERIOD_LABELS
from core.schemas.report import REPORT_FORMATS, REPORT_PERIODS, REPORT_STATUSES, REPORT_TYPES, ReportFilters, ReportOut
from core.schemas.user import UserOut
from core.services import reports
from core.services.reporting.content import REPORT_TYPES as TYPE_LABELS
from ui import auth, cache, tables
from ui.errors import show_error, shown_errors
from ui.live import keep_choice, rerun_when_changed

KEY_TYPE = "reports_type"
KEY_LIVE_SIGNATURE = "reports_live_signature"
KEY_PERIOD = "reports_period"
KEY_START = "reports_start"
KEY_END = "reports_end"
KEY_FORMAT = "reports_format"
KEY_CONFIG = "reports_config"
KEY_NOTICE = "reports_notice"
KEY_F_TYPE = "reports_filter_type"
KEY_F_FORMAT = "reports_filter_format"
KEY_F_STATUS = "reports_filter_status"
KEY_F_OWNER = "reports_filter_owner"
KEY_SELECTED = "reports_selected"
KEY_CONFIRM_DELETE = "reports_confirm_delete"

FORMAT_LABELS = {"html": "HTML (interactive)", "pdf": "PDF", "xlsx": "Excel (XLSX)", "csv": "CSV (zip)"}
LIVE_REFRESH_S = 2.0
_ANY = "(any)"


# --------------------------------------------------------------------------- request form
def request_form(user: UserOut) -> None:
    """Type, period (custom dates), format and config version; queues the report."""
    token = cache.token()
    versions = cache.versions(token)
    if not versions:
        st.info("There is no strategy config yet: create one on the Strategy page first.")
        return
    labels = {v.id: v.label for v in versions}
    ids = list(labels)
    if st.session_state.get(KEY_CONFIG) not in ids:
        st.session_state[KEY_CONFIG] = next((v.id for v in versions if v.is_active), ids[0])
    with st.form("reports_request", border=False):
        c1, c2, c3 = st.columns(3)
        c1.selectbox("Report", REPORT_TYPES, key=KEY_TYPE, format_func=lambda t: TYPE_LABELS[t])
        c2.selectbox(
            "Period",
            REPORT_PERIODS,
            key=KEY_PERIOD,
            index=REPORT_PERIODS.index("YTD"),
            format_func=lambda p: f"{p} — {PERIOD_LABELS[p]}" if p != "custom" else "Custom range",
        )
        c3.selectbox("Format", REPORT_FORMATS, key=KEY_FORMAT, format_func=lambda f: FORMAT_LABELS[f])
        d1, d2, d3 = st.columns(3)
        d1.date_input("Custom start", value=None, key=KEY_START, help="Only used with the custom period.")
        d2.date_input("Custom end", value=None, key=KEY_END, help="Only used with the custom period.")
        d3.selectbox("Config version", ids, key=KEY_CONFIG, format_func=lambda i: labels[i])
        submitted = st.form_submit_button("Generate report", type="primary")
    if submitted:
        _submit(user)
    notice = st.session_state.pop(KEY_NOTICE, None)
    if notice:
        st.success(notice)


def _submit(user: UserOut) -> None:
    period = st.session_state.get(KEY_PERIOD)
    custom = period == "custom"
    try:
        report_id = reports.request_report(
            st.session_state.get(KEY_TYPE),
            period,
            st.session_state.get(KEY_FORMAT),
            config_id=st.session_state.get(KEY_CONFIG),
            start=st.session_state.get(KEY_START) if custom else None,
            end=st.session_state.get(KEY_END) if custom else None,
            owner=auth.actor(),
        )
    except Exception as exc:  # noqa: BLE001 - one readable line, never a traceback
        show_error(exc)
        return
    st.session_state[KEY_NOTICE] = f"Report {report_id} queued; it appears below when it is ready."
    st.session_state[KEY_SELECTED] = report_id


# --------------------------------------------------------------------------- pending
def _progress(run_id: int | None, user: UserOut) -> tuple[float, str]:
    if run_id is None:
        return 0.0, "waiting"
    from core.services import runs

    try:
        run = runs.get_run(run_id, user)
    except AutoIndexError:
        return 0.0, "waiting"
    return float(run.progress or 0.0), run.message or run.state


@st.fragment(run_every=LIVE_REFRESH_S)
def pending_panel(user: UserOut) -> None:
    """Queued and running reports with their job's progress; refreshes itself."""
    with shown_errors():
        pending = [r for r in reports.list_reports(user, ReportFilters(limit=50)) if r.status in ("queued", "running")]
        # a report that finishes (or fails) redraws the history, with its download button, at once
        rerun_when_changed(KEY_LIVE_SIGNATURE, {r.id: r.status for r in pending})
        if not pending:
            st.caption("No report is being generated.")
            return
        for r in pending:
            fraction, message = _progress(r.task_run_id, user)
            st.progress(
                min(max(fraction, 0.0), 1.0),
                text=f"#{r.id} {TYPE_LABELS.get(r.report_type, r.report_type)} · {r.period} · "
                f"{r.format.upper()} — {r.status}: {message}",
            )


# --------------------------------------------------------------------------- history
def _filters(user: UserOut) -> ReportFilters:
    cols = st.columns(4 if user.is_admin else 3)
    rtype = cols[0].selectbox(
        "Type", [_ANY, *REPORT_TYPES], key=KEY_F_TYPE, format_func=lambda t: TYPE_LABELS.get(t, t)
    )
    fmt = cols[1].selectbox("Format", [_ANY, *REPORT_FORMATS], key=KEY_F_FORMAT)
    status = cols[2].selectbox("Status", [_ANY, *REPORT_STATUSES], key=KEY_F_STATUS)
    owner = cols[3].text_input("Owner", key=KEY_F_OWNER).strip() if user.is_admin else ""
    # each value is one of the selectbox's options (REPORT_TYPES, ...); ReportFilters validates them
    return ReportFilters(
        report_type=None if rtype == _ANY else rtype,  # type: ignore[arg-type]
        format=None if fmt == _ANY else fmt,  # type: ignore[arg-type]
        status=None if status == _ANY else status,  # type: ignore[arg-type]
        owner=owner or None,
    )


def _frame(rows: list[ReportOut]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "id": r.id,
                "created": r.created_at,
                "owner": r.owner,
                "report": TYPE_LABELS.get(r.report_type, r.report_type),
                "period": r.period,
                "from": r.start,
                "to": r.end,
                "format": r.format.upper(),
                "status": r.status,
                "file": r.filename,
                "size (kB)": round(r.size_bytes / 1024, 1) if r.size_bytes else None,
                "error": r.error,
            }
            for r in rows
        ]
    )


def history(user: UserOut) -> None:
    """The user's reports (admins: everyone's), filtered, with download and delete of the selected one."""
    filters = _filters(user)
    with shown_errors():
        rows = reports.list_reports(user, filters)
        if not rows:
            st.caption(
                "No reports match."
                if any(v for v in filters.model_dump(exclude={"limit"}).values())
                else "You have no reports yet."
            )
            return
        frame = _frame(rows)
        if not user.is_admin:
            frame = frame.drop(columns=["owner"])
        tables.show(frame)
        ids = [r.id for r in rows]
        keep_choice(KEY_SELECTED, ids)  # the label below follows the report's status (it ends while chosen)
        by_id = {r.id: r for r in rows}
        st.selectbox(
            "Report",
            ids,
            key=KEY_SELECTED,
            format_func=lambda i: (
                f"#{i} · {TYPE_LABELS.get(by_id[i].report_type)} · {by_id[i].period} · "
                f"{by_id[i].format.upper()} · {by_id[i].status}"
            ),
        )
        _actions(user, by_id[st.session_state[KEY_SELECTED]])


def _actions(user: UserOut, report) -> None:  # type: ignore[no-untyped-def]
    left, right = st.columns(2)
    with left:
        if report.status == "done":
            try:
                filename, data, mime = reports.download(report.id, user)
            except AutoIndexError as exc:
                show_error(exc)
            else:
                st.download_button(
                    f"Download {filename}",
                    data=data,
                    file_name=filename,
                    mime=mime,
                    key=f"reports_download_{report.id}",
                    icon=":material/download:",
                )
        elif report.status == "failed":
            st.error(f"Report {report.id} failed: {report.error or 'no detail'}")
        else:
            st.caption(f"Report {report.id} is {report.status}.")
    with right:
        confirm = st.checkbox("Confirm delete", key=f"{KEY_CONFIRM_DELETE}_{report.id}")
        if st.button(
            "Delete report", key=f"reports_delete_{report.id}", disabled=not confirm, icon=":material/delete:"
        ):
            try:
                reports.delete(report.id, auth.actor())
            except Exception as exc:  # noqa: BLE001
                show_error(exc)
            else:
                st.session_state.pop(KEY_SELECTED, None)
                st.rerun()
