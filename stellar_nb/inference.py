"""Light inference: a trained model as a plain numpy forward pass, with calibrated uncertainties.

A saved model directory (layout :data:`LAYOUT_VERSION`) holds:

- ``manifest.json``: layout version, package and library versions, SHA-256 of every other file;
- ``model.keras``: the Keras model (best weights, no optimiser), loaded in safe mode by
  :func:`stellar_nb.train.load_keras_model`;
- ``weights.npz``: the same weights as numpy arrays, named ``LAYER/INDEX``, for :class:`NumpyModel`;
- ``model.json``: architecture (the arguments of :func:`stellar_nb.model.build_model`), training
  settings and loss weights;
- ``preprocessor.json``: :meth:`stellar_nb.preprocess.Preprocessor.to_dict`, label scaler included;
- ``history.json`` and ``metrics.json`` (best epoch, validation MAE, uncertainty calibration).

:class:`NumpyModel` never imports TensorFlow, Keras or JAX: the dashboard kernel stays light.
Uncertainties (:meth:`NumpyModel.predict_with_uncertainty`) combine two terms in quadrature: the
spread of predictions over noise realisations drawn from each spectrum's own ``ivar`` (so a noisy
spectrum gets a wider error bar, star by star), and a per-label model-error term. That term has
two parts, added in quadrature: ``sigma_model``, fitted on the simulated validation split so that
68.3% of its stars fall within one sigma, and ``sigma_systematic``, fitted on real stars
(:func:`calibrate_systematic`, e.g. half of a LAMOST set against its LASP labels) so that 68.3% of
*those* fall within one sigma: the simulator is not the sky, and its test split alone would give
error bars that hold for a fifth of real stars. Noise resampling was
chosen over MC dropout (the paper model has dropout only in its one block, and its spread is not
tied to the data's noise) and over an ensemble (several trainings and several shipped models).
"""

import json
from importlib import resources
from pathlib import Path

import numpy as np
import scipy.special

from stellar_nb import schema
from stellar_nb.files import atomic_write, sha256sum

__all__ = [
    "LAYOUT_VERSION",
    "ModelDirectoryError",
    "NumpyModel",
    "calibrate_sigma",
    "calibrate_systematic",
    "export_weights",
    "in_schema_order",
    "load_pretrained",
    "pretrained_dir",
    "read_manifest",
    "write_json",
]

#: Version of the saved model directory layout; loading refuses any other.
LAYOUT_VERSION = 1
MANIFEST = "manifest.json"
#: Files every model directory holds besides the manifest.
REQUIRED_FILES = (
    "model.keras",
    "weights.npz",
    "model.json",
    "preprocessor.json",
    "history.json",
    "metrics.json",
)


class ModelDirectoryError(ValueError):
    """A model directory that is missing, incomplete, corrupt or of another layout version."""


def write_json(path, data):
    """Write ``data`` as indented JSON, atomically."""
    text = json.dumps(data, indent=2, sort_keys=True, default=_json_default)
    return atomic_write(path, lambda temporary: Path(temporary).write_text(text + "\n"))


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray | tuple):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def read_json(path):
    """Read a JSON file; a missing or corrupt file raises :class:`ModelDirectoryError` naming it."""
    path = Path(path)
    if not path.is_file():
        raise ModelDirectoryError(f"missing file {path}")
    try:
        return json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise ModelDirectoryError(f"{path} is not valid JSON: {error}") from None


def read_manifest(model_dir, *, verify=True):
    """Read and check a model directory's manifest.

    Parameters
    ----------
    model_dir : str or pathlib.Path
    verify : bool
        Check every listed file's SHA-256.

    Raises
    ------
    ModelDirectoryError
        If the folder or a file is missing, a file is corrupt, or the layout version differs.
    """
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelDirectoryError(f"model directory {model_dir} does not exist")
    manifest = read_json(model_dir / MANIFEST)
    version = manifest.get("layout_version")
    if version != LAYOUT_VERSION:
        raise ModelDirectoryError(
            f"{model_dir / MANIFEST}: model layout version {version!r}, but this stellar_nb "
            f"reads layout {LAYOUT_VERSION}; retrain it with 'stellar-nb train' or use the "
            f"stellar_nb version named in the manifest ({manifest.get('versions', {}).get('stellar_nb')})"
        )
    files = manifest.get("files", {})
    for name in REQUIRED_FILES:
        path = model_dir / name
        if not path.is_file():
            raise ModelDirectoryError(f"missing file {path}")
        if verify and name in files and sha256sum(path) != files[name]:
            raise ModelDirectoryError(f"{path} is corrupt: its SHA-256 differs from the manifest")
    return manifest


