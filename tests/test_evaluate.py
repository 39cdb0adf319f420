"""Tests of stellar_nb.evaluate and stellar_nb.baselines."""

import json

import numpy as np
import pytest
from test_train import quick_model

from stellar_nb import baselines, commands, evaluate


def test_ridge_and_ols_match_closed_forms():
    rng = np.random.default_rng(0)
    spectra = rng.normal(size=(400, 30)).astype("float32") + 2
    coef = rng.normal(size=(30, 3))
    labels = spectra @ coef + 1.5 + 0.01 * rng.normal(size=(400, 3))
    ols = baselines.fit_ols(spectra, labels)
    np.testing.assert_allclose(ols.coef_, coef, atol=0.01)
    np.testing.assert_allclose(ols.intercept_, [1.5] * 3, atol=0.05)
    centred = spectra.astype(np.float64)  # the solver works in float64; so must the check
    centred -= centred.mean(axis=0)
    expected = np.linalg.solve(
        centred.T @ centred + 5.0 * np.eye(30), centred.T @ (labels - labels.mean(axis=0))
    )
    ridge = baselines.fit_ridge(spectra, labels, alphas=[5.0])
    np.testing.assert_allclose(ridge.coef_, expected, rtol=1e-6, atol=1e-9)
    chosen = baselines.fit_ridge(
        spectra[:300], labels[:300], spectra[300:], labels[300:], alphas=[1e-3, 1e3, 1e5]
    )
    assert chosen.alpha_ == 1e-3 and chosen.validation_mae_.shape == (3,)
    with pytest.raises(ValueError, match="shape"):
        ridge.predict(np.zeros((2, 29)))
    with pytest.raises(ValueError, match="same n"):
        baselines.fit_ridge(spectra, labels[:10])


def test_calibration_of_gaussian_errors():
    rng = np.random.default_rng(1)
    sigma = rng.uniform(0.5, 2.0, size=(50_000, 2))
    residuals = rng.normal(size=sigma.shape) * sigma * np.array([1.0, 2.0])
    result = evaluate.calibration(residuals, sigma)
    np.testing.assert_allclose(result["z_std"], [1.0, 2.0], rtol=0.02)
    assert result["within_1_sigma"][0] == pytest.approx(0.6827, abs=0.01)
    assert result["within_2_sigma"][0] == pytest.approx(0.9545, abs=0.01)
    assert result["within_1_sigma"][1] == pytest.approx(0.3829, abs=0.01)
    np.testing.assert_allclose(evaluate.mae([[1, 2], [3, 6]], [[0, 0], [0, 0]]), [2, 4])


@pytest.mark.slow
def test_evaluate_a_quick_model(quick_config, quick_survey, tmp_path, capsys):
    model_dir = quick_model(quick_config, quick_survey)
    out = tmp_path / "evaluation.json"
    status = commands.main(
        [
            "evaluate",
            str(model_dir),
            "--survey",
            str(quick_survey),
            "--out",
            str(out),
            "--crb-stars",
            "60",
            "--calibration-stars",
            "150",
        ]
    )
    assert status == 0
    result = json.loads(out.read_text())
    assert result["n_test"] == quick_config.n_test and result["reference"] == "true"
    for label in ("teff", "feh", "logg"):
        assert 0 < result["crb_mae_floor"][label] < result["mae_true"][label]
        assert result["ratio_to_floor"][label] == pytest.approx(
            result["mae_true"][label] / result["crb_mae_floor"][label]
        )
        assert result["ridge_mae"][label] > 0
        assert 0.3 < result["calibration"]["within_1_sigma"][label] <= 1.0
    assert result["crb_mae_floor"]["teff"] < 200 and result["crb_mae_floor"]["feh"] < 0.2
    # the floor is evaluate.mae_floor's, drawn first from the seed's generator
    floor, n = evaluate.mae_floor(quick_survey, 60, rng=0)
    assert n == result["crb_stars"] == 60
    np.testing.assert_allclose(
        floor, [result["crb_mae_floor"][label] for label in ("teff", "feh", "logg")]
    )
    table = evaluate.summary_table(result)
    assert list(table.index) == ["T_eff (K)", "[Fe/H] (dex)", "log g (dex)"]
    assert "mae_true" in table and "sigma_z_std" in table
    assert "T_eff (K)" in capsys.readouterr().out
