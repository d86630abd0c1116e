"""Every ``st.session_state`` key the app uses, defined in one place.

Pages and helpers import the constants from here instead of spelling strings, so two
screens can never collide on a key or silently read a different one.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

# --- authentication -------------------------------------------------------------------------
#: Username of the logged-in user (the user itself is re-read from the database every run).
AUTH_USERNAME = "auth_username"
#: The account's credential version when this session logged in; a password, role or status change (or a
#: logout elsewhere) moves the stored version on and ends the session on its next run.
AUTH_CREDENTIAL_VERSION = "auth_credential_version"
#: Why the last session ended (shown once above the login form).
AUTH_ENDED_MESSAGE = "auth_ended_message"
#: True after an explicit logout, so a stale re-authentication cookie cannot log the user back in.
AUTH_LOGGED_OUT = "auth_logged_out"
#: The re-authentication cookie must be written (after login) or deleted (after logout) this run.
AUTH_COOKIE_ACTION = "auth_cookie_action"
#: Runs the pending cookie action has been tried (it stays pending until the browser reports it done).
AUTH_COOKIE_RUNS = "auth_cookie_runs"

# --- login / setup / registration form widgets ---------------------------------------------
LOGIN_USERNAME = "login_username"
LOGIN_PASSWORD = "login_password"
LOGIN_MESSAGE = "login_message"
SETUP_TOKEN = "setup_token"
SETUP_USERNAME = "setup_username"
SETUP_NAME = "setup_name"
SETUP_EMAIL = "setup_email"
SETUP_PASSWORD = "setup_password"
SETUP_PASSWORD2 = "setup_password2"
REGISTER_USERNAME = "register_username"
REGISTER_NAME = "register_name"
REGISTER_EMAIL = "register_email"
REGISTER_PASSWORD = "register_password"
REGISTER_PASSWORD2 = "register_password2"
PASSWORD_CURRENT = "password_current"
PASSWORD_NEW = "password_new"
PASSWORD_NEW2 = "password_new2"
#: The signed challenge of a login whose password was right and which waits for a second-factor code.
LOGIN_CHALLENGE = "login_challenge"
LOGIN_CODE = "login_code"

# --- account: two-factor authentication ----------------------------------------------------
#: The enrolment being confirmed (secret and QR code, shown to this session only).
ACCOUNT_ENROLMENT = "account_enrolment"
#: Recovery codes just issued, shown once and then forgotten.
ACCOUNT_RECOVERY_CODES = "account_recovery_codes"
ACCOUNT_CONFIRM_CODE = "account_confirm_code"
ACCOUNT_MANAGE_CODE = "account_manage_code"

#: {form name: {field: message}} — validation messages drawn beside the fields.
FORM_ERRORS = "form_errors"
#: The label each form field was drawn with, so messages name what the person saw.
FORM_LABELS = "form_labels"
#: {form name: message} — one success line shown after a form was processed.
FORM_NOTICES = "form_notices"

# --- shared sidebar --------------------------------------------------------------------------
#: The config version shown on the dashboard (sidebar selector, explicit key).
SIDEBAR_CONFIG_ID = "sidebar_config_id"

# --- dashboard -------------------------------------------------------------------------------
DASH_RANGE = "dash_range"
DASH_SECTION = "dash_section"
DASH_LOG_SCALE = "dash_log_scale"
DASH_ALLOC_VIEW = "dash_alloc_view"
#: Which rolling metric the Risk section draws (one full-width chart; the choice reruns only the fragment).
DASH_ROLLING = "dash_rolling"

# --- strategy lab ----------------------------------------------------------------------------
#: Prefix of the per-field config inputs: ``strategy_field_<name>``.
STRATEGY_FIELD_PREFIX = "strategy_field_"
STRATEGY_BASE_ID = "strategy_base_id"
STRATEGY_LOADED_ID = "strategy_loaded_id"
#: The editor's params, kept outside widget state so they survive a visit to another page.
STRATEGY_DRAFT = "strategy_draft"
#: The "Benchmark, basis, caps and exclusions" expander: its fields are drawn only while it is open (issue 17).
STRATEGY_MORE = "strategy_more"
#: Whether that expander's fields were drawn in the last run (their widgets then hold their values).
STRATEGY_MORE_DRAWN = "strategy_more_drawn"
#: Those fields' values while they are not drawn (field units, by field name): Streamlit drops a widget's state
#: in a run that does not draw it.
STRATEGY_HELD = "strategy_held"
STRATEGY_NAME = "strategy_name"
STRATEGY_NOTE = "strategy_note"
STRATEGY_ACTIVATE_ON_SAVE = "strategy_activate_on_save"
STRATEGY_COMPARE_IDS = "strategy_compare_ids"
STRATEGY_ACTIVATE_ID = "strategy_activate_id"

# --- data --------------------------------------------------------------------------------------
DATA_ASSET = "data_asset"
DATA_IMPORT_FILE = "data_import_file"
DATA_IMPORT_ALLOW_NEW = "data_import_allow_new"
DATA_IMPORT_PROBLEMS = "data_import_problems"
DATA_NEW_SYMBOL = "data_new_symbol"
DATA_NEW_NAME = "data_new_name"
DATA_NEW_CLASS = "data_new_class"
DATA_NEW_SECTOR = "data_new_sector"
DATA_NEW_CURRENCY = "data_new_currency"
DATA_NEW_BENCHMARK = "data_new_benchmark"
DATA_DEACTIVATE = "data_deactivate"
DATA_PROVIDER = "data_provider"
DATA_PROVIDER_SYMBOLS = "data_provider_symbols"

# --- admin -------------------------------------------------------------------------------------
ADMIN_NEW_USERNAME = "admin_new_username"
ADMIN_NEW_NAME = "admin_new_name"
ADMIN_NEW_EMAIL = "admin_new_email"
ADMIN_NEW_ROLE = "admin_new_role"
ADMIN_NEW_PASSWORD = "admin_new_password"
ADMIN_EDIT_USER = "admin_edit_user"
ADMIN_EDIT_ROLE = "admin_edit_role"
ADMIN_EDIT_ACTIVE = "admin_edit_active"
ADMIN_RESET_PASSWORD = "admin_reset_password"
ADMIN_REG_MODE = "admin_reg_mode"
ADMIN_INVITE_EMAIL = "admin_invite_email"
ADMIN_AUDIT_ACTOR = "admin_audit_actor"
ADMIN_AUDIT_ACTION = "admin_audit_action"
ADMIN_AUDIT_SINCE = "admin_audit_since"
ADMIN_AUDIT_LIMIT = "admin_audit_limit"


def get(key: str, default: Any = None) -> Any:
    return st.session_state.get(key, default)


def put(key: str, value: Any) -> None:
    st.session_state[key] = value


def pop(key: str, default: Any = None) -> Any:
    return st.session_state.pop(key, default)


def field_prefix_key(field: str) -> str:
    """The widget key of one strategy-config field."""
    return STRATEGY_FIELD_PREFIX + field


def clear_auth() -> None:
    """Forget the logged-in user (logout, an ended session, a deactivated account) and everything this browser
    session held for them: unsaved drafts, fields held under a closed expander, shock rows, choices. The next
    person to log in here starts afresh; nothing of the last one's unsaved work is shown, used or saved under
    their name."""
    for key in list(st.session_state.keys()):
        del st.session_state[key]
