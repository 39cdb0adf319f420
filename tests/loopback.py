"""A real HTTP server on 127.0.0.1 that stands in for SDSS and Hugging Face, for the tests.

It serves three things, so that the real client code of :mod:`stellar_nb.data.sdss` and
:mod:`stellar_nb.data.paper_dataset` runs end to end without the internet:

- static files below ``root`` (spectra in the DR12 SAS layout), with HTTP ``Range`` support;
- SkyServer ``SqlSearch`` answers (``?cmd=SQL&format=csv|json``) computed by SQLite from a
  fixture catalogue put into tables with the real DR12 columns of ``sppParams`` and
  ``SpecObjAll`` plus the ``SpecObj`` view (:mod:`dr12_schema`; T-SQL ``TOP n`` is translated).
  As on the real service, CSV comes as ``text/plain`` and a SQL error (unknown column or table)
  as HTTP 500 with a JSON body whose ``ErrorMessage`` words it as SQL Server does;
- the Hugging Face Hub endpoints that ``huggingface_hub`` uses (revision info, paged tree,
  ``resolve`` with LFS redirects to a second, CDN-like origin; gated repos), from
  :mod:`hub_fake`.

Faults can be injected per path (``404``, ``500``, ``503``, ``429`` with ``Retry-After``,
``timeout``, ``truncate``, ``stall``, ``html``, ``corrupt``, ``error_table``: SkyServer's HTTP 200
one-column ``error_message`` table), each for a given number of requests, to exercise retries and error
reporting.

Example: serve a dozen synthetic stars and run the real client::

    import loopback
    from stellar_nb.data import sdss, splits
    site = loopback.synthetic_site("site", n=12, seed=0)      # spec-*.fits + catalogue
    with loopback.LoopbackServer(site.root, catalogue=site.catalogue) as server:
        catalogue = sdss.query_sspp(12, base_url=server.skyserver_url, page_size=5)
        report = sdss.download_spectra(catalogue, "spectra", base_url=server.sas_url)
        summary = splits.build_splits(catalogue, "spectra", "survey", sizes=(8, 2, 2))

To serve rows of the simulated survey instead, build the site from a split table::

    frame = tables.read_split(survey, "test", rows=slice(0, 40))
    site = loopback.site_from_split(frame, "site")
"""

import dataclasses
import http.server
import io
import json
import re
import sqlite3
import threading
import time
import urllib.parse
from pathlib import Path

import dr12_schema
import hub_fake
import numpy as np
import pandas as pd

from stellar_nb import schema
from stellar_nb.data import fits, sdss, spec_lite

__all__ = ["FAULTS", "LoopbackServer", "Site", "site_from_split", "synthetic_site"]

FAULTS = (
    "404",
    "500",
    "503",
    "429",
    "timeout",
    "truncate",
    "stall",
    "html",
    "corrupt",
    "error_table",
)
#: Seconds a ``429`` fault asks the client to wait (``Retry-After``).
RETRY_AFTER_SECONDS = 1


def _sql_frame(sql, catalogue):
    connection = sqlite3.connect(":memory:")
    try:
        dr12_schema.build_tables(connection, catalogue)
        top = re.search(r"\bselect\s+top\s+\(?(\d+)\)?", sql, flags=re.IGNORECASE)
        if top:
            sql = sql[: top.start()] + "SELECT" + sql[top.end() :] + f" LIMIT {top.group(1)}"
        return pd.read_sql_query(sql, connection)
    finally:
        connection.close()


