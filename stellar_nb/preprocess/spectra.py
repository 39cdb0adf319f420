"""The paper's preprocessing of one batch of spectra: resample, rest frame, standardise.

Section 3 of the paper, in its order: (1) cubic-spline resampling of each spectrum onto the common
grid, 4000 points uniform in log10(lambda) from 3.5754 to 3.9670, clamped at the ends (outside a
spectrum's coverage the nearest available flux); (2) rest-frame correction: the grid axis is
shifted by ``-log10(1 + z)`` and the flux re-interpolated onto the grid with a cubic spline;
(3) per-spectrum standardisation. ``method="single"`` instead shifts the spectrum's own sampling
points and interpolates once, which avoids the second smoothing.

Bad pixels. SDSS marks a dead pixel with ``ivar = 0`` and flags problems in the per-pixel
``and_mask`` (set when the problem occurred in every exposure). Such pixels often hold zeros or
spikes; fed to a spline they ring over neighbouring pixels and inflate the spectrum's std. Here a
pixel is bad when ``ivar <= 0`` (or NaN) or any bit of :data:`FATAL_AND_MASK` is set; bad pixels
inside the coverage are replaced by linear interpolation between the nearest good pixels, and
leading or trailing runs of bad pixels are trimmed, so the clamped ends take the nearest *good*
flux. Interpolating keeps the sampling uniform, which the fast spline needs.
"""

import concurrent.futures

import numpy as np

from stellar_nb import doppler
from stellar_nb.preprocess import batch
from stellar_nb.preprocess.resampling import (
    MAX_ABS_RV_KMS,
    _check_rv,
    check_grid,
    resample,
    rest_frame,
    uniform_sampling,
)

__all__ = [
    "FATAL_AND_MASK",
    "FLAGS",
    "MAX_ABS_RV_KMS",
    "bad_pixels",
    "clean_spectrum",
    "continuum_normalise",
    "describe_flags",
    "preprocess_spectra",
    "resample",
    "rest_frame",
    "standardise",
    "uniform_sampling",
]

#: SDSS and_mask bits treated as fatal: NOPLUG, BADTRACE, BADFLAT, BADARC, MANYBADCOLUMNS,
#: MANYREJECTED (0-5), FULLREJECT (18), BRIGHTSKY (23: sky-subtraction residuals at strong sky
#: lines, the spikes to keep out), NODATA (24), COMBINEREJ (25), BADFLUXFACTOR (26). The NEAR*,
#: PARTIALREJECT and LOWFLAT bits are not: those pixels hold usable flux.
FATAL_AND_MASK = sum(1 << bit for bit in (0, 1, 2, 3, 4, 5, 18, 23, 24, 25, 26))
#: Row flags (bits) returned by :func:`preprocess_spectra`; 0 means the row is good.
FLAGS = {
    "too_short": 1,  # fewer than 4 valid pixels
    "non_finite": 2,  # NaN/Inf in loglam, or in the flux of a good pixel
    "constant": 4,  # zero standard deviation after resampling
    "loglam_not_increasing": 8,
    "rv_out_of_range": 16,  # |rv| > 0.01 c, or not finite
}
_METHODS = ("paper", "single")
_CHUNK = 32


def describe_flags(flag):
    """Names of the problems in one row flag, e.g. ``["too_short"]``; empty when the row is good."""
    return [name for name, bit in FLAGS.items() if int(flag) & bit]


def standardise(X):
    """Per-spectrum standardisation: subtract each row's mean, divide by its population std.

    Raises
    ------
    ValueError
        If a row is constant (zero std) or not finite.
    """
    X = np.atleast_2d(np.asarray(X, dtype=float))
    result, constant = _standardise(X)
    if np.any(constant):
        raise ValueError(
            f"rows {np.flatnonzero(constant)[:10].tolist()} are constant or not finite: std is 0"
        )
    return result


