"""Trust flags: what says a prediction should not be believed. One implementation for every caller.

``stellar-nb predict`` (as ``flag_*`` columns), the dashboard (as its flag list) and
``stellar-nb bench real-stars`` all call :func:`check`. Each flag has a name, whether it is raised,
and a one-line detail for people:

- **low S/N**: below :data:`LOW_SNR`, where the paper's sample starts.
- **masked pixels**: more than :data:`MAX_MASKED_FRACTION` of the pixels dead (ivar = 0) or masked.
- **short coverage**: the good pixels span less than :data:`MIN_COVERAGE` of the model's grid.
- **too little coverage**: fewer than :data:`MIN_GOOD_COVERAGE` of the model's grid points have
  a good pixel within one grid step (rest frame); the preprocessing would fill the rest by
  clamping the ends or interpolating, so the labels are withheld (:data:`WITHHOLDING_FLAGS`).
- **non-positive flux**: more than :data:`MAX_NON_POSITIVE_FRACTION` of the good pixels have
  flux <= 0 (real spectra have at most a few percent); noise or a sign error, not a star.
- **outlier pixels**: a good pixel more than :data:`OUTLIER_LIMIT` robust standard deviations
  (1.4826 x the median absolute deviation) from the median flux, e.g. a single 1e30 value (real
  LAMOST stars reach a few hundred at most, at strong lines and sky residuals).
- **not a star**: the survey pipeline's CLASS is not STAR.
- **non-FGK subclass**: the pipeline's SUBCLASS names an object the model was never shown
  (white dwarfs, cataclysmic variables, O/B, M/L/T, carbon stars, ...; :data:`FOREIGN_SUBCLASS`).
- **labels at the training edge**: a predicted label outside, or within :data:`EDGE_MARGIN` of
  the edge of, the training labels' range, or far from every library star the emulator was
  fitted on: networks saturate at the edges, so a star beyond them is predicted at the edge.
- **misfit**: the observed spectrum does not look like the emulated one at the predicted labels.
  The statistic is the mean over good pixels of ``(f - m)^2 / (1/ivar + (e m)^2)`` with ``m``
  the emulated spectrum Doppler-shifted and multiplied by the best calibration polynomial
  (:func:`stellar_nb.emulator.fit_to_observed`), and ``e`` the emulator's own per-pixel error,
  the RMS of held-out real library stars (:func:`stellar_nb.simulate.residuals.load_emulator_error`).
  A star like the training stars has a value near 1; the flag is raised above :data:`MISFIT_LIMIT`.
- **far from the training set**: only where the caller gives a distance and its threshold (the
  dashboard's principal-component distance).
"""

import re

import numpy as np

from stellar_nb import doppler, schema
from stellar_nb import emulator as emulator_module

__all__ = [
    "EDGE_MARGIN",
    "FLAG_NAMES",
    "FOREIGN_SUBCLASS",
    "LOW_SNR",
    "MAX_MASKED_FRACTION",
    "MAX_NON_POSITIVE_FRACTION",
    "MIN_COVERAGE",
    "MIN_GOOD_COVERAGE",
    "MISFIT_LIMIT",
    "OUTLIER_LIMIT",
    "TABLE_FLAG_NAMES",
    "TRAINING_RANGES",
    "WITHHOLDING_FLAGS",
    "check",
    "column_name",
    "good_coverage",
    "misfit",
    "table",
]

