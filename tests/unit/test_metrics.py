"""Prometheus metrics: names, labels and values of what is counted, the scrape-time state, and the HTTP endpoint.

Values are read back with prometheus_client's own parser from the text ``/metrics`` serves, so every check goes
through the exposition format Prometheus reads.
"""

from __future__ import annotations

import datetime as dt
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from core.infra import metrics


def _samples(text: str | None = None) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.render() if text is None else text
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _value(name: str, **labels: str) -> float:
    return _samples().get((name, tuple(sorted(labels.items()))), 0.0)


def test_every_project_metric_is_prefixed_autoindex():
    names = {f.name for f in text_string_to_metric_families(metrics.render())}
    ours = {n for n in names if not n.startswith(("python_", "process_"))}
    assert ours and all(n.startswith("autoindex_") for n in ours), ours


def test_job_histogram_counts_runs_by_kind_and_state_and_buckets_their_duration():
    before = _value("autoindex_job_duration_seconds_count", kind="compute", state="succeeded")
    sum_before = _value("autoindex_job_duration_seconds_sum", kind="compute", state="succeeded")
    le1_before = _value("autoindex_job_duration_seconds_bucket", kind="compute", state="succeeded", le="1.0")
    for seconds in (0.3, 0.7, 4.0):
        metrics.observe_job("compute", "succeeded", seconds)
    metrics.observe_job("compute", "failed", 2.0)
    assert _value("autoindex_job_duration_seconds_count", kind="compute", state="succeeded") == before + 3
    assert _value("autoindex_job_duration_seconds_sum", kind="compute", state="succeeded") == pytest.approx(
        sum_before + 5.0
    )
    # cumulative buckets: 0.3 and 0.7 are <= 1 s, 4.0 is not
    assert (
        _value("autoindex_job_duration_seconds_bucket", kind="compute", state="succeeded", le="1.0") == le1_before + 2
    )
    assert _value("autoindex_job_duration_seconds_count", kind="compute", state="failed") >= 1


def test_an_unknown_final_state_is_recorded_as_failed_and_a_missing_duration_as_zero():
    before = _value("autoindex_job_duration_seconds_count", kind="report", state="failed")
    metrics.observe_job("report", "exploded", None)
    assert _value("autoindex_job_duration_seconds_count", kind="report", state="failed") == before + 1
    assert ("autoindex_job_duration_seconds_count", (("kind", "report"), ("state", "exploded"))) not in _samples()


def test_page_renders_are_observed_in_seconds_through_telemetry():
    from core.infra import telemetry

    before = _value("autoindex_page_render_seconds_count", page="Dashboard")
    sum_before = _value("autoindex_page_render_seconds_sum", page="Dashboard")
    telemetry.record_timing("page", "Dashboard", 250.0)
    telemetry.record_timing("service", "dashboard.data", 900.0)  # a service call is not a page
    telemetry.discard_pending()
    assert _value("autoindex_page_render_seconds_count", page="Dashboard") == before + 1
    assert _value("autoindex_page_render_seconds_sum", page="Dashboard") == pytest.approx(sum_before + 0.25)
    assert ("autoindex_page_render_seconds_count", (("page", "dashboard.data"),)) not in _samples()


def test_login_outcomes_are_classified_and_counted():
    from core.errors import AuthenticationError

    assert metrics.login_outcome(None) == "success"
    assert metrics.login_outcome(AuthenticationError("wrong username or password")) == "failure"
    assert metrics.login_outcome(AuthenticationError("locked", locked_until=dt.datetime(2030, 1, 1))) == "locked"
    assert metrics.login_outcome(RuntimeError("database down")) == "error"

    @metrics.counted_logins
    def login(ok: bool) -> str:
        if not ok:
            raise AuthenticationError("wrong username or password")
        return "user"

    ok_before = _value("autoindex_logins_total", outcome="success")
    bad_before = _value("autoindex_logins_total", outcome="failure")
    assert login(True) == "user"
    with pytest.raises(AuthenticationError):
        login(False)
    with pytest.raises(AuthenticationError):
        login(False)
    assert _value("autoindex_logins_total", outcome="success") == ok_before + 1
    assert _value("autoindex_logins_total", outcome="failure") == bad_before + 2


def test_the_login_service_counts_real_logins(sqlite_db):
    from core.errors import AuthenticationError
    from core.services import users

    users.create_user("metric_user", "Metric User", "a long password 123", role="analyst")
    ok_before = _value("autoindex_logins_total", outcome="success")
    bad_before = _value("autoindex_logins_total", outcome="failure")
    users.authenticate("metric_user", "a long password 123")
    with pytest.raises(AuthenticationError):
        users.authenticate("metric_user", "wrong password 123")
    assert _value("autoindex_logins_total", outcome="success") == ok_before + 1
    assert _value("autoindex_logins_total", outcome="failure") == bad_before + 1


def test_a_state_reader_runs_at_scrape_time_and_a_failing_one_costs_only_its_own_metrics():
    from prometheus_client.core import GaugeMetricFamily

    calls = []

    def good():
        calls.append(1)
        yield GaugeMetricFamily("autoindex_test_state", "test", value=len(calls))

    def bad():
        raise RuntimeError("database down")
        yield  # pragma: no cover

    metrics.register_state("test_good", good)
    metrics.register_state("test_bad", bad)
    try:
        first = _samples()
        second = _samples()
        assert first[("autoindex_test_state", ())] == 1 and second[("autoindex_test_state", ())] == 2
        assert second[("autoindex_state_read_ok", (("reader", "test_good"),))] == 1
        assert second[("autoindex_state_read_ok", (("reader", "test_bad"),))] == 0
    finally:
        metrics.unregister_state("test_good")
        metrics.unregister_state("test_bad")