def _standardise(X):
    mean = X.mean(axis=1, keepdims=True)
    centred = X - mean
    std = np.sqrt(np.einsum("ij,ij->i", centred, centred) / X.shape[1])
    constant = ~np.isfinite(std) | (std <= 1e-12 * np.abs(mean[:, 0]))
    centred *= np.where(constant, 1.0, 1.0 / np.where(constant, 1.0, std))[:, None]
    centred[constant] = 0.0
    return centred, constant


def _workers(threads, chunks):
    if threads is None:
        threads = 1
    if int(threads) < 1:
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
    return max(1, min(int(threads), chunks))


def continuum_normalise(X, degree):
    """Divide each row by the degree-``degree`` Legendre polynomial fitted to it by least squares.

    The named "continuum" input variant (beyond the paper): flux calibration errors and
    interstellar reddening are smooth multiplicative distortions, so after this division they
    are (nearly) gone, while absorption lines, a few to a few hundred pixels wide, stay. The
    fitted continuum is kept above a tenth of its mean so that a faint blue end does not blow up.
    """
    X = np.atleast_2d(np.asarray(X, dtype=np.float64))
    x = np.linspace(-1.0, 1.0, X.shape[1])
    design = np.polynomial.legendre.legvander(x, int(degree))
    coefficients, *_ = np.linalg.lstsq(design, X.T, rcond=None)
    continuum = (design @ coefficients).T
    floor = 0.1 * np.abs(continuum).mean(axis=1, keepdims=True)
    return X / np.maximum(continuum, np.maximum(floor, 1e-300))


def _store(X, flags, rows, values, usable, continuum_degree=0, stages=None):
    """Standardise the usable rows of ``values`` into ``X[rows]``; flag constant ones.

    ``stages``, when given, receives the rows' rest-frame (and continuum-normalised) spectra.
    """
    values = values if usable.all() else values[usable]
    target = rows[usable]
    if stages is not None:
        stages["rest frame"][target] = values
    if continuum_degree:
        values = continuum_normalise(values, continuum_degree)
        if stages is not None:
            stages["continuum normalised"][target] = values
    standardised, constant = _standardise(values)
    flags[target[constant]] |= FLAGS["constant"]
    X[target] = standardised


def bad_pixels(ivar=None, mask=None, *, fatal_bits=FATAL_AND_MASK, size=None):
    """Boolean mask of bad pixels: ``ivar <= 0`` (or NaN) or any of ``fatal_bits`` in ``mask``.

    Parameters
    ----------
    ivar, mask : 1-D arrays, optional
        Inverse variance and SDSS ``and_mask``; at least one of them, or ``size``.
    fatal_bits : int
        ``and_mask`` bits that make a pixel bad (:data:`FATAL_AND_MASK`).
    size : int, optional
        Number of pixels when neither array is given (then no pixel is bad).
    """
    if ivar is None and mask is None:
        if size is None:
            raise ValueError("give ivar, mask or size")
        return np.zeros(int(size), bool)
    bad = np.zeros(np.shape(ivar if ivar is not None else mask), bool)
    if ivar is not None:
        bad |= ~(np.asarray(ivar) > 0)
    if mask is not None and fatal_bits:
        bad |= (np.asarray(mask).astype(np.int64) & int(fatal_bits)) != 0
    return bad


