"""Write a :class:`~stellar_nb.data.fits.Spectrum` as an SDSS DR12 ``spec-lite`` file.

The package's own writer: the simulated survey's FITS files, the loopback SAS of the tests and the
fuzz corpus all go through :func:`write_spectrum`, and :func:`stellar_nb.data.fits.read_spectrum`
reads what it writes.
"""

from pathlib import Path

import numpy as np
from astropy.io import fits

from stellar_nb import files
from stellar_nb.data import fits as fits_module

__all__ = ["write_spectrum"]

#: SPECOBJ columns written from the spectrum's own fields, never from ``meta["specobj"]``.
_STANDARD_SPECOBJ = ("PLATE", "MJD", "FIBERID", "CLASS", "SUBCLASS", "Z", "SN_MEDIAN_ALL")


def _specobj_columns(spectrum):
    meta = spectrum.meta
    values = {
        "PLATE": (int(meta.get("plate") or 0), "J"),
        "MJD": (int(meta.get("mjd") or 0), "J"),
        "FIBERID": (int(meta.get("fiber") or 0), "J"),
        "CLASS": (str(meta.get("objclass") or ""), "6A"),
        "SUBCLASS": (str(meta.get("subclass") or ""), "21A"),
        "Z": (float(meta.get("z") or 0.0), "E"),
        "SN_MEDIAN_ALL": (
            float(meta.get("snr") or fits_module.median_snr(spectrum.flux, spectrum.ivar)),
            "E",
        ),
        "PLUG_RA": (float(meta.get("ra") or 0.0), "D"),
        "PLUG_DEC": (float(meta.get("dec") or 0.0), "D"),
        "SPECOBJID": (str(meta.get("specobjid") or ""), "22A"),
    }
    for key, value in (meta.get("specobj") or {}).items():
        key = key.upper()
        if key in values or key in _STANDARD_SPECOBJ:
            continue
        if isinstance(value, (bool, np.bool_)):
            values[key] = (int(value), "J")
        elif isinstance(value, (int, np.integer)):
            values[key] = (int(value), "K")
        elif isinstance(value, (float, np.floating)):
            values[key] = (float(value), "D")
        elif isinstance(value, str):
            values[key] = (value, f"{max(len(value), 1)}A")
    return fits.BinTableHDU.from_columns(
        [
            fits.Column(name=key, format=fmt, array=np.array([value]))
            for key, (value, fmt) in values.items()
        ],
        name="SPECOBJ",
    )


def write_spectrum(path, spectrum):
    """Write ``spectrum`` as a DR12-data-model ``spec-lite`` file, atomically.

    HDU0 is a primary header (PLATEID, MJD, FIBERID, RA, DEC, PLUG_RA, PLUG_DEC, RUN2D, BUNIT,
    COEFF0, COEFF1, VACUUM); HDU1 ``COADD`` has ``flux, loglam, ivar, and_mask, or_mask, wdisp,
    sky, model`` (``or_mask`` copies ``and_mask``; ``wdisp`` is 1 pixel; ``sky`` and ``model``
    are zero: not modelled); HDU2 ``SPECOBJ`` has PLATE, MJD, FIBERID, CLASS, SUBCLASS, Z,
    SN_MEDIAN_ALL, PLUG_RA, PLUG_DEC, SPECOBJID and any scalar in ``spectrum.meta["specobj"]``.

    Parameters
    ----------
    path : str or pathlib.Path
        Destination; written to a temporary file in the same folder, then renamed.
    spectrum : Spectrum

    Returns
    -------
    pathlib.Path
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"folder {path.parent} does not exist")
    meta = spectrum.meta
    loglam = np.asarray(spectrum.loglam, dtype=np.float64)
    arrays = [np.asarray(a) for a in (spectrum.flux, loglam, spectrum.ivar, spectrum.and_mask)]
    if any(a.ndim != 1 or a.size != loglam.size for a in arrays):
        raise ValueError(
            f"{path}: flux, loglam, ivar and and_mask must be 1-D arrays of one length, "
            f"got shapes {[a.shape for a in arrays]}"
        )
    for key in ("ra", "dec"):
        value = float(meta.get(key) or 0.0)
        if not np.isfinite(value):
            raise ValueError(f"{path}: header keyword {key.upper()} must be finite, got {value}")
    header = fits.Header()
    for key, value in (
        ("PLATEID", int(meta.get("plate") or 0)),
        ("MJD", int(meta.get("mjd") or 0)),
        ("FIBERID", int(meta.get("fiber") or 0)),
        ("RA", float(meta.get("ra") or 0.0)),
        ("DEC", float(meta.get("dec") or 0.0)),
        ("PLUG_RA", float(meta.get("ra") or 0.0)),
        ("PLUG_DEC", float(meta.get("dec") or 0.0)),
        ("RUN2D", str(meta.get("run2d") or "26")),
        ("BUNIT", "1E-17 erg/cm^2/s/Ang"),
        ("COEFF0", float(loglam[0])),
        ("COEFF1", float(np.median(np.diff(loglam))) if loglam.size > 1 else 1e-4),
        ("VACUUM", True),
    ):
        header[key] = value
    n = loglam.size
    and_mask = np.asarray(spectrum.and_mask, dtype=np.int32)
    columns = [
        ("flux", "E", spectrum.flux, "1E-17 erg/cm^2/s/Ang"),
        ("loglam", "E", loglam, "log10(Ang)"),
        ("ivar", "E", spectrum.ivar, None),
        ("and_mask", "J", and_mask, None),
        ("or_mask", "J", and_mask, None),
        ("wdisp", "E", np.ones(n), None),
        ("sky", "E", np.zeros(n), None),
        ("model", "E", np.zeros(n), None),
    ]
    coadd = fits.BinTableHDU.from_columns(
        [
            fits.Column(name=c, format=f, array=np.asarray(a), unit=unit)
            for c, f, a, unit in columns
        ],
        name="COADD",
    )
    hdul = fits.HDUList([fits.PrimaryHDU(header=header), coadd, _specobj_columns(spectrum)])
    # No CHECKSUM cards: astropy stamps them with the time, and the same spectrum must give the
    # same bytes (downloads are verified by SHA-256 instead).
    return files.atomic_write(
        path, lambda temporary: hdul.writeto(temporary, overwrite=True, checksum=False)
    )
