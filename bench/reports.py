"""Benchmark of report generation; prints figures (not a test).

Run from the repository root:  python bench/reports.py [--assets 50] [--years 10] [--repeat 3]

Targets (issue 6): performance tear sheet over 50 assets x 10 years of demo data, period max:
HTML < 2 s, XLSX < 2 s, PDF < 5 s (wall time of ``build_report_bytes``: reading the stored results,
analytics, rendering). Beside it, the time QuantStats (``quantstats.reports.html``, bench requirements
only) takes for a tear sheet of the same index and benchmark series in the same run.

A temporary SQLite database is seeded with the deterministic demo universe and the default config is
computed first (not timed). "cold" is the first report of the process (imports, plotly.js loaded);
"warm" is the best wall time of the following ``--repeat`` runs and "cpu" their best process CPU time
(the verdict uses warm wall time; on a shared, loaded machine compare the CPU column too).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TARGETS_S = {"html": 2.0, "xlsx": 2.0, "pdf": 5.0}


def _prepare(assets: int, years: float) -> int:
    from core.db import migrate
    from core.services import compute, strategies
    from core.services.bootstrap import seed_demo

    migrate(timeout_s=5)
    t0 = time.perf_counter()
    seed_demo(n_assets=assets, years=years)
    cfg = strategies.ensure_default_config()
    summary = compute.compute_config(cfg.id)
    print(
        f"data: {assets} assets x {years:g} years ({summary['dates']} days, {summary['rebalances']} rebalances), "
        f"seeded and computed in {time.perf_counter() - t0:.1f} s"
    )
    return cfg.id


def _time_report(fmt: str, config_id: int, repeat: int) -> tuple[float, float, float, int]:
    """(cold wall s, best warm wall s, best warm CPU s, bytes)."""
    from core.services.reports import build_report_bytes

    t0 = time.perf_counter()
    _name, data = build_report_bytes("performance", "max", fmt, config_id, generated_by="bench")
    cold = time.perf_counter() - t0
    wall, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        build_report_bytes("performance", "max", fmt, config_id, generated_by="bench")
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return cold, min(wall or [cold]), min(cpu or [cold]), len(data)


def _quantstats(config_id: int) -> str:
    """Seconds QuantStats takes for its HTML tear sheet of the same series, or why it could not run."""
    from core.services import analytics

    inputs = analytics.load_view_inputs(config_id)
    returns = inputs.index.pct_change().dropna()
    bench = inputs.benchmark.pct_change().dropna() if inputs.benchmark is not None else None
    returns.name, returns.index.name = "AutoIndex", None
    try:
        import quantstats as qs
    except Exception as exc:  # noqa: BLE001 - report why, do not fail the bench
        return f"not run: quantstats is not importable ({type(exc).__name__}: {exc})"
    import logging

    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)  # it asks for Arial
    out = os.path.join(tempfile.mkdtemp(), "quantstats.html")
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            stdout = sys.stdout
            sys.stdout = io.StringIO()  # it prints progress and tables
            try:
                qs.reports.html(returns, benchmark=bench, output=out, title="AutoIndex", rf=0.0)
            finally:
                sys.stdout = stdout
    except Exception as exc:  # noqa: BLE001
        return (
            f"failed after {time.perf_counter() - t0:.2f} s with pandas "
            f"{__import__('pandas').__version__}: {type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
        )
    return f"{time.perf_counter() - t0:.2f} s (quantstats {qs.__version__}, {os.path.getsize(out) / 1e6:.1f} MB)"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--assets", type=int, default=50)
    parser.add_argument("--years", type=float, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="autoindex-bench-reports-")
    os.environ.update({"DATA_DIR": tmp, "DEMO_ON_EMPTY": "false"})
    for key in ("DATABASE_URL", "REDIS_URL", "REPORTS_DIR"):
        os.environ.pop(key, None)
    import numpy as np
    import pandas as pd

    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, pandas {pd.__version__}")
    config_id = _prepare(args.assets, args.years)
    ok = True
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (wall times suffer on a busy machine)")
    print(f"{'format':<6} {'cold s':>8} {'warm s':>8} {'cpu s':>7} {'target s':>9} {'size':>10}  verdict (warm wall)")
    for fmt in ("html", "xlsx", "pdf", "csv"):
        cold, warm, cpu, size = _time_report(fmt, config_id, args.repeat)
        target = TARGETS_S.get(fmt)
        verdict = "-" if target is None else ("ok" if warm < target else "SLOW")
        ok &= verdict != "SLOW"
        print(
            f"{fmt:<6} {cold:8.2f} {warm:8.2f} {cpu:7.2f} {target if target else '-':>9} {size / 1e6:9.2f}M  {verdict}"
        )
    print(f"quantstats.reports.html, same index and benchmark returns: {_quantstats(config_id)}")
    print("all targets met" if ok else "TARGET MISSED")


if __name__ == "__main__":
    main()
