"""Benchmark of the Monte Carlo projection; prints figures (not a test).

Run from the repository root:  python bench/montecarlo.py [--paths 10000] [--years 10] [--repeat 5]

Target (issue 15): 10,000 paths x 10 years (2,520 trading days each) in under 1 s, for each method
(stationary block bootstrap, normal, Student-t). Synthetic history of 10 years of daily returns, fixed seed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from core.quant.montecarlo import simulate  # noqa: E402

TARGET_S = 1.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, default=10_000)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    history = np.expm1(np.random.default_rng(0).normal(0.0003, 0.011, 2520))
    worst = 0.0
    for method in ("bootstrap", "normal", "t"):
        times = []
        for i in range(args.repeat):
            start = time.perf_counter()
            res = simulate(history, years=args.years, method=method, n_paths=args.paths, seed=i)  # type: ignore[arg-type]
            times.append(time.perf_counter() - start)
        median = statistics.median(times)
        worst = max(worst, median)
        print(
            f"monte carlo {method:9s} {args.paths} paths x {args.years} y: median {median * 1000:.0f} ms "
            f"(min {min(times) * 1000:.0f} ms); p50 terminal {res.fan['p50'].iloc[-1]:.0f}, "
            f"P(loss) {res.prob_loss:.3f}"
        )
    print(
        f"target < {TARGET_S:.1f} s per run: {'met' if worst < TARGET_S else 'MISSED'} (slowest median "
        f"{worst * 1000:.0f} ms)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
