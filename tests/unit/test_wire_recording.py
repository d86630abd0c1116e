"""bench/wire.py's recording keeps what a person's browser asked for: a widget change or a navigation is a run
request to replay; a fragment's own timer (``run_every``, the Tasks and Reports pages' live views) is not, since a
replayed session's server runs its own timers (recording them replayed each timer run once more per session)."""

from __future__ import annotations

from streamlit.proto.BackMsg_pb2 import BackMsg

from bench.wire import rerun_request


def _request(*, auto: bool, fragment_id: str = "") -> bytes:
    msg = BackMsg()
    msg.rerun_script.page_script_hash = "abc"
    msg.rerun_script.fragment_id = fragment_id
    msg.rerun_script.is_auto_rerun = auto
    return msg.SerializeToString()


def test_a_widget_change_is_recorded_and_a_fragment_timer_is_not() -> None:
    assert rerun_request(_request(auto=False))
    assert rerun_request(_request(auto=False, fragment_id="f1"))  # a fragment's widget: the person's action
    assert not rerun_request(_request(auto=True, fragment_id="f1"))  # the live view's one-second timer


def test_other_frames_are_not_run_requests() -> None:
    beat = BackMsg()
    beat.app_heartbeat = True
    assert not rerun_request(beat.SerializeToString())
    assert not rerun_request("a text frame")
    assert not rerun_request(b"\xff\xfe not a protobuf")
