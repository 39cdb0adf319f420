"""Read SDSS and LAMOST per-object spectrum files, write SDSS ones, convert to and from specutils.

Layouts read by :func:`read_spectrum` (recognised from the file's content, never its name):

- ``spec-PLATE-MJD-FIBER.fits`` of DR8 and later, ``lite`` or full: HDU1 ``COADD`` holds the
  coadded spectrum (``flux``, ``loglam``, ``ivar``, ``and_mask``, ...), HDU2 the spAll row
  (``SPECOBJ`` in SDSS-I/II, ``SPALL`` in BOSS and SDSS-V). SDSS-V files write the column names
  in upper case and identify the object by FIELD/MJD/CATALOGID rather than PLATE/FIBERID.
- DR7 ``spSpec-MJD-PLATE-FIBER.fit``: a 5 x N image in HDU0 (flux, continuum-subtracted flux,
  sigma, mask, sky), wavelengths from ``COEFF0 + COEFF1 * i``; the class is the integer
  ``SPEC_CLN``.
- LAMOST low-resolution (LRS, DR10) ``spec-LMJD-PLANID_spSPID-FIBERID.fits``, also gzipped
  (``.fits.gz``): HDU1 ``COADD`` is a *one-row* table whose cells are arrays ``FLUX``, ``IVAR``,
  ``WAVELENGTH`` (Angstrom, not log), ``ANDMASK``, ``ORMASK``, ``NORMALIZATION``; the pipeline's
  results (OBSID, CLASS, SUBCLASS, Z, SNRU...SNRZ) and the object's RA/DEC are HDU0 cards.

SDSS quirks handled here: wavelengths are log10 of *vacuum* Angstrom; flux is in units of
1e-17 erg/s/cm^2/A; ``ivar = 0`` marks a pixel without data; ``and_mask`` is the bitwise AND of
the per-exposure pixel masks (a bit set in every exposure, e.g. bad column or bright sky). The
object's coordinates are ``PLUG_RA``/``PLUG_DEC``: the header's ``RA``/``DEC`` is the plate centre.

LAMOST quirks handled here: ``FLUX`` is *relative* (LAMOST is not absolutely flux-calibrated; the
units are arbitrary, not :data:`FLUX_UNIT`); wavelengths are vacuum (``VACUUM = T``; air ones are
converted) on a log-linear grid with a 1e-4 step in log10, about 3700-9100 A, at R ~ 1800 (SDSS
~ 2000); ``IVAR = 0`` marks a bad pixel, and so does ``FLUX = 0`` exactly: LAMOST leaves dropouts
(often the last pixels) at zero flux with an inverse variance copied from a neighbour. ``Z`` of a
star is its radial velocity as a redshift, and -9999 means missing. The header's ``RA``/``DEC`` are
the object's; there is no plate, only a plan (PLANID), a spectrograph (SPID) and a fiber.
"""

import dataclasses
import gzip
import io
import os
import warnings
import zlib
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.io import fits

from stellar_nb import files

__all__ = [
    "FLUX_UNIT",
    "Spectrum",
    "SpectrumQualityWarning",
    "SpectrumReadError",
    "from_specutils",
    "read_spectrum",
    "to_specutils",
    "write_spectrum",
]

#: Flux density unit of SDSS spectra.
FLUX_UNIT = u.Unit("1e-17 erg / (s cm2 Angstrom)")
#: DR7 ``SPEC_CLN`` codes -> DR8 ``CLASS`` names.
_SPEC_CLN = {1: "STAR", 2: "GALAXY", 3: "QSO", 4: "QSO", 6: "STAR", 7: "GALAXY"}
_STANDARD_SPECOBJ = ("PLATE", "MJD", "FIBERID", "CLASS", "SUBCLASS", "Z", "SN_MEDIAN_ALL")
#: LAMOST HDU0 cards kept in ``meta["specobj"]`` (and written to SPECOBJ by write_spectrum).
_LAMOST_SPECOBJ = ("OBSID", "DESIG", "PLANID", "LMJD", "SPID", "Z_ERR", "ZFLAG", "SNRU", "SNRG",
                   "SNRR", "SNRI", "SNRZ", "HELIO_RV", "DATA_V", "VERSPIPE")  # fmt: skip
