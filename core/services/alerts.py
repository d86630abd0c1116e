"""Notifications from the app itself, for teams without Prometheus: rules, de-duplication, webhook and email.

Rules (each can be switched off in Admin -> Alerts; facts come from :mod:`core.services.operations`):

* ``refresh_failed``: a refresh run (manual or scheduled) ended ``failed`` within the last
  :data:`REFRESH_LOOKBACK`; one alert per run.
* ``data_stale``: the benchmark (the one benchmark rule; the stalest active asset when there is no benchmark) is
  more than ``stale_days`` business days stale (the one freshness rule); one alert per last price date.
* ``no_worker``: no worker heartbeat is alive; one alert per outage (keyed by the newest heartbeat seen).
* ``drawdown``: the active index is more than ``drawdown_threshold`` below its running peak (current drawdown,
  docs/methodology.md); one alert per config and peak.

**De-duplicated**: an alert's key names rule and episode; the first process to insert the key into
``alert_notifications`` (unique) sends it, every other evaluation of the same episode finds it and stays silent,
however many workers and replicas evaluate at once. A send that failed on every channel is retried by a later
evaluation, at most :data:`MAX_ATTEMPTS` times (the claim is an UPDATE on the attempt count it read).
**Audited**: every send (``alert.sent``, outcome ok or failed with the reason per channel), every test
(``alert.test``) and every settings change (``alert.settings``, the webhook URL redacted).

Channels: a Slack-compatible webhook (``POST {"text": ...}``) and SMTP email (STARTTLS optional; the password is
``ALERT_SMTP_PASSWORD``). Evaluated every ``ALERT_CHECK_MINUTES`` by a periodic job (:mod:`jobs.alert_tasks`) and,
when the app runs no jobs itself, by a watchdog thread in the app (:func:`start_watchdog`), so that "no worker
alive" is noticed although no worker runs the job.
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
import threading
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from core.db import unit_of_work
from core.errors import ValidationFailed
from core.models import AlertNotification, TaskRun, utcnow
from core.schemas.alert import RULE_TITLES, Alert, AlertSettings
from core.services import app_settings, audit, operations
from core.services.access import ADMIN_ONLY, SYSTEM, resolve
from core.services.freshness import stale_text

log = logging.getLogger(__name__)

SETTINGS_KEY = "alerts"
#: Failed refreshes older than this are history, not news (an alert setup must not page for last month).
REFRESH_LOOKBACK = dt.timedelta(hours=24)
#: Sends of one alert at most (the first and the retries of later evaluations).
MAX_ATTEMPTS = 3
#: A claim still "sending" after this long belongs to a process that died mid-send: it may be taken again.
SENDING_ABANDONED = dt.timedelta(minutes=10)
#: Seconds a webhook or SMTP server may take.
SEND_TIMEOUT_S = 10.0
REFRESH_KINDS = ("refresh", "scheduled_refresh")

Sender = Callable[[AlertSettings, str, str], None]


# --------------------------------------------------------------------------- settings
def load_settings() -> AlertSettings:
    """The stored alert settings (defaults when none were saved). For the services; pages use :func:`settings_for`."""
    with unit_of_work() as session:
        stored = app_settings.get(session, SETTINGS_KEY)
    try:
        return AlertSettings.model_validate(stored)
    except ValidationError:
        log.warning("stored alert settings are invalid; using defaults until an admin saves them again")
        return AlertSettings()


def redact_webhook(url: str | None) -> str | None:
    """``https://hooks.slack.com/***``: scheme and host only (the path of a webhook is its secret)."""
    if not url:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}{':' + str(parts.port) if parts.port else ''}/***"


def settings_for(actor: Any) -> AlertSettings:
    """The settings as an admin may see them: the webhook URL redacted."""
    with unit_of_work() as session:
        resolve(session, actor, ADMIN_ONLY, action="viewing alert settings")
    current = load_settings()
    return current.model_copy(update={"webhook_url": redact_webhook(current.webhook_url)})


def save_settings(values: dict[str, Any], *, actor: Any) -> AlertSettings:
    """Validate and store the alert settings (admins only; audited, webhook redacted). ``webhook_url`` absent or
    equal to its redacted form keeps the stored URL; an empty string removes it. Returns them redacted."""
    values = dict(values)
    with unit_of_work() as session:
        principal = resolve(session, actor, ADMIN_ONLY, action="changing alert settings", lock=True)
        current = app_settings.get(session, SETTINGS_KEY)
        if "webhook_url" not in values or values["webhook_url"] == redact_webhook(current.get("webhook_url")):
            values["webhook_url"] = current.get("webhook_url")
        try:
            chosen = AlertSettings.model_validate(values)
        except ValidationError as exc:
            raise ValidationFailed(
                {".".join(str(p) for p in e["loc"]) or "settings": e["msg"] for e in exc.errors()}
            ) from None
        stored = chosen.model_dump(mode="json")
        app_settings.put(session, SETTINGS_KEY, stored, by=principal.username)
        audit.record(
            session,
            principal.username,
            "alert.settings",
            SETTINGS_KEY,
            {**stored, "webhook_url": redact_webhook(chosen.webhook_url)},
        )
        session.commit()
    return chosen.model_copy(update={"webhook_url": redact_webhook(chosen.webhook_url)})


# --------------------------------------------------------------------------- channels
def send_webhook(config: AlertSettings, subject: str, text: str) -> None:
    """POST Slack's incoming-webhook JSON; raises on a refused connection or a status other than 2xx."""
    import requests

    assert config.webhook_url
    response = requests.post(config.webhook_url, json={"text": f"*{subject}*\n{text}"}, timeout=SEND_TIMEOUT_S)
    if not 200 <= response.status_code < 300:
        raise RuntimeError(f"webhook answered HTTP {response.status_code}")


def send_email(config: AlertSettings, subject: str, text: str) -> None:
    """Send a plain-text email through ``smtp_host``; STARTTLS when configured, login with ALERT_SMTP_PASSWORD."""
    from core.config import get_settings

    assert config.smtp_host
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = config.email_from or f"autoindex@{config.smtp_host}"
    message["To"] = ", ".join(config.email_to)
    message.set_content(text)
    with smtplib.SMTP(config.smtp_host, config.smtp_port, timeout=SEND_TIMEOUT_S) as smtp:
        if config.smtp_starttls:
            smtp.starttls()
        password = get_settings().alert_smtp_password
        if config.smtp_user and password:
            smtp.login(config.smtp_user, password)
        smtp.send_message(message)


SENDERS: dict[str, Sender] = {"webhook": send_webhook, "email": send_email}


def _secrets_of(config: AlertSettings) -> list[str]:
    """The texts an error message must never carry: the webhook URL and its path and query (the token), and the
    SMTP password."""
    from core.config import get_settings

    hidden = [get_settings().alert_smtp_password or ""]
    if config.webhook_url:
        parts = urlsplit(config.webhook_url)
        hidden += [config.webhook_url, parts.path + (f"?{parts.query}" if parts.query else ""), parts.path, parts.query]
    return sorted({h for h in hidden if h and h != "/"}, key=len, reverse=True)


def _reason(exc: BaseException, hidden: list[str] | None = None) -> str:
    """One line without a URL or a secret: a webhook's path is its secret, and ``requests`` names it in its errors
    without a scheme ("Max retries exceeded with url: /services/..."), so every text of ``hidden`` is replaced."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "://" in text:
        return type(exc).__name__
    for secret in hidden or ():
        text = text.replace(secret, "/***" if secret.startswith("/") else "***")
    return f"{type(exc).__name__}: {text}"[:300]


def deliver(config: AlertSettings, subject: str, text: str) -> dict[str, str]:
    """Send to every configured channel; per channel "ok" or the reason it failed, with no secret in it (never
    raises)."""
    results: dict[str, str] = {}
    for channel in config.channels:
        try:
            SENDERS[channel](config, subject, text)
            results[channel] = "ok"
        except Exception as exc:  # noqa: BLE001 - one line per channel, the others still get it
            results[channel] = _reason(exc, _secrets_of(config))
            log.warning("alert to %s failed: %s", channel, results[channel])
    return results


def send_test(*, actor: Any) -> dict[str, str]:
    """Send a test notification to every configured channel (admins only; audited). Per channel "ok" or why not."""
    config = load_settings()
    with unit_of_work() as session:
        principal = resolve(session, actor, ADMIN_ONLY, action="sending a test alert")
    if not config.channels:
        raise ValidationFailed({"channels": "configure a webhook URL or an SMTP host with recipients first"})
    results = deliver(
        config, "AutoIndex test notification", f"A test notification sent by {principal.username} from Admin -> Alerts."
    )
    ok = all(r == "ok" for r in results.values())
    audit.record_now(
        principal.username, "alert.test", ",".join(results), {"channels": results}, outcome="ok" if ok else "failed"
    )
    return results


# --------------------------------------------------------------------------- rules
def evaluate(config: AlertSettings, *, now: dt.datetime | None = None) -> list[Alert]:
    """The alerts firing now under ``config`` (nothing is sent or written)."""
    now = now or utcnow()
    firing: list[Alert] = []
    if "refresh_failed" in config.rules:
        with unit_of_work() as session:
            failed = session.execute(
                select(TaskRun.id, TaskRun.kind, TaskRun.error, TaskRun.finished_at)
                .where(
                    TaskRun.kind.in_(REFRESH_KINDS),
                    TaskRun.state == "failed",
                    TaskRun.finished_at >= now - REFRESH_LOOKBACK,
                )
                .order_by(TaskRun.id)
            ).all()
        for run_id, kind, error, finished in failed:
            reason = (error or "no reason recorded").splitlines()[0][:300]
            firing.append(
                Alert(
                    rule="refresh_failed",
                    key=f"refresh_failed:run {run_id}",
                    message=f"{kind} run {run_id} failed at {finished:%Y-%m-%d %H:%M} UTC: {reason}",
                )
            )
    if "data_stale" in config.rules:
        assets = [a for a in operations.staleness(now) if a.stale_days is not None]
        subject = next((a for a in assets if a.benchmark), None) or max(
            assets, key=lambda a: a.stale_days or 0, default=None
        )
        if subject is not None and subject.stale_days is not None and subject.stale_days > config.stale_days:
            role = "benchmark" if subject.benchmark else "stalest asset"
            others = sum(1 for a in assets if a is not subject and (a.stale_days or 0) > config.stale_days)
            firing.append(
                Alert(
                    rule="data_stale",
                    key=f"data_stale:{subject.symbol}:{subject.last_date}",
                    message=f"Prices are stale: {role} {subject.symbol} is {stale_text(subject.stale_days)} "
                    f"(last price {subject.last_date}; the limit is {config.stale_days}); "
                    f"{others} other active asset(s) beyond the limit.",
                )
            )
    if "no_worker" in config.rules:
        if not any(w.alive for w in operations.workers(now)):
            newest = operations.last_heartbeat()
            seen = f"the last heartbeat was at {newest:%Y-%m-%d %H:%M:%S} UTC" if newest else "no worker was ever seen"
            firing.append(
                Alert(
                    rule="no_worker",
                    key=f"no_worker:{newest.isoformat() if newest else 'never'}",
                    message=f"No job worker is alive: {seen}. Queued jobs wait; start one with "
                    "`python -m core worker`.",
                )
            )
    if "drawdown" in config.rules:
        found = operations.active_drawdown()
        if found is not None and found.drawdown <= -config.drawdown_threshold:
            firing.append(
                Alert(
                    rule="drawdown",
                    key=f"drawdown:{found.config_id}:{found.peak_date}",
                    message=f"The active index {found.config_name!r} is {-found.drawdown:.1%} below its peak of "
                    f"{found.peak_date} (on {found.last_date}; the threshold is "
                    f"{config.drawdown_threshold:.1%}).",
                )
            )
    return firing


def _claim(alert: Alert, now: dt.datetime) -> bool:
    """Take the right to send ``alert``: insert its key, or retry a failed send; False when it is not ours."""
    with unit_of_work() as session:
        try:
            session.add(
                AlertNotification(
                    key=alert.key,
                    rule=alert.rule,
                    message=alert.message,
                    status="sending",
                    attempts=1,
                    first_at=now,
                    last_attempt_at=now,
                )
            )
            session.commit()
            return True
        except IntegrityError:
            session.rollback()
        row = session.execute(
            select(
                AlertNotification.id,
                AlertNotification.status,
                AlertNotification.attempts,
                AlertNotification.last_attempt_at,
            ).where(AlertNotification.key == alert.key)
        ).first()
        if row is None or row.attempts >= MAX_ATTEMPTS:
            return False
        # a send whose process died mid-way ("sending" for longer than any send takes) is retried like a failure
        abandoned = row.status == "sending" and (
            row.last_attempt_at is None or row.last_attempt_at < now - SENDING_ABANDONED
        )
        if row.status != "failed" and not abandoned:
            return False
        claimed = session.execute(
            update(AlertNotification)
            .where(
                AlertNotification.id == row.id,
                AlertNotification.status == row.status,
                AlertNotification.attempts == row.attempts,
            )
            .values(status="sending", attempts=row.attempts + 1, last_attempt_at=now)
        ).rowcount  # type: ignore[attr-defined]  # CursorResult of an UPDATE
        session.commit()
        return bool(claimed)


def _finish(alert: Alert, results: dict[str, str], now: dt.datetime) -> None:
    ok = any(r == "ok" for r in results.values())
    with unit_of_work() as session:
        session.execute(
            update(AlertNotification)
            .where(AlertNotification.key == alert.key)
            .values(status="sent" if ok else "failed", sent_at=now if ok else None, channels=results)
        )
        audit.record(
            session,
            SYSTEM.name,
            "alert.sent",
            alert.key,
            {"rule": alert.rule, "channels": results},
            outcome="ok" if ok else "failed",
            message=alert.message[:500],
        )
        session.commit()


def check_and_notify(*, now: dt.datetime | None = None) -> dict[str, Any]:
    """Evaluate the rules and send each alert not sent before (the periodic job and the watchdog call this).

    Nothing happens while no channel is configured. Returns what fired, what was sent (key -> per-channel
    results) and what was already known."""
    config = load_settings()
    if not config.channels:
        return {"firing": [], "sent": {}, "known": [], "channels": []}
    now = now or utcnow()
    firing = evaluate(config, now=now)
    sent: dict[str, dict[str, str]] = {}
    known: list[str] = []
    for alert in firing:
        if not _claim(alert, now):
            known.append(alert.key)
            continue
        results = deliver(config, f"AutoIndex alert: {RULE_TITLES[alert.rule]}", alert.message)
        _finish(alert, results, now)
        sent[alert.key] = results
    return {"firing": [a.key for a in firing], "sent": sent, "known": known, "channels": config.channels}


def recent_notifications(*, actor: Any, limit: int = 50) -> list[dict[str, Any]]:
    """The latest alerts sent (admins only), newest first."""
    with unit_of_work() as session:
        resolve(session, actor, ADMIN_ONLY, action="viewing alerts")
        rows = session.scalars(select(AlertNotification).order_by(AlertNotification.id.desc()).limit(limit)).all()
        return [
            {
                "first_at": r.first_at,
                "rule": r.rule,
                "status": r.status,
                "attempts": r.attempts,
                "sent_at": r.sent_at,
                "message": r.message,
                "channels": ", ".join(f"{k}: {v}" for k, v in (r.channels or {}).items()),
            }
            for r in rows
        ]


# --------------------------------------------------------------------------- the app's watchdog
_watchdog: dict[str, Any] = {"thread": None, "stop": None}
_watchdog_lock = threading.Lock()


def start_watchdog(interval_s: float | None = None) -> bool:
    """Evaluate alerts every ``interval_s`` (default ``ALERT_CHECK_MINUTES``) in a daemon thread of this process,
    once per process. Returns whether a thread was started now."""
    from core.config import get_settings

    interval = interval_s if interval_s is not None else get_settings().alert_check_minutes * 60.0
    with _watchdog_lock:
        thread = _watchdog["thread"]
        if thread is not None and thread.is_alive():
            return False
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(interval):
                try:
                    check_and_notify()
                except Exception:  # noqa: BLE001 - the next round tries again; the log keeps the reason
                    log.warning("alert evaluation failed", exc_info=True)

        thread = threading.Thread(target=loop, name="autoindex-alert-watchdog", daemon=True)
        _watchdog.update(thread=thread, stop=stop)
        thread.start()
        return True


def stop_watchdog() -> None:
    stop = _watchdog["stop"]
    if stop is not None:
        stop.set()
    _watchdog.update(thread=None, stop=None)
