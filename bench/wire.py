"""What one browser action costs, seen on the Streamlit websocket: reruns, bytes, settled time, server CPU.

Used by ``bench/pages.py`` (per page and per action), ``bench/load.py`` (settled time under load) and
``tests/e2e/test_speed.py`` (a range or section toggle reruns only its fragment).

A :class:`Wire` listens to a Playwright page's websocket frames and decodes each message from the server as a
Streamlit ``ForwardMsg``:

* a **rerun** is one ``script_finished`` message; its status tells a whole-app run (``FINISHED_SUCCESSFULLY``)
  from a fragment run (``FINISHED_FRAGMENT_RUN_SUCCESSFULLY``) and a run cut short by the next one
  (``FINISHED_EARLY_FOR_RERUN``; its run identity's fragment ids tell a cut fragment run from a cut page run);
* **bytes** are the sizes of the frames received (what the browser downloads for the action; Streamlit's
  message cache replaces a repeated large element by its hash, and that is counted as what it is);
* an action is **settled** when the last run it caused has finished, every chart on the page is drawn, and
  neither the websocket nor any chart has changed for :data:`QUIET_S`. The settled time is measured to the last
  frame, the poll that first saw every chart drawn, or the last change inside a chart (:data:`CHART_WATCH`, a
  ``MutationObserver`` installed before the page's scripts: Streamlit's chart component draws each chart again a
  moment after mounting it, and a replot then was missed), whichever came latest (the quiet window itself is not
  counted; a poll waits while the browser's main thread draws, so this is the moment the drawing was done);
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
#: JavaScript run before the page's own scripts: remembers when anything inside a chart last changed (epoch ms).
CHART_WATCH = (
    "window.__aiChartChanged = 0; new MutationObserver(ms => { for (const m of ms) {"
    " const el = m.target.nodeType === 1 ? m.target : m.target.parentElement;"
    " if (el && el.closest && el.closest(\"[data-testid='stPlotlyChart']\")"
    " && !el.closest('.st-key-chart_preload')) { window.__aiChartChanged = Date.now(); break; } } })"
    ".observe(document, {subtree: true, childList: true, attributes: true, characterData: true});"
)
#: JavaScript: [charts shown on the page, those that have drawn their SVG, when a chart last changed (epoch ms)]. A
#: chart in a tab nobody opened is not shown and not drawn (ui/plotly_element.py draws it when the tab opens).
#: The login screen's invisible chart that loads the Plotly library ahead (ui/auth.py) is not a chart a person sees.
CHARTS_DRAWN = (
    "() => { const c = Array.from(document.querySelectorAll(\"[data-testid='stPlotlyChart']\"))"
    ".filter(e => !e.closest('.st-key-chart_preload') && e.getClientRects().length);"
    " return [c.length, c.filter(e => e.querySelector('.main-svg')).length, window.__aiChartChanged || 0]; }"
)

_STATUS = {0: "app", 2: "cut", 3: "fragment"}


def _finished_kind(msg: Any) -> str:
    """What a ``script_finished`` message ends: ``app``, ``fragment``, ``cut`` (a whole-app run cut short by the
    next request), ``cut fragment`` (a fragment run cut short: a component reporting twice) or ``other``."""
    kind = _STATUS.get(int(msg.script_finished), "other")
    if kind == "cut" and msg.metadata.run.fragment_ids:
        return "cut fragment"
    return kind


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
    #: fragment runs cut short by the next request (``cut_runs`` counts whole-app runs cut short)
    cut_fragment_runs: int = 0

    @property
    def reruns(self) -> int:
        return self.app_runs + self.fragment_runs + self.cut_runs + self.cut_fragment_runs

    def line(self) -> str:
        chart = "" if self.first_chart_s is None else f"  first chart {self.first_chart_s:5.2f} s"
        if self.server_done_s is not None:
            chart = f"  runs done {self.server_done_s:5.2f} s" + chart
        return (
            f"{self.name:<32} settled {self.settled_s:6.2f} s{chart}  runs app={self.app_runs} "
            f"fragment={self.fragment_runs} cut={self.cut_runs}"
            + (f" cut fragment={self.cut_fragment_runs}" if self.cut_fragment_runs else "")
            + f"  received {self.bytes_in / 1024:8.1f} KiB  "
            f"server CPU {self.server_cpu_s:5.2f} s" + ("  TIMED OUT" if self.timed_out else "")
        )


@dataclass
class Wire:
    """Frames seen on one page's Streamlit websocket since :meth:`mark`."""

    server_pid: int | None = None
    frames: list[tuple[float, int, str | None]] = field(default_factory=list)  # (time, bytes, run kind or None)
    _t0: float = 0.0
    _t0_epoch: float = 0.0
    _cpu0: float = 0.0

    def attach(self, page: Any) -> Wire:
        """Listen to every websocket the page opens and watch its charts (sync Playwright; call before
        ``page.goto``)."""
        page.on("websocket", self._on_socket)
        page.add_init_script(CHART_WATCH)
        return self

    async def aattach(self, page: Any) -> Wire:
        """:meth:`attach` for the async Playwright API."""
        page.on("websocket", self._on_socket)
        await page.add_init_script(CHART_WATCH)
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
                    kind = _finished_kind(msg)
            except Exception:  # noqa: BLE001 - a frame we cannot decode still counts as bytes
                kind = None
        self.frames.append((time.monotonic(), len(payload), kind))

    def mark(self) -> None:
        """Start measuring an action now."""
        self._t0 = time.monotonic()
        self._t0_epoch = time.time()
        self._cpu0 = server_cpu_s(self.server_pid)

    def _since(self) -> list[tuple[float, int, str | None]]:
        return [f for f in list(self.frames) if f[0] >= self._t0]

    def _ready(self, expect_run: bool) -> tuple[bool, float]:
        frames = self._since()
        last = frames[-1][0] if frames else self._t0
        finished = any(f[2] in ("app", "fragment") for f in frames) or not expect_run
        return finished and time.monotonic() - last >= QUIET_S, last

    def _poll(self, counts: Any, progress: dict[str, float | None], min_charts: int) -> bool:
        total, drawn, changed_ms = (int(v) for v in counts)
        now = time.monotonic()
        if drawn and progress["first_chart"] is None:
            progress["first_chart"] = now - self._t0
        complete = drawn == total and total >= min_charts
        if not complete:
            progress["pending"] = 1.0
        elif progress.get("pending"):  # every chart drawn now, and not at the poll before: drawn by this poll
            progress["drawn_at"], progress["pending"] = now, None
        if changed_ms / 1000 > self._t0_epoch:  # a chart changed after the action started
            progress["changed"] = changed_ms / 1000 - self._t0_epoch
            if time.time() - changed_ms / 1000 < QUIET_S:
                return False  # still drawing: settled once the charts have been still for the quiet window
        return complete

    def _step(self, name: str, last_frame: float, progress: dict[str, float | None], timed_out: bool) -> Step:
        frames = self._since()
        kinds = [f[2] for f in frames]
        drawn_at = progress["drawn_at"] or self._t0
        done = [f[0] for f in frames if f[2] in ("app", "fragment")]
        return Step(
            name,
            max(last_frame - self._t0, drawn_at - self._t0, progress.get("changed") or 0.0),
            kinds.count("app"),
            kinds.count("fragment"),
            kinds.count("cut"),
            sum(f[1] for f in frames),
            server_cpu_s(self.server_pid) - self._cpu0,
            timed_out,
            progress["first_chart"],
            done[-1] - self._t0 if done else None,
            kinds.count("cut fragment"),
        )

    def settle(
        self, page: Any, name: str, *, timeout_s: float = 60.0, expect_run: bool = True, min_charts: int = 0
    ) -> Step:
        """Wait (sync Playwright) until the action started at :meth:`mark` has settled (with at least
        ``min_charts`` charts drawn); return its figures."""
        deadline = time.monotonic() + timeout_s
        progress: dict[str, float | None] = {"first_chart": None, "drawn_at": None, "pending": None, "changed": None}
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
        progress: dict[str, float | None] = {"first_chart": None, "drawn_at": None, "pending": None, "changed": None}
        while True:
            drawn = self._poll(await page.evaluate(CHARTS_DRAWN), progress, min_charts)
            ready, last = self._ready(expect_run)
            ready = ready and drawn
            if ready or time.monotonic() > deadline:
                return self._step(name, last, progress, not ready)
            await page.wait_for_timeout(POLL_S * 1000)


