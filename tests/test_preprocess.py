"""Tests of stellar_nb.preprocess: values against the naive SciPy loop, bad input, scalers, I/O."""

import json

import numpy as np
import pytest
import scipy.interpolate

from stellar_nb import doppler, schema
from stellar_nb import preprocess as pp
from stellar_nb.preprocess import naive, spectra, spline

GRID = schema.grid_loglam()


def make_spectra(count, seed=0, *, bad_fraction=0.02, float32=True):
    """SDSS-like spectra: 1e-4 log-lambda steps, varying coverage, bad pixels, RVs."""
    rng = np.random.default_rng(seed)
    loglams, fluxes, ivars, masks = [], [], [], []
    for _ in range(count):
        start = 3.5780 + 1e-4 * rng.integers(0, 40)
        length = int(rng.integers(3700, 3900))
        loglam = start + 1e-4 * np.arange(length)
        level = rng.uniform(10, 300)
        flux = (
            level
            * (1 + 0.3 * np.sin(40 * loglam))
            * (1 - 0.4 * np.exp(-0.5 * ((loglam - 3.8172) / 3e-4) ** 2))
        )
        flux += rng.normal(0, 0.02 * level, length)
        ivar = np.full(length, 1.0)
        mask = np.zeros(length, np.int32)
        bad = rng.random(length) < bad_fraction
        ivar[bad] = 0.0
        flux[bad] = rng.choice([0.0, 1e4], size=bad.sum())
        loglams.append(loglam.astype(np.float32) if float32 else loglam)
        fluxes.append(flux.astype(np.float32))
        ivars.append(ivar.astype(np.float32))
        masks.append(mask)
    return loglams, fluxes, ivars, masks, rng.uniform(-400, 400, count)


