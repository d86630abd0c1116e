"""Benchmark of the job queue with a warm consumer on Redis; prints the figures and their targets.

    python bench/jobs.py [--redis redis://127.0.0.1:6379/13] [--database-url URL] [--samples 20]

* enqueue-to-start: ``started_at - queued_at`` of small refresh jobs queued one after another (median, p90);
  target < 200 ms;
* progress visible: from ``enqueue()`` returning until the service (what the Tasks page reads) shows
  progress > 0 for a large refresh; target < 2 s;
* end-to-end demo refresh of 500 assets x 10 years (full): from ``enqueue()`` to ``succeeded``; target < 15 s.

Uses a temporary DATA_DIR (SQLite database unless --database-url) and one ``huey_consumer jobs.huey -w 2``
subprocess, killed at the end. Only this project's keys in the Redis database are touched.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGETS = {"enqueue_to_start_ms": 200.0, "progress_visible_s": 2.0, "refresh_500x10y_s": 15.0}


def _wait(predicate, timeout: float, interval: float = 0.01):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise SystemExit(f"timed out after {timeout} s")


def _flush(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    for pattern in ("huey.*autoindex*", "autoindex:*"):
        keys = list(client.scan_iter(pattern))
        if keys:
            client.delete(*keys)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default=os.environ.get("AUTOINDEX_BENCH_REDIS", "redis://127.0.0.1:6379/13"))
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--samples", type=int, default=20)
    args = parser.parse_args()

    data_dir = tempfile.mkdtemp(prefix="autoindex-bench-jobs-")
    os.environ.update({"DATA_DIR": data_dir, "REDIS_URL": args.redis, "DEMO_ON_EMPTY": "false", "LOG_LEVEL": "WARNING"})
    if args.database_url:
        os.environ["DATABASE_URL"] = args.database_url
    else:
        os.environ.pop("DATABASE_URL", None)
    _flush(args.redis)

    import jobs  # noqa: F401  (wires the Huey queue into the services, as the app, the CLI and a worker do)
    from core.db import migrate
    from core.services import runs as svc
    from core.services.access import SystemActor
    from core.services.bootstrap import seed_demo
    from core.services.workers import workers_status

    BENCH = SystemActor("bench")  # the benchmark queues as the system, like the CLI

    migrate()
    today = dt.date.today()
    # the 500-asset universe, stored for a few days ten years ago: a full refresh then covers 10 years
    seed_demo(n_assets=500, years=0.02, end=today - dt.timedelta(days=int(365.25 * 10)))

    log = open(Path(data_dir) / "consumer.log", "wb")
    consumer = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("huey_consumer")),
            "jobs.huey",
            "-w",
            "2",
            "-k",
            "thread",
            "-d",
            "0.05",
            "-m",
            "0.5",
        ],
        cwd=ROOT,
        env=dict(os.environ),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        _wait(lambda: any(w.pid == consumer.pid and w.alive for w in workers_status()), 30, 0.1)
        # warm-up: imports, connections
        warm = svc.enqueue("refresh", {"provider": "demo", "symbols": "SPY"}, user=BENCH)
        _wait(lambda: svc.get_run(warm).is_final, 60)

        delays = []
        for _ in range(args.samples):
            run_id = svc.enqueue("refresh", {"provider": "demo", "symbols": "SPY"}, user=BENCH)
            run = _wait(lambda run_id=run_id: (r := svc.get_run(run_id)).is_final and r, 60)
            delays.append((run.started_at - run.queued_at).total_seconds() * 1000)
        median = statistics.median(delays)
        p90 = sorted(delays)[int(0.9 * (len(delays) - 1))]

        t0 = time.monotonic()
        big = svc.enqueue("refresh", {"provider": "demo", "full": True}, user=BENCH)
        _wait(lambda: svc.get_run(big).progress > 0, 30)
        progress_s = time.monotonic() - t0
        final = _wait(lambda: (r := svc.get_run(big)).is_final and r, 300, 0.05)
        end_to_end = time.monotonic() - t0
        if final.state != "succeeded":
            raise SystemExit(f"the 500-asset refresh ended {final.state}: {final.error}")
        rows = (
            (final.result or {}).get("rows_new", 0)
            + (final.result or {}).get("rows_updated", 0)
            + (final.result or {}).get("rows_unchanged", 0)
        )
    finally:
        consumer.kill()
        consumer.wait(timeout=10)
        log.close()
        _flush(args.redis)

    db = "PostgreSQL" if args.database_url else "SQLite"
    print(f"job queue bench (RedisHuey {args.redis}, {db} database, 1 consumer x 2 threads)")
    print(
        f"  enqueue-to-start      median {median:7.1f} ms   p90 {p90:7.1f} ms   (n={len(delays)}; "
        f"target < {TARGETS['enqueue_to_start_ms']:.0f} ms)  {'OK' if median < TARGETS['enqueue_to_start_ms'] else 'MISS'}"
    )
    print(
        f"  progress visible      {progress_s:7.2f} s   (target < {TARGETS['progress_visible_s']:.0f} s)  "
        f"{'OK' if progress_s < TARGETS['progress_visible_s'] else 'MISS'}"
    )
    print(
        f"  demo refresh 500x10y  {end_to_end:7.2f} s   ({rows} prices; run duration {final.duration_s:.2f} s; "
        f"target < {TARGETS['refresh_500x10y_s']:.0f} s)  {'OK' if end_to_end < TARGETS['refresh_500x10y_s'] else 'MISS'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
