"""``python -m core report``: generate one report inline and write it to a file.

Example::

    python -m core report --type performance --period YTD --format pdf --out ytd.pdf
    python -m core report --type risk --period custom --start 2024-01-01 --end 2024-12-31 --format xlsx --out r.xlsx

The numbers are those of the Reports page and the Dashboard (same service functions). Nothing is
written to the database; errors print one line naming the bad option (exit code 2). ``--out`` must name a
file in an existing directory (not a directory); the file appears whole or not at all (written to a hidden
``.part`` file beside it and renamed; the temporary file is removed on any failure).
"""

from __future__ import annotations

import argparse
import getpass

from core.schemas.report import REPORT_FORMATS, REPORT_PERIODS, REPORT_TYPES


def cmd_report(args: argparse.Namespace) -> int:
    from core.db import migrate
    from core.services.reports import build_report_bytes, check_output_path, write_file_atomically

    out = check_output_path(args.out)  # before any work: an unusable --out is one line (ValidationFailed, exit 2)
    migrate()
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in some containers
        user = "cli"
    filename, data = build_report_bytes(
        args.type, args.period, args.format, args.config, args.start, args.end, generated_by=f"{user} (command line)"
    )
    write_file_atomically(out, data)  # a hidden .part file renamed into place; removed on any failure
    print(f"wrote {out} ({len(data):,} bytes; {filename})")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``report`` to ``python -m core``."""
    p = subparsers.add_parser("report", help="generate a report (HTML, PDF, XLSX or CSV zip) into a file")
    p.add_argument("--type", required=True, choices=REPORT_TYPES, help="what the report covers")
    p.add_argument("--period", required=True, choices=REPORT_PERIODS, help="period; custom needs --start and --end")
    p.add_argument("--start", default=None, help="custom period: first date YYYY-MM-DD (the base)")
    p.add_argument("--end", default=None, help="custom period: last date YYYY-MM-DD")
    p.add_argument("--format", required=True, choices=REPORT_FORMATS, help="file format (csv = a zip of CSVs)")
    p.add_argument("--out", required=True, metavar="FILE", help="where to write the file")
    p.add_argument("--config", type=int, default=None, help="config version id (default: the active one)")
    p.set_defaults(func=cmd_report)