def export_weights(keras_model):
    """Return ``{"LAYER/INDEX": float32 array}`` for every weighted layer of a Keras model."""
    arrays = {}
    for layer in keras_model.layers:
        for index, value in enumerate(layer.get_weights()):
            arrays[f"{layer.name}/{index}"] = np.asarray(value, dtype=np.float32)
    return arrays


def _gelu(x):
    """Exact GELU, ``x * Phi(x)``, with in-place steps (fewer temporaries: faster)."""
    out = x * np.float32(1.0 / np.sqrt(2.0))
    scipy.special.erf(out, out=out)
    out += np.float32(1.0)
    out *= x
    out *= np.float32(0.5)
    return out


class NumpyModel:
    """The residual multitask MLP evaluated with numpy only.

    Parameters
    ----------
    architecture : dict
        Arguments of :func:`stellar_nb.model.build_model` (as in ``model.json``).
    weights : mapping
        ``{"LAYER/INDEX": array}`` from :func:`export_weights`.
    preprocessor : stellar_nb.preprocess.Preprocessor, optional
        Needed to report physical units and to preprocess raw spectra.
    sigma_model : mapping, optional
        Model-error term per label, physical units (from ``metrics.json``).
    epsilon : float
        LayerNorm epsilon (Keras's default).
    """

    def __init__(self, architecture, weights, preprocessor=None, sigma_model=None, epsilon=1e-3):
        self.architecture = dict(architecture)
        self.labels = tuple(self.architecture["labels"])
        self.weights = {
            name: np.asarray(value, dtype=np.float32) for name, value in weights.items()
        }
        self.preprocessor = preprocessor
        self.sigma_model = dict(sigma_model or {})
        self.epsilon = np.float32(epsilon)
        self.model_dir = None
        self._check_weights()

    def _check_weights(self):
        first = (
            f"{self.labels[0]}_stem_dense/0"
            if self.architecture.get("single_task")
            else "stem_dense/0"
        )
        if first not in self.weights:
            raise ModelDirectoryError(
                f"weights have no {first!r}; layers found: {sorted(self.weights)[:8]}"
            )
        size = self.weights[first].shape[0]
        if size != self.architecture["input_size"]:
            raise ModelDirectoryError(
                f"stem weights expect {size} inputs, architecture says {self.architecture['input_size']}"
            )

    @property
    def input_size(self):
        """Pixels per preprocessed spectrum."""
        return int(self.architecture["input_size"])

    def _dense(self, x, name):
        out = x @ self.weights[f"{name}/0"]
        out += self.weights[f"{name}/1"]
        return out

    def _norm(self, x, name):
        if not self.architecture.get("layer_norm", True):
            return x
        mean = x.mean(axis=-1, keepdims=True)
        variance = np.square(x - mean).mean(axis=-1, keepdims=True)
        normed = (x - mean) / np.sqrt(variance + self.epsilon)
        return normed * self.weights[f"{name}/0"] + self.weights[f"{name}/1"]

    def _trunk(self, x, prefix):
        arch = self.architecture
        x = _gelu(self._norm(self._dense(x, f"{prefix}stem_dense"), f"{prefix}stem_norm"))
        width = int(arch["stem_units"])
        for b, units in enumerate(arch["block_units"], start=1):
            name = f"{prefix}block{b}"
            t = self._dense(self._norm(x, f"{name}_norm1"), f"{name}_dense1")
            t = self._dense(self._norm(_gelu(t), f"{name}_norm2"), f"{name}_dense2")
            if arch.get("skip", True):
                shortcut = x
                if int(units) != width:
                    shortcut = self._dense(
                        self._norm(x, f"{name}_shortcut_norm"), f"{name}_shortcut_dense"
                    )
                t = t + shortcut
            x, width = t, int(units)
        return self._norm(x, f"{prefix}final_norm")

    def _head(self, x, label):
        for position in range(1, len(self.architecture["head_units"][label]) + 1):
            x = _gelu(self._dense(x, f"{label}_dense{position}"))
        return self._dense(x, label)[:, 0]

    def forward(self, spectra, *, batch_size=8192):
        """Scaled outputs, shape ``(n, len(labels))``, in :attr:`labels` order (dropout off).

        Raises
        ------
        ValueError
            If ``spectra`` is not 2-D with :attr:`input_size` columns.
        """
        spectra = np.asarray(spectra, dtype=np.float32)
        if spectra.ndim != 2 or spectra.shape[1] != self.input_size:
            raise ValueError(f"spectra must have shape (n, {self.input_size}), got {spectra.shape}")
        out = np.empty((len(spectra), len(self.labels)), dtype=np.float32)
        for start in range(0, len(spectra), batch_size):
            x = spectra[start : start + batch_size]
            if self.architecture.get("single_task"):
                columns = [self._head(self._trunk(x, f"{label}_"), label) for label in self.labels]
            else:
                shared = self._trunk(x, "")
                columns = [self._head(shared, label) for label in self.labels]
            out[start : start + batch_size] = np.stack(columns, axis=1)
        return out

    def predict(self, spectra, *, batch_size=8192):
        """Labels in physical units (K, dex, dex), shape ``(n, len(labels))``."""
        scaled = self.forward(spectra, batch_size=batch_size)
        if self.preprocessor is None:
            raise ValueError(
                "this NumpyModel has no preprocessor, so it cannot report physical units"
            )
        return _inverse_labels(self.preprocessor, scaled, self.labels)

    def preprocess(self, loglam, flux, ivar, mask=None, rv_kms=None, *, on_bad="flag"):
        """Preprocess raw spectra with the model's own preprocessor: ``(X, flags)``.

        With ``on_bad="flag"`` an unusable spectrum becomes a zero row with a nonzero flag
        (:func:`stellar_nb.preprocess.describe_flags` names the problem); ``"raise"`` raises
        ``ValueError`` instead.
        """
        if self.preprocessor is None:
            raise ValueError("this NumpyModel has no preprocessor to turn raw spectra into inputs")
        rv = 0.0 if rv_kms is None else rv_kms
        return self.preprocessor.transform(loglam, flux, ivar, mask, rv, on_bad=on_bad)

    def noise_sigma(
        self, loglam, flux, ivar, mask=None, rv_kms=None, *, n_draws=32, seed=0, chunk=256
    ):
        """Spread (physical units) of predictions over ``n_draws`` noise draws from each ``ivar``.

        Each draw adds Gaussian noise of standard deviation ``1 / sqrt(ivar)`` to the observed flux
        (none where ``ivar = 0``: those pixels are dead), preprocesses and predicts again.
        ``chunk`` stars at a time are processed together (``chunk * n_draws`` spectra in memory).
        """
        rng = np.random.default_rng(seed)
        n = len(flux)
        rv = (
            np.zeros(n)
            if rv_kms is None
            else np.broadcast_to(np.asarray(rv_kms, dtype=np.float64), (n,))
        )
        sigma = np.empty((n, len(self.labels)))
        # all draws of a chunk of stars go through one preprocessing call and one forward pass
        for start in range(0, n, chunk):
            rows = range(start, min(start + chunk, n))
            noisy, repeated = [], []
            for i in rows:
                inverse = np.asarray(ivar[i], dtype=np.float64)
                noise = np.where(
                    inverse > 0, 1.0 / np.sqrt(np.where(inverse > 0, inverse, 1.0)), 0.0
                )
                flux_i = np.asarray(flux[i], dtype=np.float64)
                noisy += [flux_i + noise * rng.standard_normal(noise.shape) for _ in range(n_draws)]
                repeated += [i] * n_draws
            spectra, _ = self.preprocess(
                [loglam[i] for i in repeated],
                noisy,
                [ivar[i] for i in repeated],
                None if mask is None else [mask[i] for i in repeated],
                rv[repeated],
            )
            draws = self.predict(spectra).reshape(len(rows), n_draws, -1)
            sigma[start : start + len(rows)] = np.std(draws, axis=1, ddof=1)
        return sigma

    def predict_with_uncertainty(
        self, loglam, flux, ivar, mask=None, rv_kms=None, *, n_draws=32, seed=0, on_bad="flag"
    ):
        """Labels and calibrated per-star sigma from raw spectra.

        Parameters
        ----------
        loglam, flux, ivar : sequence of 1-D arrays
            Each spectrum on its own log10-wavelength sampling (SDSS: vacuum Angstrom).
        mask : sequence of 1-D int arrays, optional
            SDSS ``and_mask`` per pixel.
        rv_kms : float or array_like, optional
            Radial velocity per spectrum (km/s) for the rest-frame shift; 0 by default.
        n_draws : int
            Noise realisations per spectrum.
        seed : int
            Seed of the noise draws.
        on_bad : {"flag", "raise"}
            An unusable spectrum gives NaN (``"flag"``) or raises ``ValueError`` (``"raise"``).

        Returns
        -------
        prediction, sigma : numpy.ndarray, shape (n, len(labels))
            Physical units; ``sigma**2 = noise spread**2 + sigma_model**2`` per label.
        """
        n = len(flux)
        rv = (
            np.zeros(n)
            if rv_kms is None
            else np.broadcast_to(np.asarray(rv_kms, dtype=np.float64), (n,))
        )
        spectra, flags = self.preprocess(loglam, flux, ivar, mask, rv, on_bad=on_bad)
        prediction = self.predict(spectra)
        noise = self.noise_sigma(loglam, flux, ivar, mask, rv, n_draws=n_draws, seed=seed)
        model_term = np.array([self.sigma_model.get(label, 0.0) for label in self.labels])
        sigma = np.sqrt(noise**2 + model_term**2)
        prediction[flags != 0], sigma[flags != 0] = np.nan, np.nan
        return prediction, sigma

    @classmethod
    def load(cls, model_dir, *, verify=True):
        """Load a saved model directory (see the module docstring) without TensorFlow.

        Raises
        ------
        ModelDirectoryError
            If a file is missing or corrupt, or the layout version differs; the message names the file.
        """
        from stellar_nb import preprocess

        model_dir = Path(model_dir)
        read_manifest(model_dir, verify=verify)
        description = read_json(model_dir / "model.json")
        metrics = read_json(model_dir / "metrics.json")
        try:
            with np.load(model_dir / "weights.npz") as archive:
                weights = {name: archive[name] for name in archive.files}
        except (OSError, ValueError) as error:
            raise ModelDirectoryError(
                f"{model_dir / 'weights.npz'} is not a readable numpy archive: {error}"
            ) from None
        try:
            processor = preprocess.Preprocessor.from_dict(
                read_json(model_dir / "preprocessor.json")
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ModelDirectoryError(
                f"{model_dir / 'preprocessor.json'} does not describe a preprocessor: {error}"
            ) from None
        calibration = metrics.get("calibration", {})
        simulated = calibration.get("sigma_model", {})
        systematic = calibration.get("sigma_systematic", {})
        sigma_model = {
            label: float(np.hypot(simulated.get(label, 0.0), systematic.get(label, 0.0)))
            for label in {*simulated, *systematic}
        }
        instance = cls(description["architecture"], weights, processor, sigma_model)
        instance.model_dir = model_dir
        instance.metrics = metrics
        return instance


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


def calibrate_systematic(model_dir, residuals, noise_sigma, *, source, coverage=0.6827):
    """Fit the real-star term ``sigma_systematic`` and write it into ``model_dir``'s metrics.

    Parameters
    ----------
    model_dir : str or pathlib.Path
        A model directory; its ``metrics.json`` and manifest are rewritten (atomically).
    residuals, noise_sigma : array_like, shape (n, 3)
        Real stars: prediction minus reference label, and the noise spread
        (:meth:`NumpyModel.noise_sigma`), in :data:`~stellar_nb.schema.LABELS` order.
    source : str
        Which stars and labels, said in the metrics (e.g. "LAMOST DR10 LASP, calibration half").
    coverage : float
        Target fraction within one combined sigma.

    Returns
    -------
    dict
        label -> ``sigma_systematic``: the real-star term in quadrature beyond ``sigma_model``.
    """
    model_dir = Path(model_dir)
    manifest = read_manifest(model_dir)
    metrics = read_json(model_dir / "metrics.json")
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
    write_json(model_dir / "metrics.json", metrics)
    manifest["files"]["metrics.json"] = sha256sum(model_dir / "metrics.json")
    write_json(model_dir / MANIFEST, manifest)
    return systematic


def in_schema_order(model, values):
    """Columns of ``values`` (in ``model.labels`` order) reordered to :data:`stellar_nb.schema.LABELS`."""
    order = [list(getattr(model, "labels", schema.LABELS)).index(label) for label in schema.LABELS]
    return np.asarray(values)[..., order]


def pretrained_dir():
    """Folder of the pretrained model shipped in the package."""
    return Path(str(resources.files("stellar_nb") / "resources" / "pretrained"))


def load_pretrained():
    """The shipped pretrained model as a :class:`NumpyModel` (see ``stellar_nb/resources/pretrained``)."""
    return NumpyModel.load(pretrained_dir())


def _inverse_labels(preprocessor, scaled, labels):
    if tuple(labels) == schema.LABELS:
        return preprocessor.unscale_labels(scaled)
    scaler = preprocessor.label_scaler_
    columns = [schema.LABELS.index(label) for label in labels]
    return np.asarray(scaled, dtype=np.float64) * scaler.scale_[columns] + scaler.center_[columns]
