"""Tests of stellar_nb.trust: the trust flags shared by predict, the dashboard and bench real-stars."""

import numpy as np
import pytest

from stellar_nb import emulator as emulator_module
from stellar_nb import schema, trust
from stellar_nb.data import fits, tables
from stellar_nb.simulate import residuals


@pytest.fixture(scope="module")
def emulator():
    return emulator_module.load_emulator()


@pytest.fixture(scope="module")
def emulator_error():
    return residuals.load_emulator_error()


@pytest.fixture(scope="module")
def star(quick_survey):
    frame = tables.read_split(quick_survey, "test", rows=slice(0, 40))
    row = frame.iloc[int(np.argmax(frame["snr"].to_numpy()))]
    return row


def _check(row, prediction, emulator, emulator_error, **changes):
    arguments = {
        "loglam": row.loglam.astype(float),
        "flux": row.flux,
        "ivar": row.ivar,
        "bad_pixels": row.ivar <= 0,
        "rv_kms": row.rv_adop,
        "snr": row.snr,
        "objclass": "STAR",
        "subclass": "F5",
        "emulator": emulator,
        "emulator_error": emulator_error,
    }
    arguments.update(changes)
    return {flag["name"]: flag for flag in trust.check(prediction, **arguments)}


def _truth(row):
    return np.array([row[column] for column in schema.TRUE_COLUMNS])


def test_column_names():
    assert trust.column_name("labels at the training edge") == "flag_labels_at_the_training_edge"
    assert trust.column_name("low S/N") == "flag_low_s_n"
    assert len({trust.column_name(name) for name in trust.FLAG_NAMES}) == len(trust.FLAG_NAMES)


def test_a_simulated_star_at_its_true_labels_is_trusted(star, emulator, emulator_error):
    flags = _check(star, _truth(star), emulator, emulator_error)
    assert list(flags) == list(trust.FLAG_NAMES[:-1])  # no distance given: no distance flag
    assert not any(flag["raised"] for flag in flags.values())
    # the misfit statistic is about 1 for a spectrum the emulator describes
    assert 0.3 < flags["misfit"]["value"] < trust.MISFIT_LIMIT
    assert flags["short coverage"]["value"] > trust.MIN_COVERAGE


def test_wrong_labels_give_a_misfit(star, emulator, emulator_error):
    wrong = _truth(star) + np.array([1500.0, 0.8, -1.5])
    wrong = np.clip(wrong, [4100, -3.5, 0.5], [9000, 0.5, 4.8])
    flags = _check(star, wrong, emulator, emulator_error)
    assert flags["misfit"]["raised"] and flags["misfit"]["value"] > trust.MISFIT_LIMIT


def test_each_flag_is_raised_by_its_cause(star, emulator, emulator_error):
    truth = _truth(star)
    assert _check(star, truth, emulator, emulator_error, snr=5.0)["low S/N"]["raised"]
    assert _check(star, truth, emulator, emulator_error, objclass="GALAXY")["not a star"]["raised"]
    for subclass in ("WDhotter", "CV", "M3", "B6", "Carbon"):
        flags = _check(star, truth, emulator, emulator_error, subclass=subclass)
        assert flags["non-FGK subclass"]["raised"], subclass
    for subclass in ("F5", "G2", "K1", "A7V", ""):
        assert not _check(star, truth, emulator, emulator_error, subclass=subclass)[
            "non-FGK subclass"
        ]["raised"]
    dead = np.arange(star.ivar.size) % 3 == 0
    assert _check(star, truth, emulator, emulator_error, bad_pixels=dead)["masked pixels"]["raised"]
    wavelength = 10.0 ** star.loglam.astype(float)
    blue_only = wavelength > 5000.0
    flags = _check(star, truth, emulator, emulator_error, bad_pixels=blue_only)
    assert flags["short coverage"]["raised"] and flags["short coverage"]["value"] < 0.5
    edge = np.array([9180.0, truth[1], truth[2]])
    assert _check(star, edge, emulator, emulator_error)["labels at the training edge"]["raised"]
    distant = trust.check(
        truth, loglam=star.loglam, flux=star.flux, ivar=star.ivar, bad_pixels=star.ivar <= 0,
        rv_kms=star.rv_adop, snr=star.snr, distance=3.0, distance_threshold=2.0,
    )  # fmt: skip
    assert distant[-1]["name"] == "far from the training set" and distant[-1]["raised"]


