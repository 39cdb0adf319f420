"""Reader of LAMOST low-resolution (LRS, DR10) spectrum files, for :mod:`stellar_nb.data.fits`.

``spec-LMJD-PLANID_spSPID-FIBERID.fits``, also gzipped (``.fits.gz``): HDU1 ``COADD`` is a
*one-row* table whose cells are arrays ``FLUX``, ``IVAR``, ``WAVELENGTH`` (Angstrom, not log),
``ANDMASK``, ``ORMASK``, ``NORMALIZATION``; the pipeline's results (OBSID, CLASS, SUBCLASS, Z,
SNRU...SNRZ) and the object's RA/DEC are HDU0 cards.

LAMOST quirks handled here: ``FLUX`` is *relative* (LAMOST is not absolutely flux-calibrated; the
units are arbitrary, not :data:`stellar_nb.data.fits.FLUX_UNIT`); wavelengths are vacuum
(``VACUUM = T``; air ones are converted) on a log-linear grid with a 1e-4 step in log10, about
3700-9100 A, at R ~ 1800 (SDSS ~ 2000); ``IVAR = 0`` marks a bad pixel, and so does ``FLUX = 0``
exactly: LAMOST leaves dropouts (often the last pixels) at zero flux with an inverse variance
copied from a neighbour. ``Z`` of a star is its radial velocity as a redshift, and -9999 means
missing. The header's ``RA``/``DEC`` are the object's; there is no plate, only a plan (PLANID), a
spectrograph (SPID) and a fiber.
"""

import numpy as np

from stellar_nb.data import hdu

__all__ = ["MISSING", "SPECOBJ_CARDS", "air_to_vacuum", "header_number", "is_lamost", "read_lamost"]

#: LAMOST HDU0 cards kept in ``meta["specobj"]`` (and written to SPECOBJ by write_spectrum).
SPECOBJ_CARDS = ("OBSID", "DESIG", "PLANID", "LMJD", "SPID", "Z_ERR", "ZFLAG", "SNRU", "SNRG",
                 "SNRR", "SNRI", "SNRZ", "HELIO_RV", "DATA_V", "VERSPIPE")  # fmt: skip
#: LAMOST's value for a missing number.
MISSING = -9999.0


def is_lamost(table):
    """Whether a COADD table has LAMOST's columns (``wavelength`` in Angstrom, no ``loglam``)."""
    names = hdu.column_names(table)
    return {"flux", "ivar", "wavelength"} <= names and "loglam" not in names


def air_to_vacuum(wavelength):
    """Convert air wavelengths (Angstrom) to vacuum: the inverse of the IAU standard conversion.

    Inverts :func:`stellar_nb.libraries.vacuum_to_air` (Morton 2000, Ciddor 1996 refractivity)
    by fixed-point iteration, ``vacuum <- air * n(vacuum)``; n varies so slowly with wavelength
    that each step gains four to five digits: three steps reach float64 precision.
    """
    from stellar_nb import libraries  # imported here: it loads pandas and scipy

    air = np.asarray(wavelength, dtype=np.float64)
    vacuum = air.copy()
    for _ in range(3):
        vacuum = air * (vacuum / libraries.vacuum_to_air(vacuum))
    return vacuum


def header_number(value):
    """A finite header number, or None for LAMOST's -9999 (missing), blanks and strings."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        return None
    value = float(value)
    return value if np.isfinite(value) and value > MISSING else None


def read_lamost(hdul):
    """LAMOST LRS: arrays from the one-row COADD table, identifiers and results from HDU0.

    ``loglam`` is log10 of ``WAVELENGTH`` (converted from air to vacuum first if the header says
    ``VACUUM = F``); pixels with ``FLUX == 0`` exactly get ``ivar = 0`` (LAMOST's dropouts keep a
    neighbour's IVAR); ``snr`` is SNRG when positive, otherwise left for the caller to compute
    from flux and ivar.
    """
    table = hdu.coadd_table(hdul)
    rows = 0 if table.data is None else len(table.data)
    if rows != 1:
        raise hdu.LayoutError(f"LAMOST COADD table has {rows} rows; expected 1")
    flux, ivar, wavelength = (
        np.asarray(hdu.column(table, key)[0], dtype=np.float64)
        for key in ("flux", "ivar", "wavelength")
    )
    header = hdul[0].header
    if header.get("VACUUM", True) is False:
        wavelength = air_to_vacuum(wavelength)
    with np.errstate(divide="ignore", invalid="ignore"):
        loglam = np.log10(wavelength)  # non-positive values become NaN/-inf, rejected later
    ivar = np.where(flux == 0, 0.0, ivar)
    and_mask = hdu.column(table, "andmask")
    if and_mask is None:
        and_mask = np.zeros(flux.shape, dtype=np.int64)
    else:
        and_mask = np.asarray(and_mask[0], dtype=np.float64)  # LAMOST stores the bits as floats
        and_mask = np.where(np.isfinite(and_mask), and_mask, 0).astype(np.int64)
    objclass = str(header.get("CLASS", "")).strip().upper()
    snr = header_number(header.get("SNRG"))
    meta = {
        "layout": "lamost",
        "plate": None,
        "mjd": hdu.integer(header.get("MJD")),
        "fiber": hdu.integer(header.get("FIBERID")),
        "objclass": objclass if objclass in ("STAR", "GALAXY", "QSO") else None,
        "subclass": str(header.get("SUBCLASS", "")).strip(),
        "snr": snr if snr is not None and snr > 0 else None,
        "ra": header_number(header.get("RA")),
        "dec": header_number(header.get("DEC")),
        "z": header_number(header.get("Z")),
        "specobjid": None,
        "run2d": None,
        "obsid": hdu.integer(header.get("OBSID")),
        "lmjd": hdu.integer(header.get("LMJD")),
        "planid": hdu.first(str(header.get("PLANID", "")).strip()),
        "spid": hdu.integer(header.get("SPID")),
        "specobj": {key: hdu.scalar(header[key]) for key in SPECOBJ_CARDS if key in header},
    }
    return flux, loglam, ivar, and_mask, meta
