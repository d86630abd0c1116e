"""Logging set-up with a filter that masks secret values wherever they would appear."""

from __future__ import annotations

import logging
import re
import sys
from typing import TextIO

_configured = False


class SecretMaskFilter(logging.Filter):
    """Replace known secret values (API key, cookie key, URL passwords) in every record."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if s and len(s) >= 4]
        self._url_pw = re.compile(r"(\w+://[^:/@\s]+:)[^@\s]+@")

    def _mask(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return self._url_pw.sub(r"\1***@", text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        masked = self._mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


class _CurrentStderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever sys.stderr is at emit time (test runners and Streamlit swap it)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        return None


def configure_logging(level: str | None = None) -> None:
    """Configure the root logger once per process from LOG_LEVEL."""
    global _configured
    from core.config import get_settings

    settings = get_settings()
    root = logging.getLogger()
    root.setLevel(level or settings.log_level)
    if _configured:
        return
    handler = _CurrentStderrHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(SecretMaskFilter([settings.twelvedata_api_key or "", settings.cookie_key or ""]))
    root.addHandler(handler)
    for noisy in ("urllib3", "huey.consumer", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    _configured = True
