"""Rate limits per user on expensive actions, over the ``limits`` library.

Each action has a limit in the settings (``RATE_LIMIT_PREVIEW="60/minute"``, several joined with ``;``, "off"
to disable; see the README's configuration table):

==================  ==========================================================  =========================
action              where it is counted                                         identity
==================  ==========================================================  =========================
``preview``         a Strategy-lab backtest that is not cached yet               the user
``report``          ``core.services.reports.request_report``                     the user
``job``             ``core.services.tasks.enqueue`` (a report request also       the user
                    queues one job)
``sweep``           ``core.services.sweeps.start``                               the user
``login_user``      ``core.services.users.authenticate``                         the user name typed
``login_address``   ``core.services.users.authenticate`` (the browser's address  the client address
                    where Streamlit exposes it)
==================  ==========================================================  =========================

The window is a *moving* window (``limits.strategies.MovingWindowRateLimiter``): at most N actions in any
period of the given length, so a burst at the end of one minute and the start of the next is still N. A refused
action raises :class:`RateLimited`, which says when the oldest counted action leaves the window (the earliest
moment one more is allowed).

Storage: Redis when ``REDIS_URL`` is set (keys ``autoindex:ratelimit/...``, shared by every app replica and
worker), else memory (per process). The system itself (the command line, jobs, the scheduler: identity
``None`` or a principal with ``is_system``) is never limited. When Redis does not answer, the action is allowed
and a warning logged: a limit protects capacity and must not take the app down with the cache server (the
lockout of accounts lives in the database and does not depend on this).

The ``limits`` library reads the clock itself (``time.time``); tests use short windows instead of an injected
clock.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import MovingWindowRateLimiter

from core.config import Settings, get_settings
from core.errors import AutoIndexError

log = logging.getLogger(__name__)

#: Prefix of every Redis key this module writes (the test suites remove ``autoindex:*``).
KEY_PREFIX = "autoindex:ratelimit"
#: Words used in messages, per action.
ACTION_NOUNS = {
    "preview": "previews",
    "report": "report requests",
    "job": "queued jobs",
    "sweep": "sweeps",
    "login_user": "login attempts for this user",
    "login_address": "login attempts from this address",
}
SETTING_OF = {action: f"rate_limit_{action}" for action in ACTION_NOUNS}


class RateLimited(AutoIndexError):
    """An action was refused because its rate limit is used up.

    Fields: ``action`` (``preview``, ``report`` ...), ``limit`` (the limit that was hit, e.g. ``60 per 1
    minute``) and ``retry_after_s`` (whole seconds until one more action is allowed, at least 1)."""

    transient = True

    def __init__(self, action: str, limit: str, retry_after_s: int) -> None:
        noun = ACTION_NOUNS.get(action, action)
        super().__init__(f"too many {noun} (at most {limit}); try again in {_duration(retry_after_s)}")
        self.action = action
        self.limit = limit
        self.retry_after_s = retry_after_s


def _duration(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minutes"


def _describe(item: RateLimitItem) -> str:
    multiples = item.multiples or 1
    unit = item.GRANULARITY.name
    return f"{item.amount} per {multiples} {unit}{'s' if multiples != 1 else ''}"


@dataclass(frozen=True)
class _Rule:
    text: str
    items: tuple[RateLimitItem, ...]


class RateLimiter:
    """Limits per action and identity over one ``limits`` storage (memory or Redis).

    Args:
        storage: a ``limits`` storage supporting moving windows (``MemoryStorage``, ``RedisStorage``).
        rules: action -> limit text in ``limits`` notation, or None for no limit.
    """

    def __init__(self, storage: Storage, rules: dict[str, str | None]) -> None:
        self.storage = storage
        self.strategy = MovingWindowRateLimiter(storage)
        self.rules = {action: _Rule(text, tuple(parse_many(text))) for action, text in rules.items() if text}

    @property
    def backend(self) -> str:
        """``redis`` or ``memory``."""
        return "redis" if isinstance(self.storage, RedisStorage) else "memory"

    def hit(self, action: str, identity: str, *, cost: int = 1) -> None:
        """Count one ``action`` by ``identity``; raise :class:`RateLimited` (counting nothing) when any of the
        action's limits is used up. An action without a configured limit is always allowed."""
        rule = self.rules.get(action)
        if rule is None:
            return
        for item in rule.items:  # a limit already used up refuses before anything is counted
            if not self.strategy.test(item, action, identity, cost=cost):
                raise RateLimited(action, _describe(item), self.retry_after(item, action, identity))
        for item in rule.items:  # the hit itself is atomic per limit (a Lua script on Redis)
            if not self.strategy.hit(item, action, identity, cost=cost):  # used up meanwhile by another process
                raise RateLimited(action, _describe(item), self.retry_after(item, action, identity))

    def check(self, action: str, identity: str, *, cost: int = 1) -> None:
        """Raise :class:`RateLimited` when ``action`` by ``identity`` would be refused now, counting nothing (an
        action that writes before the step that counts it asks first, so that a refusal leaves no row behind)."""
        rule = self.rules.get(action)
        for item in rule.items if rule else ():
            if not self.strategy.test(item, action, identity, cost=cost):
                raise RateLimited(action, _describe(item), self.retry_after(item, action, identity))

    def retry_after(self, item: RateLimitItem, action: str, identity: str) -> int:
        """Whole seconds until ``item`` allows one more action by ``identity`` (at least 1)."""
        stats = self.strategy.get_window_stats(item, action, identity)
        return max(1, math.ceil(stats.reset_time - time.time()))

    def remaining(self, action: str, identity: str) -> int | None:
        """Actions still allowed now under the tightest limit (None: unlimited)."""
        rule = self.rules.get(action)
        if rule is None:
            return None
        return min(self.strategy.get_window_stats(item, action, identity).remaining for item in rule.items)

    def clear(self, action: str, identity: str) -> None:
        """Forget every counted ``action`` of ``identity`` (an administrator's relief, tests)."""
        rule = self.rules.get(action)
        for item in rule.items if rule else ():
            self.strategy.clear(item, action, identity)


