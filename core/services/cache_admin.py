"""The shared cache as administrators operate it: clear one namespace or all, checked and audited.

The cache itself is infrastructure (:mod:`core.infra.cache`); who may clear it and the audit record of each
clearing are business rules, so they live here (issue 13: core.infra imports no service).
"""

from __future__ import annotations

from typing import Any

from core.errors import AutoIndexError
from core.infra.cache import get_cache
from core.services import audit
from core.services.access import ADMIN_ONLY, check


def clear(namespace: str | None, *, actor: Any) -> int:
    """Clear one namespace (``None``: every namespace) of the shared cache as ``actor`` (admins only, checked on
    fresh state); the outcome is audited either way. Returns the number of keys deleted. Raises ValidationFailed
    for a bad namespace name and CacheUnavailable when the store is down."""
    by = check(actor, ADMIN_ONLY, action="clearing the cache").username
    cache = get_cache()
    action = "cache.clear" if namespace else "cache.clear_all"
    try:
        deleted = cache.clear(namespace) if namespace else cache.clear_all()
    except AutoIndexError as exc:
        audit.record_now(by, action, namespace, {"backend": cache.backend_name}, outcome="error", message=exc.message)
        raise
    audit.record_now(by, action, namespace, {"deleted": deleted, "backend": cache.backend_name})
    return deleted
