"""Login, logout, registration and password change, with the users kept in the database.

How it fits together
--------------------
* **Passwords, lockout, policy and registration rules live in** :mod:`core.services.users`
  (bcrypt hashes; at least 10 characters, not the username, not a common password; an account is
  locked for 15 minutes after 5 failed attempts; registration mode closed / invite / open). This
  module never checks a password itself.
* **streamlit-authenticator** provides the re-authentication cookie's browser side: its ``CookieModel``'s
  cookie manager writes and deletes a JWT ``{"username", "exp_date", "cv"}`` signed (HS256) with
  :func:`core.services.bootstrap.cookie_key` (COOKIE_KEY, ``cookie_key`` in .streamlit/secrets.toml, or a key
  generated on first start under DATA_DIR). ``cv`` is the account's credential version (its own
  ``set_cookie`` signs only the first two claims, so we sign the token ourselves and hand it to the cookie
  manager).
* **Sessions follow the account.** A session and its cookie carry the credential version they were issued
  under; a password change or reset, a role change, deactivation or a logout moves the stored version on
  (``core.services.users``), which ends every earlier session on its next run and refuses every earlier
  cookie. Callbacks act through :func:`actor` — a claim every service checks again on fresh state — never
  through a user object from an earlier run.
* **Why not ``Authenticate.login`` itself:** its widget checks the password against an in-memory
  credentials dict and counts failures per process, so the DB-backed lockout, the audit of failed
  logins and the "account locked" message could not be enforced there without reaching into its
  private state (the typed password is not exposed to a callback). We therefore draw the login,
  registration and password-change forms ourselves (same fields and labels as its widgets) and call
  ``users.authenticate`` / ``users.register`` / ``users.set_password``. Its ``register_user`` and
  ``forgot_password`` widgets were rejected for the same reason (they hash into the dict, enforce a
  different password policy, and the forgotten-password flow needs an email service we do not have):
  an administrator resets a password on the Admin page instead.
* Every run the user is re-read from the database by username, so a deactivated, locked or demoted
  user loses access on their next click, and the role check is never stale.
* **Two-factor authentication** (:mod:`core.services.two_factor`): after a right password, an account with
  TOTP gets a second form asking for the 6-digit code or a recovery code; the signed challenge between the two
  steps stays in this session's state. With ``ADMIN_2FA=required`` an administrator without it is sent to the
  enrolment screen (Home.py) and :func:`require_user` refuses every page until it is done.
* **Rate limits**: logins are limited per user name and per client address (``st.context.ip_address``; behind
  a reverse proxy this is the proxy's address unless it forwards the client's), see :mod:`core.infra.ratelimit`.

Audit: ``users.authenticate`` records ``auth.login`` (ok / failed) and ``auth.lockout``; this module
records ``auth.logout`` and ``auth.resume`` (a login restored from the cookie).
"""

from __future__ import annotations

import datetime as dt
import logging

import streamlit as st

from core.errors import AuthenticationError, AutoIndexError, NotFoundError, PermissionDenied, ValidationFailed
from core.models.base import utcnow
from core.schemas.user import UserOut
from core.services import audit, two_factor, users
from core.services.access import Actor, SessionEnded
from ui import forms, state
from ui.entry import enter_through_home
from ui.errors import show_error

log = logging.getLogger(__name__)

ALL_ROLES: tuple[str, ...] = ("admin", "analyst")
ADMIN_ONLY: tuple[str, ...] = ("admin",)

COOKIE_NAME = "autoindex_auth"
COOKIE_EXPIRY_DAYS = 7.0
_COOKIE_MAX_RUNS = 5
#: The cookie claim holding the account's credential version.
_COOKIE_VERSION_CLAIM = "cv"


# --- the re-authentication cookie (streamlit-authenticator) ------------------------------------


def _cookie_key() -> str:
    from core.services.bootstrap import cookie_key

    return cookie_key()


def _cookie_identity() -> tuple[str, int] | None:
    """``(username, credential_version)`` from a valid, unexpired re-authentication cookie of this browser.

    The account's current credential version is checked by :func:`current_user`: a cookie issued before a
    logout, a password change or reset, a role change or deactivation carries an older version and is refused.
    """
    import jwt

    try:
        token = st.context.cookies.get(COOKIE_NAME)
    except Exception:  # no browser context (bare mode, some AppTest runs)
        return None
    if not token:
        return None
    try:
        payload = jwt.decode(token, _cookie_key(), algorithms=["HS256"])
    except jwt.PyJWTError:
        return None
    if not isinstance(payload, dict) or float(payload.get("exp_date", 0)) <= dt.datetime.now().timestamp():
        return None
    username, version = payload.get("username"), payload.get(_COOKIE_VERSION_CLAIM)
    if not username or not isinstance(version, int):
        return None
    return str(username), version