def clean_spectrum(loglam, flux, ivar=None, mask=None, *, fatal_bits=FATAL_AND_MASK):
    """Apply the bad-pixel treatment to one spectrum (see the module docstring).

    Returns
    -------
    loglam, flux : numpy.ndarray
        Float64, trimmed to the first and last good pixel, interior bad pixels linearly
        interpolated; ``None`` when the spectrum is unusable.
    flag : int
        0, or the :data:`FLAGS` bits saying why the spectrum is unusable.
    """
    loglam = np.asarray(loglam, dtype=float)
    flux = np.asarray(flux, dtype=float)
    size = flux.size
    for name, array in (("loglam", loglam), ("ivar", ivar), ("mask", mask)):
        if array is not None and np.shape(array) != flux.shape:
            raise ValueError(f"{name} has shape {np.shape(array)}, flux {flux.shape}")
    if not np.all(np.isfinite(loglam)):
        return None, None, FLAGS["non_finite"]
    if np.any(np.diff(loglam) <= 0):
        return None, None, FLAGS["loglam_not_increasing"]
    good = ~bad_pixels(ivar, mask, fatal_bits=fatal_bits, size=size)
    if not np.all(np.isfinite(flux[good])):
        return None, None, FLAGS["non_finite"]
    if np.count_nonzero(good) < 4:
        return None, None, FLAGS["too_short"]
    if good.all():
        return loglam, flux, 0
    indices = np.flatnonzero(good)
    first, last = indices[0], indices[-1] + 1
    loglam, flux, good = loglam[first:last], flux[first:last].copy(), good[first:last]
    bad = ~good
    if bad.any():
        pixels = np.arange(flux.size)
        flux[bad] = np.interp(pixels[bad], pixels[good], flux[good])
    return loglam, flux, 0


