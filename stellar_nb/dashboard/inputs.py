"""Where the dashboard's spectra come from: an upload, an SDSS download, a row of the test split.

Each way in ends in a :class:`stellar_nb.data.fits.Spectrum`. Nothing uploaded or downloaded is
executed or unpickled: FITS bytes are parsed by :func:`stellar_nb.data.fits.read_spectrum` and
nothing else. Every failure becomes a :class:`DashboardInputError` whose message the dashboard
shows to the user as it is.
"""

import warnings

import numpy as np
from astropy.io import fits as astropy_fits

from stellar_nb import config
from stellar_nb.data import download, fits

__all__ = [
    "MAX_UPLOAD_BYTES",
    "DashboardInputError",
    "fetch_spectrum",
    "read_upload",
    "spectrum_from_row",
]

#: Largest accepted upload; the browser refuses larger files before sending them.
MAX_UPLOAD_BYTES = 20 * 1024 * 1024


class DashboardInputError(ValueError):
    """A spectrum the dashboard cannot analyse; the message is shown to the user as it is."""


def _lookup_sql(plate, mjd, fiber):
    """SQL for the reduction of one DR12 spectrum (the science-primary one first)."""
    return (
        "SELECT TOP 1 specObjID, run2d, sciencePrimary FROM specObjAll "
        f"WHERE plate = {int(plate)} AND mjd = {int(mjd)} AND fiberID = {int(fiber)} "
        "ORDER BY sciencePrimary DESC"
    )


def fetch_spectrum(plate, mjd, fiber, *, base_url=None, skyserver_url=None, timeout=20.0):
    """Download one DR12 ``spec-lite`` file by plate-MJD-fiber and read it.

    One SkyServer query (``specObjAll`` by plate, MJD and fiber) gives the spectrum's ``run2d``;
    :func:`stellar_nb.data.sdss.spectrum_path` turns it into the SAS path: SDSS-I/II and SEGUE
    reductions (``26``, ``103``, ``104``) under ``sdss/spectro/redux/RUN2D``, BOSS (``v5_7_0``)
    under ``boss/spectro/redux/v5_7_0``.

    Parameters
    ----------
    plate, mjd, fiber : int
    base_url : str, optional
        SAS base URL (:func:`stellar_nb.config.service_url` ``"sas"``).
    skyserver_url : str, optional
        SqlSearch endpoint (:func:`stellar_nb.config.service_url` ``"skyserver"``).
    timeout : float
        Seconds per request.

    Returns
    -------
    stellar_nb.data.fits.Spectrum

    Raises
    ------
    DashboardInputError
        "not found" when DR12 has no such spectrum (or the SAS lacks its file); "cannot
        download ... offline?" when SkyServer or the SAS cannot be reached; or the reader's
        message when the file is unreadable.
    """
    import requests

    from stellar_nb.data import sdss, skyserver

    name = f"spec-{int(plate):04d}-{int(mjd):05d}-{int(fiber):04d}.fits"
    sql_url = config.service_url("skyserver", skyserver_url)
    try:
        found = skyserver.sql_search(
            _lookup_sql(plate, mjd, fiber),
            base_url=sql_url,
            timeout=(timeout, timeout),
            retries=1,
        )
    except skyserver.SkyServerError as error:
        if error.permanent:
            raise DashboardInputError(f"cannot look up {name}: {error}") from None
        raise DashboardInputError(
            f"cannot download {name}: SkyServer ({sql_url}) cannot be reached; offline? ({error})"
        ) from None
    if found.empty:
        raise DashboardInputError(
            f"{name} not found: DR12 has no spectrum with plate {int(plate)}, MJD {int(mjd)}, "
            f"fiber {int(fiber)}"
        )
    run2d = found.loc[0, "run2d"]
    base = config.service_url("sas", base_url).rstrip("/")
    relative = sdss.spectrum_path({"plate": plate, "mjd": mjd, "fiber": fiber, "run2d": run2d})
    try:
        with requests.get(
            f"{base}/{relative}",
            timeout=timeout,
            stream=True,
            headers={"User-Agent": download.USER_AGENT},
        ) as response:
            if response.status_code == 404:
                raise DashboardInputError(
                    f"{name} not found at {base}/{relative}, though DR12 lists it (run2d {run2d})"
                )
            response.raise_for_status()
            content = response.raw.read(MAX_UPLOAD_BYTES + 1, decode_content=True)
    except requests.RequestException as error:
        raise DashboardInputError(
            f"cannot download {name} from {base} ({type(error).__name__}); offline?"
        ) from None
    return read_upload(content, name)