def _cookie_token(username: str, version: int, expires: dt.datetime) -> str:
    """The signed cookie: streamlit-authenticator's claims (``username``, ``exp_date``) plus the account's
    credential version, so the cookie ends with the sessions it was issued beside."""
    import jwt

    return jwt.encode(
        {"username": username, "exp_date": expires.timestamp(), _COOKIE_VERSION_CLAIM: version},
        _cookie_key(),
        algorithm="HS256",
    )


def flush_cookie_action() -> None:
    """Write or delete the cookie (after a login / logout) through streamlit-authenticator's CookieModel.

    The cookie is written by a hidden browser component. The component reports the browser's cookies back,
    which reruns the script; the action therefore stays pending (and the component mounted) until the
    reported cookies show it took effect, at most ``_COOKIE_MAX_RUNS`` runs. Call it once per run (Home.py
    and the login screen do); its components have fixed keys.
    """
    action = st.session_state.get(state.AUTH_COOKIE_ACTION)
    if action is None:
        return
    runs = int(st.session_state.get(state.AUTH_COOKIE_RUNS, 0)) + 1
    st.session_state[state.AUTH_COOKIE_RUNS] = runs
    done = runs >= _COOKIE_MAX_RUNS
    try:
        from streamlit_authenticator.models import CookieModel

        model = CookieModel(COOKIE_NAME, _cookie_key(), COOKIE_EXPIRY_DAYS, None)
        seen = dict(model.cookie_manager.cookies or {})
        if action == "set":
            username = st.session_state.get(state.AUTH_USERNAME)
            version = st.session_state.get(state.AUTH_CREDENTIAL_VERSION)
            if seen.get(COOKIE_NAME) and _seen_version(seen[COOKIE_NAME]) == version:
                done = True
            elif username and isinstance(version, int):
                expires = dt.datetime.now() + dt.timedelta(days=COOKIE_EXPIRY_DAYS)
                model.cookie_manager.set(COOKIE_NAME, _cookie_token(username, version, expires), expires_at=expires)
            else:
                done = True
        elif action == "delete":
            if seen and COOKIE_NAME not in seen:
                done = True
            else:
                model.cookie_manager.cookies.setdefault(COOKIE_NAME, "")
                model.delete_cookie()
    except Exception:  # a cookie that cannot be written only costs a re-login
        log.warning("could not %s the re-authentication cookie", action, exc_info=True)
        done = True
    if done:
        st.session_state.pop(state.AUTH_COOKIE_ACTION, None)
        st.session_state.pop(state.AUTH_COOKIE_RUNS, None)


def _seen_version(token: str) -> int | None:
    import jwt

    try:
        return jwt.decode(token, _cookie_key(), algorithms=["HS256"]).get(_COOKIE_VERSION_CLAIM)
    except jwt.PyJWTError:
        return None


# --- who is logged in -------------------------------------------------------------------------


def _usable(user: UserOut) -> bool:
    return user.is_active and not (user.locked_until and user.locked_until > utcnow())


def _end_session(message: str) -> None:
    state.clear_auth()
    st.session_state[state.AUTH_ENDED_MESSAGE] = message


def current_user() -> UserOut | None:
    """The logged-in user, fresh from the database, or None (also restores a login from the cookie).

    The session (or cookie) must carry the account's current credential version: after a password change or
    reset, a role change, deactivation or a logout elsewhere, the session ends here with a message."""
    username = st.session_state.get(state.AUTH_USERNAME)
    version = st.session_state.get(state.AUTH_CREDENTIAL_VERSION)
    resumed = False
    if username is None and not st.session_state.get(state.AUTH_LOGGED_OUT):
        identity = _cookie_identity()
        if identity is not None:
            (username, version), resumed = identity, True
    if username is None:
        return None
    try:
        user = users.get_user(username)
    except NotFoundError:
        state.clear_auth()
        return None
    if not isinstance(version, int) or version != user.credential_version:
        if resumed:  # an old cookie: just not logged in
            return None
        _end_session(
            "Your session ended because your account changed (password, role or status) or you "
            "logged out elsewhere. Please log in again."
        )
        return None
    if not _usable(user):
        _end_session("Your account is not active. Ask an administrator.")
        return None
    if resumed:
        st.session_state[state.AUTH_USERNAME] = user.username
        st.session_state[state.AUTH_CREDENTIAL_VERSION] = user.credential_version
        audit.record_now(user.username, "auth.resume", user.username)
    return user


