"""The paper's public data set: Hugging Face dataset ``BrunoBarreto/sdss_dr12_stars_regression``.

(Called "the benchmark" in the paper; here "paper dataset", so as not to be confused with the
speed benchmarks of :mod:`stellar_nb.bench`.) The Hub is reached through ``huggingface_hub``, the
Hub's own client, which builds and quotes the URLs, pages the listing, sends the token, follows
the LFS redirects (or uses Xet storage), retries HTTP 429/5xx honouring ``Retry-After`` and
resumes a transfer cut mid-file. On top of it, :func:`fetch_paper_dataset`

- pins the revision to one commit (``HfApi.dataset_info(...).sha``), so every file comes from the
  same snapshot even if the branch moves during the download;
- checks each file against the SHA-256 the Hub's file tree lists for it (``lfs.sha256``; the git
  blob id for a file outside LFS): ``huggingface_hub`` itself only compares sizes;
- leaves one ``train.parquet``, ``validation.parquet`` and ``test.parquet`` in its folder, the
  shared split schema (:mod:`stellar_nb.schema`), written atomically, so every later stage reads
  it like the simulated survey. :func:`load_paper_dataset` reads a subset of rows and columns
  without loading 50,000 spectra.

Settings: the Hub's base URL is :func:`stellar_nb.config.service_url` ``("huggingface")`` (the
argument, else ``$STELLAR_NB_HF_URL``), else ``huggingface_hub``'s own ``$HF_ENDPOINT``, else
``https://huggingface.co``; the token is ``huggingface_hub``'s (``$HF_TOKEN``, else a stored
``hf auth login``); ``$HF_HUB_ETAG_TIMEOUT``, ``$HF_HUB_DOWNLOAD_TIMEOUT`` and
``$HF_HUB_OFFLINE`` work as documented for ``huggingface_hub``. The shards stay in ``files/``
below the output folder (with ``huggingface_hub``'s ``.cache/huggingface`` bookkeeping), so a
rerun downloads only what is missing.
"""

import contextlib
import hashlib
import json
import os
import re
import warnings
from concurrent import futures
from pathlib import Path, PurePosixPath

import httpx2
import huggingface_hub
import pyarrow.parquet as pq
import tqdm.auto
from huggingface_hub import errors as hub_errors

from stellar_nb import __version__, config, files, schema
from stellar_nb.data import tables
from stellar_nb.data.download import DownloadError

__all__ = [
    "HF_URL",
    "REPOSITORY",
    "fetch_paper_dataset",
    "list_paper_dataset_files",
    "load_paper_dataset",
    "paper_dataset_dir",
]

HF_URL = config.SERVICE_URLS["huggingface"]
REPOSITORY = "BrunoBarreto/sdss_dr12_stars_regression"
#: File-name stems the Hub uses for each split.
_SPLIT_NAMES = {
    "train": ("train",),
    "validation": ("validation", "valid", "val", "dev"),
    "test": ("test",),
}
#: Digests of the shards already checked: ``{path: {"digest", "size", "mtime_ns"}}``.
_CHECKED_NAME = "checksums.json"


def paper_dataset_dir(data_home=None):
    """Folder of the paper's data set below the data home (``DATA_HOME/benchmark``)."""
    return config.data_home(data_home) / "benchmark"


def _split_of(path):
    parts = [part.lower() for part in PurePosixPath(path).parts]
    for split, names in _SPLIT_NAMES.items():
        for name in names:
            if name in parts[:-1] or re.match(rf"{name}([-_.]|$)", parts[-1]):
                return split
    return None


def _endpoint(base_url):
    """Our URL setting, or None to leave ``huggingface_hub`` to ``$HF_ENDPOINT`` / its default."""
    url = config.service_url("huggingface", base_url).rstrip("/")
    return None if url == HF_URL else url


def _api(base_url):
    return huggingface_hub.HfApi(
        endpoint=_endpoint(base_url), library_name="stellar_nb", library_version=__version__
    )


@contextlib.contextmanager
def _hub_errors(repository, label, path=None):
    """Raise ``huggingface_hub``'s errors as :class:`DownloadError` naming repo, revision, file."""
    where = f"{repository}@{label}" + (f": {path}" if path else "")
    try:
        yield
    except hub_errors.GatedRepoError as error:
        raise DownloadError(
            f"{where}: dataset {repository} is gated: accept its conditions on its Hub page and "
            "set HF_TOKEN to an access token of that account"
        ) from error
    except hub_errors.RepositoryNotFoundError as error:
        message = f"dataset {repository} not found (if it is private, set HF_TOKEN)"
        raise DownloadError(f"{where}: {message}") from error
    except hub_errors.RevisionNotFoundError as error:
        raise DownloadError(f"{where}: dataset {repository} has no such revision") from error
    except hub_errors.RemoteEntryNotFoundError as error:
        raise DownloadError(f"{where}: no such file at this revision") from error
    except hub_errors.OfflineModeIsEnabled as error:
        message = (
            "HF_HUB_OFFLINE is set; unset it to download (load_paper_dataset reads what is here)"
        )
        raise DownloadError(f"{where}: {message}") from error
    # httpx2: the HTTP client huggingface_hub raises from once its own retries are spent
    except (hub_errors.HfHubHTTPError, httpx2.HTTPError, OSError) as error:
        first_line = (str(error).strip().splitlines() or [""])[0]
        raise DownloadError(f"{where}: {type(error).__name__}: {first_line}") from error