def build(settings: Settings) -> RateLimiter:
    """The limiter for ``settings``: Redis storage when REDIS_URL is set, memory otherwise."""
    rules = {action: getattr(settings, field) for action, field in SETTING_OF.items()}
    storage: Storage
    if settings.redis_url:
        storage = RedisStorage(
            settings.redis_url, key_prefix=KEY_PREFIX, socket_timeout=2.0, socket_connect_timeout=2.0
        )
    else:
        storage = MemoryStorage()
    return RateLimiter(storage, rules)


_lock = threading.Lock()
_current: tuple[Settings, RateLimiter] | None = None


def limiter() -> RateLimiter:
    """The process-wide limiter of the current settings (a new one when the settings were reloaded)."""
    global _current
    settings = get_settings()
    with _lock:
        if _current is None or _current[0] is not settings:
            _current = (settings, build(settings))
        return _current[1]


def identity_of(who: Any) -> str | None:
    """The identity counted for ``who``: a user name, a client address, or None for the system (a principal
    with ``is_system``, None)."""
    if who is None or getattr(who, "is_system", False):
        return None
    if isinstance(who, str):
        return who.strip().lower() or None
    name = getattr(who, "username", None)
    return str(name).lower() if name else None


def hit(action: str, who: Any) -> None:
    """Count ``action`` for ``who`` (see :func:`identity_of`); raise :class:`RateLimited` when used up.

    Storage failures (Redis down) allow the action and log a warning."""
    identity = identity_of(who)
    if identity is None:
        return
    try:
        limiter().hit(action, identity)
    except RateLimited:
        log.warning("rate limit: %s refused for %s", action, identity)
        raise
    except Exception as exc:  # noqa: BLE001 - a limiter that cannot count must not stop the action
        log.warning("rate limit: could not count %s (%s: %s); allowed", action, type(exc).__name__, exc)


def check(action: str, who: Any) -> None:
    """:func:`hit`'s refusal without counting: raise :class:`RateLimited` when ``action`` would be refused now.
    Storage failures allow (as in :func:`hit`)."""
    identity = identity_of(who)
    if identity is None:
        return
    try:
        limiter().check(action, identity)
    except RateLimited:
        log.warning("rate limit: %s refused for %s", action, identity)
        raise
    except Exception as exc:  # noqa: BLE001 - a limiter that cannot count must not stop the action
        log.warning("rate limit: could not check %s (%s: %s); allowed", action, type(exc).__name__, exc)
