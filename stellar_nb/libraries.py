"""Real stellar library spectra (MILES, STELIB) on the SDSS vacuum log-lambda grid at R ~ 2000.

Both libraries ship as data inside the BSD-3 ``sdss-mangadap`` wheel, installed without its heavy
requirements (``pip install --no-deps sdss-mangadap``). Only :mod:`stellar_nb.emulator`'s refit and
the notebooks' "real versus emulated" figures need them; the shipped emulator does not.

Domain quirks handled here:

- Library wavelengths are in **air**; SDSS wavelengths are log10 of **vacuum** Angstrom. Each SDSS
  pixel centre is converted to air (IAU standard, Morton 2000 via :func:`vacuum_to_air`) before it
  is looked up in the library's linear air grid.
- Resolution: MILES has 2.5 A FWHM, STELIB about 3.4 A; SDSS has R ~ 2000, i.e. FWHM = lambda / 2000
  (2.0 A at 4000 A, 3.7 A at 7400 A). Where SDSS is coarser the spectrum is convolved with the
  Gaussian of the quadrature difference; where the library is already coarser (MILES below about
  5000 A, STELIB below about 6800 A) it is kept as it is. The kernel also includes the box of the
  SDSS pixel (1e-4 in log10 lambda), so the output is not aliased.
The emulator is fitted on these stars by :mod:`stellar_nb.emulator_fit`.

- STELIB spectra are zero-padded redward of about 8100 A for a quarter of the stars; padded
  pixels become NaN. Its telluric bands are not removed (see :data:`TELLURIC_BANDS`).
"""

import importlib.resources
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse

__all__ = [
    "EXTRA_HINT",
    "LOGLAM_START",
    "LOGLAM_STEP",
    "NPIX",
    "SDSS_RESOLUTION",
    "TELLURIC_BANDS",
    "library_grid",
    "load_miles",
    "load_stelib",
    "templates_dir",
    "vacuum_to_air",
]

#: Rest-frame grid shared by the libraries and the emulator: SDSS's 1e-4 step in log10(vacuum A),
#: 3.5740-3.9690, wide enough for the paper's grid (3.5754-3.9670) after Doppler shifts of +-600 km/s.
LOGLAM_START = 3.5740
LOGLAM_STEP = 1e-4
NPIX = 3951
#: Resolving power of SDSS spectra (lambda / FWHM).
SDSS_RESOLUTION = 2000.0
#: Telluric absorption bands (vacuum Angstrom) left in STELIB spectra: O2 B and A bands, H2O.
TELLURIC_BANDS = (
    (6865.0, 6960.0),
    (7160.0, 7340.0),
    (7590.0, 7710.0),
    (8120.0, 8360.0),
    (8940.0, 9900.0),
)
EXTRA_HINT = "pip install --no-deps sdss-mangadap"
_FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))


def library_grid():
    """Return the rest-frame log10(vacuum Angstrom) grid of :data:`NPIX` pixels."""
    return np.round(LOGLAM_START + LOGLAM_STEP * np.arange(NPIX), 6)


def vacuum_to_air(wavelength):
    """Convert vacuum wavelengths (Angstrom) to air (IAU standard; Morton 2000, Ciddor refractivity)."""
    wavelength = np.asarray(wavelength, dtype=float)
    sigma2 = (1e4 / wavelength) ** 2
    refraction = 1.0 + 0.0000834254 + 0.02406147 / (130.0 - sigma2) + 0.00015998 / (38.9 - sigma2)
    return wavelength / refraction


def templates_dir():
    """Folder of the library spectra inside ``sdss-mangadap``.

    Raises
    ------
    ModuleNotFoundError
        If ``sdss-mangadap`` is not installed; the message gives the command that installs it.
    """
    try:
        root = importlib.resources.files("mangadap") / "data" / "spectral_templates"
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            f"the MILES and STELIB spectra come with the optional sdss-mangadap wheel: {EXTRA_HINT}",
            name="mangadap",
        ) from None
    path = Path(str(root))
    if not path.is_dir():
        raise FileNotFoundError(f"{path} is missing; reinstall the library spectra: {EXTRA_HINT}")
    return path


def _resampling_matrix(start, step, n_in, fwhm_library, loglam):
    """Sparse (len(loglam), n_in) matrix: Gaussian-smooth a linear air grid onto vacuum loglam."""
    wavelength = 10.0**loglam
    centre = (vacuum_to_air(wavelength) - start) / step
    sigma_target = wavelength / SDSS_RESOLUTION * _FWHM_TO_SIGMA
    sigma_library = fwhm_library * _FWHM_TO_SIGMA
    pixel_out = wavelength * np.log(10.0) * LOGLAM_STEP
    variance = (
        np.clip(sigma_target**2 - sigma_library**2, 0.0, None)
        + np.clip(pixel_out**2 - step**2, 0.0, None) / 12
    )
    sigma = np.maximum(np.sqrt(variance) / step, 0.3)
    half = int(np.ceil(4 * sigma.max()))
    columns = np.floor(centre).astype(int)[:, None] + np.arange(-half, half + 2)[None, :]
    weights = np.exp(-0.5 * ((columns - centre[:, None]) / sigma[:, None]) ** 2)
    inside = (columns.min(axis=1) >= 0) & (columns.max(axis=1) < n_in)
    weights[~inside] = 0.0
    weights /= np.where(inside, weights.sum(axis=1), 1.0)[:, None]
    rows = np.repeat(np.arange(len(loglam)), columns.shape[1])
    matrix = scipy.sparse.csr_matrix(
        (weights.ravel(), (rows, np.clip(columns, 0, n_in - 1).ravel())), shape=(len(loglam), n_in)
    )
    return matrix, inside


