"""Reports end to end: every type x format opens and shows the analytics (= dashboard) numbers; requests,
the job, storage (database and REPORTS_DIR), history, downloads, access control, deletion and retention.

The 16 files are generated once for the module (SQLite, 3 years of demo data, period 1Y); the service
tests that write report rows run on SQLite and PostgreSQL (``db``).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import re
import zipfile
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from core.errors import NotFoundError, ValidationFailed
from jobs.queue import set_immediate

TYPES = ("performance", "allocation", "risk", "benchmark")
FORMATS = ("html", "pdf", "xlsx", "csv")
PERIOD = "1Y"
CORE_SHEETS = ["Summary", "Series", "Weights history", "Monthly returns", "Drawdowns", "Trades"]
TYPE_SHEETS = {
    "performance": ["Trailing returns", "Yearly returns"],
    "allocation": [
        "Current weights",
        "Sector weights",
        "Rebalances",
        "Contribution",
        "Sector contribution",
        "Attribution",
    ],
    "risk": ["Risk metrics", "Worst days", "Worst weeks", "Stress periods", "Correlation"],
    "benchmark": ["Benchmark metrics", "Yearly returns", "Trailing returns"],
}
#: A metric each type's HTML/PDF shows in a table (checked against the analytics value).
SHOWN_METRIC = {"performance": "sharpe", "allocation": "total_return", "risk": "var_95", "benchmark": "tracking_error"}
ANNA = SimpleNamespace(username="anna", is_admin=False)
BOB = SimpleNamespace(username="bob", is_admin=False)
ROOT = SimpleNamespace(username="root", is_admin=True)


def _reset_caches() -> None:
    from core.config import reset_settings_cache
    from core.db import reset_engine_cache

    reset_engine_cache()
    reset_settings_cache()


def _seed_and_compute(years: float = 3) -> int:
    from core.services import compute, strategies
    from core.services.bootstrap import seed_demo

    seed_demo(years=years)
    cfg = strategies.ensure_default_config()
    compute.compute_config(cfg.id)
    _create_users()
    return cfg.id


def _create_users() -> None:
    """The owners and viewers of these tests as real accounts: services read their role from the database."""
    from core.services import users

    for who in (ANNA, BOB, ROOT):
        users.create_user(
            who.username,
            who.username.title(),
            f"{who.username}'s long password 1",
            role="admin" if who.is_admin else "analyst",
        )


@pytest.fixture(scope="module")
def module_db(tmp_path_factory) -> Iterator[int]:
    """One computed SQLite database for the module's read-only tests; yields the config id."""
    keys = ("DATA_DIR", "DATABASE_URL", "REDIS_URL", "DEMO_ON_EMPTY", "REPORTS_DIR", "TWELVEDATA_API_KEY")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ["DATA_DIR"] = str(tmp_path_factory.mktemp("reports"))
    os.environ["DEMO_ON_EMPTY"] = "false"
    for k in ("DATABASE_URL", "REDIS_URL", "REPORTS_DIR", "TWELVEDATA_API_KEY"):
        os.environ.pop(k, None)
    _reset_caches()
    from core.db import migrate

    migrate(timeout_s=5)
    yield _seed_and_compute()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    _reset_caches()


@pytest.fixture(scope="module")
def view(module_db):
    from core.services import analytics

    inputs = analytics.load_view_inputs(module_db)
    return analytics.build_performance_view(inputs, *analytics.resolve_period(inputs, PERIOD))


@pytest.fixture(scope="module")
def files(module_db) -> dict[tuple[str, str], tuple[str, bytes]]:
    from core.services.reports import build_report_bytes

    now = dt.datetime(2026, 11, 26, 18, 0, tzinfo=dt.timezone.utc)
    return {
        (t, f): build_report_bytes(t, PERIOD, f, module_db, generated_by="tester", now=now)
        for t in TYPES
        for f in FORMATS
    }


def _fmt(value, kind="pct"):
    from core.services.reporting.content import fmt

    return fmt(value, kind)