def actor() -> Actor | None:
    """The acting user of this session as services take it: a claim (username and the credential version the
    session was issued under) that every service checks again on fresh state. Read at call time, so a
    callback never acts on a user object from an earlier run."""
    username = st.session_state.get(state.AUTH_USERNAME)
    version = st.session_state.get(state.AUTH_CREDENTIAL_VERSION)
    if not username or not isinstance(version, int):
        return None
    return Actor(str(username), version)


def continue_session(version: int) -> None:
    """Keep this session (and its cookie) after its own credential change moved the account's version on to
    ``version``: every other session of the account has ended."""
    st.session_state[state.AUTH_CREDENTIAL_VERSION] = version
    st.session_state[state.AUTH_COOKIE_ACTION] = "set"
    st.session_state.pop(state.AUTH_COOKIE_RUNS, None)


def acting_or_fail() -> Actor:
    """:func:`actor`, or a SessionEnded error (shown as one line by the callers' error handling)."""
    who = actor()
    if who is None:
        raise SessionEnded("you are not logged in")
    return who


#: How a role reads beside a user name.
ROLE_WORDS = {"admin": "administrator", "analyst": "analyst"}


def account_line(user: UserOut) -> str:
    """The account under its person's name, as the sidebar and the Account page show it: username and role in
    words ("ann · analyst", "admin · administrator", not "admin · admin"); one word when they are the same."""
    role = ROLE_WORDS.get(user.role, user.role)
    return user.username if user.username.casefold() == role.casefold() else f"{user.username} · {role}"


def require_user(roles: tuple[str, ...] = ALL_ROLES) -> UserOut:
    """Call FIRST on every page: the logged-in user if their role is in ``roles``.

    Otherwise draws the login form (logged out) or an access-denied message (wrong role) and stops
    the script, so nothing of the page is drawn. A page reached by a deep link as a server's first request is
    rerun through Home.py first (:mod:`ui.entry`).
    """
    enter_through_home()
    try:
        user = current_user()
    except AutoIndexError as exc:  # e.g. the database went away: one readable line, never a traceback
        show_error(exc)
        st.stop()
    if user is None:
        login_screen()
        st.stop()
    if user.role not in roles:
        st.error(
            f"Access denied: this page is for {' or '.join(roles)} users; you are signed in as {user.role}.",
            icon=":material/block:",
        )
        st.stop()
    if two_factor.required_for(user):  # Home.py draws the enrolment; no page is reachable before it is done
        st.warning(
            "Administrators must set up two-factor authentication first (ADMIN_2FA=required). Open the "
            "app's home page to do it.",
            icon=":material/lock:",
        )
        st.stop()
    return user


# --- login ------------------------------------------------------------------------------------


def _client_address() -> str | None:
    """The browser's address as Streamlit sees it (None where it is not exposed: bare runs, AppTest)."""
    try:
        return st.context.ip_address
    except Exception:  # no browser context
        return None


def _sentence(message: str) -> str:
    return message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")


def _on_login() -> None:
    username = (st.session_state.get(state.LOGIN_USERNAME) or "").strip()
    password = st.session_state.get(state.LOGIN_PASSWORD) or ""
    st.session_state[state.LOGIN_PASSWORD] = ""
    st.session_state.pop(state.LOGIN_CHALLENGE, None)
    if not username or not password:
        st.session_state[state.LOGIN_MESSAGE] = "Enter your username and password."
        return
    try:
        user = users.authenticate(username, password, client_address=_client_address())
    except users.TwoFactorRequired as exc:  # the password was right: ask for the code next
        st.session_state[state.LOGIN_CHALLENGE] = exc.challenge
        st.session_state.pop(state.LOGIN_MESSAGE, None)
        return
    except AuthenticationError as exc:
        st.session_state[state.LOGIN_MESSAGE] = _sentence(exc.message)
        return
    except AutoIndexError as exc:  # rate limited, database down ...
        st.session_state[state.LOGIN_MESSAGE] = _sentence(str(exc))
        return
    _start_session(user)


