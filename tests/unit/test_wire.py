"""bench/wire.py tells the runs apart as Streamlit reports them (a cut fragment run is not a cut page run)."""

from __future__ import annotations

import pytest
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from bench.wire import Wire, _finished_kind


def _finished(status: int, fragment_ids: tuple[str, ...] = ()) -> ForwardMsg:
    msg = ForwardMsg()
    msg.script_finished = status  # type: ignore[assignment]
    msg.metadata.run.script_run_id = "run-1"
    msg.metadata.run.fragment_ids.extend(fragment_ids)
    return msg


@pytest.mark.parametrize(
    "status, fragments, kind",
    [
        (ForwardMsg.FINISHED_SUCCESSFULLY, (), "app"),
        (ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY, ("f1",), "fragment"),
        (ForwardMsg.FINISHED_EARLY_FOR_RERUN, (), "cut"),
        (ForwardMsg.FINISHED_EARLY_FOR_RERUN, ("f1",), "cut fragment"),
        (ForwardMsg.FINISHED_WITH_COMPILE_ERROR, (), "other"),
    ],
)
def test_each_finished_run_is_counted_as_what_it_was(status, fragments, kind):
    assert _finished_kind(_finished(status, fragments)) == kind


def test_a_step_counts_cut_page_runs_apart_from_cut_fragment_runs():
    wire = Wire()
    wire.mark()
    for msg in (
        _finished(ForwardMsg.FINISHED_SUCCESSFULLY),
        _finished(ForwardMsg.FINISHED_EARLY_FOR_RERUN, ("cookie",)),
        _finished(ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY, ("cookie",)),
    ):
        wire._on_frame(msg.SerializeToString())
    step = wire._step("login", 0.0, {"first_chart": None, "drawn_at": None, "changed": None}, False)
    assert (step.app_runs, step.fragment_runs, step.cut_runs, step.cut_fragment_runs) == (1, 1, 0, 1)
    assert step.reruns == 3
