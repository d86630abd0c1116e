"""The cache service on its in-process backend with a fake clock and a fake data version (no database)."""

from __future__ import annotations

import inspect
import logging

import pytest

from core.errors import ValidationFailed
from core.infra import cache as cache_module
from core.infra.cache import Cache, CacheBackend, CacheUnavailable, LocalBackend, cached, check_namespace


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Version:
    def __init__(self) -> None:
        self.v = 1

    def __call__(self) -> int:
        return self.v


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def version() -> Version:
    return Version()


@pytest.fixture
def cache(clock, version) -> Cache:
    return Cache(LocalBackend(clock=clock), data_version=version, clock=clock)


class Counter:
    def __init__(self, value: object = "value") -> None:
        self.calls = 0
        self.value = value

    def __call__(self) -> object:
        self.calls += 1
        return self.value


def _stats(cache: Cache) -> dict[str, tuple[int, int, int]]:
    return {s.namespace: (s.keys, s.hits, s.misses) for s in cache.stats()}


def test_hits_and_misses_are_counted_per_namespace(cache) -> None:
    compute = Counter([1, 2, 3])
    assert cache.get_or_compute("index", "a", compute) == [1, 2, 3]
    assert cache.get_or_compute("index", "a", compute) == [1, 2, 3]
    assert cache.get_or_compute("index", "a", compute) == [1, 2, 3]
    assert cache.get_or_compute("metrics", "a", Counter()) == "value"
    assert compute.calls == 1
    stats = _stats(cache)
    assert stats["index"] == (1, 2, 1)
    assert stats["metrics"] == (1, 0, 1)
    hit_rate = next(s for s in cache.stats() if s.namespace == "index").hit_rate
    assert hit_rate == pytest.approx(2 / 3)


def test_readers_get_independent_copies(cache) -> None:
    first = cache.get_or_compute("index", "a", lambda: {"x": [1]})
    first["x"].append(2)  # a caller mutating its result must not change what the next caller reads
    assert cache.get_or_compute("index", "a", lambda: None) == {"x": [1]}


def test_none_is_cached_too(cache) -> None:
    compute = Counter(None)
    cache.get_or_compute("index", "none", compute)
    cache.get_or_compute("index", "none", compute)
    assert compute.calls == 1


def test_ttl_expires_entries(cache, clock) -> None:
    compute = Counter()
    cache.get_or_compute("index", "a", compute, ttl_s=60)
    clock.t += 59
    cache.get_or_compute("index", "a", compute, ttl_s=60)
    assert compute.calls == 1
    clock.t += 2
    cache.get_or_compute("index", "a", compute, ttl_s=60)
    assert compute.calls == 2


def test_a_new_data_version_invalidates(cache, version) -> None:
    compute = Counter()
    cache.get_or_compute("index", "a", compute)
    version.v += 1  # a refresh or compute committed
    cache.get_or_compute("index", "a", compute)
    assert compute.calls == 2
    assert cache.full_key("index", 2, "a") == "autoindex:cache:index:2:a"


def test_clearing_one_namespace_leaves_the_others(cache) -> None:
    for ns in ("index", "metrics", "allocations"):
        for key in ("a", "b"):
            cache.get_or_compute(ns, key, Counter())
    assert cache.clear("metrics") == 2
    stats = _stats(cache)
    assert stats["metrics"][0] == 0
    assert stats["index"][0] == 2 and stats["allocations"][0] == 2
    compute = Counter()
    cache.get_or_compute("index", "a", compute)
    assert compute.calls == 0
    assert cache.clear_all() == 4
    assert all(keys == 0 for keys, _, _ in _stats(cache).values())


def test_clear_can_reset_counters(cache) -> None:
    cache.get_or_compute("index", "a", Counter())
    cache.clear("index", reset_stats=True)
    assert _stats(cache)["index"] == (0, 0, 0)


def test_bad_namespace_is_refused(cache) -> None:
    with pytest.raises(ValidationFailed):
        cache.clear("*")
    with pytest.raises(ValidationFailed):
        check_namespace("Index:1")
    assert check_namespace("health-2") == "health-2"


def test_local_backend_is_bounded(clock) -> None:
    backend = LocalBackend(max_entries=3, clock=clock)
    for i in range(5):
        backend.set(f"k{i}", b"x", 60)
    assert backend.count_keys("k") == 3
    assert backend.get("k0") is None and backend.get("k4") == b"x"


class DownBackend(CacheBackend):
    """A backend whose store is unreachable."""

    name = "redis"

    def __init__(self) -> None:
        self.calls = 0

    def _fail(self, *_args, **_kwargs):  # type: ignore[no-untyped-def]
        self.calls += 1
        raise CacheUnavailable("ConnectionError: Connection refused")

    get = set = count_stat = read_stats = reset_stats = known_namespaces = count_keys = _fail
    count_by_namespace = delete_prefix = info = _fail


