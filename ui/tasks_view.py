"""The Tasks screen's building blocks: queue forms, the live panel, history, run detail, schedule, workers.

Everything reads and writes through :mod:`core.services.runs` (and the schedule and workers services); analysts see and act on their own runs
only (the service enforces it), admins on all. Session-state keys of this screen are the ``KEY_*``
constants below (prefix ``tasks_``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import streamlit as st

from core.schemas.task import WAITING_STATES, RunFilters, TaskRunOut, TaskState
from core.schemas.user import UserOut
from core.services import runs as svc
from core.services import schedule, workers
from core.services.workers import HEARTBEAT_STALE_S
from ui import auth, forms, tables
from ui.errors import message_for, show_error, shown_errors
from ui.live import keep_choice, rerun_when_changed

#: Seconds between two refreshes of the live panel.
LIVE_REFRESH_S = 1.5
PAGE_SIZE = 25

KEY_REFRESH_PROVIDER = "tasks_refresh_provider"
KEY_REFRESH_SYMBOLS = "tasks_refresh_symbols"
KEY_REFRESH_FULL = "tasks_refresh_full"
KEY_COMPUTE_CONFIG = "tasks_compute_config"
KEY_REPORT_ID = "tasks_report_id"
KEY_NOTICE = "tasks_notice"
KEY_F_KIND = "tasks_filter_kind"
KEY_F_STATE = "tasks_filter_state"
KEY_F_USER = "tasks_filter_user"
KEY_F_SINCE = "tasks_filter_since"
KEY_F_UNTIL = "tasks_filter_until"
KEY_PAGE = "tasks_page"
KEY_SELECTED = "tasks_selected_run"
KEY_LIVE_SIGNATURE = "tasks_live_signature"

KIND_LABELS = {
    "refresh": "Refresh prices",
    "compute": "Recompute index",
    "report": "Generate report",
    "scheduled_refresh": "Scheduled refresh + recompute",
    "retention": "Retention clean-up",
    "sweep": "Parameter sweep",
}
#: A run's arguments as people read them: (label, what a missing value means).
ARG_LABELS: dict[str, tuple[str, str]] = {
    "config_id": ("Config version", "the active version"),
    "provider": ("Provider", "—"),
    "symbols": ("Symbols", "all"),
    "full": ("Full history", "no"),
    "report_id": ("Report", "—"),
    "sweep_id": ("Sweep", "—"),
}
#: State marks from plain text fonts (DejaVu and every system font have them; emoji need an emoji font).
STATE_ICONS = {
    TaskState.QUEUED: "○",
    TaskState.RUNNING: "●",
    TaskState.SUCCEEDED: "✓",
    TaskState.SUCCEEDED_WITH_WARNINGS: "!",
    TaskState.FAILED: "✗",
    TaskState.RETRYING: "↻",
    TaskState.CANCELLED: "■",
    TaskState.SKIPPED: "»",
}


def state_label(state: str) -> str:
    """A run state as people read it: ``succeeded_with_warnings`` -> "succeeded with warnings"."""
    return state.replace("_", " ")


_ANY = "(any)"


def _notice() -> None:
    """The outcome of the last Retry / Cancel click (set by their callbacks, which run before the page); it
    stays up for a while, so the rerun a finished run triggers does not swallow it."""
    forms.notice(KEY_NOTICE)
    forms.other_errors(KEY_NOTICE, ())


def _outcome(ok: bool, message: str) -> None:
    forms.clear(KEY_NOTICE)
    if ok:
        forms.set_notice(KEY_NOTICE, message)
    else:
        forms.set_errors(KEY_NOTICE, {"run": message})


def _queue(kind: str, params: dict[str, Any], user: UserOut) -> None:
    try:
        run_id = svc.enqueue(kind, params, user=auth.actor())
    except Exception as exc:  # noqa: BLE001 - shown as one line
        show_error(exc)
        return
    # Shown above the tabs by queue_forms for NOTICE_SECONDS: the rerun a starting or finishing run causes
    # must not swallow which run was queued.
    _outcome(True, f"Queued {KIND_LABELS[kind].lower()} as run {run_id}.")
    st.session_state[KEY_SELECTED] = run_id


# --------------------------------------------------------------------------- queueing
def queue_forms(user: UserOut) -> None:
    """Forms to queue a refresh (admins), a recompute or a report again."""
    slot = st.empty()  # the last outcome, above the tabs: filled after the forms, so it includes one queued now
    names = (["Refresh prices"] if user.is_admin else []) + ["Recompute index", "Generate report"]
    tabs = dict(zip(names, st.tabs(names)))
    if user.is_admin:
        with tabs["Refresh prices"]:
            _refresh_form(user)
    else:
        st.caption("Price refreshes are queued by administrators.")
    with tabs["Recompute index"]:
        _compute_form(user)
    with tabs["Generate report"]:
        _report_form(user)
    with slot.container():
        _notice()


def _refresh_form(user: UserOut) -> None:
    with st.form("tasks_refresh_form", border=False):
        st.selectbox(
            "Provider",
            ["demo", "twelvedata"],
            key=KEY_REFRESH_PROVIDER,
            help="demo: synthetic data; twelvedata needs TWELVEDATA_API_KEY",
        )
        st.text_input("Symbols", key=KEY_REFRESH_SYMBOLS, placeholder="all (or e.g. AAPL, MSFT)")
        st.checkbox("Full history (not only new dates)", key=KEY_REFRESH_FULL)
        if st.form_submit_button("Queue refresh", type="primary"):
            _queue(
                "refresh",
                {
                    "provider": st.session_state[KEY_REFRESH_PROVIDER],
                    "symbols": st.session_state[KEY_REFRESH_SYMBOLS] or None,
                    "full": st.session_state[KEY_REFRESH_FULL],
                },
                user,
            )


def _compute_form(user: UserOut) -> None:
    from core.services.strategies import list_versions

    with st.form("tasks_compute_form", border=False):
        versions = {v.id: v.label for v in list_versions()}
        options: list[int | None] = [None, *versions]
        st.selectbox(
            "Config version",
            options,
            key=KEY_COMPUTE_CONFIG,
            format_func=lambda i: "the active version" if i is None else versions[i],
        )
        if st.form_submit_button("Queue recompute", type="primary"):
            _queue("compute", {"config_id": st.session_state[KEY_COMPUTE_CONFIG]}, user)


def _report_label(report: Any) -> str:
    owner = f" · {report.owner}" if report.owner else ""
    return f"#{report.id} · {report.report_type} · {report.period} · {report.format.upper()} · {report.status}{owner}"


def _report_form(user: UserOut) -> None:
    from core.services import reports

    st.caption("Reports are normally requested on the Reports page; this generates one of yours again.")
    with shown_errors():
        choices = {r.id: r for r in reports.list_reports(auth.actor(), {"limit": 200})}
    with st.form("tasks_report_form", border=False):
        st.selectbox(
            "Report",
            list(choices),
            key=KEY_REPORT_ID,
            index=None,
            placeholder="Choose a report",
            format_func=lambda i: _report_label(choices[i]) if i in choices else f"#{i}",
        )
        if st.form_submit_button("Queue report"):
            chosen = st.session_state.get(KEY_REPORT_ID)
            if chosen is None:
                st.error("Choose a report first.")
            else:
                _queue("report", {"report_id": int(chosen)}, user)


# --------------------------------------------------------------------------- live panel
def _live(user: UserOut) -> None:
    with shown_errors():
        active = svc.active_runs(viewer=user)
        if not active:
            st.caption("No job is queued or running.")
        for run in active:
            label = f"{STATE_ICONS.get(run.state, '•')} run {run.id} · {KIND_LABELS.get(run.kind, run.kind)} · {state_label(run.state)}"
            if run.queued_by and user.is_admin:
                label += f" · {run.queued_by}"
            st.progress(min(max(run.progress, 0.0), 1.0), text=f"{label} — {run.message or ''}")
        depth = svc.queue_depth()
        st.caption(
            f"Queue ({depth.backend}): {depth.pending} waiting, {depth.scheduled} scheduled · "
            f"updated {dt.datetime.now(dt.timezone.utc):%H:%M:%S} UTC"
        )
        # a run that ends (or changes state) redraws the history and the run detail too
        seen: dict[object, object] = {r.id: r.state for r in active}
        rerun_when_changed(KEY_LIVE_SIGNATURE, seen)


@st.fragment(run_every=LIVE_REFRESH_S)
def live_panel(user: UserOut) -> None:
    """Queued, running and retrying runs with their progress; refreshes itself without reloading the page."""
    _live(user)


# --------------------------------------------------------------------------- history
def _filters(user: UserOut) -> RunFilters:
    cols = st.columns(5 if user.is_admin else 4)
    kind = cols[0].selectbox("Kind", [_ANY, *KIND_LABELS], key=KEY_F_KIND, format_func=lambda k: KIND_LABELS.get(k, k))
    state = cols[1].selectbox("State", [_ANY, *TaskState], key=KEY_F_STATE, format_func=state_label)
    since = cols[2].date_input("From", value=None, key=KEY_F_SINCE)
    until = cols[3].date_input("To", value=None, key=KEY_F_UNTIL)
    who = None
    if user.is_admin:
        who = cols[4].selectbox("User", [_ANY, *svc.run_users(user)], key=KEY_F_USER)
    # state is a TaskState (the selectbox's options); RunFilters validates it
    return RunFilters(
        kind=None if kind == _ANY else kind,
        state=None if state == _ANY else state,
        user=None if who in (None, _ANY) else who,
        since=since,
        until=until,
    )


def runs_frame(runs: list[TaskRunOut]) -> pd.DataFrame:
    """The history table: one row per run, with code names (:func:`ui.tables.show` writes every header alike)."""
    return pd.DataFrame(
        [
            {
                "id": r.id,
                "kind": KIND_LABELS.get(r.kind, r.kind),
                "state": f"{STATE_ICONS.get(r.state, '•')} {state_label(r.state)}",
                "progress": r.progress,
                "queued_by": r.queued_by,
                "queued_at": r.queued_at,
                "duration_s": None if r.duration_s is None else round(r.duration_s, 2),
                "attempts": r.attempts,
                "message": r.error if r.state == TaskState.FAILED else r.message,
            }
            for r in runs
        ],
        columns=["id", "kind", "state", "progress", "queued_by", "queued_at", "duration_s", "attempts", "message"],
    )


def arguments_line(args: dict[str, Any]) -> str:
    """A run's arguments as one line: ``{"config_id": None}`` -> "Config version: the active version"."""

    def value(name: str, raw: Any) -> str:
        if raw is None or raw == []:
            return ARG_LABELS.get(name, (name, "—"))[1]
        if isinstance(raw, bool):
            return "yes" if raw else "no"
        if isinstance(raw, (list, tuple)):
            return ", ".join(map(str, raw))
        return str(raw)

    return " · ".join(
        f"{ARG_LABELS.get(name, (name.replace('_', ' ').capitalize(), ''))[0]}: {value(name, raw)}"
        for name, raw in args.items()
    )