LOW_SNR = 10.0
MAX_MASKED_FRACTION = 0.2
MIN_COVERAGE = 0.8
#: Least fraction of the model's grid with a good pixel nearby for labels to be given at all.
MIN_GOOD_COVERAGE = 0.5
#: Most fraction of good pixels with flux <= 0.
MAX_NON_POSITIVE_FRACTION = 0.1
#: Largest distance of a good pixel from the median flux, in robust standard deviations.
OUTLIER_LIMIT = 1000.0
#: Fraction of each label's training range treated as its edge.
EDGE_MARGIN = 0.02
#: Limit of the misfit statistic (about 1 for a spectrum that the emulator describes).
MISFIT_LIMIT = 3.0
#: Label ranges of the simulated training survey (:data:`stellar_nb.simulate.LABEL_RANGES`).
TRAINING_RANGES = {"teff": (4000.0, 9200.0), "feh": (-4.0, 0.7), "logg": (0.2, 5.0)}
#: Survey SUBCLASS values (SDSS and LAMOST) of objects outside the model's FGK(+A) training set.
FOREIGN_SUBCLASS = re.compile(r"^\s*(WD|CV|O|B|M|L|T|sd[OBM]|Carbon|C\b|DoubleStar|STARFORMING)")
FLAG_NAMES = (
    "low S/N",
    "masked pixels",
    "short coverage",
    "too little coverage",
    "non-positive flux",
    "outlier pixels",
    "not a star",
    "non-FGK subclass",
    "labels at the training edge",
    "misfit",
    "far from the training set",
)
#: The flags of :func:`table` (every one but the distance flag): columns of every predict table.
TABLE_FLAG_NAMES = FLAG_NAMES[:-1]
#: Flags under which no labels are given (they are set to NaN by ``stellar-nb predict``).
WITHHOLDING_FLAGS = ("too little coverage",)


def column_name(flag_name):
    """Table column of a flag: ``"labels at the training edge"`` -> ``"flag_labels_at_the_training_edge"``."""
    return "flag_" + re.sub(r"[^a-z0-9]+", "_", flag_name.lower()).strip("_")


def good_coverage(loglam, bad_pixels, rv_kms, grid=None):
    """Fraction of the model's grid points with a good pixel within 1.5 grid steps (rest frame).

    Parameters
    ----------
    loglam : array_like
        Observed log10 vacuum wavelengths.
    bad_pixels : array_like of bool
        Dead or masked pixels.
    rv_kms : float
        Radial velocity of the rest frame.
    grid : numpy.ndarray, optional
        The model's log-wavelength grid (the paper's by default).

    Returns
    -------
    float
        In [0, 1]; 0 when no pixel is good.
    """
    grid = schema.grid_loglam() if grid is None else np.asarray(grid, dtype=float)
    rest = np.sort(np.asarray(loglam, dtype=float)[~np.asarray(bad_pixels, dtype=bool)])
    rest = rest[np.isfinite(rest)] - doppler.loglam_shift(rv_kms)
    if rest.size == 0 or not np.isfinite(rest).all():
        return 0.0
    step = float(np.median(np.diff(grid))) if grid.size > 1 else 1e-4
    index = np.clip(np.searchsorted(rest, grid), 1, max(rest.size - 1, 1))
    nearest = np.minimum(
        np.abs(rest[index - 1] - grid), np.abs(rest[np.minimum(index, rest.size - 1)] - grid)
    )
    return float(np.mean(nearest <= 1.5 * step))


def _flux_checks(flux, good):
    flux = np.asarray(flux, dtype=float)[good]
    flux = flux[np.isfinite(flux)]
    if flux.size == 0:
        return 0.0, 0.0
    non_positive = float(np.mean(flux <= 0))
    median = np.median(flux)
    scale = 1.4826 * np.median(np.abs(flux - median))
    with np.errstate(all="ignore"):
        worst = float(np.max(np.abs(flux - median)) / scale) if scale > 0 else 0.0
    return non_positive, worst if np.isfinite(worst) else np.inf


def _pixel_error(emulator_error, rest_loglam):
    if emulator_error is None:
        return np.zeros(rest_loglam.shape)
    return np.interp(
        rest_loglam, emulator_error.loglam, emulator_error.pixel_rms(), left=0.0, right=0.0
    )


def misfit(emulator, labels, loglam, flux, ivar, rv_kms, *, good=None, emulator_error=None):
    """The misfit statistic of one spectrum against the emulator at ``labels`` (see the module docstring).

    Labels are clipped into the emulator's box first. Returns NaN when fewer than 50 good
    pixels are covered by the emulator.
    """
    labels = np.array(
        [np.clip(v, *emulator.bounds[k]) for k, v in zip(schema.LABELS, labels, strict=True)]
    )
    loglam = np.asarray(loglam, dtype=float)
    flux, ivar = np.asarray(flux, dtype=float), np.asarray(ivar, dtype=float)
    good = (ivar > 0) if good is None else (good & (ivar > 0))
    try:
        model = emulator_module.fit_to_observed(emulator, labels, loglam, flux, ivar * good, rv_kms)
    except ValueError:
        return np.nan
    good &= np.isfinite(model)
    if good.sum() < 50:
        return np.nan
    rest = loglam - doppler.loglam_shift(rv_kms)
    error = _pixel_error(emulator_error, rest)
    variance = 1.0 / ivar[good] + (error[good] * model[good]) ** 2
    return float(np.mean((flux[good] - model[good]) ** 2 / variance))