def _kind(key: str) -> str:
    from core.quant.risk import METRIC_DEFINITIONS

    return "pct" if METRIC_DEFINITIONS[key][2] == "fraction" else "ratio"


# --------------------------------------------------------------------------- each type x format opens
@pytest.mark.parametrize("report_type", TYPES)
def test_xlsx_sheets_formats_and_values(files, view, report_type):
    import openpyxl

    name, data = files[(report_type, "xlsx")]
    assert name.endswith(".xlsx") and report_type in name
    wb = openpyxl.load_workbook(io.BytesIO(data))
    assert wb.sheetnames[0] == "About"
    assert set(CORE_SHEETS + TYPE_SHEETS[report_type]) <= set(wb.sheetnames)
    about = "\n".join(str(c.value) for row in wb["About"].iter_rows() for c in row if c.value is not None)
    assert "Synthetic demo data" in about and "AutoIndex Core v1" in about and "Methodology" in about
    assert "Sharpe ratio" in about  # metric definitions
    summary = wb["Summary"]
    assert summary.freeze_panes == "A2"
    header = [c.value for c in summary[1]]
    assert header[:3] == ["Key", "Metric", "Index"]
    by_key = {row[0].value: row for row in summary.iter_rows(min_row=2)}
    for key, value in view.metrics.items():
        if key in by_key:
            cell = by_key[key][2]
            if value is None:
                assert cell.value is None
            else:
                assert cell.value == pytest.approx(value, rel=1e-12, abs=1e-15)
                assert cell.number_format == ("0.00%" if _kind(key) == "pct" else "0.00")
    series = wb["Series"]
    rows = list(series.iter_rows(min_row=2, values_only=True))
    assert len(rows) == len(view.index_level)
    assert rows[-1][1] == pytest.approx(float(view.index_level.iloc[-1]), rel=1e-12)
    assert rows[0][0].date() == view.base_date
    assert series.column_dimensions["A"].width >= 10
    trades = list(wb["Trades"].iter_rows(min_row=2, values_only=True))
    assert len(trades) == len(view.trades)


@pytest.mark.parametrize("report_type", TYPES)
def test_csv_zip_tables_and_values(files, view, report_type):
    name, data = files[(report_type, "csv")]
    assert name.endswith(".zip")
    zf = zipfile.ZipFile(io.BytesIO(data))
    names = set(zf.namelist())
    expected = {
        re.sub(r"[^a-z0-9]+", "_", s.lower()).strip("_") + ".csv" for s in CORE_SHEETS + TYPE_SHEETS[report_type]
    }
    assert expected | {"README.txt"} <= names
    readme = zf.read("README.txt").decode()
    assert "synthetic demo data" in readme.lower() and "Methodology" in readme and "Tracking error" in readme
    summary = {r["key"]: r for r in csv.DictReader(io.StringIO(zf.read("summary.csv").decode()))}
    for key, value in view.metrics.items():
        if key in summary:
            if value is None:
                assert summary[key]["index"] == ""
            else:
                assert float(summary[key]["index"]) == value  # full precision round-trips exactly
    series = list(csv.DictReader(io.StringIO(zf.read("series.csv").decode())))
    assert series[-1]["date"] == view.end_date.isoformat()
    assert float(series[-1]["level"]) == float(view.index_level.iloc[-1])


@pytest.mark.parametrize("report_type", TYPES)
def test_html_is_self_contained_and_shows_the_numbers(files, view, report_type):
    name, data = files[(report_type, "html")]
    html = data.decode("utf-8")
    assert name.endswith(".html")
    assert "http://" not in html and "https://" not in html  # no resource can be fetched
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", html, re.I)
    assert "Plotly.newPlot" in html and "@media print" in html
    assert "Synthetic demo data" in html and "AutoIndex Core v1" in html and "tester" in html
    assert "Methodology" in html and "Metric definitions" in html and "Rebalancing" in html
    key = SHOWN_METRIC[report_type]
    assert f">{_fmt(view.metrics[key], _kind(key))}<" in html


