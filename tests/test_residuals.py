"""Tests of stellar_nb.simulate.residuals: held-out library residuals as structured noise."""

import numpy as np
import pytest

from stellar_nb import emulator as emulator_module
from stellar_nb import emulator_fit, libraries
from stellar_nb.simulate import residuals


@pytest.fixture(scope="module")
def bank():
    pytest.importorskip("mangadap", reason=f"the library spectra: {libraries.EXTRA_HINT}")
    return residuals.fit_residual_bank()


def test_the_bank_covers_the_grid_with_real_stars(bank):
    shipped = emulator_module.load_emulator()
    np.testing.assert_allclose(bank.loglam, shipped.loglam)
    assert bank.blue.shape == (len(bank.blue_labels), shipped.loglam.size)
    assert len(bank.blue_labels) > 800 and len(bank.red_labels) > 150
    wavelength = 10.0**bank.loglam
    rms = bank.pixel_rms()
    middle = (wavelength > 4500) & (wavelength < 7000)
    # real stars scatter around the mean spectrum by about 1-2 % per pixel in the optical
    assert 0.005 < np.median(rms[middle]) < 0.03
    # more in the blue (Ca H&K, CN, low flux) and in the telluric A band
    blue, a_band = wavelength < 4000, (wavelength > 7594) & (wavelength < 7650)
    assert np.median(rms[blue]) > 2 * np.median(rms[middle])
    assert np.median(rms[a_band]) > 3 * np.median(rms[middle])
    # detrended: no smooth offset left in a star's residual
    finite = np.isfinite(bank.blue[0])
    assert abs(np.mean(bank.blue[0][finite])) < 0.01


def test_draws_come_from_library_stars_of_similar_labels(bank):
    rng = np.random.default_rng(1)
    labels = np.array([[5800.0, -0.2, 4.3], [4600.0, -1.0, 2.2], [8000.0, -0.3, 4.0]] * 50)
    indices = bank.draw(labels, rng)
    assert indices.shape == (150, 2)
    distance = np.abs(bank.blue_labels[indices[:, 0]] - labels) / np.array([300.0, 0.4, 0.5])
    assert np.median(distance.max(axis=1)) < 2.0
    assert len(np.unique(indices[:50, 0])) > 1  # not always the same neighbour
    residual = bank.residual(indices)
    assert residual.shape == (150, bank.loglam.size) and np.all(np.isfinite(residual))
    # the blend: blue stars' residuals below 6980 A, red stars' above 7150 A
    wavelength = 10.0**bank.loglam
    below, above = wavelength < 6900, wavelength > 7200
    blue = np.nan_to_num(bank.blue[indices[:, 0]])
    red = np.nan_to_num(bank.red[indices[:, 1]])
    np.testing.assert_allclose(residual[:, below], blue[:, below], atol=1e-6)
    np.testing.assert_allclose(residual[:, above], red[:, above], atol=1e-6)


def test_bank_round_trip_and_the_shipped_error_model_is_what_the_code_makes(bank, tmp_path):
    again = residuals.load_residual_bank(bank.save(tmp_path / "residuals.npz"))
    np.testing.assert_allclose(np.nan_to_num(again.blue), np.nan_to_num(bank.blue), atol=2e-3)
    np.testing.assert_allclose(again.red_labels, bank.red_labels)
    shipped = residuals.load_emulator_error()
    np.testing.assert_allclose(shipped.loglam, bank.loglam)
    np.testing.assert_allclose(shipped.pixel_rms(), bank.pixel_rms(), rtol=1e-5, atol=1e-7)
    saved = residuals.load_emulator_error(
        residuals.EmulatorError.from_bank(bank).save(tmp_path / "error.npz")
    )
    np.testing.assert_allclose(saved.pixel_rms(), bank.pixel_rms(), rtol=1e-6)


def test_held_out_residuals_are_larger_than_in_sample_ones():
    pytest.importorskip("mangadap", reason=f"the library spectra: {libraries.EXTRA_HINT}")
    rng = np.random.default_rng(0)
    features = rng.normal(size=(200, 6))
    targets = features @ rng.normal(size=(6, 30)) + 0.1 * rng.normal(size=(200, 30))
    held_out = emulator_fit.held_out_predictions(emulator_fit.ridge, features, targets, 5, 0)
    in_sample = features @ emulator_fit.ridge(features, targets)
    assert np.std(targets - held_out) > np.std(targets - in_sample)
    assert np.std(targets - held_out) == pytest.approx(0.1, rel=0.2)


def test_missing_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="refit-emulator"):
        residuals.load_emulator_error(tmp_path / "absent.npz")
    with pytest.raises(FileNotFoundError, match="absent"):
        residuals.load_residual_bank(tmp_path / "absent.npz")
