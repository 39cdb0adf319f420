"""Tests of stellar_nb.model_directory: every part of a model directory is checked at load.

A model directory is written once per module by :func:`stellar_nb.model_directory.write` (an
untrained paper network: loading checks do not depend on training), copied for each test and
damaged one part at a time; each damage must raise ``ModelDirectoryError`` naming the file.
"""

import json
import shutil

import numpy as np
import pytest

from stellar_nb import files, inference, model, model_directory, preprocess

Error = model_directory.ModelDirectoryError


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    spec = model.architecture()
    network = model.build_model(**spec, seed=4)
    processor = preprocess.Preprocessor()
    rng = np.random.default_rng(0)
    processor.fit_labels(
        np.column_stack(
            [rng.uniform(4000, 7000, 50), rng.uniform(-2, 0.5, 50), rng.uniform(1, 5, 50)]
        )
    )
    description = {"architecture": spec, "training": model.training_settings()}
    metrics = {"calibration": {"sigma_model": {"teff": 50.0, "feh": 0.05, "logg": 0.08}}}
    folder = tmp_path_factory.mktemp("written") / "model"
    return model_directory.write(folder, network, description, processor, {"loss": [1.0]}, metrics)


@pytest.fixture
def model_dir(written, tmp_path):
    target = tmp_path / "model"
    shutil.copytree(written, target)
    return target


def _replace(model_dir, name, write):
    """Replace one file and record its new SHA-256, so that only its content is wrong."""
    path = model_dir / name
    write(path)
    manifest = files.read_json(model_dir / model_directory.MANIFEST)
    manifest["files"][name] = files.sha256sum(path)
    files.write_json(model_dir / model_directory.MANIFEST, manifest)


def _edit_json(model_dir, name, change):
    data = files.read_json(model_dir / name)
    _replace(model_dir, name, lambda path: files.write_json(path, change(data)))


def _edit_weights(model_dir, change):
    with np.load(model_dir / "weights.npz") as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays = change(arrays)
    _replace(model_dir, "weights.npz", lambda path: np.savez(path, **arrays))


def test_written_directory_loads_with_the_network_weights(written):
    loaded = model_directory.load(written)
    assert loaded.labels == ("teff", "feh", "logg")
    assert loaded.sigma_model["teff"] == pytest.approx(50.0)
    assert set(loaded.weights) == set(inference.weight_shapes(loaded.architecture))
    manifest = model_directory.read_manifest(written)
    assert set(manifest["files"]) == set(model_directory.REQUIRED_FILES)


def test_shipped_model_loads_and_its_manifest_lists_every_file_read():
    folder = model_directory.pretrained_dir()
    manifest = model_directory.read_manifest(folder)
    assert set(model_directory.REQUIRED_FILES) <= set(manifest["files"])
    loaded = model_directory.load()
    assert loaded.architecture == model.architecture()
    assert inference.weight_problems(loaded.architecture, loaded.weights) == []
    assert model_directory.read_record("metrics")["epochs"] == 30


def test_weights_not_in_the_manifest_are_refused(model_dir):
    manifest = files.read_json(model_dir / "manifest.json")
    del manifest["files"]["weights.npz"]
    files.write_json(model_dir / "manifest.json", manifest)
    with pytest.raises(Error, match=r"weights\.npz is not listed in .*manifest\.json"):
        model_directory.load(model_dir)
    # not even when hashes are not verified
    with pytest.raises(Error, match=r"weights\.npz is not listed"):
        model_directory.load(model_dir, verify=False)


def test_swapped_weights_with_another_hash_are_refused(model_dir):
    shapes = inference.weight_shapes(model.architecture())
    rng = np.random.default_rng(1)
    arrays = {name: rng.normal(size=shape).astype("float32") for name, shape in shapes.items()}
    np.savez(model_dir / "weights.npz", **arrays)
    with pytest.raises(Error, match=r"weights\.npz is corrupt: its SHA-256 differs"):
        model_directory.load(model_dir)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: {k: v for k, v in d.items() if k != "architecture"}, "has no 'architecture'"),
        (lambda d: [d], "has no 'architecture'"),
        (lambda d: {**d, "architecture": "paper"}, "must be an object"),
        (
            lambda d: {**d, "architecture": {**d["architecture"], "stem_units": "128"}},
            "'stem_units' must be a positive integer",
        ),
        (
            lambda d: {
                **d,
                "architecture": {k: v for k, v in d["architecture"].items() if k != "input_size"},
            },
            "has no 'input_size'",
        ),
        (
            lambda d: {**d, "architecture": {**d["architecture"], "labels": ["teff", "mass"]}},
            "'labels' must be",
        ),
        (
            lambda d: {**d, "architecture": {**d["architecture"], "block_units": [64, -1]}},
            "'block_units' must be a list of positive integers",
        ),
        (
            lambda d: {**d, "architecture": {**d["architecture"], "skip": "yes"}},
            "'skip' must be true or false",
        ),
    ],
    ids=[
        "no-architecture",
        "a-list",
        "not-object",
        "string-units",
        "no-input-size",
        "labels",
        "negative-block",
        "skip-type",
    ],
)
def test_malformed_model_json_names_the_file(model_dir, change, expected):
    _edit_json(model_dir, "model.json", change)
    with pytest.raises(Error, match=r"model\.json") as raised:
        model_directory.load(model_dir)
    assert expected in str(raised.value)


