"""The one cache service: namespaces with TTLs, keyed on the data version, on Redis or in-process.

* ``REDIS_URL`` set: values live in Redis, shared by every app replica and every worker, under
  ``autoindex:cache:<namespace>:<data_version>:<key>``; hit / miss counters per namespace live in one
  hash per namespace, ``autoindex:cachestats:<namespace>`` (fields ``hits`` and ``misses``), outside the
  cache prefix so that clearing a namespace keeps its counters.
* otherwise: an in-process dict (bounded by :data:`MAX_LOCAL_ENTRIES`) and a dict of counters.

Invalidation: every key carries the data version, the one cache key of the app (the Streamlit cache in
``ui/cache.py`` uses it too): a refresh, an import, a compute, a universe or config-version change bump it in
the same transaction as their writes. After that commit every reader computes a new key, misses, and reads
fresh rows; the old entries simply expire by TTL. Nothing ever needs clearing for correctness;
:meth:`Cache.clear` and :meth:`Cache.clear_all` are admin tools (a namespace is cleared with SCAN + UNLINK in
batches, never KEYS, so Redis is never blocked); the audited admin operation is
:func:`core.services.cache_admin.clear`.

This module is infrastructure: it imports no service. Where the data version comes from is given to it
(:func:`set_data_version_source`; :mod:`core.services.app_settings` registers the database counter when it is
imported). Until a source is set, reads are computed uncached. Tests inject a cache with :func:`use_cache` and
forget the process-wide ones with :func:`reset_cache_instances` (no private attribute to patch).

Why this layer stays (``bench/cache.py``, 500 assets x 10 years, SQLite): a stored allocation history takes
about 2 s to read and pivot and about 2 ms from Redis; the other stored reads take 0.3-4 ms either way. The
Streamlit cache above it serves the pages' reruns; this layer serves what it cannot: report jobs in workers,
another replica's first view of a data version, and every process after a restart (with Redis).

Failure: Redis down (refused, timed out, reset) never breaks a page. The read falls back to computing the
value, one warning is logged per :data:`RETRY_AFTER_S`, and Redis is not tried again for that long (so a
page does not pay a connect timeout on every call).

Values are pickled (pandas objects included); Redis is trusted infrastructure of the deployment, like
the database.

Use it on service read functions::

    @cached("index", ttl=3600)
    def stored_index(config_id: int) -> pd.Series: ...

Arguments must have a stable ``repr`` (ints, strings, dates, tuples); the namespace and the function's
qualified name are part of the key, so two functions can share a namespace.
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import hashlib
import logging
import pickle
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar, cast

from core.errors import AutoIndexError, ValidationFailed

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

#: Key prefix of everything this module writes to Redis.
KEY_PREFIX = "autoindex"
#: Default time to live of a cached value, seconds.
DEFAULT_TTL_S = 3600
#: Seconds during which Redis is not retried after a failure (and between two warnings).
RETRY_AFTER_S = 15.0
#: Redis connect and read timeouts, seconds: a cache must answer fast or not at all.
REDIS_CONNECT_TIMEOUT_S = 0.5
REDIS_SOCKET_TIMEOUT_S = 1.0
#: Entries kept by the in-process backend (least recently used dropped first).
MAX_LOCAL_ENTRIES = 2048
#: Keys deleted per UNLINK while clearing, and the SCAN page size.
SCAN_BATCH = 500

_NAMESPACE = re.compile(r"^[a-z][a-z0-9_\-]{0,39}$")

#: Namespaces known to the app and their TTL in seconds (``cached`` registers more).
NAMESPACES: dict[str, int] = {
    "index": DEFAULT_TTL_S,
    "metrics": DEFAULT_TTL_S,
    "allocations": DEFAULT_TTL_S,
    "rebalances": DEFAULT_TTL_S,
}


class CacheUnavailable(AutoIndexError):
    """The cache backend (Redis) could not be reached; ``reason`` is the driver's one-line message."""

    transient = True

    def __init__(self, reason: str) -> None:
        super().__init__(f"cache unavailable: {reason}")
        self.reason = reason


@dataclass(frozen=True)
class NamespaceStats:
    """One namespace as the Diagnostics page shows it. ``hit_rate`` is a fraction (None before any read)."""

    namespace: str
    ttl_s: int
    keys: int
    hits: int
    misses: int

    @property
    def hit_rate(self) -> float | None:
        total = self.hits + self.misses
        return self.hits / total if total else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "ttl_s": self.ttl_s,
            "keys": self.keys,
            "hits": self.hits,
            "misses": self.misses,
            "hit_rate": self.hit_rate,
        }