@pytest.mark.parametrize("length", [4, 5, 7, 33, 40, 100, 4000])
def test_spline_equals_scipy_not_a_knot(length):
    rng = np.random.default_rng(length)
    width = spline.padded_width(length)
    values = np.zeros((3, width))
    values[:, :length] = rng.normal(size=(3, length))
    positions = rng.uniform(-3, length + 3, size=(3, 60))
    result = spline.resample_uniform(values, np.full(3, length), positions)
    for row in range(3):
        expected = scipy.interpolate.CubicSpline(np.arange(length), values[row, :length])(
            np.clip(positions[row], 0, length - 1)
        )
        np.testing.assert_allclose(result[row], expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("method", ["paper", "single"])
def test_preprocess_equals_naive_loop(method):
    spectra = make_spectra(40)
    X, flags = pp.preprocess_spectra(*spectra, method=method)
    expected = naive.naive_preprocess(*spectra, method=method)
    assert X.shape == (40, 4000) and X.dtype == np.float32
    assert not flags.any()
    assert np.abs(X - expected).max() < 1e-6  # X is float32: rounding is about 1e-7
    np.testing.assert_allclose(X.mean(axis=1), 0.0, atol=1e-6)
    np.testing.assert_allclose(X.std(axis=1), 1.0, atol=1e-6)


def test_non_uniform_sampling_uses_scipy():
    loglam = np.sort(np.random.default_rng(0).uniform(3.57, 3.97, 500))
    flux = np.sin(loglam * 300)
    result = pp.resample([loglam], [flux])
    expected = scipy.interpolate.CubicSpline(loglam, flux)(np.clip(GRID, loglam[0], loglam[-1]))
    np.testing.assert_allclose(result[0], expected, atol=1e-12)


def test_clamped_ends_take_nearest_flux():
    loglam = 3.6 + 1e-4 * np.arange(1000)
    flux = 5.0 + np.cos(loglam * 500)
    result = pp.resample([loglam], [flux])[0]
    assert np.all(result[GRID < loglam[0]] == flux[0])
    assert np.all(result[GRID > loglam[-1]] == flux[-1])


def test_rest_frame_shift_moves_a_line_to_its_rest_wavelength():
    rest = np.log10(6564.61)
    line = 1 - 0.8 * np.exp(-0.5 * ((GRID - rest) / 2e-4) ** 2)
    rv = 250.0
    observed = pp.resample([GRID + doppler.loglam_shift(rv)], [line])
    restored = pp.rest_frame(observed, rv)[0]
    assert abs(GRID[np.argmin(restored)] - rest) < GRID[1] - GRID[0]
    # relativistic: 1 + z = sqrt((1 + b) / (1 - b))
    beta = rv / schema.C_KM_S
    assert doppler.loglam_shift(rv) == pytest.approx(
        np.log10(np.sqrt((1 + beta) / (1 - beta))), rel=1e-12
    )


def test_bad_pixels_do_not_inject_spikes():
    loglams, fluxes, ivars, masks, rv = make_spectra(1, bad_fraction=0.0, float32=False)
    clean, _ = pp.preprocess_spectra(loglams, fluxes, ivars, masks, rv)
    spiky = fluxes[0].copy()
    ivar = ivars[0].copy()
    spiky[1000:1003] = 1e5
    ivar[1000:1003] = 0.0
    mask = masks[0].copy()
    spiky[2000] = -1e5
    mask[2000] = 1 << 24  # NODATA
    treated, flags = pp.preprocess_spectra(loglams, [spiky], [ivar], [mask], rv)
    assert flags[0] == 0
    assert np.abs(treated).max() < 5
    assert np.abs(treated - clean).max() < 0.2
    untreated, _ = pp.preprocess_spectra(loglams, [spiky], None, None, rv)
    assert np.abs(untreated).max() > 20


def test_clean_spectrum_trims_and_interpolates():
    loglam = 3.6 + 1e-4 * np.arange(10)
    flux = np.arange(10.0)
    ivar = np.ones(10)
    ivar[[0, 1, 5, 9]] = 0
    flux[5] = 1e6
    new_loglam, new_flux, flag = pp.clean_spectrum(loglam, flux, ivar)
    assert flag == 0
    np.testing.assert_array_equal(new_loglam, loglam[2:9])
    np.testing.assert_allclose(new_flux, [2, 3, 4, 5, 6, 7, 8])


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda s: (s[0][:3], s[1][:3], s[2][:3], s[3][:3], s[4]), "too_short"),
        (
            lambda s: (s[0], np.where(np.arange(s[1].size) == 7, np.nan, s[1]), s[2], s[3], s[4]),
            "non_finite",
        ),
        (
            lambda s: (s[0], np.where(np.arange(s[1].size) == 7, np.inf, s[1]), s[2], s[3], s[4]),
            "non_finite",
        ),
        (lambda s: (s[0], np.full(s[1].size, 3.0), s[2], s[3], s[4]), "constant"),
        (lambda s: (s[0][::-1], s[1], s[2], s[3], s[4]), "loglam_not_increasing"),
        (lambda s: (s[0], s[1], s[2], s[3], 0.011 * schema.C_KM_S), "rv_out_of_range"),
        (lambda s: (s[0], s[1], s[2], s[3], np.nan), "rv_out_of_range"),
        (lambda s: (s[0], s[1], np.zeros(s[2].size), s[3], s[4]), "too_short"),
    ],
)
def test_bad_rows_are_flagged_never_nan(change, reason):
    spectra = make_spectra(3, bad_fraction=0.0)
    loglam, flux, ivar, mask, rv = change(
        tuple(column[1] if index < 4 else spectra[4][1] for index, column in enumerate(spectra))
    )
    rvs = np.array([spectra[4][0], rv, spectra[4][2]])
    X, flags = pp.preprocess_spectra(
        [spectra[0][0], loglam, spectra[0][2]],
        [spectra[1][0], flux, spectra[1][2]],
        [spectra[2][0], ivar, spectra[2][2]],
        [spectra[3][0], mask, spectra[3][2]],
        rvs,
    )
    assert np.all(np.isfinite(X))
    assert flags[0] == 0 and flags[2] == 0
    assert pp.describe_flags(flags[1]) == [reason]
    assert np.all(X[1] == 0)
    with pytest.raises(ValueError, match=reason):
        pp.preprocess_spectra([loglam], [flux], [ivar], [mask], rv, on_bad="raise")


def test_bad_arguments_raise_clear_errors():
    spectra = make_spectra(2)
    with pytest.raises(ValueError, match="method"):
        pp.preprocess_spectra(*spectra, method="twice")
    with pytest.raises(ValueError, match="on_bad"):
        pp.preprocess_spectra(*spectra, on_bad="ignore")
    with pytest.raises(ValueError, match="grid"):
        pp.preprocess_spectra(*spectra, grid=[])
    with pytest.raises(ValueError, match="at least 4"):
        pp.preprocess_spectra(*spectra, grid=[3.6, 3.7, 3.8])
    with pytest.raises(ValueError, match="uniform"):
        pp.preprocess_spectra(*spectra, grid=[3.6, 3.7, 3.75, 3.9])
    with pytest.raises(ValueError, match="grid"):
        pp.resample(spectra[0], spectra[1], grid=np.array([3.6, 3.6, 3.7]))
    with pytest.raises(ValueError, match="loglam_list"):
        pp.preprocess_spectra(spectra[0][:1], spectra[1])
    with pytest.raises(ValueError, match="rv_kms"):
        pp.preprocess_spectra(*spectra[:4], rv_kms=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="rv_kms"):
        pp.rest_frame(np.ones((1, 4000)), 5000.0)
    with pytest.raises(ValueError, match="at least 4"):
        pp.resample([np.arange(3.0)], [np.ones(3)])
    with pytest.raises(ValueError, match="constant"):
        pp.standardise(np.ones((2, 10)))


