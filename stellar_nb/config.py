"""One configuration object for the package, the notebooks and the command line.

Quick mode (``STELLAR_NB_QUICK=1`` or ``--quick``) shrinks data, epochs and trials so that every
notebook and command runs in CI in minutes; full mode reproduces the paper's settings.

The data home is ``$STELLAR_NB_DATA`` when set, else ``~/.cache/stellar_nb``. Simulated surveys,
downloads, trained models and tuner trials all live below it.

This is the only module that reads environment variables for a setting: the data home
(:func:`data_home`), quick mode (:func:`is_quick`), the service URLs (:func:`service_url`) and the
model directory (:func:`model_dir`) and the Keras backend (:func:`keras_backend`); the survey
folder is resolved by :func:`stellar_nb.simulate.resolve_survey` from
:func:`survey_from_environment`.
"""

import dataclasses
import importlib.util
import os
import sys
from pathlib import Path

__all__ = [
    "SERVICE_URLS",
    "SERVICE_VARIABLES",
    "Config",
    "data_home",
    "get_config",
    "is_quick",
    "keras_backend",
    "model_dir",
    "service_url",
    "survey_from_environment",
    "use_keras_backend",
]

_TRUE = {"1", "true", "yes", "on"}

#: Public default of each web service the package talks to.
SERVICE_URLS = {
    "skyserver": "https://skyserver.sdss.org/dr12/SkyserverWS/SearchTools/SqlSearch",
    "sas": "https://data.sdss.org/sas/dr12",
    "huggingface": "https://huggingface.co",
}
#: Environment variable that overrides each service's URL.
SERVICE_VARIABLES = {
    "skyserver": "STELLAR_NB_SKYSERVER_URL",
    "sas": "STELLAR_NB_SAS_URL",
    "huggingface": "STELLAR_NB_HF_URL",
}


def is_quick():
    """Whether ``STELLAR_NB_QUICK`` asks for quick mode."""
    return os.environ.get("STELLAR_NB_QUICK", "").strip().lower() in _TRUE


def data_home(path=None):
    """Return the data home: ``path``, else ``$STELLAR_NB_DATA``, else ``~/.cache/stellar_nb``.

    The folder is created if it does not exist.
    """
    if path is None:
        path = os.environ.get("STELLAR_NB_DATA") or Path.home() / ".cache" / "stellar_nb"
    path = Path(path).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def service_url(name, url=None):
    """Return the base URL of a web service: ``url``, else its environment variable, else the default.

    Parameters
    ----------
    name : {"skyserver", "sas", "huggingface"}
        The SDSS SkyServer SqlSearch endpoint, the SDSS Science Archive Server or the Hugging Face
        Hub; overridden by ``$STELLAR_NB_SKYSERVER_URL``, ``$STELLAR_NB_SAS_URL`` and
        ``$STELLAR_NB_HF_URL``.
    url : str, optional
        An explicit URL, returned as given.

    Returns
    -------
    str
        The URL (a trailing slash is kept as given; callers strip it where they join paths).

    Raises
    ------
    ValueError
        If ``name`` is not one of the services.
    """
    if name not in SERVICE_URLS:
        raise ValueError(f"unknown service {name!r}; known: {sorted(SERVICE_URLS)}")
    return url or os.environ.get(SERVICE_VARIABLES[name]) or SERVICE_URLS[name]


def model_dir(path=None):
    """Return the saved model directory to use: ``path``, else ``$STELLAR_NB_MODEL_DIR``, else None.

    Parameters
    ----------
    path : str or pathlib.Path, optional
        An explicit model directory.

    Returns
    -------
    pathlib.Path or None
        None means the pretrained model shipped in the package.
    """
    path = path or os.environ.get("STELLAR_NB_MODEL_DIR")
    return Path(path).expanduser() if path else None


def survey_from_environment():
    """Return ``$STELLAR_NB_SURVEY_DIR`` as a path, or None when it is unset.

    Use :func:`stellar_nb.simulate.resolve_survey`, which falls back to the default simulated survey.
    """
    path = os.environ.get("STELLAR_NB_SURVEY_DIR")
    return Path(path).expanduser() if path else None


def keras_backend():
    """Return the Keras backend the training commands use: ``$KERAS_BACKEND``, else the fastest.

    The fastest installed one is JAX (about twice TensorFlow's speed here: 1.25 s against 2.51 s
    per epoch of the paper model on 90,000 spectra, ``stellar-nb bench train``); it is an optional
    extra (``pip install stellar_nb[jax]``), so TensorFlow is the default where JAX is missing
    (Binder). JAX is looked up, not imported.

    Returns
    -------
    str
        ``"jax"``, ``"tensorflow"`` or whatever ``$KERAS_BACKEND`` names.
    """
    chosen = os.environ.get("KERAS_BACKEND", "").strip()
    if chosen:
        return chosen
    return "jax" if importlib.util.find_spec("jax") is not None else "tensorflow"