def spectrum_from_row(row):
    """A :class:`stellar_nb.data.fits.Spectrum` from one row of a survey split.

    Parameters
    ----------
    row : mapping or pandas.Series
        ``spec_id``, ``plate``, ``mjd``, ``fiber``, ``snr``, ``rv_adop`` and the array columns.

    Returns
    -------
    stellar_nb.data.fits.Spectrum
        ``meta["rv_kms"]`` is the row's ``rv_adop``.
    """
    meta = {
        name: row[name].item() if hasattr(row[name], "item") else row[name]
        for name in ("plate", "mjd", "fiber", "snr")
    }
    meta.update(
        objclass="STAR",
        spec_id=int(row["spec_id"]),
        rv_kms=float(row["rv_adop"]),
        path=f"test star {int(row['spec_id'])}",
    )
    return fits.Spectrum(
        flux=np.asarray(row["flux"], dtype=np.float32),
        loglam=np.asarray(row["loglam"], dtype=np.float64),
        ivar=np.asarray(row["ivar"], dtype=np.float32),
        and_mask=np.asarray(row["mask"], dtype=np.int32),
        meta=meta,
    )


def read_upload(content, name="upload"):
    """Parse uploaded bytes as an SDSS or LAMOST spectrum (FITS, or gzipped FITS).

    Parameters
    ----------
    content : bytes
    name : str
        The file's name, used in messages and as ``meta["path"]``.

    Returns
    -------
    stellar_nb.data.fits.Spectrum

    Raises
    ------
    DashboardInputError
        If the file is too large, not FITS, damaged, lacks flux/loglam, or has no usable pixel;
        the message starts with ``name``. A fault of the reader itself (any other exception) is
        reported the same way, as "the reader failed unexpectedly", so the dashboard keeps running.
    """
    content = bytes(content)
    if len(content) > MAX_UPLOAD_BYTES:
        raise DashboardInputError(
            f"{name}: {len(content) / 2**20:.1f} MB is over the {MAX_UPLOAD_BYTES // 2**20} MB upload limit"
        )
    if not content.startswith((b"SIMPLE  =", b"\x1f\x8b")):
        raise DashboardInputError(
            f"{name}: not a FITS file (an SDSS spec-PLATE-MJD-FIBER.fits or a LAMOST "
            "spec-*.fits[.gz] is expected)"
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            spectrum = fits.read_spectrum(content)
        except fits.SpectrumReadError as error:
            raise DashboardInputError(str(error).replace("<bytes>", name)) from None
        except astropy_fits.VerifyError as error:
            raise DashboardInputError(
                f"{name}: a damaged FITS header ({str(error).split(',')[0]})"
            ) from None
        except MemoryError:
            raise DashboardInputError(
                f"{name}: its header claims more data than fits in memory: a damaged file"
            ) from None
        except Exception as error:  # the dashboard must outlive a fault of the reader
            raise DashboardInputError(
                f"{name}: cannot be read: the reader failed unexpectedly "
                f"({type(error).__name__}: {error}); please report this file"
            ) from None
    for warning in caught:
        if issubclass(warning.category, fits.SpectrumQualityWarning) and "no pixel" in str(
            warning.message
        ):
            raise DashboardInputError(
                f"{name}: every pixel is masked (ivar = 0); nothing to analyse"
            )
    spectrum.meta["path"] = name
    return spectrum
