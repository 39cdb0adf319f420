"""A careful downloader shared by every remote source.

Each remote file is described once (:class:`RemoteFile`: URL, local name, optional SHA-256 and
size). :func:`download` fetches many of them over a bounded number of parallel connections:

- each file goes to ``NAME.part`` beside its destination, is checked (size, SHA-256, an optional
  content check such as "is this FITS?"), then renamed into place, so a file under its final
  name is always complete;
- a ``.part`` left by an interrupted run is resumed with an HTTP ``Range`` request;
- connection errors, timeouts, truncated bodies and HTTP 5xx/429 are retried a bounded number of
  times with exponential back-off, or after the server's ``Retry-After`` when it sends one
  (:func:`retry_wait`, shared with :mod:`stellar_nb.data.skyserver`); HTTP 4xx fails at once;
- a JSON manifest (``manifest.json`` in the output folder) records the URL, size and SHA-256 of
  every completed file; a file already in the manifest with the right size is not fetched again;
- a batch never stops at the first failure: the :class:`DownloadReport` lists what failed and why.
"""

import dataclasses
import json
import os
import random
import threading
import time
from concurrent import futures
from pathlib import Path, PurePosixPath

import requests
import tqdm.auto

from stellar_nb import __version__
from stellar_nb.files import sha256sum, write_json

__all__ = [
    "MAX_WAIT",
    "USER_AGENT",
    "DownloadError",
    "DownloadReport",
    "RateLimiter",
    "RemoteFile",
    "download",
    "retry_wait",
]

MANIFEST_NAME = "manifest.json"
#: Sent with every request, so the services' operators can see (and reach) who is asking.
USER_AGENT = f"stellar_nb/{__version__} (https://arxiv.org/abs/2606.13868)"
_CHUNK = 1 << 14
_RETRY_STATUS = {429, 500, 502, 503, 504}
#: Longest single wait between attempts (back-off or ``Retry-After``), seconds.
MAX_WAIT = 60.0
_sleep = time.sleep  # one name for tests to replace


class DownloadError(RuntimeError):
    """A file that could not be downloaded; the message names it."""


@dataclasses.dataclass(frozen=True)
class RemoteFile:
    """One remote file.

    Parameters
    ----------
    url : str
        Where to get it.
    name : str
        Relative POSIX path of the local copy inside the output folder.
    sha256 : str, optional
        Expected SHA-256 (hex); checked after download when given.
    size : int, optional
        Expected size in bytes; checked after download when given.
    """

    url: str
    name: str
    sha256: str | None = None
    size: int | None = None

    def __post_init__(self):
        path = PurePosixPath(self.name)
        if not self.name or path.is_absolute() or ".." in path.parts:
            raise ValueError(
                f"RemoteFile name must be a relative path inside the output folder, got {self.name!r}"
            )


@dataclasses.dataclass
class DownloadReport:
    """What a :func:`download` call did.

    Attributes
    ----------
    downloaded, cached : list of pathlib.Path
        Files fetched now, and files already complete in the cache.
    failed : dict
        ``name -> reason`` for every file that could not be fetched.
    """

    downloaded: list = dataclasses.field(default_factory=list)
    cached: list = dataclasses.field(default_factory=list)
    failed: dict = dataclasses.field(default_factory=dict)

    @property
    def ok(self):
        """True when nothing failed."""
        return not self.failed

    @property
    def paths(self):
        """Paths of every complete file (downloaded or cached)."""
        return [*self.cached, *self.downloaded]

    def summary(self):
        """One line per failure after a count line."""
        lines = [
            f"{len(self.downloaded)} downloaded, {len(self.cached)} cached, {len(self.failed)} failed"
        ]
        lines += [f"  {name}: {reason}" for name, reason in sorted(self.failed.items())]
        return "\n".join(lines)

    def raise_for_failures(self):
        """Raise :class:`DownloadError` listing the failures, if any."""
        if self.failed:
            raise DownloadError(self.summary())


