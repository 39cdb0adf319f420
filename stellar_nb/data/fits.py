"""SDSS and LAMOST per-object spectrum files: the :class:`Spectrum` they hold, read and written.

:func:`read_spectrum` recognises the layout from the file's content, never its name, and hands it
to its reader: DR8+ ``spec`` and DR7 ``spSpec`` files in :mod:`stellar_nb.data.sdss_layouts`,
LAMOST LRS files in :mod:`stellar_nb.data.lamost`; gzip is undone here. :mod:`stellar_nb.data.spec_lite`
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
import stat
import warnings
import zlib

import numpy as np
from astropy import units as u
from astropy.io import fits

from stellar_nb.data import hdu, lamost, sdss_layouts

__all__ = [
    "FLUX_UNIT",
    "MAX_FILE_BYTES",
    "MAX_PIXELS",
    "Spectrum",
    "SpectrumQualityWarning",
    "SpectrumReadError",
    "checked_spectrum",
    "median_snr",
    "read_spectrum",
]

#: Flux density unit of SDSS spectra.
FLUX_UNIT = u.Unit("1e-17 erg / (s cm2 Angstrom)")
_GZIP_MAGIC = b"\x1f\x8b"
#: Most bytes read from one file, and most a gzip file may decompress to (a spectrum is < 10 MB).
MAX_FILE_BYTES = 64 * 2**20
#: Most pixels in one spectrum (SDSS and LAMOST spectra have 2,800-4,700).
MAX_PIXELS = 100_000


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


def median_snr(flux, ivar):
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
    # At most MAX_FILE_BYTES + 1 bytes are ever decompressed: a gzip bomb stops there.
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
            data = stream.read(MAX_FILE_BYTES + 1)
    except (OSError, EOFError, zlib.error) as error:
        raise SpectrumReadError(f"{name}: damaged gzip data ({error})") from None
    if len(data) > MAX_FILE_BYTES:
        raise SpectrumReadError(
            f"{name}: gzip data decompresses to more than {MAX_FILE_BYTES // 2**20} MB; "
            "not a spectrum"
        )
    return data


def _read_file(path, name):
    """The bytes of a regular file of at most MAX_FILE_BYTES; nothing else is opened."""
    mode = os.stat(path).st_mode  # FileNotFoundError for a missing file or a dangling link
    if not stat.S_ISREG(mode):
        kind = next(
            (label for test, label in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
             (stat.S_ISSOCK, "a socket")) if test(mode)),
            "not a regular file",
        )  # fmt: skip
        raise SpectrumReadError(f"{name}: is {kind}, not a regular file; not read")
    size = os.stat(path).st_size
    if size > MAX_FILE_BYTES:
        raise SpectrumReadError(
            f"{name}: {size / 2**20:.0f} MB is more than the {MAX_FILE_BYTES // 2**20} MB "
            "a spectrum file may have; not read"
        )
    with open(path, "rb") as handle:
        data = handle.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise SpectrumReadError(f"{name}: grew past {MAX_FILE_BYTES // 2**20} MB while read")
    return data


def _open(source, name):
    # Gzip is undone here for paths as for bytes: astropy cannot open gzip bytes in memory, and
    # from a truncated .fits.gz path it silently drops the HDUs cut off.
    # Every input becomes bytes first (a regular file, at most MAX_FILE_BYTES, gzip undone
    # with the same bound), and every HDU's claimed size is checked against them before
    # astropy sees them: a lying header must not make it allocate gigabytes.
    if isinstance(source, (str, os.PathLike)):
        try:
            source = _read_file(source, name)
        except FileNotFoundError:
            raise FileNotFoundError(f"{name}: no such file") from None
        except OSError as error:
            raise SpectrumReadError(f"{name}: cannot be read ({error})") from None
    elif not isinstance(source, (bytes, bytearray, memoryview)):
        if not hasattr(source, "read"):
            raise TypeError(
                f"source must be a path, bytes or a binary file object, got {type(source).__name__}"
            )
        source = source.read(MAX_FILE_BYTES + 1)
        if isinstance(source, str):
            raise TypeError(f"{name}: file object is open in text mode; open it with mode 'rb'")
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if len(data) > MAX_FILE_BYTES:
            raise SpectrumReadError(f"{name}: more than {MAX_FILE_BYTES // 2**20} MB; not read")
        if data[:2] == _GZIP_MAGIC:
            data = _gunzip(data, name)
        try:
            hdu.check_sizes(data)
        except hdu.LayoutError as error:
            raise SpectrumReadError(f"{name}: {error}") from None
        source = io.BytesIO(data)
    try:
        return fits.open(source, memmap=False, lazy_load_hdus=False)
    except FileNotFoundError:
        raise
    except (
        OSError,
        EOFError,
        zlib.error,
        ValueError,
        TypeError,
        IndexError,
        MemoryError,
        fits.VerifyError,
    ) as error:
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
        except (
            KeyError,
            IndexError,
            TypeError,
            ValueError,
            MemoryError,
            fits.VerifyError,
        ) as error:
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
    if flux.size > MAX_PIXELS:
        raise SpectrumReadError(
            f"{name}: spectrum has {flux.size:,} pixels, more than the {MAX_PIXELS:,} allowed"
        )
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
        meta["snr"] = median_snr(flux, ivar)
    return Spectrum(
        flux=flux.astype(np.float32),
        loglam=loglam,
        ivar=ivar.astype(np.float32),
        and_mask=and_mask.astype(np.int32),
        meta=meta,
    )
