"""Batched cubic-spline interpolation for uniformly sampled spectra.

SciPy's :class:`scipy.interpolate.CubicSpline` (default ``not-a-knot`` ends) builds one spline per
call. For samples equally spaced in the abscissa (SDSS spectra are: ``loglam = COEFF0 + COEFF1 * i``
with ``COEFF1 = 1e-4``) the spline's slopes solve one tridiagonal system whose interior rows are
``s[i-1] + 4 s[i] + s[i+1] = 3 (y[i+1] - y[i-1])`` (in pixel units) for every spectrum. Here:

1. A particular solution of the interior rows comes from SciPy's cubic B-spline prefilter
   (:func:`scipy.ndimage.spline_filter1d`: a causal and an anticausal first-order recursion with
   pole ``z = sqrt(3) - 2``, in C, over all spectra of a chunk at once).
2. The two ``not-a-knot`` end rows are then met exactly by adding the two homogeneous solutions
   ``z**i`` and ``z**(n-1-i)``, a 2x2 solve per spectrum.
3. The piecewise cubics are evaluated in Hermite form at all requested points at once.

The result equals SciPy's spline to rounding (about 1e-12 of the data's scale).
"""

import numpy as np
import scipy.ndimage

__all__ = [
    "evaluate_hermite",
    "resample_uniform",
    "spline_slopes",
]

#: Pole of the cubic-spline recursion.
Z = np.sqrt(3.0) - 2.0
_BLOCK = 32
_CORRECTION = 32  # |Z|**32 < 1e-18: the end corrections vanish beyond 32 samples