def use_keras_backend():
    """Set ``$KERAS_BACKEND`` to :func:`keras_backend` unless Keras is already imported.

    Keras fixes its backend when it is first imported, so the commands that train (``train``,
    ``tune``, ``reproduce``) call this before they import it.

    Returns
    -------
    str
        The backend Keras uses (or will use when it is imported).
    """
    keras = sys.modules.get("keras")
    if keras is not None:
        return keras.backend.backend()
    backend = keras_backend()
    os.environ["KERAS_BACKEND"] = backend
    return backend


@dataclasses.dataclass(frozen=True)
class Config:
    """Settings of one run. Build it with :func:`get_config`; change it with ``dataclasses.replace``.

    Parameters
    ----------
    quick : bool
        Quick mode: small data, few epochs and trials.
    seed : int
        Seed for the survey simulation, the split, augmentation and weight initialisation.
    data_home : pathlib.Path
        Where data, models and tuner trials are stored.
    n_train, n_validation, n_test : int
        Split sizes (the paper: 30,000 / 5,000 / 15,000).
    epochs : int
        Training epochs (the paper: 30).
    batch_size : int
        Mini-batch size (the paper: 256).
    trials : int
        Keras Tuner trials (the paper: 100).
    tune_epochs : int
        Epochs per tuner trial.
    evaluation_stars : int
        Test stars for the Cramer-Rao floor and the calibration check of an evaluation.
    """

    quick: bool = False
    seed: int = 0
    data_home: Path = dataclasses.field(default_factory=data_home)
    n_train: int = 30_000
    n_validation: int = 5_000
    n_test: int = 15_000
    epochs: int = 30
    batch_size: int = 256
    trials: int = 100
    tune_epochs: int = 10
    evaluation_stars: int = 1000

    @property
    def n_total(self):
        """Number of spectra over the three splits."""
        return self.n_train + self.n_validation + self.n_test

    @property
    def survey_dir(self):
        """Folder of the default simulated survey for this mode and seed."""
        name = f"survey-{'quick' if self.quick else 'full'}-seed{self.seed}"
        return self.data_home / "simulated" / name

    @property
    def models_dir(self):
        """Folder where trained models are written."""
        return self.data_home / "models"

    @property
    def tuner_dir(self):
        """Folder where Keras Tuner keeps its trials."""
        return self.data_home / "tuner"

    @property
    def preprocessed_dir(self):
        """Folder where ``stellar-nb preprocess`` writes preprocessed splits."""
        return self.data_home / "preprocessed"

    @property
    def downloads_dir(self):
        """Folder where ``stellar-nb fetch sdss`` writes downloaded SDSS DR12 spectra."""
        return self.data_home / "sdss_dr12"

    @property
    def paper_dataset_dir(self):
        """Folder where ``stellar-nb fetch paper-dataset`` writes the paper's Hugging Face data."""
        return self.data_home / "benchmark"

    @property
    def reproduction_dir(self):
        """Folder where ``stellar-nb reproduce`` writes its run for this mode and seed."""
        return (
            self.data_home / "reproduction" / f"{'quick' if self.quick else 'full'}-seed{self.seed}"
        )

    @property
    def dashboard_cache_dir(self):
        """Folder where the dashboard keeps its survey cache and its notebook copy."""
        return self.data_home / "dashboard"


QUICK_SETTINGS = {
    "n_train": 1_800,
    "n_validation": 300,
    "n_test": 900,
    "epochs": 4,
    "trials": 3,
    "tune_epochs": 2,
    "evaluation_stars": 200,
}


def get_config(quick=None, **overrides):
    """Return the configuration for quick or full mode, with ``overrides`` applied.

    Parameters
    ----------
    quick : bool, optional
        Quick mode; defaults to ``STELLAR_NB_QUICK``.
    **overrides
        Any :class:`Config` field, e.g. ``seed=1`` or ``data_home="/tmp/x"``.

    Raises
    ------
    TypeError
        If an override names no field of :class:`Config`.
    ValueError
        If a size, epoch or trial count is not positive.
    """
    quick = is_quick() if quick is None else bool(quick)
    fields = {field.name for field in dataclasses.fields(Config)}
    unknown = set(overrides) - fields
    if unknown:
        raise TypeError(
            f"unknown configuration field(s) {sorted(unknown)}; allowed: {sorted(fields)}"
        )
    settings = dict(QUICK_SETTINGS) if quick else {}
    settings.update(overrides)
    if "data_home" in settings:
        settings["data_home"] = data_home(settings["data_home"])
    config = Config(quick=quick, **settings)
    for name in (
        "n_train",
        "n_validation",
        "n_test",
        "epochs",
        "batch_size",
        "trials",
        "tune_epochs",
        "evaluation_stars",
    ):
        if getattr(config, name) <= 0:
            raise ValueError(f"{name} must be positive, got {getattr(config, name)}")
    return config
