"""stellar_nb: stellar parameters from SDSS spectra, as notebooks, a dashboard and a CLI.

A session starts from the configuration and the public subpackages::

    import stellar_nb
    from stellar_nb import data, plots, preprocess, simulate

    config = stellar_nb.get_config()
    survey = simulate.resolve_survey(config=config)
    train = data.read_split(survey, "train")

Importing the package is cheap: every name below is imported on first use, and TensorFlow, Keras
or JAX load only with the modules that build or train a model (:mod:`stellar_nb.model`,
:mod:`stellar_nb.train`, :mod:`stellar_nb.tune`, :mod:`stellar_nb.comparison`).

Public subpackages: :mod:`~stellar_nb.data` (survey tables, spectrum files, SDSS DR12 and the
paper's data set), :mod:`~stellar_nb.simulate`, :mod:`~stellar_nb.preprocess`,
:mod:`~stellar_nb.plots`, :mod:`~stellar_nb.dashboard`. Public modules: :mod:`~stellar_nb.config`,
:mod:`~stellar_nb.schema`, :mod:`~stellar_nb.doppler`, :mod:`~stellar_nb.emulator`, :mod:`~stellar_nb.libraries`,
:mod:`~stellar_nb.model`, :mod:`~stellar_nb.model_directory`, :mod:`~stellar_nb.files`,
:mod:`~stellar_nb.train`, :mod:`~stellar_nb.tune`,
:mod:`~stellar_nb.evaluate`, :mod:`~stellar_nb.inference`, :mod:`~stellar_nb.comparison`,
:mod:`~stellar_nb.baselines`, :mod:`~stellar_nb.predict`, :mod:`~stellar_nb.trust`,
:mod:`~stellar_nb.paper`, :mod:`~stellar_nb.reproduce`.
"""

from stellar_nb import lazy

__version__ = "0.1.0"

#: The public modules and subpackages (notebooks import only these; see tests/test_packaging.py).
PUBLIC_MODULES = (
    "baselines",
    "comparison",
    "config",
    "dashboard",
    "data",
    "doppler",
    "emulator",
    "emulator_fit",
    "evaluate",
    "inference",
    "libraries",
    "model",
    "model_directory",
    "paper",
    "plots",
    "predict",
    "preprocess",
    "reproduce",
    "scale",
    "schema",
    "simulate",
    "train",
    "trust",
    "tune",
)

__getattr__, __dir__ = lazy.attach(
    __name__,
    {
        "Config": "config",
        "LABELS": "schema",
        "data_home": "config",
        "get_config": "config",
        **{name: f"{name}:" for name in PUBLIC_MODULES},
    },
)

__all__ = ["LABELS", "PUBLIC_MODULES", "Config", "__version__", "data_home", "get_config"]
