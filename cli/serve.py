"""``python -m core serve [STREAMLIT OPTIONS]``: the app, ready before its first visitor.

``streamlit run Home.py`` runs the app's code only when a browser session runs a page, so after a start or a restart
nothing happened until somebody opened the app: the database was not migrated, the in-app job worker did not run
the schedules, and ``/metrics`` did not answer (Prometheus saw the target down after every deploy). ``serve``:

1. checks the Streamlit options (a mistyped one fails here, exit 2, before anything starts) and puts the charts'
   Plotly bundle in ``static/`` (:mod:`ui.plotly_element`; a checkout it cannot write to: exit 2, named);
2. starts ``/metrics`` (when ``METRICS_PORT`` is set) and, when this process runs no jobs, the alert watchdog
   (:func:`ui.monitoring.start_process`); a ``METRICS_PORT`` that cannot be bound is an error (exit 2): an operator
   who asked for metrics must not get a replica that silently has none;
3. starts, on a thread of its own, the process's start-up — migrations and the demo universe on an empty database
   (:func:`core.services.bootstrap.start_up`, which every process may run at once: locks), then the embedded worker
   when this process runs jobs (:func:`jobs.embedded.ensure_started`) — retried with backoff until it succeeds, so
   a database that comes up after the app is migrated then, with or without a visitor;
4. runs ``streamlit run Home.py`` in this same process with every option given; the server listens at once (a
   first visitor during the start-up waits for it on the page, as Home.py's own once-per-process calls take the
   same locks).
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from pathlib import Path

log = logging.getLogger("autoindex.serve")

HOME = Path(__file__).resolve().parent.parent / "Home.py"
#: Seconds between start-up attempts while the database cannot be reached: doubling from the first to the last.
RETRY_FIRST_S, RETRY_MAX_S = 1.0, 30.0


def _migrate_and_seed() -> None:
    from core.services.bootstrap import start_up_once

    start_up_once()


def _worker() -> None:
    from jobs.embedded import ensure_started

    ensure_started()


def start_up_until_done() -> None:
    """Migrate and seed, retried with backoff until it works (the thread ends with the process), then start the
    embedded worker."""
    delay = RETRY_FIRST_S
    attempt = 0
    while True:
        attempt += 1
        try:
            _migrate_and_seed()
            break
        except Exception as exc:  # noqa: BLE001 - the database may come up later: try again
            if attempt == 1:
                log.exception("start-up failed; retrying every %.0f-%.0f s until it works", delay, RETRY_MAX_S)
            else:
                log.warning("start-up attempt %d failed: %s", attempt, exc)
            time.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)
    log.info("start-up done (attempt %d)", attempt)
    try:
        _worker()
    except Exception:  # noqa: BLE001 - the app stays usable; Diagnostics shows the worker's status
        log.exception("could not start the embedded job worker")


def _streamlit_options_error(options: list[str]) -> str | None:
    import click
    from streamlit.web import cli as streamlit_cli

    try:
        streamlit_cli.main_run.make_context("serve", [str(HOME), *options])
    except click.ClickException as exc:
        return exc.format_message()
    return None


def cmd_serve(args: argparse.Namespace) -> int:
    problem = _streamlit_options_error(args.streamlit_args)
    if problem is not None:
        print(f"error: {problem} (options after `serve` are `streamlit run`'s)", file=sys.stderr)
        return 2
    try:
        from ui.plotly_element import ensure_bundle  # the charts' Plotly bundle in static/ (copied on import)

        ensure_bundle()
    except OSError as exc:
        print(f"error: the Plotly bundle cannot be put in static/ for the charts: {exc}", file=sys.stderr)
        return 2
    from ui.monitoring import start_process

    try:
        start_process()
    except OSError as exc:
        from core.config import get_settings

        print(f"error: METRICS_PORT {get_settings().metrics_port} cannot be served: {exc}", file=sys.stderr)
        return 2
    threading.Thread(target=start_up_until_done, name="autoindex-start-up", daemon=True).start()
    from streamlit.web import cli as streamlit_cli

    sys.argv = ["streamlit", "run", str(HOME), *args.streamlit_args]
    try:
        streamlit_cli.main()  # click: exits through SystemExit
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "serve",
        help="start the app (Streamlit) with migrations, the in-app worker and /metrics started before any visitor",
        description="Start the app: /metrics and the alert watchdog now, migrations and the in-app worker on a "
        "start-up thread (retried until the database answers), then `streamlit run Home.py` in this process. "
        "Everything after `serve` is passed to `streamlit run` as is (a leading `--` is dropped), e.g. "
        "`python -m core serve --server.port 8501 --server.headless true`; see `streamlit run --help`.",
    )
    p.set_defaults(func=cmd_serve, streamlit_args=[])
