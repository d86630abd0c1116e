"""Benchmark of the index engine and risk analytics; prints figures (not a test).

Run from the repository root:  python bench/engine.py [--bt-assets 500] [--repeat 15]

Targets (issue): 500 assets x 2520 days, all four sleeves, max weight 10 %, weekly, 10 bps:
median < 100 ms; equal-weight monthly >= 100x faster than bt (fractional positions) on the
same prices; peak traced memory of a backtest < 5x the price matrix; risk_metrics over 2520
days with a benchmark < 5 ms. Synthetic prices, fixed seed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import tracemalloc

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from core.quant.engine import backtest  # noqa: E402
from core.quant.risk import risk_metrics  # noqa: E402
from core.schemas.strategy import StrategyConfig  # noqa: E402


def synthetic(rows: int, cols: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2014-01-01", periods=rows)
    prices = pd.DataFrame(
        100 * np.exp(np.cumsum(rng.normal(3e-4, 0.015, (rows, cols)), axis=0)),
        index=dates,
        columns=[f"S{i:03d}" for i in range(cols)],
    )
    caps = prices * rng.uniform(1e8, 1e10, cols)
    return prices, caps


def timed(fn, repeat: int) -> tuple[float, float, float]:
    """(median wall ms, min wall ms, median CPU ms) over ``repeat`` runs after one warm-up."""
    fn()
    wall, cpu = [], []
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - w0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
    return statistics.median(wall), min(wall), statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument(
        "--bt-assets", type=int, default=500, help="universe size for the bt comparison (bt is slow on 500 assets)"
    )
    args = parser.parse_args()

    prices, caps = synthetic(2520, 500)
    full = StrategyConfig(
        equal=0.25, momentum=0.25, market_cap=0.25, risk_parity=0.25, max_weight=0.10, rebalance="weekly", cost_bps=10
    )
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, pandas {pd.__version__}, cpus {os.cpu_count()}")
    med, best, cpu = timed(lambda: backtest(prices, full, caps), args.repeat)
    print(
        f"backtest 500x2520, 4 sleeves, cap 10%, weekly, 10 bps: median {med:.1f} ms "
        f"(min {best:.1f} ms, median CPU {cpu:.1f} ms)  target < 100 ms"
    )

    tracemalloc.start()
    backtest(prices, full, caps)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    matrix = prices.to_numpy().nbytes
    print(
        f"peak traced memory: {peak / 2**20:.1f} MiB = {peak / matrix:.2f}x the price matrix "
        f"({matrix / 2**20:.1f} MiB)  target < 5x"
    )

    equal = StrategyConfig(equal=1, rebalance="monthly", min_history=1)
    med_eq, best_eq, _ = timed(lambda: backtest(prices, equal, None), args.repeat)
    print(f"backtest 500x2520 equal weight monthly: median {med_eq:.1f} ms (min {best_eq:.1f} ms)")

    try:
        import bt
    except ImportError:
        print("bt not installed: skipping the bt comparison")
    else:
        sub = prices.iloc[:, : args.bt_assets]
        strategy = bt.Strategy(
            "ew",
            [
                bt.algos.RunMonthly(run_on_first_date=True, run_on_end_of_period=True),
                bt.algos.SelectAll(),
                bt.algos.WeighEqually(),
                bt.algos.Rebalance(),
            ],
        )

        def run_bt():
            return bt.run(
                bt.Backtest(strategy, sub, integer_positions=False, initial_capital=100.0, progress_bar=False)
            )

        t0 = time.perf_counter()
        result = run_bt()
        bt_ms = (time.perf_counter() - t0) * 1e3
        ours, ours_best, _ = timed(lambda: backtest(sub, equal, None), args.repeat)
        ours_values = backtest(sub, equal, None).values
        diff = float(np.max(np.abs(ours_values.to_numpy() / result.prices["ew"].loc[sub.index].to_numpy() - 1)))
        print(
            f"equal weight monthly {sub.shape[1]}x{sub.shape[0]}: bt {bt.__version__} {bt_ms:.0f} ms, "
            f"engine median {ours:.1f} ms -> {bt_ms / ours:.0f}x faster (target >= 100x); "
            f"max relative difference {diff:.1e}"
        )

    rng = np.random.default_rng(1)
    idx = pd.bdate_range("2014-01-01", periods=2521)
    values = pd.Series(100 * np.cumprod(1 + rng.normal(3e-4, 0.01, 2521)), idx)
    bench = pd.Series(100 * np.cumprod(1 + rng.normal(3e-4, 0.01, 2521)), idx)
    med_r, best_r, _ = timed(lambda: risk_metrics(values, bench, rf=0.02), max(args.repeat, 50))
    print(f"risk_metrics 2520 returns with benchmark: median {med_r:.2f} ms (min {best_r:.2f} ms)  target < 5 ms")


if __name__ == "__main__":
    main()
