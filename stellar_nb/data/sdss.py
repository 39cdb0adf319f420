"""SDSS DR12 stars with SSPP labels: catalogue query, spectrum download, split tables.

1. :func:`query_sspp` asks the SkyServer ``SqlSearch`` service for DR12 ``sppParams`` joined with
   ``specObj``: the SEGUE Stellar Parameter Pipeline's adopted Teff, [Fe/H], log g and radial
   velocity (``TEFFADOP``, ``FEHADOP``, ``LOGGADOP``, ``RVADOP`` and their ``...UNC``), S/N,
   plate/MJD/fiber and coordinates. Quality cuts: ``CLASS = 'STAR'``, science-primary spectra,
   S/N at least ``min_snr`` (the paper's benchmark starts at 10), no label equal to -9999 (SSPP's
   "no value") and positive uncertainties. Results are paged by ``specObjID`` so 50,000+ rows
   come in pieces the service accepts.
2. :func:`download_spectra` fetches each row's DR12 ``spec-lite`` file from the Science Archive
   Server through :func:`stellar_nb.data.download.download` (parallel, resumable, checksummed).
3. :func:`build_splits` reads the files, rejects what is unusable (naming file and reason) and
   writes ``train``/``validation``/``test`` Parquet tables in the shared schema
   (:mod:`stellar_nb.schema`) after a seeded shuffle: 30,000 / 5,000 / 15,000 by default.

Base URLs come from arguments, else ``$STELLAR_NB_SKYSERVER_URL`` and ``$STELLAR_NB_SAS_URL``, else
the public DR12 services (the tests serve stand-ins for both on loopback).
"""

import dataclasses
import io
import re
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import requests
import tqdm.auto

from stellar_nb import config, schema
from stellar_nb.data import download, fits, tables

__all__ = [
    "SAS_URL",
    "SKYSERVER_URL",
    "BuildReport",
    "SkyServerError",
    "build_query",
    "build_splits",
    "clean_catalogue",
    "download_spectra",
    "query_sspp",
    "spectrum_path",
]

SKYSERVER_URL = config.SERVICE_URLS["skyserver"]
SAS_URL = config.SERVICE_URLS["sas"]
MISSING = -9999.0
_TEXT_COLUMNS = ("specobjid", "class", "subclass", "run2d")
_INT64_MAX = np.iinfo(np.int64).max
#: SkyServer column (lower case) -> schema column.
COLUMNS = {
    "specobjid": "spec_id", "plate": "plate", "mjd": "mjd", "fiberid": "fiber", "ra": "ra",
    "dec": "dec", "snr": "snr", "rvadop": "rv_adop", "teffadop": "catalog_teff",
    "fehadop": "catalog_feh", "loggadop": "catalog_logg", "teffadopunc": "catalog_teff_unc",
    "fehadopunc": "catalog_feh_unc", "loggadopunc": "catalog_logg_unc", "class": "objclass",
    "subclass": "subclass", "z": "z", "run2d": "run2d",
}  # fmt: skip


class SkyServerError(RuntimeError):
    """The SkyServer SQL service failed or answered something that is not a result table."""


def build_query(top, after=0, min_snr=10.0):
    """Return the SQL for one page: at most ``top`` stars with ``specObjID > after``."""
    return (
        f"SELECT TOP {int(top)} s.specObjID, s.plate, s.mjd, s.fiberID, s.ra, s.dec, s.class, "
        "s.subClass, s.z, s.run2d, p.snr, p.teffadop, p.teffadopunc, p.fehadop, p.fehadopunc, "
        "p.loggadop, p.loggadopunc, p.rvadop "
        "FROM sppParams AS p JOIN specObj AS s ON s.specObjID = p.specObjID "
        f"WHERE s.class = 'STAR' AND s.sciencePrimary = 1 AND p.snr >= {float(min_snr)} "
        "AND p.teffadop > -9999 AND p.fehadop > -9999 AND p.loggadop > -9999 "
        "AND p.teffadopunc > 0 AND p.fehadopunc > 0 AND p.loggadopunc > 0 "
        f"AND s.specObjID > {int(after)} ORDER BY s.specObjID"
    )


