"""Tests of ``stellar-nb bench real-stars`` (stellar_nb.bench.real_stars) and the real-star sigma term."""

import shutil

import numpy as np
import pandas as pd
import pytest

from stellar_nb import calibration, commands, inference, model_directory, schema
from stellar_nb.bench import real_stars


def _table(errors, sigmas, flagged, snr=None, reference=None):
    n = len(errors)
    reference = np.tile([5800.0, -0.3, 4.3], (n, 1)) if reference is None else reference
    frame = {
        **{f"ref_{label}": reference[:, k] for k, label in enumerate(schema.LABELS)},
        **{
            f"pred_{label}": reference[:, k] + errors[:, k] for k, label in enumerate(schema.LABELS)
        },
        **{f"sigma_{label}": sigmas[:, k] for k, label in enumerate(schema.LABELS)},
        "snr": np.full(n, 40.0) if snr is None else snr,
        "group": real_stars.group_of(reference),
        "flagged": flagged,
    }
    return pd.DataFrame(frame)


def test_summary_figures_are_the_textbook_ones():
    errors = np.column_stack([[-100.0, 0.0, 50.0, 300.0], [0.1, -0.1, 0.0, 0.4], [0.0] * 4])
    sigmas = np.column_stack([[50.0, 10.0, 60.0, 100.0], [0.2] * 4, [0.1] * 4])
    table = _table(errors, sigmas, np.array([False, False, False, True]))
    row = real_stars.summarise(table, "test").iloc[0]
    assert row["group"] == "all" and row["n"] == 4 and row["flagged"] == 0.25
    assert row["teff_mae"] == pytest.approx(112.5)
    assert row["teff_bias"] == pytest.approx(25.0)
    assert row["teff_scatter"] == pytest.approx(1.4826 * np.median(np.abs(errors[:, 0] - 25.0)))
    assert row["teff_cover1"] == pytest.approx(0.5)  # |0| <= 10 and |50| <= 60
    assert row["teff_cover2"] == pytest.approx(0.75)  # |-100| <= 2 * 50; 300 > 2 * 100
    assert row["teff_mae_flagged"] == pytest.approx(300.0)
    assert row["teff_mae_unflagged"] == pytest.approx(50.0)
    assert row["feh_cover1"] == 0.75  # 0.4 > 0.2
    assert "flg/ok" in real_stars.format_summary(real_stars.summarise(table, "test"))


def test_groups_by_class_and_snr():
    reference = np.array(
        [[4500.0, 0, 4.6], [4700, 0, 2.4], [5800, 0, 4.4], [6500, 0, 4.1], [8000, 0, 4.0]]
    )
    assert real_stars.group_of(reference).tolist() == ["KV", "KIII", "GV", "FV", "AV"]
    reference = np.repeat(reference, 6, axis=0)
    table = _table(
        np.zeros((30, 3)),
        np.ones((30, 3)),
        np.zeros(30, bool),
        np.tile([15.0, 150.0], 15),
        reference,
    )
    groups = real_stars.summarise(table, "x")["group"].tolist()
    assert {"all", "class KV", "class AV", "S/N 10-30", "S/N 120-inf"} <= set(groups)


def test_lamost_stars_are_scored_with_flags(lamost_dir):
    spectra, labels = real_stars.load_lamost(lamost_dir, every=120)
    assert len(spectra) == len(labels) == 13
    model = model_directory.load()
    reference = labels[list(schema.LABELS)].to_numpy(float)
    table = real_stars.score_spectra(model, spectra, reference, n_draws=4)
    assert len(table) == 13 and table["flagged"].dtype == bool
    assert np.isfinite(table[["pred_teff", "sigma_teff", "misfit"]].to_numpy()).all()
    # real spectra: predictions within a few hundred K, nowhere near random
    assert np.median(np.abs(table["pred_teff"] - table["ref_teff"])) < 500


def test_a_missing_labels_table_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"labels\.csv"):
        real_stars.load_lamost(tmp_path)


def test_calibrate_systematic_widens_the_error_bars(tmp_path):
    model_dir = shutil.copytree(model_directory.pretrained_dir(), tmp_path / "model")
    before = inference.NumpyModel.load(model_dir)
    rng = np.random.default_rng(0)
    # real stars scattered by 150 K, 0.15 dex, 0.2 dex beyond a 20 K / 0.02 / 0.03 noise spread
    noise = np.tile([20.0, 0.02, 0.03], (2000, 1))
    residuals = rng.normal(size=(2000, 3)) * np.hypot(noise, [150.0, 0.15, 0.2])
    systematic = calibration.calibrate_systematic(model_dir, residuals, noise, source="a test")
    after = inference.NumpyModel.load(model_dir)  # the manifest still verifies
    simulated = before.metrics["calibration"]["sigma_model"]  # the simulated-validation term
    for k, label in enumerate(schema.LABELS):
        total = np.hypot(simulated[label], systematic[label])
        assert after.sigma_model[label] == pytest.approx(total)
        within = np.mean(np.abs(residuals[:, k]) <= np.hypot(noise[:, k], total))
        assert within == pytest.approx(0.6827, abs=0.01)
    assert after.metrics["calibration"]["systematic_source"] == {"stars": 2000, "source": "a test"}


def test_cli_quick_run_prints_both_sets(lamost_dir, quick_config, tmp_path, capsys):
    out = tmp_path / "real.json"
    status = commands.main(
        ["bench", "real-stars", "--quick", "--data-home", str(quick_config.data_home),
         "--lamost", str(lamost_dir), "--out", str(out)]
    )  # fmt: skip
    assert status == 0
    text = capsys.readouterr().out
    assert "LAMOST val" in text and "LAMOST cal" in text and "simulated" in text
    import json

    payload = json.loads(out.read_text())
    sets = {row["set"] for row in payload["summary"]}
    assert sets == {"LAMOST cal", "LAMOST val", "simulated"}
    assert len(payload["stars"]["simulated"]["pred_teff"]) == 500
