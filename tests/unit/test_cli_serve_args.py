"""Only the command position makes ``serve``: the word as an option's value splits nothing (an attack found
``--set serve`` dropping ``--percent`` and ``--user serve`` dropping ``--wait``)."""

from __future__ import annotations

import pytest

from cli import build_parser, split_serve_args


@pytest.mark.parametrize(
    "argv",
    [
        ["import-factors", "f.csv", "--set", "serve", "--percent"],
        ["jobs", "enqueue", "compute", "--user", "serve", "--wait", "--timeout", "5"],
        ["jobs", "enqueue", "--user", "serve", "compute"],
        ["report", "--type", "performance", "--period", "YTD", "--format", "csv", "--out", "serve", "--config", "9"],
        ["jobs", "list", "--user", "serve", "--limit", "1"],
        ["create-user", "serve", "--role", "admin", "--password-stdin"],
    ],
)
def test_serve_as_a_value_is_only_a_value(argv) -> None:  # type: ignore[no-untyped-def]
    ours, streamlit = split_serve_args(list(argv))
    assert ours == argv and streamlit == []
    build_parser().parse_args(ours)  # and every option still reaches its command


def test_serve_passes_what_follows_to_streamlit() -> None:
    assert split_serve_args(["serve", "--server.port", "8501"]) == (["serve"], ["--server.port", "8501"])
    assert split_serve_args(["--log-level", "DEBUG", "serve", "--server.headless", "true"]) == (
        ["--log-level", "DEBUG", "serve"],
        ["--server.headless", "true"],
    )
    assert split_serve_args(["--log-level=INFO", "serve"]) == (["--log-level=INFO", "serve"], [])
    assert split_serve_args(["serve", "--", "--server.port", "1"]) == (["serve"], ["--server.port", "1"])
    assert split_serve_args(["serve", "--server.port", "1", "--help"]) == (["serve", "--help"], [])
    args = build_parser().parse_args(["serve"])
    assert args.command == "serve" and args.streamlit_args == []


def test_the_log_level_given_to_serve_is_the_one_every_page_run_configures(monkeypatch) -> None:
    """Home.py calls configure_logging() (LOG_LEVEL) on every page run: `--log-level DEBUG serve` must become
    LOG_LEVEL, or the flag would hold only until the first visit (found by the attack on serve)."""
    import cli
    from cli import serve
    from core.config import get_settings, reset_settings_cache

    monkeypatch.setenv("LOG_LEVEL", "INFO")
    reset_settings_cache()
    seen = {}

    def started(args):  # type: ignore[no-untyped-def]  # the server itself is test_serve.py's subject
        seen["level"] = get_settings().log_level
        return 0

    monkeypatch.setattr(serve, "cmd_serve", started)
    try:
        assert cli.main(["--log-level", "DEBUG", "serve", "--server.port", "1"]) == 0
    finally:
        reset_settings_cache()
    assert seen["level"] == "DEBUG"


def test_the_start_up_runs_once_per_process_and_database_and_again_after_a_failure(monkeypatch) -> None:
    """serve's start-up thread and Home.py's first page run share bootstrap.start_up_once: the second finds the
    first's report; a failed start-up is tried again by the next caller."""
    from core.services import bootstrap

    calls: list[int] = []

    def start_up() -> dict[str, object]:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database not there yet")
        return {"head": "abc"}

    monkeypatch.setattr(bootstrap, "start_up", start_up)
    monkeypatch.setattr(bootstrap, "_started", {})
    with pytest.raises(RuntimeError):
        bootstrap.start_up_once()
    assert bootstrap.start_up_once() == {"head": "abc"}
    assert bootstrap.start_up_once() == {"head": "abc"} and len(calls) == 2
