"""The dashboard's computation, free of widgets and figures: one spectrum in, one :class:`Analysis` out.

:func:`analyse` takes the model's own preprocessing step by step
(:meth:`stellar_nb.preprocess.Preprocessor.stages`, the code path of every prediction, so the
last panel is exactly the network's input), predicts the labels with per-star uncertainties
(:meth:`stellar_nb.inference.NumpyModel.sigma`), fits the emulated spectrum at
those labels to the observed one, scales a Planck continuum at the predicted Teff, and raises the
trust flags against the :class:`~stellar_nb.dashboard.survey_cache.SurveyCache`.
"""

import csv
import dataclasses
import functools
import io

import numpy as np

from stellar_nb import doppler, inference, preprocess, schema, trust
from stellar_nb import emulator as emulator_module
from stellar_nb.dashboard import messages
from stellar_nb.data import fits
from stellar_nb.simulate import residuals

__all__ = ["N_DRAWS", "Analysis", "analyse", "results_csv", "results_record"]

#: Noise draws per spectrum for the per-star uncertainty (see stellar_nb.inference).
N_DRAWS = 16


@dataclasses.dataclass
class Analysis:
    """Everything the dashboard shows about one spectrum (see :func:`analyse`).

    ``stages`` maps each preprocessing step (:meth:`stellar_nb.preprocess.Preprocessor.stages`)
    to its spectrum on ``grid``; ``stages["standardised"]`` is the float32 network input.
    """

    spectrum: fits.Spectrum
    source: str
    rv_kms: float
    bad_pixels: np.ndarray
    grid: np.ndarray
    stages: dict
    prediction: np.ndarray
    sigma: np.ndarray
    model_flux: np.ndarray
    planck: np.ndarray
    flags: list
    distance: float
    catalogue: np.ndarray | None = None
    catalogue_unc: np.ndarray | None = None
    residual_quantile: np.ndarray | None = None

    @property
    def residual(self):
        """Predicted minus catalogue labels, or None when the catalogue labels are unknown."""
        return None if self.catalogue is None else self.prediction - self.catalogue

    @property
    def flux_residual(self):
        """Observed minus emulated flux (NaN where masked or outside the emulator)."""
        return np.where(self.bad_pixels, np.nan, self.spectrum.flux - self.model_flux)


@functools.cache
def _emulator_error():
    return residuals.load_emulator_error()


def _flags(spectrum, prediction, distance, survey_cache, bad_pixels, rv_kms, emulator):
    return trust.check(
        prediction,
        loglam=spectrum.loglam,
        flux=spectrum.flux,
        ivar=spectrum.ivar,
        bad_pixels=bad_pixels,
        rv_kms=rv_kms,
        snr=spectrum.meta.get("snr"),
        objclass=spectrum.meta.get("objclass"),
        subclass=spectrum.meta.get("subclass"),
        emulator=emulator,
        emulator_error=_emulator_error(),
        label_ranges=survey_cache.label_ranges,
        distance=distance,
        distance_threshold=survey_cache.distance_threshold,
    )


