"""The chart element's server side (ui/plotly_element.py): what it sends and the Plotly bundle it serves."""

from __future__ import annotations

import base64
import json
import os

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import streamlit  # noqa: F401 - registers the Streamlit placeholder template as Plotly's default, as in the app

from ui import plotly_element


def test_the_spec_drops_only_the_placeholder_template_and_leaves_the_shared_figure_alone() -> None:
    fig = go.Figure(go.Scatter(x=["2024-01-02", "2024-01-03"], y=np.array([1.5, 2.25]), name="Index"))
    fig.update_layout(title={"text": "Index vs benchmark"}, height=360, margin={"l": 61})
    assert fig.layout.template is not None and fig.layout.template.layout.colorway  # Streamlit's placeholders
    before = fig.to_json()
    sent = json.loads(plotly_element.spec(fig))
    assert "template" not in sent["layout"]
    assert fig.to_json() == before  # a cached figure is shared by every session: never changed
    full = json.loads(before)
    full["layout"].pop("template")
    assert sent == full  # everything else exactly as the figure says (values, title, margins)
    y = sent["data"][0]["y"]  # Plotly's typed-array form: base64 of little-endian float64, as plotly.js reads it
    values = np.frombuffer(base64.b64decode(y["bdata"]), dtype=np.dtype(y["dtype"]).newbyteorder("<"))
    assert values.tolist() == [1.5, 2.25] and sent["layout"]["margin"]["l"] == 61


def test_the_bundle_is_the_pinned_plotly_copied_once_and_replaced_when_wrong(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(plotly_element, "STATIC_DIR", tmp_path / "static")
    target = plotly_element.ensure_bundle()
    assert target.read_bytes() == plotly_element.PLOTLY_BUNDLE.read_bytes()
    assert target.name == plotly_element.PLOTLY_URL.rsplit("/", 1)[1]
    os.utime(target, (1, 1))
    plotly_element.ensure_bundle()
    assert target.stat().st_mtime == 1  # already there: not copied again
    target.write_bytes(b"truncated")  # a half-copied or stale file is replaced
    plotly_element.ensure_bundle()
    assert target.read_bytes() == plotly_element.PLOTLY_BUNDLE.read_bytes()
    assert not list(target.parent.glob("*.partial"))


def test_the_bundle_url_follows_the_base_url_path(monkeypatch) -> None:
    options = {"server.baseUrlPath": "/autoindex/"}
    monkeypatch.setattr(plotly_element.st, "get_option", lambda name: options[name])
    assert plotly_element._url() == "/autoindex/" + plotly_element.PLOTLY_URL
    options["server.baseUrlPath"] = ""
    assert plotly_element._url() == "/" + plotly_element.PLOTLY_URL


def test_figure_of_reads_only_this_element_and_skips_the_preload() -> None:
    class Proto:
        def __init__(self, name: str, data: object) -> None:
            self.component_name, self.json = name, json.dumps(data)

    class Element:
        def __init__(self, proto: Proto) -> None:
            self.proto = proto

    fig = go.Figure(go.Bar(x=[1], y=[2]))
    sent = plotly_element.spec(fig)
    assert plotly_element.figure_of(Element(Proto(plotly_element.NAME, {"spec": sent}))) == json.loads(sent)
    assert plotly_element.figure_of(Element(Proto(plotly_element.NAME, {"spec": None, "url": "x"}))) is None
    assert plotly_element.figure_of(Element(Proto("another_component", {"spec": sent}))) is None
    assert json.loads(pio.to_json(fig))["data"] == json.loads(sent)["data"]


def test_serve_stops_with_a_named_error_when_the_bundle_cannot_be_placed(monkeypatch, capsys) -> None:
    import argparse

    from cli import serve

    def unwritable() -> None:
        raise PermissionError(13, "Permission denied", str(plotly_element.STATIC_DIR))

    monkeypatch.setattr(plotly_element, "ensure_bundle", unwritable)
    started = []
    monkeypatch.setattr("ui.monitoring.start_process", lambda: started.append(True))
    assert serve.cmd_serve(argparse.Namespace(streamlit_args=[])) == 2
    err = capsys.readouterr().err
    assert "Plotly bundle" in err and "Permission denied" in err and str(plotly_element.STATIC_DIR) in err
    assert not started  # nothing else started


def _copy_at_once(static_dir: str, barrier, results) -> None:  # type: ignore[no-untyped-def]
    from pathlib import Path

    plotly_element.STATIC_DIR = Path(static_dir)
    barrier.wait()
    try:
        plotly_element.ensure_bundle()
        results.put("ok")
    except Exception as exc:  # noqa: BLE001 - reported to the test
        results.put(repr(exc))


def test_processes_starting_at_once_each_place_a_whole_bundle(tmp_path) -> None:
    import multiprocessing

    context = multiprocessing.get_context("fork")
    for attempt in range(5):
        static = tmp_path / f"static-{attempt}"
        barrier, results = context.Barrier(4), context.Queue()
        workers = [context.Process(target=_copy_at_once, args=(str(static), barrier, results)) for _ in range(4)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
        assert sorted(results.get(timeout=5) for _ in workers) == ["ok"] * 4
        target = static / plotly_element.PLOTLY_FILE
        assert target.read_bytes() == plotly_element.PLOTLY_BUNDLE.read_bytes()
        assert [p.name for p in static.iterdir()] == [target.name]  # no temporary file left
