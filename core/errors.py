"""Domain errors for AutoIndex.

One root, :class:`AutoIndexError`; every subclass keeps its details as fields so
that entry points (pages, jobs, CLI) can turn them into one readable line while
logs keep the detail.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class AutoIndexError(Exception):
    """Root of every error AutoIndex raises on purpose."""

    #: ``True`` when retrying the same operation may succeed (network, 429, 5xx).
    transient: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.message


class ConfigurationError(AutoIndexError):
    """A setting (environment variable, secrets file) has a bad value."""

    def __init__(self, variable: str, message: str) -> None:
        super().__init__(f"{variable}: {message}")
        self.variable = variable


class DatabaseUnavailableError(AutoIndexError):
    """The database could not be reached within the retry budget."""

    transient = True

    def __init__(self, url_redacted: str, attempts: int, reason: str) -> None:
        super().__init__(f"database {url_redacted} unreachable after {attempts} attempts: {reason}")
        self.url = url_redacted
        self.attempts = attempts
        self.reason = reason


class DatabaseReadOnlyError(AutoIndexError):
    """The database refused a write because it is read-only: a read-only SQLite file or directory,
    ``PRAGMA query_only``, or a read-only PostgreSQL transaction (``default_transaction_read_only``,
    a hot standby). Not transient: retrying does not help until an operator fixes it."""

    def __init__(self, url_redacted: str, reason: str) -> None:
        super().__init__(f"database {url_redacted} is read-only: {reason}")
        self.url = url_redacted
        self.reason = reason


class ProviderError(AutoIndexError):
    """A market-data provider failed; ``symbol`` names the instrument when known."""

    def __init__(
        self,
        message: str,
        symbol: str | None = None,
        *,
        transient: bool = False,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        prefix = f"{symbol}: " if symbol else ""
        super().__init__(prefix + message)
        self.symbol = symbol
        self.transient = transient
        self.status = status
        self.retry_after = retry_after


@dataclass
class RowProblem:
    """One offending row of an import: 1-based ``row`` in the file (header is row 1)."""

    row: int | None
    column: str | None
    problem: str
    value: Any = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "column": self.column,
            "problem": self.problem,
            "value": None if self.value is None else str(self.value)[:80],
        }


class ImportValidationError(AutoIndexError):
    """An import was refused as a whole; ``rows`` lists every offending row found."""

    MAX_LISTED = 20

    def __init__(self, rows: list[RowProblem], source: str = "import") -> None:
        self.rows = rows
        self.source = source
        listed = "; ".join(
            (f"row {p.row}: " if p.row is not None else "") + (f"{p.column}: " if p.column else "") + p.problem
            for p in rows[: self.MAX_LISTED]
        )
        more = len(rows) - self.MAX_LISTED
        tail = f" (and {more} more)" if more > 0 else ""
        super().__init__(f"{source} refused, {len(rows)} problem(s): {listed}{tail}")


class ValidationFailed(AutoIndexError):
    """Input failed validation; ``errors`` maps a field name to its message."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


class NotFoundError(AutoIndexError):
    """A requested object does not exist (or is not visible to the caller)."""


class PermissionDenied(AutoIndexError):
    """The caller's role or ownership does not allow the action."""


class AuthenticationError(AutoIndexError):
    """Login failed: unknown user, wrong password, or a locked account."""

    def __init__(self, message: str, locked_until: Any = None) -> None:
        super().__init__(message)
        self.locked_until = locked_until


class AlreadyRunning(AutoIndexError):
    """A unit of work is already being done by someone else: ``lock`` names it (``refresh``, ``compute:3``),
    ``holder`` says who holds it (``"run 12 on host:4242"``, None when unknown) and ``waited_s`` how long the
    caller waited before giving up (None: it did not wait). Transient: trying again later may succeed."""

    transient = True

    def __init__(self, lock: str, holder: str | None = None, *, waited_s: float | None = None) -> None:
        who = f"held by {holder}" if holder else "holder unknown"
        waited = f"; gave up after waiting {waited_s:.1f} s" if waited_s is not None else ""
        super().__init__(f"{lock} is already running ({who}){waited}")
        self.lock = lock
        self.holder = holder
        self.waited_s = waited_s


# --------------------------------------------------------------------------- one line for a log, a card or a run
def _driver_error(exc: BaseException) -> BaseException | None:
    """The driver's exception inside a SQLAlchemy DBAPIError (``orig``, beside the ``statement`` it ran); None
    for anything else. Duck-typed: this module is imported by the pure layer, which never imports SQLAlchemy."""
    orig = getattr(exc, "orig", None)
    return orig if isinstance(orig, BaseException) and hasattr(exc, "statement") else None


def one_line(exc: BaseException, *, limit: int | None = 300) -> str:
    """``Type: first line of the message`` (``no detail`` when it is empty), at most ``limit`` characters.

    The reason shown when a service is unreachable (the queue, Redis, the cache, a health check). A database
    error is named by the driver's own exception: SQLAlchemy's text carries the SQL statement and its
    parameters, which belong in the logs only."""
    exc = _driver_error(exc) or exc
    lines = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {lines[0] if lines else 'no detail'}"
    return text if limit is None else text[:limit]


def error_text(exc: BaseException, *, limit: int = 2000) -> str:
    """The reason a job or a report failed, as users read it (the admin-only traceback keeps the rest).

    A domain error (:class:`AutoIndexError`) is its own message, written for users; a database error keeps only
    the driver's first line (``database error (OperationalError): ...``); anything else is ``Type: message``."""
    if isinstance(exc, AutoIndexError):
        text = str(exc)
    elif (orig := _driver_error(exc)) is not None:
        first = (str(orig).strip().splitlines() or [""])[0]
        text = f"database error ({type(exc).__name__}): {first or type(orig).__name__}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return text[:limit]