class RateLimiter:
    """Allow at most ``calls`` calls in any window of ``period`` seconds (thread-safe).

    :meth:`wait` blocks (through ``sleep``) until one more call fits; ``clock`` and ``sleep``
    are arguments so tests can count calls against a fake clock instead of timing them.

    Parameters
    ----------
    calls : int
        Calls allowed per window (SDSS asks SkyServer users for at most 60 queries a minute).
    period : float
        Window length in seconds.
    clock, sleep : callable, optional
        Default :func:`time.monotonic` and :func:`time.sleep`.

    Examples
    --------
    >>> limiter = RateLimiter(60, 60.0)
    >>> limiter.wait()  # returns at once: the first call of the window
    0.0
    """

    def __init__(self, calls=60, period=60.0, *, clock=None, sleep=None):
        if int(calls) < 1 or float(period) <= 0:
            raise ValueError(f"calls and period must be positive, got {calls}, {period}")
        self.calls, self.period = int(calls), float(period)
        self.clock = time.monotonic if clock is None else clock
        self.sleep = time.sleep if sleep is None else sleep
        self._starts = []
        self._lock = threading.Lock()

    def wait(self):
        """Block until a call is allowed, record it, and return the seconds waited."""
        waited = 0.0
        with self._lock:
            while True:
                now = self.clock()
                self._starts = [start for start in self._starts if now - start < self.period]
                if len(self._starts) < self.calls:
                    self._starts.append(now)
                    return waited
                pause = self.period - (now - self._starts[0])
                self.sleep(pause)
                waited += pause


def retry_wait(attempt, backoff, retry_after=None, *, jitter=0.0):
    """Seconds to wait before the attempt after ``attempt`` (0-based), at most :data:`MAX_WAIT`.

    The server's ``Retry-After`` (HTTP 429 or 503) wins when it is given in delay-seconds;
    otherwise the wait is ``backoff * 2**attempt``, stretched by up to ``jitter`` (a fraction,
    drawn at random) so that parallel clients do not retry in step.

    Parameters
    ----------
    attempt : int
        Attempts made so far, minus one.
    backoff : float
        First wait in seconds.
    retry_after : str, optional
        The response's ``Retry-After`` header (an HTTP date is ignored: back-off applies).
    jitter : float
        Largest random stretch of the back-off, as a fraction.

    Returns
    -------
    float

    Examples
    --------
    >>> retry_wait(2, 1.0), retry_wait(0, 1.0, "7"), retry_wait(9, 1.0)
    (4.0, 7.0, 60.0)
    """
    if retry_after is not None and str(retry_after).strip().isdigit():
        return min(float(retry_after), MAX_WAIT)
    return min(backoff * 2**attempt * (1 + jitter * random.random()), MAX_WAIT)


class _Manifest:
    def __init__(self, directory):
        self.path = Path(directory) / MANIFEST_NAME
        self.lock = threading.Lock()
        self.entries = {}
        self.dirty, self.written, self.interval = False, time.monotonic(), 2.0
        if self.path.is_file():
            try:
                self.entries = json.loads(self.path.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError):
                self.entries = {}  # a damaged manifest only costs re-verification

    def complete(self, remote, path):
        entry = self.entries.get(remote.name)
        if entry is None or not path.is_file() or path.stat().st_size != entry.get("size"):
            return False
        if remote.sha256 and entry.get("sha256") != remote.sha256.lower():
            return False
        return not (remote.size is not None and remote.size != entry["size"])

    def record(self, remote, path, sha256):
        with self.lock:
            self.entries[remote.name] = {
                "url": remote.url,
                "size": path.stat().st_size,
                "sha256": sha256,
            }
            self.dirty = True
        self.flush(force=False)

    def flush(self, force=True):
        # Rewriting the whole manifest per file would be quadratic for 50,000 files: write at
        # most every few seconds, and at the end. A crash loses only recent entries, whose files
        # are then fetched again.
        with self.lock:
            if not self.dirty or (not force and time.monotonic() - self.written < self.interval):
                return
            write_json(self.path, self.entries)
            self.dirty, self.written = False, time.monotonic()


class _Retry(Exception):
    """A failure worth another attempt, with the server's ``Retry-After`` if it sent one."""

    def __init__(self, message, retry_after=None):
        super().__init__(message)
        self.retry_after = retry_after


