"""The naive implementation: one SciPy ``CubicSpline`` per spectrum and per pass, as the paper does it.

Used by the tests, and by :func:`compare_speed` (``stellar-nb bench preprocess``, notebook 02), to
check and time the package's batched implementation. Bad pixels get the same treatment (:func:`~stellar_nb.preprocess.spectra.clean_spectrum`)
and evenly spaced rounded ``loglam`` the same reconstruction
(:func:`~stellar_nb.preprocess.spectra.uniform_sampling`), so both compute the same numbers.
"""

import time

import numpy as np
import scipy.interpolate
import scipy.ndimage

from stellar_nb import doppler
from stellar_nb.data import tables
from stellar_nb.preprocess import spectra

__all__ = ["compare_speed", "load_inputs", "naive_preprocess"]


def naive_preprocess(
    loglam_list,
    flux_list,
    ivar_list=None,
    mask_list=None,
    rv_kms=0.0,
    *,
    method="paper",
    grid=None,
    snap=True,
):
    """Preprocess spectra one at a time with ``scipy.interpolate.CubicSpline``.

    Parameters
    ----------
    loglam_list, flux_list, ivar_list, mask_list, rv_kms, method, grid
        As for :func:`~stellar_nb.preprocess.spectra.preprocess_spectra`.
    snap : bool
        Replace evenly spaced but rounded ``loglam`` by the exact uniform sampling, as the package
        does; ``False`` interpolates on the stored values as they are.

    Returns
    -------
    numpy.ndarray
        Float64 (n, grid size) standardised spectra; NaN rows where a spectrum is unusable.
    """
    grid = spectra.check_grid(grid, uniform=True)
    rv = np.broadcast_to(np.asarray(rv_kms, dtype=float), (len(flux_list),))
    output = np.full((len(flux_list), grid.size), np.nan)
    for row in range(len(flux_list)):
        loglam, flux, flag = spectra.clean_spectrum(
            loglam_list[row],
            flux_list[row],
            None if ivar_list is None else ivar_list[row],
            None if mask_list is None else mask_list[row],
        )
        if flag or abs(rv[row]) > spectra.MAX_ABS_RV_KMS:
            continue
        sampling = spectra.uniform_sampling(loglam) if snap else None
        if sampling is not None:
            loglam = sampling[0] + sampling[1] * np.arange(loglam.size)
        shift = float(doppler.loglam_shift(rv[row]))
        if method == "paper":
            resampled = scipy.interpolate.CubicSpline(loglam, flux)(
                np.clip(grid, loglam[0], loglam[-1])
            )
            knots = grid - shift
            values = scipy.interpolate.CubicSpline(knots, resampled)(
                np.clip(grid, knots[0], knots[-1])
            )
        else:
            knots = loglam - shift
            values = scipy.interpolate.CubicSpline(knots, flux)(np.clip(grid, knots[0], knots[-1]))
        std = values.std()
        if std > 0:
            output[row] = (values - values.mean()) / std
    return output


def _best(function, repeat):
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def load_inputs(survey, split="train", n_spectra=2000):
    """The first ``n_spectra`` rows of a split as ``(loglam, flux, ivar, mask, rv)`` lists."""
    frame = tables.read_split(
        survey,
        split,
        columns=["loglam", "flux", "ivar", "mask", "rv_adop"],
        rows=slice(0, int(n_spectra)),
    )
    return (
        list(frame["loglam"]),
        list(frame["flux"]),
        list(frame["ivar"]),
        list(frame["mask"]),
        frame["rv_adop"].to_numpy(float),
    )


def compare_speed(survey, split="train", n_spectra=2000, *, method="paper", threads=2, repeat=3):
    """Time the naive loop and the package on the same spectra; return figures and bounds.

    This is what ``stellar-nb bench preprocess`` prints and notebook 02 plots
    (:func:`stellar_nb.plots.preprocess.plot_speed`).

    Parameters
    ----------
    survey : str or pathlib.Path
        Survey folder.
    split : {"train", "validation", "test"}
    n_spectra : int
        The first rows of the split to time.
    method : {"paper", "single"}
    threads : int
        Threads of the second timing of the package.
    repeat : int
        Interleaved rounds (naive, package on 1 thread, package on ``threads``); each keeps its
        best round.

    Returns
    -------
    dict
        ``count``, ``naive_per_s``, ``one_thread_per_s``, ``threads_per_s``, ``threads``,
        ``speedup`` (1 thread), ``speedup_threads``, ``max_difference`` (units of each spectrum's
        std), ``max_difference_unsnapped``, ``flagged``, ``recursion_share`` and ``stream_share``
        (time of the spline recursions alone and of one streaming pass, as fractions of the
        1-thread time).
    """
    if int(repeat) < 1 or int(threads) < 1:
        raise ValueError("repeat and threads must be positive")
    inputs = load_inputs(survey, split, n_spectra)
    count = len(inputs[1])
    naive_time = one_time = threads_time = float("inf")
    # interleaved rounds: on a shared machine the load drifts, and each implementation keeps
    # its best round
    for _ in range(int(repeat)):
        elapsed, expected = _best(lambda: naive_preprocess(*inputs, method=method), 1)
        naive_time = min(naive_time, elapsed)
        elapsed, (X, flags) = _best(
            lambda: spectra.preprocess_spectra(*inputs, method=method, threads=1), 1
        )
        one_time = min(one_time, elapsed)
        elapsed, _ = _best(
            lambda: spectra.preprocess_spectra(*inputs, method=method, threads=threads), 1
        )
        threads_time = min(threads_time, elapsed)
    good = flags == 0
    raw = naive_preprocess(*inputs, method=method, snap=False)
    lengths = np.array([np.size(flux) for flux in inputs[1]])
    first = np.zeros((count, int(lengths.max()) + 64))
    second = np.zeros((count, X.shape[1] + 96))

    def recursions():
        scipy.ndimage.spline_filter1d(first, order=3, axis=1, mode="nearest", output=np.float64)
        scipy.ndimage.spline_filter1d(second, order=3, axis=1, mode="nearest", output=np.float64)

    recursion_time, _ = _best(recursions, repeat)
    flat = np.concatenate(inputs[1]).astype(np.float64)
    target = np.empty_like(X)

    def stream():
        # read the input flux and write the output once each: the least any implementation does
        np.copyto(target, 0.0)
        return float(flat.sum())

    stream_time, _ = _best(stream, repeat)
    return {
        "count": count,
        "method": method,
        "naive_per_s": count / naive_time,
        "one_thread_per_s": count / one_time,
        "threads_per_s": count / threads_time,
        "threads": int(threads),
        "speedup": naive_time / one_time,
        "speedup_threads": naive_time / threads_time,
        "max_difference": float(np.abs(X[good] - expected[good]).max())
        if good.any()
        else float("nan"),
        "max_difference_unsnapped": float(np.nanmax(np.abs(X[good] - raw[good])))
        if good.any()
        else float("nan"),
        "flagged": int((~good).sum()),
        "recursion_share": recursion_time / one_time,
        "stream_share": stream_time / one_time,
    }
