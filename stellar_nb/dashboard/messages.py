"""Why the dashboard cannot analyse a spectrum, said in the user's terms and naming the file.

The library's checks speak of arrays ("cannot be preprocessed (rv_out_of_range)"), which is right
for a batch of rows and wrong for a person who picked one file. :func:`screen` runs before the
preprocessing and says what is wrong with the file as its user knows it: a galaxy or a quasar (the
survey pipeline's CLASS and Z), a radial velocity no star has, no usable pixel, a constant flux,
too little of the model's wavelength range. :func:`explain_preprocessing` words whatever the
preprocessing still refuses. Both raise :class:`~stellar_nb.dashboard.inputs.DashboardInputError`;
the library's own exceptions are left as they are.
"""

import re

import numpy as np

from stellar_nb import doppler, trust
from stellar_nb.dashboard.inputs import DashboardInputError
from stellar_nb.preprocess import resampling

__all__ = [
    "NON_STARS",
    "explain_preprocessing",
    "non_star",
    "radial_velocity",
    "screen",
]

#: Survey CLASS values the dashboard refuses, with their names for people.
NON_STARS = {"GALAXY": "a galaxy", "QSO": "a quasar"}
_LIMIT = f"±{resampling.MAX_ABS_RV_KMS:,.0f} km/s (1% of the speed of light)"
_BEYOND = f"beyond the {_LIMIT} that any star of the Milky Way stays within"
_PROBLEMS = {
    "too_short": "fewer than 4 usable pixels (ivar > 0, no fatal mask bit): nothing to measure",
    "non_finite": "wavelengths or usable fluxes that are not finite numbers: the file is damaged",
    "constant": "a flux that is constant on the model's wavelength grid: nothing to measure",
    "loglam_not_increasing": "wavelengths that do not increase from pixel to pixel",
    "rv_out_of_range": f"a radial velocity {_BEYOND}",
}


