"""The Admin screen: users and roles, registration mode and invitations, the audit log."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

from core.errors import AutoIndexError, ValidationFailed
from core.schemas.user import UserOut
from core.services import audit, two_factor, users
from ui import auth, forms, state, tables

ROLES = ("analyst", "admin")


def users_table(all_users: list[UserOut]) -> None:
    frame = pd.DataFrame(
        [
            {
                "username": u.username,
                "name": u.name,
                "email": u.email,
                "role": u.role,
                "active": u.is_active,
                "two_factor": u.two_factor_enabled,
                "locked_until": u.locked_until,
                "failed_attempts": u.failed_attempts,
                "last_login": u.last_login_at,
                "created": u.created_at,
            }
            for u in all_users
        ]
    )
    tables.show(frame)


def _on_create_user() -> None:
    get = st.session_state.get
    try:
        created = users.create_user(
            (get(state.ADMIN_NEW_USERNAME) or "").strip(),
            get(state.ADMIN_NEW_NAME) or "",
            get(state.ADMIN_NEW_PASSWORD) or "",
            role=get(state.ADMIN_NEW_ROLE) or "analyst",
            email=(get(state.ADMIN_NEW_EMAIL) or "").strip() or None,
            actor=auth.actor(),
        )
    except ValidationFailed as exc:
        forms.set_errors("create_user", exc.errors)
        st.session_state[state.ADMIN_NEW_PASSWORD] = ""
        return
    except AutoIndexError as exc:
        forms.set_errors("create_user", {"username": str(exc)})
        st.session_state[state.ADMIN_NEW_PASSWORD] = ""
        return
    forms.clear("create_user")
    for key in (state.ADMIN_NEW_USERNAME, state.ADMIN_NEW_NAME, state.ADMIN_NEW_EMAIL, state.ADMIN_NEW_PASSWORD):
        st.session_state[key] = ""
    forms.set_notice("create_user", f"Created {created.role} {created.username}.")


def create_user_form(user: UserOut) -> None:
    forms.notice("create_user")
    with st.form("create_user"):
        forms.text_field("create_user", "username", "Username", key=state.ADMIN_NEW_USERNAME)
        forms.text_field("create_user", "name", "Name", key=state.ADMIN_NEW_NAME)
        forms.text_field("create_user", "email", "Email (optional)", key=state.ADMIN_NEW_EMAIL)
        st.selectbox("Role", ROLES, key=state.ADMIN_NEW_ROLE)
        forms.field_error("create_user", "role")
        forms.text_field(
            "create_user",
            "password",
            "Initial password",
            type="password",
            key=state.ADMIN_NEW_PASSWORD,
            help=forms.password_help(),
        )
        st.form_submit_button("Create user", on_click=_on_create_user)


def _on_update_user(action: str) -> None:
    target = st.session_state.get(state.ADMIN_EDIT_USER)
    if not target:
        forms.set_errors("edit_user", {"user": "choose a user"})
        return
    try:
        if action == "save":
            users.update_user(
                target,
                actor=auth.actor(),
                role=st.session_state.get(state.ADMIN_EDIT_ROLE),
                is_active=bool(st.session_state.get(state.ADMIN_EDIT_ACTIVE)),
            )
            message = f"Saved {target}."
        elif action == "unlock":
            users.update_user(target, actor=auth.actor(), unlock=True)
            message = f"Unlocked {target}."
        elif action == "two_factor":
            two_factor.reset(target, actor=auth.actor())
            message = f"Two-factor authentication of {target} reset; they can log in with the password and enrol again."
        else:
            users.set_password(target, st.session_state.get(state.ADMIN_RESET_PASSWORD) or "", actor=auth.actor())
            message = f"Password of {target} reset."
    except ValidationFailed as exc:
        forms.set_errors("edit_user", exc.errors)
        return
    except AutoIndexError as exc:
        forms.set_errors("edit_user", {"user": str(exc)})
        return
    finally:
        st.session_state[state.ADMIN_RESET_PASSWORD] = ""
    forms.clear("edit_user")
    forms.set_notice("edit_user", message)


def _load_edit_user(by_name: dict[str, UserOut]) -> None:
    chosen = by_name.get(st.session_state.get(state.ADMIN_EDIT_USER) or "")
    if chosen is not None:
        st.session_state[state.ADMIN_EDIT_ROLE] = chosen.role
        st.session_state[state.ADMIN_EDIT_ACTIVE] = chosen.is_active


def edit_user_form(user: UserOut, all_users: list[UserOut]) -> None:
    forms.notice("edit_user")
    by_name = {u.username: u for u in all_users}
    st.selectbox(
        "User",
        list(by_name),
        key=state.ADMIN_EDIT_USER,
        index=None,
        placeholder="Choose a user",
        on_change=_load_edit_user,
        args=(by_name,),
    )
    forms.field_error("edit_user", "user")
    chosen = by_name.get(st.session_state.get(state.ADMIN_EDIT_USER) or "")
    if chosen is None:
        return
    st.session_state.setdefault(state.ADMIN_EDIT_ROLE, chosen.role)
    st.session_state.setdefault(state.ADMIN_EDIT_ACTIVE, chosen.is_active)
    left, right = st.columns(2)
    with left:
        st.selectbox("Role", ROLES, key=state.ADMIN_EDIT_ROLE)
        forms.field_error("edit_user", "role")
        st.checkbox("Active", key=state.ADMIN_EDIT_ACTIVE)
        forms.field_error("edit_user", "is_active")
        st.button("Save role and status", key="admin_save_user", on_click=_on_update_user, args=("save",))
        if chosen.locked_until is not None:
            st.caption(f"Locked until {chosen.locked_until:%Y-%m-%d %H:%M} UTC")
        st.button(
            "Unlock",
            key="admin_unlock_user",
            on_click=_on_update_user,
            args=("unlock",),
            disabled=chosen.locked_until is None and chosen.failed_attempts == 0,
        )
    with right:
        forms.text_field("edit_user", "password", "New password", type="password", key=state.ADMIN_RESET_PASSWORD)
        st.button("Reset password", key="admin_reset_password_button", on_click=_on_update_user, args=("password",))
        st.button(
            "Reset two-factor authentication",
            key="admin_reset_two_factor",
            on_click=_on_update_user,
            args=("two_factor",),
            disabled=not chosen.two_factor_enabled,
            help="For a user who lost their authenticator and recovery codes: removes the secret and the "
            "codes and ends their sessions (audited).",
        )


def _on_registration() -> None:
    try:
        users.set_registration_mode(st.session_state.get(state.ADMIN_REG_MODE) or "", actor=auth.actor())
    except ValidationFailed as exc:
        forms.set_errors("registration", exc.errors)
        return
    except AutoIndexError as exc:
        forms.set_errors("registration", {"mode": str(exc)})
        return
    forms.clear("registration")
    forms.set_notice("registration", "Registration mode saved.")


def _on_invite() -> None:
    email = (st.session_state.get(state.ADMIN_INVITE_EMAIL) or "").strip()
    try:
        users.invite(email, actor=auth.actor())
    except ValidationFailed as exc:
        forms.set_errors("invite", exc.errors)
        return
    except AutoIndexError as exc:
        forms.set_errors("invite", {"email": str(exc)})
        return
    forms.clear("invite")
    st.session_state[state.ADMIN_INVITE_EMAIL] = ""
    forms.set_notice("invite", f"Invited {email.lower()}.")


def registration(user: UserOut) -> None:
    forms.notice("registration")
    st.session_state.setdefault(state.ADMIN_REG_MODE, users.registration_mode())
    st.radio(
        "Registration mode",
        users.REGISTRATION_MODES,
        key=state.ADMIN_REG_MODE,
        horizontal=True,
        captions=["Admins create users", "Pre-authorised emails may register", "Anyone may register as analyst"],
    )
    forms.field_error("registration", "mode")
    st.button("Save mode", key="admin_save_mode", on_click=_on_registration)
    st.divider()
    forms.notice("invite")
    with st.form("invite"):
        forms.text_field("invite", "email", "Invite email", key=state.ADMIN_INVITE_EMAIL)
        st.form_submit_button("Invite", on_click=_on_invite)
    invitations = users.list_invitations(actor=auth.actor())
    if invitations:
        tables.show(pd.DataFrame(invitations))


def audit_log(all_users: list[UserOut]) -> None:
    columns = st.columns(4)
    actor = columns[0].selectbox(
        "Actor",
        [u.username for u in all_users] + ["system"],
        index=None,
        key=state.ADMIN_AUDIT_ACTOR,
        placeholder="Anyone",
    )
    action = columns[1].text_input("Action", key=state.ADMIN_AUDIT_ACTION, placeholder="e.g. auth.login")
    since = columns[2].date_input("Since", value=None, key=state.ADMIN_AUDIT_SINCE)
    limit = columns[3].number_input(
        "Rows", min_value=10, max_value=5000, value=200, step=50, key=state.ADMIN_AUDIT_LIMIT
    )
    since_dt = dt.datetime.combine(since, dt.time.min, tzinfo=dt.timezone.utc) if since else None
    events = audit.list_events(
        actor=actor or None, action=(action or "").strip() or None, since=since_dt, limit=int(limit)
    )
    st.caption(f"{len(events)} event(s), newest first.")
    tables.show(events)