def test_store_down_falls_back_to_computing_and_backs_off(clock, version, caplog) -> None:
    backend = DownBackend()
    cache = Cache(backend, data_version=version, clock=clock)
    compute = Counter(42)
    with caplog.at_level(logging.WARNING, logger="core.infra.cache"):
        assert cache.get_or_compute("index", "a", compute) == 42
        assert cache.get_or_compute("index", "a", compute) == 42
    assert compute.calls == 2
    assert backend.calls == 1  # backing off: the second read did not try the store again
    assert len([r for r in caplog.records if "unavailable" in r.message]) == 1
    assert cache.last_error == "ConnectionError: Connection refused"
    clock.t += cache_module.RETRY_AFTER_S + 1
    assert cache.get_or_compute("index", "a", compute) == 42
    assert backend.calls == 2
    with pytest.raises(CacheUnavailable):
        cache.stats()
    with pytest.raises(CacheUnavailable):
        cache.clear("index")


def test_compute_errors_propagate(cache) -> None:
    def boom() -> None:
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        cache.get_or_compute("index", "a", boom)
    assert _stats(cache)["index"][0] == 0


def test_no_data_version_computes_uncached(clock) -> None:
    def no_version() -> int:
        raise RuntimeError("database down")

    cache = Cache(LocalBackend(clock=clock), data_version=no_version, clock=clock)
    compute = Counter()
    cache.get_or_compute("index", "a", compute)
    cache.get_or_compute("index", "a", compute)
    assert compute.calls == 2


def test_cached_decorator_keys_on_arguments_and_database(cache, monkeypatch) -> None:
    with cache_module.use_cache(cache):  # injected: no private attribute patched
        _decorator_keys_on_arguments_and_database(monkeypatch)


def _decorator_keys_on_arguments_and_database(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    scope = {"url": "sqlite:///one.db"}
    monkeypatch.setattr(cache_module, "_scope", lambda: scope["url"])
    calls: list[tuple[int, str]] = []

    @cached("unit-test", ttl=120)
    def read(config_id: int, kind: str = "x") -> tuple[int, str]:
        """Docstring kept."""
        calls.append((config_id, kind))
        return config_id, kind

    assert read(1) == (1, "x")
    assert read(1) == (1, "x")
    assert read(2) == (2, "x")
    assert read(1, kind="y") == (1, "y")
    assert calls == [(1, "x"), (2, "x"), (1, "y")]
    scope["url"] = "sqlite:///two.db"  # another database at the same data version must not share entries
    read(1)
    assert calls[-1] == (1, "x") and len(calls) == 4
    assert read.__doc__ == "Docstring kept."
    assert list(inspect.signature(read).parameters) == ["config_id", "kind"]
    assert read.namespace == "unit-test" and cache_module.NAMESPACES["unit-test"] == 120  # type: ignore[attr-defined]
    assert read.uncached(5) == (5, "x")  # type: ignore[attr-defined]


def test_stored_reads_are_cached() -> None:
    from core.services import compute

    for fn, ns in (
        (compute.stored_index, "index"),
        (compute.stored_metrics, "metrics"),
        (compute.stored_allocations, "allocations"),
        (compute.stored_rebalances, "rebalances"),
    ):
        assert fn.namespace == ns  # type: ignore[attr-defined]
        assert list(inspect.signature(fn).parameters) == ["config_id"]


def test_injected_cache_is_used_only_inside_the_block(cache) -> None:
    before = cache_module.get_cache()
    with cache_module.use_cache(cache) as injected:
        assert cache_module.get_cache() is injected is cache
    assert cache_module.get_cache() is before


def test_the_data_version_comes_from_the_registered_source(clock, monkeypatch) -> None:
    """The process-wide cache keys on the registered source (the services register the database counter); with no
    source the read is computed every time (never served under a key that cannot follow the data)."""
    monkeypatch.setattr(cache_module, "_version_source", [])
    cache = Cache(LocalBackend(clock=clock), clock=clock)
    compute = Counter()
    cache.get_or_compute("index", "a", compute)
    cache.get_or_compute("index", "a", compute)
    assert compute.calls == 2
    current = {"v": 7}
    cache_module.set_data_version_source(lambda: current["v"])
    cache.get_or_compute("index", "a", compute)
    cache.get_or_compute("index", "a", compute)
    assert compute.calls == 3
    current["v"] = 8  # a write bumped the data version: the next read misses
    cache.get_or_compute("index", "a", compute)
    assert compute.calls == 4


def test_services_register_the_database_data_version() -> None:
    from core.services import app_settings

    assert cache_module._version_source == [app_settings.current_data_version]


def test_the_infrastructure_layer_imports_no_service() -> None:
    """Issue 13: core.infra.cache is below the services; the audited admin clear lives in core.services."""
    import ast
    from pathlib import Path

    tree = ast.parse(Path(cache_module.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module} | {
        a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
    }
    assert not any(name.startswith(("core.services", "core.health", "ui", "jobs")) for name in imported), imported
    from core.services import cache_admin

    assert callable(cache_admin.clear) and not hasattr(cache_module, "clear_cache")