def _number(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def radial_velocity(meta, source, test_rv=None):
    """The radial velocity (km/s) that moves this spectrum to the rest frame, checked.

    Parameters
    ----------
    meta : dict
        The spectrum's ``meta``: ``rv_kms`` if known, else the pipeline redshift ``z``.
    source : str
        The file's name, for messages.
    test_rv : float, optional
        The test split's ``rv_adop`` of this star, used when ``meta`` has no ``rv_kms``.

    Returns
    -------
    float

    Raises
    ------
    DashboardInputError
        If the velocity is not a number, comes from an impossible redshift, or is beyond
        :data:`stellar_nb.preprocess.resampling.MAX_ABS_RV_KMS`.
    """
    if meta.get("rv_kms") is not None or test_rv is not None:
        rv_kms = _number(meta["rv_kms"] if meta.get("rv_kms") is not None else test_rv)
        origin = "its radial velocity, {rv:,.0f} km/s, is"
    else:
        z = _number(meta.get("z") or 0.0)
        if z is None or not np.isfinite(z):
            raise DashboardInputError(
                f"{source}: its header's redshift Z = {meta.get('z')} is not a number, so the "
                "spectrum cannot be moved to the rest frame"
            )
        if z <= -1:
            raise DashboardInputError(
                f"{source}: its header's redshift Z = {z:g} is impossible (a redshift is above -1)"
            )
        rv_kms = float(doppler.velocity_from_redshift(z))
        origin = f"its header's redshift Z = {z:.3g} means a radial velocity of {{rv:,.0f}} km/s,"
    if rv_kms is None or not np.isfinite(rv_kms):
        raise DashboardInputError(
            f"{source}: its radial velocity is not a number, so the spectrum cannot be moved to "
            "the rest frame"
        )
    if abs(rv_kms) > resampling.MAX_ABS_RV_KMS:
        raise DashboardInputError(
            f"{source}: {origin.format(rv=rv_kms)} {_BEYOND}: a galaxy or a quasar, or a wrong "
            "velocity; stellar_nb analyses stars"
        )
    return rv_kms


def screen(spectrum, *, source, rv_kms, bad_pixels, grid):
    """Refuse, in the user's terms, a spectrum that the dashboard should not analyse.

    Parameters
    ----------
    spectrum : stellar_nb.data.fits.Spectrum
    source : str
        The file's name, for messages.
    rv_kms : float
        Radial velocity of the rest frame (:func:`radial_velocity`).
    bad_pixels : numpy.ndarray of bool
        Dead or masked pixels (:func:`stellar_nb.preprocess.bad_pixels`).
    grid : numpy.ndarray
        The model's log10 wavelength grid.

    Raises
    ------
    DashboardInputError
        If every pixel is masked, fewer than 4 are usable, a usable flux is not finite, the flux is
        constant, or the usable pixels cover less than :data:`stellar_nb.trust.MIN_GOOD_COVERAGE` of ``grid``
        (the trust flag "too little coverage", which makes ``predict`` withhold labels too).
    """
    good = ~np.asarray(bad_pixels, dtype=bool)
    flux = np.asarray(spectrum.flux, dtype=float)[good]
    if not good.any():
        raise DashboardInputError(
            f"{source}: every pixel is masked (ivar = 0 or a fatal mask bit): nothing to measure"
        )
    if good.sum() < 4:
        raise DashboardInputError(
            f"{source}: only {good.sum()} of {good.size} pixels are usable (ivar > 0, no fatal "
            "mask bit): nothing to measure"
        )
    if not np.all(np.isfinite(flux)):
        count = int(np.sum(~np.isfinite(flux)))
        raise DashboardInputError(
            f"{source}: {count} usable pixels have a flux that is NaN or infinite: the file is damaged"
        )
    if np.ptp(flux) == 0:
        where = "every pixel" if good.all() else "every usable pixel"
        raise DashboardInputError(
            f"{source}: the flux is constant ({where} {flux[0]:g}): nothing to measure"
        )
    coverage = trust.good_coverage(spectrum.loglam, bad_pixels, rv_kms, grid)
    if coverage < trust.MIN_GOOD_COVERAGE:
        low, high = 10 ** np.asarray(grid)[[0, -1]]
        rest = 10 ** (np.asarray(spectrum.loglam)[good] - doppler.loglam_shift(rv_kms))
        model_range = f"the model's {low:,.0f}-{high:,.0f} Å"
        if coverage == 0:
            raise DashboardInputError(
                f"{source}: its usable pixels, {rest.min():,.0f}-{rest.max():,.0f} Å in the rest "
                f"frame, lie outside {model_range}: nothing to measure"
            )
        raise DashboardInputError(
            f"{source}: its usable pixels ({rest.min():,.0f}-{rest.max():,.0f} Å in the rest "
            f"frame) cover only {_percent(coverage)} of {model_range}; at least "
            f"{100 * trust.MIN_GOOD_COVERAGE:.0f}% is needed for a measurement"
        )


def _percent(fraction):
    return "under 1%" if fraction < 0.01 else f"{100 * fraction:.0f}%"


def explain_preprocessing(source, error):
    """A :class:`DashboardInputError` saying in words why the preprocessing refused ``source``.

    Parameters
    ----------
    source : str
        The file's name.
    error : ValueError
        From :meth:`stellar_nb.preprocess.Preprocessor.stages`: "cannot be preprocessed (NAMES)"
        with the names of :data:`stellar_nb.preprocess.spectra.FLAGS`, or any other message.

    Returns
    -------
    DashboardInputError
    """
    match = re.search(r"cannot be preprocessed \(([^)]*)\)", str(error))
    names = [name.strip() for name in match.group(1).split(",")] if match else []
    if names and all(name in _PROBLEMS for name in names):
        return DashboardInputError(
            f"{source}: cannot be analysed: it has {'; and '.join(_PROBLEMS[n] for n in names)}"
        )
    return DashboardInputError(f"{source}: cannot be analysed ({error})")


def non_star(meta, source):
    """A :class:`DashboardInputError` when the survey pipeline's CLASS is a galaxy or a quasar."""
    objclass = str(meta.get("objclass") or "").strip().upper()
    if objclass not in NON_STARS:
        return None
    z = _number(meta.get("z"))
    at = f" at z = {z:.3g}" if z is not None and np.isfinite(z) else ""
    return DashboardInputError(
        f"{source}: its header says CLASS = {objclass}{at}: not a star ({NON_STARS[objclass]}); "
        "stellar_nb analyses stars"
    )
