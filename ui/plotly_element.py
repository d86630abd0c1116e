"""Plotly charts drawn by the app's own element: once per mount, updated in place (issue 17).

Why not ``st.plotly_chart``: measured in Chromium (the emit hook and Plotly's own events), Streamlit's chart
element draws every chart twice when it mounts it. Its width is unknown (-1) until a ResizeObserver reports, so the
first draw is made hidden at Plotly's default size and the second, a full recalculation, at the measured width
(and the theme it re-applies on mount is a new template object, which Plotly.react also treats as a full change).
And every change of the figure (a range or log-scale toggle) is a new element id, so the chart is unmounted and
drawn twice again. That second draw was a third to a half of a section switch's chart time.

This element (a Streamlit components-v2 element in the page itself, no iframe) draws into a div whose width is
known when its script runs, so a chart is drawn once; with a stable ``key`` the same div receives the next figure
and ``Plotly.react`` updates it in place; a rerun that sends the same figure draws nothing.

Plotly.js is the pinned ``plotly`` package's own bundle (``plotly/package_data/plotly.min.js``), served by
Streamlit's static file serving from ``static/`` (copied there on first import, named by version so a new pin is
a new URL). The look follows the app's theme in the browser: colours and font come from the ``--st-*`` CSS
properties Streamlit gives the element, read at each draw, so light, dark and a theme switch need no rerun; the
fixed colours :func:`ui.charts.for_dark` swaps, and the category colours given to traces that name none
(:func:`ui.charts.colorway`), still come from the server's view of the theme (:func:`dark_theme`). The modebar keeps
Plotly's tools and gains a full-screen button (Escape leaves it).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import plotly
import plotly.graph_objects as go
import plotly.io as pio
import streamlit as st

from core.infra.telemetry import add_bytes
from ui import charts

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
#: Streamlit serves ``<main script folder>/static`` at ``app/static`` (``server.enableStaticServing``).
STATIC_DIR = PROJECT_ROOT / "static"
PLOTLY_BUNDLE = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
PLOTLY_FILE = f"plotly-{plotly.__version__}.min.js"
PLOTLY_URL = f"app/static/{PLOTLY_FILE}"
#: The component's name (AppTest finds the charts by it: ``tests/app/conftest.py``).
NAME = "autoindex_plotly"
#: The key of the login screen's container (and, with ``_plot``, its empty element) that fetches Plotly while a
#: person types.
PRELOAD_KEY = "chart_preload"

_CSS = """
.ai-plot:fullscreen { background: var(--st-background-color, #fff); padding-top: 1rem; }
"""

_JS = r"""
function plotly(url) {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  if (!window.__aiPlotly) {
    window.__aiPlotly = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = new URL(url, document.baseURI).href;
      script.onload = () => resolve(window.Plotly);
      script.onerror = () => { window.__aiPlotly = undefined; reject(new Error("Plotly could not be loaded from " + url)); };
      document.head.appendChild(script);
    });
  }
  return window.__aiPlotly;
}

const templates = new Map();
const LOOK = ["--st-text-color", "--st-font", "--st-border-color-light", "--st-border-color", "--st-background-color"];
function look(host) {  // every theme property the charts' look reads
  const css = getComputedStyle(host);
  return LOOK.map((name) => (css.getPropertyValue(name) || "").trim()).join("|");
}
function template(host, colorway) {
  const css = getComputedStyle(host);
  const v = (name, fallback) => (css.getPropertyValue(name) || "").trim() || fallback;
  const text = v("--st-text-color", "#31333f"), font = v("--st-font", "sans-serif");
  const grid = v("--st-border-color-light", "rgba(128, 128, 128, 0.2)");
  const line = v("--st-border-color", "rgba(128, 128, 128, 0.4)");
  const paper = v("--st-background-color", "#ffffff");
  const id = [text, font, grid, line, paper, colorway.join()].join("|");
  if (!templates.has(id)) {  // one object per look: Plotly.react compares the template by identity
    // automargin: a label wider than the margin the builder preset (ui.charts.preset_margins) grows it instead of
    // being cut at the chart's edge; a margin that holds it already costs nothing.
    const axis = {gridcolor: grid, linecolor: line, zerolinecolor: line, tickcolor: line, automargin: true,
                  title: {font: {color: text}}, tickfont: {color: text}};
    templates.set(id, {layout: {
      font: {family: font, color: text, size: 12}, colorway,
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
      title: {font: {color: text, size: 15}}, legend: {font: {color: text}},
      xaxis: axis, yaxis: axis,
      hoverlabel: {bgcolor: paper, bordercolor: line, font: {color: text, family: font}},
      coloraxis: {colorbar: {tickfont: {color: text}}},
    }});
  }
  return templates.get(id);
}

