"""The batched fast path of :func:`~stellar_nb.preprocess.spectra.preprocess_spectra`.

SDSS spectra share one wavelength lattice: ``loglam = k * 1e-4`` for integer ``k`` (COEFF0 is a
multiple of COEFF1 = 1e-4). A chunk of such spectra is packed into one array with each spectrum at
its own lattice column, so that:

- validation, the bad-pixel treatment and the spline slopes run on the whole array at once;
- the first interpolation evaluates every spectrum at the *same* fractional lattice positions
  (the paper's grid step, 9.79e-5, is not the lattice step), so its weights are computed once;
- for the rest-frame interpolation every row is written shifted by its whole number of grid steps,
  leaving one fractional offset per row: four shifted slices and four per-row weights.

Every step computes the same numbers as the per-spectrum definition in
:mod:`~stellar_nb.preprocess.spectra` (the tests check it against the SciPy loop).
"""

import math

import numpy as np

from stellar_nb.preprocess import spline

__all__ = ["SDSS_STEP", "lattice_rows", "process_lattice_chunk"]

#: SDSS's log10-wavelength step (COEFF1).
SDSS_STEP = 1e-4
_SNAP_TOLERANCE = 0.01  # of a step
_MARGIN = 48  # > 0.01 c in grid steps (44.1) + 1


def _pack(arrays, lengths, width, dtype, fill=0):
    frame = np.full((len(arrays), width), fill, dtype=dtype)
    for row, array in enumerate(arrays):
        frame[row, : lengths[row]] = array
    return frame


def on_lattice(loglam):
    """Return the lattice index of ``loglam[0]`` if the spectrum lies on the SDSS lattice, else None.

    It does when both ends are within 1 % of a step of ``k * 1e-4`` and every step is within 0.5 %
    of 1e-4. Values rounded to float32 (spec-lite files, the simulated survey) pass: differences
    of neighbouring float32 values are exact and off by at most one unit in the last place
    (0.24 % of a step near 9300 A).
    """
    loglam = np.asarray(loglam)
    n = loglam.size
    if n < 2 or loglam.ndim != 1:
        return None
    start, end = float(loglam[0]), float(loglam[-1])
    if not (math.isfinite(start) and math.isfinite(end)):
        return None
    first = round(start / SDSS_STEP)
    if abs(start - first * SDSS_STEP) > _SNAP_TOLERANCE * SDSS_STEP:
        return None
    if abs(end - (first + n - 1) * SDSS_STEP) > _SNAP_TOLERANCE * SDSS_STEP:
        return None
    if not np.issubdtype(loglam.dtype, np.floating):
        loglam = loglam.astype(np.float64)
    steps = np.diff(loglam)
    steps -= steps.dtype.type(SDSS_STEP)
    np.abs(steps, out=steps)
    # NaN propagates through max() and fails the comparison
    if not steps.max() <= 0.5 * _SNAP_TOLERANCE * SDSS_STEP:
        return None
    return int(first)


def lattice_rows(loglam_list):
    """:func:`on_lattice` for each spectrum.

    Returns
    -------
    on_lattice : numpy.ndarray of bool
    first_index : numpy.ndarray of int64
    lengths : numpy.ndarray of int64
    """
    count = len(loglam_list)
    lengths = np.array([np.size(array) for array in loglam_list], dtype=np.int64)
    first_index = np.zeros(count, np.int64)
    found = np.zeros(count, bool)
    for row in np.flatnonzero(lengths >= 4):
        index = on_lattice(loglam_list[row])
        if index is not None:
            found[row] = True
            first_index[row] = index
    return found, first_index, lengths


def _clean(flux, good):
    """Trim rows to their first and last good pixel; fill interior bad pixels linearly."""
    width = flux.shape[1]
    any_good = good.any(axis=1)
    first = np.where(any_good, good.argmax(axis=1), 0)
    last = np.where(any_good, width - 1 - good[:, ::-1].argmax(axis=1), -1)
    bad = np.flatnonzero(~good)
    row, column = np.divmod(bad, width)
    interior = (column > first[row]) & (column < last[row])
    bad = bad[interior]
    if bad.size:
        # interior bad pixels have good neighbours in their own row on both sides
        good_flat = np.flatnonzero(good)
        after = np.searchsorted(good_flat, bad)
        right, left = good_flat[after], good_flat[after - 1]
        values = flux.reshape(-1)
        weight = (bad - left) / (right - left)
        values[bad] = values[left] + weight * (values[right] - values[left])
    return first, last - first + 1