def check(
    prediction,
    *,
    loglam,
    flux,
    ivar,
    bad_pixels,
    rv_kms,
    snr,
    objclass=None,
    subclass=None,
    emulator=None,
    emulator_error=None,
    grid=None,
    label_ranges=None,
    distance=None,
    distance_threshold=None,
):
    """Trust flags of one prediction.

    Parameters
    ----------
    prediction : array_like
        (3,) teff, feh, logg (NaN when the spectrum was unusable).
    loglam, flux, ivar : array_like
        The observed spectrum (log10 vacuum Angstrom).
    bad_pixels : array_like of bool
        Dead or masked pixels.
    rv_kms : float
        Radial velocity used for the rest frame.
    snr : float
        Median S/N.
    objclass, subclass : str, optional
        The survey pipeline's CLASS and SUBCLASS.
    emulator : stellar_nb.emulator.Emulator, optional
        Needed for the misfit and support checks; without it they are not raised.
    emulator_error : stellar_nb.simulate.residuals.EmulatorError, optional
        The emulator's per-pixel error for the misfit statistic (a ``ResidualBank`` serves too);
        without it only the noise counts.
    grid : numpy.ndarray, optional
        The model's wavelength grid (the paper's by default), for the coverage check.
    label_ranges : dict, optional
        label -> (lo, hi) of the training labels; :data:`TRAINING_RANGES` by default.
    distance, distance_threshold : float, optional
        A distance to the training set and the value above which it is flagged.

    Returns
    -------
    list of dict
        ``{"name", "raised", "detail", "value"}`` in :data:`FLAG_NAMES` order (the distance flag
        only when a distance is given).
    """
    prediction = np.asarray(prediction, dtype=float)
    loglam = np.asarray(loglam, dtype=float)
    bad_pixels = np.asarray(bad_pixels, dtype=bool)
    grid = schema.grid_loglam() if grid is None else np.asarray(grid)
    snr = float(snr) if snr is not None and np.isfinite(snr) else 0.0
    flags = [("low S/N", snr < LOW_SNR, f"S/N {snr:.1f} (training starts at {LOW_SNR:g})", snr)]
    fraction = float(np.mean(bad_pixels))
    flags.append((
        "masked pixels", fraction > MAX_MASKED_FRACTION,
        f"{100 * fraction:.1f}% masked (limit {100 * MAX_MASKED_FRACTION:g}%)", fraction,
    ))  # fmt: skip
    rest = loglam[~bad_pixels] - doppler.loglam_shift(rv_kms)
    span = (min(rest.max(), grid[-1]) - max(rest.min(), grid[0])) if rest.size else 0.0
    coverage = max(float(span / (grid[-1] - grid[0])), 0.0)
    flags.append((
        "short coverage", coverage < MIN_COVERAGE,
        f"good pixels cover {100 * coverage:.0f}% of the model's wavelength range "
        f"(limit {100 * MIN_COVERAGE:g}%)", coverage,
    ))  # fmt: skip
    covered = good_coverage(loglam, bad_pixels, rv_kms, grid)
    flags.append((
        "too little coverage", covered < MIN_GOOD_COVERAGE,
        f"good pixels near {100 * covered:.0f}% of the model's grid points "
        f"(labels need {100 * MIN_GOOD_COVERAGE:g}%)", covered,
    ))  # fmt: skip
    non_positive, worst = _flux_checks(flux, ~bad_pixels)
    flags.append((
        "non-positive flux", non_positive > MAX_NON_POSITIVE_FRACTION,
        f"{100 * non_positive:.0f}% of the good pixels have flux <= 0 "
        f"(limit {100 * MAX_NON_POSITIVE_FRACTION:g}%)", non_positive,
    ))  # fmt: skip
    flags.append((
        "outlier pixels", worst > OUTLIER_LIMIT,
        f"a pixel {worst:.3g} robust sigmas from the median flux (limit {OUTLIER_LIMIT:g})", worst,
    ))  # fmt: skip
    objclass = None if objclass is None else str(objclass).strip().upper() or None
    flags.append((
        "not a star", objclass not in (None, "STAR"), f"pipeline CLASS {objclass or 'unknown'}", objclass,
    ))  # fmt: skip
    subclass = "" if subclass is None else str(subclass).strip()
    foreign = bool(FOREIGN_SUBCLASS.match(subclass))
    flags.append((
        "non-FGK subclass", foreign,
        f"pipeline SUBCLASS {subclass or 'unknown'}" + (" (not in the training set)" if foreign else ""),
        subclass,
    ))  # fmt: skip
    edges = []
    if np.all(np.isfinite(prediction)):
        for label, value in zip(schema.LABELS, prediction, strict=True):
            lo, hi = (label_ranges or TRAINING_RANGES)[label]
            margin = EDGE_MARGIN * (hi - lo)
            if not lo + margin <= value <= hi - margin:
                edges.append(schema.LABEL_UNITS[label][0])
        if emulator is not None and not emulator.in_bounds(prediction[None])[0]:
            edges.append("no library star near")
    flags.append((
        "labels at the training edge", bool(edges), ", ".join(edges) or "inside", ", ".join(edges),
    ))  # fmt: skip
    value = np.nan
    if emulator is not None and np.all(np.isfinite(prediction)):
        value = misfit(
            emulator,
            prediction,
            loglam,
            flux,
            ivar,
            rv_kms,
            good=~bad_pixels,
            emulator_error=emulator_error,
        )
    flags.append((
        "misfit", bool(np.isfinite(value) and value > MISFIT_LIMIT),
        f"misfit {value:.2f} against the emulated spectrum (limit {MISFIT_LIMIT:g})", value,
    ))  # fmt: skip
    if distance is not None:
        flags.append((
            "far from the training set", bool(distance > distance_threshold),
            f"distance {distance:.2f} (99% of test stars: below {distance_threshold:.2f})", distance,
        ))  # fmt: skip
    return [
        {"name": name, "raised": bool(raised), "detail": detail, "value": value}
        for name, raised, detail, value in flags
    ]


