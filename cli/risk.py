"""``python -m core import-factors`` and ``python -m core risk`` (issue 15).

Examples::

    python -m core import-factors ff3_daily.csv --set "FF3 daily" --percent
    python -m core risk --config 3 --years 10 --method bootstrap --paths 10000 --seed 0 [--newey-west] [--json]

``import-factors`` reads a long CSV ``date, factor, value`` (``--percent`` when the values are percent, as Kenneth
French publishes them) and replaces the named factor set. ``risk`` prints the Monte Carlo projection, the stress
scenarios and the factor regression of a config version (default: the active one): the Dashboard's Risk tab and the
risk report's numbers.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from core.services.access import CLI


def cmd_import_factors(args: argparse.Namespace) -> int:
    from core.db import migrate
    from core.services.factors import import_factors

    migrate()
    path = Path(args.file)
    if not path.is_file():
        print(f"error: {path}: no such file", file=sys.stderr)
        return 2
    out = import_factors(
        path.read_bytes(), path.name, args.set, actor=CLI, unit="percent" if args.percent else "fraction"
    )
    print(
        f"imported factor set {out['set']!r}: {out['rows']} values of {', '.join(map(str, out['factors']))} "  # type: ignore[call-overload]
        f"from {out['first']} to {out['last']}"
    )
    return 0


def _num(value: Any) -> Any:
    return None if value is None or (isinstance(value, float) and not math.isfinite(value)) else value


def cmd_risk(args: argparse.Namespace) -> int:
    from core.db import migrate
    from core.services import strategies
    from core.services.risk_views import MonteCarloParams, risk_view

    migrate()
    config_id = args.config
    if config_id is None:
        active = strategies.active_version()
        if active is None:
            print("error: no active strategy config", file=sys.stderr)
            return 2
        config_id = active.id
    view = risk_view(
        config_id,
        actor=CLI,
        factor_set=args.factor_set,
        newey_west=args.newey_west,
        monte_carlo=MonteCarloParams(
            years=args.years,
            method=args.method,
            n_paths=args.paths,
            seed=args.seed,
            contribution=args.contribution,
            target=args.target,
        ),
    )
    mc = view.monte_carlo
    summary: dict[str, Any] = {
        "config": view.label,
        "basis": view.basis,
        "risk_free": view.risk_free_label,
        "monte_carlo": None
        if mc is None
        else {
            "method": mc.method,
            "years": mc.years,
            "paths": mc.n_paths,
            "seed": mc.seed,
            "terminal": {k: _num(float(v)) for k, v in mc.fan.iloc[-1].items() if k != "years"},
            "prob_loss": _num(mc.prob_loss),
            "prob_target": _num(mc.prob_target),
            "max_drawdown": mc.drawdown_percentiles(),
        },
        "stress": [
            {
                **r.row(),
                "start": str(r.start),
                "end": str(r.end),
                "index_return": _num(r.index_return),
                "benchmark_return": _num(r.benchmark_return),
            }
            for r in view.stress
        ],
        "factor_regression": None
        if view.factor is None
        else {
            "factor_set": view.factor_set.label if view.factor_set else None,
            "r2": _num(view.factor.r2),
            "nobs": view.factor.nobs,
            "newey_west": view.factor.newey_west,
            "rows": [
                {"factor": f, "beta": _num(b), "t_stat": _num(t)}
                for f, b, t in view.factor.table[["factor", "beta", "t_stat"]].itertuples(index=False)
            ],
        },
        "notes": view.notes,
    }
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
        return 0
    print(f"{view.label} ({view.basis}); {view.risk_free_label}")
    if mc is not None:
        t = summary["monte_carlo"]["terminal"]
        print(
            f"Monte Carlo ({mc.method}, {mc.n_paths} paths, {mc.years} y, seed {mc.seed}): terminal p5 {t['p5']:,.0f} "
            f"p50 {t['p50']:,.0f} p95 {t['p95']:,.0f}; P(loss) {mc.prob_loss:.1%}; median max drawdown "
            f"{mc.drawdown_percentiles()['p50']:.1%}"
        )
    for r in view.stress:
        shown = f"{r.index_return:+.1%} (benchmark {r.benchmark_return:+.1%})" if r.covered else "not covered"
        print(f"  {r.scenario:28s} {r.start} .. {r.end}: {shown}")
    if view.factor is not None:
        print(
            f"Factor regression on {summary['factor_regression']['factor_set']}: R² {view.factor.r2:.3f}, "
            f"{view.factor.nobs} days"
        )
        for row in summary["factor_regression"]["rows"]:
            print(f"  {row['factor']:14s} beta {row['beta']:+.4f}  t {row['t_stat']:+.2f}")
    for note in view.notes:
        print(f"note: {note}")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("import-factors", help="import a factor CSV (date, factor, value) as a named factor set")
    p.add_argument("file")
    p.add_argument("--set", required=True, help="name of the factor set (replaced whole)")
    p.add_argument("--percent", action="store_true", help="values are in percent (divided by 100)")
    p.set_defaults(func=cmd_import_factors)

    p = sub.add_parser("risk", help="Monte Carlo, stress scenarios and factor regression of a config version")
    p.add_argument("--config", type=int, default=None, help="config version id (default: the active one)")
    p.add_argument("--years", type=int, default=10)
    p.add_argument("--method", choices=["bootstrap", "normal", "t"], default="bootstrap")
    p.add_argument("--paths", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--contribution", type=float, default=0.0, help="added at each year end (negative: withdrawn)")
    p.add_argument("--target", type=float, default=None, help="value whose probability of being reached is shown")
    p.add_argument("--factor-set", default=None, help="factor set name (default: the first imported, else demo)")
    p.add_argument("--newey-west", action="store_true", help="Newey-West (HAC) standard errors")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_risk)