def _csv(frame):
    buffer = io.StringIO()
    buffer.write("#Table1\n")
    frame.to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue().encode()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "stellar_nb-loopback/1"

    def log_message(self, format, *args):  # keep test output clean
        pass

    def do_GET(self):  # and HEAD: _send leaves the body out
        parsed = urllib.parse.urlsplit(self.path)
        owner = self.server.owner
        owner.requests.append((parsed.path, self.headers.get("Range")))
        owner.user_agents.append(self.headers.get("User-Agent"))
        self.body_fault = owner._take_fault(parsed.path, self)
        if self.body_fault is True:  # the fault has answered
            return
        query = dict(urllib.parse.parse_qsl(parsed.query))
        if self.server.is_cdn:
            return hub_fake.handle_cdn(self, parsed.path, query)
        if parsed.path.endswith("/SqlSearch"):
            return self._sql(query)
        if hub_fake.handle(self, parsed.path.strip("/").split("/"), query):
            return
        if owner.root is not None:
            return self._file(owner.root / urllib.parse.unquote(parsed.path).lstrip("/"))
        return self._send(404, b"not found", "text/plain")

    do_HEAD = do_GET

    def _send(self, status, body, content_type, headers=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in headers:
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":  # a HEAD answer has the headers of a GET, never a body
            self.wfile.write(body)

    def _sql(self, params):
        try:
            frame = _sql_frame(params.get("cmd", ""), self.server.owner.catalogue)
        except (sqlite3.Error, pd.errors.DatabaseError) as error:
            # the real SqlSearch answers a SQL Server error as HTTP 500 with a JSON body
            message = dr12_schema.sql_server_message(error.__cause__ or error)
            body = {"ErrorCode": 500, "ErrorType": "SqlException", "ErrorMessage": message}
            return self._send(500, json.dumps(body).encode(), "application/json")
        if params.get("format", "csv").lower() == "json":
            rows = json.loads(frame.to_json(orient="records"))
            body = json.dumps([{"TableName": "Table1", "Rows": rows}]).encode()
            return self._send(200, body, "application/json")
        return self._send(200, _csv(frame), "text/plain")

    def _file(self, path):
        if not path.is_file() or ".." in Path(urllib.parse.unquote(self.path)).parts:
            return self._send(404, b"not found", "text/plain")
        self._send_file(path.read_bytes())

    def _send_file(self, body, headers=()):
        """Send ``body`` (or the byte range asked for), spoilt by this request's body fault."""
        status, headers = 200, [("Accept-Ranges", "bytes"), *headers]
        requested = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if requested:
            start = int(requested.group(1))
            if start >= len(body):
                return self._send(416, b"", "application/octet-stream")
            headers.append(("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}"))
            status, body = 206, body[start:]
        if self.body_fault == "corrupt":
            body = body[:100] + bytes(255 - b for b in body[100:200]) + body[200:]
        if self.command == "HEAD" or self.body_fault not in ("truncate", "stall"):
            return self._send(status, body, "application/octet-stream", headers)
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        for key, value in headers:
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body[: len(body) // 2])
        self.wfile.flush()
        if self.body_fault == "stall":  # half the body, then silence: a client to kill
            time.sleep(self.server.owner.slow_seconds)
        self.close_connection = True


@dataclasses.dataclass
class _Fault:
    kind: str
    times: int


class LoopbackServer:
    """HTTP server on ``127.0.0.1`` (a free port) in a background thread.

    Parameters
    ----------
    root : str or pathlib.Path, optional
        Folder served as static files (URL path = path below ``root``).
    catalogue : pandas.DataFrame, optional
        Rows answering SkyServer SQL; each column (any case) must be a DR12 ``SpecObjAll`` or
        ``sppParams`` column (``specObjID, plate, mjd, fiberID, ra, dec, class, ..., teffadop,
        teffadopunc, ..., elodiervfinal, elodiervfinalerr, flag, snr``); see :mod:`dr12_schema`.
    datasets : dict, optional
        ``{"owner/name": repo}``: Hugging Face datasets to serve, each a folder (revision
        ``main``), ``{revision: folder}`` or a :class:`hub_fake.HubRepo` (e.g. gated).
    slow_seconds : float
        How long a ``timeout`` or ``stall`` fault stalls.
    tree_page : int, optional
        Entries per page of a Hub file listing (further pages via a ``Link`` header); default
        the Hub's own, 1000 (50 with ``expand``).

    Examples
    --------
    >>> with LoopbackServer("site", catalogue=frame) as server:  # doctest: +SKIP
    ...     server.fail("/sdss/spectro/redux/26/spectra/lite/0266/spec-0266-51602-0031.fits", "500", times=2)
    """

    def __init__(
        self, root=None, *, catalogue=None, datasets=None, slow_seconds=3.0, tree_page=None
    ):
        self.root = None if root is None else Path(root)
        self.catalogue = pd.DataFrame() if catalogue is None else catalogue
        dr12_schema.check_columns(self.catalogue)
        self.datasets = {name: hub_fake.HubRepo.of(repo) for name, repo in (datasets or {}).items()}
        self.slow_seconds = float(slow_seconds)
        self.tree_page = tree_page
        self.requests = []
        self.user_agents = []
        self._faults = {}
        self._lock = threading.Lock()
        self._server = self._cdn = None
        self._threads = []

    def fail(self, path, kind, times=1):
        """Make the next ``times`` requests for URL ``path`` fail with ``kind`` (see :data:`FAULTS`)."""
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}; allowed: {', '.join(FAULTS)}")
        self._faults["/" + path.lstrip("/")] = _Fault(kind, int(times))

    def _take_fault(self, path, handler):
        """Answer an injected status fault (True), or return a body fault's kind, or None."""
        with self._lock:
            fault = self._faults.get(path)
            if fault is None or fault.times <= 0:
                return None
            fault.times -= 1
        if fault.kind in ("404", "500", "503"):
            handler._send(int(fault.kind), f"injected HTTP {fault.kind}".encode(), "text/plain")
        elif fault.kind == "429":
            handler._send(
                429, b"too many requests", "text/plain", [("Retry-After", str(RETRY_AFTER_SECONDS))]
            )
        elif fault.kind == "error_table":  # SkyServer's other way to report an error
            body = b"#Table1\nerror_message\ninjected: Query timed out after 600 seconds\n"
            handler._send(200, body, "text/plain")
        elif fault.kind == "html":
            handler._send(200, b"<html><body>Service unavailable</body></html>", "text/html")
        elif fault.kind == "timeout":
            time.sleep(self.slow_seconds)
            handler.close_connection = True
        else:
            return fault.kind  # corrupt, truncate, stall: applied to the body as it is sent
        return True

    @property
    def url(self):
        """Base URL, e.g. ``http://127.0.0.1:PORT``."""
        if self._server is None:
            raise RuntimeError("the loopback server is not running; use start() or a with block")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def skyserver_url(self):
        """SkyServer SqlSearch endpoint on this server."""
        return f"{self.url}/dr12/SkyserverWS/SearchTools/SqlSearch"

    @property
    def sas_url(self):
        """Base of the DR12 Science Archive Server tree on this server (serves ``root``)."""
        return self.url

    @property
    def cdn_url(self):
        """Base URL of the second origin that serves the Hub's LFS objects (as a CDN does)."""
        if self._cdn is None:
            raise RuntimeError("the loopback server is not running; use start() or a with block")
        return f"http://127.0.0.1:{self._cdn.server_address[1]}"

    def start(self):
        """Start serving (the main origin and the CDN origin); returns ``self``."""
        servers = []
        for is_cdn in (False, True):
            server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
            server.daemon_threads, server.owner, server.is_cdn = True, self, is_cdn
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.1},  # a quick stop(): tests start many servers
                name="stellar_nb-loopback",
                daemon=True,
            )
            thread.start()
            servers.append((server, thread))
        (self._server, _), (self._cdn, _) = servers
        self._threads = [thread for _, thread in servers]
        return self

    def stop(self):
        """Stop serving and release the ports."""
        for server in (self._server, self._cdn):
            if server is not None:
                server.shutdown()
                server.server_close()
        for thread in self._threads:
            thread.join(timeout=10)
        self._server = self._cdn = None
        self._threads = []

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


