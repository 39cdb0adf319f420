"""``stellar-nb evaluate``: test-set accuracy next to the Cramer-Rao floor and the linear baselines.

On a survey's test split (the default simulated survey by default) this reports, per label and
in physical units:

- the model's MAE against the true labels (simulated survey only) and against the catalogue labels;
- the MAE as a percentage of the test range of the true labels (the paper's normalisation);
- the Cramer-Rao floor: the MAE an unbiased, efficient estimator would reach, ``sqrt(2 / pi) *
  mean(sigma_CRB)`` over a random subset of test stars (:func:`stellar_nb.emulator.cramer_rao_bound`),
  and the model's ratio to it (goal: at most 1.5);
- ridge regression's MAE (strength chosen on the validation split) and the model's improvement over
  it (the paper: more than 50% on each label);
- the calibration of the model's uncertainties on a subset of test stars: standard deviation of
  ``(prediction - truth) / sigma`` (1 if calibrated) and the fractions within 1 and 2 sigma (68.3%
  and 95.4% if Gaussian and calibrated).
"""

import numpy as np
import pandas as pd

from stellar_nb import baselines, model_directory, schema, simulate

__all__ = [
    "calibration",
    "evaluate",
    "mae",
    "mae_floor",
    "real_star_results",
    "summary_table",
]


def mae(predicted, reference):
    """Mean absolute error per column."""
    return np.mean(
        np.abs(np.asarray(predicted, dtype=np.float64) - np.asarray(reference, dtype=np.float64)),
        axis=0,
    )


def calibration(residuals, sigma):
    """Calibration of per-star sigmas: ``z_std``, ``within_1_sigma``, ``within_2_sigma`` per column."""
    z = np.asarray(residuals, dtype=np.float64) / np.asarray(sigma, dtype=np.float64)
    return {
        "z_std": np.std(z, axis=0),
        "z_std_robust": 1.4826 * np.median(np.abs(z - np.median(z, axis=0)), axis=0),
        "within_1_sigma": np.mean(np.abs(z) <= 1.0, axis=0),
        "within_2_sigma": np.mean(np.abs(z) <= 2.0, axis=0),
    }


def _per_label(values):
    return {label: float(value) for label, value in zip(schema.LABELS, values, strict=True)}


def _raw(survey, split, rows):
    """Raw spectra of some rows (positions in the split), their velocities and reference labels."""
    from stellar_nb.data import tables

    frame = tables.read_split(survey, split, rows=rows)
    arrays = [list(frame[column]) for column in ("loglam", "flux", "ivar", "mask")]
    source = (
        schema.TRUE_COLUMNS
        if all(c in frame for c in schema.TRUE_COLUMNS)
        else schema.CATALOG_COLUMNS
    )
    truth = frame[list(source)].to_numpy(dtype=np.float64)
    return arrays, frame["rv_adop"].to_numpy(dtype=np.float64), truth


def mae_floor(survey, stars=1000, *, split="test", rng=0):
    """The Cramer-Rao floor on the mean absolute error: ``sqrt(2 / pi)`` times the mean Cramer-Rao
    sigma of ``stars`` random stars of a simulated split (whose true labels are known).

    Parameters
    ----------
    survey : str or pathlib.Path
        Survey folder with true labels (:data:`~stellar_nb.schema.TRUE_COLUMNS`).
    stars : int
        Random stars used (all of them if the split is smaller).
    rng : numpy.random.Generator or int
        Random generator, or its seed.

    Returns
    -------
    floor : numpy.ndarray
        (3,) floor per label, in :data:`~stellar_nb.schema.LABELS` order.
    n : int
        Stars used.
    """
    from stellar_nb import emulator

    rng = np.random.default_rng(rng)
    subset = _subset(rng, _split_rows(survey, split), stars)
    arrays, velocity, truth = _raw(survey, split, subset)
    sigma = emulator.cramer_rao_bound(
        emulator.load_emulator(), truth, arrays[0], arrays[2], velocity, arrays[1]
    )
    return np.sqrt(2 / np.pi) * np.mean(sigma, axis=0), len(subset)


def _preprocessed(model, survey, split):
    """Usable spectra of a split preprocessed as the model's were, catalogue labels, scalars."""
    return model.preprocessor.transform_split(survey, split, label_source="catalog")