def _read_fits(path):
    from astropy.io import fits

    with warnings.catch_warnings():
        # STELIB headers carry non-standard cards (APNUM1) that astropy fixes and warns about.
        warnings.simplefilter("ignore", category=fits.verify.VerifyWarning)
        with fits.open(path) as hdul:
            header = hdul[0].header
            data = np.asarray(hdul[0].data, dtype=float)
            meta = {
                key: header.get(key)
                for key in ("CRVAL1", "CDELT1", "TEFF", "LOG_G", "FE_H", "OBJECT")
            }
    return data, meta


def _miles_names(folder):
    names = {}
    path = folder / "paramsMILES_v9.1.txt"
    if path.is_file():
        for line in path.read_text().splitlines()[3:]:
            if len(line) > 28 and line[22:28].strip().isdigit():
                names[int(line[22:28])] = line[:22].strip()
    return names


def load_miles():
    """Load the MILES v9.1 stars that have all three labels, on the SDSS grid at R ~ 2000.

    Returns
    -------
    loglam : numpy.ndarray
        (npix,) rest-frame log10(vacuum Angstrom), the part of :func:`library_grid` MILES covers
        (3540-7410 A in air).
    flux : numpy.ndarray
        (n_stars, npix) flux in MILES's own units (relative flux density per Angstrom).
    labels : pandas.DataFrame
        Columns ``teff`` (K), ``feh`` (dex), ``logg`` (dex), ``name`` (star, or MILES id).

    Raises
    ------
    ModuleNotFoundError
        If ``sdss-mangadap`` is not installed (``pip install --no-deps sdss-mangadap``).
    """
    folder = templates_dir() / "miles"
    table = np.loadtxt(folder / "MILES_params.db", comments="#")
    names = _miles_names(folder)
    loglam = library_grid()
    spectra, rows, matrix = [], [], None
    for number, teff, logg, feh in table:
        path = folder / f"MILES_res2.50_star_m{int(number):04d}V.fits"
        if teff > 90000 or logg > 9000 or feh > 9000 or not path.is_file():
            continue
        data, meta = _read_fits(path)
        if matrix is None:
            matrix, inside = _resampling_matrix(
                meta["CRVAL1"], meta["CDELT1"], data.size, 2.5, loglam
            )
        spectra.append(matrix @ data)
        rows.append(
            {
                "teff": teff,
                "feh": feh,
                "logg": logg,
                "name": names.get(int(number), f"m{int(number):04d}"),
            }
        )
    if not spectra:
        raise FileNotFoundError(
            f"no MILES spectra with labels in {folder}; reinstall: {EXTRA_HINT}"
        )
    flux = np.vstack(spectra)[:, inside]
    return loglam[inside], flux, pd.DataFrame(rows)


def load_stelib():
    """Load the STELIB v3.2 stars that have all three labels, on the SDSS grid at R ~ 2000.

    Returns
    -------
    loglam : numpy.ndarray
        (npix,) the whole of :func:`library_grid` (STELIB spans about 3200-9900 A).
    flux : numpy.ndarray
        (n_stars, npix) flux in erg/s/cm^2/A; NaN where a star's spectrum is zero-padded (about a
        quarter of the stars stop near 8100 A). Telluric bands are **not** removed.
    labels : pandas.DataFrame
        Columns ``teff``, ``feh``, ``logg``, ``name``.

    Raises
    ------
    ModuleNotFoundError
        If ``sdss-mangadap`` is not installed (``pip install --no-deps sdss-mangadap``).
    """
    folder = templates_dir() / "stelib"
    loglam = library_grid()
    spectra, rows = [], []
    for path in sorted(folder.glob("STELIB_v3.2_*.fits")):
        data, meta = _read_fits(path)
        try:
            teff, logg, feh = (float(meta[key]) for key in ("TEFF", "LOG_G", "FE_H"))
        except (TypeError, ValueError):
            continue  # '-' marks a missing label
        matrix, inside = _resampling_matrix(meta["CRVAL1"], meta["CDELT1"], data.size, 3.4, loglam)
        valid = (data > 0).astype(float)
        resampled = matrix @ data
        # A pixel is valid only when its whole smoothing kernel sees real (non-padded) data.
        complete = inside & ((matrix @ valid) > 1.0 - 1e-9)
        spectra.append(np.where(complete, resampled, np.nan))
        rows.append(
            {
                "teff": teff,
                "feh": feh,
                "logg": logg,
                "name": str(meta["OBJECT"] or path.stem).strip(),
            }
        )
    if not spectra:
        raise FileNotFoundError(
            f"no STELIB spectra with labels in {folder}; reinstall: {EXTRA_HINT}"
        )
    return loglam, np.vstack(spectra), pd.DataFrame(rows)