@dataclasses.dataclass
class Site:
    """A fixture site: spectra below ``root`` and the catalogue that describes them."""

    root: Path
    catalogue: pd.DataFrame


def _synthetic_flux(loglam, teff, feh, rng):
    wavelength = 10.0**loglam
    continuum = 1.0 / (wavelength / 5000.0) ** 5 / np.expm1(1.4388e8 / (wavelength * teff))
    continuum = continuum / continuum.mean()
    lines = np.ones_like(wavelength)
    for center, depth in (
        (3934.8, 0.6),
        (3969.6, 0.5),
        (4862.7, 0.4),
        (5185.0, 0.2),
        (6564.6, 0.4),
        (8544.4, 0.2),
    ):
        lines -= depth * 10 ** (0.3 * feh) * np.exp(-0.5 * ((wavelength - center) / 3.0) ** 2)
    return (50.0 * continuum * np.clip(lines, 0.05, None)).astype(np.float32)


def _add(root, spectrum, labels, records):
    """Write ``spectrum`` at its SAS path below ``root`` and append its catalogue row."""
    meta = spectrum.meta
    row = {
        "plate": meta["plate"],
        "mjd": meta["mjd"],
        "fiber": meta["fiber"],
        "run2d": meta["run2d"],
    }
    path = root / sdss.spectrum_path(row)
    if path.exists():
        raise ValueError(
            f"two spectra share plate-mjd-fiber {row['plate']}-{row['mjd']}-{row['fiber']} ({path})"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    spec_lite.write_spectrum(path, spectrum)
    records.append(
        {"specObjID": int(meta["specobjid"]), "plate": int(meta["plate"]), "mjd": int(meta["mjd"]),
         "fiberID": int(meta["fiber"]), "ra": float(meta["ra"]), "dec": float(meta["dec"]),
         "class": meta["objclass"], "subClass": meta["subclass"], "z": float(meta["z"]),
         "run2d": meta["run2d"], "sciencePrimary": 1, **labels}
    )  # fmt: skip


def synthetic_site(directory, n=12, *, seed=0, run2d="26"):
    """Write ``n`` synthetic stellar spectra in the DR12 SAS layout and return a :class:`Site`.

    The spectra are smooth Planck continua with a few absorption lines whose depth grows with
    [Fe/H]: good enough to test plumbing, not a physical model. Labels are drawn uniformly
    within the benchmark's ranges; the catalogue uses SkyServer column names.
    """
    rng = np.random.default_rng(seed)
    root = Path(directory)
    records = []
    for index in range(int(n)):
        plate, mjd, fiber = 266 + index // 5, 51602 + index // 5, 1 + index
        teff, feh, logg = rng.uniform(4000, 9000), rng.uniform(-2.5, 0.5), rng.uniform(0.5, 4.9)
        loglam = 3.5800 + 1e-4 * np.arange(3840)
        flux = _synthetic_flux(loglam, teff, feh, rng)
        snr = rng.uniform(10, 60)
        noise = flux / snr
        spectrum = fits.Spectrum(
            flux=flux + rng.normal(0.0, noise).astype(np.float32),
            loglam=loglam,
            ivar=(1.0 / noise**2).astype(np.float32),
            and_mask=np.zeros(loglam.size, dtype=np.int32),
            meta={"plate": plate, "mjd": mjd, "fiber": fiber, "objclass": "STAR", "subclass": "F5",
                  "snr": snr, "ra": rng.uniform(0, 360), "dec": rng.uniform(-10, 60), "z": 0.0,
                  "run2d": run2d, "specobjid": (plate << 50) + (fiber << 38) + index},
        )  # fmt: skip
        labels = {"teffadop": teff, "teffadopunc": 80.0, "fehadop": feh, "fehadopunc": 0.1,
                  "loggadop": logg, "loggadopunc": 0.2, "elodiervfinal": rng.normal(0, 100),
                  "elodiervfinalerr": 2.0, "flag": "nnnnn", "snr": snr}  # fmt: skip
        _add(root, spectrum, labels, records)
    return Site(root=root, catalogue=pd.DataFrame.from_records(records))


def site_from_split(frame, directory, *, run2d="26"):
    """Serve rows of a split table (e.g. the simulated survey) as if they were SDSS DR12.

    Each row becomes a ``spec-lite`` file at its DR12 SAS path below ``directory`` (CLASS STAR,
    redshift ``rv_adop / c``) and a catalogue row whose SSPP columns are the row's ``catalog_*``
    labels, so the real client code can query, download and rebuild the same table.

    Raises
    ------
    ValueError
        If a schema column is missing or two rows share plate-MJD-fiber.
    """
    needed = {
        *schema.SCALAR_COLUMNS,
        *schema.ARRAY_COLUMNS,
        *schema.CATALOG_COLUMNS,
        *schema.UNCERTAINTY_COLUMNS,
    }
    missing = sorted(needed - set(frame.columns))
    if missing:
        raise ValueError(f"site_from_split needs the split columns {missing}")
    root = Path(directory)
    records = []
    for _, row in frame.iterrows():
        meta = {"plate": int(row["plate"]), "mjd": int(row["mjd"]), "fiber": int(row["fiber"]),
                "objclass": "STAR", "subclass": "", "snr": float(row["snr"]), "ra": float(row["ra"]),
                "dec": float(row["dec"]), "z": float(row["rv_adop"]) / schema.C_KM_S, "run2d": run2d,
                "specobjid": int(row["spec_id"])}  # fmt: skip
        spectrum = fits.Spectrum(row["flux"], row["loglam"], row["ivar"], row["mask"], meta)
        labels = {f"{label}adop{suffix}": float(row[f"catalog_{label}{'_unc' if suffix else ''}"])
                  for label in schema.LABELS for suffix in ("", "unc")}  # fmt: skip
        labels.update(
            elodiervfinal=float(row["rv_adop"]), elodiervfinalerr=2.0, flag="nnnnn",
            snr=float(row["snr"]),
        )  # fmt: skip
        _add(root, spectrum, labels, records)
    return Site(root=root, catalogue=pd.DataFrame.from_records(records))
