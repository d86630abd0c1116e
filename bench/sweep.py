"""Benchmark of parameter sweeps (issue 14); prints figures (not a test).

Run from the repository root:  python bench/sweep.py [--data-dir DIR] [--workers 1,2] [--redis-db 5] [--bt-sample 2]

1. A 1,000-variant mixed grid (5 momentum lookbacks x 5 weight caps x 2 rebalance periods x 20 sleeve mixes on a
   simplex step of 1/3) over 500 assets x 2,520 days of synthetic demo prices stored in SQLite (seeded once into
   ``--data-dir``): variants per second inline (``python -m core sweep`` without --queue), and on Redis (db
   ``--redis-db``) fanned out over 1 and 2 ``huey_consumer`` processes (one thread each), from queueing the sweep to
   its last chunk stored.
2. Side by side on the shared grid (equal weight / momentum mixes x momentum lookbacks, monthly, 500 x 2,520 in
   memory): the batched engine (with each variant's Sharpe) against vectorbt (``Portfolio.from_orders``, target
   percent, one grouped portfolio per variant, its Sharpe) and against a loop of bt backtests on a sample.

Targets (issue 14, on this 2-core machine): the 1,000-variant grid in <= 60 s with 2 workers; >= 10x vectorbt's
throughput on the shared grid. The machine is shared: the 1-minute load average is printed beside each figure.
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GRID = [
    "momentum_lookback=21,63,126,189,252",
    "max_weight=none,0.02,0.05,0.1,0.2",
    "rebalance=monthly,quarterly",
    "sleeves=0.333333333333",
]
SHARED_GRID = ["momentum_lookback=21,42,63,126,189,252", "sleeves=equal+momentum:0.25"]


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.1f}/{five:.1f} on {os.cpu_count()} cpus"


def seed(data_dir: Path) -> None:
    from core.db import migrate
    from core.services.bootstrap import seed_demo
    from core.services.strategies import ensure_default_config

    migrate()
    t0 = time.perf_counter()
    summary = seed_demo(n_assets=500, years=10)
    ensure_default_config()
    if summary["rows_new"]:
        print(f"seeded {summary['rows_new']:,} prices into {data_dir} in {time.perf_counter() - t0:.0f} s")


def inline_sweep() -> float:
    from core.schemas.sweep import parse_grid
    from core.services import sweeps

    grid = parse_grid(GRID)
    t0 = time.perf_counter()
    sweep = sweeps.start(None, grid)
    elapsed = time.perf_counter() - t0
    assert sweep.status == "succeeded", sweep.error
    print(
        f"inline: {grid.count:,} variants in {elapsed:.1f} s = {grid.count / elapsed:.1f} variants/s "
        f"({sweep.summary.get('errors', 0) if sweep.summary else 0} errors; {load()}); "
        f"peak RSS of this process so far {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
    )
    return elapsed


def redis_sweep(n_workers: int, env: dict[str, str], log_dir: Path) -> float:
    from core.schemas.sweep import parse_grid
    from core.services import sweeps, workers

    procs = []
    consumer = str(Path(sys.executable).with_name("huey_consumer"))
    try:
        for i in range(n_workers):
            log = open(log_dir / f"worker-{n_workers}-{i}.log", "wb")
            procs.append(
                subprocess.Popen(
                    [consumer, "jobs.huey", "-w", "1", "-k", "thread", "-d", "0.05"],
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
            log.close()
        pids = {p.pid for p in procs}
        deadline = time.monotonic() + 60
        while {w.pid for w in workers.workers_status() if w.alive} & pids != pids:
            if time.monotonic() > deadline:
                raise SystemExit(f"workers did not start; see {log_dir}")
            time.sleep(0.2)
        grid = parse_grid(GRID)
        t0 = time.perf_counter()
        sweep = sweeps.start(None, grid, queue=True)
        while sweep.status in ("queued", "running"):
            time.sleep(0.1)
            sweep = sweeps.get_sweep(sweep.id, None)
        elapsed = time.perf_counter() - t0
        assert sweep.status == "succeeded", sweep.error
        print(
            f"redis, {n_workers} worker(s): {grid.count:,} variants in {elapsed:.1f} s = "
            f"{grid.count / elapsed:.1f} variants/s ({sweep.n_chunks} chunks; {load()})"
            + ("  target <= 60 s" if n_workers == 2 else "")
        )
        return elapsed
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        # ru_maxrss of the waited-for children is the largest peak of any one of them (KiB on Linux)
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"peak RSS of the largest worker process so far: {peak:.0f} MiB  target < 1024 MiB per worker")


def flush(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    for pattern in ("huey.*autoindex*", "autoindex:*"):
        keys = list(client.scan_iter(pattern, count=500))
        if keys:
            client.delete(*keys)
    client.close()


def momentum_targets(prices: np.ndarray, rebalance_rows: np.ndarray, lookback: int, share: float) -> np.ndarray:
    """Target weights (rows x assets, NaN off the rebalance rows) of an equal/momentum mix, for vectorbt."""
    out = np.full(prices.shape, np.nan)
    n = prices.shape[1]
    for k in rebalance_rows:
        w = np.full(n, (1.0 - share) / n)
        if share > 0 and k >= lookback:
            mom = prices[k] / prices[k - lookback] - 1.0
            score = np.where(mom > 0, mom, 0.0)
            if score.sum() > 0:
                w = w + share * score / score.sum()
            else:
                w = np.full(n, 1.0 / n)
        elif share > 0:
            w = np.full(n, 1.0 / n)
        out[k] = w
    return out


def side_by_side(bt_sample: int) -> None:
    from bench.engine import synthetic
    from core.quant.batch import batch_backtest
    from core.quant.engine import rebalance_schedule
    from core.quant.risk import risk_metrics
    from core.schemas.sweep import parse_grid

    prices, _ = synthetic(2520, 500)
    grid = parse_grid(SHARED_GRID)
    configs = [
        {"min_history": 1, "rebalance": "monthly", "return_clip": None, **grid.variant(i)} for i in range(grid.count)
    ]
    t0 = time.perf_counter()
    results = batch_backtest(prices, configs)
    sharpes = [risk_metrics(r.values)["sharpe"] for r in results if not isinstance(r, Exception)]
    ours = time.perf_counter() - t0
    assert len(sharpes) == grid.count
    print(
        f"shared grid ({grid.count} variants: equal/momentum mixes x lookbacks, monthly, 500x2520): "
        f"batched engine {grid.count / ours:.1f} variants/s ({load()})"
    )
    try:
        import vectorbt as vbt
    except ImportError:
        print("vectorbt not installed (pip install -r requirements-bench.txt): skipping")
        vbt_rate = None
    else:
        closes = prices.to_numpy()
        rows = np.flatnonzero(rebalance_schedule(prices.index, "monthly"))
        warm = pd.DataFrame(momentum_targets(closes, rows, 21, 0.5), index=prices.index, columns=prices.columns)
        vbt.Portfolio.from_orders(
            prices,
            size=warm,
            size_type="targetpercent",
            group_by=True,
            cash_sharing=True,
            call_seq="auto",
            init_cash=100.0,
            freq="1D",
        ).sharpe_ratio()  # numba compiles once
        t0 = time.perf_counter()
        for cfg in configs:
            targets = pd.DataFrame(
                momentum_targets(closes, rows, int(cfg["momentum_lookback"]), float(cfg["momentum"])),
                index=prices.index,
                columns=prices.columns,
            )
            pf = vbt.Portfolio.from_orders(
                prices,
                size=targets,
                size_type="targetpercent",
                group_by=True,
                cash_sharing=True,
                call_seq="auto",
                init_cash=100.0,
                freq="1D",
            )
            pf.sharpe_ratio()
        vbt_time = time.perf_counter() - t0
        vbt_rate = grid.count / vbt_time
        print(
            f"  vectorbt {vbt.__version__}: {vbt_rate:.2f} variants/s -> batched engine "
            f"{grid.count / ours / vbt_rate:.1f}x vectorbt's throughput (target >= 10x; {load()})"
        )
    try:
        import bt
    except ImportError:
        print("bt not installed: skipping")
        return
    strategy_rows = configs[:bt_sample]
    t0 = time.perf_counter()
    for _cfg in strategy_rows:  # bt has no momentum mix built in: the equal-weight monthly backtest per variant
        strategy = bt.Strategy(
            "ew",
            [
                bt.algos.RunMonthly(run_on_first_date=True, run_on_end_of_period=True),
                bt.algos.SelectAll(),
                bt.algos.WeighEqually(),
                bt.algos.Rebalance(),
            ],
        )
        bt.run(bt.Backtest(strategy, prices, integer_positions=False, initial_capital=100.0, progress_bar=False))
    bt_rate = len(strategy_rows) / (time.perf_counter() - t0)
    print(
        f"  bt {bt.__version__} loop ({len(strategy_rows)} equal-weight monthly backtests): {bt_rate:.3f} "
        f"variants/s -> batched engine {grid.count / ours / bt_rate:.0f}x ({load()})"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default=None, help="SQLite data directory (seeded once; default: a temp dir)")
    parser.add_argument("--workers", default="1,2", help="worker counts for the Redis runs ('' to skip)")
    parser.add_argument("--redis-db", type=int, default=5)
    parser.add_argument("--bt-sample", type=int, default=2)
    parser.add_argument("--skip-inline", action="store_true")
    parser.add_argument("--skip-side-by-side", action="store_true")
    args = parser.parse_args()

    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="autoindex-sweep-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    os.environ.update(DATA_DIR=str(data_dir), DEMO_ON_EMPTY="false", LOG_LEVEL="WARNING")
    os.environ.pop("DATABASE_URL", None)
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, pandas {pd.__version__}; {load()}")
    seed(data_dir)
    if not args.skip_inline:
        inline_sweep()
    counts = [int(n) for n in args.workers.split(",") if n.strip()]
    if counts:
        url = f"redis://127.0.0.1:6379/{args.redis_db}"
        env = dict(os.environ, REDIS_URL=url, PYTHONPATH=str(ROOT))
        os.environ["REDIS_URL"] = url
        from core.config import reset_settings_cache

        reset_settings_cache()
        import jobs

        jobs.reconfigure()
        for n in counts:
            flush(url)
            redis_sweep(n, env, data_dir)
        flush(url)
    if not args.skip_side_by_side:
        side_by_side(args.bt_sample)


if __name__ == "__main__":
    main()
