"""Tests of stellar_nb.inference: the numpy forward pass, model directories, uncertainties."""

import json
import subprocess
import sys

import numpy as np
import pytest

from stellar_nb import calibration, files, inference, model, model_directory


def _randomised(spec, seed):
    network = model.build_model(**spec, seed=seed)
    rng = np.random.default_rng(seed)
    for layer in network.layers:
        if "norm" in layer.name:
            # move LayerNorm scales and offsets away from their initial 1 and 0
            layer.set_weights(
                [
                    w + rng.normal(scale=0.3, size=w.shape).astype("float32")
                    for w in layer.get_weights()
                ]
            )
    return network


@pytest.mark.parametrize("variant", sorted(model.VARIANTS))
def test_numpy_forward_matches_keras(variant):
    spec = model.architecture(variant)
    network = _randomised(spec, seed=3)
    spectra = np.random.default_rng(0).normal(size=(300, 4000)).astype("float32")
    keras_out = network.predict(spectra, verbose=0)
    expected = np.concatenate([keras_out[label] for label in spec["labels"]], axis=1)
    ours = inference.NumpyModel(spec, model_directory.export_weights(network)).forward(
        spectra, batch_size=128
    )
    assert ours.shape == (300, 3)
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-5)
    assert np.std(ours) > 0.1  # not trivially zero


def test_numpy_model_rejects_bad_inputs():
    spec = model.architecture()
    numpy_model = inference.NumpyModel(
        spec, model_directory.export_weights(model.build_model(**spec))
    )
    with pytest.raises(ValueError, match=r"shape \(n, 4000\)"):
        numpy_model.forward(np.zeros((2, 3999)))
    with pytest.raises(ValueError, match="no preprocessor"):
        numpy_model.predict(np.zeros((2, 4000)))
    weights = model_directory.export_weights(model.build_model(**spec))
    del weights["stem_dense/0"]
    with pytest.raises(model_directory.ModelDirectoryError, match="stem_dense"):
        inference.NumpyModel(spec, weights)


def test_calibrate_sigma_reaches_the_coverage():
    rng = np.random.default_rng(0)
    noise = np.full((20_000, 2), 1.0)
    residuals = rng.normal(size=(20_000, 2)) * np.array([np.sqrt(1 + 2.0**2), 0.5])
    sigma_model = calibration.calibrate_sigma(residuals, noise)
    assert sigma_model[0] == pytest.approx(2.0, rel=0.03)
    assert sigma_model[1] == 0.0
    combined = np.sqrt(noise[:, 0] ** 2 + sigma_model[0] ** 2)
    assert np.mean(np.abs(residuals[:, 0]) <= combined) == pytest.approx(0.6827, abs=0.002)


def test_atomic_write_keeps_suffixes_and_cleans_up(tmp_path):
    seen = []

    def write(path):
        seen.append(path)
        with open(path, "w") as handle:
            handle.write("x")

    files.atomic_write(tmp_path / "best.weights.h5", write)
    assert seen[0].endswith(".weights.h5")
    assert (tmp_path / "best.weights.h5").read_text() == "x"

    def fail(path):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        files.atomic_write(tmp_path / "other.json", fail)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.weights.h5"]


def test_read_manifest_errors_name_the_file(tmp_path):
    with pytest.raises(model_directory.ModelDirectoryError, match="does not exist"):
        model_directory.read_manifest(tmp_path / "absent")
    with pytest.raises(model_directory.ModelDirectoryError, match=r"missing file .*manifest\.json"):
        model_directory.read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(
        model_directory.ModelDirectoryError, match=r"manifest\.json is not valid JSON"
    ):
        model_directory.read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text(
        json.dumps({"layout_version": 0, "versions": {"stellar_nb": "0.0.1"}})
    )
    with pytest.raises(model_directory.ModelDirectoryError, match="layout version 0"):
        model_directory.read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text(
        json.dumps({"layout_version": model_directory.LAYOUT_VERSION, "files": {}})
    )
    with pytest.raises(model_directory.ModelDirectoryError, match=r"missing file .*model\.keras"):
        model_directory.read_manifest(tmp_path)