def _on_login_code() -> None:
    challenge = st.session_state.get(state.LOGIN_CHALLENGE)
    code = (st.session_state.get(state.LOGIN_CODE) or "").strip()
    st.session_state[state.LOGIN_CODE] = ""
    if not code:
        st.session_state[state.LOGIN_MESSAGE] = "Enter the code from your authenticator app or a recovery code."
        return
    try:
        user = two_factor.complete_login(challenge, code)
    except AuthenticationError as exc:
        st.session_state[state.LOGIN_MESSAGE] = _sentence(exc.message)
        if exc.locked_until is not None or "again" in exc.message:  # locked or expired: back to the password
            st.session_state.pop(state.LOGIN_CHALLENGE, None)
        return
    except AutoIndexError as exc:
        st.session_state[state.LOGIN_MESSAGE] = _sentence(str(exc))
        return
    _start_session(user)


def _on_cancel_code() -> None:
    st.session_state.pop(state.LOGIN_CHALLENGE, None)
    st.session_state.pop(state.LOGIN_MESSAGE, None)


def _start_session(user: UserOut) -> None:
    st.session_state.pop(state.LOGIN_CHALLENGE, None)
    st.session_state.pop(state.LOGIN_MESSAGE, None)
    st.session_state[state.AUTH_USERNAME] = user.username
    st.session_state[state.AUTH_CREDENTIAL_VERSION] = user.credential_version
    st.session_state.pop(state.AUTH_ENDED_MESSAGE, None)
    st.session_state[state.AUTH_LOGGED_OUT] = False
    st.session_state[state.AUTH_COOKIE_ACTION] = "set"
    st.session_state.pop(state.AUTH_COOKIE_RUNS, None)


def _preload_charts() -> None:
    """An empty chart element on the login screen (:func:`ui.plotly_element.preload`): the browser fetches and
    compiles the Plotly library while the person types, instead of after the login, so the Dashboard's first chart
    is drawn sooner (issue 17: about a second of a fresh browser's login -> first chart). Nothing to see, no data.
    Only in a served app, for a browser (an AppTest has none to warm)."""
    from ui import plotly_element
    from ui.cache import served

    if not served():
        return
    with st.container(key=plotly_element.PRELOAD_KEY):
        st.html(
            "<style>.st-key-chart_preload{position:absolute;width:1px;height:1px;overflow:hidden;opacity:0;"
            "pointer-events:none}</style>"
        )
        plotly_element.preload()


def login_screen() -> None:
    """The login form, and the registration form when the registration mode allows it."""
    flush_cookie_action()
    _preload_charts()
    st.title("AutoIndex")
    left, _ = st.columns([2, 3])
    if st.session_state.get(state.LOGIN_CHALLENGE) is not None:
        with left:
            _code_form()
        return
    with left:
        with st.form("login"):
            st.subheader("Log in")
            ended = st.session_state.get(state.AUTH_ENDED_MESSAGE)
            if ended:
                st.warning(ended, icon=":material/info:")
            st.text_input("Username", key=state.LOGIN_USERNAME, autocomplete="username")
            st.text_input("Password", type="password", key=state.LOGIN_PASSWORD, autocomplete="current-password")
            message = st.session_state.get(state.LOGIN_MESSAGE)
            if message:
                st.error(message, icon=":material/lock:")
            st.form_submit_button("Log in", type="primary", on_click=_on_login)
        forms.notice("register")
        try:
            mode = users.registration_mode()
        except AutoIndexError:
            mode = "closed"
        if mode != "closed":
            with st.expander("Create an account" + (" (invited emails only)" if mode == "invite" else "")):
                registration_form()
        else:
            st.caption(
                "Accounts are created by an administrator. Forgot your password? Ask an administrator to reset it."
            )


def _code_form() -> None:
    """The second step of a login with two-factor authentication."""
    with st.form("two_factor_login"):
        st.subheader("Two-factor authentication")
        st.text_input(
            "Authentication code",
            key=state.LOGIN_CODE,
            autocomplete="one-time-code",
            help="The 6-digit code your authenticator app shows now, or one of your recovery codes (each works once).",
        )
        message = st.session_state.get(state.LOGIN_MESSAGE)
        if message:
            st.error(message, icon=":material/lock:")
        st.form_submit_button("Verify", type="primary", on_click=_on_login_code)
    st.button("Back to the password", key="login_code_cancel", on_click=_on_cancel_code)


# --- logout -----------------------------------------------------------------------------------


