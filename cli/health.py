"""``python -m core health [--json]``: the Diagnostics checks on the command line.

Exit codes (for container probes and cron): 0 when the overall status is ok or warning, 1 on error.
``--strict`` also fails (1) on a warning. It never migrates or changes anything: the database check proves
the database accepts writes with a no-op write in a transaction it rolls back (a read-only SQLite file or
directory, ``PRAGMA query_only``, a read-only PostgreSQL transaction or hot standby is an ERROR). A failing
check is printed as an error line, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

_MARK = {"ok": "OK", "warning": "WARN", "error": "ERROR", "info": "INFO"}


def print_report(report: Any, out: TextIO = sys.stdout, *, verbose: bool = False) -> None:
    """The report as text: the overall status, then one block per check with its rules and findings."""
    print(
        f"AutoIndex health: {report.status.upper()} ({report.duration_ms:.0f} ms, {report.at:%Y-%m-%d %H:%M:%S} UTC)",
        file=out,
    )
    for check in report.checks:
        print(f"[{_MARK.get(check.status, check.status):>5}] {check.title}: {check.summary}", file=out)
        for finding in check.findings:
            if finding == check.summary:
                continue
            print(f"        ! {finding}", file=out)
        if verbose or check.status in ("warning", "error"):
            for rule in check.rules:
                print(f"        rule: {rule}", file=out)


def cmd_health(args: argparse.Namespace) -> int:
    from core.health import run_checks

    report = run_checks(timeout_s=args.timeout)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2, default=str))
    else:
        print_report(report, verbose=args.verbose)
    if report.status == "error" or (args.strict and report.status == "warning"):
        return 1
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "health", help="check the database, Redis, queue, workers, data and jobs; exit 1 on error"
    )
    p.add_argument("--json", action="store_true", help="print the full report as JSON")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds each check may take (default 5)")
    p.add_argument("--strict", action="store_true", help="exit 1 on warnings too")
    p.add_argument("-v", "--verbose", action="store_true", help="print the rules of every check")
    p.set_defaults(func=cmd_health)
