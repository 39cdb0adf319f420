import numpy as np
import pytest
import scipy.interpolate

from stellar_nb import doppler, emulator, schema

SUN = [5777.0, 0.0, 4.44]


@pytest.fixture(scope="module")
def shipped():
    return emulator.load_emulator()


def test_shipped_emulator_is_small_and_on_the_sdss_grid(shipped):
    assert emulator.DEFAULT_PATH.stat().st_size < 3_000_000
    step = np.diff(shipped.loglam)
    np.testing.assert_allclose(step, 1e-4, atol=1e-9)
    # the paper's grid, shifted by +-600 km/s, stays inside
    assert shipped.loglam[0] <= schema.GRID_LOGLAM_MIN - 0.0008
    assert shipped.loglam[-1] >= schema.GRID_LOGLAM_MAX + 0.0008
    assert shipped.metadata["held_out_median_rms"][str(shipped.metadata["degree"])] <= 0.03


def test_flux_is_normalised_and_keeps_the_continuum_shape(shipped):
    flux = shipped.flux([SUN, [4200.0, -0.5, 1.5], [9000.0, -0.5, 4.0]])
    wavelength = 10**shipped.loglam
    window = (wavelength >= 4500) & (wavelength <= 7000)
    np.testing.assert_allclose(flux[:, window].mean(axis=1), 1.0, atol=0.03)
    blue = (wavelength > 4000) & (wavelength < 4400)
    red = (wavelength > 8000) & (wavelength < 8400)
    colour = flux[:, blue].mean(axis=1) / flux[:, red].mean(axis=1)
    assert colour[2] > colour[0] > colour[1]  # hot stars are blue, cool giants red
    # the Sun's H-alpha line (6564.6 A vacuum) is a dip below its neighbours
    halpha = np.argmin(np.abs(wavelength - 6564.6))
    assert flux[0, halpha] < 0.85 * flux[0, halpha - 20 : halpha + 20].max()


def test_metal_lines_deepen_with_metallicity(shipped):
    wavelength = 10**shipped.loglam
    mg = np.argmin(np.abs(wavelength - 5185.0))  # Mg b triplet
    poor, rich = shipped.flux([[5000.0, -2.0, 4.5], [5000.0, 0.2, 4.5]])
    assert rich[mg] / rich[mg - 60 : mg + 60].max() < poor[mg] / poor[mg - 60 : mg + 60].max()


def test_jacobian_matches_finite_differences(shipped):
    labels = np.array([[5500.0, -0.8, 4.0], [4600.0, -1.5, 2.0]])
    jacobian = shipped.jacobian(labels)
    assert jacobian.shape == (2, len(shipped.loglam), 3)
    steps = np.array([5.0, 0.005, 0.005])
    for i in range(3):
        up, down = labels.copy(), labels.copy()
        up[:, i] += steps[i]
        down[:, i] -= steps[i]
        numeric = (shipped.flux(up).astype(float) - shipped.flux(down)) / (2 * steps[i])
        np.testing.assert_allclose(
            jacobian[:, :, i], numeric, rtol=0.02, atol=2e-3 * np.abs(numeric).max()
        )


def test_in_bounds_needs_the_box_and_a_nearby_library_star(shipped):
    inside = shipped.in_bounds(
        [SUN, [4300.0, -0.3, 1.8], [20000.0, 0.0, 4.0], [5000.0, -5.0, 4.5], [9000.0, 0.5, 0.5]]
    )
    np.testing.assert_array_equal(inside, [True, True, False, False, False])
    with pytest.raises(ValueError, match="outside the emulator"):
        shipped.check_labels([[9000.0, 0.5, 0.5]])
    with pytest.raises(ValueError, match=r"\(n, 3\)"):
        shipped.flux([[5000.0, 0.0]])


def test_save_and_load_round_trip(shipped, tmp_path):
    path = shipped.save(tmp_path / "copy.npz")
    again = emulator.load_emulator(path)
    np.testing.assert_array_equal(again.flux([SUN]), shipped.flux([SUN]))
    assert again.bounds == shipped.bounds
    with pytest.raises(FileNotFoundError, match="refit-emulator"):
        emulator.load_emulator(tmp_path / "missing.npz")


def test_fit_to_observed_recovers_scale_shift_and_calibration(shipped):
    loglam = np.round(3.5800 + 1e-4 * np.arange(3800), 4)
    rv = 123.0
    rest = shipped.flux([SUN])[0].astype(float)
    spline = scipy.interpolate.CubicSpline(shipped.loglam, rest)
    shifted = spline(loglam - doppler.loglam_shift(rv))
    x = np.linspace(-1, 1, loglam.size)
    truth = 42.0 * (1 + 0.1 * x - 0.05 * x**2) * shifted
    ivar = np.full(loglam.size, 4.0)
    model = emulator.fit_to_observed(shipped, SUN, loglam, truth, ivar, rv)
    np.testing.assert_allclose(model, truth, rtol=1e-6)
    # the wrong velocity leaves line residuals
    wrong = emulator.fit_to_observed(shipped, SUN, loglam, truth, ivar, rv + 150.0)
    assert np.std(wrong / truth - 1) > 10 * np.std(model / truth - 1)
    with pytest.raises(ValueError, match="usable pixels"):
        emulator.fit_to_observed(shipped, SUN, loglam, truth, np.zeros_like(ivar), rv)


def test_cramer_rao_bound_scales_with_noise(shipped):
    loglam = np.round(3.5800 + 1e-4 * np.arange(3800), 4)
    ivar = np.full(loglam.size, 2500.0)  # S/N 50 on a normalised spectrum
    sigma = emulator.cramer_rao_bound(shipped, [SUN, SUN], [loglam, loglam], [ivar, 4 * ivar])
    assert sigma.shape == (2, 3)
    np.testing.assert_allclose(sigma[1], sigma[0] / 2, rtol=1e-6)
    assert 1.0 < sigma[0, 0] < 100.0  # K
    assert 0.001 < sigma[0, 1] < 0.2 and 0.001 < sigma[0, 2] < 0.3  # dex
    # marginalising the calibration polynomial can only loosen the bound
    fixed = emulator.cramer_rao_bound(shipped, [SUN], [loglam], [ivar], degree=0)
    assert np.all(sigma[0] >= fixed[0] * 0.999)
