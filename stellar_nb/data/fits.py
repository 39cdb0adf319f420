"""SDSS and LAMOST per-object spectrum files: the :class:`Spectrum` they hold, read and written.

:func:`read_spectrum` recognises the layout from the file's content, never its name, and hands it
to its reader: DR8+ ``spec`` and DR7 ``spSpec`` files in :mod:`stellar_nb.data.sdss_layouts`,
LAMOST LRS files in :mod:`stellar_nb.data.lamost`; gzip is undone here. :func:`write_spectrum`
writes the DR12 ``spec-lite`` data model; :mod:`stellar_nb.data.convert` converts to and from
specutils.

SDSS quirks handled here: wavelengths are log10 of *vacuum* Angstrom; flux is in units of
1e-17 erg/s/cm^2/A; ``ivar = 0`` marks a pixel without data; ``and_mask`` is the bitwise AND of
the per-exposure pixel masks (a bit set in every exposure, e.g. bad column or bright sky).
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
from stellar_nb.data import hdu, lamost, sdss_layouts

__all__ = [
    "FLUX_UNIT",
    "Spectrum",
    "SpectrumQualityWarning",
    "SpectrumReadError",
    "checked_spectrum",
    "read_spectrum",
    "write_spectrum",
]

#: Flux density unit of SDSS spectra.
FLUX_UNIT = u.Unit("1e-17 erg / (s cm2 Angstrom)")
_STANDARD_SPECOBJ = ("PLATE", "MJD", "FIBERID", "CLASS", "SUBCLASS", "Z", "SN_MEDIAN_ALL")
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


def _median_snr(flux, ivar):
    good = ivar > 0
    return float(np.median(np.abs(flux[good]) * np.sqrt(ivar[good]))) if good.any() else 0.0


def _layout(hdul, name):
    table = hdu.coadd_table(hdul)
    if table is not None:
        return lamost.read_lamost if lamost.is_lamost(table) else sdss_layouts.read_spec
    if sdss_layouts.is_spspec(hdul[0].header):
        return sdss_layouts.read_spspec
    extensions = [item.name or type(item).__name__ for item in hdul]
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
            flux, loglam, ivar, and_mask, meta = reader(hdul)
        except hdu.LayoutError as error:
            raise SpectrumReadError(f"{name}: {error}") from None
        except (KeyError, IndexError, TypeError, ValueError) as error:
            if isinstance(error, SpectrumReadError):
                raise
            raise SpectrumReadError(f"{name}: damaged spectrum file ({error!r})") from None
        finally:
            hdul.close()
    for warning in caught:
        if "truncated" in str(warning.message).lower():
            raise SpectrumReadError(f"{name}: truncated FITS file ({warning.message})")
    return checked_spectrum(flux, loglam, ivar, and_mask, meta, name)


def checked_spectrum(flux, loglam, ivar, and_mask, meta, name):
    """A :class:`Spectrum` from a reader's arrays, checked and cleaned.

    Non-finite flux or ivar values become ``ivar = 0`` pixels (flux set to 0), negative ivar
    becomes 0, ``meta["path"]`` is set to ``name`` and a missing ``meta["snr"]`` is computed.

    Raises
    ------
    SpectrumReadError
        If the arrays differ in shape, have fewer than 2 pixels, or ``loglam`` is not strictly
        increasing log10 Angstrom.

    Warns
    -----
    SpectrumQualityWarning
        If some values are NaN/Inf, or no pixel has ``ivar > 0``.
    """
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
