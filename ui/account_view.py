"""The Account screen's two-factor section: enrol (QR code and secret, confirmed with a first code), the ten
recovery codes shown once, new recovery codes, and turning two-factor authentication off.

The rules live in :mod:`core.services.two_factor`; this module only draws and translates errors. With
``ADMIN_2FA=required`` Home.py draws :func:`enrolment_required_screen` instead of any page for an administrator
who has not enrolled yet.
"""

from __future__ import annotations

import re

import streamlit as st

from core.config import get_settings
from core.errors import AutoIndexError, ValidationFailed
from core.schemas.user import UserOut
from core.services import two_factor
from ui import auth, forms, state

#: Modules of light margin a QR code needs around it to be found by a camera (ISO/IEC 18004: 4).
QUIET_ZONE = 4
_VIEW_BOX = re.compile(r'viewBox="([-\d.]+) ([-\d.]+) ([\d.]+) ([\d.]+)"')


def on_light(svg: str, quiet_zone: int = QUIET_ZONE) -> str:
    """The QR code ``svg`` (:func:`core.services.two_factor.qr_svg`: dark modules on a transparent background, one
    module per viewBox unit) drawn on white with ``quiet_zone`` modules of margin: a camera reads a QR code only dark
    on light, and on the dark theme's background a transparent one was black on near-black. The margin the code
    already has counts (its first dark module is where its margin ends)."""
    box = _VIEW_BOX.search(svg)
    if box is None:
        return svg
    x, y, width, height = (float(v) for v in box.groups())
    corners = re.findall(r"M([\d.]+),([\d.]+)", svg)  # where each dark module starts
    margin = min((min(float(cx) - x, float(cy) - y) for cx, cy in corners), default=0.0)
    grow = max(0.0, quiet_zone - margin)
    x, y, width, height = x - grow, y - grow, width + 2 * grow, height + 2 * grow
    svg = svg.replace(box.group(0), f'viewBox="{x:g} {y:g} {width:g} {height:g}"', 1)
    background = f'<rect x="{x:g}" y="{y:g}" width="{width:g}" height="{height:g}" fill="#ffffff"/>'
    # the background first (drawn under the modules), and the modules dark whatever the page's colours
    svg = re.sub(r"(<svg\b[^>]*>)", lambda m: m.group(1) + background, svg, count=1)
    return re.sub(r"<path\b(?![^>]*\sfill=)", '<path fill="#000000"', svg)


def _on_begin() -> None:
    st.session_state.pop(state.ACCOUNT_RECOVERY_CODES, None)
    try:
        st.session_state[state.ACCOUNT_ENROLMENT] = two_factor.begin_enrolment(auth.acting_or_fail())
    except ValidationFailed as exc:
        forms.set_errors("two_factor", exc.errors)
        return
    except AutoIndexError as exc:
        forms.set_errors("two_factor", {"code": str(exc)})
        return
    forms.clear("two_factor")


def _on_confirm() -> None:
    code = (st.session_state.get(state.ACCOUNT_CONFIRM_CODE) or "").strip()
    st.session_state[state.ACCOUNT_CONFIRM_CODE] = ""
    try:
        enabled = two_factor.confirm_enrolment(auth.acting_or_fail(), code)
    except ValidationFailed as exc:
        forms.set_errors("two_factor", exc.errors)
        return
    except AutoIndexError as exc:
        forms.set_errors("two_factor", {"code": str(exc)})
        return
    auth.continue_session(enabled.credential_version)
    st.session_state.pop(state.ACCOUNT_ENROLMENT, None)
    st.session_state[state.ACCOUNT_RECOVERY_CODES] = enabled.recovery_codes
    forms.clear("two_factor")
    forms.set_notice("two_factor", "Two-factor authentication is on. Your other sessions were logged out.")


def _on_manage(action: str) -> None:
    code = (st.session_state.get(state.ACCOUNT_MANAGE_CODE) or "").strip()
    st.session_state[state.ACCOUNT_MANAGE_CODE] = ""
    try:
        if action == "disable":
            auth.continue_session(two_factor.disable(auth.acting_or_fail(), code))
            message = "Two-factor authentication is off. Your other sessions were logged out."
        else:
            st.session_state[state.ACCOUNT_RECOVERY_CODES] = two_factor.regenerate_recovery_codes(
                auth.acting_or_fail(), code
            )
            message = "New recovery codes issued; the old ones no longer work."
    except ValidationFailed as exc:
        forms.set_errors("two_factor_manage", exc.errors)
        return
    except AutoIndexError as exc:
        forms.set_errors("two_factor_manage", {"code": str(exc)})
        return
    forms.clear("two_factor_manage")
    forms.set_notice("two_factor", message)