def analyse(spectrum, model, emulator, survey_cache, *, seed=0):
    """Preprocess, predict and check one spectrum.

    Parameters
    ----------
    spectrum : stellar_nb.data.fits.Spectrum
        ``meta["rv_kms"]`` (else the test star's ``rv_adop``, else ``meta["z"]``) gives the radial
        velocity for the rest frame; ``meta["path"]`` names it in messages.
    model : stellar_nb.inference.NumpyModel
        Provides ``preprocessor``, ``predict``, ``sigma`` and ``labels``.
    emulator : stellar_nb.emulator.Emulator
    survey_cache : stellar_nb.dashboard.survey_cache.SurveyCache
    seed : int
        Seed of the noise draws behind the uncertainties.

    Returns
    -------
    Analysis

    Raises
    ------
    stellar_nb.dashboard.inputs.DashboardInputError
        Naming the file and saying why in the user's terms (:mod:`stellar_nb.dashboard.messages`):
        a galaxy or a quasar, a radial velocity no star has, no usable or only constant flux, too
        little of the model's wavelength range, or what the preprocessing refuses.
    """
    preprocessor = model.preprocessor
    meta = spectrum.meta
    source = str(meta.get("path", "spectrum"))
    refusal = messages.non_star(meta, source)
    if refusal is not None:
        raise refusal
    position = survey_cache.find(meta.get("plate"), meta.get("mjd"), meta.get("fiber"))
    test_rv = None if position is None else survey_cache.test.rv_adop.iloc[position]
    rv_kms = messages.radial_velocity(meta, source, test_rv)
    bad_pixels = preprocess.bad_pixels(
        spectrum.ivar, spectrum.and_mask, fatal_bits=preprocessor.fatal_bits
    )
    messages.screen(
        spectrum, source=source, rv_kms=rv_kms, bad_pixels=bad_pixels, grid=preprocessor.grid
    )
    arrays = (spectrum.loglam, spectrum.flux, spectrum.ivar, spectrum.and_mask)
    try:
        stages = preprocessor.stages(*arrays, rv_kms)
    except ValueError as error:
        raise messages.explain_preprocessing(source, error) from None
    # the network's input is the last stage: predict from it rather than preprocess again
    prediction = model.predict(stages["standardised"][None, :])
    sigma = model.sigma(*([array] for array in arrays), [rv_kms], n_draws=N_DRAWS, seed=seed)
    prediction = inference.in_schema_order(model, prediction[0])
    sigma = inference.in_schema_order(model, sigma[0])
    distance = float(survey_cache.distance(stages["standardised"])[0])
    emulated = _emulated(emulator, prediction, spectrum, rv_kms)
    rest_loglam = spectrum.loglam - doppler.loglam_shift(rv_kms)
    planck = preprocess.planck_continuum(max(prediction[0], 1000.0), rest_loglam, standardise=False)
    good = ~bad_pixels & np.isfinite(emulated)
    weights = spectrum.ivar[good]
    scale = np.sum(weights * spectrum.flux[good] * planck[good]) / max(
        np.sum(weights * planck[good] ** 2), 1e-300
    )
    analysis = Analysis(
        spectrum=spectrum, source=source, rv_kms=rv_kms, bad_pixels=bad_pixels,
        grid=preprocessor.grid, stages=stages, prediction=prediction, sigma=sigma,
        model_flux=emulated, planck=scale * planck,
        flags=_flags(spectrum, prediction, distance, survey_cache, bad_pixels, rv_kms, emulator),
        distance=distance,
    )  # fmt: skip
    if position is not None:
        row = survey_cache.test.iloc[position]
        analysis.catalogue = row[list(schema.CATALOG_COLUMNS)].to_numpy(dtype=float)
        analysis.catalogue_unc = row[list(schema.UNCERTAINTY_COLUMNS)].to_numpy(dtype=float)
        test_residuals = np.abs(survey_cache.residuals)
        analysis.residual_quantile = np.mean(test_residuals <= np.abs(analysis.residual), axis=0)
    return analysis


def _emulated(emulator, prediction, spectrum, rv_kms):
    """The emulated spectrum at the prediction, clipped into the emulator's box, NaN where not covered."""
    labels = np.array(
        [
            np.clip(value, *emulator.bounds[label])
            for label, value in zip(schema.LABELS, prediction, strict=True)
        ]
    )
    try:
        return emulator_module.fit_to_observed(
            emulator, labels, spectrum.loglam, spectrum.flux, spectrum.ivar, rv_kms
        )
    except ValueError:
        return np.full(spectrum.flux.shape, np.nan)


def results_record(analysis):
    """The labels, uncertainties and trust flags of ``analysis`` as a JSON-ready dict.

    Returns
    -------
    dict
        ``source``, ``labels`` (per label: ``predicted``, ``sigma``, ``unit`` and, for a test star,
        ``catalogue``, ``catalogue_sigma``, ``residual``, ``abs_residual_percentile``), ``flags``
        (``name``, ``raised``, ``detail``) and ``radial_velocity_kms``.
    """
    labels = {}
    for i, label in enumerate(schema.LABELS):
        entry = {
            "predicted": float(analysis.prediction[i]),
            "sigma": float(analysis.sigma[i]),
            "unit": schema.LABEL_UNITS[label][1],
        }
        if analysis.catalogue is not None:
            entry.update(
                catalogue=float(analysis.catalogue[i]),
                catalogue_sigma=float(analysis.catalogue_unc[i]),
                residual=float(analysis.residual[i]),
                abs_residual_percentile=float(100 * analysis.residual_quantile[i]),
            )
        labels[label] = entry
    flags = [
        {"name": flag["name"], "raised": bool(flag["raised"]), "detail": str(flag["detail"])}
        for flag in analysis.flags
    ]
    return {
        "source": analysis.source,
        "radial_velocity_kms": float(analysis.rv_kms),
        "labels": labels,
        "flags": flags,
    }


def results_csv(analysis):
    """:func:`results_record` as CSV: a header and one row (``teff``, ``teff_sigma``, ...,
    ``flag: NAME`` as 0 or 1)."""
    record = results_record(analysis)
    row = {"source": record["source"], "radial_velocity_kms": record["radial_velocity_kms"]}
    for label, entry in record["labels"].items():
        row[label] = entry["predicted"]
        row[f"{label}_sigma"] = entry["sigma"]
        for key in ("catalogue", "catalogue_sigma", "residual", "abs_residual_percentile"):
            row[f"{label}_{key}"] = entry.get(key, "")
    row.update({f"flag: {flag['name']}": int(flag["raised"]) for flag in record["flags"]})
    stream = io.StringIO()
    writer = csv.DictWriter(stream, fieldnames=list(row), lineterminator="\n")
    writer.writeheader()
    writer.writerow(row)
    return stream.getvalue()
