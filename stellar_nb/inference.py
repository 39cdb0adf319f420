"""Light inference: a trained model as a plain numpy forward pass, with calibrated uncertainties.

:class:`NumpyModel` evaluates a saved model directory (:mod:`stellar_nb.model_directory`) and
never imports TensorFlow, Keras or JAX: the dashboard kernel stays light.
Uncertainties (:meth:`NumpyModel.predict_with_uncertainty`) combine two terms in quadrature: the
spread of predictions over noise realisations drawn from each spectrum's own ``ivar`` (so a noisy
spectrum gets a wider error bar, star by star), and a per-label model-error term fitted on
simulated and real stars (:mod:`stellar_nb.calibration`). Noise resampling was
chosen over MC dropout (the paper model has dropout only in its one block, and its spread is not
tied to the data's noise) and over an ensemble (several trainings and several shipped models).
"""

from pathlib import Path

import numpy as np
import scipy.special

from stellar_nb import calibration, model_directory, schema

__all__ = [
    "NumpyModel",
    "check_architecture",
    "in_schema_order",
    "weight_problems",
    "weight_shapes",
]


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
        ``{"LAYER/INDEX": array}`` from :func:`stellar_nb.model_directory.export_weights`.
    preprocessor : stellar_nb.preprocess.Preprocessor, optional
        Needed to report physical units and to preprocess raw spectra.
    sigma_model : mapping, optional
        Model-error term per label, physical units (from ``metrics.json``).
    epsilon : float
        LayerNorm epsilon (Keras's default).

    Raises
    ------
    stellar_nb.model_directory.ModelDirectoryError
        If the architecture is malformed or ``weights`` lack a layer, hold an unexpected one or
        one of the wrong shape (:func:`weight_problems`).
    """

    def __init__(self, architecture, weights, preprocessor=None, sigma_model=None, epsilon=1e-3):
        try:
            check_architecture(architecture)
        except ValueError as error:
            raise model_directory.ModelDirectoryError(f"invalid architecture: {error}") from None
        problems = weight_problems(architecture, weights)
        if problems:
            raise model_directory.ModelDirectoryError(
                "weights do not match the architecture: " + "; ".join(problems)
            )
        self.architecture = dict(architecture)
        self.labels = tuple(self.architecture["labels"])
        self.weights = {
            name: np.asarray(value, dtype=np.float32) for name, value in weights.items()
        }
        self.preprocessor = preprocessor
        self.sigma_model = dict(sigma_model or {})
        self.epsilon = np.float32(epsilon)
        self.model_dir = None

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
        rv = _velocities(rv_kms, len(flux))
        spectra, flags = self.preprocess(loglam, flux, ivar, mask, rv, on_bad=on_bad)
        prediction = self.predict(spectra)
        sigma = self.sigma(loglam, flux, ivar, mask, rv, n_draws=n_draws, seed=seed)
        prediction[flags != 0], sigma[flags != 0] = np.nan, np.nan
        return prediction, sigma

    def sigma(self, loglam, flux, ivar, mask=None, rv_kms=None, *, n_draws=32, seed=0):
        """Calibrated per-star sigma, for callers that already hold the preprocessed spectra.

        ``sigma**2 = noise spread**2 + sigma_model**2`` per label, the spread from
        :meth:`noise_sigma`; arguments as for :meth:`predict_with_uncertainty`.

        Returns
        -------
        numpy.ndarray, shape (n, len(labels))
            Physical units.
        """
        rv = _velocities(rv_kms, len(flux))
        noise = self.noise_sigma(loglam, flux, ivar, mask, rv, n_draws=n_draws, seed=seed)
        model_term = np.array([self.sigma_model.get(label, 0.0) for label in self.labels])
        return np.sqrt(noise**2 + model_term**2)

    @classmethod
    def load(cls, model_dir, *, verify=True):
        """Load a saved model directory (:mod:`stellar_nb.model_directory`) without TensorFlow.

        Raises
        ------
        stellar_nb.model_directory.ModelDirectoryError
            If a file is missing or corrupt, or the layout version differs; the message names the file.
        """
        contents = model_directory.read(model_dir, verify=verify)
        metrics = contents["metrics"]
        instance = cls(
            contents["description"]["architecture"],
            contents["weights"],
            contents["preprocessor"],
            calibration.model_term(metrics),
        )
        instance.model_dir = Path(model_dir)
        instance.metrics = metrics
        return instance


def _positive_int(value):
    return isinstance(value, int | np.integer) and not isinstance(value, bool) and value > 0


def check_architecture(architecture):
    """Check that ``architecture`` (``model.json``'s) describes a network :class:`NumpyModel` runs.

    Parameters
    ----------
    architecture : dict
        Arguments of :func:`stellar_nb.model.build_model`.

    Raises
    ------
    ValueError
        Naming the first key that is missing or of the wrong type.
    """
    if not isinstance(architecture, dict):
        raise ValueError(f"architecture must be an object, got {type(architecture).__name__}")
    missing = [
        key
        for key in ("labels", "input_size", "stem_units", "block_units", "head_units")
        if key not in architecture
    ]
    if missing:
        raise ValueError(f"architecture has no {', '.join(repr(key) for key in missing)}")
    labels = architecture["labels"]
    if (
        not isinstance(labels, list | tuple)
        or not labels
        or len(set(labels)) != len(labels)
        or not set(labels) <= set(schema.LABELS)
    ):
        raise ValueError(
            f"'labels' must be a non-empty list of distinct names from {list(schema.LABELS)}, "
            f"got {labels!r}"
        )
    for key in ("input_size", "stem_units"):
        if not _positive_int(architecture[key]):
            raise ValueError(f"{key!r} must be a positive integer, got {architecture[key]!r}")
    blocks = architecture["block_units"]
    if not isinstance(blocks, list | tuple) or not all(_positive_int(u) for u in blocks):
        raise ValueError(f"'block_units' must be a list of positive integers, got {blocks!r}")
    heads = architecture["head_units"]
    if not isinstance(heads, dict) or set(heads) != set(labels):
        raise ValueError(
            f"'head_units' must have one entry per label {list(labels)}, got {heads!r}"
        )
    for label, units in heads.items():
        if not isinstance(units, list | tuple) or not all(_positive_int(u) for u in units):
            raise ValueError(
                f"'head_units'[{label!r}] must be a list of positive integers, got {units!r}"
            )
    for key in ("layer_norm", "skip", "single_task"):
        if not isinstance(architecture.get(key, False), bool):
            raise ValueError(f"{key!r} must be true or false, got {architecture[key]!r}")


def weight_shapes(architecture):
    """The weight arrays :class:`NumpyModel` reads, ``{"LAYER/INDEX": shape}``, for ``architecture``.

    The names are those of :func:`stellar_nb.model_directory.export_weights` on the network
    :func:`stellar_nb.model.build_model` builds: dense layers hold a kernel (``/0``) and a bias
    (``/1``), LayerNorms a scale and an offset.
    """
    shapes = {}

    def dense(name, n_in, n_out):
        shapes[f"{name}/0"], shapes[f"{name}/1"] = (n_in, n_out), (n_out,)

    def norm(name, width):
        if architecture.get("layer_norm", True):
            shapes[f"{name}/0"], shapes[f"{name}/1"] = (width,), (width,)

    def trunk(prefix):
        width = int(architecture["stem_units"])
        dense(f"{prefix}stem_dense", int(architecture["input_size"]), width)
        norm(f"{prefix}stem_norm", width)
        for b, units in enumerate(architecture["block_units"], start=1):
            name, units = f"{prefix}block{b}", int(units)
            norm(f"{name}_norm1", width)
            dense(f"{name}_dense1", width, units)
            norm(f"{name}_norm2", units)
            dense(f"{name}_dense2", units, units)
            if architecture.get("skip", True) and units != width:
                norm(f"{name}_shortcut_norm", width)
                dense(f"{name}_shortcut_dense", width, units)
            width = units
        norm(f"{prefix}final_norm", width)
        return width

    shared = None if architecture.get("single_task") else trunk("")
    for label in architecture["labels"]:
        width = trunk(f"{label}_") if shared is None else shared
        for position, units in enumerate(architecture["head_units"][label], start=1):
            dense(f"{label}_dense{position}", width, int(units))
            width = int(units)
        dense(label, width, 1)
    return shapes


def weight_problems(architecture, weights):
    """What is wrong with ``weights`` for ``architecture``, as a list of sentences (empty: fine)."""
    expected = weight_shapes(architecture)
    problems = []
    missing = [name for name in expected if name not in weights]
    if missing:
        problems.append(f"missing {len(missing)} array(s): {', '.join(missing[:6])}")
    unexpected = sorted(set(weights) - set(expected))
    if unexpected:
        problems.append(f"unexpected array(s): {', '.join(unexpected[:6])}")
    for name, shape in expected.items():
        if name not in weights:
            continue
        value = np.asarray(weights[name])
        if value.shape != shape:
            problems.append(f"{name} has shape {value.shape}, the architecture needs {shape}")
        elif not np.issubdtype(value.dtype, np.floating):
            problems.append(f"{name} holds {value.dtype}, not floating-point numbers")
        elif not np.all(np.isfinite(value)):
            problems.append(f"{name} holds NaN or infinite values")
    return problems


def _velocities(rv_kms, n):
    """Radial velocities (km/s) of ``n`` spectra: 0 when not given, a scalar broadcast."""
    if rv_kms is None:
        return np.zeros(n)
    return np.broadcast_to(np.asarray(rv_kms, dtype=np.float64), (n,))


def in_schema_order(model, values):
    """Columns of ``values`` (in ``model.labels`` order) reordered to :data:`stellar_nb.schema.LABELS`."""
    order = [list(getattr(model, "labels", schema.LABELS)).index(label) for label in schema.LABELS]
    return np.asarray(values)[..., order]


def _inverse_labels(preprocessor, scaled, labels):
    if tuple(labels) == schema.LABELS:
        return preprocessor.unscale_labels(scaled)
    scaler = preprocessor.label_scaler_
    columns = [schema.LABELS.index(label) for label in labels]
    return np.asarray(scaled, dtype=np.float64) * scaler.scale_[columns] + scaler.center_[columns]
