"""Operational state read from the database and the queue: what ``/metrics`` exposes at scrape time and what
the alert rules (:mod:`core.services.alerts`) test.

One reading of each fact, shared by both:

* **queue depth**: tasks ready to run (pending) and waiting for their time (scheduled), from the job queue port;
* **workers**: each heartbeat seen within the last hour, its age, and whether it is alive by the workers rule
  (:func:`core.services.workers.workers_status`: a heartbeat younger than 15 s whose pid still runs on this host);
* **staleness**: business days stale per active asset by the one freshness rule
  (:func:`core.services.freshness.business_days_stale`); the benchmark by the one benchmark rule
  (:func:`core.services.market.benchmark_symbol`);
* **report bytes**: bytes of stored report files by format;
* **the active index's drawdown**: ``V_last / max(V) - 1`` of the active config's stored index (the current
  drawdown of docs/methodology.md), with the date of the peak that opened it.

Nothing here writes. Readers are cheap (one statement each; the staleness query seeks the (asset, date) index per
asset) because Prometheus calls them on every scrape.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import func, select

from core.db import unit_of_work
from core.infra import metrics
from core.models import Asset, IndexValue, Price, Report, StrategyConfigRow, utcnow
from core.services.freshness import business_days_stale


@dataclass(frozen=True)
class QueueDepth:
    pending: int
    scheduled: int


@dataclass(frozen=True)
class WorkerFact:
    worker_id: str
    hostname: str
    age_s: float
    alive: bool


@dataclass(frozen=True)
class AssetStaleness:
    symbol: str
    benchmark: bool
    last_date: dt.date | None
    stale_days: int | None  # None: no prices at all


@dataclass(frozen=True)
class Drawdown:
    config_id: int
    config_name: str
    drawdown: float  # fraction, <= 0
    peak_date: dt.date
    last_date: dt.date


def queue_depth() -> QueueDepth:
    """Pending and scheduled tasks of this process's queue; raises QueueUnavailable (or the client's error)."""
    from core.services.ports import job_queue

    queue = job_queue()
    return QueueDepth(pending=queue.pending_count(), scheduled=queue.scheduled_count())


def workers(now: dt.datetime | None = None) -> list[WorkerFact]:
    """Workers seen within the last hour, newest first (the workers rule decides ``alive``)."""
    from core.services.workers import workers_status

    return [
        WorkerFact(worker_id=w.worker_id, hostname=w.hostname, age_s=float(w.age_s), alive=bool(w.alive))
        for w in workers_status(now=now)
    ]


def last_heartbeat() -> dt.datetime | None:
    """The newest heartbeat of any worker ever seen (None: never), for the no-worker episode."""
    from core.models import WorkerHeartbeat

    with unit_of_work() as session:
        return session.scalar(select(func.max(WorkerHeartbeat.last_seen)))


def staleness(now: dt.datetime | None = None) -> list[AssetStaleness]:
    """Business days stale of every active asset, benchmark first (the freshness rule at ``now``)."""
    from core.services.market import benchmark_symbol

    now = now or utcnow()
    last = select(func.max(Price.date)).where(Price.asset_id == Asset.id).correlate(Asset).scalar_subquery()
    with unit_of_work() as session:
        rows = session.execute(
            select(Asset.symbol, Asset.is_benchmark, last).where(Asset.is_active.is_(True)).order_by(Asset.symbol)
        ).all()
        bench = benchmark_symbol(session)
    out = [
        AssetStaleness(
            symbol=symbol,
            benchmark=symbol == bench,
            last_date=last_date,
            stale_days=business_days_stale(last_date, now),
        )
        for symbol, _, last_date in rows
    ]
    return sorted(out, key=lambda a: (not a.benchmark, a.symbol))


def report_bytes() -> dict[str, int]:
    """Bytes of stored report files by format (reports without a file count 0)."""
    with unit_of_work() as session:
        rows = session.execute(
            select(Report.format, func.coalesce(func.sum(Report.size_bytes), 0)).group_by(Report.format)
        ).all()
    return {str(fmt): int(total or 0) for fmt, total in rows}


def active_drawdown() -> Drawdown | None:
    """The active config's current drawdown (None: no active config or no stored index)."""
    with unit_of_work() as session:
        active = session.execute(
            select(StrategyConfigRow.id, StrategyConfigRow.name).where(StrategyConfigRow.is_active.is_(True))
        ).first()
        if active is None:
            return None
        config_id, name = active
        peak = session.scalar(select(func.max(IndexValue.value)).where(IndexValue.config_id == config_id))
        last = session.execute(
            select(IndexValue.date, IndexValue.value)
            .where(IndexValue.config_id == config_id)
            .order_by(IndexValue.date.desc())
            .limit(1)
        ).first()
        if peak is None or last is None or not peak > 0:
            return None
        peak_date = session.scalar(
            select(func.max(IndexValue.date)).where(IndexValue.config_id == config_id, IndexValue.value == peak)
        )
    last_date, last_value = last
    return Drawdown(
        config_id=int(config_id),
        config_name=str(name),
        drawdown=min(0.0, float(last_value) / peak - 1),
        peak_date=peak_date or last_date,
        last_date=last_date,
    )


