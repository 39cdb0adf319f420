"""A light plotly widget: the whole figure as one synced value, drawn with ``Plotly.react``.

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
- ``FigureWidget`` sends edits as a protocol of restyle/relayout messages; in Chromium an update
  made while handling an upload was sometimes dropped, leaving the previous star's traces on
  screen. Here the browser always receives the complete figure and redraws it with
  ``Plotly.react``, so what is shown is what the kernel holds.

Numeric arrays travel as binary buffers (float32: about 30 kB per 4,000-pixel trace) in plotly.js's
typed-array form ``{"dtype", "bdata"}``. The kernel keeps the figure as plain dicts with numpy
arrays in :attr:`PlotlyView.data` and :attr:`PlotlyView.plot_layout`; :meth:`PlotlyView.update`
overwrites traces and layout keys and sends the result.
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

// {dtype, bdata: DataView} (binary buffers put back by the widget manager) -> typed arrays.
function decode(value, previous) {
  if (Array.isArray(value)) {
    const items = value.map((item, i) => decode(item, Array.isArray(previous) ? previous[i] : undefined));
    const plain = items.every((item) => item === null || typeof item !== "object");
    return plain && same(items, previous) ? previous : items;
  }
  if (value === null || typeof value !== "object") { return value; }
  if (value.bdata instanceof DataView && value.dtype in TYPES) {
    const view = value.bdata;
    const array = new TYPES[value.dtype](view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength));
    return same(array, previous) ? previous : array;
  }
  const before = previous !== null && typeof previous === "object" ? previous : {};
  return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, decode(item, before[key])]));
}

async function render({ model, el }) {
  const plot = document.createElement("div");
  plot.className = "stellar-plotly-view";
  plot.style.width = "100%";  // as wide as the widget: plotly's autosize follows the page
  el.appendChild(plot);
  const Plotly = await loadPlotly(model);
  let shown;
  const draw = () => {
    shown = decode(model.get("figure"), shown);
    return Plotly.react(plot, shown.data || [], shown.layout || {}, model.get("config"));
  };
  await draw();
  model.on("change:figure", draw);
  plot.on("plotly_click", (event) => {
    const point = event.points[0];
    model.send({ event: "click", trace: point.curveNumber, point: point.pointIndex });
  });
  const resize = new ResizeObserver(() => Plotly.Plots.resize(plot));
  resize.observe(el);
  return () => { resize.disconnect(); model.off("change:figure", draw); Plotly.purge(plot); };
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


def encode(value):
    """``value`` made ready to sync: numeric arrays as typed-array dicts with binary ``bdata``.

    Floating arrays become float32 (``f4``), integer arrays int32 (``i4``), other arrays lists;
    numpy scalars become Python numbers; dicts, lists and tuples are walked.
    """
    if isinstance(value, dict):
        return {key: encode(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(item) for item in value]
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "f":
            return {"dtype": "f4", "bdata": np.ascontiguousarray(value, "<f4").tobytes()}
        if value.dtype.kind in "iu":
            return {"dtype": "i4", "bdata": np.ascontiguousarray(value, "<i4").tobytes()}
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


class PlotlyView(anywidget.AnyWidget):
    """Show a plotly figure; :meth:`update` replaces traces or layout keys, :meth:`on_click` listens.

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
    figure = traitlets.Dict().tag(sync=True)
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
        super().__init__(figure=encode({"data": self.data, "layout": self.plot_layout}), **kwargs)
        self._click_callbacks = []
        self.on_msg(self._handle)

    def update(self, traces=(), layout=None, first=0):
        """Overwrite keys of traces ``first, first + 1, ...`` with ``traces`` (dicts) and keys of
        the layout with ``layout``, then send the figure to the browser (one message)."""
        for offset, values in enumerate(traces):
            self.data[first + offset] = {**self.data[first + offset], **values}
        self.plot_layout.update(layout or {})
        self.figure = encode({"data": self.data, "layout": self.plot_layout})

    def on_click(self, callback):
        """Call ``callback(trace_index, point_index)`` when the user clicks a point."""
        self._click_callbacks.append(callback)

    def _handle(self, _widget, content, _buffers):
        if not isinstance(content, dict):
            return
        if content.get("event") == "plotly.js?":
            self.send({"event": "plotly.js"}, buffers=[plotly_js()])
        elif content.get("event") == "click":
            trace, point = content.get("trace"), content.get("point")
            if isinstance(trace, int) and isinstance(point, int):
                for callback in self._click_callbacks:
                    callback(trace, point)
