"""In-app alert notifications against a local webhook stub (http.server) and a local SMTP server (aiosmtpd), on
SQLite and PostgreSQL: settings (admins only, validated, webhook redacted), send test, each rule, de-duplication
(also under concurrent evaluations), retries of a failed send, and the audit trail."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

NOW = dt.datetime(2024, 6, 14, 22, 0, tzinfo=dt.timezone.utc)  # a Friday after the close
SECRET_PATH = "/services/T000/B000/very-secret-token"


class WebhookStub:
    """A Slack-compatible webhook: records each JSON body; answers ``status``."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.status = 200
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length", 0))
                stub.bodies.append({"path": self.path, "json": json.loads(self.rfile.read(length))})
                self.send_response(stub.status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{SECRET_PATH}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class MailSink:
    """aiosmtpd handler keeping every message."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


@pytest.fixture
def webhook() -> Iterator[WebhookStub]:
    stub = WebhookStub()
    yield stub
    stub.close()


@pytest.fixture
def smtp() -> Iterator[tuple[int, MailSink]]:
    import socket

    from aiosmtpd.controller import Controller

    with socket.socket() as probe:  # aiosmtpd's start-up check connects to the configured port: name a free one
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sink = MailSink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, sink
    finally:
        controller.stop()


@pytest.fixture
def admin(db):
    from core.services import users

    users.create_user("alice", "Alice", "alice's long password 1", role="admin")
    users.create_user("bob", "Bob", "bob's long password 12", role="analyst")
    return "alice"


def _configure(webhook: WebhookStub, smtp_port: int, **extra) -> None:
    from core.services import alerts

    alerts.save_settings(
        {
            "webhook_url": webhook.url,
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp_port,
            "smtp_starttls": False,
            "email_from": "autoindex@example.org",
            "email_to": "ops@example.org, lead@example.org",
            **extra,
        },
        actor="alice",
    )


def _seed_firing_state() -> None:
    """Every rule fires at NOW: a failed refresh 2 h ago, the benchmark 8 business days stale, no worker ever,
    the active index 20 % below its peak."""
    from core.db import unit_of_work
    from core.models import Asset, IndexValue, Price, StrategyConfigRow, TaskRun

    with unit_of_work() as session:
        bench = Asset(
            symbol="^GSPC",
            name="S&P 500",
            asset_class="index",
            currency="USD",
            is_benchmark=True,
            is_active=True,
            source="demo",
        )
        session.add(bench)
        session.flush()
        session.add(Price(asset_id=bench.id, date=dt.date(2024, 6, 4), close=100.0))  # Wed 5 .. Fri 14: 8 days
        config = StrategyConfigRow(name="Default", version=1, params={}, is_active=True)
        session.add(config)
        session.flush()
        for day, value in ((3, 100.0), (4, 125.0), (5, 100.0)):
            session.add(IndexValue(config_id=config.id, date=dt.date(2024, 6, day), value=value))
        session.add(
            TaskRun(
                kind="refresh",
                state="failed",
                error="ProviderError: HTTP 401 for AAPL\ntraceback",
                queued_at=NOW - dt.timedelta(hours=2),
                finished_at=NOW - dt.timedelta(hours=2),
            )
        )
        session.add(
            TaskRun(
                kind="refresh",
                state="failed",
                error="old news",
                queued_at=NOW - dt.timedelta(days=3),
                finished_at=NOW - dt.timedelta(days=3),
            )
        )
        session.commit()


def _audit(action: str):
    from core.services import audit

    return audit.list_events(action=action)


def test_only_admins_change_settings_bad_values_are_named_and_nothing_is_stored(admin, webhook):
    from core.errors import PermissionDenied, ValidationFailed
    from core.services import alerts

    with pytest.raises(PermissionDenied):
        alerts.save_settings({"webhook_url": webhook.url}, actor="bob")
    with pytest.raises(ValidationFailed) as bad:
        alerts.save_settings({"webhook_url": "ftp://x", "email_to": "not-an-address", "stale_days": 0}, actor="alice")
    assert set(bad.value.errors) == {"webhook_url", "email_to", "stale_days"}
    assert alerts.load_settings().channels == []  # nothing stored
    assert _audit("alert.settings").empty


def test_the_webhook_url_is_a_secret_shown_redacted_and_kept_when_the_form_returns_it(admin, webhook, smtp):
    from core.services import alerts

    _configure(webhook, smtp[0])
    shown = alerts.settings_for("alice")
    assert shown.webhook_url == f"http://127.0.0.1:{webhook.server.server_address[1]}/***"
    assert "very-secret-token" not in json.dumps(_audit("alert.settings")["detail"].tolist())
    # the form sends back what it showed: the stored URL is kept
    alerts.save_settings({**shown.model_dump(), "stale_days": 7}, actor="alice")
    assert alerts.load_settings().webhook_url == webhook.url and alerts.load_settings().stale_days == 7
    # emptied: removed
    alerts.save_settings({**shown.model_dump(), "webhook_url": ""}, actor="alice")
    assert alerts.load_settings().webhook_url is None


def test_send_test_reaches_the_webhook_and_the_mailbox_and_is_audited(admin, webhook, smtp):
    from core.errors import PermissionDenied, ValidationFailed
    from core.services import alerts

    with pytest.raises(ValidationFailed):
        alerts.send_test(actor="alice")  # no channel yet
    port, sink = smtp
    _configure(webhook, port)
    with pytest.raises(PermissionDenied):
        alerts.send_test(actor="bob")
    assert alerts.send_test(actor="alice") == {"webhook": "ok", "email": "ok"}
    assert webhook.bodies[0]["path"] == SECRET_PATH
    assert "test notification" in webhook.bodies[0]["json"]["text"]
    mail_from, rcpt, content = sink.messages[0]
    assert mail_from == "autoindex@example.org" and rcpt == ["ops@example.org", "lead@example.org"]
    assert message_from_bytes(content)["Subject"] == "AutoIndex test notification"
    events = _audit("alert.test")
    assert list(events["outcome"]) == ["ok"] and list(events["actor"]) == ["alice"]


def test_a_failing_channel_is_reported_without_its_url(admin, webhook, smtp):
    from core.services import alerts

    _configure(webhook, smtp[0])
    webhook.status = 500
    results = alerts.send_test(actor="alice")
    assert results["email"] == "ok" and "500" in results["webhook"] and "secret" not in results["webhook"]
    assert list(_audit("alert.test")["outcome"]) == ["failed"]


def test_every_rule_fires_once_per_episode_on_both_channels_and_is_audited(admin, webhook, smtp):
    from core.services import alerts

    port, sink = smtp
    _configure(webhook, port)
    _seed_firing_state()
    first = alerts.check_and_notify(now=NOW)
    rules = sorted(key.split(":")[0] for key in first["sent"])
    assert rules == ["data_stale", "drawdown", "no_worker", "refresh_failed"]  # the 3-day-old failure is history
    assert all(r == {"webhook": "ok", "email": "ok"} for r in first["sent"].values())
    texts = [b["json"]["text"] for b in webhook.bodies]
    assert any("8 business days stale" in t and "^GSPC" in t for t in texts)
    assert any("20.0% below its peak of 2024-06-04" in t for t in texts)
    assert any("HTTP 401 for AAPL" in t and "traceback" not in t for t in texts)
    assert any("No job worker is alive" in t for t in texts)
    assert len(sink.messages) == 4
    # the same episodes again: nothing sent
    second = alerts.check_and_notify(now=NOW + dt.timedelta(minutes=5))
    assert second["sent"] == {} and sorted(second["known"]) == sorted(first["firing"])
    assert len(webhook.bodies) == 4 and len(sink.messages) == 4
    events = _audit("alert.sent")
    assert len(events) == 4 and set(events["outcome"]) == {"ok"} and set(events["actor"]) == {"system"}


def test_a_rule_switched_off_or_below_its_threshold_does_not_fire(admin, webhook, smtp):
    from core.services import alerts

    _configure(webhook, smtp[0], rules=["drawdown", "data_stale"], drawdown_threshold=0.25, stale_days=8)
    _seed_firing_state()
    result = alerts.check_and_notify(now=NOW)
    assert result["firing"] == []  # 20 % < 25 %; 8 days is not beyond 8; the others are off


def test_nothing_is_evaluated_while_no_channel_is_configured(admin):
    from core.services import alerts

    _seed_firing_state()
    assert alerts.check_and_notify(now=NOW)["firing"] == []
    assert _audit("alert.sent").empty


def test_a_failed_send_is_retried_by_later_evaluations_up_to_the_limit(admin, webhook, smtp):
    from core.services import alerts

    _configure(webhook, smtp[0], rules=["drawdown"], email_to=[], smtp_host=None)
    _seed_firing_state()
    webhook.status = 503
    for minute in range(alerts.MAX_ATTEMPTS + 2):
        alerts.check_and_notify(now=NOW + dt.timedelta(minutes=minute))
    assert len(webhook.bodies) == alerts.MAX_ATTEMPTS  # then it gives up
    events = _audit("alert.sent")
    assert len(events) == alerts.MAX_ATTEMPTS and set(events["outcome"]) == {"failed"}
    # a recovered webhook does not get an alert that already gave up; a new episode is sent
    webhook.status = 200
    assert alerts.check_and_notify(now=NOW + dt.timedelta(hours=1))["sent"] == {}


def test_a_webhook_that_recovers_gets_the_alert_on_the_next_evaluation(admin, webhook, smtp):
    from core.services import alerts

    _configure(webhook, smtp[0], rules=["no_worker"], email_to=[], smtp_host=None)
    webhook.status = 500
    alerts.check_and_notify(now=NOW)
    webhook.status = 200
    sent = alerts.check_and_notify(now=NOW + dt.timedelta(minutes=5))["sent"]
    assert sent == {"no_worker:never": {"webhook": "ok"}}
    assert list(_audit("alert.sent")["outcome"]) == ["ok", "failed"]  # newest first


def test_concurrent_evaluations_send_each_alert_once(admin, webhook, smtp):
    """Eight evaluations at once (workers and replicas): the unique key lets exactly one send each alert."""
    from core.services import alerts

    port, sink = smtp
    _configure(webhook, port)
    _seed_firing_state()
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def evaluate() -> None:
        try:
            barrier.wait(timeout=10)
            alerts.check_and_notify(now=NOW)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=evaluate) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert len(webhook.bodies) == 4 and len(sink.messages) == 4
    assert len(_audit("alert.sent")) == 4


def test_the_periodic_job_evaluates_on_its_minutes(admin, webhook, smtp, monkeypatch):
    from core.config import reset_settings_cache
    from jobs import alert_tasks

    monkeypatch.setenv("ALERT_CHECK_MINUTES", "15")
    reset_settings_cache()
    assert alert_tasks.every_check_interval(dt.datetime(2024, 6, 14, 10, 45))
    assert not alert_tasks.every_check_interval(dt.datetime(2024, 6, 14, 10, 46))
    _configure(webhook, smtp[0], rules=["no_worker"])
    result = alert_tasks.alert_check.call_local()
    assert list(result["sent"]) == [result["firing"][0]] and result["firing"][0].startswith("no_worker:")
