"""The relativistic Doppler shift, written once for the whole package.

A star receding at radial velocity ``v`` (km/s, positive away from us) has its light shifted by

    1 + z = sqrt((1 + beta) / (1 - beta)),    beta = v / c,

so an observed wavelength is the rest wavelength times ``1 + z``, and SDSS's log10 wavelengths
move by ``log10(1 + z)``. The simulator, the preprocessing (rest-frame shift), the emulator fit,
the trust checks, ``stellar-nb predict`` (SDSS's pipeline ``Z`` of a star) and the dashboard's line
markers all call these functions.
"""

import numpy as np

from stellar_nb import schema

__all__ = ["loglam_shift", "velocity_from_redshift", "wavelength_factor"]


def _beta(rv_kms):
    beta = np.asarray(rv_kms, dtype=float) / schema.C_KM_S
    if np.any(np.abs(beta) >= 1):
        raise ValueError(
            f"radial velocity must be below the speed of light ({schema.C_KM_S} km/s) in size"
        )
    return beta


def loglam_shift(rv_kms):
    """``log10(1 + z)``: how far a radial velocity moves a spectrum in log10 wavelength.

    Parameters
    ----------
    rv_kms : float or array_like
        Radial velocity in km/s (positive: receding). NaN gives NaN.

    Returns
    -------
    float or numpy.ndarray
        ``log10(1 + z)`` with the relativistic ``1 + z = sqrt((1 + beta) / (1 - beta))``.

    Raises
    ------
    ValueError
        If ``|rv_kms|`` is not below the speed of light.

    Examples
    --------
    >>> round(float(loglam_shift(300.0)), 10)
    0.0004345953
    >>> float(loglam_shift(-300.0)) == -float(loglam_shift(300.0))
    True
    """
    beta = _beta(rv_kms)
    return 0.5 * (np.log10(1.0 + beta) - np.log10(1.0 - beta))


def wavelength_factor(rv_kms):
    """``1 + z``: the factor from a rest wavelength to the observed one.

    Parameters
    ----------
    rv_kms : float or array_like
        Radial velocity in km/s (positive: receding).

    Returns
    -------
    float or numpy.ndarray
        ``sqrt((1 + beta) / (1 - beta))``.

    Raises
    ------
    ValueError
        If ``|rv_kms|`` is not below the speed of light.

    Examples
    --------
    >>> round(float(wavelength_factor(300.0)), 10)
    1.0010011935
    """
    beta = _beta(rv_kms)
    return np.sqrt((1.0 + beta) / (1.0 - beta))


def velocity_from_redshift(z):
    """Radial velocity (km/s) of a Doppler redshift ``z``: the inverse of :func:`wavelength_factor`.

    Parameters
    ----------
    z : float or array_like
        Redshift, ``z > -1`` (SDSS's pipeline ``Z`` of a star).

    Returns
    -------
    float or numpy.ndarray
        ``c ((1 + z)**2 - 1) / ((1 + z)**2 + 1)``, always below ``c`` in size.

    Raises
    ------
    ValueError
        If ``z <= -1`` (no velocity gives it).

    Examples
    --------
    >>> round(float(velocity_from_redshift(wavelength_factor(300.0) - 1.0)), 9)
    300.0
    """
    factor = 1.0 + np.asarray(z, dtype=np.float64)
    if np.any(factor <= 0):
        raise ValueError(f"redshift must be above -1, got {z}")
    square = factor**2
    return schema.C_KM_S * (square - 1.0) / (square + 1.0)