def table(prediction, spectra, rv_kms, *, emulator=None, emulator_error=None, fatal_bits=None):
    """Trust flags of many predictions as a table: one boolean ``flag_*`` column per flag.

    Parameters
    ----------
    prediction : array_like
        (n, 3) labels.
    spectra : sequence of mapping
        Per star ``loglam``, ``flux``, ``ivar``, ``mask`` (and_mask, may be None) and optionally
        ``snr``, ``objclass``, ``subclass``.
    rv_kms : array_like
        (n,) radial velocities.
    emulator, emulator_error
        As for :func:`check`.
    fatal_bits : int, optional
        and_mask bits that make a pixel bad (default: the preprocessing's).

    Returns
    -------
    pandas.DataFrame
        ``flag_*`` columns, ``misfit`` (the statistic), ``flagged`` (any flag) and ``flags``
        (the raised flags' names, "; "-separated).
    """
    import pandas as pd

    from stellar_nb import preprocess

    fatal_bits = preprocess.FATAL_AND_MASK if fatal_bits is None else fatal_bits
    rows = []
    for labels, spectrum, rv in zip(prediction, spectra, rv_kms, strict=True):
        ivar = np.asarray(spectrum["ivar"], dtype=float)
        bad = preprocess.bad_pixels(ivar, spectrum.get("mask"), fatal_bits=fatal_bits)
        flags = check(
            labels,
            loglam=spectrum["loglam"],
            flux=spectrum["flux"],
            ivar=ivar,
            bad_pixels=bad,
            rv_kms=float(rv),
            snr=spectrum.get("snr"),
            objclass=spectrum.get("objclass"),
            subclass=spectrum.get("subclass"),
            emulator=emulator,
            emulator_error=emulator_error,
        )
        row = {column_name(flag["name"]): flag["raised"] for flag in flags}
        row["misfit"] = next(flag["value"] for flag in flags if flag["name"] == "misfit")
        raised = [flag["name"] for flag in flags if flag["raised"]]
        row["flagged"] = bool(raised)
        row["flags"] = "; ".join(raised)
        rows.append(row)
    return pd.DataFrame(rows)
