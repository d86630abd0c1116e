"""Counts the generated cases of every fuzz test and prints the totals at the end of the run."""

from __future__ import annotations

import collections

import pytest

CASES: collections.Counter[str] = collections.Counter()


@pytest.fixture
def count_case(request):
    name = request.node.name

    def tick() -> None:
        CASES[name] += 1

    return tick


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # noqa: ARG001
    if CASES:
        terminalreporter.section("fuzz cases tried")
        for name, n in sorted(CASES.items()):
            terminalreporter.write_line(f"{n:6d}  {name}")
        terminalreporter.write_line(f"{sum(CASES.values()):6d}  total")


@pytest.fixture
def fast_bcrypt(monkeypatch):  # type: ignore[no-untyped-def]
    """bcrypt at cost 4 instead of 12 for a fuzz test about what the account fields accept (not about hashing:
    tests/security checks the cost): 150 generated users cost 45 s of hashing at cost 12."""
    import bcrypt

    from core.services import users

    real = bcrypt.gensalt
    monkeypatch.setattr(users.bcrypt, "gensalt", lambda rounds=12, prefix=b"2b": real(4, prefix))
    users._dummy_hash.cache_clear()
    yield
    users._dummy_hash.cache_clear()
