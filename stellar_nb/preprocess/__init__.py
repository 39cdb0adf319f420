"""The paper's preprocessing (section 3), fast: resampling, rest frame, standardisation, labels.

- :mod:`~stellar_nb.preprocess.resampling`: resampling onto the common grid and the rest-frame
  shift;
- :mod:`~stellar_nb.preprocess.spectra`: bad pixels, standardisation and
  :func:`preprocess_spectra`, the whole pipeline for a batch, with unusable rows flagged;
- :mod:`~stellar_nb.preprocess.batch`: its fast path for spectra on SDSS's wavelength lattice;
- :mod:`~stellar_nb.preprocess.spline`: the batched cubic spline behind them;
- :mod:`~stellar_nb.preprocess.labels`: :class:`LabelScaler` (RobustScaler per label);
- :mod:`~stellar_nb.preprocess.augment`: noise augmentation and Planck continua;
- :mod:`~stellar_nb.preprocess.pipeline`: :class:`Preprocessor`, the one entry point, and
  :func:`prepare_split`, which streams a survey split in bounded memory;
- :mod:`~stellar_nb.preprocess.store`: preprocessed folders under a run manifest
  (:func:`~stellar_nb.preprocess.store.preprocess_survey`,
  :func:`~stellar_nb.preprocess.store.load_split`), so a killed run is never loaded as complete;
- :mod:`~stellar_nb.preprocess.naive`: the naive per-spectrum SciPy loop and
  :func:`compare_speed`, which times it against the package (loaded on first use);
- ``stellar-nb preprocess``: :mod:`stellar_nb.commands.preprocess`.
"""

from stellar_nb import lazy
from stellar_nb.preprocess.augment import augment, planck_continuum
from stellar_nb.preprocess.labels import LabelScaler
from stellar_nb.preprocess.pipeline import (
    INPUT_VARIANTS,
    Preprocessor,
    input_variant,
    label_columns,
    prepare_split,
)
from stellar_nb.preprocess.spectra import (
    FATAL_AND_MASK,
    bad_pixels,
    clean_spectrum,
    describe_flags,
    preprocess_spectra,
    resample,
    rest_frame,
    standardise,
)

__getattr__, __dir__ = lazy.attach(
    __name__, {"compare_speed": "naive", "naive_preprocess": "naive"}
)

__all__ = [
    "FATAL_AND_MASK",
    "INPUT_VARIANTS",
    "LabelScaler",
    "Preprocessor",
    "augment",
    "bad_pixels",
    "clean_spectrum",
    "compare_speed",
    "describe_flags",
    "input_variant",
    "label_columns",
    "naive_preprocess",
    "planck_continuum",
    "prepare_split",
    "preprocess_spectra",
    "resample",
    "rest_frame",
    "standardise",
]
