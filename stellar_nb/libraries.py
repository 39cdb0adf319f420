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
The second half fits the emulator (:func:`fit_emulator`) and measures its held-out realism
(:func:`realism`); ``stellar-nb simulate --refit-emulator`` / ``--validate-emulator`` run them.

- STELIB spectra are zero-padded redward of about 8100 A for a quarter of the stars; padded
  pixels become NaN. Its telluric bands are not removed (see :data:`TELLURIC_BANDS`).
"""

import importlib.resources
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse

from stellar_nb import emulator, schema

__all__ = [
    "BLEND_WINDOW",
    "EXTRA_HINT",
    "FIT_RANGE",
    "LOGLAM_START",
    "LOGLAM_STEP",
    "NPIX",
    "REALISM_WINDOW",
    "SDSS_RESOLUTION",
    "TELLURIC_BANDS",
    "fit_emulator",
    "held_out_predictions",
    "library_grid",
    "load_miles",
    "load_stelib",
    "miles_ln_flux",
    "realism",
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


# --- The emulator, fitted on the libraries -----------------------------------------------------

#: Library stars used for the fit: a margin around the survey's label ranges.
FIT_RANGE = {"teff": (3700.0, 10500.0), "feh": (-3.0, 1.0), "logg": (-0.3, 5.3)}
#: Normalisation window of the emulated flux (mean 1), and the MILES -> STELIB blend (Angstrom).
NORM_WINDOW = (4500.0, 7000.0)
BLEND_WINDOW = (6980.0, 7150.0)
#: Realism is measured where MILES is complete.
REALISM_WINDOW = (3800.0, 7400.0)


def _select(flux, labels, exclude=()):
    table = labels[list(schema.LABELS)].to_numpy(dtype=float)
    keep = ~labels["name"].isin(list(exclude)).to_numpy()
    for i, label in enumerate(schema.LABELS):
        lo, hi = FIT_RANGE[label]
        keep &= (table[:, i] >= lo) & (table[:, i] <= hi)
    return flux[keep], table[keep]


def _ridge(features, targets, penalty=1e-3):
    gram = features.T @ features + penalty * np.eye(features.shape[1])
    return np.linalg.solve(gram, features.T @ targets)


def realism(ln_emulated, ln_real, loglam, window=REALISM_WINDOW, degree=5):
    """RMS fractional difference of continuum-shape-normalised spectra, per star and per pixel.

    Both spectra are put on the same continuum shape by dividing the emulated one by the
    degree-``degree`` Legendre polynomial that best fits the ratio emulated / real over ``window``:
    a smooth difference (flux calibration, reddening) is not counted, the line pattern is.

    Returns
    -------
    per_star : numpy.ndarray
        (n,) RMS over the window of emulated / (real * polynomial) - 1.
    loglam_window : numpy.ndarray
        (m,) the window's pixels.
    per_pixel : numpy.ndarray
        (n, m) fractional differences.
    """
    wavelength = 10.0 ** np.asarray(loglam)
    inside = (wavelength >= window[0]) & (wavelength <= window[1])
    ratio = np.exp(ln_emulated[:, inside] - ln_real[:, inside])
    design = emulator.legendre_design(loglam[inside], degree)
    coefficients, *_ = np.linalg.lstsq(design, ratio.T, rcond=None)
    difference = ratio / (design @ coefficients).T - 1.0
    return np.sqrt(np.mean(difference**2, axis=1)), loglam[inside], difference


def held_out_predictions(fit, features, targets, n_folds, seed):
    """Cross-validated ``features @ fit(features, targets)``: each row from a fit that did not see it.

    Rows go to ``n_folds`` folds at random (``seed``); ``fit(features, targets)`` returns the
    coefficients (:func:`_ridge`, :func:`_masked_fit`).
    """
    folds = np.random.default_rng(seed).integers(0, n_folds, len(targets))
    predicted = np.full_like(targets, np.nan)
    for fold in range(n_folds):
        train = folds != fold
        predicted[~train] = features[~train] @ fit(features[train], targets[train])
    return predicted


def _cross_validate(ln_flux, table, loglam, degree, n_folds, seed):
    features = emulator.design_matrix(table, emulator.monomial_exponents(degree))
    predicted = held_out_predictions(_ridge, features, ln_flux, n_folds, seed)
    return realism(predicted, ln_flux, loglam)


def miles_ln_flux(exclude=()):
    """MILES stars of :data:`FIT_RANGE` with positive flux: ``(loglam, ln flux, labels (n, 3))``.

    The flux is normalised to a mean of 1 over :data:`NORM_WINDOW`, as the emulator's is;
    ``exclude`` names stars to leave out.
    """
    loglam, flux, labels = load_miles()
    flux, table = _select(flux, labels, exclude)
    positive = np.all(flux > 0, axis=1)
    flux, table = flux[positive], table[positive]
    wavelength = 10.0**loglam
    norm = (wavelength >= NORM_WINDOW[0]) & (wavelength <= NORM_WINDOW[1])
    return loglam, np.log(flux / flux[:, norm].mean(axis=1, keepdims=True)), table


def _stelib_ln_flux(loglam, flux):
    """ln flux of STELIB stars with telluric bands bridged (see :func:`fit_emulator`)."""
    wavelength = 10.0**loglam
    ln_flux = np.log(np.where(flux > 0, flux, np.nan))
    last = TELLURIC_BANDS[-1][0]
    for lo, hi in TELLURIC_BANDS[:-1]:
        band = (wavelength >= lo) & (wavelength <= hi)
        left, right = np.flatnonzero(band)[0] - 1, np.flatnonzero(band)[-1] + 1
        t = (loglam[band] - loglam[left]) / (loglam[right] - loglam[left])
        ln_flux[:, band] = ln_flux[:, [left]] * (1 - t) + ln_flux[:, [right]] * t
    anchor = (wavelength >= 8700.0) & (wavelength < last)
    beyond = wavelength >= last
    for row in ln_flux:
        good = anchor & np.isfinite(row)
        row[beyond] = (
            np.polyval(np.polyfit(loglam[good], row[good], 1), loglam[beyond])
            if good.sum() > 50 and np.isfinite(row[beyond][0])
            else np.nan
        )
    blend = (wavelength >= BLEND_WINDOW[0]) & (wavelength <= BLEND_WINDOW[1])
    ln_flux[~np.isfinite(ln_flux[:, blend]).all(axis=1)] = np.nan  # no anchor to MILES: unusable
    return ln_flux - ln_flux[:, blend].mean(axis=1, keepdims=True)


def _masked_fit(features, targets):
    """Per-pixel ridge fit where each pixel uses only the stars with finite targets."""
    valid = np.isfinite(targets)
    coefficients = np.zeros((features.shape[1], targets.shape[1]))
    patterns, group = np.unique(valid.T, axis=0, return_inverse=True)
    for index, pattern in enumerate(patterns):
        if pattern.sum() > 2 * features.shape[1]:
            pixels = group.ravel() == index
            coefficients[:, pixels] = _ridge(features[pattern], targets[pattern][:, pixels])
    return coefficients


def fit_emulator(candidates=(2, 3, 4), red_degree=2, n_folds=5, seed=0, exclude=()):
    """Fit the emulator on MILES (blue) and STELIB (red); choose the degree by held-out realism.

    - 3574-6980 A (vacuum): MILES v9.1 stars in :data:`FIT_RANGE`, degree chosen among
      ``candidates`` by ``n_folds``-fold cross-validation of :func:`realism`.
    - 7150-9311 A: MILES stops at 7410 A, so the red part comes from STELIB v3.2 (about 200 stars
      with labels, degree ``red_degree``; each pixel uses the stars that are not zero-padded
      there). Its telluric bands are bridged by linear interpolation in ln flux, and redward of
      8940 A (water bands to the end of STELIB's useful range) ln flux is extrapolated linearly
      from 8700-8940 A: beyond 8940 A the emulated spectrum is a smooth continuum without lines.
    - 6980-7150 A: the two are blended linearly; STELIB's ln flux is offset to MILES's mean over
      the window, so the emulated continuum is continuous.

    ``exclude`` names library stars (``name`` of :func:`load_miles` / :func:`load_stelib`) left out
    of the fit, so that they can judge a model trained on it (``stellar-nb bench library-cv``).

    Returns
    -------
    emulator : Emulator
    report : dict
        Held-out realism per degree, per star and per wavelength for the chosen degree.
    """
    loglam = library_grid()
    miles_loglam, ln_miles, miles_table = miles_ln_flux(exclude)
    scores = {
        degree: _cross_validate(ln_miles, miles_table, miles_loglam, degree, n_folds, seed)
        for degree in candidates
    }
    degree = min(candidates, key=lambda d: np.median(scores[d][0]))
    exponents = emulator.monomial_exponents(degree)
    blue = _ridge(emulator.design_matrix(miles_table, exponents), ln_miles)

    stelib_loglam, stelib_flux, stelib_labels = load_stelib()
    stelib_flux, stelib_table = _select(stelib_flux, stelib_labels, exclude)
    red_exponents = emulator.monomial_exponents(red_degree)
    red_small = _masked_fit(
        emulator.design_matrix(stelib_table, red_exponents),
        _stelib_ln_flux(stelib_loglam, stelib_flux),
    )
    red = np.zeros((len(exponents), len(loglam)))
    for row, exponent in enumerate(red_exponents):
        red[np.flatnonzero((exponents == exponent).all(axis=1))[0]] = red_small[row]

    full = 10.0**loglam
    blend = (full >= BLEND_WINDOW[0]) & (full <= BLEND_WINDOW[1])
    offset = blue[:, blend[: blue.shape[1]]].mean(axis=1) - red[:, blend].mean(axis=1)
    red += offset[:, None]
    weight = np.clip((full - BLEND_WINDOW[0]) / (BLEND_WINDOW[1] - BLEND_WINDOW[0]), 0.0, 1.0)
    blue_full = np.zeros_like(red)
    blue_full[:, : blue.shape[1]] = blue
    coefficients = blue_full * (1 - weight) + red * weight

    per_star, window, difference = scores[degree]
    bounds = {
        label: (float(miles_table[:, i].min()), float(miles_table[:, i].max()))
        for i, label in enumerate(schema.LABELS)
    }
    bounds["teff"] = (max(bounds["teff"][0], 3800.0), min(bounds["teff"][1], 9800.0))
    metadata = {
        "model": f"ln flux = polynomial of total degree {degree} in scaled labels (MILES), degree {red_degree} (STELIB) redward of 7150 A",
        "degree": degree,
        "n_miles": len(miles_table),
        "n_stelib": len(stelib_table),
        "held_out_median_rms": {str(d): float(np.median(scores[d][0])) for d in candidates},
    }
    fitted = emulator.Emulator(
        coefficients,
        exponents,
        loglam,
        bounds,
        np.vstack([miles_table, stelib_table]),
        1.0,
        metadata,
    )
    report = {
        "degree": degree,
        "median_rms": float(np.median(per_star)),
        "by_degree": metadata["held_out_median_rms"],
        "per_star": per_star,
        "labels": miles_table,
        "loglam": window,
        "per_pixel_rms": np.sqrt(np.mean(difference**2, axis=0)),
        "per_pixel_median_abs": np.median(np.abs(difference), axis=0),
    }
    return fitted, report
