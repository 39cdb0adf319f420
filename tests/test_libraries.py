import sys

import numpy as np
import pytest

from stellar_nb import emulator, emulator_fit, libraries

pytest.importorskip(
    "mangadap", reason="the library spectra need: pip install --no-deps sdss-mangadap"
)


@pytest.fixture(scope="module")
def miles():
    return libraries.load_miles()


def test_vacuum_to_air_matches_the_iau_standard():
    # Morton (2000): H-alpha 6564.614 A in vacuum is 6562.801 A in air
    assert libraries.vacuum_to_air(6564.614) == pytest.approx(6562.801, abs=0.003)
    assert libraries.vacuum_to_air(5000.0) < 5000.0


def test_miles_on_the_sdss_vacuum_grid(miles):
    loglam, flux, labels = miles
    assert flux.shape == (len(labels), len(loglam))
    assert len(labels) == 945  # all MILES stars with the three labels
    np.testing.assert_allclose(np.diff(loglam), 1e-4, atol=1e-9)
    assert 10 ** loglam[0] < 3760 and 7390 < 10 ** loglam[-1] < 7415
    assert np.all(np.isfinite(flux))
    assert set(labels.columns) == {"teff", "feh", "logg", "name"}
    # the strongest line of a G star sits at its vacuum wavelength (Na D 5891.6/5897.6, H-alpha 6564.6)
    sun_like = np.argmin(np.abs(labels["teff"] - 5780) + 1000 * np.abs(labels["logg"] - 4.4))
    wavelength = 10**loglam
    near = (wavelength > 6540) & (wavelength < 6590)
    assert wavelength[near][np.argmin(flux[sun_like, near])] == pytest.approx(6564.6, abs=1.6)


def test_resolution_is_degraded_to_sdss_in_the_red(miles):
    loglam = miles[0]
    matrix, _ = libraries._resampling_matrix(3540.5, 0.9, 4300, 2.5, loglam)
    wavelength = 10**loglam
    sigma_library = 2.5 / 2.3548
    for target, extra in ((6500.0, True), (4000.0, False)):
        row = matrix[np.argmin(np.abs(wavelength - target))].toarray().ravel()
        pixels = np.arange(row.size)
        mean = (row * pixels).sum()
        kernel = 0.9 * np.sqrt((row * (pixels - mean) ** 2).sum())  # Angstrom
        total = np.hypot(kernel, sigma_library)
        sdss = target / libraries.SDSS_RESOLUTION / 2.3548
        if extra:  # MILES is sharper than SDSS here: broadened to R = 2000 (plus the pixel box)
            assert sdss < total < 1.15 * sdss
        else:  # MILES is already coarser than SDSS: only the pixel box is added
            assert total < 1.2 * sigma_library


def test_stelib_pads_become_nan():
    loglam, flux, labels = libraries.load_stelib()
    assert flux.shape == (len(labels), libraries.NPIX) and len(labels) > 150
    red = 10**loglam > 8500
    padded = np.isnan(flux[:, red]).all(axis=1)
    assert 0 < padded.sum() < len(labels) / 2  # some stars stop near 8100 A
    assert np.all(flux[np.isfinite(flux)] > -1e-20)


def test_missing_extra_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "mangadap", None)
    with pytest.raises(ModuleNotFoundError, match="pip install --no-deps sdss-mangadap"):
        libraries.load_miles()


@pytest.mark.slow
def test_fit_emulator_meets_the_realism_goal():
    fitted, report = emulator_fit.fit_emulator()
    assert report["median_rms"] <= 0.03
    assert str(report["degree"]) == min(report["by_degree"], key=report["by_degree"].get)
    assert report["by_degree"]["4"] < report["by_degree"]["2"]
    assert len(report["per_star"]) > 800 and report["per_pixel_rms"].shape == report["loglam"].shape
    shipped = emulator.load_emulator()
    sun = [[5777.0, 0.0, 4.44]]
    np.testing.assert_allclose(fitted.flux(sun), shipped.flux(sun), rtol=1e-4)