@pytest.mark.parametrize("report_type", TYPES)
def test_pdf_pages_text_and_numbers(files, view, report_type):
    from pypdf import PdfReader

    name, data = files[(report_type, "pdf")]
    assert data[:5] == b"%PDF-" and name.endswith(".pdf")
    reader = PdfReader(io.BytesIO(data))
    first = reader.pages[0].extract_text()
    total = int(re.search(r"Page 1 of (\d+)", first).group(1))
    assert len(reader.pages) == total >= 4
    text = "\n".join(p.extract_text() for p in reader.pages)
    assert "Synthetic demo data" in first and "AutoIndex Core v1" in first and "tester" in first
    assert "Methodology and metric definitions" in text and "Information ratio" in text
    key = SHOWN_METRIC[report_type]
    assert _fmt(view.metrics[key], _kind(key)) in text
    assert "AutoIndex Core v1" in reader.metadata.title
    assert all(float(p.mediabox.width) == pytest.approx(595.28, abs=1) for p in reader.pages)  # A4 portrait
    assert sum(len(p.images) for p in reader.pages) == len([b for b in _charts(report_type, view)])


def _charts(report_type, view):
    from core.services.reporting.content import build_document

    doc = build_document(report_type, PERIOD, view, generated_by="x", generated_at=dt.datetime.now(dt.timezone.utc))
    return doc.charts()


def test_numbers_equal_the_dashboard(module_db):
    """The same period through analytics gives the dashboard's KPIs, stored metrics and allocation."""
    from core.services import analytics, compute, dashboard

    data = dashboard.dashboard_data(module_db)
    inputs = analytics.load_view_inputs(module_db)
    for period in ("MTD", "YTD", "1Y"):
        v = analytics.build_performance_view(inputs, *analytics.resolve_period(inputs, period))
        assert v.total_return == pytest.approx(data.kpis.loc[period, "index"], abs=1e-14)
        assert v.benchmark_metrics["total_return"] == pytest.approx(data.kpis.loc[period, "benchmark"], abs=1e-12)
    full = analytics.build_performance_view(inputs, *analytics.resolve_period(inputs, "max"))
    for key, (value, _reason) in compute.stored_metrics(module_db).items():
        if value is None:
            assert full.metrics[key] is None
        else:
            assert full.metrics[key] == pytest.approx(value, rel=1e-12, abs=1e-15)
    mine = full.weights_now.set_index("symbol")["weight"]
    theirs = data.allocation_now.set_index("symbol")["weight"]
    assert mine.sort_index().to_numpy() == pytest.approx(theirs.reindex(mine.index).sort_index().to_numpy(), abs=1e-12)


def test_cli_writes_the_file_and_refuses_a_bad_range(module_db, tmp_path, capsys):
    from cli import main

    out = tmp_path / "ytd.xlsx"
    assert main(["report", "--type", "risk", "--period", "YTD", "--format", "xlsx", "--out", str(out)]) == 0
    assert out.read_bytes()[:2] == b"PK"
    code = main(
        [
            "report",
            "--type",
            "risk",
            "--period",
            "custom",
            "--start",
            "2026-05-01",
            "--end",
            "2026-01-01",
            "--format",
            "csv",
            "--out",
            str(tmp_path / "x.zip"),
        ]
    )
    assert code == 2
    assert "start: must be before the end date" in capsys.readouterr().err
    assert not (tmp_path / "x.zip").exists()


# --------------------------------------------------------------------------- the service on both databases
def _count_rows() -> tuple[int, int]:
    from sqlalchemy import func, select

    from core.db import unit_of_work
    from core.models import AuditEvent, Report

    with unit_of_work() as session:
        return (session.scalar(select(func.count(Report.id))), session.scalar(select(func.count(AuditEvent.id))))


