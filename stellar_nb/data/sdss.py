"""SDSS DR12 stars with SSPP labels: catalogue query, spectrum download, split tables.

1. :func:`query_sspp` asks SkyServer ``SqlSearch`` (through :mod:`stellar_nb.data.skyserver`)
   for DR12 ``sppParams`` joined with ``specObj``: SSPP's adopted ``TEFFADOP``, ``FEHADOP``,
   ``LOGGADOP`` and their ``...UNC``, the radial velocity ``ELODIERVFINAL`` /
   ``ELODIERVFINALERR`` (km/s), ``SNR``, ``FLAG``, plate/MJD/fiber and coordinates. Cuts:
   ``CLASS = 'STAR'``, science-primary, S/N at least ``min_snr``, no -9999 label, positive
   uncertainties, and no critical SSPP flag (:func:`reliable_flag`; the count dropped is
   reported). Pages follow each other by ``specObjID``.
2. :func:`download_spectra` fetches each row's DR12 ``spec-lite`` file from the SAS.
3. :func:`stellar_nb.data.splits.build_splits` reads the files, rejects what is unusable (naming file and reason) and
   writes seeded ``train``/``validation``/``test`` Parquet tables in :mod:`stellar_nb.schema`.

Base URLs: arguments, else ``$STELLAR_NB_SKYSERVER_URL`` / ``$STELLAR_NB_SAS_URL``, else the
public DR12 services (the tests serve stand-ins on loopback).

What we checked against: each external contract (``sppParams`` and ``specObjAll`` columns, SSPP
``FLAG`` letters, SkyServer parameters and error forms, SAS paths) and its public source is listed
in ``stellar_nb/data/README.md``.
"""

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import requests

from stellar_nb import config, schema
from stellar_nb.data import download, skyserver

__all__ = [
    "GOOD_FLAG_FIRST_LETTERS",
    "SAS_MAX_WORKERS",
    "SAS_URL",
    "SKYSERVER_URL",
    "SkyServerError",
    "build_query",
    "clean_catalogue",
    "download_spectra",
    "query_sspp",
    "reliable_flag",
    "spectrum_path",
]

SKYSERVER_URL = config.SERVICE_URLS["skyserver"]
SAS_URL = config.SERVICE_URLS["sas"]
MISSING = -9999.0
_TEXT_COLUMNS = ("specobjid", "class", "subclass", "run2d", "flag")
_INT64_MAX = np.iinfo(np.int64).max
#: SkyServer column (lower case) -> schema column. DR12 sppParams has no RVADOP (that name is
#: the ssppOut FITS files'); its radial velocity is ELODIERVFINAL, which the query aliases.
COLUMNS = {
    "specobjid": "spec_id", "plate": "plate", "mjd": "mjd", "fiberid": "fiber", "ra": "ra",
    "dec": "dec", "snr": "snr", "elodiervfinal": "rv_adop", "rv_adop": "rv_adop",
    "elodiervfinalerr": "rv_adop_unc", "flag": "flag", "teffadop": "catalog_teff",
    "fehadop": "catalog_feh", "loggadop": "catalog_logg", "teffadopunc": "catalog_teff_unc",
    "fehadopunc": "catalog_feh_unc", "loggadopunc": "catalog_logg_unc", "class": "objclass",
    "subclass": "subclass", "z": "z", "run2d": "run2d",
}  # fmt: skip


SkyServerError = skyserver.SkyServerError
#: Most parallel SAS connections: the SAS is one shared static server for every SDSS user, and
#: SDSS points bulk users to rsync; a few connections hide latency without hogging it.
SAS_MAX_WORKERS = 8

#: SSPP ``FLAG`` first letters kept: ``n``, "appears normal". Every other first letter is a
#: critical flag (D white dwarf, d sdO/sdB, H hot star, h helium lines, E emission lines, S sky,
#: V no radial velocity, N noisy, C g-r colour mismatch, ...), for which the SSPP ignores or
#: rescues its parameter estimates; later letters are cautionary and kept.
GOOD_FLAG_FIRST_LETTERS = ("n",)


def build_query(top, after=0, min_snr=10.0):
    """Return the SQL for one page: at most ``top`` stars with ``specObjID > after``.

    Columns are DR12 ``SpecObj`` (``s.``) and ``sppParams`` (``p.``) names; the radial velocity
    is ``ELODIERVFINAL`` (km/s, SSPP's 7.3 km/s offset applied), returned as ``rv_adop``.
    ``FLAG`` is selected, not filtered on, so :func:`query_sspp` can count what it drops.
    """
    return (
        f"SELECT TOP {int(top)} s.specObjID, s.plate, s.mjd, s.fiberID, s.ra, s.dec, s.class, "
        "s.subClass, s.z, s.run2d, p.snr, p.flag, p.teffadop, p.teffadopunc, p.fehadop, "
        "p.fehadopunc, p.loggadop, p.loggadopunc, p.elodiervfinal AS rv_adop, "
        "p.elodiervfinalerr "
        "FROM sppParams AS p JOIN specObj AS s ON s.specObjID = p.specObjID "
        f"WHERE s.class = 'STAR' AND s.sciencePrimary = 1 AND p.snr >= {float(min_snr)} "
        "AND p.teffadop > -9999 AND p.fehadop > -9999 AND p.loggadop > -9999 "
        "AND p.teffadopunc > 0 AND p.fehadopunc > 0 AND p.loggadopunc > 0 "
        f"AND s.specObjID > {int(after)} ORDER BY s.specObjID"
    )