def _on_saved_codes() -> None:
    st.session_state.pop(state.ACCOUNT_RECOVERY_CODES, None)


def _recovery_codes(codes: list[str]) -> None:
    st.warning(
        "Your recovery codes, shown **once**. Each logs you in once if you lose your phone. Keep them "
        "somewhere safe (a password manager), not on the phone.",
        icon=":material/key:",
    )
    st.code("\n".join(codes), language=None)
    st.download_button(
        "Download the codes",
        "\n".join(codes) + "\n",
        file_name="autoindex-recovery-codes.txt",
        mime="text/plain",
        key="two_factor_codes_download",
    )
    st.button("I have saved them", key="two_factor_codes_saved", on_click=_on_saved_codes, type="primary")


def _enrolment(enrolment: two_factor.Enrolment) -> None:
    st.markdown(
        "1. Scan this QR code with an authenticator app (Google Authenticator, Microsoft "
        "Authenticator, 1Password, Aegis, ...), or type the secret in.\n"
        "2. Enter the 6-digit code the app shows to confirm."
    )
    st.image(on_light(enrolment.qr_svg), width=220, caption="otpauth QR code")
    st.code(enrolment.secret, language=None)
    with st.form("two_factor_confirm"):
        forms.text_field(
            "two_factor",
            "code",
            "Code from the app",
            key=state.ACCOUNT_CONFIRM_CODE,
            autocomplete="one-time-code",
            max_chars=10,
        )
        st.form_submit_button("Confirm and turn on", type="primary", on_click=_on_confirm)
    st.button("Start again with a new secret", key="two_factor_restart", on_click=_on_begin)


def two_factor_section(user: UserOut) -> None:
    """Everything the user can do about their own second factor."""
    st.subheader("Two-factor authentication")
    forms.notice("two_factor")
    codes = st.session_state.get(state.ACCOUNT_RECOVERY_CODES)
    if codes:
        _recovery_codes(list(codes))
        return
    status = two_factor.status(auth.acting_or_fail())
    if status.enabled:
        assert status.enabled_at is not None
        st.success(
            f"On since {status.enabled_at:%Y-%m-%d %H:%M} UTC · {status.recovery_codes_left} recovery code(s) left.",
            icon=":material/verified_user:",
        )
        with st.form("two_factor_manage"):
            forms.text_field(
                "two_factor_manage",
                "code",
                "Current code (or a recovery code)",
                key=state.ACCOUNT_MANAGE_CODE,
                autocomplete="one-time-code",
            )
            left, right = st.columns(2)
            with left:
                st.form_submit_button("New recovery codes", on_click=_on_manage, args=("codes",))
            with right:
                st.form_submit_button("Turn off", on_click=_on_manage, args=("disable",), disabled=status.required)
        if status.required:
            st.caption(
                "Administrators cannot turn it off here (ADMIN_2FA=required); another administrator can reset it."
            )
        return
    enrolment = st.session_state.get(state.ACCOUNT_ENROLMENT)
    if isinstance(enrolment, two_factor.Enrolment):
        _enrolment(enrolment)
        return
    st.write(
        "Protect your account with a code from an authenticator app on your phone, asked after the "
        "password at every login."
    )
    forms.field_error("two_factor", "code")
    st.button("Set up two-factor authentication", key="two_factor_begin", on_click=_on_begin, type="primary")


def gate_needed(user: UserOut) -> bool:
    """Home.py shows :func:`enrolment_required_screen` instead of any page: the administrator has not enrolled
    while ``ADMIN_2FA=required``, or has just enrolled there and is reading the recovery codes."""
    if two_factor.required_for(user):
        return True
    return (
        get_settings().admin_2fa == "required"
        and user.is_admin
        and bool(st.session_state.get(state.ACCOUNT_RECOVERY_CODES))
    )


def enrolment_required_screen() -> None:
    """The only screen of an administrator without two-factor authentication while ``ADMIN_2FA=required``."""
    auth.flush_cookie_action()
    user = auth.current_user()
    st.title("Set up two-factor authentication")
    st.info(
        "This deployment requires administrators to use two-factor authentication (ADMIN_2FA=required). "
        "Set it up to continue.",
        icon=":material/lock:",
    )
    if user is not None:
        two_factor_section(user)
    auth.logout_button()
