"""Tests of stellar_nb.train: a quick training run, its model directory, resumption, plots, bench."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from stellar_nb import files, inference, model, model_directory, train
from stellar_nb.bench import train as bench_train
from stellar_nb.plots import training as training_plots


def quick_model(config, survey):
    """Train (once per test session) a quick-mode model on the quick survey; return its folder."""
    out = config.models_dir / "quick-paper"
    if not (out / model_directory.MANIFEST).is_file():
        train.train(config, survey, out, progress=False, calibration_stars=300)
    return out


@pytest.fixture(scope="module")
def model_dir(quick_config, quick_survey):
    return quick_model(quick_config, quick_survey)


def test_model_directory_is_complete(model_dir, quick_config):
    manifest = model_directory.read_manifest(model_dir)
    assert manifest["layout_version"] == model_directory.LAYOUT_VERSION
    assert set(manifest["files"]) == set(model_directory.REQUIRED_FILES)
    assert {"stellar_nb", "keras", "numpy", "backend"} <= set(manifest["versions"])
    history = files.read_json(model_dir / "history.json")
    metrics = files.read_json(model_dir / "metrics.json")
    assert len(history["loss"]) == len(history["val_loss"]) == quick_config.epochs
    assert history["val_loss"][-1] < history["val_loss"][0]
    assert metrics["best_val_loss"] == pytest.approx(min(history["val_loss"]))
    assert metrics["best_epoch"] == int(np.argmin(history["val_loss"])) + 1
    assert metrics["train_rows"] == 3 * quick_config.n_train
    sigma_model = metrics["calibration"]["sigma_model"]
    assert set(sigma_model) == {"teff", "feh", "logg"} and all(v >= 0 for v in sigma_model.values())
    description = files.read_json(model_dir / "model.json")
    assert description["architecture"] == model.architecture()
    assert description["loss_weights"]["teff"] > 0
    assert not (model_dir / train.CHECKPOINT).exists()


def test_keras_model_loads_in_safe_mode_and_matches_numpy(model_dir):
    network = model_directory.load_keras_model(model_dir)
    assert model.count_parameters(network) == 542_771
    numpy_model = inference.NumpyModel.load(model_dir)
    spectra = np.random.default_rng(0).standard_normal((64, 4000), dtype=np.float32)
    outputs = network.predict(spectra, verbose=0)
    expected = np.concatenate([outputs[label] for label in numpy_model.labels], axis=1)
    np.testing.assert_allclose(numpy_model.forward(spectra), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_shipped_keras_model_loads_on_either_backend(backend):
    """The pretrained model was saved on JAX; TensorFlow (Binder's default) must load it too."""
    code = (
        "import json, keras, numpy as np\n"
        "from stellar_nb import inference, model_directory\n"
        "folder = model_directory.pretrained_dir()\n"
        "network = model_directory.load_keras_model(folder)\n"
        "numpy_model = inference.NumpyModel.load(folder)\n"
        "x = np.random.default_rng(0).standard_normal((32, 4000), dtype=np.float32)\n"
        "out = network.predict(x, verbose=0)\n"
        "keras_out = np.concatenate([out[label] for label in numpy_model.labels], axis=1)\n"
        "gap = float(np.max(np.abs(keras_out - numpy_model.forward(x))))\n"
        "print(json.dumps([keras.backend.backend(), gap]))\n"
    )
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    used, gap = json.loads(done.stdout.strip().splitlines()[-1])
    assert (
        files.read_json(model_directory.pretrained_dir() / "manifest.json")["versions"]["backend"]
        == "jax"
    )
    assert used == backend and gap < 1e-4


def _copy(model_dir, tmp_path):
    target = tmp_path / "model"
    shutil.copytree(model_dir, target)
    return target


def test_loading_refuses_bad_model_directories(model_dir, tmp_path):
    broken = _copy(model_dir, tmp_path)
    manifest = json.loads((broken / "manifest.json").read_text())
    (broken / "manifest.json").write_text(json.dumps({**manifest, "layout_version": 99}))
    with pytest.raises(model_directory.ModelDirectoryError, match="layout version 99"):
        model_directory.load_keras_model(broken)
    (broken / "manifest.json").write_text(json.dumps(manifest))
    data = bytearray((broken / "weights.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (broken / "weights.npz").write_bytes(bytes(data))
    with pytest.raises(model_directory.ModelDirectoryError, match=r"weights\.npz is corrupt"):
        inference.NumpyModel.load(broken)
    (broken / "preprocessor.json").unlink()
    with pytest.raises(
        model_directory.ModelDirectoryError, match=r"missing file .*preprocessor\.json"
    ):
        inference.NumpyModel.load(broken, verify=False)


def test_checkpoint_of_another_run_is_refused(quick_config, quick_survey, tmp_path):
    folder = tmp_path / "out" / train.CHECKPOINT
    folder.mkdir(parents=True)
    (folder / "state.json").write_text(json.dumps({"fingerprint": {"seed": -1}, "epoch": 1}))
    with pytest.raises(ValueError, match="different run"):
        train.train(quick_config, quick_survey, tmp_path / "out", progress=False)


def _cli(survey, out, data_home):
    return [
        sys.executable,
        "-m",
        "stellar_nb.commands",
        "train",
        "--quick",
        "--epochs",
        "3",
        "--survey",
        str(survey),
        "--out",
        str(out),
        "--data-home",
        str(data_home),
        "--no-progress",
    ]


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_same_weights(quick_survey, tmp_path):
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    subprocess.run(
        _cli(quick_survey, tmp_path / "whole", tmp_path), check=True, env=env, capture_output=True
    )
    process = subprocess.Popen(
        _cli(quick_survey, tmp_path / "killed", tmp_path),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    state = tmp_path / "killed" / train.CHECKPOINT / "state.json"
    deadline = time.monotonic() + 600
    while process.poll() is None and time.monotonic() < deadline:
        if state.is_file() and json.loads(state.read_text())["epoch"] >= 1:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    assert process.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    assert json.loads(state.read_text())["epoch"] in (1, 2)
    done = subprocess.run(
        _cli(quick_survey, tmp_path / "killed", tmp_path), env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "best epoch" in done.stdout
    with (
        np.load(tmp_path / "whole" / "weights.npz") as whole,
        np.load(tmp_path / "killed" / "weights.npz") as resumed,
    ):
        for name in whole.files:
            np.testing.assert_array_equal(whole[name], resumed[name])
    assert files.read_json(tmp_path / "whole" / "history.json") == files.read_json(
        tmp_path / "killed" / "history.json"
    )


def test_training_plots():
    history = {
        "loss": [1.0, 0.5, 0.4],
        "val_loss": [1.2, 0.6, 0.5],
        "val_teff_loss": [0.4, 0.2, 0.1],
    }
    figure = training_plots.plot_history(history)
    assert [trace.name for trace in figure.data] == ["train", "validation", "T_eff"]
    np.testing.assert_array_equal(figure.data[1].y, history["val_loss"])
    with pytest.raises(ValueError, match="val_loss"):
        training_plots.plot_history({"loss": [1.0]})
    schedule = training_plots.plot_learning_rate(200, steps_per_epoch=10)
    assert schedule.data[0].y[10] == pytest.approx(7e-4) and schedule.data[0].x[-1] == 20
    boxes = training_plots.architecture_boxes()
    texts = [text for _, _, text in boxes]
    assert texts[1] == "stem: Dense 128 + LayerNorm + GELU"
    assert "shortcut: LN + Dense 64" in texts[2]
    assert any("Dense 48 - 32" in text for text in texts)
    figure = training_plots.plot_architecture(parameters=542_771)
    assert "542,771" in figure.layout.title.text and len(figure.layout.shapes) == len(boxes)


def test_bench_train_flops_and_gemm():
    # stem 4000x128, block 128x64 + 64x64 + shortcut 128x64, heads 64x48x32x1, 64x16x1, 64x48x1
    macs = (
        4000 * 128
        + 128 * 64
        + 64 * 64
        + 128 * 64
        + (64 * 48 + 48 * 32 + 32)
        + (64 * 16 + 16)
        + (64 * 48 + 48)
    )
    assert bench_train.forward_flops() == 2 * macs
    assert bench_train.forward_flops(model.architecture("no_skip")) == 2 * (macs - 128 * 64)
    assert bench_train.gemm_throughput(rows=512, repeats=2) > 1e8