# --------------------------------------------------------------------------- a browser's messages, recorded and replayed
def rerun_request(payload: Any) -> bool:
    """Whether a frame a browser sent is a ``BackMsg`` asking for a run (``rerun_script``): a page load, a widget
    change, a navigation, a fragment's widget, a component's report. Not a fragment's own timer (``run_every``):
    a replayed session has timers of its own."""
    from streamlit.proto.BackMsg_pb2 import BackMsg

    if not isinstance(payload, (bytes, bytearray)):
        return False
    msg = BackMsg()
    try:
        msg.ParseFromString(bytes(payload))
    except Exception:  # noqa: BLE001 - not a BackMsg we know
        return False
    return msg.WhichOneof("type") == "rerun_script" and not msg.rerun_script.is_auto_rerun


@dataclass
class Recording:
    """What one browser sent, action by action: ``steps`` is a list of (action name, its run requests in order).

    Recorded with :meth:`attach` on a Playwright page and :meth:`mark` before each action; replayed by
    :class:`WireClient` (bench/load.py ``--client wire``), so a replayed session sends what a browser sends."""

    username: str = ""
    steps: list[tuple[str, list[bytes]]] = field(default_factory=list)

    def attach(self, page: Any) -> Recording:
        page.on("websocket", self._on_socket)
        return self

    def _on_socket(self, socket: Any) -> None:
        if "_stcore/stream" in socket.url:
            socket.on("framesent", self._on_sent)

    def _on_sent(self, payload: Any) -> None:
        if rerun_request(payload) and self.steps:
            self.steps[-1][1].append(bytes(payload))

    def mark(self, name: str) -> None:
        """The requests sent from now on belong to action ``name``."""
        self.steps.append((name, []))