def test_table_has_one_column_per_flag(star, emulator, emulator_error):
    spectrum = {
        "loglam": star.loglam, "flux": star.flux, "ivar": star.ivar, "mask": star["mask"],
        "snr": star.snr, "objclass": "STAR", "subclass": "",
    }  # fmt: skip
    predictions = np.vstack([_truth(star), [9180.0, -0.5, 4.0]])
    table = trust.table(
        predictions,
        [spectrum, spectrum],
        [star.rv_adop] * 2,
        emulator=emulator,
        emulator_error=emulator_error,
    )
    assert list(table["flagged"]) == [False, True]
    assert table["flag_labels_at_the_training_edge"].tolist() == [False, True]
    assert "labels at the training edge" in table["flags"][1]
    assert table["misfit"].notna().all()


def test_the_real_hot_white_dwarf_is_flagged(sdss_fixtures, emulator, emulator_error):
    from stellar_nb import doppler, model_directory

    spectrum = fits.read_spectrum(sdss_fixtures / "spec-0266-51602-0031.fits")
    assert spectrum.meta["subclass"].startswith("WD")
    model = model_directory.load()
    rv = float(doppler.velocity_from_redshift(spectrum.meta["z"]))
    X, _ = model.preprocess(
        [spectrum.loglam], [spectrum.flux], [spectrum.ivar], [spectrum.and_mask], [rv]
    )
    prediction = model.predict(X)[0]
    flags = {
        flag["name"]: flag
        for flag in trust.check(
            prediction, loglam=spectrum.loglam, flux=spectrum.flux, ivar=spectrum.ivar,
            bad_pixels=spectrum.ivar <= 0, rv_kms=rv, snr=spectrum.meta["snr"],
            objclass=spectrum.meta["objclass"], subclass=spectrum.meta["subclass"],
            emulator=emulator, emulator_error=emulator_error,
        )
    }  # fmt: skip
    assert flags["non-FGK subclass"]["raised"]
    # at S/N 7 its spectrum cannot tell a misfit from noise, but the S/N flag is up as well
    assert flags["low S/N"]["raised"] and spectrum.meta["snr"] < trust.LOW_SNR


def test_good_coverage_counts_grid_points_near_a_good_pixel():
    grid = schema.grid_loglam()
    observed = grid.copy()
    none_bad = np.zeros(grid.size, dtype=bool)
    assert trust.good_coverage(observed, none_bad, 0.0) == 1.0
    blue_half = np.arange(grid.size) >= grid.size // 2
    assert trust.good_coverage(observed, blue_half, 0.0) == pytest.approx(0.5, abs=1e-3)
    assert trust.good_coverage(observed, np.ones(grid.size, dtype=bool), 0.0) == 0.0
    # 10 pixels cover 10 grid points (and their 1.5-step neighbours), not the whole grid
    assert trust.good_coverage(observed[:10], none_bad[:10], 0.0) < 0.01
    # a spectrum observed at +300 km/s covers the grid in its rest frame
    from stellar_nb import doppler

    shifted = observed + doppler.loglam_shift(300.0)
    assert trust.good_coverage(shifted, none_bad, 300.0) == 1.0
    assert trust.good_coverage(shifted, none_bad, 0.0) < 1.0


def test_garbage_flux_raises_the_flux_flags(star, emulator, emulator_error):
    truth = _truth(star)
    clean = _check(star, truth, emulator, emulator_error)
    assert not clean["non-positive flux"]["raised"] and not clean["outlier pixels"]["raised"]
    negative = _check(star, truth, emulator, emulator_error, flux=-np.abs(star.flux))
    assert negative["non-positive flux"]["raised"]
    assert negative["non-positive flux"]["value"] > trust.MAX_NON_POSITIVE_FRACTION
    spike = star.flux.copy()
    spike[len(spike) // 2] = 1e30
    flags = _check(star, truth, emulator, emulator_error, flux=spike)
    assert (
        flags["outlier pixels"]["raised"] and flags["outlier pixels"]["value"] > trust.OUTLIER_LIMIT
    )


def test_a_spectrum_of_ten_percent_of_the_grid_is_withheld(star, emulator, emulator_error):
    bad = star.ivar <= 0
    bad[len(bad) // 10 :] = True
    flags = _check(star, _truth(star), emulator, emulator_error, bad_pixels=bad)
    assert flags["too little coverage"]["raised"]
    assert flags["too little coverage"]["value"] < trust.MIN_GOOD_COVERAGE
    assert "too little coverage" in trust.WITHHOLDING_FLAGS