def _on_logout() -> None:
    username = st.session_state.get(state.AUTH_USERNAME)
    current = actor()
    if username and current is not None:
        try:
            audit.record_now(username, "auth.logout", username)
        except AutoIndexError:
            log.warning("could not record the logout of %s", username)
        try:
            users.revoke_cookies(current.username, version=current.credential_version)
        except AutoIndexError:
            log.warning("could not revoke the cookies of %s", username)
    state.clear_auth()
    st.session_state[state.AUTH_LOGGED_OUT] = True
    st.session_state[state.AUTH_COOKIE_ACTION] = "delete"
    st.session_state.pop(state.AUTH_COOKIE_RUNS, None)


def logout_button() -> None:
    st.button("Log out", key="logout_button", on_click=_on_logout, icon=":material/logout:", width="stretch")


# --- registration -----------------------------------------------------------------------------

REGISTER_FIELDS = ("username", "name", "email", "password", "password2")


def _on_register() -> None:
    values = {
        f: (st.session_state.get(k) or "")
        for f, k in zip(
            REGISTER_FIELDS,
            (
                state.REGISTER_USERNAME,
                state.REGISTER_NAME,
                state.REGISTER_EMAIL,
                state.REGISTER_PASSWORD,
                state.REGISTER_PASSWORD2,
            ),
        )
    }
    # every problem at once: the account's fields as the service checks them, plus the repetition
    errors = users.validate_new_user(
        values["username"].strip(), values["name"], values["password"], values["email"].strip() or None, "analyst"
    )
    if values["password"] != values["password2"]:
        errors["password2"] = "does not match the password"
    if not values["email"].strip():
        errors["email"] = "is required"
    if not errors:
        try:
            users.register(values["username"].strip(), values["name"], values["password"], values["email"].strip())
        except ValidationFailed as exc:
            errors.update(exc.errors)
        except PermissionDenied as exc:
            errors["email"] = str(exc)
    forms.set_errors("register", errors)
    if not errors:
        for key in (state.REGISTER_PASSWORD, state.REGISTER_PASSWORD2):
            st.session_state[key] = ""
        forms.set_notice("register", "Account created. You can log in now.")


def registration_form() -> None:
    with st.form("register"):
        forms.text_field("register", "username", "Username", key=state.REGISTER_USERNAME)
        forms.text_field("register", "name", "Name", key=state.REGISTER_NAME)
        forms.text_field("register", "email", "Email", key=state.REGISTER_EMAIL)
        forms.text_field(
            "register", "password", "Password", type="password", key=state.REGISTER_PASSWORD, help=forms.password_help()
        )
        forms.text_field("register", "password2", "Repeat password", type="password", key=state.REGISTER_PASSWORD2)
        forms.other_errors("register", REGISTER_FIELDS)
        st.form_submit_button("Create account", on_click=_on_register)


# --- password change (any logged-in user) -----------------------------------------------------


def _on_change_password() -> None:
    username = st.session_state.get(state.AUTH_USERNAME)
    current = st.session_state.get(state.PASSWORD_CURRENT) or ""
    new = st.session_state.get(state.PASSWORD_NEW) or ""
    errors: dict[str, str] = {}
    if new != (st.session_state.get(state.PASSWORD_NEW2) or ""):
        errors["password2"] = "does not match the new password"
    elif username:
        try:
            version = users.set_password(username, new, actor=acting_or_fail(), current_password=current)
        except ValidationFailed as exc:
            errors.update(exc.errors)
        except AutoIndexError as exc:
            errors["password"] = str(exc)
        else:  # every other session of this account ended; this one goes on under the new version
            st.session_state[state.AUTH_CREDENTIAL_VERSION] = version
            st.session_state[state.AUTH_COOKIE_ACTION] = "set"
            st.session_state.pop(state.AUTH_COOKIE_RUNS, None)
    forms.set_errors("password", errors)
    for key in (state.PASSWORD_CURRENT, state.PASSWORD_NEW, state.PASSWORD_NEW2):
        st.session_state[key] = ""
    if not errors:
        forms.set_notice("password", "Password changed.")


def change_password_form() -> None:
    forms.notice("password")
    with st.form("password", clear_on_submit=False):
        forms.text_field(
            "password", "current_password", "Current password", type="password", key=state.PASSWORD_CURRENT
        )
        forms.text_field("password", "password", "New password", type="password", key=state.PASSWORD_NEW)
        forms.text_field("password", "password2", "Repeat new password", type="password", key=state.PASSWORD_NEW2)
        st.form_submit_button("Change password", on_click=_on_change_password)


def safe_current_user() -> UserOut | None:
    """current_user() that never raises (for the sidebar)."""
    try:
        return current_user()
    except AutoIndexError as exc:
        show_error(exc)
        return None
