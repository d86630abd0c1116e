"""What one browser action costs, seen on the Streamlit websocket: reruns, bytes, settled time, server CPU.

Used by ``bench/pages.py`` (per page and per action), ``bench/load.py`` (settled time under load) and
``tests/e2e/test_speed.py`` (a range or section toggle reruns only its fragment).

A :class:`Wire` listens to a Playwright page's websocket frames and decodes each message from the server as a
Streamlit ``ForwardMsg``:

* a **rerun** is one ``script_finished`` message; its status tells a whole-app run (``FINISHED_SUCCESSFULLY``)
  from a fragment run (``FINISHED_FRAGMENT_RUN_SUCCESSFULLY``) and a run cut short by the next one
  (``FINISHED_EARLY_FOR_RERUN``);
* **bytes** are the sizes of the frames received (what the browser downloads for the action; Streamlit's
  message cache replaces a repeated large element by its hash, and that is counted as what it is);
* an action is **settled** when the last run it caused has finished, every chart on the page is drawn, and the
  websocket has been quiet for :data:`QUIET_S`. The settled time is measured to the last frame or the poll that
  first saw every chart drawn, whichever came later (the quiet window itself is not counted; a poll waits while
  the browser's main thread draws, so this is the moment the drawing was done, not a poll before it);
* **runs done** is when the action's last run finished on the server (its ``script_finished`` frame arrived):
  the time after it is the browser's.

Server CPU is read from ``/proc/<pid>/stat`` (user + system time of the server process) around the action.

Both Playwright APIs are supported: :meth:`Wire.settle` (sync) and :meth:`Wire.asettle` (async).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

#: Seconds without a frame from the server after which an action counts as settled.
QUIET_S = 0.4
#: Polling interval while waiting for an action to settle, seconds.
POLL_S = 0.05
#: JavaScript: [charts on the page, charts that have drawn their SVG].
CHARTS_DRAWN = (
    "() => { const c = Array.from(document.querySelectorAll(\"[data-testid='stPlotlyChart']\"));"
    " return [c.length, c.filter(e => e.querySelector('.main-svg')).length]; }"
)

_STATUS = {0: "app", 2: "cut", 3: "fragment"}


def server_cpu_s(pid: int | None) -> float:
    """User + system CPU seconds used so far by process ``pid`` (0.0 when unknown)."""
    if not pid:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


@dataclass
class Step:
    """One user action: how long until settled, how many runs of each kind, bytes received, server CPU."""

    name: str
    settled_s: float
    app_runs: int
    fragment_runs: int
    cut_runs: int
    bytes_in: int
    server_cpu_s: float
    timed_out: bool = False
    first_chart_s: float | None = None  # seconds until the first chart was drawn (None: no chart)
    #: seconds until the server's last run for the action finished (its ``script_finished`` frame arrived): what
    #: follows is the browser drawing
    server_done_s: float | None = None

    @property
    def reruns(self) -> int:
        return self.app_runs + self.fragment_runs + self.cut_runs

    def line(self) -> str:
        chart = "" if self.first_chart_s is None else f"  first chart {self.first_chart_s:5.2f} s"
        if self.server_done_s is not None:
            chart = f"  runs done {self.server_done_s:5.2f} s" + chart
        return (
            f"{self.name:<32} settled {self.settled_s:6.2f} s{chart}  runs app={self.app_runs} "
            f"fragment={self.fragment_runs} cut={self.cut_runs}  received {self.bytes_in / 1024:8.1f} KiB  "
            f"server CPU {self.server_cpu_s:5.2f} s" + ("  TIMED OUT" if self.timed_out else "")
        )


@dataclass
class Wire:
    """Frames seen on one page's Streamlit websocket since :meth:`mark`."""

    server_pid: int | None = None
    frames: list[tuple[float, int, str | None]] = field(default_factory=list)  # (time, bytes, run kind or None)
    _t0: float = 0.0
    _cpu0: float = 0.0

    def attach(self, page: Any) -> Wire:
        """Listen to every websocket the page opens (call before ``page.goto``)."""
        page.on("websocket", self._on_socket)
        return self

    def _on_socket(self, socket: Any) -> None:
        if "_stcore/stream" in socket.url:
            socket.on("framereceived", self._on_frame)

    def _on_frame(self, payload: Any) -> None:
        kind = None
        if isinstance(payload, (bytes, bytearray)):
            from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

            msg = ForwardMsg()
            try:
                msg.ParseFromString(bytes(payload))
                if msg.WhichOneof("type") == "script_finished":
                    kind = _STATUS.get(int(msg.script_finished), "other")
            except Exception:  # noqa: BLE001 - a frame we cannot decode still counts as bytes
                kind = None
        self.frames.append((time.monotonic(), len(payload), kind))

    def mark(self) -> None:
        """Start measuring an action now."""
        self._t0 = time.monotonic()
        self._cpu0 = server_cpu_s(self.server_pid)

    def _since(self) -> list[tuple[float, int, str | None]]:
        return [f for f in list(self.frames) if f[0] >= self._t0]

    def _ready(self, expect_run: bool) -> tuple[bool, float]:
        frames = self._since()
        last = frames[-1][0] if frames else self._t0
        finished = any(f[2] in ("app", "fragment") for f in frames) or not expect_run
        return finished and time.monotonic() - last >= QUIET_S, last

    def _poll(self, counts: Any, progress: dict[str, float | None], min_charts: int) -> bool:
        total, drawn = (int(v) for v in counts)
        now = time.monotonic()
        if drawn and progress["first_chart"] is None:
            progress["first_chart"] = now - self._t0
        complete = drawn == total and total >= min_charts
        if not complete:
            progress["pending"] = 1.0
        elif progress.get("pending"):  # every chart drawn now, and not at the poll before: drawn by this poll
            progress["drawn_at"], progress["pending"] = now, None
        return complete

    def _step(self, name: str, last_frame: float, progress: dict[str, float | None], timed_out: bool) -> Step:
        frames = self._since()
        kinds = [f[2] for f in frames]
        drawn_at = progress["drawn_at"] or self._t0
        done = [f[0] for f in frames if f[2] in ("app", "fragment")]
        return Step(
            name,
            max(last_frame, drawn_at) - self._t0,
            kinds.count("app"),
            kinds.count("fragment"),
            kinds.count("cut"),
            sum(f[1] for f in frames),
            server_cpu_s(self.server_pid) - self._cpu0,
            timed_out,
            progress["first_chart"],
            done[-1] - self._t0 if done else None,
        )

    def settle(
        self, page: Any, name: str, *, timeout_s: float = 60.0, expect_run: bool = True, min_charts: int = 0
    ) -> Step:
        """Wait (sync Playwright) until the action started at :meth:`mark` has settled (with at least
        ``min_charts`` charts drawn); return its figures."""
        deadline = time.monotonic() + timeout_s
        progress: dict[str, float | None] = {"first_chart": None, "drawn_at": None, "pending": None}
        while True:
            drawn = self._poll(page.evaluate(CHARTS_DRAWN), progress, min_charts)
            ready, last = self._ready(expect_run)
            ready = ready and drawn
            if ready or time.monotonic() > deadline:
                return self._step(name, last, progress, not ready)
            page.wait_for_timeout(POLL_S * 1000)

    async def asettle(
        self, page: Any, name: str, *, timeout_s: float = 60.0, expect_run: bool = True, min_charts: int = 0
    ) -> Step:
        """:meth:`settle` for the async Playwright API."""
        deadline = time.monotonic() + timeout_s
        progress: dict[str, float | None] = {"first_chart": None, "drawn_at": None, "pending": None}
        while True:
            drawn = self._poll(await page.evaluate(CHARTS_DRAWN), progress, min_charts)
            ready, last = self._ready(expect_run)
            ready = ready and drawn
            if ready or time.monotonic() > deadline:
                return self._step(name, last, progress, not ready)
            await page.wait_for_timeout(POLL_S * 1000)
