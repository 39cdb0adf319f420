"""Tests of stellar_nb.model: the architecture, its parameter counts, loss weights and schedule."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from stellar_nb import model

# Trunk of the paper's model: stem 4000->128 + LN, block 128->64 (LN, Dense, LN, Dense),
# projection shortcut (LN + Dense), final LN.
STEM = 4000 * 128 + 128 + 2 * 128
BLOCK = 2 * 128 + (128 * 64 + 64) + 2 * 64 + (64 * 64 + 64)
SHORTCUT = 2 * 128 + 128 * 64 + 64
FINAL = 2 * 64
HEADS = (64 * 48 + 48 + 48 * 32 + 32 + 33) + (64 * 16 + 16 + 17) + (64 * 48 + 48 + 49)


def test_paper_model_has_542771_parameters():
    network = model.build_model()
    assert model.count_parameters(network) == 542_771
    assert STEM + BLOCK + SHORTCUT + FINAL + HEADS == 542_771
    assert sorted(network.output_names) == ["feh", "logg", "teff"]


@pytest.mark.parametrize(
    ("variant", "expected"),
    [
        ("no_skip", 542_771 - SHORTCUT),
        ("no_skip_no_norm", 542_771 - SHORTCUT - 2 * 128 - 2 * 128 - 2 * 64 - 2 * 64),
        ("single_task", 3 * (STEM + BLOCK + SHORTCUT + FINAL) + HEADS),
    ],
)
def test_variant_parameter_counts(variant, expected):
    spec = model.architecture(variant)
    assert model.count_parameters(model.build_model(**spec)) == expected


def test_identity_shortcut_and_two_blocks():
    network = model.build_model(
        stem_units=64, block_units=(64, 32), head_units={"teff": (16,), "feh": (16,), "logg": (16,)}
    )
    names = {layer.name for layer in network.layers}
    assert "block1_add" in names and "block1_shortcut_dense" not in names
    assert "block2_shortcut_dense" in names and "block2_shortcut_norm" in names


def test_single_label_model_and_bad_arguments():
    network = model.build_model(labels=("feh",), head_units={"feh": (16,)})
    assert network.output_names == ["feh"]
    with pytest.raises(ValueError, match="unknown label"):
        model.build_model(labels=("mass",))
    with pytest.raises(ValueError, match="head_units has no entry"):
        model.build_model(head_units={"teff": (16,)})
    with pytest.raises(ValueError, match="block_dropout"):
        model.build_model(block_dropout=1.5)
    with pytest.raises(ValueError, match="unknown variant"):
        model.architecture("wide")
    with pytest.raises(TypeError, match="unknown architecture"):
        model.architecture(units=3)


def test_architecture_is_json_ready():
    spec = model.architecture(stem_units=96)
    assert json.loads(json.dumps(spec)) == spec
    assert spec["stem_units"] == 96 and spec["block_units"] == [64]


def test_loss_weights_are_inverse_variances():
    rng = np.random.default_rng(0)
    scaled = rng.normal(size=(10_000, 3)) * np.array([1.0, 2.0, 0.5])
    weights = model.loss_weights(scaled)
    assert weights["teff"] == pytest.approx(1.0, rel=0.05)
    assert weights["feh"] == pytest.approx(0.25, rel=0.05)
    assert weights["logg"] == pytest.approx(4.0, rel=0.05)
    with pytest.raises(ValueError, match="zero variance"):
        model.loss_weights(np.ones((5, 3)))
    with pytest.raises(ValueError, match="shape"):
        model.loss_weights(np.ones((5, 2)))


def test_learning_rate_schedule_matches_keras():
    network = model.compile_model(
        model.build_model(input_size=8, stem_units=8, block_units=(8,)),
        weights={"teff": 1, "feh": 1, "logg": 1},
        total_steps=200,
    )
    schedule = (
        network.optimizer.learning_rate
        if callable(network.optimizer.learning_rate)
        else network.optimizer._learning_rate
    )
    steps = np.array([0, 5, 10, 11, 50, 100, 199, 200, 400])
    keras_values = np.array([float(schedule(int(s))) for s in steps])
    ours = model.learning_rate_at(steps, learning_rate=7e-4, total_steps=200)
    np.testing.assert_allclose(ours, keras_values, rtol=1e-5, atol=1e-10)
    assert ours[2] == pytest.approx(7e-4) and ours[-1] == pytest.approx(7e-6)
    assert np.all(np.diff(ours[2:]) <= 0)


def test_training_reduces_the_loss():
    rng = np.random.default_rng(1)
    spectra = rng.normal(size=(512, 32)).astype("float32")
    targets = {
        label: (spectra[:, i : i + 4].sum(axis=1, keepdims=True) / 2).astype("float32")
        for i, label in enumerate(model.architecture()["labels"])
    }
    network = model.build_model(input_size=32, stem_units=32, block_units=(16,), block_dropout=0.0)
    model.compile_model(
        network, weights={"teff": 1.0, "feh": 1.0, "logg": 1.0}, total_steps=160, learning_rate=3e-3
    )
    history = network.fit(spectra, targets, batch_size=64, epochs=20, verbose=0)
    assert history.history["loss"][-1] < 0.3 * history.history["loss"][0]


def test_importing_the_module_does_not_import_keras():
    code = (
        "import sys, stellar_nb.model; print('keras' in sys.modules or 'tensorflow' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


@pytest.mark.slow
def test_model_builds_and_trains_on_jax():
    code = (
        "import keras, numpy as np\n"
        "from stellar_nb import model\n"
        "net = model.build_model()\n"
        "model.compile_model(net, weights={'teff': 1.0, 'feh': 2.0, 'logg': 3.0}, total_steps=4)\n"
        "x = np.random.default_rng(0).normal(size=(64, 4000)).astype('float32')\n"
        "y = {k: np.zeros((64, 1), 'float32') for k in ('teff', 'feh', 'logg')}\n"
        "h = net.fit(x, y, batch_size=32, epochs=2, verbose=0)\n"
        "print(keras.backend.backend(), model.count_parameters(net), len(h.history['loss']))\n"
    )
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-3:] == ["jax", "542771", "2"]
