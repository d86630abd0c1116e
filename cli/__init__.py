"""The ``python -m core`` command line: one sub-command per operation, each with --help.

Entry point only: it parses arguments, calls services and turns domain errors into one line on stderr
with exit code 2 (1 for unexpected failures).
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from core.errors import AutoIndexError, ImportValidationError, ValidationFailed
from core.services.access import CLI

log = logging.getLogger("cli")

Handler = Callable[[argparse.Namespace], int]
_COMMANDS: dict[str, Handler] = {}


def _print_json(obj: object) -> None:
    print(json.dumps(obj, indent=2, default=str))


def cmd_migrate(args: argparse.Namespace) -> int:
    from core.db import migrate

    head = migrate(timeout_s=args.timeout)
    print(f"database at migration head {head}")
    return 0


def cmd_seed_demo(args: argparse.Namespace) -> int:
    from core.db import migrate
    from core.services.bootstrap import seed_demo

    migrate()
    summary = seed_demo(n_assets=args.assets, years=args.years, seed=args.seed)
    print(
        f"demo data: {summary['rows_new']} new prices, {summary['rows_updated']} updated, "
        f"{summary['assets_created']} new assets, {summary['caps_new']} new market caps"
    )
    return 0


def cmd_reset_2fa(args: argparse.Namespace) -> int:
    """The way back for an administrator who lost both the authenticator and the recovery codes (with
    ADMIN_2FA=required and no other administrator, nobody else can reset it): whoever runs the server's command line
    removes the user's two-factor authentication. Audited as ``user.2fa.reset`` by ``cli``."""
    from core.db import migrate
    from core.services import two_factor

    migrate()
    two_factor.reset(args.username, actor=CLI)
    print(f"two-factor authentication of {args.username} removed; their sessions ended")
    return 0


def cmd_rotate_two_factor_key(args: argparse.Namespace) -> int:
    """Re-encrypt every stored TOTP secret under the current TWO_FACTOR_KEY, reading each with it or an earlier
    key in TWO_FACTOR_PREVIOUS_KEYS; all or nothing. Audited as ``user.2fa.rotate_key`` by ``cli``."""
    from core.db import migrate
    from core.services import two_factor

    migrate()
    count = two_factor.rotate_key(actor=CLI)
    print(
        f"{count} two-factor secret(s) re-encrypted under the current TWO_FACTOR_KEY; "
        "the earlier keys in TWO_FACTOR_PREVIOUS_KEYS can now be removed"
    )
    return 0


def cmd_create_user(args: argparse.Namespace) -> int:
    from core.db import migrate
    from core.services import users

    migrate()
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat password: ") != password:
            print("error: passwords do not match", file=sys.stderr)
            return 2
    user = users.create_user(
        args.username, args.name or args.username, password, role=args.role, email=args.email, actor=CLI
    )
    print(f"created {user.role} {user.username}")
    return 0


def cmd_refresh(args: argparse.Namespace) -> int:
    from core.db import migrate
    from core.infra.providers.base import normalise_symbols
    from core.services.refresh import refresh_prices

    migrate()
    symbols = normalise_symbols([s for s in args.symbols.split(",") if s.strip()]) if args.symbols else None
    summary = refresh_prices(
        args.provider, symbols, full=args.full, actor="cli", progress=lambda f, m: log.info("%3.0f%% %s", 100 * f, m)
    )
    print(
        f"refresh from {args.provider}: {summary['rows_new']} new, {summary['rows_updated']} updated, "
        f"{summary['rows_unchanged']} unchanged prices; {summary['gaps']} business-day gaps"
    )
    warnings = summary.get("warnings")
    for warning in warnings if isinstance(warnings, list) else []:
        print(f"warning: {warning}")
    _print_recompute(summary)
    return 0


def _print_recompute(summary: dict[str, object]) -> None:
    """Say what followed a price change: the recompute queued by the refresh/import service (or why not)."""
    recompute = summary.get("recompute")
    if not isinstance(recompute, dict):
        print("prices unchanged: no recompute queued")
    elif recompute.get("queued"):
        print(
            f"recompute of {recompute['config']} queued as run {recompute['run_id']} "
            "(the app's worker or `python -m core worker` runs it)"
        )
    else:
        print(f"recompute not queued: {recompute.get('reason')} (run `python -m core compute`)")


def cmd_import_prices(args: argparse.Namespace) -> int:
    from core.db import migrate
    from core.services.refresh import import_price_file

    migrate()
    path = Path(args.file)
    if not path.is_file():
        print(f"error: {path}: no such file", file=sys.stderr)
        return 2
    summary = import_price_file(path.read_bytes(), path.name, actor=CLI, allow_new_symbols=args.allow_new_symbols)
    print(
        f"imported {path.name}: {summary['rows_new']} new, {summary['rows_updated']} updated, "
        f"{summary['rows_unchanged']} unchanged prices"
    )
    _print_recompute(summary)
    return 0


