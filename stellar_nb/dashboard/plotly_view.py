"""A light plotly widget: the figure sent once, then only what changed, drawn with plotly.js.

Why not plotly's ``FigureWidget``:

- each ``FigureWidget`` carries its own copy of the full plotly.js (4.8 MB) to the browser, which
  evaluates it once per widget (1.6-2.3 s each in headless Chromium on 2 cores, measured by
  ``stellar-nb bench dashboard``).
  :class:`PlotlyView` uses plotly.js's basic bundle (scatter, bar and pie traces: 1.2 MB,
  evaluated in 0.3-0.7 s there, shipped in ``stellar_nb/resources/plotly``), sends it once per page,
  gzipped (0.4 MB), and every view on the page shares it. Figures shown in a view must therefore
  use scatter, bar or pie traces only (:data:`TRACE_TYPES`);
- importing ``FigureWidget`` imports nbformat and jsonschema, whose rfc3987 grammar takes about 2.4 s to
  compile in the kernel (``python -X importtime``);
- ``FigureWidget`` sends edits as a protocol of restyle/relayout messages tied to its own trait
  sync; in Chromium an update made while handling an upload was sometimes dropped, leaving the
  previous star's traces on screen.

Here the kernel holds the figure (:attr:`PlotlyView.data`, :attr:`PlotlyView.plot_layout`: plain
dicts with numpy arrays). A view, once drawn, asks for the whole figure (``figure?``); after that
:meth:`PlotlyView.update` sends only the traces and layout keys it changed, as one message, and
every view applies the messages in the order they came: changed traces with ``Plotly.react``
(unchanged arrays are kept as the same objects, which plotly.js skips), a layout-only change (the
Kiel diagram's marker, a shape) with ``Plotly.relayout``, which recomputes no trace. Numeric
arrays travel as binary buffers (float32: about 16 kB per 4,000-pixel trace).
"""

import base64
import functools
import gzip
from importlib import resources

import anywidget
import numpy as np
import traitlets

__all__ = ["TRACE_TYPES", "PlotlyView", "encode", "plotly_js"]

#: Trace types of plotly.js's basic bundle.
TRACE_TYPES = ("scatter", "bar", "pie")

_ESM = r"""
const TYPES = { f4: Float32Array, f8: Float64Array, i4: Int32Array, u1: Uint8Array };

// plotly.js is asked for once per page; every view waits on the same promise.
function loadPlotly(model) {
  if (!globalThis.__stellarNbPlotly) {
    globalThis.__stellarNbPlotly = new Promise((resolve, reject) => {
      model.on("msg:custom", async (message, buffers) => {
        if (message.event !== "plotly.js") { return; }
        try {
          const stream = new Blob([buffers[0]]).stream().pipeThrough(new DecompressionStream("gzip"));
          const source = await new Response(stream).text();
          const url = URL.createObjectURL(new Blob(
            ["const module = { exports: {} };\n", source, "\nexport default module.exports;\n"],
            { type: "text/javascript" }));
          resolve((await import(url)).default);
          URL.revokeObjectURL(url);
        } catch (error) {
          globalThis.__stellarNbPlotly = undefined;
          reject(error);
        }
      });
      model.send({ event: "plotly.js?" });
    });
  }
  return globalThis.__stellarNbPlotly;
}

// Arrays equal to the ones already drawn are kept as the same objects: Plotly.react compares
// arrays by identity, and an unchanged one then costs nothing to compare or redraw.
function same(array, previous) {
  if (!previous || previous.constructor !== array.constructor || previous.length !== array.length) {
    return false;
  }
  for (let i = 0; i < array.length; i++) {
    const a = array[i], b = previous[i];
    if (a !== b && !(a !== a && b !== b)) { return false; }  // NaN equals NaN here
  }
  return true;
}

// {dtype, buffer: i} -> a typed array over the message's i-th binary buffer.
function decode(value, buffers, previous) {
  if (Array.isArray(value)) {
    const items = value.map((item, i) => decode(item, buffers, Array.isArray(previous) ? previous[i] : undefined));
    const plain = items.every((item) => item === null || typeof item !== "object");
    return plain && same(items, previous) ? previous : items;
  }
  if (value === null || typeof value !== "object") { return value; }
  if (Number.isInteger(value.buffer) && value.dtype in TYPES && Object.keys(value).length === 2) {
    const view = buffers[value.buffer];
    const array = new TYPES[value.dtype](view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength));
    return same(array, previous) ? previous : array;
  }
  const before = previous !== null && typeof previous === "object" ? previous : {};
  return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, decode(item, buffers, before[key])]));
}

async function render({ model, el }) {
  const plot = document.createElement("div");
  plot.className = "stellar-plotly-view";
  plot.style.width = "100%";  // as wide as the widget: plotly's autosize follows the page
  el.appendChild(plot);
  const Plotly = await loadPlotly(model);
  let shown;  // the figure on screen; undefined until the kernel has sent the whole figure
  let queue = Promise.resolve();  // draws run one after the other, in the order they came
  const draw = (message, buffers) => {
    if (message.event === "figure") {
      const first = shown === undefined;
      shown = decode(message.figure, buffers, shown);
      const drawn = Plotly.react(plot, shown.data || [], shown.layout || {}, model.get("config"));
      return first ? drawn.then(listen) : drawn;
    }
    if (!shown) { return undefined; }  // the whole figure, still to come, includes this update
    const traces = Object.entries(message.traces);
    const layout = decode(message.layout, buffers, shown.layout);
    if (traces.length === 0) {
      // only layout keys (the Kiel diagram's marker): no trace is recomputed
      return Plotly.relayout(plot, layout);
    }
    for (const [index, values] of traces) {
      shown.data[+index] = { ...shown.data[+index], ...decode(values, buffers, shown.data[+index]) };
    }
    Object.assign(shown.layout, layout);
    return Plotly.react(plot, shown.data, shown.layout, model.get("config"));
  };
  const receive = (message, buffers) => {
    if (message.event === "figure" || message.event === "update") {
      queue = queue.then(() => draw(message, buffers)).catch((error) => console.error(error));
    }
  };
  model.on("msg:custom", receive);
  const listen = () => plot.on("plotly_click", (event) => {  // plot.on exists once drawn
    const point = event.points[0];
    model.send({ event: "click", trace: point.curveNumber, point: point.pointIndex });
  });
  model.send({ event: "figure?" });
  const resize = new ResizeObserver(() => Plotly.Plots.resize(plot));
  resize.observe(el);
  return () => { resize.disconnect(); model.off("msg:custom", receive); Plotly.purge(plot); };
}
export default { render };
"""