def test_standardise_population_std():
    X = np.array([[1.0, 2.0, 3.0, 4.0]])
    np.testing.assert_allclose(
        pp.standardise(X), [[-1.3416407865, -0.4472135955, 0.4472135955, 1.3416407865]]
    )


def test_label_scaler_matches_robust_scaler_and_round_trips():
    from sklearn.preprocessing import RobustScaler

    labels = np.random.default_rng(0).normal([6000, -1, 3.5], [700, 0.6, 0.8], size=(200, 3))
    scaler = pp.LabelScaler().fit(labels)
    np.testing.assert_allclose(scaler.transform(labels), RobustScaler().fit_transform(labels))
    restored = pp.LabelScaler.from_dict(json.loads(json.dumps(scaler.to_dict())))
    np.testing.assert_allclose(restored.inverse_transform(scaler.transform(labels)), labels)
    np.testing.assert_allclose(np.median(scaler.transform(labels), axis=0), 0.0, atol=1e-12)
    with pytest.raises(ValueError, match="not fitted"):
        pp.LabelScaler().transform(labels)
    with pytest.raises(ValueError, match="shape"):
        scaler.transform(np.ones((3, 2)))


def test_augment_triples_rows_with_bounded_noise():
    X = pp.standardise(np.random.default_rng(1).normal(size=(50, 4000)))
    labels = np.arange(150.0).reshape(50, 3)
    augmented, repeated = pp.augment(X, seed=3, labels=labels)
    assert augmented.shape == (150, 4000)
    np.testing.assert_array_equal(augmented[:50], X)
    np.testing.assert_array_equal(repeated[100:], labels)
    levels = (augmented[50:] - np.concatenate([X, X])).std(axis=1)
    assert levels.min() > 0.009 and levels.max() < 0.051
    np.testing.assert_array_equal(pp.augment(X, seed=3), augmented)
    assert pp.augment(X, copies=0).shape == X.shape
    with pytest.raises(ValueError, match="noise_range"):
        pp.augment(X, noise_range=(0.05, 0.01))
    with pytest.raises(ValueError, match="copies"):
        pp.augment(X, copies=-1)