_LAMOST_MISSING = -9999.0
_GZIP_MAGIC = b"\x1f\x8b"
#: Largest decompressed gzip input read from bytes (a spectrum is well under 10 MB).
_MAX_GZIP_BYTES = 2**28


class SpectrumReadError(ValueError):
    """A file that is not a readable SDSS or LAMOST spectrum; the message names the file."""


class SpectrumQualityWarning(UserWarning):
    """A readable spectrum with bad data (non-finite flux, no valid pixel); names the file."""


@dataclasses.dataclass
class Spectrum:
    """One SDSS or LAMOST spectrum on its own log-wavelength sampling.

    Attributes
    ----------
    flux : numpy.ndarray
        Flux density in :data:`FLUX_UNIT` (1e-17 erg/s/cm^2/A), float32; for LAMOST
        (``meta["layout"] == "lamost"``) relative flux in arbitrary units.
    loglam : numpy.ndarray
        log10 of the vacuum wavelength in Angstrom, strictly increasing, float64.
    ivar : numpy.ndarray
        Inverse variance of ``flux`` (float32); 0 marks a pixel without data.
    and_mask : numpy.ndarray
        SDSS ``and_mask`` pixel bits (int32).
    meta : dict
        At least ``plate``, ``mjd``, ``fiber``, ``objclass`` ('STAR', 'GALAXY', 'QSO' or None),
        ``subclass``, ``snr`` (median S/N over good pixels), ``ra``, ``dec`` (object, degrees),
        ``z`` and ``path``; also ``layout`` and ``specobj`` (the spAll row as a dict) when read.
        LAMOST files give ``plate = None``, ``mjd`` (MJD), ``fiber`` (FIBERID, per
        spectrograph), ``snr`` = SNRG (g-band S/N), ``z`` (None where LAMOST has -9999), and
        also ``obsid``, ``lmjd``, ``planid``, ``spid``; ``specobj`` holds a few HDU0 cards.
    """

    flux: np.ndarray
    loglam: np.ndarray
    ivar: np.ndarray
    and_mask: np.ndarray
    meta: dict = dataclasses.field(default_factory=dict)

    @property
    def wavelength(self):
        """Vacuum wavelength in Angstrom."""
        return 10.0**self.loglam

    @property
    def is_star(self):
        """Whether the pipeline classified the object as a star (``CLASS == 'STAR'``)."""
        return self.meta.get("objclass") == "STAR"


def _name(source):
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "<bytes>"
    return str(getattr(source, "name", "<file object>"))


def _scalar(value):
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _row_dict(hdu):
    if not isinstance(hdu, fits.BinTableHDU) or hdu.data is None or len(hdu.data) == 0:
        return {}
    row = hdu.data[0]
    return {
        name.upper(): _scalar(row[name]) for name in hdu.columns.names if np.ndim(row[name]) == 0
    }


def _column(table, name):
    lookup = {column.lower(): column for column in table.columns.names}
    return None if name not in lookup else np.asarray(table.data[lookup[name]])


def _first(*values):
    return next((value for value in values if value is not None and value != ""), None)


def _integer(value):
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _median_snr(flux, ivar):
    good = ivar > 0
    return float(np.median(np.abs(flux[good]) * np.sqrt(ivar[good]))) if good.any() else 0.0


def _columns(hdu):
    return {name.lower() for name in getattr(hdu, "columns", fits.ColDefs([])).names}


def _coadd(hdul):
    for hdu in hdul[1:]:
        if isinstance(hdu, fits.BinTableHDU) and hdu.name.upper() == "COADD":
            return hdu
    for hdu in hdul[1:]:
        names = _columns(hdu)
        if {"flux", "ivar"} <= names and names & {"loglam", "wavelength"}:
            return hdu
    return None


def _is_lamost(table):
    names = _columns(table)
    return {"flux", "ivar", "wavelength"} <= names and "loglam" not in names