@functools.cache
def plotly_js():
    """plotly.js's basic bundle, gzipped (read and compressed once per process)."""
    source = resources.files("stellar_nb") / "resources" / "plotly" / "plotly-basic.min.js"
    return gzip.compress(source.read_bytes(), compresslevel=6, mtime=0)


def _numpy(value):
    """Plotly's own JSON form of arrays (``{"dtype", "bdata": base64, "shape"}``) back to numpy."""
    if isinstance(value, dict):
        if isinstance(value.get("bdata"), str) and "dtype" in value:
            array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
            shape = value.get("shape")
            return array.reshape([int(n) for n in str(shape).split(",")]) if shape else array
        return {key: _numpy(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_numpy(item) for item in value]
    return value


def encode(value, buffers=None):
    """``value`` made ready to send: numeric arrays become ``{"dtype", "buffer": i}`` and their
    bytes the ``i``-th entry of ``buffers``.

    Floating arrays become float32 (``f4``), integer arrays int32 (``i4``), other arrays lists;
    numpy scalars become Python numbers; dicts, lists and tuples are walked.

    Parameters
    ----------
    value : object
    buffers : list, optional
        Appended to; a new list when None.

    Returns
    -------
    message : object
        JSON-ready.
    buffers : list of bytes
    """
    buffers = [] if buffers is None else buffers
    return _encode(value, buffers), buffers


def _encode(value, buffers):
    if isinstance(value, dict):
        return {key: _encode(item, buffers) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(item, buffers) for item in value]
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "fiu":
            dtype = "f4" if value.dtype.kind == "f" else "i4"
            buffers.append(np.ascontiguousarray(value, "<" + dtype).tobytes())
            return {"dtype": dtype, "buffer": len(buffers) - 1}
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


class PlotlyView(anywidget.AnyWidget):
    """Show a plotly figure; :meth:`update` sends what changed, :meth:`on_click` listens.

    Parameters
    ----------
    figure : plotly.graph_objects.Figure or dict
        The figure at first (a ``go.Figure`` is validated by plotly as it is built; later updates
        are plain dicts and are not). Its traces must be of :data:`TRACE_TYPES`.

    Raises
    ------
    ValueError
        If a trace is of a type the basic bundle cannot draw.

    Attributes
    ----------
    data : list of dict
        The traces as the kernel holds them (numpy arrays as they were given).
    plot_layout : dict
        The figure's layout (``layout`` is the widget's own, as for every ipywidget).
    """

    _esm = _ESM
    config = traitlets.Dict({"displaylogo": False, "responsive": True}).tag(sync=True)

    def __init__(self, figure, **kwargs):
        plain = _numpy(figure.to_plotly_json() if hasattr(figure, "to_plotly_json") else figure)
        self.data, self.plot_layout = list(plain.get("data", [])), dict(plain.get("layout", {}))
        unknown = {trace.get("type", "scatter") for trace in self.data} - set(TRACE_TYPES)
        if unknown:
            raise ValueError(
                f"trace types {sorted(unknown)} are not in plotly.js's basic bundle {TRACE_TYPES}"
            )
        plotly_js()  # compressed now, while the kernel builds the page, not when the browser asks
        super().__init__(**kwargs)
        self._click_callbacks = []
        self.on_msg(self._handle)

    def update(self, traces=(), layout=None, first=0):
        """Overwrite keys of traces ``first, first + 1, ...`` with ``traces`` (dicts) and keys of
        the layout with ``layout``; send only those to the browser (one message).

        A view redraws the changed traces; an update of layout keys alone (a marker drawn as a
        shape) is a relayout, which recomputes no trace.
        """
        changed = {}
        for offset, values in enumerate(traces):
            self.data[first + offset] = {**self.data[first + offset], **values}
            changed[str(first + offset)] = values
        self.plot_layout.update(layout or {})
        message, buffers = encode({"event": "update", "traces": changed, "layout": layout or {}})
        self.send(message, buffers=buffers)

    def on_click(self, callback):
        """Call ``callback(trace_index, point_index)`` when the user clicks a point."""
        self._click_callbacks.append(callback)

    def _handle(self, _widget, content, _buffers):
        if not isinstance(content, dict):
            return
        if content.get("event") == "plotly.js?":
            self.send({"event": "plotly.js"}, buffers=[plotly_js()])
        elif content.get("event") == "figure?":  # a view is drawn: it gets the whole figure
            figure = {"data": self.data, "layout": self.plot_layout}
            message, buffers = encode({"event": "figure", "figure": figure})
            self.send(message, buffers=buffers)
        elif content.get("event") == "click":
            trace, point = content.get("trace"), content.get("point")
            if isinstance(trace, int) and isinstance(point, int):
                for callback in self._click_callbacks:
                    callback(trace, point)