def test_model_json_labels_must_agree_with_the_manifest(model_dir):
    def reorder(description):
        architecture = description["architecture"]
        return {**description, "architecture": {**architecture, "labels": ["feh", "teff", "logg"]}}

    _edit_json(model_dir, "model.json", reorder)
    with pytest.raises(Error, match=r"model\.json: labels \['feh', 'teff', 'logg'\] differ"):
        model_directory.load(model_dir)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda a: {k: v for k, v in a.items() if not k.startswith("block1_dense2")},
            "missing 2 array(s): block1_dense2/0, block1_dense2/1",
        ),
        (
            lambda a: {**a, "stem_dense/0": a["stem_dense/0"][:3999]},
            "stem_dense/0 has shape (3999, 128), the architecture needs (4000, 128)",
        ),
        (
            lambda a: {**a, "extra_dense/0": np.zeros(3, "float32")},
            "unexpected array(s): extra_dense/0",
        ),
        (lambda a: {**a, "teff/1": np.array([np.nan], "float32")}, "teff/1 holds NaN"),
        (lambda a: {**a, "feh/1": np.array([1], "int64")}, "feh/1 holds int64"),
    ],
    ids=["missing-layer", "wrong-shape", "extra-layer", "nan", "integer"],
)
def test_weights_are_checked_against_the_architecture_at_load(model_dir, change, expected):
    _edit_weights(model_dir, change)
    with pytest.raises(Error, match=r"weights\.npz: does not match model\.json") as raised:
        model_directory.load(model_dir)
    assert expected in str(raised.value)


def test_unreadable_weights_archive_names_the_file(model_dir):
    _replace(model_dir, "weights.npz", lambda path: path.write_bytes(b"PK\x03\x04 not a zip"))
    with pytest.raises(Error, match=r"weights\.npz: not a readable numpy archive"):
        model_directory.load(model_dir)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda s: [s], "does not describe a preprocessor"),
        (lambda s: {**s, "colour": "red"}, "does not describe a preprocessor"),
        (
            lambda s: {**s, "grid_size": 3000},
            "makes 3000-pixel inputs, but the architecture takes 4000",
        ),
        (lambda s: {k: v for k, v in s.items() if k != "label_scaler"}, "no fitted 'label_scaler'"),
        (
            lambda s: {**s, "label_scaler": {**s["label_scaler"], "scale": [1.0, 0.0, 1.0]}},
            "scale positive",
        ),
        (
            lambda s: {**s, "label_scaler": {**s["label_scaler"], "center": [1.0]}},
            "one value per label",
        ),
    ],
    ids=["a-list", "unknown-key", "grid-size", "no-scaler", "zero-scale", "short-center"],
)
def test_malformed_preprocessor_json_names_the_file(model_dir, change, expected):
    _edit_json(model_dir, "preprocessor.json", change)
    with pytest.raises(Error, match=r"preprocessor\.json") as raised:
        model_directory.load(model_dir)
    assert expected in str(raised.value)


def test_malformed_metrics_and_manifest_name_the_file(model_dir):
    _edit_json(model_dir, "metrics.json", lambda m: {"calibration": {"sigma_model": {"teff": "x"}}})
    with pytest.raises(Error, match=r"metrics\.json: malformed calibration terms"):
        model_directory.load(model_dir)
    (model_dir / "manifest.json").write_text(json.dumps([1, 2]))
    with pytest.raises(Error, match=r"manifest\.json must hold a JSON object, not list"):
        model_directory.load(model_dir)
    (model_dir / "manifest.json").write_text(
        json.dumps({"layout_version": model_directory.LAYOUT_VERSION, "files": ["weights.npz"]})
    )
    with pytest.raises(Error, match=r"manifest\.json: 'files' must map each file name"):
        model_directory.load(model_dir)


def test_records_are_checked_against_the_manifest(model_dir):
    # a later report (written by --out, not in the manifest) is read as a report
    (model_dir / "evaluation.json").write_text(json.dumps({"rows": 3}))
    assert model_directory.read_record("evaluation", model_dir) == {"rows": 3}
    model_directory.rewrite_json(model_dir, "evaluation.json", {"rows": 4})
    assert model_directory.read_record("evaluation", model_dir) == {"rows": 4}
    (model_dir / "evaluation.json").write_text(json.dumps({"rows": 5}))
    with pytest.raises(Error, match=r"evaluation\.json is corrupt"):
        model_directory.read_record("evaluation", model_dir)
    assert model_directory.read_record("history", model_dir) == {"loss": [1.0]}
    (model_dir / "history.json").write_text(json.dumps({"loss": [0.1]}))
    with pytest.raises(Error, match=r"history\.json is corrupt"):
        model_directory.read_record("history", model_dir)