def _fetch_once(session, remote, destination, timeout, check):
    # Not files.atomic_path: the partial file must keep its name between runs, so that an
    # interrupted download resumes with a Range request instead of starting again.
    partial = destination.with_name(destination.name + ".part")
    offset = partial.stat().st_size if partial.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        with session.get(remote.url, stream=True, timeout=timeout, headers=headers) as response:
            if response.status_code in _RETRY_STATUS:
                raise _Retry(
                    f"HTTP {response.status_code} from {remote.url}",
                    retry_after=response.headers.get("Retry-After"),
                )
            if response.status_code == 416:
                partial.unlink(missing_ok=True)
                raise _Retry(f"HTTP 416 (range not satisfiable) from {remote.url}; restarting")
            if response.status_code >= 400:
                raise DownloadError(f"HTTP {response.status_code} from {remote.url}")
            resumed = response.status_code == 206
            expected = response.headers.get("Content-Length")
            if response.headers.get("Content-Encoding", "identity") != "identity":
                expected = None  # the length is that of the compressed body
            expected = int(expected) + (offset if resumed else 0) if expected is not None else None
            with open(partial, "ab" if resumed else "wb") as stream:
                for block in response.iter_content(_CHUNK):
                    stream.write(block)
    except requests.exceptions.ChunkedEncodingError as error:
        raise _Retry(
            f"truncated download from {remote.url} (connection closed mid-body: {error})"
        ) from None
    except (requests.ConnectionError, requests.Timeout) as error:
        raise _Retry(f"{type(error).__name__} from {remote.url}: {error}") from None
    size = partial.stat().st_size
    if expected is not None and size != expected:
        raise _Retry(f"truncated download from {remote.url}: {size} of {expected} bytes")
    problems = []
    if remote.size is not None and size != remote.size:
        problems.append(f"size {size} != expected {remote.size}")
    digest = sha256sum(partial)
    if remote.sha256 and digest != remote.sha256.lower():
        problems.append(f"sha256 {digest} != expected {remote.sha256.lower()}")
    if not problems and check is not None:
        try:
            check(partial)
        except ValueError as error:
            partial.unlink(missing_ok=True)
            raise DownloadError(f"bad content from {remote.url}: {error}") from None
    if problems:
        partial.unlink(missing_ok=True)
        raise _Retry(f"checksum mismatch for {remote.url}: {'; '.join(problems)}")
    os.replace(partial, destination)
    return digest


def _fetch(session, remote, destination, *, timeout, retries, backoff, check):
    destination.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(retries + 1):
        try:
            return _fetch_once(session, remote, destination, timeout, check)
        except _Retry as error:
            if attempt == retries:
                destination.with_name(destination.name + ".part").unlink(missing_ok=True)
                raise DownloadError(f"{error} (gave up after {retries + 1} attempts)") from None
            _sleep(retry_wait(attempt, backoff, error.retry_after, jitter=0.25))
    raise AssertionError("unreachable")


def download(
    files,
    out_dir,
    *,
    workers=4,
    retries=3,
    backoff=0.5,
    timeout=60.0,
    check=None,
    progress=True,
    description="downloading",
):
    """Download ``files`` into ``out_dir``, in parallel, resumably, with a manifest.

    Parameters
    ----------
    files : iterable of RemoteFile
    out_dir : str or pathlib.Path
        Created if missing; holds the files (at their ``name``) and ``manifest.json``.
    workers : int
        Parallel connections (at least 1).
    retries : int
        Further attempts after a retryable failure (connection error, timeout, truncated body,
        HTTP 5xx/429, checksum mismatch); waits ``backoff * 2**attempt`` seconds in between, or
        the server's ``Retry-After`` (see :func:`retry_wait`).
    timeout : float
        Seconds to wait for the server to connect or send data.
    check : callable, optional
        ``check(path)`` raises ``ValueError`` if a downloaded file's content is unusable (e.g. an
        HTML error page instead of FITS); such a file is deleted and reported, not retried.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    DownloadReport
        Never raises for a single file's failure; see :meth:`DownloadReport.raise_for_failures`.
    """
    if int(workers) < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if int(retries) < 0:
        raise ValueError(f"retries must be non-negative, got {retries}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = list({remote.name: remote for remote in files}.values())
    manifest = _Manifest(out_dir)
    report = DownloadReport()
    pending = []
    for remote in files:
        path = out_dir / remote.name
        (report.cached.append(path) if manifest.complete(remote, path) else pending.append(remote))
    local = threading.local()

    def work(remote):
        if not hasattr(local, "session"):
            local.session = requests.Session()
            local.session.headers["User-Agent"] = USER_AGENT
            # byte ranges and Content-Length refer to the raw bytes: ask for no transfer encoding
            local.session.headers["Accept-Encoding"] = "identity"
        path = out_dir / remote.name
        digest = _fetch(
            local.session,
            remote,
            path,
            timeout=timeout,
            retries=retries,
            backoff=backoff,
            check=check,
        )
        manifest.record(remote, path, digest)
        return path

    bar = tqdm.auto.tqdm(
        total=len(files),
        initial=len(report.cached),
        desc=description,
        unit="file",
        disable=not progress,
    )
    pool = futures.ThreadPoolExecutor(max_workers=int(workers))
    try:
        with bar:
            jobs = {pool.submit(work, remote): remote for remote in pending}
            for job in futures.as_completed(jobs):
                remote = jobs[job]
                try:
                    report.downloaded.append(job.result())
                except (DownloadError, OSError) as error:
                    report.failed[remote.name] = str(error)
                bar.update(1)
    finally:
        # on Ctrl-C: let running transfers end (their .part files stay for resuming), start no more
        pool.shutdown(wait=True, cancel_futures=True)
        manifest.flush()
    return report