function bold(layout) {
  const title = layout.title;
  if (title && typeof title.text === "string" && title.text && !title.text.startsWith("<b>")) {
    layout.title = Object.assign({}, title, {text: "<b>" + title.text + "</b>"});
  }
}

function fullscreen(box, Plotly) {
  // The browser's full screen for the chart's own div (Escape leaves it); the chart takes the screen's height and,
  // through the ResizeObserver, its width, and gets its own height back after.
  const sync = () => {
    if (document.fullscreenElement === box) {
      box.__height = box.layout.height;
      Plotly.relayout(box, {height: window.innerHeight - 32});
    } else {
      document.removeEventListener("fullscreenchange", sync);
      Plotly.relayout(box, {height: box.__height === undefined ? null : box.__height});
    }
  };
  return {name: "fullscreen", title: "Full screen (Esc to leave)",
          icon: {width: 512, height: 512, path: "M32 32h160v64H96v96H32zm288 0h160v160h-64V96h-96zM32 320h64v96h96v64H32zm384 0h64v160H320v-64h96z"},
          click: () => {
            if (document.fullscreenElement === box) { document.exitFullscreen(); return; }
            document.addEventListener("fullscreenchange", sync);
            box.requestFullscreen().catch(() => document.removeEventListener("fullscreenchange", sync));
          }};
}

function watch(box, Plotly) {
  // A chart mounted hidden (an inactive tab) has no width: it is drawn when it first gets one, and a chart whose
  // column changes width (the window, the sidebar, a tab shown) follows it.
  if (box.__watch) return;
  box.__watch = new ResizeObserver(() => {
    if (box.clientWidth === 0) return;
    if (box.__pending) {
      const draw = box.__pending;
      box.__pending = undefined;
      try { draw(); } catch (error) { fail(box, error); }
      return;
    }
    if (box._fullLayout && Math.abs(box._fullLayout.width - box.clientWidth) > 1) {
      Plotly.relayout(box, {width: box.clientWidth});
    }
  });
  box.__watch.observe(box);
}

function fail(box, error) {
  // forget what was asked, so the next figure (or the same one again) is drawn; the message in a child of its own
  box.__signature = undefined;
  let note = box.querySelector(":scope > .ai-plot-error");
  if (!note) {
    note = document.createElement("div");
    note.className = "ai-plot-error";
    box.appendChild(note);
  }
  note.textContent = "This chart could not be drawn: " + error.message;
}

