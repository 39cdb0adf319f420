"""The paper's public data set: Hugging Face dataset ``BrunoBarreto/sdss_dr12_stars_regression``.

(Called "the benchmark" in the paper; here "paper dataset", so as not to be confused with the
speed benchmarks of :mod:`stellar_nb.bench`.) :func:`fetch_paper_dataset` lists the dataset's
Parquet files through the Hub's file-tree API
(``/api/datasets/REPO/tree/REVISION``, which also gives each file's size and SHA-256), downloads
them through plain ``resolve`` URLs with :func:`stellar_nb.data.download.download` (parallel,
resumable, checksummed) and leaves one ``train.parquet``, ``validation.parquet`` and
``test.parquet`` in its folder: the shared split schema (:mod:`stellar_nb.schema`), so
every later stage reads it like the simulated survey. :func:`load_paper_dataset` reads a subset of
rows and columns without loading 50,000 spectra.

The Hub's base URL is :func:`stellar_nb.config.service_url` ``("huggingface")``: the argument, else
``$STELLAR_NB_HF_URL``, else
``https://huggingface.co`` (the tests serve a stand-in on loopback).
"""

import os
import re
import warnings
from pathlib import Path, PurePosixPath

import pyarrow.parquet as pq
import requests

from stellar_nb import config, files, schema
from stellar_nb.data import download, tables

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


def list_paper_dataset_files(
    *, base_url=None, repository=REPOSITORY, revision="main", timeout=60.0
):
    """Return ``{split: [RemoteFile, ...]}`` for the dataset's Parquet files.

    Raises
    ------
    ValueError
        If the listing fails or a split has no Parquet file.
    """
    base = config.service_url("huggingface", base_url).rstrip("/")
    url = f"{base}/api/datasets/{repository}/tree/{revision}"
    entries, page, params = [], url, {"recursive": "true"}
    while page:  # the Hub pages long listings through a Link: <...>; rel="next" header
        try:
            response = requests.get(page, params=params, timeout=timeout)
        except (requests.ConnectionError, requests.Timeout) as error:
            raise ValueError(f"cannot list {url}: {type(error).__name__}: {error}") from None
        if response.status_code != 200:
            raise ValueError(
                f"cannot list {url}: HTTP {response.status_code}: {response.text[:200]}"
            )
        try:
            entries += response.json()
        except ValueError:
            raise ValueError(f"{url} did not return JSON: {response.text[:200]!r}") from None
        page, params = response.links.get("next", {}).get("url"), None
    found = {split: [] for split in schema.SPLITS}
    for entry in entries:
        path = entry.get("path", "")
        split = _split_of(path)
        if entry.get("type") != "file" or not path.endswith(".parquet") or split is None:
            continue
        lfs = entry.get("lfs") or {}
        found[split].append(
            download.RemoteFile(
                url=f"{base}/datasets/{repository}/resolve/{revision}/{path}",
                name=f"files/{path}",
                sha256=lfs.get("oid"),
                size=lfs.get("size", entry.get("size")),
            )
        )
    empty = [split for split, remotes in found.items() if not remotes]
    if empty:
        raise ValueError(f"{url} lists no Parquet file for split(s) {empty}")
    return {
        split: sorted(remotes, key=lambda remote: remote.name) for split, remotes in found.items()
    }


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
    retries=3,
    progress=True,
):
    """Download the paper's data set and return the folder holding its three split files.

    Parameters
    ----------
    out_dir : str or pathlib.Path, optional
        Default :func:`paper_dataset_dir` of the data home.
    base_url : str, optional
        Hugging Face Hub base; default ``$STELLAR_NB_HF_URL`` or :data:`HF_URL`.
    repository, revision : str
        Dataset and Git revision (a tag or commit pins the data).
    workers : int
        Parallel connections.
    retries : int
        Further attempts per file after a retryable failure.
    progress : bool
        Show a progress bar.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    stellar_nb.data.download.DownloadError
        If a file could not be fetched or failed its checksum (nothing partial is left behind;
        a rerun resumes).
    """
    out_dir = Path(out_dir) if out_dir is not None else paper_dataset_dir()
    listing = list_paper_dataset_files(base_url=base_url, repository=repository, revision=revision)
    report = download.download(
        [remote for remotes in listing.values() for remote in remotes],
        out_dir,
        workers=workers,
        retries=retries,
        progress=progress,
        description="paper dataset",
    )
    report.raise_for_failures()
    for split, remotes in listing.items():
        destination = tables.split_path(out_dir, split)
        shards = [out_dir / remote.name for remote in remotes]
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
