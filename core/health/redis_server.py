"""The Redis card (when ``REDIS_URL`` is set): reachable, version, memory."""

from __future__ import annotations

import contextlib
import time

from core.config import get_settings, redact_url
from core.errors import one_line
from core.health.base import ERROR, INFO, WARNING, Check, Context, register

#: Used Redis memory above this fraction of maxmemory is a warning.
REDIS_MEMORY_WARN = 0.90


REDIS_RULES = [
    "not applicable when REDIS_URL is unset (in-process cache, SQLite job queue)",
    "error if REDIS_URL is set and Redis does not answer within 1 s",
    f"warning if used memory is above {REDIS_MEMORY_WARN:.0%} of maxmemory",
]


@register(
    "redis",
    "Redis",
    shows="reachable, version, round trip, memory, keys (when `REDIS_URL` is set)",
    rules=REDIS_RULES,
    needs_database=False,
    order=20,
)
def check_redis(ctx: Context, check: Check) -> None:
    url = get_settings().redis_url
    if not url:
        check.status = INFO
        check.summary = "not configured: the cache is in-process and jobs use the SQLite queue"
        return
    import redis

    check.facts["url"] = redact_url(url)
    client = redis.Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=1.0)
    try:
        started = time.perf_counter()
        client.ping()
        latency = (time.perf_counter() - started) * 1000
        server = client.info("server")
        memory = client.info("memory")
        keyspace_keys = int(client.dbsize())
    except (redis.RedisError, OSError) as exc:
        check.raise_to(ERROR, f"unreachable: {one_line(exc)}")
        check.summary = f"unreachable at {redact_url(url)}: {one_line(exc)}"
        return
    finally:
        with contextlib.suppress(Exception):
            client.close()
    used = int(memory.get("used_memory") or 0)
    maxmemory = int(memory.get("maxmemory") or 0)
    check.facts.update(
        {
            "version": server.get("redis_version"),
            "round_trip_ms": round(latency, 2),
            "used_memory": memory.get("used_memory_human"),
            "maxmemory": maxmemory or None,
            "keys": keyspace_keys,
        }
    )
    if maxmemory and used > REDIS_MEMORY_WARN * maxmemory:
        check.raise_to(WARNING, f"used memory {used / maxmemory:.0%} of maxmemory")
    check.summary = (
        f"Redis {server.get('redis_version')}, {latency:.1f} ms round trip, "
        f"{memory.get('used_memory_human')} used, {keyspace_keys} keys"
    )
    return