export default function (component) {
  const { data, parentElement } = component;
  let box = parentElement.querySelector("div.ai-plot");
  if (!box) {
    box = document.createElement("div");
    box.className = "ai-plot";
    box.setAttribute("data-testid", "stPlotlyChart");
    parentElement.appendChild(box);
  }
  if (!data || !data.spec) {  // the login screen's preload: fetch and compile Plotly, draw nothing
    plotly(data && data.url).catch((error) => console.error(error));
    return;
  }
  // a rerun with the same figure, options and look draws nothing
  const signature = [data.spec, JSON.stringify(data.config || {}), (data.colorway || []).join(), look(parentElement)].join("\n");
  if (box.__signature === signature) return;
  box.__signature = signature;
  plotly(data.url).then((Plotly) => {
    if (box.__signature !== signature) return;  // a newer figure arrived while Plotly loaded
    const draw = () => {
      const figure = JSON.parse(data.spec);
      const layout = figure.layout || {};
      layout.template = template(parentElement, data.colorway || []);
      bold(layout);
      // Not Plotly's "responsive": it adds a window listener per chart that only Plotly.purge removes, and a chart
      // leaves with its element (no purge); the ResizeObserver above follows the column instead.
      const config = Object.assign({displaylogo: false}, data.config, {responsive: false});
      // one button object per chart: Plotly.react compares the config, functions by identity, and a changed config
      // means a whole new plot instead of an update in place
      box.__fullscreen = box.__fullscreen || fullscreen(box, Plotly);
      config.modeBarButtonsToAdd = [box.__fullscreen, ...(config.modeBarButtonsToAdd || [])];
      // never offer to upload the data to Plotly's cloud (the "Share chart" button)
      config.showSendToCloud = false;
      config.modeBarButtonsToRemove = [...(config.modeBarButtonsToRemove || []), "sendChartToCloud", "sendDataToCloud"];
      const note = box.querySelector(":scope > .ai-plot-error");
      if (note) note.remove();
      return Plotly.react(box, figure.data || [], layout, config).catch((error) => fail(box, error));
    };
    watch(box, Plotly);
    if (box.clientWidth === 0) { box.__pending = draw; return; }
    box.__pending = undefined;
    return draw();
  }).catch((error) => fail(box, error));
}
"""


def ensure_bundle() -> Path:
    """The pinned Plotly bundle in ``static/`` (copied when missing or of another size); its path."""
    target = STATIC_DIR / PLOTLY_FILE
    if not target.exists() or target.stat().st_size != PLOTLY_BUNDLE.stat().st_size:
        STATIC_DIR.mkdir(exist_ok=True)
        # a temporary name of this process's own, then an atomic rename: processes starting at once each publish
        # a whole file and never write into another's
        handle, name = tempfile.mkstemp(dir=STATIC_DIR, prefix=f".{PLOTLY_FILE}.", suffix=".partial")
        os.close(handle)
        try:
            shutil.copyfile(PLOTLY_BUNDLE, name)
            os.replace(name, target)
        finally:
            if os.path.exists(name):
                os.unlink(name)
        log.info("plotly bundle copied to %s", target)
    return target


try:
    ensure_bundle()
except OSError:  # `python -m core serve` stops on this before starting; a plain `streamlit run` says it per chart
    log.exception("the Plotly bundle could not be put in %s: charts cannot be drawn", STATIC_DIR)
_COMPONENT = st.components.v2.component(NAME, js=_JS, css=_CSS, isolate_styles=False)


def dark_theme() -> bool:
    """True when the browser shows the dark theme (st.context.theme, inferred from the app's background)."""
    try:
        return st.context.theme.type == "dark"
    except Exception:  # outside a browser session (AppTest) there is no theme
        return False


def _url() -> str:
    base = (st.get_option("server.baseUrlPath") or "").strip("/")
    return f"/{base}/{PLOTLY_URL}" if base else f"/{PLOTLY_URL}"


def spec(fig: go.Figure) -> str:
    """The figure as sent to the browser: its JSON without the template (Streamlit's placeholder colours; the
    element supplies the look). The figure itself is not changed (cached figures are shared)."""
    figure = fig.to_dict()
    figure["layout"] = {k: v for k, v in figure.get("layout", {}).items() if k != "template"}
    return str(pio.json.to_json_plotly(figure))


def show(fig: go.Figure | str, key: str, config: dict[str, Any] | None = None, *, dark: bool | None = None) -> int:
    """Draw ``fig`` (or a figure :func:`spec` already serialised) under ``key`` (stable across reruns: the same
    element is updated in place); the number of bytes of figure JSON sent, also counted in the page timings.

    Traces that name no colour take the category colours (:func:`ui.charts.colorway`), with the dark theme's
    stand-ins when ``dark`` (None: :func:`dark_theme`)."""
    payload = fig if isinstance(fig, str) else spec(fig)
    add_bytes(len(payload))
    colorway = charts.colorway(dark_theme() if dark is None else dark)
    _COMPONENT(key=key, data={"spec": payload, "config": config or {}, "url": _url(), "colorway": colorway})
    return len(payload)


def preload() -> None:
    """An empty element that fetches and compiles Plotly while the login screen is read (nothing is drawn)."""
    _COMPONENT(key=PRELOAD_KEY + "_plot", data={"spec": None, "url": _url()})


def figure_of(element: Any) -> dict[str, Any] | None:
    """The figure dict an element of this component sent (AppTest's ``UnknownElement``), or None for another
    element or the preload."""
    proto = getattr(element, "proto", None)
    if proto is None or getattr(proto, "component_name", None) != NAME:
        return None
    data = json.loads(proto.json or "null") or {}
    return dict(json.loads(data["spec"])) if data.get("spec") else None