def process_lattice_chunk(
    flux_list,
    ivar_list,
    mask_list,
    first_index,
    lengths,
    shift,
    *,
    method,
    grid,
    fatal_bits,
    resampled_out=None,
):
    """Clean, resample and shift a chunk of lattice spectra (standardised by the caller).

    Parameters
    ----------
    flux_list, ivar_list, mask_list : sequence of 1-D arrays (ivar/mask lists may be None)
    first_index, lengths : numpy.ndarray
        Lattice index of each spectrum's first pixel, and its number of pixels.
    shift : numpy.ndarray
        ``log10(1 + z)`` per spectrum.
    method : {"paper", "single"}
    grid : numpy.ndarray
        Uniform output grid.
    fatal_bits : int
    resampled_out : numpy.ndarray, optional
        (m, grid size) array that receives the resampled spectra before the rest-frame shift
        (``method="paper"`` only; rows of unusable spectra are left as they are).

    Returns
    -------
    values : numpy.ndarray
        Float64 (m, grid size) resampled, rest-frame spectra (zeros where flagged).
    too_short, non_finite : numpy.ndarray of bool
        Rows with fewer than 4 good pixels, and rows with NaN/Inf flux at a good pixel.
    """
    m = len(flux_list)
    origin = int(first_index.min())
    offsets = first_index - origin
    width = spline.padded_width(int((offsets + lengths).max()))
    flux = np.zeros((m, width))
    good = np.zeros((m, width), bool)
    for row in range(m):
        span = slice(offsets[row], offsets[row] + lengths[row])
        flux[row, span] = flux_list[row]
        if ivar_list is None:
            good[row, span] = True
        else:
            good[row, span] = np.asarray(ivar_list[row]) > 0
        if mask_list is not None and fatal_bits:
            good[row, span] &= (np.asarray(mask_list[row]) & fatal_bits) == 0
    finite = np.isfinite(flux)
    non_finite = (good & ~finite).any(axis=1)
    good &= finite
    np.copyto(flux, 0.0, where=~good)
    starts, counts = _clean(flux, good)
    too_short = (np.count_nonzero(good, axis=1) < 4) & ~non_finite
    ok = ~(too_short | non_finite)
    values = np.zeros((m, grid.size))
    if not ok.any():
        return values, too_short, non_finite
    flux, starts, counts, shift = flux[ok], starts[ok], counts[ok], shift[ok]
    slopes = spline.spline_slopes(flux, counts, starts)
    # positions of the grid in lattice pixels from this chunk's origin
    positions = grid / SDSS_STEP - origin
    if method == "single":
        relative = positions[None, :] + shift[:, None] / SDSS_STEP - starts[:, None]
        values[ok] = spline.evaluate_hermite(flux, slopes, relative, counts, starts)
        return values, too_short, non_finite
    resampled = _evaluate_shared(flux, slopes, positions, starts, counts)
    if resampled_out is not None:
        resampled_out[ok] = resampled
    values[ok] = _shift_to_rest(resampled, shift / (grid[1] - grid[0]))
    return values, too_short, non_finite


def _evaluate_shared(flux, slopes, positions, starts, counts):
    """Evaluate all rows at the same lattice ``positions``; clamp each row to its own coverage."""
    width = flux.shape[1]
    t = np.clip(positions, 0.0, width - 2.0)
    index = t.astype(np.intp)
    u = (t - index)[None, :]
    result = spline.combine(
        flux[:, index],
        flux[:, index + 1],
        slopes[:, index],
        slopes[:, index + 1],
        spline.hermite_weights(u),
    )
    low = np.searchsorted(positions, starts, side="left")
    high = np.searchsorted(positions, starts + counts - 1, side="right")
    for row in range(flux.shape[0]):
        result[row, : low[row]] = flux[row, starts[row]]
        result[row, high[row] :] = flux[row, starts[row] + counts[row] - 1]
    return result


def _shift_to_rest(values, offset):
    """Re-interpolate rows sampled on the grid at ``j + offset`` (grid steps), clamped.

    Row ``i`` is written at column ``_MARGIN - floor(offset[i])`` so that output ``j`` reads
    columns ``_MARGIN + j`` and ``_MARGIN + j + 1`` in every row.
    """
    m, size = values.shape
    whole = np.floor(offset).astype(np.intp)
    fraction = (offset - whole)[:, None]
    width = spline.padded_width(size + 2 * _MARGIN)
    frame = np.zeros((m, width))
    starts = _MARGIN - whole
    for row in range(m):
        frame[row, starts[row] : starts[row] + size] = values[row]
    slopes = spline.spline_slopes(frame, np.full(m, size), starts)
    window = slice(_MARGIN, _MARGIN + size)
    following = slice(_MARGIN + 1, _MARGIN + size + 1)
    result = spline.combine(
        frame[:, window],
        frame[:, following],
        slopes[:, window],
        slopes[:, following],
        spline.hermite_weights(fraction),
    )
    # clamped ends: position j + offset below 0 or above size - 1
    low = np.clip(np.ceil(-offset), 0, size).astype(np.intp)
    high = np.clip(np.floor(size - 1 - offset) + 1, 0, size).astype(np.intp)
    for row in range(m):
        result[row, : low[row]] = values[row, 0]
        result[row, high[row] :] = values[row, -1]
    return result
