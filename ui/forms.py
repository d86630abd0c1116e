"""Per-field validation messages for forms: drawn right beside the input they concern.

A form's submit callback stores ``{field: message}`` under the form's name; the page draws each input
followed by :func:`field_error`, so the message appears beside the field in the same run.
"""
from __future__ import annotations

import streamlit as st

from ui import state


def set_errors(form: str, errors: dict[str, str]) -> None:
    st.session_state.setdefault(state.FORM_ERRORS, {})[form] = dict(errors)


def errors(form: str) -> dict[str, str]:
    return dict(st.session_state.get(state.FORM_ERRORS, {}).get(form, {}))


def clear(form: str) -> None:
    st.session_state.get(state.FORM_ERRORS, {}).pop(form, None)


def field_error(form: str, field: str) -> None:
    """Draw the message for ``field`` of ``form`` (nothing when it is valid)."""
    message = errors(form).get(field)
    if message:
        st.error(f"{field.replace('_', ' ').capitalize()}: {message}", icon=":material/error:")


def other_errors(form: str, fields: set[str] | tuple[str, ...]) -> None:
    """Messages for keys that have no input of their own (e.g. ``config``)."""
    for key, message in errors(form).items():
        if key not in fields:
            st.error(f"{key.replace('_', ' ').capitalize()}: {message}", icon=":material/error:")


def set_notice(form: str, message: str) -> None:
    st.session_state.setdefault(state.FORM_NOTICES, {})[form] = message


def notice(form: str) -> None:
    """Show (once) the success line of the last submission of ``form``."""
    message = st.session_state.get(state.FORM_NOTICES, {}).pop(form, None)
    if message:
        st.success(message)