def preprocess_spectra(
    loglam_list,
    flux_list,
    ivar_list=None,
    mask_list=None,
    rv_kms=0.0,
    *,
    method="paper",
    grid=None,
    fatal_bits=FATAL_AND_MASK,
    on_bad="flag",
    threads=None,
    continuum_degree=0,
    stages=None,
):
    """The paper's preprocessing of a batch of spectra, with bad rows flagged.

    Parameters
    ----------
    loglam_list, flux_list : sequence of 1-D arrays
        Per spectrum: log10 vacuum wavelengths and fluxes (any units).
    ivar_list, mask_list : sequence of 1-D arrays, optional
        Inverse variances and SDSS ``and_mask`` values (bad-pixel treatment: module docstring).
    rv_kms : float or array_like
        Heliocentric radial velocity per spectrum (km/s).
    method : {"paper", "single"}
        ``"paper"``: resample, then shift and re-interpolate; ``"single"``: shift the sampling
        points and interpolate once.
    grid : 1-D array, optional
        Uniform log10 grid; the paper's 4000 points by default.
    fatal_bits : int
        ``and_mask`` bits that make a pixel bad.
    on_bad : {"flag", "raise"}
        ``"flag"``: unusable rows become all-zero rows with a nonzero flag; ``"raise"``: raise.
    threads : int, optional
        Worker threads for chunks of spectra (default 1: on a busy 2-core machine a second
        thread measured slower; ``stellar-nb bench preprocess`` shows both).
    continuum_degree : int
        0 (the paper): standardise the rest-frame spectra as they are; otherwise divide each by
        its fitted continuum of this degree first (:func:`continuum_normalise`).
    stages : dict, optional
        Filled with the intermediate spectra, so that a view shows exactly the steps behind
        ``X``: float64 (n_spectra, grid size) arrays, zeros in flagged rows, under
        ``"resampled"`` (observed frame; ``method="paper"`` only, ``"single"`` shifts and
        resamples in one step), ``"rest frame"`` and, for ``continuum_degree > 0``,
        ``"continuum normalised"``; ``"standardised"`` is ``X`` itself.

    Returns
    -------
    X : numpy.ndarray
        Float32 (n_spectra, grid size); standardised rows (mean 0, std 1), zeros where flagged.
    flags : numpy.ndarray
        Int32 bits of :data:`FLAGS` per row (0: good); :func:`describe_flags` names them.

    Raises
    ------
    ValueError
        For a bad ``method``/``on_bad``/grid, lists of different lengths, or (``on_bad="raise"``)
        any unusable spectrum, naming it and why.

    Examples
    --------
    >>> loglam = 3.58 + 1e-4 * np.arange(3800)
    >>> stages = {}
    >>> X, flags = preprocess_spectra([loglam], [50 + np.sin(loglam * 200)], stages=stages)
    >>> list(stages), bool(np.array_equal(stages["standardised"], X))
    (['resampled', 'rest frame', 'standardised'], True)
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    if on_bad not in ("flag", "raise"):
        raise ValueError(f"on_bad must be 'flag' or 'raise', got {on_bad!r}")
    grid = check_grid(grid, uniform=True)
    count = len(flux_list)
    for name, values in (
        ("loglam_list", loglam_list),
        ("ivar_list", ivar_list),
        ("mask_list", mask_list),
    ):
        if values is not None and len(values) != count:
            raise ValueError(f"{name} has {len(values)} spectra, flux_list {count}")
    try:
        rv = np.broadcast_to(np.asarray(rv_kms, dtype=float), (count,))
    except ValueError:
        raise ValueError(
            f"rv_kms must be a scalar or have {count} values, got shape {np.shape(rv_kms)}"
        ) from None
    flags = np.where(_check_rv(rv, count), 0, FLAGS["rv_out_of_range"]).astype(np.int32)
    shift = np.where(flags == 0, doppler.loglam_shift(np.where(flags == 0, rv, 0.0)), 0.0)
    X = np.zeros((count, grid.size), dtype=np.float32)
    if stages is not None:
        names = (["resampled"] if method == "paper" else []) + ["rest frame"]
        names += ["continuum normalised"] if continuum_degree else []
        stages.update({name: np.zeros((count, grid.size)) for name in names})
    resampled_out = None if stages is None else stages.get("resampled")
    on_lattice, first_index, lengths = batch.lattice_rows(loglam_list)
    fast = np.flatnonzero(on_lattice & (flags == 0))
    fast = fast[np.argsort(first_index[fast], kind="stable")]
    pick = lambda values, rows: None if values is None else [values[i] for i in rows]  # noqa: E731

    def work(rows):
        chunk_resampled = None if resampled_out is None else np.zeros((rows.size, grid.size))
        values, too_short, non_finite = batch.process_lattice_chunk(
            pick(flux_list, rows),
            pick(ivar_list, rows),
            pick(mask_list, rows),
            first_index[rows],
            lengths[rows],
            shift[rows],
            method=method,
            grid=grid,
            fatal_bits=int(fatal_bits),
            resampled_out=chunk_resampled,
        )
        flags[rows[too_short]] |= FLAGS["too_short"]
        flags[rows[non_finite]] |= FLAGS["non_finite"]
        usable = ~(too_short | non_finite)
        if resampled_out is not None:
            resampled_out[rows[usable]] = chunk_resampled[usable]
        _store(X, flags, rows, values, usable, continuum_degree, stages)

    chunks = [fast[begin : begin + _CHUNK] for begin in range(0, fast.size, _CHUNK)]
    workers = _workers(threads, len(chunks))
    if workers > 1:
        # numpy and BLAS release the GIL; chunks write disjoint rows of X and flags
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            list(pool.map(work, chunks))
    else:
        for rows in chunks:
            work(rows)
    slow = np.flatnonzero(~on_lattice & (flags == 0))
    loglams, fluxes, kept = [], [], []
    for row in slow:
        loglam, flux, flag = clean_spectrum(
            loglam_list[row],
            flux_list[row],
            None if ivar_list is None else ivar_list[row],
            None if mask_list is None else mask_list[row],
            fatal_bits=fatal_bits,
        )
        flags[row] |= flag
        if not flag:
            loglams.append(loglam)
            fluxes.append(flux)
            kept.append(row)
    kept = np.array(kept, dtype=np.intp)
    if kept.size:
        if method == "paper":
            resampled = resample(loglams, fluxes, grid=grid)
            if resampled_out is not None:
                resampled_out[kept] = resampled
            values = rest_frame(resampled, rv[kept], grid)
        else:
            values = resample(loglams, fluxes, grid=grid, shift=shift[kept])
        _store(X, flags, kept, values, np.ones(kept.size, bool), continuum_degree, stages)
    if stages is not None:
        stages["standardised"] = X
    if on_bad == "raise" and np.any(flags):
        bad = np.flatnonzero(flags)
        reasons = "; ".join(f"spectrum {i}: {', '.join(describe_flags(flags[i]))}" for i in bad[:5])
        raise ValueError(f"{bad.size} unusable spectra ({reasons})")
    return X, flags