def history(user: UserOut) -> None:
    """Filtered, paged history; choosing a run shows its detail."""
    filters = _filters(user)
    total = svc.count_runs(filters, viewer=user)
    pages = max(1, -(-total // PAGE_SIZE))
    page = (
        st.number_input(f"Page (of {pages}; {total} runs)", min_value=1, max_value=pages, step=1, key=KEY_PAGE)
        if pages > 1
        else 1
    )
    runs = svc.list_runs(filters, limit=PAGE_SIZE, offset=(int(page) - 1) * PAGE_SIZE, viewer=user)
    if not runs:
        st.info("No runs match these filters.")
        return
    tables.show(
        runs_frame(runs),
        column_config={
            "progress": st.column_config.ProgressColumn("Progress", min_value=0.0, max_value=1.0, format="percent")
        },
    )
    ids = [r.id for r in runs]
    keep_choice(KEY_SELECTED, ids)  # the label below follows the run's state (it ends while chosen)
    st.selectbox(
        "Run",
        ids,
        key=KEY_SELECTED,
        format_func=lambda i: next(
            f"run {r.id} · {KIND_LABELS.get(r.kind, r.kind)} · {state_label(r.state)}" for r in runs if r.id == i
        ),
    )


def _retry(run_id: int) -> None:
    try:
        new = svc.retry(run_id, auth.actor())
    except Exception as exc:  # noqa: BLE001
        _outcome(False, message_for(exc))
        return
    _outcome(True, f"Run {run_id} queued again as run {new}.")
    st.session_state[KEY_SELECTED] = new


def _cancel(run_id: int) -> None:
    try:
        svc.cancel(run_id, auth.actor())
    except Exception as exc:  # noqa: BLE001
        _outcome(False, message_for(exc))
        return
    _outcome(True, f"Run {run_id} cancelled.")


def run_detail(user: UserOut) -> None:
    """Arguments, timings, attempts, error (traceback for admins), with Retry / Cancel."""
    run_id = st.session_state.get(KEY_SELECTED)
    if run_id is None:
        return
    with shown_errors():
        run = svc.get_run(int(run_id), user)
        st.subheader(f"Run {run.id}: {KIND_LABELS.get(run.kind, run.kind)}")
        cols = st.columns(4)
        cols[0].metric("State", f"{STATE_ICONS.get(run.state, '•')} {state_label(run.state)}")
        cols[1].metric("Progress", f"{100 * run.progress:.0f}%")
        cols[2].metric("Attempts", run.attempts)
        cols[3].metric("Duration", "—" if run.duration_s is None else f"{run.duration_s:.1f} s")

        def ts(value: dt.datetime | None) -> str:
            return "—" if value is None else f"{value:%Y-%m-%d %H:%M:%S} UTC"

        st.markdown(
            f"Queued by **{run.queued_by or '—'}** at {ts(run.queued_at)} · started {ts(run.started_at)} · "
            f"finished {ts(run.finished_at)}" + (f" · worker `{run.worker}`" if run.worker else "")
        )
        if run.retry_of_id:
            st.caption(f"Retry of run {run.retry_of_id}")
        if run.state == TaskState.SUCCEEDED_WITH_WARNINGS:
            for warning in (run.result or {}).get("warnings") or [run.message or "see the result"]:
                st.warning(str(warning))
        elif run.message:
            st.caption(run.message)
        if run.args:
            st.markdown(arguments_line(run.args))
        if run.error and run.state != TaskState.SUCCEEDED:
            st.error(run.error)
        if run.traceback and user.is_admin:
            with st.expander("Traceback (admins only)"):
                st.code(run.traceback, language="text")
        if run.result:
            with st.expander("Result"):
                st.json(run.result)
        left, right = st.columns(2)
        if run.state in (TaskState.FAILED, TaskState.CANCELLED):
            left.button("Retry", key=f"tasks_retry_{run.id}", type="primary", on_click=_retry, args=(run.id,))
        if run.state in WAITING_STATES:
            right.button("Cancel", key=f"tasks_cancel_{run.id}", on_click=_cancel, args=(run.id,))


# --------------------------------------------------------------------------- schedule and workers
def schedule_table() -> None:
    with shown_errors():
        frame = pd.DataFrame(
            [
                {
                    "job": KIND_LABELS.get(e.kind, e.kind),
                    "cron (UTC)": e.cron,
                    "next run (UTC)": e.next_run_at,
                    "what": e.description,
                }
                for e in schedule.schedule()
            ]
        )
        tables.show(frame)


def workers_table() -> None:
    with shown_errors():
        seen = workers.workers_status()
        if not seen:
            st.warning(
                "No worker has reported yet. With REDIS_URL set, start `huey_consumer jobs.huey -w 2` "
                "(or `python -m core worker`); otherwise the app runs its own worker."
            )
            return
        alive = sum(w.alive for w in seen)
        st.caption(
            f"{alive} of {len(seen)} worker process(es) alive "
            f"(dead after {HEARTBEAT_STALE_S:.0f} s without a heartbeat)"
        )
        tables.show(
            pd.DataFrame(
                [
                    {
                        "worker": w.worker_id,
                        "alive": "✓ alive" if w.alive else "✗ dead",
                        "kind": w.kind,
                        "threads": w.workers,
                        "host": w.hostname,
                        "pid": w.pid,
                        "last heartbeat (s ago)": round(w.age_s, 1),
                        "since": w.started_at,
                    }
                    for w in seen
                ]
            )
        )
