import json

import keras_tuner
import numpy as np
import pytest

from stellar_nb import files, model, tune


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


def _toy_data(seed=0):
    rng = np.random.default_rng(seed)
    spectra = rng.normal(size=(128, 40)).astype(np.float32)
    labels = np.stack([spectra[:, :5].sum(1), spectra[:, 5:10].sum(1), spectra[:, 10:15].sum(1)], 1)
    return {
        "train_spectra": spectra[:96],
        "train_labels": labels[:96],
        "validation_spectra": spectra[96:],
        "validation_labels": labels[96:],
    }


def _toy_search(directory, *, seed=0, max_trials=2, **options):
    hypermodel = tune.StellarHyperModel(
        {"teff": 1.0, "feh": 1.0, "logg": 1.0}, 1, input_size=40, seed=seed
    )
    tuner = tune.make_tuner(
        hypermodel, directory=directory, max_trials=max_trials, seed=seed, **options
    )
    tuner.search(_toy_data(), epochs=1, batch_size=96)
    return tuner


def _trials(tuner):
    trials = sorted(tuner.oracle.trials.values(), key=lambda trial: trial.trial_id)
    return [(trial.hyperparameters.values, trial.score) for trial in trials]


def test_search_space_declares_every_block():
    space = {parameter["name"]: parameter for parameter in tune.search_space()}
    assert {"block1_units", "block2_units", "learning_rate", "logg_head"} <= set(space)
    assert (space["block2_units"]["min_value"], space["block2_units"]["max_value"]) == (32, 64)
    assert space["learning_rate"]["sampling"] == "log"


def test_data_fingerprint_follows_the_data(tmp_path):
    survey = tmp_path / "survey"
    survey.mkdir()
    (survey / "train.parquet").write_bytes(b"train rows")
    (survey / "validation.parquet").write_bytes(b"validation rows")
    (survey / "survey.json").write_text(json.dumps({"n": 10, "seed": 3}))
    first = tune.data_fingerprint(survey, seed=0, epochs=2, batch_size=64)
    assert first == tune.data_fingerprint(survey, seed=0, epochs=2, batch_size=64)
    assert first["survey"]["manifest_sha256"] == files.sha256sum(survey / "survey.json")
    assert first["survey"]["tables"]["train"]["bytes"] == 10
    assert (first["label_source"], first["input_variant"]) == ("catalog", "paper")
    assert first["space"] == tune.search_space()
    assert first != tune.data_fingerprint(survey, seed=1, epochs=2, batch_size=64)
    assert first != tune.data_fingerprint(
        survey, seed=0, label_source="true", epochs=2, batch_size=64
    )
    assert first != tune.data_fingerprint(
        survey, seed=0, input_variant="continuum", epochs=2, batch_size=64
    )
    (survey / "train.parquet").write_bytes(b"other rows")  # same size, other content
    changed = tune.data_fingerprint(survey, seed=0, epochs=2, batch_size=64)
    assert changed["survey"]["tables"]["train"]["bytes"] == 10 and changed != first
    (survey / "validation.parquet").unlink()
    with pytest.raises(FileNotFoundError, match=r"has no validation\.parquet"):
        tune.data_fingerprint(survey, seed=0)


@pytest.mark.slow
def test_seeded_searches_draw_the_same_trials(tmp_path):
    # seed 0 included: Keras Tuner alone would read it as "unseeded" and draw at random
    first = _trials(_toy_search(tmp_path / "a", seed=0))
    again = _trials(_toy_search(tmp_path / "b", seed=0))
    assert [values for values, _ in first] == [values for values, _ in again]
    assert [score for _, score in first] == pytest.approx([score for _, score in again], rel=1e-6)
    other = _trials(_toy_search(tmp_path / "c", seed=7, max_trials=1))
    assert other[0][0] != first[0][0]
    with pytest.raises(ValueError, match="non-negative"):
        _toy_search(tmp_path / "d", seed=-1)


@pytest.mark.slow
def test_a_search_on_other_data_is_refused_or_restarted(tmp_path):
    project = tmp_path / "residual_mlp"
    fingerprint = {"survey": {"files": {"train.parquet": {"sha256": "aa"}}}, "seed": 0}
    other = {**fingerprint, "survey": {"files": {"train.parquet": {"sha256": "bb"}}}}
    _toy_search(tmp_path, max_trials=1, fingerprint=fingerprint)
    assert json.loads((project / tune.FINGERPRINT).read_text()) == fingerprint
    # the same data resumes: the finished trial is reloaded
    resumed = _toy_search(tmp_path, max_trials=2, fingerprint=fingerprint)
    assert len(resumed.oracle.trials) == 2
    with pytest.raises(
        ValueError, match=r"tuner folder .*residual_mlp holds a search on other data"
    ) as refused:
        _toy_search(tmp_path, max_trials=2, fingerprint=other)
    assert "differing: survey" in str(refused.value) and "overwrite=True" in str(refused.value)
    assert json.loads((project / tune.FINGERPRINT).read_text()) == fingerprint  # left as it was
    restarted = _toy_search(tmp_path, max_trials=1, fingerprint=other, overwrite=True)
    assert len(restarted.oracle.trials) == 1
    assert json.loads((project / tune.FINGERPRINT).read_text()) == other
    # a folder from before fingerprints is refused too
    (project / tune.FINGERPRINT).unlink()
    with pytest.raises(ValueError, match="without a data fingerprint"):
        _toy_search(tmp_path, max_trials=1, fingerprint=other)