def _parse(text, url):
    lines = text.lstrip().splitlines()
    if lines and lines[0].startswith("#Table"):
        lines = lines[1:]
    if not lines or "specobjid" not in lines[0].lower():
        snippet = " ".join(text.split())[:300]
        raise SkyServerError(f"{url} did not return a result table: {snippet!r}")
    # everything as text first: specObjID can exceed int64 and run2d mixes "26" and "v5_7_0"
    frame = pd.read_csv(io.StringIO("\n".join(lines)), dtype=str, keep_default_na=False)
    frame.columns = [column.strip().lower() for column in frame.columns]
    for column in frame.columns:
        frame[column] = frame[column].str.strip()
        if column not in _TEXT_COLUMNS:
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


def _get(session, url, sql, timeout, retries):
    for attempt in range(retries + 1):
        try:
            response = session.get(url, params={"cmd": sql, "format": "csv"}, timeout=timeout)
        except (requests.ConnectionError, requests.Timeout) as error:
            reason = f"{type(error).__name__}: {re.sub(r'[?]cmd=[^ ]*', '?cmd=...', str(error))}"
        else:
            if response.status_code == 200:
                return response.text
            reason = f"HTTP {response.status_code}: {' '.join(response.text.split())[:300]}"
            if response.status_code < 500 and response.status_code != 429:
                break
        if attempt < retries:
            time.sleep(0.5 * 2**attempt)
    raise SkyServerError(f"SkyServer query to {url} failed: {reason}")


def query_sspp(n, *, base_url=None, page_size=10_000, timeout=120.0, min_snr=10.0, retries=3):
    """Query DR12 SSPP stars: at most ``n`` rows in the shared schema's column names.

    Parameters
    ----------
    n : int
        Number of stars wanted (the paper: 50,000).
    base_url : str, optional
        SqlSearch endpoint; default ``$STELLAR_NB_SKYSERVER_URL`` or :data:`SKYSERVER_URL`.
    page_size : int
        Rows per request; pages follow each other by ``specObjID``.
    timeout : float
        Seconds per request.
    min_snr : float
        Lowest SSPP S/N kept.
    retries : int
        Further attempts after a timeout, connection error or HTTP 5xx.

    Returns
    -------
    pandas.DataFrame
        ``spec_id, plate, mjd, fiber, ra, dec, snr, rv_adop, catalog_*, catalog_*_unc,
        objclass, subclass, z, run2d``, cleaned by :func:`clean_catalogue`. Rows come in
        ``specObjID`` (that is, plate) order, so the first ``n`` stars are not a random sample
        of DR12; :func:`build_splits` shuffles within them.

    Raises
    ------
    SkyServerError
        If the service fails after the retries or answers something that is not a table.
    """
    if int(n) < 1 or int(page_size) < 1:
        raise ValueError(f"n and page_size must be positive, got n={n}, page_size={page_size}")
    url = config.service_url("skyserver", base_url)
    pages, after, remaining = [], 0, int(n)
    with requests.Session() as session:
        while remaining > 0:
            top = min(int(page_size), remaining)
            page = _parse(
                _get(session, url, build_query(top, after, min_snr), timeout, retries), url
            )
            if page.empty:
                break
            pages.append(page)
            remaining -= len(page)
            after = max(int(value) for value in page["specobjid"])
            if len(page) < top:
                break
    frame = pd.concat(pages, ignore_index=True) if pages else pd.DataFrame(columns=list(COLUMNS))
    return clean_catalogue(frame.rename(columns=COLUMNS), source=url)


