"""What the dashboard compares each spectrum with, computed once per model and survey and cached.

:func:`build_survey_cache` gathers the default test split's labels and the model's predictions on
it (for the Kiel diagram and the residual distributions), the training labels' range, and a
principal-component description of the training spectra after preprocessing (for the "far from
the training set" flag). It is kept on disk per model and survey, so the dashboard opens fast
after the first time; the test spectra are copied in small row groups so one star reads in
milliseconds (:meth:`SurveyCache.star`).
"""

import dataclasses
import hashlib
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from stellar_nb import files, inference, schema
from stellar_nb.dashboard import inputs
from stellar_nb.data import tables

__all__ = [
    "CACHE_COLUMNS",
    "DISTANCE_QUANTILE",
    "SurveyCache",
    "build_survey_cache",
]

#: Scalar columns of the test split kept in memory.
CACHE_COLUMNS = (
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
STAR_COLUMNS = (*CACHE_COLUMNS[:6], *schema.ARRAY_COLUMNS)
STAR_ROW_GROUP = 16
#: Principal components describing the training spectra, and the training rows used to find them.
N_COMPONENTS = 20
N_TRAIN_ROWS = 2000
#: Quantile of the test split's distance to the training set above which a spectrum is flagged.
DISTANCE_QUANTILE = 0.99


@dataclasses.dataclass
class SurveyCache:
    """What each spectrum is compared with (see :func:`build_survey_cache`).

    Attributes
    ----------
    test : pandas.DataFrame
        Test split scalars (:data:`CACHE_COLUMNS`) plus ``row``, ``pred_<label>`` and ``distance``.
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
        return inputs.spectrum_from_row(
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


def _cache_key(model, survey):
    digest = hashlib.sha256(str(Path(survey).resolve()).encode())
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


def build_survey_cache(survey, model, cache_dir, *, batch_size=1024):
    """Predict the test split and describe the training spectra, once per model and survey.

    The test split is streamed in batches; its spectra are also copied into ``stars.parquet`` with
    row groups of :data:`STAR_ROW_GROUP` rows, so that the dashboard reads one star in milliseconds.

    Parameters
    ----------
    survey : str or pathlib.Path
        Folder with ``train.parquet`` and ``test.parquet`` (:mod:`stellar_nb.data.tables`).
    model : stellar_nb.inference.NumpyModel
        Or any object with ``preprocess(loglam, flux, ivar, mask, rv)`` and ``predict(X)``.
    cache_dir : str or pathlib.Path
        Results go to ``cache_dir/survey-cache-KEY/``, KEY naming the survey folder and the
        model's manifest; a later call with the same model and survey reads them back.
    batch_size : int
        Test spectra preprocessed at once (bounds the memory used).

    Returns
    -------
    SurveyCache
    """
    folder = Path(cache_dir) / f"survey-cache-{_cache_key(model, survey)}"
    arrays_path, stars_path = folder / "survey_cache.npz", folder / "stars.parquet"
    if arrays_path.is_file() and stars_path.is_file():
        with np.load(arrays_path, allow_pickle=False) as data:
            return _cache_from_arrays(data, stars_path)
    folder.mkdir(parents=True, exist_ok=True)
    train = tables.read_split(survey, "train", rows=slice(0, N_TRAIN_ROWS))
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
    labels = tables.read_split(survey, "train", columns=list(schema.CATALOG_COLUMNS))
    arrays["label_ranges"] = np.array(
        [[labels[c].min(), labels[c].max()] for c in schema.CATALOG_COLUMNS]
    )
    scoring = _cache_from_arrays({**arrays, "distance_threshold": 0.0}, None, columns=False)
    parquet = pq.ParquetFile(tables.split_path(survey, "test"))
    parts, row = [], 0
    with files.atomic_path(stars_path) as temporary:
        writer = None
        try:
            for batch in parquet.iter_batches(
                batch_size=batch_size, columns=[*CACHE_COLUMNS, *schema.ARRAY_COLUMNS]
            ):
                stars = batch.select(list(STAR_COLUMNS))
                writer = writer or pq.ParquetWriter(
                    str(temporary), stars.schema, compression="zstd"
                )
                writer.write_batch(stars, row_group_size=STAR_ROW_GROUP)
                frame = _frame(batch)
                X, flags = _preprocess_frame(model, frame)
                keep = flags == 0
                part = frame.loc[keep, list(CACHE_COLUMNS)].reset_index(drop=True)
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
    files.atomic_write(arrays_path, lambda temporary: np.savez(temporary, **arrays))
    return _cache_from_arrays(arrays, stars_path)


def _cache_from_arrays(data, stars_path, *, columns=True):
    names = [*CACHE_COLUMNS, "row", *(f"pred_{label}" for label in schema.LABELS), "distance"]
    ranges = np.asarray(data["label_ranges"])
    return SurveyCache(
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