def cmd_compute(args: argparse.Namespace) -> int:
    from core.db import migrate
    from core.services.compute import compute_config
    from core.services.strategies import ensure_default_config

    migrate()
    if args.config is None:
        ensure_default_config()
    summary = compute_config(args.config, actor="cli")
    print(
        f"computed config {summary['config_id']}: {summary['dates']} dates {summary['start']}..{summary['end']}, "
        f"final level {summary['final_level']:.2f}, {summary['rebalances']} rebalances"
    )
    warnings = summary["warnings"]
    for warning in warnings if isinstance(warnings, list) else []:
        print(f"warning: {warning}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core", description="AutoIndex command line")
    parser.add_argument("--log-level", default=None, help="override LOG_LEVEL for this command")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("migrate", help="apply database migrations (waits for the database)")
    p.add_argument("--timeout", type=float, default=None, help="seconds to keep retrying the database")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("seed-demo", help="load the deterministic synthetic demo universe")
    p.add_argument("--assets", type=int, default=None, help="universe size (default: the 14-asset seed universe)")
    p.add_argument("--years", type=float, default=None, help="years of history (default: since 2018-01-01)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: DEMO_SEED)")
    p.set_defaults(func=cmd_seed_demo)

    p = sub.add_parser("reset-2fa", help="remove a user's two-factor authentication (a lost phone; audited)")
    p.add_argument("username")
    p.set_defaults(func=cmd_reset_2fa)

    p = sub.add_parser(
        "rotate-two-factor-key",
        help="re-encrypt the stored two-factor secrets under TWO_FACTOR_KEY (the old key in TWO_FACTOR_PREVIOUS_KEYS)",
    )
    p.set_defaults(func=cmd_rotate_two_factor_key)

    p = sub.add_parser("create-user", help="create a user; the password comes from a prompt or stdin")
    p.add_argument("username")
    p.add_argument("--role", choices=["admin", "analyst"], default="analyst")
    p.add_argument("--name", default=None, help="display name (default: the username)")
    p.add_argument("--email", default=None)
    p.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    p.set_defaults(func=cmd_create_user)

    p = sub.add_parser("refresh", help="fetch market data from a provider and store it")
    p.add_argument("--provider", choices=["demo", "twelvedata"], default="demo")
    p.add_argument("--symbols", default=None, help="comma-separated symbols (default: the whole universe)")
    p.add_argument("--full", action="store_true", help="refetch all history instead of only new dates")
    p.set_defaults(func=cmd_refresh)

    p = sub.add_parser("import-prices", help="import prices from a CSV or XLSX file (long or wide format)")
    p.add_argument("file")
    p.add_argument("--allow-new-symbols", action="store_true", help="create assets for symbols not yet known")
    p.set_defaults(func=cmd_import_prices)

    p = sub.add_parser("compute", help="backtest a config version and store its index, allocations and metrics")
    p.add_argument("--config", type=int, default=None, help="config version id (default: the active one)")
    p.set_defaults(func=cmd_compute)

    for register in _extensions():
        register(sub)
    return parser


def _extensions() -> list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]]:
    """The sub-commands that live in their own modules of this package (jobs and worker, report, health, serve)."""
    from cli import health, jobs, reports, risk, serve, sweep

    return [jobs.register, reports.register, health.register, sweep.register, risk.register, serve.register]


def split_serve_args(argv: list[str]) -> tuple[list[str], list[str]]:
    """``(ours, streamlit's)``: when the command is ``serve``, what follows it goes to ``streamlit run`` untouched
    (``--server.port 8501`` ...; a leading ``--`` is dropped), except ``-h``/``--help``, which is ours. Only the
    command position counts: ``serve`` as an option's value (``--user serve``, ``--set serve``) splits nothing."""
    position = 0
    while position < len(argv):
        token = argv[position]
        if token == "--log-level":
            position += 2
        elif token.startswith("-"):
            position += 1
        else:
            break
    if position >= len(argv) or argv[position] != "serve":
        return argv, []
    rest = argv[position + 1 :]
    if any(token in ("-h", "--help") for token in rest):
        return argv[: position + 1] + ["--help"], []
    if rest[:1] == ["--"]:
        rest = rest[1:]
    return argv[: position + 1], rest


def main(argv: Sequence[str] | None = None) -> int:
    from core.logs import configure_logging

    try:
        import jobs  # noqa: F401  (importing the job runner wires its queue into the services: core.services.ports)

        argv, passed_on = split_serve_args(list(sys.argv[1:] if argv is None else argv))
        args = build_parser().parse_args(argv)
        if args.command == "serve":
            args.streamlit_args = passed_on
            if args.log_level:  # Home.py configures logging from LOG_LEVEL on every page run: make it this level
                os.environ["LOG_LEVEL"] = args.log_level
                from core.config import reset_settings_cache

                reset_settings_cache()
        configure_logging(args.log_level)
        return int(args.func(args) or 0)
    except ImportValidationError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        for row in exc.rows[: exc.MAX_LISTED]:
            print(f"  {row.as_dict()}", file=sys.stderr)
        return 2
    except ValidationFailed as exc:
        for field, message in exc.errors.items():
            print(f"error: {field}: {message}", file=sys.stderr)
        return 2
    except AutoIndexError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
