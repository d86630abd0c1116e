"""Per-field validation messages for forms: drawn right beside the input they concern.

A form's submit callback stores ``{field: message}`` under the form's name; the page draws each input
followed by :func:`field_error`, so the message appears beside the field in the same run.
"""

from __future__ import annotations

import time
from typing import Any

import streamlit as st

from ui import state


def set_errors(form: str, errors: dict[str, str]) -> None:
    st.session_state.setdefault(state.FORM_ERRORS, {})[form] = dict(errors)
    st.session_state.get(state.FORM_NOTICES, {}).pop(form, None)  # a failed submission replaces the last success


def errors(form: str) -> dict[str, str]:
    return dict(st.session_state.get(state.FORM_ERRORS, {}).get(form, {}))


def clear(form: str) -> None:
    st.session_state.get(state.FORM_ERRORS, {}).pop(form, None)


def _labels() -> dict[tuple[str, str], str]:
    labels: dict[tuple[str, str], str] = st.session_state.setdefault(state.FORM_LABELS, {})
    return labels


def label_of(form: str, field: str) -> str:
    """The label a person saw for ``field`` ("Repeat password", not "password2")."""
    return _labels().get((form, field)) or field.replace("_", " ").capitalize()


def field_error(form: str, field: str, label: str | None = None) -> None:
    """Draw the message for ``field`` of ``form`` (nothing when it is valid), named by the field's label."""
    if label:
        _labels()[(form, field)] = label
    message = errors(form).get(field)
    if message:
        st.error(f"{label_of(form, field)}: {message}", icon=":material/error:")


def text_field(form: str, field: str, label: str, **kwargs: Any) -> None:
    """A text input followed by its validation message (the pair every form draws per field)."""
    st.text_input(label, **kwargs)
    field_error(form, field, label)


def password_help() -> str:
    from core.services.users import MIN_PASSWORD_LENGTH

    return f"At least {MIN_PASSWORD_LENGTH} characters, not the username, not a common password."


def other_errors(form: str, fields: set[str] | tuple[str, ...]) -> None:
    """Messages for keys that have no input of their own (e.g. ``config``)."""
    for key, message in errors(form).items():
        if key not in fields:
            st.error(f"{label_of(form, key)}: {message}", icon=":material/error:")


#: Seconds a success line stays up: long enough to survive the reruns a component or a reload of the
#: saved data triggers right after a submission, short enough not to linger.
NOTICE_SECONDS = 20.0


def set_notice(form: str, message: str) -> None:
    st.session_state.setdefault(state.FORM_NOTICES, {})[form] = (message, time.monotonic() + NOTICE_SECONDS)


def notice(form: str) -> None:
    """Show the success line of the last submission of ``form`` on every run for NOTICE_SECONDS."""
    notices = st.session_state.get(state.FORM_NOTICES, {})
    entry = notices.get(form)
    if entry is None:
        return
    message, until = entry
    if time.monotonic() > until:
        notices.pop(form, None)
        return
    st.success(message)
