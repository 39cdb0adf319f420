import json

import keras_tuner
import numpy as np
import pytest

from stellar_nb import model, tune


def test_hypermodel_default_space_builds_the_smallest_model():
    hp = keras_tuner.HyperParameters()
    architecture, training = tune.hyperparameters_to_arguments(hp)
    assert architecture["stem_units"] == 64 and architecture["block_units"] == (32,)
    assert architecture["head_units"] == {"teff": (16,), "feh": (16,), "logg": (16,)}
    assert 1e-4 <= training["learning_rate"] <= 5e-3 and 1e-5 <= training["weight_decay"] <= 1e-2
    hypermodel = tune.StellarHyperModel({"teff": 1.0, "feh": 1.0, "logg": 1.0}, total_steps=10)
    network = hypermodel.build(hp)
    # stem 4000*64+64, LN 128; block LN 128, 64*32+32, LN 64, 32*32+32, shortcut LN 128 + 64*32+32;
    # final LN 64; three heads 32*16+16 + 16+1.
    expected = (
        (4000 * 64 + 64 + 128) + (128 + 64 * 32 + 32 + 64 + 32 * 32 + 32 + 128 + 64 * 32 + 32) + 64
    )
    expected += 3 * (32 * 16 + 16 + 16 + 1)
    assert model.count_parameters(network) == expected
    assert network.optimizer.__class__.__name__ == "AdamW"


def test_search_space_matches_the_paper():
    hp = keras_tuner.HyperParameters()
    tune.hyperparameters_to_arguments(hp)
    space = {p.name: p for p in hp.space}
    assert (space["stem_units"].min_value, space["stem_units"].max_value) == (64, 128)
    assert (space["blocks"].min_value, space["blocks"].max_value) == (1, 2)
    assert (space["block1_units"].min_value, space["block1_units"].max_value) == (32, 64)
    assert space["stem_dropout"].max_value == 0.5 and space["head_dropout"].max_value == 0.4
    assert (space["learning_rate"].sampling, space["weight_decay"].sampling) == ("log", "log")
    assert set(space["teff_head"].values) == set(tune.HEAD_TEMPLATES)


@pytest.mark.slow
def test_bayesian_search_runs_and_resumes(tmp_path):
    rng = np.random.default_rng(0)
    spectra = rng.normal(size=(256, 40)).astype(np.float32)
    labels = np.stack([spectra[:, :5].sum(1), spectra[:, 5:10].sum(1), spectra[:, 10:15].sum(1)], 1)
    data = {
        "train_spectra": spectra[:192],
        "train_labels": labels[:192],
        "validation_spectra": spectra[192:],
        "validation_labels": labels[192:],
    }

    def search(max_trials):
        hypermodel = tune.StellarHyperModel(
            {"teff": 1.0, "feh": 1.0, "logg": 1.0}, 4, input_size=40
        )
        tuner = tune.make_tuner(hypermodel, directory=tmp_path, max_trials=max_trials, seed=1)
        tuner.search(data, epochs=2, batch_size=128)
        return tuner

    first = search(2)
    assert len(first.oracle.trials) == 2
    resumed = search(3)  # same folder: the two finished trials are reloaded, one more is run
    assert len(resumed.oracle.trials) == 3
    summary = tune._summarise(resumed)
    scores = [trial["val_loss"] for trial in summary["trials"]]
    assert len(scores) == 3 and summary["val_loss"] == min(scores) and np.isfinite(scores).all()
    saved = json.loads(summary["path"].read_text())
    assert saved["hyperparameters"] == summary["hyperparameters"]


@pytest.mark.slow
def test_tune_on_the_quick_survey(quick_config, quick_survey):
    import dataclasses

    config = dataclasses.replace(quick_config, trials=2, tune_epochs=1)
    result = tune.tune(config, quick_survey, project_name="quick_test")
    assert len(result["trials"]) == 2
    assert 64 <= result["architecture"]["stem_units"] <= 128
    assert result["val_loss"] > 0 and result["path"].is_file()
