"""Admin -> Alerts: where notifications go (Slack-compatible webhook, SMTP email), which rules fire, a test send,
and the alerts sent lately. The service (:mod:`core.services.alerts`) checks the admin role again and audits."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.errors import AutoIndexError, ValidationFailed
from core.schemas.alert import RULE_TITLES, RULES
from core.schemas.user import UserOut
from core.services import alerts
from ui import auth, forms, tables

FORM = "alert_settings"
FIELDS = (
    "webhook_url",
    "smtp_host",
    "smtp_port",
    "smtp_starttls",
    "smtp_user",
    "email_from",
    "email_to",
    "rules",
    "stale_days",
    "drawdown_threshold",
)


def _settings_form(user: UserOut) -> None:
    current = alerts.settings_for(auth.actor())
    forms.notice(FORM)
    with st.form(FORM):
        st.markdown('**Webhook** (Slack-compatible: a JSON `{"text": ...}` is posted)')
        webhook = st.text_input(
            "Webhook URL",
            value=current.webhook_url or "",
            help="Shown with its path hidden once saved; leave it as shown to keep it, empty it to remove the webhook.",
        )
        forms.field_error(FORM, "webhook_url", "Webhook URL")
        st.markdown("**Email** (the SMTP password is the `ALERT_SMTP_PASSWORD` setting, never stored here)")
        left, right = st.columns([3, 1])
        with left:
            host = st.text_input("SMTP host", value=current.smtp_host or "")
            forms.field_error(FORM, "smtp_host", "SMTP host")
        with right:
            port = st.number_input("SMTP port", min_value=1, max_value=65535, value=current.smtp_port, step=1)
        starttls = st.checkbox("Use STARTTLS", value=current.smtp_starttls)
        smtp_user = st.text_input("SMTP user (optional)", value=current.smtp_user or "")
        sender = st.text_input("From address", value=current.email_from or "")
        forms.field_error(FORM, "email_from", "From address")
        recipients = st.text_input("Recipients (comma separated)", value=", ".join(current.email_to))
        forms.field_error(FORM, "email_to", "Recipients")
        st.markdown("**Rules**")
        rules = st.multiselect("Alert when", RULES, default=list(current.rules), format_func=lambda r: RULE_TITLES[r])
        a, b = st.columns(2)
        with a:
            stale_days = st.number_input(
                "Data stale beyond (business days)", min_value=1, max_value=365, value=current.stale_days, step=1
            )
        with b:
            drawdown = st.number_input(
                "Drawdown threshold (%)",
                min_value=0.1,
                max_value=99.9,
                value=round(current.drawdown_threshold * 100, 2),
                step=0.5,
            )
        forms.other_errors(FORM, FIELDS)
        submitted = st.form_submit_button("Save alert settings")
    if submitted:
        values = {
            "webhook_url": webhook.strip(),
            "smtp_host": host.strip() or None,
            "smtp_port": int(port),
            "smtp_starttls": starttls,
            "smtp_user": smtp_user.strip() or None,
            "email_from": sender.strip() or None,
            "email_to": recipients,
            "rules": rules,
            "stale_days": int(stale_days),
            "drawdown_threshold": float(drawdown) / 100.0,
        }
        try:
            saved = alerts.save_settings(values, actor=auth.actor())
        except ValidationFailed as exc:
            forms.set_errors(FORM, exc.errors)
        else:
            forms.clear(FORM)
            channels = ", ".join(saved.channels) or "no channel (nothing will be sent)"
            forms.set_notice(FORM, f"Saved. Alerts go to: {channels}.")
        st.rerun()


def _send_test() -> None:
    if st.button("Send test", key="alerts_send_test", help="Send a test notification to every configured channel"):
        try:
            results = alerts.send_test(actor=auth.actor())
        except AutoIndexError as exc:
            st.error(str(exc) if not isinstance(exc, ValidationFailed) else "; ".join(exc.errors.values()))
            return
        for channel, outcome in results.items():
            if outcome == "ok":
                st.success(f"{channel}: sent")
            else:
                st.error(f"{channel}: {outcome}")


def draw(user: UserOut) -> None:
    """The Alerts tab."""
    st.caption(
        "The app evaluates these rules every ALERT_CHECK_MINUTES (a periodic job; the app itself too when "
        "jobs run elsewhere) and sends each alert once per episode. Prometheus users: see "
        "deploy/prometheus/alerts.yml."
    )
    _settings_form(user)
    _send_test()
    st.subheader("Sent lately")
    sent = alerts.recent_notifications(actor=auth.actor())
    tables.show(
        pd.DataFrame(sent, columns=["first_at", "rule", "status", "attempts", "sent_at", "channels", "message"])
    )
