"""Does the service cache (core/infra/cache.py) pay? Issue 13: "one layer, or none if a benchmark shows it does not".

    python bench/cache.py [--data-dir DIR] [--assets 500] [--years 10] [--redis redis://127.0.0.1:6379/6] [--repeat 20]

For each stored read the layer wraps (compute.stored_index, stored_metrics, stored_allocations,
stored_rebalances) on the default config of a 500 assets x 10 years database it prints the median time of

* the read itself (SQLite; the database's page cache warm, as on a running server),
* a hit of the in-process backend (including the data-version read the layer makes on every call),
* a hit of the Redis backend (the same, plus a round trip and unpickling),

and then what the pages feel: a Dashboard build (``dashboard.dashboard_data``) and an analytics build
(``analytics.performance_view``) with the layer empty and warm. The Streamlit cache above it (ui/cache.py) serves
every rerun after the first of a data version, so the layer can only speed up that first build, a report job, or
another replica's first build.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _median_ms(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000.0)
    return statistics.median(times)


def _use(data_dir: Path, redis_url: str | None) -> None:
    from core.config import reset_settings_cache
    from core.db import reset_engine_cache

    os.environ.update({"DATA_DIR": str(data_dir), "DEMO_ON_EMPTY": "false", "EMBEDDED_WORKER": "false"})
    os.environ.pop("DATABASE_URL", None)
    if redis_url:
        os.environ["REDIS_URL"] = redis_url
    else:
        os.environ.pop("REDIS_URL", None)
    reset_engine_cache()
    reset_settings_cache()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, help="an already seeded DATA_DIR (default: seed a throwaway one)")
    parser.add_argument("--assets", type=int, default=500)
    parser.add_argument("--years", type=float, default=10)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/6", help="Redis for the shared backend ('' skips)")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="autoindex-cachebench-") as tmp:
        data_dir = args.data_dir
        if data_dir is None:
            data_dir = Path(tmp)
            env = {**os.environ, "DATA_DIR": str(data_dir), "LOG_LEVEL": "WARNING"}
            env.pop("DATABASE_URL", None)
            subprocess.run(
                [sys.executable, "-m", "core", "seed-demo", "--assets", str(args.assets), "--years", str(args.years)],
                cwd=ROOT,
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
            )
        _use(data_dir, None)
        from core.services import bootstrap

        bootstrap.start_up(seed_if_empty=False)
        return run(args.redis or None, args.repeat)


def run(redis_url: str | None, repeat: int) -> int:
    from core.db import unit_of_work
    from core.infra import cache as layer
    from core.services import analytics, app_settings, compute, dashboard, strategies

    config_id = strategies.ensure_default_config().id
    with unit_of_work() as session:
        version = app_settings.data_version(session)
    reads = {
        name: getattr(compute, name)
        for name in ("stored_index", "stored_metrics", "stored_allocations", "stored_rebalances")
    }
    backends: dict[str, layer.Cache] = {"in-process": layer.build_cache(None, prefix="bench-cache")}
    if redis_url:
        shared = layer.build_cache(redis_url, prefix="bench-cache")
        try:
            shared.info()
            backends["redis"] = shared
        except layer.CacheUnavailable as exc:
            print(f"(Redis skipped: {exc.reason})")
    print(f"data version {version}; config {config_id}; median of {repeat} calls, milliseconds")
    print(f"{'read':<20}{'database':>10}" + "".join(f"{name + ' hit':>16}" for name in backends))
    for name, fn in reads.items():
        plain = fn.uncached  # type: ignore[attr-defined]
        row = f"{name:<20}{_median_ms(lambda p=plain: p(config_id), repeat):>10.2f}"
        for cache in backends.values():
            key = f"{name}:{config_id}"
            cache.get_or_compute("index", key, lambda p=plain: p(config_id))  # fill
            row += f"{_median_ms(lambda c=cache, k=key, p=plain: c.get_or_compute('index', k, lambda: p(config_id)), repeat):>16.2f}"
        print(row)
    for cache in backends.values():
        cache.clear_all(reset_stats=True)

    # What a page build feels: the layer empty (every read goes to the database) and warm.
    original = layer.get_cache

    def build(cache: layer.Cache | None, what: Callable[[], Any]) -> tuple[float, float]:
        if cache is None:
            layer.get_cache = original
            for fn in reads.values():  # bypass the layer: the reads themselves
                setattr(compute, fn.__name__, fn.uncached)  # type: ignore[attr-defined]
            try:
                return _median_ms(what, max(3, repeat // 4)), float("nan")
            finally:
                for name, fn in reads.items():
                    setattr(compute, name, fn)
        layer.get_cache = lambda: cache
        try:
            cache.clear_all()
            cold = _median_ms(lambda: (cache.clear_all(), what()), max(3, repeat // 4))
            warm = _median_ms(what, max(3, repeat // 4))
            return cold, warm
        finally:
            layer.get_cache = original
            cache.clear_all(reset_stats=True)

    levels = compute.stored_index.uncached(config_id)  # type: ignore[attr-defined]
    first, last = levels.index[0].date(), levels.index[-1].date()
    builds = {
        "dashboard_data": lambda: dashboard.dashboard_data(config_id),
        "performance_view": lambda: analytics.performance_view(config_id, first, last),
    }
    print(f"\n{'build':<20}{'no layer':>10}" + "".join(f"{name + ' miss':>16}{name + ' hit':>16}" for name in backends))
    for name, what in builds.items():
        try:
            row = f"{name:<20}{build(None, what)[0]:>10.1f}"
            for cache in backends.values():
                cold, warm = build(cache, what)
                row += f"{cold:>16.1f}{warm:>16.1f}"
        except Exception as exc:  # noqa: BLE001 - a build this tree cannot make is reported, not fatal
            row = f"{name:<20} skipped: {type(exc).__name__}: {exc}"
        print(row)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
