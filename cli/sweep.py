"""``python -m core sweep``: a parameter sweep over a saved version, written as one CSV row per variant.

Examples::

    python -m core sweep --param momentum_lookback=63,126,252 --param rebalance=monthly,quarterly --out s.csv
    python -m core sweep --param sleeves=0.25 --param max_weight=none,0.1 --split 2023-01-01 --queue --wait --out s.csv

``--param NAME=V1,V2,...`` sweeps a config field (``NAME=start:stop:step`` a range, ``none`` no value,
``sleeves=STEP`` or ``sleeves=a+b:STEP`` sleeve mixes on a simplex). Without ``--queue`` the chunks run in this
process; with ``--queue`` they fan out over the workers (``--wait`` writes the same file when all chunks are stored).
The CSV: ``variant``, one column per swept field, ``error``, the metrics (``is_``/``oos_`` with ``--split`` or
``--walk-forward``, plus ``deflated_sharpe``). Errors print one line naming the bad option (exit code 2).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time

from core.services.access import CLI

#: Seconds between two looks at a queued sweep with --wait.
POLL_S = 0.5


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD; got {text!r}") from None


def _walk_forward(text: str) -> dict[str, float]:
    parts = text.split(":")
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        numbers = []
    if len(numbers) not in (2, 3):
        raise argparse.ArgumentTypeError(f"expected TRAIN_YEARS:TEST_MONTHS[:STEP_MONTHS]; got {text!r}")
    out = {"train_years": numbers[0], "test_months": int(numbers[1])}
    if len(numbers) == 3:
        out["step_months"] = int(numbers[2])
    return out


def cmd_sweep(args: argparse.Namespace) -> int:
    from core.db import migrate
    from core.schemas.sweep import parse_grid
    from core.services import sweeps
    from core.services.reports import check_output_path, write_file_atomically

    out = check_output_path(args.out)
    grid = parse_grid(args.param)  # before any work: a bad --param is one line (exit 2)
    migrate()
    if args.config is None:
        from core.services.strategies import ensure_default_config

        ensure_default_config()
    print(f"sweep of {grid.count:,} variants over {', '.join(grid.columns)}", file=sys.stderr)
    last = [-1.0]

    def progress(fraction: float, message: str) -> None:
        if fraction - last[0] >= 0.1 or fraction >= 1.0:
            last[0] = fraction
            print(f"{100 * fraction:3.0f}% {message}", file=sys.stderr)

    started = time.perf_counter()
    sweep = sweeps.start(
        CLI,
        grid,
        config_id=args.config,
        split=args.split,
        walk_forward=args.walk_forward,
        queue=args.queue,
        chunk_size=args.chunk_size,
        progress=progress,
    )
    if args.queue:
        print(f"sweep {sweep.id} queued as run {sweep.task_run_id} ({sweep.n_chunks} chunks)", file=sys.stderr)
        if not args.wait:
            print(f"not waiting: {out} is not written (add --wait, or download the CSV on the Research page)")
            return 0
        while sweep.status in ("queued", "running"):
            time.sleep(POLL_S)
            sweep = sweeps.get_sweep(sweep.id, CLI)
            progress(sweep.progress, f"{sweep.done_variants:,} of {sweep.n_variants:,} variants stored")
    if sweep.status != "succeeded":
        print(f"error: sweep {sweep.id} {sweep.status}: {sweep.error or 'see the Tasks page'}", file=sys.stderr)
        return 2
    data = sweeps.export_csv(sweep.id, CLI)
    write_file_atomically(out, data)
    elapsed = time.perf_counter() - started
    summary = sweep.summary or {}
    print(
        f"wrote {out}: {sweep.n_variants:,} variants ({summary.get('errors', 0)} with an error) in {elapsed:.1f} s "
        f"({sweep.n_variants / elapsed:.1f} variants/s); sweep {sweep.id}"
    )
    if summary.get("best_variant") is not None:
        print(
            f"best by {summary['ranked_by']}: variant {summary['best_variant']} "
            f"(Sharpe {summary['best_sharpe']:.3f}, deflated Sharpe {summary.get('best_deflated_sharpe') or 0:.3f})"
        )
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``sweep`` to ``python -m core``."""
    p = subparsers.add_parser("sweep", help="sweep config fields over a grid; one CSV row per variant")
    p.add_argument(
        "--param",
        action="append",
        required=True,
        metavar="NAME=V1,V2,...",
        help="a swept field: NAME=V1,V2 | NAME=start:stop:step | sleeves=STEP | sleeves=a+b:STEP "
        "(repeat for a grid; at most 10,000 variants)",
    )
    p.add_argument("--config", type=int, default=None, help="base version id (default: the active one)")
    p.add_argument(
        "--split",
        type=_date,
        default=None,
        metavar="YYYY-MM-DD",
        help="in-sample up to this date, out-of-sample after it (metrics is_/oos_, deflated_sharpe)",
    )
    p.add_argument(
        "--walk-forward",
        type=_walk_forward,
        default=None,
        metavar="TRAIN_Y:TEST_M[:STEP_M]",
        help="rolling windows instead of --split: train years, test months, step months",
    )
    p.add_argument("--queue", action="store_true", help="fan the chunks out over the job workers")
    p.add_argument("--wait", action="store_true", help="with --queue: wait for every chunk, then write --out")
    p.add_argument("--chunk-size", type=int, default=None, help="variants per chunk (default: about 32 chunks)")
    p.add_argument("--out", required=True, metavar="FILE.csv", help="where to write the CSV")
    p.set_defaults(func=cmd_sweep)