def _seed_state(beat: dt.datetime) -> None:
    """Two assets (the benchmark 3 business days stale), an active config whose index is 20 % below its peak,
    two reports, two workers (one alive, one 100 s silent)."""
    from core.db import unit_of_work
    from core.models import Asset, IndexValue, Price, Report, StrategyConfigRow, WorkerHeartbeat

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
        stock = Asset(
            symbol="AAA",
            name="A",
            asset_class="stock",
            currency="USD",
            is_benchmark=False,
            is_active=True,
            source="demo",
        )
        session.add_all([bench, stock])
        session.flush()
        # now = Friday 2024-06-14 22:00 UTC (after the close): last completed business day = 2024-06-14
        session.add_all(
            [
                Price(asset_id=bench.id, date=dt.date(2024, 6, 11), close=100.0),  # 3 days stale
                Price(asset_id=stock.id, date=dt.date(2024, 6, 14), close=10.0),
            ]
        )  # up to date
        config = StrategyConfigRow(name="Default", version=1, params={}, is_active=True)
        session.add(config)
        session.flush()
        for day, value in ((1, 100.0), (2, 125.0), (3, 110.0), (4, 100.0)):
            session.add(IndexValue(config_id=config.id, date=dt.date(2024, 6, day), value=value))
        session.add_all(
            [
                Report(report_type="performance", period="1Y", format="pdf", owner="a", size_bytes=1000),
                Report(report_type="risk", period="1Y", format="pdf", owner="a", size_bytes=234),
                Report(report_type="risk", period="1Y", format="csv", owner="a", size_bytes=None),
            ]
        )
        session.add_all(
            [
                WorkerHeartbeat(worker_id="w-alive", hostname="elsewhere", pid=1, last_seen=beat),
                WorkerHeartbeat(
                    worker_id="w-silent", hostname="elsewhere", pid=2, last_seen=beat - dt.timedelta(seconds=100)
                ),
            ]
        )
        session.commit()


def test_scrape_time_state_reads_the_database(sqlite_db, monkeypatch):
    from core.services import operations

    now = dt.datetime(2024, 6, 14, 22, 0, tzinfo=dt.timezone.utc)
    beat = dt.datetime.now(dt.timezone.utc)  # heartbeats are read against the real clock at scrape time
    _seed_state(beat)
    stale = {a.symbol: a for a in operations.staleness(now)}
    assert stale["^GSPC"].benchmark and stale["^GSPC"].stale_days == 3  # Wed, Thu, Fri
    assert stale["AAA"].stale_days == 0
    assert operations.report_bytes() == {"pdf": 1234, "csv": 0}
    found = operations.active_drawdown()
    assert found is not None
    assert found.drawdown == pytest.approx(100.0 / 125.0 - 1)  # -20 %, hand-computed
    assert found.peak_date == dt.date(2024, 6, 2)
    ages = {w.worker_id: w for w in operations.workers(beat)}
    assert ages["w-alive"].alive and not ages["w-silent"].alive and ages["w-silent"].age_s == pytest.approx(100)

    operations.register_readers()
    samples = _samples()
    assert samples[("autoindex_report_bytes", (("format", "pdf"),))] == 1234
    assert samples[("autoindex_active_index_drawdown_ratio", (("config", "Default"),))] == pytest.approx(-0.2)
    assert samples[("autoindex_state_read_ok", (("reader", "freshness"),))] == 1
    assert ("autoindex_data_staleness_business_days", (("benchmark", "true"), ("symbol", "^GSPC"))) in samples
    assert ("autoindex_queue_depth", (("state", "pending"),)) in samples
    assert ("autoindex_worker_heartbeat_age_seconds", (("worker", "w-silent"),)) in samples


def test_the_http_endpoint_serves_the_text_format():
    port = metrics.serve(0, "127.0.0.1")
    try:
        assert metrics.serve(0, "127.0.0.1") == port  # once per process
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain")
            body = response.read().decode()
        assert "autoindex_job_duration_seconds" in body and "autoindex_logins_total" in body
    finally:
        metrics.stop()
    assert metrics.serving_port() is None


def test_a_finished_job_is_observed_once_from_its_run_row(sqlite_db):
    """jobs.observe reads the final state and duration the run row holds, and observes a run only once."""
    from core.db import unit_of_work
    from core.models import TaskRun
    from jobs import observe

    with unit_of_work() as session:
        done = TaskRun(kind="refresh", state="succeeded_with_warnings", duration_s=12.5)
        running = TaskRun(kind="refresh", state="running")
        session.add_all([done, running])
        session.commit()
        done_id, running_id = done.id, running.id
    before = _value("autoindex_job_duration_seconds_count", kind="refresh", state="succeeded_with_warnings")
    assert observe.observe_end(done_id) is True
    assert observe.observe_end(done_id) is False  # a second signal for the same run
    assert observe.observe_end(running_id) is False  # not final: not the end
    assert _value("autoindex_job_duration_seconds_count", kind="refresh", state="succeeded_with_warnings") == before + 1


def test_the_same_run_id_in_another_database_is_another_run(sqlite_db):
    """Run ids repeat across databases (a recreated database, a test process): a run observed elsewhere does not
    hide this database's run with the same id."""
    from core.db import unit_of_work
    from core.models import TaskRun
    from jobs import observe

    with unit_of_work() as session:
        done = TaskRun(kind="compute", state="succeeded", duration_s=1.0)
        session.add(done)
        session.commit()
        done_id = done.id
    observe._observed.append(("sqlite:////elsewhere/autoindex.db", done_id))
    assert observe.observe_end(done_id) is True
    assert observe.observe_end(done_id) is False