def evaluate(
    model_dir=None,
    survey=None,
    *,
    config=None,
    crb_stars=1000,
    calibration_stars=1000,
    n_draws=16,
    ridge=True,
    seed=0,
):
    """Evaluate a model directory on a survey's test split.

    Parameters
    ----------
    model_dir : str or pathlib.Path, optional
        Model directory; the shipped pretrained model by default.
    survey : str or pathlib.Path, optional
        Survey folder (:func:`stellar_nb.simulate.resolve_survey`).
    config : stellar_nb.config.Config, optional
    crb_stars, calibration_stars : int
        Random test stars used for the Cramer-Rao floor and for the uncertainty calibration.
    n_draws : int
        Noise draws per star for the uncertainties.
    ridge : bool
        Fit and report the ridge baseline (it preprocesses the train split: the slow part).
    seed : int
        Seed of the subsets and noise draws.

    Returns
    -------
    dict
        Per-label figures (see the module docstring), JSON-ready.
    """
    model = model_directory.load(model_dir)
    survey = simulate.resolve_survey(survey, config)
    spectra, catalog, frame = _preprocessed(model, survey, "test")
    predicted = model.predict(spectra)
    has_truth = all(column in frame for column in schema.TRUE_COLUMNS)
    truth = frame[list(schema.TRUE_COLUMNS)].to_numpy(dtype=np.float64) if has_truth else catalog
    result = {
        "model_dir": str(model.model_dir),
        "survey": str(survey),
        "n_test": len(frame),
        "n_test_rows": _split_rows(survey, "test"),
        "reference": "true" if has_truth else "catalog",
        "mae_catalog": _per_label(mae(predicted, catalog)),
    }
    if has_truth:
        result["mae_true"] = _per_label(mae(predicted, truth))
    model_mae = mae(predicted, truth)
    result["mae_percent_of_range"] = _per_label(100 * model_mae / np.ptp(truth, axis=0))
    rng = np.random.default_rng(seed)
    if has_truth and crb_stars:
        floor, result["crb_stars"] = mae_floor(survey, crb_stars, rng=rng)
        result["crb_mae_floor"] = _per_label(floor)
        result["ratio_to_floor"] = _per_label(model_mae / floor)
    if ridge:
        result.update(_ridge(model, survey, spectra, truth, catalog))
        result["improvement_over_ridge"] = _per_label(
            1 - model_mae / np.array(list(result["ridge_mae"].values()))
        )
    if calibration_stars:
        subset = _subset(rng, result["n_test_rows"], calibration_stars)
        arrays, velocity, subset_truth = _raw(survey, "test", subset)
        prediction, sigma = model.predict_with_uncertainty(
            *arrays, velocity, n_draws=n_draws, seed=seed
        )
        good = np.all(np.isfinite(sigma), axis=1)  # unusable spectra give NaN
        result["calibration"] = {
            key: _per_label(value)
            for key, value in calibration(
                prediction[good] - subset_truth[good], sigma[good]
            ).items()
        }
        result["calibration"]["stars"] = int(good.sum())
        result["calibration"]["median_sigma"] = _per_label(np.median(sigma[good], axis=0))
    return result


def _split_rows(survey, split):
    from stellar_nb.data import tables

    return len(tables.read_split(survey, split, columns=["spec_id"]))


def _subset(rng, total, size):
    return np.sort(rng.permutation(total)[: min(int(size), total)])


def _ridge(model, survey, test_spectra, truth, catalog):
    train_spectra, train_labels, _ = _preprocessed(model, survey, "train")
    validation_spectra, validation_labels, _ = _preprocessed(model, survey, "validation")
    processor = model.preprocessor
    fitted = baselines.fit_ridge(
        train_spectra,
        processor.scale_labels(train_labels),
        validation_spectra,
        processor.scale_labels(validation_labels),
    )
    predicted = processor.unscale_labels(fitted.predict(test_spectra))
    return {
        "ridge_mae": _per_label(mae(predicted, truth)),
        "ridge_mae_catalog": _per_label(mae(predicted, catalog)),
        "ridge_alpha": fitted.alpha_,
    }


def real_star_results(model_dir=None):
    """The saved real-star benchmark of a model directory (``real_stars.json``), as tables.

    Written by ``stellar-nb bench real-stars MODEL_DIR --lamost DIR --out MODEL_DIR/real_stars.json``
    (:mod:`stellar_nb.bench.real_stars`); the LAMOST spectra themselves do not ship, so notebooks
    show this saved output for the shipped model. ``model_dir`` defaults to the shipped model.

    Returns
    -------
    summary : pandas.DataFrame
        One row per set (``LAMOST cal``, ``LAMOST val``, ``simulated``) and group.
    stars : dict
        set name -> per-star table (``ref_*``, ``pred_*``, ``sigma_*``, ``snr``, ``group``,
        ``flagged``, the flag columns).
    """
    payload = model_directory.read_record("real_stars", model_dir)
    stars = {name: pd.DataFrame(table) for name, table in payload["stars"].items()}
    return pd.DataFrame(payload["summary"]), stars


def summary_table(result):
    """The per-label figures of :func:`evaluate` as a DataFrame (one row per label, physical units)."""
    keys = [
        "mae_true",
        "mae_catalog",
        "mae_percent_of_range",
        "crb_mae_floor",
        "ratio_to_floor",
        "ridge_mae",
        "improvement_over_ridge",
    ]
    table = pd.DataFrame({key: result[key] for key in keys if key in result})
    if "calibration" in result:
        for key in ("z_std", "within_1_sigma", "within_2_sigma"):
            table[f"sigma_{key}"] = pd.Series(result["calibration"][key])
    table = table.reindex([label for label in schema.LABELS if label in table.index])
    table.index = [
        f"{schema.LABEL_UNITS[label][0]} ({schema.LABEL_UNITS[label][1]})" for label in table.index
    ]
    return table