def _air_to_vacuum(wavelength):
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


def _lamost_number(value):
    """A finite header number, or None for LAMOST's -9999 (missing), blanks and strings."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        return None
    value = float(value)
    return value if np.isfinite(value) and value > _LAMOST_MISSING else None


def _read_spec(hdul, name):
    table = _coadd(hdul)
    flux, loglam, ivar = (_column(table, key) for key in ("flux", "loglam", "ivar"))
    and_mask = _column(table, "and_mask")
    if and_mask is None:
        and_mask = np.zeros(len(flux), dtype=np.int32)
    header = hdul[0].header
    specobj = _row_dict(hdul[2]) if len(hdul) > 2 else {}
    meta = {
        "layout": "spec-sdssv" if "CATALOGID" in specobj else "spec",
        "plate": _integer(
            _first(header.get("PLATEID"), specobj.get("PLATE"), specobj.get("FIELD"))
        ),
        "mjd": _integer(_first(header.get("MJD"), specobj.get("MJD"))),
        "fiber": _integer(_first(header.get("FIBERID"), specobj.get("FIBERID"))),
        "objclass": _first(str(specobj.get("CLASS", "")).upper()) or None,
        "subclass": str(specobj.get("SUBCLASS", "")),
        "snr": specobj.get("SN_MEDIAN_ALL"),
        "ra": _first(specobj.get("PLUG_RA"), header.get("PLUG_RA")),
        "dec": _first(specobj.get("PLUG_DEC"), header.get("PLUG_DEC")),
        "z": specobj.get("Z"),
        "specobjid": _integer(specobj.get("SPECOBJID")),
        "run2d": _first(str(header.get("RUN2D", "")).strip(), specobj.get("RUN2D")),
        "specobj": specobj,
    }
    if "CATALOGID" in specobj:
        meta["catalogid"] = _integer(specobj["CATALOGID"])
        meta["field"] = _integer(specobj.get("FIELD"))
    return flux, loglam, ivar, and_mask, meta


def _read_spspec(hdul, name):
    header = hdul[0].header
    image = np.asarray(hdul[0].data, dtype=np.float64)
    sigma = image[2]
    ivar = np.zeros_like(sigma)
    np.divide(1.0, sigma**2, out=ivar, where=sigma > 0)
    loglam = header["COEFF0"] + header["COEFF1"] * np.arange(image.shape[1])
    meta = {
        "layout": "spSpec",
        "plate": _integer(header.get("PLATEID")),
        "mjd": _integer(header.get("MJD")),
        "fiber": _integer(header.get("FIBERID")),
        "objclass": _SPEC_CLN.get(_integer(header.get("SPEC_CLN"))),
        "subclass": "",
        "snr": None,
        "ra": header.get("RAOBJ"),
        "dec": header.get("DECOBJ"),
        "z": header.get("Z"),
        "specobjid": None,
        "run2d": None,
        "specobj": {},
    }
    return image[0], loglam, ivar, image[3].astype(np.int64), meta


def _read_lamost(hdul, name):
    """LAMOST LRS: arrays from the one-row COADD table, identifiers and results from HDU0.

    ``loglam`` is log10 of ``WAVELENGTH`` (converted from air to vacuum first if the header says
    ``VACUUM = F``); pixels with ``FLUX == 0`` exactly get ``ivar = 0`` (LAMOST's dropouts keep a
    neighbour's IVAR); ``snr`` is SNRG when positive, otherwise left for :func:`_validate` to
    compute.
    """
    table = _coadd(hdul)
    rows = 0 if table.data is None else len(table.data)
    if rows != 1:
        raise SpectrumReadError(f"{name}: LAMOST COADD table has {rows} rows; expected 1")
    flux, ivar, wavelength = (
        np.asarray(_column(table, key)[0], dtype=np.float64)
        for key in ("flux", "ivar", "wavelength")
    )
    header = hdul[0].header
    if header.get("VACUUM", True) is False:
        wavelength = _air_to_vacuum(wavelength)
    with np.errstate(divide="ignore", invalid="ignore"):
        loglam = np.log10(wavelength)  # non-positive values become NaN/-inf, rejected later
    ivar = np.where(flux == 0, 0.0, ivar)
    and_mask = _column(table, "andmask")
    if and_mask is None:
        and_mask = np.zeros(flux.shape, dtype=np.int64)
    else:
        and_mask = np.asarray(and_mask[0], dtype=np.float64)  # LAMOST stores the bits as floats
        and_mask = np.where(np.isfinite(and_mask), and_mask, 0).astype(np.int64)
    objclass = str(header.get("CLASS", "")).strip().upper()
    snr = _lamost_number(header.get("SNRG"))
    meta = {
        "layout": "lamost",
        "plate": None,
        "mjd": _integer(header.get("MJD")),
        "fiber": _integer(header.get("FIBERID")),
        "objclass": objclass if objclass in ("STAR", "GALAXY", "QSO") else None,
        "subclass": str(header.get("SUBCLASS", "")).strip(),
        "snr": snr if snr is not None and snr > 0 else None,
        "ra": _lamost_number(header.get("RA")),
        "dec": _lamost_number(header.get("DEC")),
        "z": _lamost_number(header.get("Z")),
        "specobjid": None,
        "run2d": None,
        "obsid": _integer(header.get("OBSID")),
        "lmjd": _integer(header.get("LMJD")),
        "planid": _first(str(header.get("PLANID", "")).strip()),
        "spid": _integer(header.get("SPID")),
        "specobj": {key: _scalar(header[key]) for key in _LAMOST_SPECOBJ if key in header},
    }
    return flux, loglam, ivar, and_mask, meta


def _layout(hdul, name):
    table = _coadd(hdul)
    if table is not None:
        return _read_lamost if _is_lamost(table) else _read_spec
    header = hdul[0].header
    if header.get("NAXIS") == 2 and header.get("NAXIS2") == 5 and "COEFF0" in header:
        if "SPEC_CLN" in header or "FIBERID" in header:
            return _read_spspec
    extensions = [hdu.name or type(hdu).__name__ for hdu in hdul]
    raise SpectrumReadError(
        f"{name}: unsupported layout: no COADD table (HDUs: {extensions}); expected an SDSS "
        "per-object spectrum (DR8+ spec-*.fits with a COADD table, or DR7 spSpec-*.fit) or a "
        "LAMOST LRS spec-*.fits"
    )


def _gunzip(data, name):
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
            data = stream.read(_MAX_GZIP_BYTES + 1)
    except (OSError, EOFError, zlib.error) as error:
        raise SpectrumReadError(f"{name}: damaged gzip data ({error})") from None
    if len(data) > _MAX_GZIP_BYTES:
        raise SpectrumReadError(
            f"{name}: gzip data decompresses to over {_MAX_GZIP_BYTES // 2**20} MB; not a spectrum"
        )
    return data


def _open(source, name):
    # Gzip is undone here for paths as for bytes: astropy cannot open gzip bytes in memory, and
    # from a truncated .fits.gz path it silently drops the HDUs cut off.
    if isinstance(source, (str, os.PathLike)):
        try:
            with open(source, "rb") as handle:
                if handle.read(2) == _GZIP_MAGIC:
                    source = _GZIP_MAGIC + handle.read()
        except FileNotFoundError:
            raise
        except OSError as error:
            raise SpectrumReadError(f"{name}: cannot be read ({error})") from None
    elif not isinstance(source, (bytes, bytearray, memoryview)):
        if not hasattr(source, "read"):
            raise TypeError(
                f"source must be a path, bytes or a binary file object, got {type(source).__name__}"
            )
        source = source.read()
        if isinstance(source, str):
            raise TypeError(f"{name}: file object is open in text mode; open it with mode 'rb'")
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if data[:2] == _GZIP_MAGIC:
            data = _gunzip(data, name)
        source = io.BytesIO(data)
    try:
        return fits.open(source, memmap=False, lazy_load_hdus=False)
    except FileNotFoundError:
        raise
    except (OSError, EOFError, zlib.error, ValueError, TypeError, IndexError) as error:
        raise SpectrumReadError(f"{name}: not a FITS file or a damaged one ({error})") from None


def read_spectrum(source):
    """Read one SDSS or LAMOST per-object spectrum.

    Parameters
    ----------
    source : str, pathlib.Path, binary file object or bytes
        An SDSS ``spec-*.fits`` file (DR8+ lite or full, BOSS, SDSS-V), a DR7 ``spSpec-*.fit``,
        or a LAMOST LRS ``spec-*.fits``; any of them may be gzip-compressed (``.fits.gz``),
        recognised by its magic bytes ``1f 8b``. The layout is recognised from the content.

    Returns
    -------
    Spectrum
        Non-finite flux or ivar values become ``ivar = 0`` pixels (flux set to 0); negative
        ivar becomes 0. ``meta["layout"]`` is ``"spec"``, ``"spec-sdssv"``, ``"spSpec"`` or
        ``"lamost"``; LAMOST flux is relative, not in :data:`FLUX_UNIT`.

    Raises
    ------
    SpectrumReadError
        If the file is not FITS (or gzipped FITS), is truncated, has no COADD table (or DR7
        image), or its wavelengths are not strictly increasing log10 Angstrom. The message names
        the file (``<bytes>`` for bytes).
    FileNotFoundError
        If a path does not exist.
    TypeError
        If ``source`` is neither a path, bytes nor a binary file object.

    Warns
    -----
    SpectrumQualityWarning
        If some flux values are NaN/Inf, or no pixel has ``ivar > 0``.
    """
    name = _name(source)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hdul = _open(source, name)
        try:
            reader = _layout(hdul, name)
            flux, loglam, ivar, and_mask, meta = reader(hdul, name)
        except (KeyError, IndexError, TypeError, ValueError) as error:
            if isinstance(error, SpectrumReadError):
                raise
            raise SpectrumReadError(f"{name}: damaged spectrum file ({error!r})") from None
        finally:
            hdul.close()
    for warning in caught:
        if "truncated" in str(warning.message).lower():
            raise SpectrumReadError(f"{name}: truncated FITS file ({warning.message})")
    return _validate(flux, loglam, ivar, and_mask, meta, name)


def _validate(flux, loglam, ivar, and_mask, meta, name):
    flux = np.asarray(flux, dtype=np.float64)
    loglam = np.asarray(loglam, dtype=np.float64)
    ivar = np.asarray(ivar, dtype=np.float64)
    and_mask = np.asarray(and_mask)
    if flux.ndim != 1 or not (flux.shape == loglam.shape == ivar.shape == and_mask.shape):
        raise SpectrumReadError(
            f"{name}: flux, loglam, ivar and and_mask differ in shape "
            f"({flux.shape}, {loglam.shape}, {ivar.shape}, {and_mask.shape})"
        )
    if flux.size < 2:
        raise SpectrumReadError(f"{name}: spectrum has {flux.size} pixel(s)")
    if not np.all(np.isfinite(loglam)) or not np.all(np.diff(loglam) > 0):
        raise SpectrumReadError(f"{name}: loglam is not finite and strictly increasing")
    if loglam[0] < 2.5 or loglam[-1] > 5.5:
        raise SpectrumReadError(
            f"{name}: loglam runs {loglam[0]:.4g}..{loglam[-1]:.4g}; expected log10(Angstrom)"
        )
    bad = ~np.isfinite(flux) | ~np.isfinite(ivar)
    if bad.any():
        warnings.warn(
            f"{name}: {int((~np.isfinite(flux)).sum())} non-finite flux and "
            f"{int((~np.isfinite(ivar)).sum())} non-finite ivar value(s); those pixels get ivar = 0",
            SpectrumQualityWarning,
            stacklevel=3,
        )
    flux = np.where(bad, 0.0, flux)
    ivar = np.where(bad | (ivar < 0), 0.0, ivar)
    if not np.any(ivar > 0):
        warnings.warn(f"{name}: no pixel has ivar > 0", SpectrumQualityWarning, stacklevel=3)
    meta = dict(meta, path=name)
    if meta.get("snr") is None:
        meta["snr"] = _median_snr(flux, ivar)
    return Spectrum(
        flux=flux.astype(np.float32),
        loglam=loglam,
        ivar=ivar.astype(np.float32),
        and_mask=and_mask.astype(np.int32),
        meta=meta,
    )


def _specobj_columns(spectrum):
    meta = spectrum.meta
    values = {
        "PLATE": (int(meta.get("plate") or 0), "J"),
        "MJD": (int(meta.get("mjd") or 0), "J"),
        "FIBERID": (int(meta.get("fiber") or 0), "J"),
        "CLASS": (str(meta.get("objclass") or ""), "6A"),
        "SUBCLASS": (str(meta.get("subclass") or ""), "21A"),
        "Z": (float(meta.get("z") or 0.0), "E"),
        "SN_MEDIAN_ALL": (float(meta.get("snr") or _median_snr(spectrum.flux, spectrum.ivar)), "E"),
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


def to_specutils(spectrum):
    """Return a :class:`specutils.Spectrum` with wavelength, flux, inverse variance and mask.

    The mask is True (bad) where ``ivar == 0``; ``and_mask`` and ``meta`` go to ``.meta``.
    """
    import specutils
    from astropy.nddata import InverseVariance

    return specutils.Spectrum(
        flux=np.asarray(spectrum.flux, dtype=np.float64) * FLUX_UNIT,
        spectral_axis=spectrum.wavelength * u.AA,
        uncertainty=InverseVariance(np.asarray(spectrum.ivar, dtype=np.float64) * FLUX_UNIT**-2),
        mask=np.asarray(spectrum.ivar) <= 0,
        meta={
            **spectrum.meta,
            "and_mask": np.asarray(spectrum.and_mask),
            "air_or_vacuum": "vacuum",
        },
    )


def from_specutils(spectrum1d):
    """Build a :class:`Spectrum` from a ``specutils.Spectrum`` (or ``Spectrum1D``).

    The spectral axis is taken as vacuum wavelength and converted to log10 Angstrom; flux is
    converted to :data:`FLUX_UNIT`; masked pixels, and pixels without uncertainty, get
    ``ivar = 0`` unless an uncertainty is given.

    Raises
    ------
    ValueError
        If the flux is not a spectral flux density or the spectrum is not one-dimensional.
    """
    from astropy.nddata import InverseVariance

    if spectrum1d.flux.ndim != 1:
        raise ValueError(
            f"from_specutils needs a 1-D spectrum, got flux of shape {spectrum1d.flux.shape}"
        )
    wavelength = spectrum1d.spectral_axis.to(u.AA, equivalencies=u.spectral())
    try:
        flux = spectrum1d.flux.to(FLUX_UNIT, equivalencies=u.spectral_density(wavelength))
    except u.UnitConversionError as error:
        raise ValueError(
            f"flux unit {spectrum1d.flux.unit} is not a flux density: {error}"
        ) from None
    if spectrum1d.uncertainty is not None:
        inverse = spectrum1d.uncertainty.represent_as(InverseVariance)
        scale = (1.0 * spectrum1d.flux.unit).to_value(
            FLUX_UNIT, equivalencies=u.spectral_density(wavelength)
        )
        ivar = np.asarray(inverse.array, dtype=np.float64) / np.asarray(scale) ** 2
    else:
        ivar = np.ones(flux.shape)
    if spectrum1d.mask is not None:
        ivar = np.where(np.asarray(spectrum1d.mask, dtype=bool), 0.0, ivar)
    meta = dict(spectrum1d.meta or {})
    and_mask = np.asarray(meta.pop("and_mask", np.zeros(flux.shape, dtype=np.int32)))
    meta.pop("air_or_vacuum", None)
    meta.setdefault("path", "<specutils>")
    return _validate(flux.value, np.log10(wavelength.value), ivar, and_mask, meta, meta["path"])