def list_paper_dataset_files(*, base_url=None, repository=REPOSITORY, revision="main"):
    """Return ``{split: [huggingface_hub.hf_api.RepoFile, ...]}`` for the dataset's Parquet files.

    Each entry has the file's ``path``, ``size`` and, for LFS files, ``lfs.sha256``.

    Parameters
    ----------
    base_url : str, optional
        Hub base URL (see the module docstring).
    repository, revision : str
        Dataset and Git revision (branch, tag, ref such as ``refs/convert/parquet``, or commit).

    Raises
    ------
    stellar_nb.data.download.DownloadError
        If the Hub cannot be reached or refuses (the message names repository and revision).
    ValueError
        If a split has no Parquet file.
    """
    return _list_files(base_url, repository, revision, label=revision)


def _list_files(base_url, repository, revision, *, label):
    with _hub_errors(repository, label):
        entries = list(
            _api(base_url).list_repo_tree(
                repository, recursive=True, revision=revision, repo_type="dataset"
            )
        )
    found = {split: [] for split in schema.SPLITS}
    for entry in entries:
        split = _split_of(entry.path)
        if isinstance(entry, huggingface_hub.hf_api.RepoFile) and entry.path.endswith(".parquet"):
            if split is not None:
                found[split].append(entry)
    empty = [split for split, remotes in found.items() if not remotes]
    if empty:
        raise ValueError(f"{repository}@{label} lists no Parquet file for split(s) {empty}")
    return {
        split: sorted(remotes, key=lambda remote: remote.path) for split, remotes in found.items()
    }


def _digest(path, remote):
    """The digest the Hub lists for ``remote``, computed for the local ``path``."""
    if remote.lfs is not None:
        return files.sha256sum(path)
    digest = hashlib.sha1(b"blob %d\0" % path.stat().st_size)  # git's blob id
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class _Checked:
    """Shards whose digest matched, by size and mtime, so a rerun does not hash gigabytes again.

    ``{path in the repository: {"digest", "size", "mtime_ns"}}``, kept in ``checksums.json``.
    """

    def __init__(self, path):
        self.path = Path(path)
        try:
            self.entries = json.loads(self.path.read_text())
        except (FileNotFoundError, ValueError):
            self.entries = {}

    @staticmethod
    def _record(local, digest):
        stat = local.stat()
        return {"digest": digest, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}

    def matches(self, name, local, expected):
        """True when ``local`` is unchanged since its digest was found to be ``expected``."""
        return self.entries.get(name) == self._record(local, expected)

    def add(self, name, local, digest):
        """Record a checked file (one key per worker thread: a plain dict assignment is safe)."""
        self.entries[name] = self._record(local, digest)

    def write(self):
        """Write the record atomically."""
        files.write_json(self.path, self.entries)


class _QuietTqdm(tqdm.auto.tqdm):
    def __init__(self, *args, **kwargs):
        kwargs["disable"] = True
        super().__init__(*args, **kwargs)


def _fetch_file(remote, *, repository, commit, label, folder, endpoint, retries, progress, checked):
    """Download one shard into ``folder`` and check its digest; return its local path."""
    expected = remote.lfs.sha256 if remote.lfs is not None else remote.blob_id
    for attempt in range(int(retries) + 1):
        with _hub_errors(repository, label, remote.path):
            local = Path(
                huggingface_hub.hf_hub_download(
                    repository,
                    remote.path,
                    repo_type="dataset",
                    revision=commit,
                    local_dir=folder,
                    endpoint=endpoint,
                    force_download=attempt > 0,
                    library_name="stellar_nb",
                    library_version=__version__,
                    tqdm_class=None if progress else _QuietTqdm,
                )
            )
        if checked.matches(remote.path, local, expected):
            return local
        digest = _digest(local, remote)
        if digest == expected and local.stat().st_size == remote.size:
            checked.add(remote.path, local, digest)
            return local
        local.unlink()  # never leave a bad file under its final name
    raise DownloadError(
        f"{repository}@{label}: {remote.path}: checksum mismatch ({digest} != {expected} listed by "
        f"the Hub) after {int(retries) + 1} downloads"
    )


def _assemble(paths, destination, row_group_rows=1024):
    """Make ``destination`` one Parquet file with small row groups (for cheap row subsets).

    A single shard whose row groups are already small is hard-linked (no copy); otherwise the
    shards are streamed into a new file, ``row_group_rows`` rows per group, never all in memory.
    """
    metadata = pq.ParquetFile(paths[0]).metadata
    largest = max(
        (metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)), default=0
    )
    with files.atomic_path(destination) as temporary:
        if len(paths) == 1 and largest <= 2 * row_group_rows:
            temporary.unlink()  # os.link needs a free name
            try:
                os.link(paths[0], temporary)
            except OSError:
                temporary.write_bytes(Path(paths[0]).read_bytes())
        else:
            first = pq.ParquetFile(paths[0]).schema_arrow
            with pq.ParquetWriter(temporary, first, compression="zstd") as writer:
                for path in paths:
                    for batch in pq.ParquetFile(path).iter_batches(batch_size=row_group_rows):
                        writer.write_batch(batch.cast(first))


