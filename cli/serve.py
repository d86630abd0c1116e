"""``python -m core serve [STREAMLIT OPTIONS]``: the app, ready before its first visitor.

``streamlit run Home.py`` runs the app's code only when a browser session runs a page, so after a start or a restart
nothing happened until somebody opened the app: the database was not migrated, the in-app job worker did not run
the schedules, and ``/metrics`` did not answer (Prometheus saw the target down after every deploy). ``serve`` does
the process's start-up first — migrations and the demo universe on an empty database
(:func:`core.services.bootstrap.start_up`), the embedded worker when this process runs jobs
(:func:`jobs.embedded.ensure_started`), ``/metrics`` and the alert watchdog (:func:`ui.monitoring.start_process`)
— then runs Streamlit in this same process with ``Home.py`` and the options given (``--server.port 8501`` ...).
Home.py's own once-per-process calls then find everything started. A start-up step that fails (the database not
reachable yet) is logged and the server starts anyway: the pages say what is wrong, as they do without ``serve``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

log = logging.getLogger("autoindex.serve")

HOME = Path(__file__).resolve().parent.parent / "Home.py"


def _migrate_and_seed() -> None:
    from core.services.bootstrap import start_up

    start_up()


def _worker() -> None:
    from jobs.embedded import ensure_started

    ensure_started()


def _monitoring() -> None:
    from ui.monitoring import start_process

    start_process()


def prepare() -> dict[str, bool]:
    """The process's start-up before any session; which steps succeeded (each failure is logged, never raised)."""
    done: dict[str, bool] = {}
    for name, step in (("start_up", _migrate_and_seed), ("worker", _worker), ("monitoring", _monitoring)):
        try:
            step()
            done[name] = True
        except Exception:  # noqa: BLE001 - the app still starts; its pages show the cause
            log.exception("start-up step %s failed; the app starts anyway", name)
            done[name] = False
    return done


def cmd_serve(args: argparse.Namespace) -> int:
    prepare()
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
        description="Everything after `serve` is passed to `streamlit run Home.py` as is, e.g. "
        "`python -m core serve --server.port 8501 --server.headless true`.",
    )
    p.set_defaults(func=cmd_serve, streamlit_args=[])
