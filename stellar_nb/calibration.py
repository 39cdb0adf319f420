"""Calibrating the uncertainties: the model-error term beside the noise spread.

:meth:`stellar_nb.inference.NumpyModel.predict_with_uncertainty` adds, in quadrature to the spread
of predictions over noise draws, a per-label model-error term with two parts: ``sigma_model``,
fitted on the simulated validation split by :func:`stellar_nb.train.train`, so that 68.3% of its
stars fall within one sigma, and ``sigma_systematic``, fitted on real stars
(:func:`calibrate_systematic`, e.g. half of a LAMOST set against its LASP labels) so that 68.3% of
*those* fall within one sigma: the simulator is not the sky, and its test split alone would give
error bars that hold for a fifth of real stars. Both are kept in the model directory's
``metrics.json`` under ``calibration``.
"""

from pathlib import Path

import numpy as np

from stellar_nb import files, model_directory, schema

__all__ = ["calibrate_sigma", "calibrate_systematic", "fit_sigma_model", "model_term"]


def calibrate_sigma(residuals, noise_sigma, *, coverage=0.6827):
    """Model-error term per label so that ``coverage`` of stars lie within one combined sigma.

    Parameters
    ----------
    residuals, noise_sigma : array_like, shape (n, k)
        Prediction minus reference, and the noise spread, in the same units.
    coverage : float
        Target fraction of ``|residual| <= sqrt(noise_sigma**2 + sigma_model**2)``.

    Returns
    -------
    numpy.ndarray, shape (k,)
        ``sigma_model`` (0 where the noise term alone already covers enough stars).
    """
    residuals = np.abs(np.asarray(residuals, dtype=np.float64))
    noise_sigma = np.asarray(noise_sigma, dtype=np.float64)
    result = np.zeros(residuals.shape[1])
    for k in range(residuals.shape[1]):
        r, s = residuals[:, k], noise_sigma[:, k]
        low, high = 0.0, float(np.max(r)) + 1e-12
        if np.mean(r <= s) >= coverage:
            continue
        for _ in range(60):
            middle = 0.5 * (low + high)
            if np.mean(r <= np.sqrt(s**2 + middle**2)) >= coverage:
                high = middle
            else:
                low = middle
        result[k] = high
    return result


def fit_sigma_model(model, survey, *, stars=1000, seed=0, n_draws=16):
    """Fit ``sigma_model`` on the first ``stars`` rows of a survey's validation split.

    The reference is the true labels where the split has them (the simulated survey), else the
    catalogue; unusable spectra take no part.

    Parameters
    ----------
    model : stellar_nb.inference.NumpyModel
        The trained model, with its preprocessor.
    survey : str or pathlib.Path
        Survey folder.
    stars : int
        Validation rows used.
    seed : int
        Seed of the noise draws.
    n_draws : int
        Noise draws per star.

    Returns
    -------
    dict
        ``metrics.json``'s ``calibration``: ``sigma_model`` and ``median_noise_sigma`` per label,
        ``reference``, ``stars`` and ``n_draws``.
    """
    from stellar_nb.data import tables

    table = tables.read_split(survey, "validation", rows=slice(0, stars))
    reference = "true" if "true_teff" in table else "catalog"
    truth = table[[f"{reference}_{label}" for label in schema.LABELS]].to_numpy(dtype=np.float64)
    arrays = [list(table[column]) for column in ("loglam", "flux", "ivar", "mask")]
    velocity = table["rv_adop"].to_numpy(dtype=np.float64)
    spectra, flags = model.preprocess(*arrays, velocity)
    good = flags == 0
    residuals = (model.predict(spectra) - truth)[good]
    noise = model.noise_sigma(*arrays, velocity, n_draws=n_draws, seed=seed)[good]
    sigma_model = calibrate_sigma(residuals, noise)
    return {
        "sigma_model": dict(zip(schema.LABELS, sigma_model.tolist(), strict=True)),
        "median_noise_sigma": dict(
            zip(schema.LABELS, np.median(noise, axis=0).tolist(), strict=True)
        ),
        "reference": reference,
        "stars": int(good.sum()),
        "n_draws": n_draws,
    }


def calibrate_systematic(model_dir, residuals, noise_sigma, *, source, coverage=0.6827):
    """Fit the real-star term ``sigma_systematic`` and write it into ``model_dir``'s metrics.

    Parameters
    ----------
    model_dir : str or pathlib.Path
        A model directory; its ``metrics.json`` and manifest are rewritten (atomically).
    residuals, noise_sigma : array_like, shape (n, 3)
        Real stars: prediction minus reference label, and the noise spread
        (:meth:`stellar_nb.inference.NumpyModel.noise_sigma`), in
        :data:`~stellar_nb.schema.LABELS` order.
    source : str
        Which stars and labels, said in the metrics (e.g. "LAMOST DR10 LASP, calibration half").
    coverage : float
        Target fraction within one combined sigma.

    Returns
    -------
    dict
        label -> ``sigma_systematic``: the real-star term in quadrature beyond ``sigma_model``.
    """
    model_directory.read_manifest(model_dir)
    metrics = files.read_json(Path(model_dir) / "metrics.json")
    simulated = metrics.get("calibration", {}).get("sigma_model", {})
    residuals = np.asarray(residuals, dtype=np.float64)
    good = np.all(np.isfinite(residuals), axis=1)
    total = calibrate_sigma(residuals[good], np.asarray(noise_sigma)[good], coverage=coverage)
    systematic = {
        label: float(np.sqrt(max(total[k] ** 2 - simulated.get(label, 0.0) ** 2, 0.0)))
        for k, label in enumerate(schema.LABELS)
    }
    metrics.setdefault("calibration", {})
    metrics["calibration"]["sigma_systematic"] = systematic
    metrics["calibration"]["systematic_source"] = {"stars": int(good.sum()), "source": source}
    model_directory.rewrite_json(model_dir, "metrics.json", metrics)
    return systematic


def model_term(metrics):
    """The model-error term per label of a model directory's metrics: ``sigma_model`` and
    ``sigma_systematic`` added in quadrature (either may be absent)."""
    calibration = metrics.get("calibration", {})
    simulated = calibration.get("sigma_model", {})
    systematic = calibration.get("sigma_systematic", {})
    return {
        label: float(np.hypot(simulated.get(label, 0.0), systematic.get(label, 0.0)))
        for label in {*simulated, *systematic}
    }