def _up_to_date(destination, shards):
    if not destination.is_file():
        return False
    newest = max(path.stat().st_mtime for path in shards)
    rows = sum(pq.ParquetFile(path).metadata.num_rows for path in shards)
    return (
        destination.stat().st_mtime >= newest
        and pq.ParquetFile(destination).metadata.num_rows == rows
    )


def _check_schema(path):
    names = set(pq.ParquetFile(path).schema_arrow.names)
    expected = {*schema.SCALAR_COLUMNS, *schema.ARRAY_COLUMNS, *schema.CATALOG_COLUMNS}
    missing = sorted(expected - names)
    if missing:
        warnings.warn(
            f"{path}: paper dataset file lacks columns {missing}", UserWarning, stacklevel=3
        )


def fetch_paper_dataset(
    out_dir=None,
    *,
    base_url=None,
    repository=REPOSITORY,
    revision="main",
    workers=3,
    retries=1,
    progress=True,
):
    """Download the paper's data set and return the folder holding its three split files.

    Parameters
    ----------
    out_dir : str or pathlib.Path, optional
        Default :func:`paper_dataset_dir` of the data home.
    base_url : str, optional
        Hub base URL (see the module docstring).
    repository, revision : str
        Dataset and Git revision (a tag or commit pins the data).
    workers : int
        Files downloaded in parallel.
    retries : int
        Further downloads of a file whose checksum does not match. Network errors are retried
        by ``huggingface_hub`` itself (5 times, with back-off).
    progress : bool
        Show progress bars.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    stellar_nb.data.download.DownloadError
        If a file could not be fetched or failed its checksum, naming the repository, revision
        and file(s); a gated dataset without a token says to set ``HF_TOKEN``. Files already
        checked stay (a rerun fetches only the rest); nothing partial is left under a final name.
    ValueError
        If ``workers`` or ``retries`` is out of range, or a split has no Parquet file.
    """
    if int(workers) < 1 or int(retries) < 0:
        raise ValueError(f"workers must be >= 1 and retries >= 0, got {workers} and {retries}")
    out_dir = Path(out_dir) if out_dir is not None else paper_dataset_dir()
    with _hub_errors(repository, revision):
        commit = _api(base_url).dataset_info(repository, revision=revision).sha
    label = revision if revision == commit else f"{revision} (commit {commit})"
    listing = _list_files(base_url, repository, commit, label=label)
    folder = out_dir / "files"
    folder.mkdir(parents=True, exist_ok=True)
    checked = _Checked(out_dir / _CHECKED_NAME)
    failures = {}
    with futures.ThreadPoolExecutor(max_workers=int(workers)) as pool:
        jobs = {
            pool.submit(
                _fetch_file,
                remote,
                repository=repository,
                commit=commit,
                label=label,
                folder=folder,
                endpoint=_endpoint(base_url),
                retries=retries,
                progress=progress,
                checked=checked,
            ): remote
            for remotes in listing.values()
            for remote in remotes
        }
        for job in futures.as_completed(jobs):
            try:
                job.result()
            except DownloadError as error:
                failures[jobs[job].path] = str(error)
    checked.write()
    if failures:
        lines = [f"{len(failures)} of {len(jobs)} file(s) failed:"]
        lines += [f"  {reason}" for _, reason in sorted(failures.items())]
        raise DownloadError("\n".join(lines))
    for split, remotes in listing.items():
        destination = tables.split_path(out_dir, split)
        shards = [folder / remote.path for remote in remotes]
        if not _up_to_date(destination, shards):
            _assemble(shards, destination)
        _check_schema(destination)
    return out_dir


def load_paper_dataset(split, data_home=None, columns=None, rows=None):
    """Read (part of) a split of the paper's data set downloaded by :func:`fetch_paper_dataset`.

    Parameters
    ----------
    split : {"train", "validation", "test"}
    data_home : str or pathlib.Path, optional
        Data home (the data set is in its ``benchmark`` folder), or that folder itself.
    columns : sequence of str, optional
        Columns to read; scalars only is cheap.
    rows : slice or sequence of int, optional
        Rows to read; only the Parquet row groups holding them are decoded.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    FileNotFoundError
        If the split is not downloaded (the message says how to fetch it).
    """
    folder = Path(data_home) if data_home is not None else None
    if folder is None or not tables.split_path(folder, split).is_file():
        folder = paper_dataset_dir(data_home)
    if not tables.split_path(folder, split).is_file():
        raise FileNotFoundError(
            f"paper dataset split {split!r} not found in {folder}; run `stellar-nb fetch paper-dataset` "
            "or stellar_nb.data.fetch_paper_dataset() (needs the internet)"
        )
    return tables.read_split(folder, split, columns=columns, rows=rows)