def clean_catalogue(frame, source="catalogue"):
    """Drop rows with missing labels (-9999 or NaN), duplicate or out-of-range ``spec_id``.

    Warns (naming ``source`` and the ``spec_id`` values) for each kind of row dropped; returns a
    new frame with ``spec_id`` as int64 and a fresh index.
    """
    frame = frame.copy()
    ids = pd.Series(
        [
            int(value) if str(value).strip().lstrip("-").isdigit() else -1
            for value in frame["spec_id"]
        ]
    )
    bad_id = (ids < 0) | (ids > _INT64_MAX)
    labels = [
        column
        for column in (*schema.CATALOG_COLUMNS, *schema.UNCERTAINTY_COLUMNS)
        if column in frame
    ]
    values = frame[labels].apply(pd.to_numeric, errors="coerce")
    missing = (values.isna() | (values <= MISSING)).any(axis=1).to_numpy()
    for mask, what in (
        (bad_id.to_numpy(), "an invalid or out-of-int64 spec_id"),
        (missing & ~bad_id.to_numpy(), "missing labels (-9999)"),
    ):
        if mask.any():
            shown = ", ".join(str(v) for v in frame.loc[mask, "spec_id"].head(5))
            warnings.warn(
                f"{source}: dropped {int(mask.sum())} row(s) with {what}: {shown}",
                UserWarning,
                stacklevel=2,
            )
    keep = ~(bad_id.to_numpy() | missing)
    frame = frame.loc[keep].reset_index(drop=True)
    frame["spec_id"] = ids[keep].to_numpy(dtype=np.int64)
    duplicated = frame["spec_id"].duplicated().to_numpy()
    if duplicated.any():
        shown = ", ".join(str(v) for v in frame.loc[duplicated, "spec_id"].head(5))
        warnings.warn(
            f"{source}: dropped {int(duplicated.sum())} duplicate spec_id row(s): {shown}",
            UserWarning,
            stacklevel=2,
        )
        frame = frame.loc[~duplicated].reset_index(drop=True)
    for column in ("plate", "mjd", "fiber"):
        if column in frame:
            frame[column] = frame[column].astype(np.int64)
    return frame


def spectrum_path(row):
    """Relative DR12 SAS path of a row's ``spec-lite`` file.

    SDSS-I/II and SEGUE spectra (numeric ``run2d`` such as 26, 103, 104) live in the ``sdss``
    tree, BOSS spectra (``run2d`` like ``v5_7_0``) in the ``boss`` tree.
    """
    run2d = str(row.get("run2d", "26")).strip()
    tree = "boss" if run2d.startswith("v") else "sdss"
    plate, mjd, fiber = int(row["plate"]), int(row["mjd"]), int(row["fiber"])
    return f"{tree}/spectro/redux/{run2d}/spectra/lite/{plate:04d}/spec-{plate:04d}-{mjd:05d}-{fiber:04d}.fits"


def _looks_like_fits(path):
    size = Path(path).stat().st_size
    with open(path, "rb") as handle:
        start = handle.read(30)
    if not start.startswith(b"SIMPLE  =") or b"T" not in start[9:30]:
        raise ValueError(f"{path} is not a FITS file (starts {start[:20]!r})")
    if size % 2880:
        raise ValueError(
            f"{path} is truncated: {size} bytes is not a whole number of 2880-byte FITS blocks"
        )


def download_spectra(
    catalogue, out_dir, *, base_url=None, workers=8, retries=3, timeout=60.0, progress=True
):
    """Download the ``spec-lite`` file of every catalogue row into ``out_dir`` (SAS layout).

    Parameters
    ----------
    catalogue : pandas.DataFrame
        Rows with ``plate``, ``mjd``, ``fiber``, ``run2d`` (as from :func:`query_sspp`).
    out_dir : str or pathlib.Path
    base_url : str, optional
        SAS base; default ``$STELLAR_NB_SAS_URL`` or :data:`SAS_URL`.
    workers, retries, timeout, progress
        As for :func:`stellar_nb.data.download.download`.

    Returns
    -------
    stellar_nb.data.download.DownloadReport
        Files that are not FITS, or not whole FITS blocks, are deleted and listed as failed.
    """
    base = config.service_url("sas", base_url).rstrip("/")
    remote = [
        download.RemoteFile(url=f"{base}/{relative}", name=relative)
        for relative in (spectrum_path(row) for _, row in catalogue.iterrows())
    ]
    return download.download(
        remote, out_dir, workers=workers, retries=retries, timeout=timeout,
        check=_looks_like_fits, progress=progress, description="SDSS spectra",
    )  # fmt: skip


@dataclasses.dataclass
class BuildReport:
    """What :func:`build_splits` wrote and rejected.

    Attributes
    ----------
    counts : dict
        Rows written per split.
    rejected : dict
        ``spec_id -> reason`` (the reason names the file).
    notes : dict
        ``spec_id -> note`` for spectra kept despite a quality warning (e.g. NaN pixels masked).
    """

    counts: dict
    rejected: dict
    notes: dict