def test_planck_continuum_peaks_at_wien_and_is_standardised():
    curves = pp.planck_continuum([5000.0, 8000.0])
    np.testing.assert_allclose(curves.mean(axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(curves.std(axis=1), 1.0)
    wide = np.linspace(3.4, 3.8, 4000)
    peak = 10 ** wide[np.argmax(pp.planck_continuum(8000.0, wide))]
    assert peak == pytest.approx(2.8977719e7 / 8000.0, rel=1e-3)  # Wien: 3622 A
    raw = pp.planck_continuum(5772.0, standardise=False)
    assert raw.max() > 0 and np.all(np.isfinite(raw))
    with pytest.raises(ValueError, match="teff"):
        pp.planck_continuum(-5.0)


def test_preprocessor_round_trip_and_single_spectrum(tmp_path):
    spectra = make_spectra(5)
    preprocessor = pp.Preprocessor().fit_labels(
        np.array([[5000, -1, 4], [6000, 0, 3], [7000, -2, 2.0]])
    )
    X, flags = preprocessor.transform(*spectra)
    assert not flags.any()
    np.testing.assert_array_equal(X, pp.preprocess_spectra(*spectra)[0])
    one = preprocessor.transform_spectrum(
        spectra[0][2], spectra[1][2], spectra[2][2], spectra[3][2], spectra[4][2]
    )
    np.testing.assert_array_equal(one, X[2])
    loaded = pp.Preprocessor.load(preprocessor.save(tmp_path / "preprocessor.json"))
    assert loaded.to_dict() == preprocessor.to_dict()
    np.testing.assert_allclose(
        loaded.unscale_labels(loaded.scale_labels([[5500, -0.5, 3.5]])), [[5500, -0.5, 3.5]]
    )
    with pytest.raises(ValueError, match="too_short"):
        preprocessor.transform_spectrum(np.arange(3.0), np.ones(3))
    with pytest.raises(ValueError, match="method"):
        pp.Preprocessor(method="fast")
    with pytest.raises(ValueError, match="fitted"):
        pp.Preprocessor().scale_labels([[5000, 0, 4]])


def test_lattice_rows_agrees_with_per_spectrum_rule():
    from stellar_nb.preprocess import batch

    rng = np.random.default_rng(5)
    loglams = [((35800 + np.arange(50)) * 1e-4).astype(np.float32) for _ in range(6)]
    loglams[1] = loglams[1] + np.float32(3e-5)  # off the lattice
    loglams[2] = loglams[2].copy()
    loglams[2][20] += np.float32(2e-5)  # one wrong step
    loglams[3] = 3.58 + 1.1e-4 * np.arange(50)  # another step
    loglams[4] = loglams[4].copy()
    loglams[4][7] = np.nan
    loglams.append(np.arange(3.0))  # too short
    loglams.append(np.sort(rng.uniform(3.6, 3.9, 40)))
    found, first, lengths = batch.lattice_rows(loglams)
    expected = [batch.on_lattice(loglam) if len(loglam) >= 4 else None for loglam in loglams]
    assert found.tolist() == [value is not None for value in expected]
    assert found.tolist() == [True, False, False, False, False, True, False, False]
    assert first[0] == 35800 and lengths.tolist()[-2:] == [3, 40]


@pytest.mark.parametrize(
    ("method", "continuum_degree"), [("paper", 0), ("single", 0), ("paper", 6)]
)
def test_preprocess_stages_are_the_steps_behind_its_output(method, continuum_degree):
    loglams, fluxes, ivars, masks, rv = make_spectra(5, seed=3)
    # one spectrum off the SDSS lattice (the per-spectrum path) and one unusable
    loglams[1] = np.linspace(3.58, 3.96, fluxes[1].size) + 3e-6
    ivars[2] = np.zeros_like(ivars[2])
    options = {"method": method, "continuum_degree": continuum_degree}
    X, flags = pp.preprocess_spectra(loglams, fluxes, ivars, masks, rv, **options)
    stages = {}
    staged, staged_flags = pp.preprocess_spectra(
        loglams, fluxes, ivars, masks, rv, **options, stages=stages
    )
    np.testing.assert_array_equal(staged, X)
    np.testing.assert_array_equal(staged_flags, flags)
    assert flags[2] and not flags[[0, 1, 3, 4]].any()
    expected = ["rest frame", "standardised"]
    expected[:0] = ["resampled"] if method == "paper" else []
    expected[-1:-1] = ["continuum normalised"] if continuum_degree else []
    assert list(stages) == expected and stages["standardised"] is staged
    assert not np.any(stages["rest frame"][2])  # flagged rows stay zero
    last = stages["continuum normalised" if continuum_degree else "rest frame"]
    np.testing.assert_allclose(pp.standardise(last[[0, 1, 3, 4]]), X[[0, 1, 3, 4]], atol=2e-6)
    if method == "paper":
        # the intermediate steps are the public steps, whichever internal path a spectrum took
        for row in (0, 1):
            loglam, flux, _ = spectra.clean_spectrum(
                loglams[row], fluxes[row], ivars[row], masks[row]
            )
            resampled = pp.resample([loglam], [flux])
            np.testing.assert_allclose(stages["resampled"][row], resampled[0], rtol=1e-9, atol=1e-6)
            rest = pp.rest_frame(resampled, rv[row])
            np.testing.assert_allclose(stages["rest frame"][row], rest[0], rtol=1e-9, atol=1e-6)


def test_preprocessor_stages_end_in_its_transform():
    loglams, fluxes, ivars, masks, rv = make_spectra(1, seed=4)
    preprocessor = pp.Preprocessor()
    stages = preprocessor.stages(loglams[0], fluxes[0], ivars[0], masks[0], rv[0])
    X, _ = preprocessor.transform(loglams, fluxes, ivars, masks, rv)
    np.testing.assert_array_equal(stages["standardised"], X[0])
    assert stages["standardised"].dtype == np.float32 and stages["resampled"].shape == GRID.shape
    with pytest.raises(ValueError, match=r"cannot be preprocessed \(too_short\)"):
        preprocessor.stages(loglams[0], fluxes[0], np.zeros_like(ivars[0]), masks[0], rv[0])