def check_namespace(namespace: str) -> str:
    """Return ``namespace`` if it is a valid name (lower-case letters, digits, ``_``, ``-``); else ValidationFailed."""
    if not isinstance(namespace, str) or not _NAMESPACE.match(namespace):
        raise ValidationFailed({"namespace": f"{namespace!r} is not a cache namespace (a-z, 0-9, _ or -)"})
    return namespace


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else "no detail"
    return f"{type(exc).__name__}: {text}"[:300]


def _group(keys: Iterable[str], cache_prefix: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for key in keys:
        namespace = key[len(cache_prefix) :].split(":", 1)[0]
        counts[namespace] = counts.get(namespace, 0) + 1
    return counts


# --------------------------------------------------------------------------- backends
class CacheBackend:
    """Where cached bytes live. Every method raises :class:`CacheUnavailable` when the store is down.

    Keys given to a backend are full keys (``<prefix>:cache:<namespace>:<version>:<key>``).
    """

    name = "base"

    def get(self, key: str) -> bytes | None:
        """The stored bytes, or None when missing or expired."""
        raise NotImplementedError

    def set(self, key: str, value: bytes, ttl_s: int) -> None:
        """Store ``value`` for ``ttl_s`` seconds."""
        raise NotImplementedError

    def count_stat(self, namespace: str, field: str) -> None:
        """Add one to counter ``field`` (``hits`` or ``misses``) of ``namespace``."""
        raise NotImplementedError

    def read_stats(self, namespaces: Iterable[str]) -> dict[str, dict[str, int]]:
        """``{namespace: {"hits": n, "misses": n}}`` for the given namespaces (zeros when unknown)."""
        raise NotImplementedError

    def reset_stats(self, namespaces: Iterable[str]) -> None:
        """Set the counters of ``namespaces`` back to zero."""
        raise NotImplementedError

    def known_namespaces(self) -> builtins.set[str]:  # builtins: set here is the method
        """Namespaces that have counters (written by any process sharing the store)."""
        raise NotImplementedError

    def count_keys(self, pattern_prefix: str) -> int:
        """Live keys starting with ``pattern_prefix``."""
        raise NotImplementedError

    def count_by_namespace(self, cache_prefix: str) -> dict[str, int]:
        """Live keys under ``cache_prefix`` (``<prefix>:cache:``) grouped by namespace, in one pass."""
        raise NotImplementedError

    def delete_prefix(self, pattern_prefix: str) -> int:
        """Delete every key starting with ``pattern_prefix``; return how many were deleted."""
        raise NotImplementedError

    def info(self) -> dict[str, Any]:
        """Backend facts for diagnostics (kind, and for Redis: version, memory)."""
        raise NotImplementedError


class LocalBackend(CacheBackend):
    """In-process store: a bounded LRU dict of ``key -> (expires_at_monotonic, bytes)``, thread-safe."""

    name = "in-process"

    def __init__(self, max_entries: int = MAX_LOCAL_ENTRIES, clock: Callable[[], float] = time.monotonic) -> None:
        self._data: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._stats: dict[str, dict[str, int]] = {}
        self._lock = threading.Lock()
        self._max = max_entries
        self._clock = clock

    def get(self, key: str) -> bytes | None:
        with self._lock:
            item = self._data.get(key)
            if item is None:
                return None
            if item[0] <= self._clock():
                del self._data[key]
                return None
            self._data.move_to_end(key)
            return item[1]

    def set(self, key: str, value: bytes, ttl_s: int) -> None:
        with self._lock:
            self._data[key] = (self._clock() + ttl_s, value)
            self._data.move_to_end(key)
            while len(self._data) > self._max:
                self._data.popitem(last=False)

    def count_stat(self, namespace: str, field: str) -> None:
        with self._lock:
            counters = self._stats.setdefault(namespace, {"hits": 0, "misses": 0})
            counters[field] = counters.get(field, 0) + 1

    def read_stats(self, namespaces: Iterable[str]) -> dict[str, dict[str, int]]:
        with self._lock:
            return {ns: dict(self._stats.get(ns, {"hits": 0, "misses": 0})) for ns in namespaces}

    def reset_stats(self, namespaces: Iterable[str]) -> None:
        with self._lock:
            for ns in namespaces:
                self._stats.pop(ns, None)

    def known_namespaces(self) -> builtins.set[str]:  # builtins: set here is the method
        with self._lock:
            return set(self._stats)

    def _live(self, prefix: str) -> list[str]:
        now = self._clock()
        return [k for k, (exp, _) in self._data.items() if k.startswith(prefix) and exp > now]

    def count_keys(self, pattern_prefix: str) -> int:
        with self._lock:
            return len(self._live(pattern_prefix))

    def count_by_namespace(self, cache_prefix: str) -> dict[str, int]:
        with self._lock:
            return _group(self._live(cache_prefix), cache_prefix)

    def delete_prefix(self, pattern_prefix: str) -> int:
        with self._lock:
            doomed = [k for k in self._data if k.startswith(pattern_prefix)]
            live = len(self._live(pattern_prefix))
            for k in doomed:
                del self._data[k]
            return live

    def info(self) -> dict[str, Any]:
        with self._lock:
            return {"backend": self.name, "entries": len(self._data), "max_entries": self._max}


class RedisBackend(CacheBackend):
    """Redis store (shared by every process). Counters: one hash per namespace, ``<prefix>:cachestats:<ns>``."""

    name = "redis"

    def __init__(self, url: str, *, prefix: str = KEY_PREFIX, client: Any = None) -> None:
        import redis

        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self.client = client or redis.Redis.from_url(
            url,
            socket_connect_timeout=REDIS_CONNECT_TIMEOUT_S,
            socket_timeout=REDIS_SOCKET_TIMEOUT_S,
            health_check_interval=30,
        )
        self.stats_prefix = f"{prefix}:cachestats:"

    def _call(self, fn: Callable[[], R]) -> R:
        try:
            return fn()
        except self._errors as exc:
            raise CacheUnavailable(_reason(exc)) from None

    def get(self, key: str) -> bytes | None:
        # decode_responses is off, so redis-py returns bytes (its stubs also allow str)
        return cast("bytes | None", self._call(lambda: self.client.get(key)))

    def set(self, key: str, value: bytes, ttl_s: int) -> None:
        self._call(lambda: self.client.set(key, value, ex=max(1, int(ttl_s))))

    def count_stat(self, namespace: str, field: str) -> None:
        self._call(lambda: self.client.hincrby(self.stats_prefix + namespace, field, 1))

    def read_stats(self, namespaces: Iterable[str]) -> dict[str, dict[str, int]]:
        names = list(namespaces)

        def read() -> list[dict[bytes, bytes]]:
            pipe = self.client.pipeline(transaction=False)
            for ns in names:
                pipe.hgetall(self.stats_prefix + ns)
            return pipe.execute()

        raw = self._call(read)
        return {ns: {"hits": int(r.get(b"hits", 0)), "misses": int(r.get(b"misses", 0))} for ns, r in zip(names, raw)}

    def reset_stats(self, namespaces: Iterable[str]) -> None:
        keys = [self.stats_prefix + ns for ns in namespaces]
        if keys:
            self._call(lambda: self.client.delete(*keys))

    def known_namespaces(self) -> builtins.set[str]:  # builtins: set here is the method
        def scan() -> set[str]:
            return {
                k.decode()[len(self.stats_prefix) :]
                for k in self.client.scan_iter(match=self.stats_prefix + "*", count=SCAN_BATCH)
            }

        return self._call(scan)

    def count_keys(self, pattern_prefix: str) -> int:
        return self._call(lambda: sum(1 for _ in self.client.scan_iter(match=pattern_prefix + "*", count=SCAN_BATCH)))

    def count_by_namespace(self, cache_prefix: str) -> dict[str, int]:
        return self._call(
            lambda: _group(
                (k.decode() for k in self.client.scan_iter(match=cache_prefix + "*", count=SCAN_BATCH)), cache_prefix
            )
        )

    def delete_prefix(self, pattern_prefix: str) -> int:
        def delete() -> int:
            deleted, batch = 0, []
            for key in self.client.scan_iter(match=pattern_prefix + "*", count=SCAN_BATCH):
                batch.append(key)
                if len(batch) >= SCAN_BATCH:
                    deleted += int(self.client.unlink(*batch))
                    batch = []
            if batch:
                deleted += int(self.client.unlink(*batch))
            return deleted

        return self._call(delete)

    def info(self) -> dict[str, Any]:
        def read() -> dict[str, Any]:
            server = self.client.info("server")
            memory = self.client.info("memory")
            return {
                "backend": self.name,
                "version": server.get("redis_version"),
                "used_memory": memory.get("used_memory"),
                "used_memory_human": memory.get("used_memory_human"),
                "maxmemory": memory.get("maxmemory") or None,
            }

        return self._call(read)


# --------------------------------------------------------------------------- the cache
_version_source: list[Callable[[], int]] = []


def set_data_version_source(source: Callable[[], int]) -> None:
    """Where every process-wide cache reads the current data version (the services register the database
    counter: :func:`core.services.app_settings.current_data_version`)."""
    _version_source[:] = [source]


def _data_version() -> int:
    if not _version_source:
        raise LookupError("no data version source registered")
    return _version_source[0]()


class Cache:
    """Namespaced, versioned get-or-compute over a :class:`CacheBackend`.

    Args:
        backend: where values live.
        prefix: first component of every key (tests use a unique one).
        data_version: returns the current data version (default: the registered source,
            :func:`set_data_version_source`).
        clock: monotonic seconds, for the Redis back-off.
    """

    def __init__(
        self,
        backend: CacheBackend,
        *,
        prefix: str = KEY_PREFIX,
        data_version: Callable[[], int] = _data_version,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backend = backend
        self.prefix = prefix
        self._data_version = data_version
        self._clock = clock
        self._down_until = 0.0
        self._last_error: str | None = None

    # ---- keys
    def namespace_prefix(self, namespace: str) -> str:
        return f"{self.prefix}:cache:{namespace}:"

    def full_key(self, namespace: str, version: int, key: str) -> str:
        return f"{self.namespace_prefix(namespace)}{version}:{key}"

    @property
    def backend_name(self) -> str:
        return self.backend.name

    @property
    def last_error(self) -> str | None:
        """The reason of the most recent backend failure (None once the backend answers again)."""
        return self._last_error

    def available(self) -> bool:
        """False while backing off after a backend failure."""
        return self._clock() >= self._down_until

    def _failed(self, exc: CacheUnavailable) -> None:
        if self.available():
            log.warning(
                "%s cache unavailable, computing without it for %.0f s: %s",
                self.backend.name,
                RETRY_AFTER_S,
                exc.reason,
            )
        self._down_until = self._clock() + RETRY_AFTER_S
        self._last_error = exc.reason

    # ---- reading
    def get_or_compute(
        self,
        namespace: str,
        key: str,
        compute: Callable[[], R],
        *,
        ttl_s: int | None = None,
        version: int | None = None,
    ) -> R:
        """The cached value of ``key`` in ``namespace`` at the current data version, computing it on a miss.

        Backend failures fall back to ``compute()``; errors raised by ``compute`` propagate unchanged.
        """
        check_namespace(namespace)
        ttl = int(ttl_s if ttl_s is not None else NAMESPACES.get(namespace, DEFAULT_TTL_S))
        if not self.available():
            return compute()
        if version is None:
            try:
                version = int(self._data_version())
            except Exception:  # noqa: BLE001 - no version, no safe key: let compute() meet the real error
                log.debug("no data version; computing %s:%s uncached", namespace, key, exc_info=True)
                return compute()
        full = self.full_key(namespace, version, key)
        try:
            raw = self.backend.get(full)
            if raw is not None:
                value = pickle.loads(raw)
                self.backend.count_stat(namespace, "hits")
                self._last_error = None
                return value  # type: ignore[no-any-return]
            self.backend.count_stat(namespace, "misses")
        except CacheUnavailable as exc:
            self._failed(exc)
            return compute()
        except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError):
            log.warning("unreadable cache entry %s; recomputing", full)
        value = compute()
        try:
            self.backend.set(full, pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL), ttl)
            self._last_error = None
        except CacheUnavailable as exc:
            self._failed(exc)
        except (pickle.PicklingError, TypeError, AttributeError):
            log.warning("value of %s cannot be cached (not picklable)", full)
        return value

    # ---- administration
    def namespaces(self) -> list[str]:
        """Registered namespaces plus any with counters in the store, sorted."""
        names = set(NAMESPACES)
        if self.available():
            try:
                names |= self.backend.known_namespaces()
            except CacheUnavailable as exc:
                self._failed(exc)
        return sorted(names)

    def stats(self) -> list[NamespaceStats]:
        """Keys (all data versions), hits and misses per namespace. Raises CacheUnavailable when the store is down."""
        try:
            keys = self.backend.count_by_namespace(f"{self.prefix}:cache:")
            names = sorted(set(self.namespaces()) | set(keys))
            counters = self.backend.read_stats(names)
            out = [
                NamespaceStats(
                    ns, NAMESPACES.get(ns, DEFAULT_TTL_S), keys.get(ns, 0), counters[ns]["hits"], counters[ns]["misses"]
                )
                for ns in names
            ]
        except CacheUnavailable as exc:
            self._failed(exc)
            raise
        self._down_until = 0.0
        self._last_error = None
        return out

    def clear(self, namespace: str, *, reset_stats: bool = False) -> int:
        """Delete every entry of ``namespace`` (any data version); return how many. Other namespaces are kept.

        Raises ValidationFailed for a bad name and CacheUnavailable when the store is down.
        """
        check_namespace(namespace)
        deleted = self.backend.delete_prefix(self.namespace_prefix(namespace))
        if reset_stats:
            self.backend.reset_stats([namespace])
        return deleted

    def clear_all(self, *, reset_stats: bool = False) -> int:
        """Delete every entry of every namespace; return how many."""
        deleted = self.backend.delete_prefix(f"{self.prefix}:cache:")
        if reset_stats:
            self.backend.reset_stats(self.namespaces())
        return deleted

    def info(self) -> dict[str, Any]:
        """Backend facts (raises CacheUnavailable when the store is down)."""
        return self.backend.info()


