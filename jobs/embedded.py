"""Placeholder: the embedded Huey consumer (replaced by the jobs work)."""


def ensure_started() -> None:
    """Start the in-app consumer once per process when REDIS_URL is unset (no-op for now)."""
    return None
