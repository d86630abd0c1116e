"""First start with no users: create the administrator, guarded by the one-time setup token.

The token is issued once per process (and per database) while no user exists; it is printed in the
server log and written to DATA_DIR/setup_token.txt (mode 600). The form asks for the token and the
administrator account and nothing else.
"""

from __future__ import annotations

import streamlit as st

from core.config import get_settings
from core.errors import AutoIndexError, PermissionDenied, ValidationFailed
from core.services import bootstrap, users
from ui import forms, state

SETUP_FIELDS = ("setup_token", "username", "name", "email", "password", "password2")


@st.cache_resource(show_spinner=False)
def _issue_token_once(database_url: str) -> bool:
    """Issue the setup token once per process for this database (the URL is the cache key)."""
    return bootstrap.issue_setup_token() is not None


def _on_create_admin() -> None:
    get = st.session_state.get
    # every problem at once: the account's fields as the service checks them, the token, the repetition
    errors = users.validate_new_user(
        (get(state.SETUP_USERNAME) or "").strip(),
        get(state.SETUP_NAME) or "",
        get(state.SETUP_PASSWORD) or "",
        (get(state.SETUP_EMAIL) or "").strip() or None,
        "admin",
    )
    errors.pop("role", None)
    if (get(state.SETUP_PASSWORD) or "") != (get(state.SETUP_PASSWORD2) or ""):
        errors["password2"] = "does not match the password"
    if not (get(state.SETUP_TOKEN) or "").strip():
        errors["setup_token"] = "is required (it is printed in the server log)"
    if not errors:
        try:
            user = bootstrap.create_admin_with_token(
                (get(state.SETUP_TOKEN) or "").strip(),
                (get(state.SETUP_USERNAME) or "").strip(),
                get(state.SETUP_NAME) or "",
                get(state.SETUP_PASSWORD) or "",
                (get(state.SETUP_EMAIL) or "").strip() or None,
            )
        except ValidationFailed as exc:
            errors.update(exc.errors)
        except PermissionDenied as exc:
            errors["username"] = str(exc)
        except AutoIndexError as exc:
            errors["setup_token"] = str(exc)
        else:
            st.session_state[state.AUTH_USERNAME] = user.username
            st.session_state[state.AUTH_CREDENTIAL_VERSION] = user.credential_version
            st.session_state[state.AUTH_LOGGED_OUT] = False
            st.session_state[state.AUTH_COOKIE_ACTION] = "set"
    for key in (state.SETUP_PASSWORD, state.SETUP_PASSWORD2):
        st.session_state[key] = ""
    forms.set_errors("setup", errors)


def setup_screen() -> None:
    """The first-run form: setup token and the administrator account."""
    _issue_token_once(get_settings().effective_database_url)
    st.title("Welcome to AutoIndex")
    st.write(
        "No account exists yet. Create the administrator account. The one-time **setup token** is printed "
        "in the server log (and kept in `setup_token.txt` in the data directory)."
    )
    left, _ = st.columns([2, 3])
    with left, st.form("setup"):
        forms.text_field("setup", "setup_token", "Setup token", type="password", key=state.SETUP_TOKEN)
        forms.text_field("setup", "username", "Administrator username", key=state.SETUP_USERNAME)
        forms.text_field("setup", "name", "Full name", key=state.SETUP_NAME)
        forms.text_field("setup", "email", "Email (optional)", key=state.SETUP_EMAIL)
        forms.text_field(
            "setup", "password", "Password", type="password", key=state.SETUP_PASSWORD, help=forms.password_help()
        )
        forms.text_field("setup", "password2", "Repeat password", type="password", key=state.SETUP_PASSWORD2)
        forms.other_errors("setup", SETUP_FIELDS)
        st.form_submit_button("Create administrator", type="primary", on_click=_on_create_admin)