def build_cache(redis_url: str | None, *, prefix: str = KEY_PREFIX, **kwargs: Any) -> Cache:
    """A cache on Redis when ``redis_url`` is given, in-process otherwise."""
    backend: CacheBackend = RedisBackend(redis_url, prefix=prefix) if redis_url else LocalBackend()
    return Cache(backend, prefix=prefix, **kwargs)


_instances: dict[str | None, Cache] = {}
_instances_lock = threading.Lock()
_injected: list[Cache] = []


def get_cache() -> Cache:
    """The process-wide cache for the configured REDIS_URL (or the one :func:`use_cache` injected)."""
    from core.config import get_settings

    if _injected:
        return _injected[-1]
    url = get_settings().redis_url
    cache = _instances.get(url)
    if cache is None:
        with _instances_lock:
            cache = _instances.get(url)
            if cache is None:
                cache = _instances[url] = build_cache(url)
    return cache


def reset_cache_instances() -> None:
    """Forget every process-wide cache (tests switch REDIS_URL)."""
    with _instances_lock:
        _instances.clear()


@contextlib.contextmanager
def use_cache(cache: Cache) -> Iterator[Cache]:
    """Within the block, :func:`get_cache` (and so every ``@cached`` read) uses ``cache``."""
    _injected.append(cache)
    try:
        yield cache
    finally:
        _injected.remove(cache)


