"""Turning errors into one readable line for the screen (details go to the log, never a traceback)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import streamlit as st

from core.errors import AutoIndexError, ImportValidationError, ValidationFailed

log = logging.getLogger("ui")


def message_for(exc: BaseException) -> str:
    """One line an analyst can act on."""
    if isinstance(exc, ValidationFailed):
        return "Please correct: " + "; ".join(f"{k.replace('_', ' ')} {v}" for k, v in exc.errors.items())
    if isinstance(exc, ImportValidationError):
        return f"The file was refused: {len(exc.rows)} problem(s) found; nothing was imported."
    if isinstance(exc, AutoIndexError):
        return exc.message.splitlines()[0] if exc.message else type(exc).__name__
    return "Something went wrong; the details are in the server log."


def show_error(exc: BaseException) -> None:
    """Draw ``exc`` as one st.error line; log unexpected errors with their traceback."""
    if isinstance(exc, AutoIndexError):
        log.info("%s: %s", type(exc).__name__, exc)
    else:
        log.exception("unexpected error in the UI", exc_info=exc)
    st.error(message_for(exc))


@contextlib.contextmanager
def shown_errors() -> Iterator[None]:
    """``with shown_errors(): ...`` turns any failure inside into one readable error line."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - the point is never to show a traceback
        show_error(exc)
