"""The cache card: backend, keys, hits and misses per namespace."""

from __future__ import annotations

import pandas as pd

from core.health.base import WARNING, Check, Context, register

CACHE_RULES = [
    "warning if the cache backend cannot be read (pages then compute every value themselves)",
]


@register(
    "cache",
    "Cache",
    shows="backend, keys, hits and misses per namespace",
    rules=CACHE_RULES,
    needs_database=False,
    order=80,
)
def check_cache(ctx: Context, check: Check) -> None:
    from core.infra.cache import CacheUnavailable, get_cache

    cache = ctx.cache or get_cache()
    check.facts["backend"] = cache.backend_name
    try:
        stats = cache.stats()
    except CacheUnavailable as exc:
        check.raise_to(WARNING, exc.reason)
        check.summary = f"{cache.backend_name} cache unavailable; values are computed on every read ({exc.reason})"
        return
    frame = pd.DataFrame(
        [s.as_dict() for s in stats], columns=["namespace", "ttl_s", "keys", "hits", "misses", "hit_rate"]
    )
    check.tables["namespaces"] = frame
    hits, misses = int(frame["hits"].sum()), int(frame["misses"].sum())
    check.facts.update({"keys": int(frame["keys"].sum()), "hits": hits, "misses": misses})
    rate = f", hit rate {hits / (hits + misses):.0%}" if hits + misses else ""
    check.summary = f"{cache.backend_name}, {int(frame['keys'].sum())} keys in {len(frame)} namespaces{rate}"
    return
