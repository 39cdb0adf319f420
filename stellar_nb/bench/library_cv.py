"""``stellar-nb bench library-cv``: real library stars scored by models whose emulator never saw them.

The simulator is built from MILES and STELIB, so a library star can only judge a model honestly if
it was left out of everything behind that model. For each of ``--folds`` folds (stars assigned by
a hash of their name, so a star in both libraries falls in one fold):

1. fit the emulator without the fold's stars (:func:`stellar_nb.emulator_fit.fit_emulator`);
2. simulate a survey of ``--n`` spectra from that emulator (:func:`stellar_nb.simulate.simulate_survey`);
3. train the paper model on it for ``--epochs`` (:func:`stellar_nb.train.train`, the same loop as
   ``stellar-nb train``), with the chosen ``--input`` variant;
4. score the fold's STELIB stars of :data:`~stellar_nb.bench.real_stars.TEFF_RANGE` whose spectra
   cover 3800-8900 A: observed on the library grid at rest (RV 0), with Gaussian noise of S/N
   :data:`SNR` added and STELIB's uncorrected telluric bands masked (ivar = 0).

MILES stars are left out of the scoring: they stop at 7410 A, and the paper's grid runs to 9268 A.
The figures are printed with :func:`stellar_nb.bench.real_stars.summarise` (uncertainty columns are
the noise spread only: these models have no real-star term). Each fold's survey and model are kept
under ``DATA_HOME/library-cv`` so an interrupted run resumes; ``--quick`` shrinks everything.
"""

import dataclasses
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from stellar_nb import schema

__all__ = ["SNR", "cross_validate", "fold_of", "library_stars", "score_library_stars"]

#: S/N per pixel of the noise added to library spectra before scoring.
SNR = 50.0
_COVERAGE = (3800.0, 8900.0)


def fold_of(names, folds):
    """Fold (0 .. folds - 1) of each star name: CRC-32 of the name, modulo ``folds``."""
    return np.array([zlib.crc32(str(name).strip().encode()) % folds for name in names])


def library_stars():
    """STELIB stars usable for scoring: labels in the Teff range, spectra covering 3800-8900 A.

    Returns
    -------
    loglam : numpy.ndarray
    flux : numpy.ndarray
        (n, npix), NaN where STELIB has no data.
    labels : pandas.DataFrame
        ``teff``, ``feh``, ``logg``, ``name``.
    """
    from stellar_nb import libraries
    from stellar_nb.bench import real_stars

    loglam, flux, labels = libraries.load_stelib()
    wavelength = 10.0**loglam
    window = (wavelength > _COVERAGE[0]) & (wavelength < _COVERAGE[1])
    teff = labels["teff"].to_numpy()
    keep = np.isfinite(flux[:, window]).all(axis=1)
    keep &= (teff >= real_stars.TEFF_RANGE[0]) & (teff <= real_stars.TEFF_RANGE[1])
    return loglam, flux[keep], labels[keep].reset_index(drop=True)


def score_library_stars(model, loglam, flux, labels, *, seed=0):
    """Predict library stars observed at S/N :data:`SNR` with tellurics masked; per-star table."""
    from stellar_nb import inference, libraries
    from stellar_nb.bench import real_stars

    rng = np.random.default_rng(seed)
    wavelength = 10.0**loglam
    telluric = np.zeros(wavelength.size, bool)
    for lo, hi in libraries.TELLURIC_BANDS:
        telluric |= (wavelength >= lo) & (wavelength <= hi)
    fluxes, ivars = [], []
    for row in flux:
        good = np.isfinite(row) & ~telluric
        scale = np.nanmedian(row[good])
        values = np.where(np.isfinite(row), row / scale, 0.0)
        sigma = np.abs(values) / SNR + 1e-3
        ivar = np.where(good, 1.0 / sigma**2, 0.0)
        fluxes.append(values + np.where(good, sigma * rng.standard_normal(values.size), 0.0))
        ivars.append(ivar)
    count = len(fluxes)
    prediction, sigma = model.predict_with_uncertainty(
        [loglam] * count, fluxes, ivars, None, np.zeros(count), n_draws=8, seed=seed
    )
    reference = labels[list(schema.LABELS)].to_numpy(float)
    table = real_stars.star_table(
        reference,
        inference.in_schema_order(model, prediction),
        inference.in_schema_order(model, sigma),
        SNR,
    )
    table.insert(0, "name", labels["name"].to_numpy())
    table["flagged"] = False
    return table


def cross_validate(config, *, folds=5, n=20_000, epochs=15, input_variant="paper", seed=0):
    """Run the folds (see the module docstring); returns the per-star table of all folds."""
    from stellar_nb import emulator_fit, inference, simulate, train

    loglam, flux, labels = library_stars()
    fold = fold_of(labels["name"], folds)
    home = Path(config.data_home) / "library-cv"
    home.mkdir(parents=True, exist_ok=True)
    tables = []
    for k in range(folds):
        held_out = labels["name"][fold == k]
        if held_out.empty:
            continue
        folder = home / f"{input_variant}-n{n}-e{epochs}-fold{k}of{folds}"
        model_dir = folder / "model"
        if not (model_dir / "manifest.json").is_file():
            emulator, _ = emulator_fit.fit_emulator(exclude=set(held_out), seed=seed)
            survey = folder / "survey"
            if not simulate.is_complete(survey, n=n, seed=seed):
                folder.mkdir(parents=True, exist_ok=True)
                simulate.simulate_survey(n, seed, survey, emulator=emulator)
            train.train(
                dataclasses.replace(config, epochs=epochs),
                survey,
                model_dir,
                progress=False,
                input_variant=input_variant,
            )
        model = inference.NumpyModel.load(model_dir)
        rows = fold == k
        table = score_library_stars(model, loglam, flux[rows], labels[rows], seed=seed)
        table.insert(0, "fold", k)
        tables.append(table)
    return pd.concat(tables, ignore_index=True)