def test_importing_inference_does_not_import_tensorflow():
    code = "import sys, stellar_nb.inference; print(any(m in sys.modules for m in ('tensorflow', 'keras', 'jax')))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


@pytest.fixture(scope="module")
def trained(quick_config, quick_survey):
    from test_train import quick_model

    return inference.NumpyModel.load(quick_model(quick_config, quick_survey))


def _raw(survey, rows, split="validation"):
    from stellar_nb.data import tables

    frame = tables.read_split(survey, split, rows=rows)
    arrays = [list(frame[column]) for column in ("loglam", "flux", "ivar", "mask")]
    return frame, arrays, frame["rv_adop"].to_numpy()


def test_predict_with_uncertainty_follows_the_noise(trained, quick_survey):
    _, (loglam, flux, ivar, mask), velocity = _raw(quick_survey, slice(0, 12))
    prediction, sigma = trained.predict_with_uncertainty(
        loglam, flux, ivar, mask, velocity, n_draws=8, seed=1
    )
    spectra, _ = trained.preprocess(loglam, flux, ivar, mask, velocity)
    np.testing.assert_allclose(prediction, trained.predict(spectra))
    floor = np.array([trained.sigma_model[label] for label in trained.labels])
    assert sigma.shape == (12, 3) and np.all(sigma >= floor - 1e-9)
    again = trained.predict_with_uncertainty(loglam, flux, ivar, mask, velocity, n_draws=8, seed=1)[
        1
    ]
    np.testing.assert_array_equal(sigma, again)
    quiet = trained.noise_sigma(loglam, flux, ivar, mask, velocity, n_draws=8, seed=2)
    noisy = trained.noise_sigma(
        loglam, flux, [v / 16 for v in ivar], mask, velocity, n_draws=8, seed=2
    )
    assert np.median(noisy / quiet) > 2.0  # four times the noise: a wider spread


def test_calibration_holds_on_held_out_stars(trained, quick_survey):
    from stellar_nb import evaluate

    frame, arrays, velocity = _raw(quick_survey, slice(0, 400), split="test")
    truth = frame[["true_teff", "true_feh", "true_logg"]].to_numpy()
    prediction, sigma = trained.predict_with_uncertainty(*arrays, velocity, n_draws=8, seed=5)
    result = evaluate.calibration(prediction - truth, sigma)
    # calibrated on the validation split; on test stars close to 68% within one sigma
    np.testing.assert_allclose(result["within_1_sigma"], 0.6827, atol=0.1)


def test_bench_inference_compares_numpy_and_keras(trained):
    from stellar_nb.bench import inference as bench_inference

    result = bench_inference.compare(trained.model_dir, rows=512, repeats=2)
    assert result["rows"] == 512 and result["numpy_seconds"] > 0 and result["keras_seconds"] > 0
    assert result["max_difference"] < 1e-4


def test_shipped_pretrained_model(quick_survey):
    pretrained = model_directory.load()
    assert pretrained.architecture == model.architecture()
    assert pretrained.model_dir == model_directory.pretrained_dir()
    description = files.read_json(pretrained.model_dir / "model.json")
    assert description["config"]["epochs"] == 30 and not description["config"]["quick"]
    assert description["config"]["survey"]["n"] == 50_000
    assert pretrained.metrics["epochs"] == 30
    assert all(value > 0 for value in pretrained.sigma_model.values())
    size = sum(path.stat().st_size for path in pretrained.model_dir.iterdir())
    assert size < 8_000_000  # a few MB in the package
    frame, arrays, velocity = _raw(quick_survey, slice(0, 200), split="test")
    spectra, flags = pretrained.preprocess(*arrays, velocity)
    errors = np.abs(
        pretrained.predict(spectra[flags == 0])
        - frame[["true_teff", "true_feh", "true_logg"]].to_numpy()[flags == 0]
    )
    mae = errors.mean(axis=0)
    assert mae[0] < 120 and mae[1] < 0.2 and mae[2] < 0.25  # full-run accuracy, not quick-run
