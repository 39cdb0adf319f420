"""The dashboard's computation, free of widgets and figures: one spectrum in, one :class:`Analysis` out.

- :func:`build_reference` gathers what every spectrum is compared with: the default test split's
  labels and the model's predictions on it (for the Kiel diagram and the residual distributions),
  the training labels' range, and a principal-component description of the training spectra after
  preprocessing (for the "far from the training set" flag). It is cached on disk per model and
  survey, so the dashboard opens fast after the first time.
- :func:`analyse` preprocesses one spectrum step by step, predicts its labels with per-star
  uncertainties, fits the emulated spectrum at those labels to the observed one, scales a Planck
  continuum at the predicted Teff, and raises the trust flags.

Inputs come as :class:`stellar_nb.data.fits.Spectrum` (from an uploaded file, an SDSS download or a
row of the test split: :func:`spectrum_from_row`). Nothing uploaded is executed or unpickled: FITS
bytes are parsed by :func:`stellar_nb.data.fits.read_spectrum` and nothing else.
"""

import dataclasses
import functools
import hashlib
import os
import uuid
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from stellar_nb import emulator as emulator_module
from stellar_nb import inference, preprocess, schema, trust
from stellar_nb.data import fits, tables
from stellar_nb.simulate import residuals

__all__ = [
    "MAX_UPLOAD_BYTES",
    "Analysis",
    "DashboardInputError",
    "Reference",
    "analyse",
    "build_reference",
    "fetch_spectrum",
    "predict_with_uncertainty",
    "read_upload",
    "rv_from_z",
    "spectrum_from_row",
]

#: Largest accepted upload; the browser refuses larger files before sending them.
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
#: Scalar columns of the test split kept in memory.
REFERENCE_COLUMNS = (
    "spec_id",
    "plate",
    "mjd",
    "fiber",
    "snr",
    "rv_adop",
    *schema.CATALOG_COLUMNS,
    *schema.UNCERTAINTY_COLUMNS,
)
#: Columns of the test spectra copied for fast access, and rows per row group of that copy.
STAR_COLUMNS = (*REFERENCE_COLUMNS[:6], *schema.ARRAY_COLUMNS)
STAR_ROW_GROUP = 16
#: Principal components describing the training spectra, and the training rows used to find them.
N_COMPONENTS = 20
N_TRAIN_ROWS = 2000
#: Noise draws per spectrum for the per-star uncertainty (see stellar_nb.inference).
N_DRAWS = 16
#: Quantile of the test split's distance to the training set above which a spectrum is flagged.
DISTANCE_QUANTILE = 0.99


class DashboardInputError(ValueError):
    """A spectrum the dashboard cannot analyse; the message is shown to the user as it is."""