def test_request_list_download_delete_and_access_control(db):
    from core.services import reports

    cid = _seed_and_compute(years=2)
    rid = reports.request_report("performance", "YTD", "xlsx", owner=ANNA, inline=True)
    other = reports.request_report("risk", "MTD", "csv", owner=BOB, inline=True)
    mine = reports.list_reports(ANNA)
    assert [r.id for r in mine] == [rid]
    assert mine[0].status == "done" and mine[0].config_id == cid and mine[0].size_bytes > 1000
    assert [r.id for r in reports.list_reports(BOB)] == [other]
    assert {r.id for r in reports.list_reports(ROOT)} == {rid, other}
    assert [r.id for r in reports.list_reports(ROOT, {"owner": "bob"})] == [other]
    assert [r.id for r in reports.list_reports(ROOT, {"format": "xlsx"})] == [rid]
    filename, data, mime = reports.download(rid, ANNA)
    assert filename.endswith(".xlsx") and data[:2] == b"PK" and "spreadsheetml" in mime
    assert reports.download(rid, ROOT)[1] == data
    with pytest.raises(NotFoundError):  # another user's report does not exist for an analyst
        reports.download(rid, BOB)
    with pytest.raises(NotFoundError):
        reports.delete(rid, BOB)
    reports.delete(rid, ANNA)
    with pytest.raises(NotFoundError):
        reports.download(rid, ANNA)
    reports.delete(other, ROOT)
    assert reports.list_reports(ROOT) == []


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"period": "custom", "start": "2026-06-01", "end": "2026-02-01"}, "start"),
        ({"period": "custom", "start": "2001-01-01", "end": "2026-02-01"}, "start"),
        ({"period": "custom", "start": "2026-01-05"}, "end"),
        ({"period": "5Y"}, "period"),
        ({"period": "YTD", "start": "2026-01-05"}, "start"),
        ({"period": "weekly"}, "period"),
    ],
)
def test_bad_period_is_refused_with_a_message_and_nothing_written(sqlite_db, kwargs, field):
    from core.services import reports

    _seed_and_compute(years=2)
    before = _count_rows()
    kwargs = dict(kwargs)
    with pytest.raises(ValidationFailed) as err:
        reports.request_report("risk", kwargs.pop("period"), "pdf", owner=ANNA, inline=True, **kwargs)
    assert field in err.value.errors and err.value.errors[field]
    assert _count_rows() == before


def test_bad_type_format_and_config_are_named(sqlite_db):
    from core.services import reports

    _seed_and_compute(years=2)
    with pytest.raises(ValidationFailed) as err:
        reports.request_report("sales", "YTD", "docx", owner=ANNA)
    assert {"type", "format"} <= set(err.value.errors)
    with pytest.raises(ValidationFailed) as err:
        reports.request_report("risk", "YTD", "pdf", config_id=999, owner=ANNA)
    assert "config_id" in err.value.errors
    assert _count_rows()[0] == 0


@pytest.fixture
def immediate_huey(sqlite_db):
    from jobs import huey as instance

    was, storage = instance.immediate, instance.storage
    instance.immediate = True
    try:
        yield instance
    finally:
        set_immediate(instance, was, storage=storage)


def test_queued_report_runs_as_a_task_and_lands_in_reports_dir(immediate_huey, tmp_path, monkeypatch):
    from core.config import reset_settings_cache
    from core.services import reports, retention, runs

    monkeypatch.setenv("REPORTS_DIR", str(tmp_path / "files"))
    reset_settings_cache()
    _seed_and_compute(years=2)
    rid = reports.request_report("benchmark", "QTD", "html", owner=ANNA, huey=immediate_huey)
    out = reports.get_report(rid, ANNA)
    assert out.status == "done" and out.task_run_id is not None
    run = runs.get_run(out.task_run_id)
    assert run.kind == "report" and run.state == "succeeded" and run.progress == 1.0
    stored = list((tmp_path / "files").iterdir())
    assert len(stored) == 1 and stored[0].stat().st_size == out.size_bytes
    name, data, mime = reports.download(rid, ANNA)
    assert mime == "text/html" and data == stored[0].read_bytes()
    # Retention: nothing is old yet; thirty days later everything is.
    assert retention.cleanup_expired(retention_days=30)["reports"] == 0
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=31)
    assert retention.cleanup_expired(now=later, retention_days=30) == {"reports": 1, "files": 1, "retention_days": 30}
    assert not list((tmp_path / "files").iterdir())