def padded_width(max_length):
    """Row width of a packed chunk: a multiple of 32 with at least 32 free columns after the
    longest spectrum."""
    return _BLOCK * (int(max_length) // _BLOCK + 2)


def spline_slopes(values, lengths, starts=None):
    """Slopes (per pixel) of the ``not-a-knot`` cubic spline through each row of ``values``.

    Parameters
    ----------
    values : numpy.ndarray
        Finite float64 array (m, width); row ``i`` holds ``lengths[i]`` samples from column
        ``starts[i]``; other entries are ignored but must be finite (the recursions run along
        whole rows). ``width`` must be at least ``max(starts + lengths)``.
    lengths : numpy.ndarray
        Number of samples per row, each at least 4.
    starts : numpy.ndarray, optional
        First column of each row's samples (0 by default).

    Returns
    -------
    numpy.ndarray
        Slopes dy/di (m, width); entries outside each row's samples are meaningless.
    """
    m, width = values.shape
    lengths = np.asarray(lengths, dtype=np.intp)
    starts = np.zeros(m, np.intp) if starts is None else np.asarray(starts, dtype=np.intp)
    rows = np.arange(m)
    first = starts
    last = starts + lengths - 1
    # a particular solution of the interior rows: SciPy's B-spline prefilter solves
    # (c[i-1] + 4 c[i] + c[i+1]) / 6 = d[i] by two first-order recursions in C; whatever the
    # values outside a row's interior, the interior rows hold exactly
    difference = np.zeros((m, width))
    np.subtract(values[:, 2:], values[:, :-2], out=difference[:, 1:-1])
    slopes = scipy.ndimage.spline_filter1d(
        difference, order=3, axis=1, mode="nearest", output=np.float64
    )
    slopes *= 0.5
    # not-a-knot rows: s0 + 2 s1 = (5 m0 + m1) / 2 and 2 s[n-2] + s[n-1] = (m[n-3] + 5 m[n-2]) / 2
    y = values
    secant_0 = y[rows, first + 1] - y[rows, first]
    secant_1 = y[rows, first + 2] - y[rows, first + 1]
    secant_a = y[rows, last - 1] - y[rows, last - 2]
    secant_b = y[rows, last] - y[rows, last - 1]
    residual_0 = 0.5 * (5.0 * secant_0 + secant_1) - (
        slopes[rows, first] + 2.0 * slopes[rows, first + 1]
    )
    residual_1 = 0.5 * (secant_a + 5.0 * secant_b) - (
        2.0 * slopes[rows, last - 1] + slopes[rows, last]
    )
    a = 1.0 + 2.0 * Z
    b = Z ** (lengths - 1).astype(float) + 2.0 * Z ** (lengths - 2).astype(float)
    determinant = a * a - b * b
    alpha = (a * residual_0 - b * residual_1) / determinant
    beta = (a * residual_1 - b * residual_0) / determinant
    steps = np.arange(min(_CORRECTION, int(lengths.max())))
    powers = Z**steps
    within = steps[None, :] < lengths[:, None]
    row_index = np.broadcast_to(rows[:, None], within.shape)[within]
    left = (first[:, None] + steps[None, :])[within]
    right = (last[:, None] - steps[None, :])[within]
    # the two corrections overlap on short rows, so accumulate rather than assign
    np.add.at(slopes, (row_index, left), (alpha[:, None] * powers)[within])
    np.add.at(slopes, (row_index, right), (beta[:, None] * powers)[within])
    return slopes


def evaluate_hermite(values, slopes, positions, lengths, starts=None):
    """Evaluate per-row piecewise cubics at fractional ``positions``, clamped at the ends.

    Parameters
    ----------
    values, slopes : numpy.ndarray
        (m, width) samples and their slopes dy/di.
    positions : numpy.ndarray
        (m, k) positions in pixels from each row's first sample; outside ``[0, length - 1]`` the
        nearest end sample is returned (the paper's clamping).
    lengths : numpy.ndarray
        Samples per row.
    starts : numpy.ndarray, optional
        First column of each row's samples (0 by default).

    Returns
    -------
    numpy.ndarray
        (m, k) float64 values.
    """
    m, width = values.shape
    starts = np.zeros(m, np.intp) if starts is None else np.asarray(starts, dtype=np.intp)
    top = (np.asarray(lengths) - 1).astype(float)[:, None]
    t = np.maximum(positions, 0.0)
    np.minimum(t, top, out=t)
    index = np.minimum(t.astype(np.intp), top.astype(np.intp) - 1)
    u = t - index
    index += (np.arange(m) * width + starts)[:, None]
    return _hermite(
        values.reshape(-1).take(index),
        values.reshape(-1).take(index + 1),
        slopes.reshape(-1).take(index),
        slopes.reshape(-1).take(index + 1),
        u,
    )


def _hermite(y0, y1, s0, s1, u):
    """Cubic Hermite interpolation on [0, 1] at ``u``; overwrites ``y1`` and ``s1``."""
    one_minus = 1.0 - u
    y1 -= y0
    y1 *= u * u * (3.0 - 2.0 * u)
    y1 += y0
    s1 *= u
    s0 = s0 * one_minus
    s0 -= s1
    s0 *= u * one_minus
    y1 += s0
    return y1


def hermite_weights(u):
    """The four cubic Hermite basis weights (for y0, y1, s0, s1) at ``u`` in [0, 1]."""
    u = np.asarray(u, dtype=float)
    one_minus = 1.0 - u
    h01 = u * u * (3.0 - 2.0 * u)
    return 1.0 - h01, h01, u * one_minus * one_minus, -u * u * one_minus


def combine(y0, y1, s0, s1, weights):
    """``y0 w0 + y1 w1 + s0 w2 + s1 w3`` with one temporary; the inputs are left unchanged."""
    result = np.multiply(y0, weights[0])
    buffer = np.empty_like(result)
    for values, weight in zip((y1, s0, s1), weights[1:], strict=True):
        np.multiply(values, weight, out=buffer)
        result += buffer
    return result


def resample_uniform(values, lengths, positions, starts=None):
    """Cubic-spline values of uniformly sampled rows at pixel ``positions`` (clamped ends)."""
    slopes = spline_slopes(values, lengths, starts)
    return evaluate_hermite(values, slopes, positions, lengths, starts)
