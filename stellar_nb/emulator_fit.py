"""The spectrum emulator fitted on the real library stars, and its held-out realism.

:func:`fit_emulator` fits :class:`~stellar_nb.emulator.Emulator` on MILES (blue) and STELIB (red)
stars read by :mod:`stellar_nb.libraries`; :func:`realism` measures how close held-out emulated
spectra come to the real ones. ``stellar-nb simulate --refit-emulator`` / ``--validate-emulator``
run them; :mod:`stellar_nb.simulate.residuals` reuses the fold machinery.
"""

import numpy as np

from stellar_nb import emulator, libraries, schema

__all__ = [
    "BLEND_WINDOW",
    "FIT_RANGE",
    "NORM_WINDOW",
    "REALISM_WINDOW",
    "fit_emulator",
    "held_out_predictions",
    "masked_fit",
    "miles_ln_flux",
    "realism",
    "ridge",
    "select_stars",
    "stelib_ln_flux",
]

#: Library stars used for the fit: a margin around the survey's label ranges.
FIT_RANGE = {"teff": (3700.0, 10500.0), "feh": (-3.0, 1.0), "logg": (-0.3, 5.3)}
#: Normalisation window of the emulated flux (mean 1), and the MILES -> STELIB blend (Angstrom).
NORM_WINDOW = (4500.0, 7000.0)
BLEND_WINDOW = (6980.0, 7150.0)
#: Realism is measured where MILES is complete.
REALISM_WINDOW = (3800.0, 7400.0)


def select_stars(flux, labels, exclude=()):
    table = labels[list(schema.LABELS)].to_numpy(dtype=float)
    keep = ~labels["name"].isin(list(exclude)).to_numpy()
    for i, label in enumerate(schema.LABELS):
        lo, hi = FIT_RANGE[label]
        keep &= (table[:, i] >= lo) & (table[:, i] <= hi)
    return flux[keep], table[keep]


def ridge(features, targets, penalty=1e-3):
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
    coefficients (:func:`ridge`, :func:`masked_fit`).
    """
    folds = np.random.default_rng(seed).integers(0, n_folds, len(targets))
    predicted = np.full_like(targets, np.nan)
    for fold in range(n_folds):
        train = folds != fold
        predicted[~train] = features[~train] @ fit(features[train], targets[train])
    return predicted


def _cross_validate(ln_flux, table, loglam, degree, n_folds, seed):
    features = emulator.design_matrix(table, emulator.monomial_exponents(degree))
    predicted = held_out_predictions(ridge, features, ln_flux, n_folds, seed)
    return realism(predicted, ln_flux, loglam)


def miles_ln_flux(exclude=()):
    """MILES stars of :data:`FIT_RANGE` with positive flux: ``(loglam, ln flux, labels (n, 3))``.

    The flux is normalised to a mean of 1 over :data:`NORM_WINDOW`, as the emulator's is;
    ``exclude`` names stars to leave out.
    """
    loglam, flux, labels = libraries.load_miles()
    flux, table = select_stars(flux, labels, exclude)
    positive = np.all(flux > 0, axis=1)
    flux, table = flux[positive], table[positive]
    wavelength = 10.0**loglam
    norm = (wavelength >= NORM_WINDOW[0]) & (wavelength <= NORM_WINDOW[1])
    return loglam, np.log(flux / flux[:, norm].mean(axis=1, keepdims=True)), table


def stelib_ln_flux(loglam, flux):
    """ln flux of STELIB stars with telluric bands bridged (see :func:`fit_emulator`)."""
    wavelength = 10.0**loglam
    ln_flux = np.log(np.where(flux > 0, flux, np.nan))
    last = libraries.TELLURIC_BANDS[-1][0]
    for lo, hi in libraries.TELLURIC_BANDS[:-1]:
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


def masked_fit(features, targets):
    """Per-pixel ridge fit where each pixel uses only the stars with finite targets."""
    valid = np.isfinite(targets)
    coefficients = np.zeros((features.shape[1], targets.shape[1]))
    patterns, group = np.unique(valid.T, axis=0, return_inverse=True)
    for index, pattern in enumerate(patterns):
        if pattern.sum() > 2 * features.shape[1]:
            pixels = group.ravel() == index
            coefficients[:, pixels] = ridge(features[pattern], targets[pattern][:, pixels])
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

    ``exclude`` names library stars (``name`` of :func:`~stellar_nb.libraries.load_miles` / :func:`~stellar_nb.libraries.load_stelib`) left out
    of the fit, so that they can judge a model trained on it (``stellar-nb bench library-cv``).

    Returns
    -------
    emulator : Emulator
    report : dict
        Held-out realism per degree, per star and per wavelength for the chosen degree.
    """
    loglam = libraries.library_grid()
    miles_loglam, ln_miles, miles_table = miles_ln_flux(exclude)
    scores = {
        degree: _cross_validate(ln_miles, miles_table, miles_loglam, degree, n_folds, seed)
        for degree in candidates
    }
    degree = min(candidates, key=lambda d: np.median(scores[d][0]))
    exponents = emulator.monomial_exponents(degree)
    blue = ridge(emulator.design_matrix(miles_table, exponents), ln_miles)

    stelib_loglam, stelib_flux, stelib_labels = libraries.load_stelib()
    stelib_flux, stelib_table = select_stars(stelib_flux, stelib_labels, exclude)
    red_exponents = emulator.monomial_exponents(red_degree)
    red_small = masked_fit(
        emulator.design_matrix(stelib_table, red_exponents),
        stelib_ln_flux(stelib_loglam, stelib_flux),
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