@dataclasses.dataclass
class Reference:
    """What each spectrum is compared with (see :func:`build_reference`).

    Attributes
    ----------
    test : pandas.DataFrame
        Test split scalars (:data:`REFERENCE_COLUMNS`) plus ``pred_<label>`` and ``distance``.
    label_ranges : dict
        label -> (min, max) of the training split's catalogue labels.
    pca_mean, pca_components, pca_variance : numpy.ndarray
        Mean (4000,), components (k, 4000) and variance (k,) of the preprocessed training spectra.
    distance_threshold : float
        :data:`DISTANCE_QUANTILE` of the test split's distances.
    stars_path : pathlib.Path
        The test spectra in small row groups (:meth:`star`).
    """

    _stars = None

    test: pd.DataFrame
    label_ranges: dict
    pca_mean: np.ndarray
    pca_components: np.ndarray
    pca_variance: np.ndarray
    distance_threshold: float
    stars_path: Path | None = None

    def star(self, position):
        """The test star at ``position`` of :attr:`test` as a :class:`stellar_nb.data.fits.Spectrum`."""
        if self._stars is None:
            self._stars = pq.ParquetFile(self.stars_path)
        row = int(self.test.row.iloc[position])
        group = self._stars.read_row_group(row // STAR_ROW_GROUP)
        return spectrum_from_row(
            _frame(group.slice(row % STAR_ROW_GROUP, 1).to_batches()[0]).iloc[0]
        )

    @property
    def residuals(self):
        """Test-split residuals, predicted minus catalogue, shape (n, 3)."""
        predicted = self.test[[f"pred_{label}" for label in schema.LABELS]].to_numpy()
        return predicted - self.test[list(schema.CATALOG_COLUMNS)].to_numpy()

    def distance(self, X):
        """Mahalanobis distance in the principal subspace, in units of sqrt(k), per row of X."""
        scores = (np.atleast_2d(X) - self.pca_mean) @ self.pca_components.T
        return np.sqrt(np.mean(scores**2 / self.pca_variance, axis=1))

    def find(self, plate, mjd, fiber):
        """Position of the test star observed on plate-MJD-fiber, or None."""
        test = self.test
        match = np.flatnonzero((test.plate == plate) & (test.mjd == mjd) & (test.fiber == fiber))
        return int(match[0]) if match.size else None


def _cache_key(model, survey_dir):
    digest = hashlib.sha256(str(Path(survey_dir).resolve()).encode())
    model_dir = getattr(model, "model_dir", None)
    manifest = None if model_dir is None else Path(model_dir) / "manifest.json"
    digest.update(
        manifest.read_bytes() if manifest is not None and manifest.is_file() else uuid.uuid4().bytes
    )
    return digest.hexdigest()[:16]


def _frame(batch):
    """A pandas frame of an Arrow record batch, list columns as object columns of numpy arrays."""
    return pd.DataFrame(
        {name: batch.column(name).to_numpy(zero_copy_only=False) for name in batch.schema.names}
    )


def _preprocess_frame(model, frame):
    return model.preprocess(
        list(frame.loglam),
        list(frame.flux),
        list(frame.ivar),
        list(frame["mask"]),
        frame.rv_adop.to_numpy(),
    )


def build_reference(survey_dir, model, cache_dir, *, batch_size=1024):
    """Predict the test split and describe the training spectra, once per model and survey.

    The test split is streamed in batches; its spectra are also copied into ``stars.parquet`` with
    row groups of :data:`STAR_ROW_GROUP` rows, so that the dashboard reads one star in milliseconds.

    Parameters
    ----------
    survey_dir : str or pathlib.Path
        Folder with ``train.parquet`` and ``test.parquet`` (:mod:`stellar_nb.data.tables`).
    model : stellar_nb.inference.NumpyModel
        Or any object with ``preprocess(loglam, flux, ivar, mask, rv)`` and ``predict(X)``.
    cache_dir : str or pathlib.Path
        Results go to ``cache_dir/reference-KEY/``, KEY naming the survey folder and the model's
        manifest; a later call with the same model and survey reads them back.
    batch_size : int
        Test spectra preprocessed at once (bounds the memory used).

    Returns
    -------
    Reference
    """
    folder = Path(cache_dir) / f"reference-{_cache_key(model, survey_dir)}"
    if (folder / "reference.npz").is_file() and (folder / "stars.parquet").is_file():
        with np.load(folder / "reference.npz", allow_pickle=False) as data:
            return _reference_from_arrays(data, folder / "stars.parquet")
    folder.mkdir(parents=True, exist_ok=True)
    train = tables.read_split(survey_dir, "train", rows=slice(0, N_TRAIN_ROWS))
    X_train, flags = _preprocess_frame(model, train)
    X_train = X_train[flags == 0].astype(np.float64)
    del train
    mean = X_train.mean(axis=0)
    _, singular, vt = np.linalg.svd(X_train - mean, full_matrices=False)
    k = min(N_COMPONENTS, len(singular))
    arrays = {
        "pca_mean": mean,
        "pca_components": vt[:k],
        "pca_variance": singular[:k] ** 2 / max(len(X_train) - 1, 1),
    }
    labels = tables.read_split(survey_dir, "train", columns=list(schema.CATALOG_COLUMNS))
    arrays["label_ranges"] = np.array(
        [[labels[c].min(), labels[c].max()] for c in schema.CATALOG_COLUMNS]
    )
    scoring = _reference_from_arrays({**arrays, "distance_threshold": 0.0}, None, columns=False)
    parquet = pq.ParquetFile(tables.split_path(survey_dir, "test"))
    parts, row = [], 0
    temporary = folder / "stars.parquet.part"
    writer = None
    try:
        for batch in parquet.iter_batches(
            batch_size=batch_size, columns=[*REFERENCE_COLUMNS, *schema.ARRAY_COLUMNS]
        ):
            stars = batch.select(list(STAR_COLUMNS))
            writer = writer or pq.ParquetWriter(temporary, stars.schema, compression="zstd")
            writer.write_batch(stars, row_group_size=STAR_ROW_GROUP)
            frame = _frame(batch)
            X, flags = _preprocess_frame(model, frame)
            keep = flags == 0
            part = frame.loc[keep, list(REFERENCE_COLUMNS)].reset_index(drop=True)
            part["row"] = row + np.flatnonzero(keep)
            predicted = inference.in_schema_order(model, model.predict(X[keep]))
            for i, label in enumerate(schema.LABELS):
                part[f"pred_{label}"] = predicted[:, i]
            part["distance"] = scoring.distance(X[keep])
            parts.append(part)
            row += len(frame)
    finally:
        if writer is not None:
            writer.close()
    test = pd.concat(parts, ignore_index=True)
    arrays.update({name: test[name].to_numpy() for name in test.columns})
    arrays["distance_threshold"] = np.quantile(test.distance, DISTANCE_QUANTILE)
    np.savez(folder / "reference.part.npz", **arrays)
    os.replace(temporary, folder / "stars.parquet")
    os.replace(folder / "reference.part.npz", folder / "reference.npz")
    return _reference_from_arrays(arrays, folder / "stars.parquet")


def _reference_from_arrays(data, stars_path, *, columns=True):
    names = [*REFERENCE_COLUMNS, "row", *(f"pred_{label}" for label in schema.LABELS), "distance"]
    ranges = np.asarray(data["label_ranges"])
    return Reference(
        test=pd.DataFrame({name: np.asarray(data[name]) for name in names} if columns else {}),
        label_ranges={
            label: (float(lo), float(hi))
            for label, (lo, hi) in zip(schema.LABELS, ranges, strict=True)
        },
        pca_mean=np.asarray(data["pca_mean"]),
        pca_components=np.asarray(data["pca_components"]),
        pca_variance=np.asarray(data["pca_variance"]),
        distance_threshold=float(data["distance_threshold"]),
        stars_path=stars_path,
    )


def rv_from_z(z):
    """Radial velocity (km/s) of a redshift, inverting 1 + z = sqrt((1 + beta) / (1 - beta))."""
    square = (1.0 + float(z or 0.0)) ** 2
    return schema.C_KM_S * (square - 1.0) / (square + 1.0)


def fetch_spectrum(plate, mjd, fiber, *, base_url=None, timeout=20.0):
    """Download one DR12 ``spec-lite`` file by plate-MJD-fiber and read it.

    SEGUE and SDSS-I/II spectra live under ``sdss/spectro/redux/RUN2D``; the reductions 26, 103
    and 104 are tried in turn (:func:`stellar_nb.data.sdss.spectrum_path`).

    Parameters
    ----------
    plate, mjd, fiber : int
    base_url : str, optional
        SAS base URL; default ``$STELLAR_NB_SAS_URL`` or :data:`stellar_nb.data.sdss.SAS_URL`.
    timeout : float
        Seconds per request.

    Raises
    ------
    DashboardInputError
        If no reduction has the file, the server cannot be reached, or the file is unreadable.
    """
    import requests

    from stellar_nb.data import sdss

    base = (base_url or os.environ.get("STELLAR_NB_SAS_URL") or sdss.SAS_URL).rstrip("/")
    name = f"spec-{int(plate):04d}-{int(mjd):05d}-{int(fiber):04d}.fits"
    for run2d in ("26", "103", "104"):
        url = f"{base}/{sdss.spectrum_path({'plate': plate, 'mjd': mjd, 'fiber': fiber, 'run2d': run2d})}"
        try:
            with requests.get(url, timeout=timeout, stream=True) as response:
                if response.status_code == 404:
                    continue
                response.raise_for_status()
                content = response.raw.read(MAX_UPLOAD_BYTES + 1, decode_content=True)
        except requests.RequestException as error:
            raise DashboardInputError(
                f"cannot download {name} from {base} ({type(error).__name__}); offline?"
            ) from None
        return read_upload(content, name)
    raise DashboardInputError(f"{name} not found at {base} (reductions 26, 103, 104)")


def spectrum_from_row(row):
    """A :class:`stellar_nb.data.fits.Spectrum` from one row of a survey split."""
    meta = {
        name: row[name].item() if hasattr(row[name], "item") else row[name]
        for name in ("plate", "mjd", "fiber", "snr")
    }
    meta.update(
        objclass="STAR",
        spec_id=int(row["spec_id"]),
        rv_kms=float(row["rv_adop"]),
        path=f"test star {int(row['spec_id'])}",
    )
    return fits.Spectrum(
        flux=np.asarray(row["flux"], dtype=np.float32),
        loglam=np.asarray(row["loglam"], dtype=np.float64),
        ivar=np.asarray(row["ivar"], dtype=np.float32),
        and_mask=np.asarray(row["mask"], dtype=np.int32),
        meta=meta,
    )


def read_upload(content, name="upload"):
    """Parse uploaded bytes as an SDSS or LAMOST spectrum (FITS, or gzipped FITS), turning every failure into a readable message.

    Raises
    ------
    DashboardInputError
        If the file is too large, not FITS, damaged, lacks flux/loglam, or has no usable pixel.
    """
    content = bytes(content)
    if len(content) > MAX_UPLOAD_BYTES:
        raise DashboardInputError(
            f"{name}: {len(content) / 2**20:.1f} MB is over the {MAX_UPLOAD_BYTES // 2**20} MB upload limit"
        )
    if not content.startswith((b"SIMPLE  =", b"\x1f\x8b")):
        raise DashboardInputError(
            f"{name}: not a FITS file (an SDSS spec-PLATE-MJD-FIBER.fits or a LAMOST "
            "spec-*.fits[.gz] is expected)"
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            spectrum = fits.read_spectrum(content)
        except fits.SpectrumReadError as error:
            raise DashboardInputError(str(error).replace("<bytes>", name)) from None
    for warning in caught:
        if issubclass(warning.category, fits.SpectrumQualityWarning) and "no pixel" in str(
            warning.message
        ):
            raise DashboardInputError(
                f"{name}: every pixel is masked (ivar = 0); nothing to analyse"
            )
    spectrum.meta["path"] = name
    return spectrum


@dataclasses.dataclass
class Analysis:
    """Everything the dashboard shows about one spectrum (see :func:`analyse`)."""

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


def _stages(spectrum, rv_kms, grid):
    loglam, flux, flag = preprocess.clean_spectrum(
        spectrum.loglam, spectrum.flux, spectrum.ivar, spectrum.and_mask
    )
    if flag:
        problems = ", ".join(preprocess.describe_flags(flag))
        raise DashboardInputError(
            f"{spectrum.meta.get('path', 'spectrum')}: cannot be preprocessed ({problems})"
        )
    resampled = preprocess.resample([loglam], [flux], grid=grid)
    rest = preprocess.rest_frame(resampled, rv_kms, grid)
    return {"resampled": resampled[0], "rest frame": rest[0]}


def _flags(spectrum, prediction, distance, reference, bad_pixels, rv_kms, emulator):
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
        label_ranges=reference.label_ranges,
        distance=distance,
        distance_threshold=reference.distance_threshold,
    )


@functools.cache
def _emulator_error():
    return residuals.load_emulator_error()


def analyse(spectrum, model, emulator, reference, *, grid=None, seed=0):
    """Preprocess, predict and check one spectrum.

    Parameters
    ----------
    spectrum : stellar_nb.data.fits.Spectrum
        ``meta["rv_kms"]`` (else ``meta["z"]``) gives the radial velocity for the rest frame.
    model : stellar_nb.inference.NumpyModel
        Provides ``preprocess``, ``predict`` and ``predict_with_uncertainty``.
    emulator : stellar_nb.emulator.Emulator
    reference : Reference
    grid : numpy.ndarray, optional
        The model's wavelength grid; the paper's by default.
    seed : int
        Seed of the noise draws behind the uncertainties.

    Returns
    -------
    Analysis

    Raises
    ------
    DashboardInputError
        If the spectrum cannot be preprocessed (too few good pixels, bad radial velocity, ...).
    """
    grid = schema.grid_loglam() if grid is None else grid
    meta = spectrum.meta
    position = reference.find(meta.get("plate"), meta.get("mjd"), meta.get("fiber"))
    if meta.get("rv_kms") is not None:
        rv_kms = float(meta["rv_kms"])
    elif position is not None:
        rv_kms = float(reference.test.rv_adop.iloc[position])
    else:
        rv_kms = rv_from_z(meta.get("z"))
    bad_pixels = preprocess.bad_pixels(spectrum.ivar, spectrum.and_mask)
    if bad_pixels.all():
        raise DashboardInputError(
            f"{meta.get('path', 'spectrum')}: every pixel is masked; nothing to analyse"
        )
    try:
        stages = _stages(spectrum, rv_kms, grid)
    except ValueError as error:
        raise DashboardInputError(str(error)) from None
    prediction, sigma, X = predict_with_uncertainty(model, spectrum, rv_kms, seed=seed)
    # the last stage is exactly the network's input (continuum-normalised first for that variant)
    stages["standardised"] = X[0].astype(np.float64)
    distance = float(reference.distance(X)[0])
    emulated = _emulated(emulator, prediction, spectrum, rv_kms)
    rest_loglam = spectrum.loglam - preprocess.doppler_loglam_shift(rv_kms)
    planck = preprocess.planck_continuum(max(prediction[0], 1000.0), rest_loglam, standardise=False)
    good = ~bad_pixels & np.isfinite(emulated)
    weights = spectrum.ivar[good]
    scale = np.sum(weights * spectrum.flux[good] * planck[good]) / max(
        np.sum(weights * planck[good] ** 2), 1e-300
    )
    analysis = Analysis(
        spectrum=spectrum, source=str(meta.get("path", "spectrum")), rv_kms=rv_kms, bad_pixels=bad_pixels,
        grid=grid, stages=stages, prediction=prediction, sigma=sigma, model_flux=emulated,
        planck=scale * planck, flags=_flags(spectrum, prediction, distance, reference, bad_pixels, rv_kms, emulator),
        distance=distance,
    )  # fmt: skip
    if position is not None:
        row = reference.test.iloc[position]
        analysis.catalogue = row[list(schema.CATALOG_COLUMNS)].to_numpy(dtype=float)
        analysis.catalogue_unc = row[list(schema.UNCERTAINTY_COLUMNS)].to_numpy(dtype=float)
        residuals = np.abs(reference.residuals)
        analysis.residual_quantile = np.mean(residuals <= np.abs(analysis.residual), axis=0)
    return analysis


def predict_with_uncertainty(model, spectrum, rv_kms, *, n_draws=N_DRAWS, seed=0):
    """Labels and per-star sigma of one spectrum, batched: one preprocessing and one forward pass.

    The method of :meth:`stellar_nb.inference.NumpyModel.predict_with_uncertainty` (noise
    resampling): the spread of the predictions over ``n_draws`` copies of the spectrum with
    Gaussian noise of standard deviation ``1 / sqrt(ivar)`` added (none where ``ivar = 0``), in
    quadrature with the model's per-label ``sigma_model`` (simulated validation split and real-star
    terms, :mod:`stellar_nb.inference`).
    Here the copies go through the model as one batch, which is several times faster for one star.

    Returns
    -------
    prediction, sigma : numpy.ndarray
        (3,) in :data:`stellar_nb.schema.LABELS` order, physical units.
    X : numpy.ndarray
        (1, grid size) the preprocessed spectrum the network saw.

    Raises
    ------
    DashboardInputError
        If the model's preprocessing flags the spectrum as unusable.
    """
    rng = np.random.default_rng(seed)
    ivar = np.asarray(spectrum.ivar, dtype=np.float64)
    noise = np.where(ivar > 0, 1.0 / np.sqrt(np.where(ivar > 0, ivar, 1.0)), 0.0)
    flux = np.asarray(spectrum.flux, dtype=np.float64)
    fluxes = [flux, *(flux + noise * rng.standard_normal((n_draws, flux.size)))]
    count = len(fluxes)
    X, flags = model.preprocess(
        [spectrum.loglam] * count,
        fluxes,
        [ivar] * count,
        [spectrum.and_mask] * count,
        np.full(count, rv_kms),
    )
    if flags[0]:
        problems = ", ".join(preprocess.describe_flags(flags[0]))
        raise DashboardInputError(
            f"{spectrum.meta.get('path', 'spectrum')}: cannot be preprocessed ({problems})"
        )
    predictions = inference.in_schema_order(model, model.predict(X[flags == 0]))
    sigma_model = getattr(model, "sigma_model", {})
    model_term = np.array([sigma_model.get(label, 0.0) for label in schema.LABELS])
    spread = predictions[1:].std(axis=0, ddof=1) if len(predictions) > 2 else np.zeros(3)
    return predictions[0], np.sqrt(spread**2 + model_term**2), X[:1]


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
