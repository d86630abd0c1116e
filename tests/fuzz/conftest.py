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
