"""Tests of ``stellar-nb bench library-cv`` (stellar_nb.bench.library_cv)."""

import numpy as np
import pytest

from stellar_nb import commands, libraries, model_directory
from stellar_nb.bench import library_cv

pytest.importorskip("mangadap", reason=f"the library spectra: {libraries.EXTRA_HINT}")


def test_folds_are_a_stable_hash_of_the_name():
    folds = library_cv.fold_of(["HD 10307", "HD 10307 ", "HD 19445"], 5)
    assert folds[0] == folds[1] and 0 <= folds.min() and folds.max() < 5
    names = [f"star {i}" for i in range(500)]
    assert np.bincount(library_cv.fold_of(names, 5)).min() > 70  # about even


def test_library_stars_cover_the_grid():
    loglam, flux, labels = library_cv.library_stars()
    assert 60 < len(labels) == len(flux) < 255
    wavelength = 10.0**loglam
    window = (wavelength > 3800) & (wavelength < 8900)
    assert np.isfinite(flux[:, window]).all()
    assert labels.teff.between(4000, 9000).all()


def test_scoring_masks_tellurics_and_predicts():
    loglam, flux, labels = library_cv.library_stars()
    model = model_directory.load()
    table = library_cv.score_library_stars(model, loglam, flux[:6], labels[:6])
    assert len(table) == 6 and np.isfinite(table.pred_teff).all()
    assert (table.sigma_teff > 0).all() and (table.snr == library_cv.SNR).all()


def test_cli_runs_the_folds_and_resumes(quick_config, tmp_path, capsys):
    arguments = ["bench", "library-cv", "--quick", "--folds", "2", "--n", "400", "--epochs", "1",
                 "--data-home", str(quick_config.data_home), "--out", str(tmp_path / "cv.csv")]  # fmt: skip
    assert commands.main(arguments) == 0
    out = capsys.readouterr().out
    assert "STELIB cv" in out and "in 2 folds" in out
    models = sorted((quick_config.data_home / "library-cv").glob("*/model/manifest.json"))
    assert len(models) == 2
    stamps = [path.stat().st_mtime_ns for path in models]
    assert commands.main(arguments) == 0  # the second run reuses both fold models
    assert [path.stat().st_mtime_ns for path in models] == stamps
    import pandas as pd

    table = pd.read_csv(tmp_path / "cv.csv")
    assert set(table.fold) == {0, 1} and len(table) == len(library_cv.library_stars()[2])