def _page(text_frame, url):
    if "specobjid" not in text_frame.columns:
        raise SkyServerError(
            f"{url} answered a table without specObjID: columns {list(text_frame.columns)}",
            permanent=True,
        )
    frame = text_frame.copy()
    for column in frame.columns:
        if column not in _TEXT_COLUMNS:
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


def reliable_flag(flags):
    """Boolean mask: SSPP ``FLAG`` values whose first letter is in :data:`GOOD_FLAG_FIRST_LETTERS`."""
    return pd.Series(flags, dtype=str).str[:1].isin(GOOD_FLAG_FIRST_LETTERS).to_numpy()


def query_sspp(
    n, *, base_url=None, page_size=10_000, timeout=skyserver.TIMEOUT, min_snr=10.0, retries=3
):
    """Query DR12 SSPP stars: at most ``n`` rows in the shared schema's column names.

    Parameters
    ----------
    n : int
        Number of stars wanted (the paper: 50,000).
    base_url : str, optional
        SqlSearch endpoint; default ``$STELLAR_NB_SKYSERVER_URL`` or :data:`SKYSERVER_URL`.
    page_size : int
        Rows per request; pages follow each other by ``specObjID``.
    timeout : float or (float, float)
        Seconds to connect / to wait for a page (default fits the server's 600 s limit).
    min_snr : float
        Lowest SSPP S/N kept.
    retries : int
        Further attempts after a transient error (see :mod:`stellar_nb.data.skyserver`).

    Returns
    -------
    pandas.DataFrame
        ``spec_id, plate, mjd, fiber, ra, dec, snr, rv_adop, rv_adop_unc, flag, catalog_*,
        catalog_*_unc, objclass, subclass, z, run2d``, cleaned by :func:`clean_catalogue`.
        Stars whose SSPP ``FLAG`` is critical (:func:`reliable_flag`) are dropped; their count
        is ``frame.attrs["dropped_flag"]`` and a warning names it. Rows come in ``specObjID``
        (that is, plate) order, so the first ``n`` stars are not a random sample of DR12;
        :func:`stellar_nb.data.splits.build_splits` shuffles within them.

    Raises
    ------
    SkyServerError
        If the service fails after the retries, rejects the query (quoting its message) or
        answers something that is not a table.
    """
    if int(n) < 1 or int(page_size) < 1:
        raise ValueError(f"n and page_size must be positive, got n={n}, page_size={page_size}")
    url = config.service_url("skyserver", base_url)
    pages, after, remaining, dropped = [], 0, int(n), 0
    with requests.Session() as session:
        while remaining > 0:
            top = min(int(page_size), remaining)
            sql = build_query(top, after, min_snr)
            page = _page(
                skyserver.sql_search(
                    sql, base_url=url, timeout=timeout, retries=retries, session=session
                ),
                url,
            )
            if page.empty:
                break
            after = max(int(value) for value in page["specobjid"])
            full = len(page) == top
            good = reliable_flag(page["flag"])
            dropped += int((~good).sum())
            page = page.loc[good]
            pages.append(page)
            remaining -= len(page)
            if not full:
                break
    frame = pd.concat(pages, ignore_index=True) if pages else pd.DataFrame(columns=list(COLUMNS))
    if dropped:
        warnings.warn(
            f"{url}: dropped {dropped} star(s) whose SSPP FLAG is critical (first letter not "
            f"{'/'.join(GOOD_FLAG_FIRST_LETTERS)})",
            UserWarning,
            stacklevel=2,
        )
    frame = clean_catalogue(frame.rename(columns=COLUMNS), source=url)
    frame.attrs["dropped_flag"] = dropped
    return frame


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
    # Checked against SDSS's own path rules (sdss/tree data/sdss_paths.ini ``spec-lite`` =
    # ``%spectrodir/{run2d}/spectra/lite/{plateid:0>4}/spec-{plateid:0>4}-{mjd}-{fiberid:0>4}.fits``,
    # ``spec`` the same without ``lite/``; sdss_access path.py ``spectrodir`` picks
    # $SPECTRO_REDUX = sdss/spectro/redux for run2d 26, 103, 104 and $BOSS_SPECTRO_REDUX =
    # boss/spectro/redux otherwise, data/dr12.cfg). We do not depend on sdss_access: for these
    # two templates it would add the sdss-tree package and its SAS environment variables, and
    # its downloader would bypass our checksummed, resumable one. DR12's run2d values (26, 103,
    # 104, v5_7_0, v5_7_2) split the same way under both rules.
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
    if not 1 <= int(workers) <= SAS_MAX_WORKERS:
        raise ValueError(f"workers must be 1 to {SAS_MAX_WORKERS} for the SAS, got {workers}")
    base = config.service_url("sas", base_url).rstrip("/")
    remote = [
        download.RemoteFile(url=f"{base}/{relative}", name=relative)
        for relative in (spectrum_path(row) for _, row in catalogue.iterrows())
    ]
    return download.download(
        remote, out_dir, workers=workers, retries=retries, timeout=timeout,
        check=_looks_like_fits, progress=progress, description="SDSS spectra",
    )  # fmt: skip
