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
- :mod:`~stellar_nb.preprocess.reference`: the naive per-spectrum SciPy loop, for tests and the
  benchmark;
- ``stellar-nb preprocess``: :mod:`~stellar_nb.preprocess.command`.
"""

from stellar_nb.preprocess.augment import augment, planck_continuum
from stellar_nb.preprocess.command import configure_parser, run
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
    FLAGS,
    MAX_ABS_RV_KMS,
    bad_pixels,
    check_grid,
    clean_spectrum,
    describe_flags,
    preprocess_spectra,
    resample,
    rest_frame,
    standardise,
)
from stellar_nb.preprocess.spline import doppler_loglam_shift

__all__ = [
    "FATAL_AND_MASK",
    "FLAGS",
    "INPUT_VARIANTS",
    "MAX_ABS_RV_KMS",
    "LabelScaler",
    "Preprocessor",
    "augment",
    "bad_pixels",
    "check_grid",
    "clean_spectrum",
    "configure_parser",
    "describe_flags",
    "doppler_loglam_shift",
    "input_variant",
    "label_columns",
    "planck_continuum",
    "prepare_split",
    "preprocess_spectra",
    "resample",
    "rest_frame",
    "run",
    "standardise",
]