# --------------------------------------------------------------------------- metric families (scrape time)
def _queue_families() -> Iterator[Metric]:
    depth = queue_depth()
    gauge = GaugeMetricFamily(
        "autoindex_queue_depth",
        "Job queue tasks waiting: pending (ready to run) and scheduled (waiting for their time, e.g. retries).",
        labels=["state"],
    )
    gauge.add_metric(["pending"], depth.pending)
    gauge.add_metric(["scheduled"], depth.scheduled)
    yield gauge


def _worker_families() -> Iterator[Metric]:
    seen = workers()
    age = GaugeMetricFamily(
        "autoindex_worker_heartbeat_age_seconds",
        "Seconds since each worker's last "
        "heartbeat (workers seen within the last hour; a live worker beats every 5 s).",
        labels=["worker"],
    )
    for w in seen:
        age.add_metric([w.worker_id], w.age_s)
    yield age
    yield GaugeMetricFamily(
        "autoindex_workers_alive",
        "Workers whose heartbeat is alive (younger than 15 s).",
        value=sum(1 for w in seen if w.alive),
    )
    newest = last_heartbeat()
    youngest = (
        (utcnow() - (newest if newest.tzinfo else newest.replace(tzinfo=dt.timezone.utc))).total_seconds()
        if newest is not None
        else float("inf")
    )
    yield GaugeMetricFamily(
        "autoindex_worker_heartbeat_min_age_seconds",
        "Seconds since the newest heartbeat of any worker (+Inf when none was ever seen).",
        value=max(0.0, youngest),
    )


def _freshness_families() -> Iterator[Metric]:
    assets = staleness()
    gauge = GaugeMetricFamily(
        "autoindex_data_staleness_business_days",
        "Business days between an active asset's last price and the last completed business day (NaN: no prices).",
        labels=["symbol", "benchmark"],
    )
    for a in assets:
        gauge.add_metric(
            [a.symbol, "true" if a.benchmark else "false"],
            float("nan") if a.stale_days is None else float(a.stale_days),
        )
    yield gauge
    priced = [a.stale_days for a in assets if a.stale_days is not None]
    yield GaugeMetricFamily(
        "autoindex_data_staleness_max_business_days",
        "The stalest active asset's business days stale (NaN: no prices).",
        value=float(max(priced)) if priced else float("nan"),
    )


def _report_families() -> Iterator[Metric]:
    gauge = GaugeMetricFamily("autoindex_report_bytes", "Bytes of stored report files by format.", labels=["format"])
    for fmt, total in sorted(report_bytes().items()):
        gauge.add_metric([fmt], total)
    yield gauge


def _index_families() -> Iterator[Metric]:
    gauge = GaugeMetricFamily(
        "autoindex_active_index_drawdown_ratio",
        "Current drawdown of the active index: last value / running maximum - 1 (a fraction, <= 0).",
        labels=["config"],
    )
    found = active_drawdown()
    if found is not None:
        gauge.add_metric([found.config_name], found.drawdown)
    yield gauge


READERS = {
    "queue": _queue_families,
    "workers": _worker_families,
    "freshness": _freshness_families,
    "reports": _report_families,
    "index": _index_families,
}


def register_readers() -> None:
    """Make every scrape of this process read the shared state above."""
    for name, reader in READERS.items():
        metrics.register_state(name, reader)


def serve_metrics(port: int | None = None, *, host: str | None = None) -> int | None:
    """Serve ``/metrics`` in this process when a port is given or ``METRICS_PORT`` is set; return the port served
    (None: metrics are off). Idempotent: a second call returns the port already served."""
    from core.config import get_settings

    settings = get_settings()
    port = settings.metrics_port if port is None else port
    if port is None:
        return None
    register_readers()
    return metrics.serve(port, host or settings.metrics_host)