def _patched(payload: bytes, old_username: str, username: str, hashes: list[str]) -> bytes:
    """A recorded request as this client sends it: the recorded user name typed as ``username``, and the message
    hashes this client holds (a browser tells the server which large messages it has cached)."""
    from streamlit.proto.BackMsg_pb2 import BackMsg

    msg = BackMsg()
    msg.ParseFromString(payload)
    state = msg.rerun_script
    for widget in state.widget_states.widgets:
        if widget.WhichOneof("value") == "string_value" and widget.string_value == old_username and old_username:
            widget.string_value = username
    del state.cached_message_hashes[:]
    state.cached_message_hashes.extend(hashes)
    return msg.SerializeToString()


class WireClient:
    """One session at the Streamlit websocket level, replaying a :class:`Recording` (asyncio, ``websockets``).

    It opens ``/_stcore/stream`` as the browser does (subprotocol ``streamlit``), sends each recorded run request
    after the run before it finished (a browser sends the next one after drawing the last), and keeps the hashes
    of the cacheable messages it received, as a browser's message cache does. A step is settled when the run its
    last request caused has finished: the server's part of what a person waits for; no drawing is measured."""

    def __init__(self, base_url: str, username: str, recording: Recording) -> None:
        self.url = base_url.replace("http://", "ws://").rstrip("/") + "/_stcore/stream"
        self.username = username
        self.recording = recording
        self.frames: list[tuple[float, int, str | None]] = []
        self.hashes: dict[str, None] = {}
        self.exceptions = 0
        self.texts: list[bytes] = []
        self._socket: Any = None
        self._reader_task: Any = None
        self._event: Any = None

    async def __aenter__(self) -> WireClient:
        import asyncio

        import websockets

        self._event = asyncio.Event()
        self._socket = await websockets.connect(
            self.url,
            subprotocols=["streamlit"],
            max_size=None,  # type: ignore[list-item]
            open_timeout=90,
            ping_interval=None,
        )
        self._reader_task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._socket is not None:
            await self._socket.close()
        if self._reader_task is not None:
            self._reader_task.cancel()

    async def _read(self) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        async for payload in self._socket:
            msg = ForwardMsg()
            kind = None
            try:
                msg.ParseFromString(payload)
                which = msg.WhichOneof("type")
                if which == "script_finished":
                    kind = _finished_kind(msg)
                elif which == "delta" and msg.delta.WhichOneof("type") == "new_element":
                    element = msg.delta.new_element
                    if element.WhichOneof("type") == "exception":
                        self.exceptions += 1
                    elif element.WhichOneof("type") == "heading":
                        self.texts.append(element.heading.body.encode())
                if msg.hash and msg.metadata.cacheable:
                    self.hashes[msg.hash] = None
            except Exception:  # noqa: BLE001 - counted as bytes
                kind = None
            self.frames.append((time.monotonic(), len(payload), kind))
            if kind in ("app", "fragment", "cut", "cut fragment", "other"):
                self._event.set()

    async def _finished_after(self, since: float, timeout_s: float) -> bool:
        import asyncio

        deadline = time.monotonic() + timeout_s
        while True:
            if any(f[0] >= since and f[2] in ("app", "fragment", "other") for f in list(self.frames)):
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._event.clear()
            try:
                await asyncio.wait_for(self._event.wait(), timeout=min(remaining, 1.0))
            except TimeoutError:
                pass

    async def step(self, name: str, *, timeout_s: float = 90.0) -> Step:
        """Replay the recorded action ``name``; its figures (server CPU is not per session here: 0)."""
        requests = next(r for n, r in self.recording.steps if n == name)
        t0 = time.monotonic()
        timed_out = False
        for request in requests:
            sent = time.monotonic()
            await self._socket.send(_patched(request, self.recording.username, self.username, list(self.hashes)))
            if not await self._finished_after(sent, timeout_s - (sent - t0)):
                timed_out = True
                break
        frames = [f for f in list(self.frames) if f[0] >= t0]
        kinds = [f[2] for f in frames]
        done = [f[0] for f in frames if f[2] in ("app", "fragment", "other")]
        end = done[-1] if done and not timed_out else time.monotonic()
        return Step(
            name,
            end - t0,
            kinds.count("app"),
            kinds.count("fragment"),
            kinds.count("cut"),
            sum(f[1] for f in frames),
            0.0,
            timed_out,
            None,
            end - t0,
            kinds.count("cut fragment"),
        )
