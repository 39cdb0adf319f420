"""Resampling onto the common grid and the rest-frame shift (the paper's two interpolations).

Each spectrum is interpolated with a cubic spline (SciPy's ``CubicSpline``, ``not-a-knot`` ends)
onto the grid, clamped at the ends: outside the spectrum's coverage the nearest available flux is
repeated. The rest-frame shift moves the grid's log-lambda axis by ``-log10(1 + z)`` and
re-interpolates. Evenly sampled spectra take the batched spline of :mod:`.spline`; others fall back
to one ``CubicSpline`` each.
"""

import numpy as np

from stellar_nb import doppler, schema
from stellar_nb.preprocess import batch, spline

__all__ = ["MAX_ABS_RV_KMS", "check_grid", "resample", "rest_frame", "uniform_sampling"]

#: Largest accepted |radial velocity|: 0.01 c.
MAX_ABS_RV_KMS = 0.01 * schema.C_KM_S
_UNIFORM_TOLERANCE = 0.01  # of a step: float32-rounded SDSS loglam still counts as uniform
_CHUNK = 32


def check_grid(grid, *, uniform=False):
    """Return ``grid`` (default :func:`stellar_nb.schema.grid_loglam`) as float64, validated.

    Raises
    ------
    ValueError
        If the grid is empty, not 1-D, not finite, not strictly increasing, or (``uniform=True``)
        not evenly spaced.
    """
    grid = schema.grid_loglam() if grid is None else np.asarray(grid, dtype=float)
    if grid.ndim != 1 or grid.size < 4:
        raise ValueError(
            f"grid must be a 1-D array of at least 4 log10-wavelengths, got shape {grid.shape}"
        )
    if not np.all(np.isfinite(grid)) or np.any(np.diff(grid) <= 0):
        raise ValueError("grid must be finite and strictly increasing")
    if uniform:
        steps = np.diff(grid)
        if np.ptp(steps) > 1e-6 * steps.mean():
            raise ValueError("grid must be uniform in log10(lambda) for the rest-frame shift")
    return grid


def uniform_sampling(loglam):
    """Return ``(start, step)`` if ``loglam`` is evenly spaced, else ``None``.

    SDSS defines ``loglam = COEFF0 + COEFF1 * i`` with ``COEFF1 = 1e-4`` and ``COEFF0`` a multiple
    of it, but stores the values rounded (float32 in spec-lite files and in the simulated survey:
    about 0.2 % of a step). Values that pass :func:`~stellar_nb.preprocess.batch.on_lattice` are
    taken as exactly on that lattice; otherwise values within 1 % of a step of the line through
    the end points count as uniform.
    """
    first = batch.on_lattice(loglam)
    if first is not None:
        return first * batch.SDSS_STEP, batch.SDSS_STEP
    n = loglam.size
    pixels = np.arange(n)
    step = (loglam[-1] - loglam[0]) / (n - 1)
    deviation = np.abs(loglam - (loglam[0] + step * pixels)).max()
    return (loglam[0], step) if deviation <= _UNIFORM_TOLERANCE * step else None


def resample(loglam_list, flux_list, *, grid=None, shift=None):
    """Cubic-spline resampling of each spectrum onto ``grid``, clamped at the ends.

    Equal to ``CubicSpline(loglam - shift, flux)(clip(grid, ...))`` per spectrum (SciPy's default
    ``not-a-knot`` ends), computed in batches for evenly sampled spectra.

    Parameters
    ----------
    loglam_list, flux_list : sequence of 1-D arrays
        Per spectrum: strictly increasing log10 wavelengths (at least 4) and finite fluxes.
    grid : 1-D array, optional
        Output log10 wavelengths; the paper's grid by default.
    shift : array_like, optional
        Per-spectrum shift subtracted from ``loglam`` first (``method="single"``).

    Returns
    -------
    numpy.ndarray
        Float64 (n_spectra, grid size).

    Raises
    ------
    ValueError
        If the lists differ in length, or a spectrum is too short, not finite or not increasing.
    """
    grid = check_grid(grid)
    count = len(flux_list)
    if len(loglam_list) != count:
        raise ValueError(f"loglam_list has {len(loglam_list)} spectra, flux_list {count}")
    shift = (
        np.zeros(count)
        if shift is None
        else np.broadcast_to(np.asarray(shift, dtype=float), (count,))
    )
    output = np.empty((count, grid.size))
    uniform_rows, starts, steps = [], [], []
    for row in range(count):
        loglam = np.asarray(loglam_list[row], dtype=float)
        flux = np.asarray(flux_list[row], dtype=float)
        _check_pair(loglam, flux, row)
        sampling = uniform_sampling(loglam)
        if sampling is None:
            import scipy.interpolate  # only for unevenly sampled spectra: slow to import

            knots = loglam - shift[row]
            output[row] = scipy.interpolate.CubicSpline(knots, flux)(
                np.clip(grid, knots[0], knots[-1])
            )
        else:
            uniform_rows.append(row)
            starts.append(sampling[0] - shift[row])
            steps.append(sampling[1])
    if uniform_rows:
        lengths = np.array([np.size(flux_list[row]) for row in uniform_rows])
        order = np.argsort(lengths, kind="stable")
        for first in range(0, order.size, _CHUNK):
            batch = order[first : first + _CHUNK]
            rows = [uniform_rows[i] for i in batch]
            width = spline.padded_width(lengths[batch].max())
            values = np.zeros((batch.size, width))
            for position, row in enumerate(rows):
                values[position, : lengths[batch[position]]] = flux_list[row]
            start = np.array([starts[i] for i in batch])[:, None]
            step = np.array([steps[i] for i in batch])[:, None]
            positions = (grid[None, :] - start) / step
            output[rows] = spline.resample_uniform(values, lengths[batch], positions)
    return output