def _key_text(name: str, args: tuple[Any, ...], kwargs: dict[str, Any], scope: str = "") -> str:
    """``qualified.name:<sha1 of the scope and the arguments' repr>`` (short, safe in Redis glob patterns).

    ``scope`` is the database URL: two databases (tests, two deployments on one Redis) both at data
    version 3 must not share entries.
    """
    digest = hashlib.sha1(repr((scope, args, sorted(kwargs.items()))).encode()).hexdigest()[:20]
    return f"{name}:{digest}"


def _scope() -> str:
    from core.config import get_settings

    return get_settings().effective_database_url


def cached(namespace: str, ttl: int = DEFAULT_TTL_S) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a service read so its result is cached in ``namespace`` for ``ttl`` seconds.

    The wrapped function keeps its signature; ``fn.uncached`` is the original and ``fn.namespace`` the name.
    Each computation (a miss, or any call while the store is down) is timed as a ``service`` timing named
    ``<module>.<function>`` (see :mod:`core.infra.telemetry`; only calls over 50 ms are kept).
    """
    check_namespace(namespace)
    NAMESPACES.setdefault(namespace, int(ttl))

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        name = f"{fn.__module__}.{fn.__qualname__}"
        service = f"{fn.__module__.rsplit('.', 1)[-1]}.{fn.__qualname__}"

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            def compute() -> R:
                from core.infra.telemetry import timed

                with timed("service", service):  # misses only: the slow calls worth seeing on Diagnostics
                    return fn(*args, **kwargs)

            return get_cache().get_or_compute(namespace, _key_text(name, args, kwargs, _scope()), compute, ttl_s=ttl)

        wrapper.uncached = fn  # type: ignore[attr-defined]
        wrapper.namespace = namespace  # type: ignore[attr-defined]
        return wrapper

    return decorate