def _inspect(path, row):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", fits.SpectrumQualityWarning)
        spectrum = fits.read_spectrum(path)
    messages = [
        str(w.message) for w in caught if issubclass(w.category, fits.SpectrumQualityWarning)
    ]
    meta = spectrum.meta
    if (meta["plate"], meta["mjd"], meta["fiber"]) != (row["plate"], row["mjd"], row["fiber"]):
        raise ValueError(
            f"{path}: file holds plate-mjd-fiber {meta['plate']}-{meta['mjd']}-{meta['fiber']}, "
            f"catalogue says {row['plate']}-{row['mjd']}-{row['fiber']}"
        )
    if meta["objclass"] not in (None, "STAR"):
        raise ValueError(f"{path}: CLASS {meta['objclass']} ({meta['subclass']}): not a star")
    if not np.any(spectrum.ivar > 0):
        raise ValueError(f"{path}: no pixel has ivar > 0")
    return spectrum, "; ".join(messages)


def build_splits(
    catalogue, spectra_dir, out_dir, *, sizes=(30_000, 5_000, 15_000), seed=0, progress=True
):
    """Write train/validation/test Parquet tables from a catalogue and its downloaded spectra.

    Every row whose file is missing, unreadable, of another object, not a star or without a
    valid pixel is rejected and reported (never fatal). The usable rows are shuffled with
    ``numpy.random.default_rng(seed)`` and cut into ``sizes``; if fewer rows are usable, the sizes
    shrink in proportion (with a warning).

    Returns
    -------
    BuildReport
    """
    if len(sizes) != len(schema.SPLITS) or min(sizes) < 0:
        raise ValueError(
            f"sizes must be three non-negative counts (train, validation, test), got {sizes}"
        )
    catalogue = clean_catalogue(catalogue, source="build_splits catalogue")
    spectra_dir, out_dir = Path(spectra_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rejected, notes, usable = {}, {}, []
    rows = list(catalogue.iterrows())
    for position, row in tqdm.auto.tqdm(
        rows, desc="checking spectra", unit="file", disable=not progress
    ):
        path = spectra_dir / spectrum_path(row)
        try:
            if not path.is_file():
                raise ValueError(f"{path}: not downloaded")
            _, note = _inspect(path, row)
        except ValueError as error:
            rejected[int(row["spec_id"])] = str(error)
            continue
        if note:
            notes[int(row["spec_id"])] = note
        usable.append(position)
    total = sum(sizes)
    if len(usable) < total:
        scaled = [int(len(usable) * size / total) for size in sizes] if total else [0, 0, 0]
        warnings.warn(
            f"only {len(usable)} usable spectra for splits of {tuple(sizes)}; writing {tuple(scaled)}",
            UserWarning,
            stacklevel=2,
        )
        sizes = scaled
    order = np.random.default_rng(seed).permutation(np.asarray(usable, dtype=np.int64))
    bounds = np.cumsum([0, *sizes])
    counts = {}
    for split, start, stop in zip(schema.SPLITS, bounds[:-1], bounds[1:], strict=True):
        records = []
        for position in order[start:stop]:
            row = catalogue.iloc[int(position)]
            spectrum, _ = _inspect(spectra_dir / spectrum_path(row), row)
            record = {column: row[column] for column in schema.SCALAR_COLUMNS}
            record.update(
                flux=spectrum.flux,
                loglam=spectrum.loglam,
                ivar=spectrum.ivar,
                mask=spectrum.and_mask,
            )
            record.update(
                {
                    column: float(row[column])
                    for column in (*schema.CATALOG_COLUMNS, *schema.UNCERTAINTY_COLUMNS)
                }
            )
            records.append(record)
        frame = pd.DataFrame.from_records(
            records,
            columns=[
                *schema.SCALAR_COLUMNS,
                *schema.ARRAY_COLUMNS,
                *schema.CATALOG_COLUMNS,
                *schema.UNCERTAINTY_COLUMNS,
            ],
        )
        for column in ("spec_id", "plate", "mjd", "fiber"):
            frame[column] = frame[column].astype(np.int64)
        tables.write_split(frame, tables.split_path(out_dir, split))
        counts[split] = len(frame)
    if rejected:
        shown = "; ".join(list(rejected.values())[:3])
        warnings.warn(
            f"{len(rejected)} spectra rejected (see BuildReport.rejected), e.g. {shown}",
            UserWarning,
            stacklevel=2,
        )
    return BuildReport(counts=counts, rejected=rejected, notes=notes)
