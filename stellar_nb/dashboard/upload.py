"""A file-upload widget that refuses files over the size limit in the browser, before sending them.

ipywidgets' ``FileUpload`` sends whatever the user picks through the kernel websocket; a file over
tornado's ``websocket_max_message_size`` then closes the connection and the dashboard dies. This
widget checks ``file.size`` in the browser first: a file over :attr:`SpectrumUpload.max_bytes`
never leaves the browser, and the kernel only hears its name and size. Accepted files arrive as
one binary buffer; the bytes are handed to a callback and never executed or unpickled.
"""

import anywidget
import traitlets

__all__ = ["ACCEPT", "SpectrumUpload"]

#: What the file picker offers. Browsers match ``accept`` on the last suffix only, so gzipped
#: files need ``.gz`` and the gzip media types as well as ``.fits.gz``; the bytes are then
#: recognised by their content (:func:`stellar_nb.dashboard.inputs.read_upload`).
ACCEPT = (
    ".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".gz",
    "application/fits", "image/fits", "application/gzip", "application/x-gzip",
)  # fmt: skip

_ESM = """
const ACCEPT = "__ACCEPT__";
function render({ model, el }) {
  const label = document.createElement("label");
  label.className = "stellar-upload-label";
  label.textContent = model.get("label") + " ";
  const input = document.createElement("input");
  input.type = "file";
  input.accept = ACCEPT;
  input.className = "stellar-upload-input";
  const note = document.createElement("span");
  note.className = "stellar-upload-note";
  note.style.marginLeft = "0.5em";
  note.textContent = model.get("description");
  input.addEventListener("change", async () => {
    const file = input.files[0];
    if (!file) { return; }
    const limit = model.get("max_bytes");
    if (file.size > limit) {
      model.send({ event: "too_large", name: file.name, size: file.size });
    } else {
      const buffer = await file.arrayBuffer();
      model.send({ event: "file", name: file.name, size: file.size }, undefined, [buffer]);
    }
    input.value = "";
  });
  label.appendChild(input);
  el.appendChild(label);
  el.appendChild(note);
}
export default { render };
""".replace("__ACCEPT__", ",".join(ACCEPT))


class SpectrumUpload(anywidget.AnyWidget):
    """Upload one file; ``on_file(callback)`` receives ``(name, content_bytes_or_None, size)``.

    ``content`` is None when the browser refused the file for being over :attr:`max_bytes`.
    """

    _esm = _ESM
    max_bytes = traitlets.Int(20 * 1024 * 1024).tag(sync=True)
    description = traitlets.Unicode("").tag(sync=True)
    #: Text of the ``<label>`` that holds the file input.
    label = traitlets.Unicode("Upload a spectrum").tag(sync=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._callbacks = []
        self.on_msg(self._handle)

    def on_file(self, callback):
        """Register ``callback(name, content, size)``; ``content`` is None for a refused file."""
        self._callbacks.append(callback)

    def _handle(self, _widget, content, buffers):
        if not isinstance(content, dict) or content.get("event") not in ("file", "too_large"):
            return
        name = str(content.get("name", "upload"))[:200]
        size = int(content.get("size") or 0)
        data = bytes(buffers[0]) if content["event"] == "file" and buffers else None
        for callback in self._callbacks:
            callback(name, data, size)
