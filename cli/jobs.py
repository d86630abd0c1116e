"""``python -m core jobs ...`` and ``python -m core worker``: queue and follow jobs, run a consumer.

* ``jobs enqueue KIND [--param key=value ...] [--wait [--timeout S]]`` prints the run id; with ``--wait`` it
  follows the run (state and progress on stderr) and exits 0 only if it succeeded (1 otherwise, 2 for bad
  input). While the run waits for a worker and no worker heartbeat is alive it stops at once: "no worker is
  alive: start one with `python -m core worker`" (exit 1); with ``--timeout`` it stops waiting after that
  many seconds and says so (exit 1). Either way the run stays queued.
* ``jobs list [--kind K] [--state S] [--user U] [--limit N]`` prints recent runs.
* ``worker [-w N] [-k thread|process|greenlet] [-n] [--metrics-port PORT]`` runs a consumer with the project's settings,
  like ``huey_consumer jobs.huey -w N -k ...`` (migrating the database first). When the queue (Redis) is
  down it logs one line per retry with exponential backoff (1 s doubling to 30 s), never a traceback per
  poll, both before it starts and while it runs (:mod:`jobs.worker`). With ``--metrics-port`` (or ``METRICS_PORT``)
  it serves Prometheus metrics (:mod:`core.infra.metrics`).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TextIO

from core.errors import ValidationFailed
from core.services.access import CLI

#: Seconds between two polls of a followed run.
POLL_S = 0.25
#: Seconds between two looks at the worker heartbeats while a followed run waits for a worker.
WORKER_CHECK_S = 2.0
NO_WORKER = "no worker is alive: start one with `python -m core worker`"


def _parse_params(pairs: list[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    errors: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            errors[pair] = "must look like key=value"
            continue
        params[key.strip()] = value.strip()
    if errors:
        raise ValidationFailed({f"--param {k}": v for k, v in errors.items()})
    return params


def follow(
    run_id: int,
    *,
    timeout_s: float | None = None,
    out: TextIO | None = None,
    require_worker: bool = False,
) -> str:
    """Poll a run until it reaches a final state (or ``timeout_s``); print changes to ``out`` (default: the
    current sys.stderr); return the state.

    With ``require_worker``, a run still waiting (queued or retrying) while no worker heartbeat is alive
    stops the wait at once with "error: no worker is alive: ..."; a timeout prints "error: ... stopped
    waiting". The run itself is left as it is (still queued) in both cases.
    """
    from core.schemas.task import SUCCEEDED_STATES, WAITING_STATES
    from core.services import runs, workers

    out = out or sys.stderr

    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    last = None
    next_worker_check = time.monotonic()
    while True:
        run = runs.get_run(run_id)
        shown = (run.state, round(run.progress, 2), run.message)
        if shown != last:
            print(f"run {run_id}: {run.state} {100 * run.progress:3.0f}% {run.message or ''}".rstrip(), file=out)
            last = shown
        if run.is_final:
            if run.error and run.state not in SUCCEEDED_STATES:
                print(f"run {run_id}: {run.error}", file=out)
            return run.state
        if require_worker and run.state in WAITING_STATES and time.monotonic() >= next_worker_check:
            next_worker_check = time.monotonic() + WORKER_CHECK_S
            if not any(w.alive for w in workers.workers_status()):
                print(f"error: {NO_WORKER} (run {run_id} stays {run.state})", file=out)
                return run.state
        if deadline is not None and time.monotonic() > deadline:
            print(
                f"error: run {run_id} is still {run.state} after {timeout_s:g} s: stopped waiting "
                f"(the run stays {run.state})",
                file=out,
            )
            return run.state
        time.sleep(POLL_S)


def cmd_enqueue(args: argparse.Namespace) -> int:
    from core.db import migrate
    from core.services import runs

    migrate()
    run_id = runs.enqueue(
        args.kind, _parse_params(args.param), user=CLI if args.user in (None, CLI.name) else args.user
    )
    print(run_id)
    sys.stdout.flush()
    if not args.wait:
        return 0
    from jobs import huey

    state = follow(run_id, timeout_s=args.timeout, require_worker=not huey.immediate)
    from core.schemas.task import SUCCEEDED_STATES

    return 0 if state in SUCCEEDED_STATES else 1


def cmd_list(args: argparse.Namespace) -> int:
    from core.db import migrate
    from core.schemas.task import TaskState
    from core.services import runs

    migrate()
    listed = runs.list_runs(kind=args.kind, state=args.state, user=args.user, limit=args.limit)
    print(f"{'id':>6}  {'kind':<17} {'state':<23} {'progress':>8}  {'queued at (UTC)':<19}  {'by':<12} message")
    for r in listed:
        print(
            f"{r.id:>6}  {r.kind:<17} {r.state:<23} {100 * r.progress:7.0f}%  {r.queued_at:%Y-%m-%d %H:%M:%S}  "
            f"{(r.queued_by or '-'):<12} {(r.error if r.state == TaskState.FAILED else r.message) or ''}"
        )
    return 0


def _metrics_multiprocess_dir() -> None:
    """Forked workers (``-k process``) count job runs in their own processes: prometheus_client's multiprocess mode
    sums them through files in PROMETHEUS_MULTIPROC_DIR (a fresh temporary directory, removed at exit, unless the
    operator set one)."""
    import atexit
    import os
    import shutil
    import tempfile

    from core.infra import metrics

    path = os.environ.get(metrics.MULTIPROC_ENV)
    if not path:
        path = tempfile.mkdtemp(prefix="autoindex-metrics-")
        atexit.register(shutil.rmtree, path, ignore_errors=True)
    metrics.enable_multiprocess(path)


def cmd_worker(args: argparse.Namespace) -> int:
    import logging

    from core.config import get_settings

    metrics_port = args.metrics_port if args.metrics_port is not None else get_settings().metrics_port
    if metrics_port is not None and args.worker_type == "process":
        _metrics_multiprocess_dir()

    from core.db import migrate
    from jobs import backend_name, huey
    from jobs.worker import Consumer, wait_for_queue

    migrate()
    logging.getLogger("huey").setLevel(logging.INFO)
    print(f"starting {args.workers} {args.worker_type} worker(s) on the {backend_name(huey)} queue", file=sys.stderr)
    if metrics_port is not None:
        from core.services.operations import serve_metrics

        try:
            served = serve_metrics(metrics_port)
        except OSError as exc:
            raise ValidationFailed(
                {"--metrics-port": f"cannot listen on {metrics_port}: {exc.strerror or exc}"}
            ) from None
        print(f"metrics at http://{get_settings().metrics_host}:{served}/metrics", file=sys.stderr)
    if not wait_for_queue(huey):  # one line per failed try, backing off: never a traceback per poll
        return 1
    consumer = Consumer(
        huey,
        workers=args.workers,
        worker_type=args.worker_type,
        periodic=not args.no_periodic,
        initial_delay=0.05,
        backoff=1.5,
        max_delay=2.0,
    )
    consumer.run()
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``jobs`` and ``worker`` to ``python -m core``."""
    from core.schemas.task import ALL_KINDS, TaskState

    jobs = subparsers.add_parser("jobs", help="queue and inspect background jobs")
    jobs_sub = jobs.add_subparsers(dest="jobs_command", required=True, metavar="JOBS_COMMAND")

    p = jobs_sub.add_parser("enqueue", help="queue a job and print its run id")
    p.add_argument("kind", choices=ALL_KINDS)
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a job parameter, repeatable (refresh: provider, symbols=A,B, full=true; compute: config_id; "
        "report: report_id)",
    )
    p.add_argument("--wait", action="store_true", help="follow the run; exit 0 only if it succeeded")
    p.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="with --wait: stop waiting after this many seconds (exit 1; the run stays queued)",
    )
    p.add_argument("--user", default="cli", help="recorded as the user who queued it (default: cli)")
    p.set_defaults(func=cmd_enqueue)

    p = jobs_sub.add_parser("list", help="print recent runs, newest first")
    p.add_argument("--kind", choices=ALL_KINDS, default=None)
    p.add_argument("--state", choices=list(TaskState), default=None)
    p.add_argument("--user", default=None)
    p.add_argument("--limit", type=int, default=20)
    p.set_defaults(func=cmd_list)

    p = subparsers.add_parser("worker", help="run a job consumer (same as: huey_consumer jobs.huey)")
    p.add_argument("-w", "--workers", type=int, default=2, help="worker threads or processes (default 2)")
    p.add_argument("-k", "--worker-type", choices=["thread", "process", "greenlet"], default="thread")
    p.add_argument(
        "-n",
        "--no-periodic",
        action="store_true",
        help="do not run the periodic scheduler (when another consumer does)",
    )
    p.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        metavar="PORT",
        help="serve Prometheus metrics at http://METRICS_HOST:PORT/metrics (default: METRICS_PORT, "
        "unset = off; 0 = a free port)",
    )
    p.set_defaults(func=cmd_worker)