def _check_pair(loglam, flux, row):
    if loglam.ndim != 1 or loglam.shape != flux.shape:
        raise ValueError(
            f"spectrum {row}: loglam {loglam.shape} and flux {flux.shape} differ in shape"
        )
    if loglam.size < 4:
        raise ValueError(f"spectrum {row}: needs at least 4 pixels, got {loglam.size}")
    if not (np.all(np.isfinite(loglam)) and np.all(np.isfinite(flux))):
        raise ValueError(f"spectrum {row}: loglam and flux must be finite")
    if np.any(np.diff(loglam) <= 0):
        raise ValueError(f"spectrum {row}: loglam must be strictly increasing")


def _check_rv(rv_kms, count):
    rv = np.broadcast_to(np.asarray(rv_kms, dtype=float), (count,))
    return np.isfinite(rv) & (np.abs(rv) <= MAX_ABS_RV_KMS)


def rest_frame(X, rv_kms, grid=None):
    """Shift spectra sampled on the uniform ``grid`` to the rest frame, as the paper does.

    The log-lambda axis of each spectrum is shifted by ``-log10(1 + z)``, with the relativistic
    ``1 + z = sqrt((1 + v/c) / (1 - v/c))``, and the flux re-interpolated onto ``grid`` with a
    cubic spline (``not-a-knot`` ends), clamped at the ends.

    Parameters
    ----------
    X : array_like
        (n_spectra, grid size) fluxes on ``grid``.
    rv_kms : float or array_like
        Heliocentric radial velocity per spectrum (km/s), ``|rv| <= 0.01 c``.
    grid : 1-D array, optional
        The uniform grid of ``X``; the paper's grid by default.

    Returns
    -------
    numpy.ndarray
        Float64 (n_spectra, grid size).

    Raises
    ------
    ValueError
        If shapes disagree, ``X`` is not finite, or an RV is not finite or beyond 0.01 c.
    """
    grid = check_grid(grid, uniform=True)
    X = np.atleast_2d(np.asarray(X, dtype=float))
    if X.ndim != 2 or X.shape[1] != grid.size:
        raise ValueError(f"X must have shape (n, {grid.size}), got {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError("X must be finite")
    if not np.all(_check_rv(rv_kms, X.shape[0])):
        raise ValueError(f"rv_kms must be finite with |rv| <= {MAX_ABS_RV_KMS:.1f} km/s (0.01 c)")
    offset = doppler.loglam_shift(np.broadcast_to(rv_kms, (X.shape[0],))) / (grid[1] - grid[0])
    output = np.empty_like(X)
    width = spline.padded_width(grid.size)
    lengths = np.full(_CHUNK, grid.size)
    pixels = np.arange(grid.size, dtype=float)
    for first in range(0, X.shape[0], _CHUNK):
        block = X[first : first + _CHUNK]
        values = np.zeros((block.shape[0], width))
        values[:, : grid.size] = block
        positions = pixels[None, :] + offset[first : first + _CHUNK, None]
        output[first : first + _CHUNK] = spline.resample_uniform(
            values, lengths[: block.shape[0]], positions
        )
    return output
