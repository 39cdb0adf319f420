"""stellar_nb.preprocess on the quick simulated survey: streaming, the CLI and the benchmark."""

import os
import shutil
import time

import numpy as np
import pytest

from stellar_nb import commands, files
from stellar_nb import preprocess as pp
from stellar_nb.data import tables
from stellar_nb.preprocess import store


@pytest.fixture(scope="module")
def validation(quick_survey):
    return pp.prepare_split(quick_survey, "validation", batch_size=128)


def test_prepare_split_streams_standardised_rows(quick_survey, validation, quick_config):
    X, labels, scalars = validation
    assert X.dtype == np.float32 and X.shape[1] == 4000
    assert X.shape[0] == len(labels) == len(scalars) <= quick_config.n_validation
    assert X.shape[0] >= 0.99 * quick_config.n_validation
    assert np.all(np.isfinite(X))
    np.testing.assert_allclose(X.mean(axis=1), 0.0, atol=1e-5)
    np.testing.assert_allclose(X.std(axis=1), 1.0, atol=1e-5)
    assert (scalars["flag"] == 0).all()
    frame = tables.read_split(quick_survey, "validation", columns=["spec_id", "catalog_teff"])
    kept = frame.set_index("spec_id").loc[scalars["spec_id"]]
    np.testing.assert_array_equal(labels[:, 0], kept["catalog_teff"].to_numpy())


def test_prepare_split_matches_preprocessor_and_chunking(quick_survey, validation, tmp_path):
    X, _, scalars = validation
    frame = tables.read_split(quick_survey, "validation", rows=slice(0, 20))
    direct, flags = pp.Preprocessor().transform_frame(frame)
    rows = np.flatnonzero(flags == 0)
    position = {spec_id: i for i, spec_id in enumerate(scalars["spec_id"])}
    np.testing.assert_array_equal(direct[rows], X[[position[s] for s in frame["spec_id"][rows]]])
    on_disk, _, _ = pp.prepare_split(
        quick_survey, "validation", batch_size=1000, out=tmp_path / "X.npy"
    )
    assert isinstance(on_disk, np.memmap)
    np.testing.assert_array_equal(np.asarray(on_disk), X)
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind


def test_prepare_split_bad_arguments(quick_survey):
    with pytest.raises(ValueError, match="label_source"):
        pp.prepare_split(quick_survey, "test", label_source="sspp")
    with pytest.raises(ValueError, match="batch_size"):
        pp.prepare_split(quick_survey, "test", batch_size=0)
    with pytest.raises(ValueError, match="split"):
        pp.prepare_split(quick_survey, "training")


def test_single_spectrum_call_agrees_with_batch(quick_survey):
    frame = tables.read_split(quick_survey, "test", rows=[3])
    row = frame.iloc[0]
    one = pp.Preprocessor().transform_spectrum(
        row.loglam, row.flux, row.ivar, row["mask"], row.rv_adop
    )
    batch, _ = pp.preprocess_spectra(
        *[list(frame[c]) for c in ("loglam", "flux", "ivar", "mask")], frame["rv_adop"].to_numpy()
    )
    np.testing.assert_array_equal(one, batch[0])


def test_cli_preprocess_writes_arrays_and_state(quick_survey, quick_config, tmp_path, capsys):
    out = tmp_path / "out"
    status = commands.main(
        [
            "preprocess",
            "--data-home",
            str(quick_config.data_home),
            "--survey",
            str(quick_survey),
            "--splits",
            "validation",
            "--out",
            str(out),
            "--batch-size",
            "500",
        ]
    )
    assert status == 0
    X = np.load(out / "validation_X.npy")
    meta = np.load(out / "validation_meta.npz")
    assert X.shape == (len(meta["labels"]), 4000) and meta["labels"].shape[1] == 3
    assert (meta["flag"] == 0).all()
    preprocessor = pp.Preprocessor.load(out / "preprocessor.json")
    train = tables.read_split(quick_survey, "train", columns=list(pp.label_columns()))
    np.testing.assert_allclose(
        preprocessor.label_scaler_.center_, np.median(train.to_numpy(), axis=0)
    )
    printed = capsys.readouterr().out
    assert "peak memory" in printed and "validation:" in printed


def test_bench_preprocess_reports_speed_and_agreement(quick_survey, quick_config, capsys):
    status = commands.main(
        [
            "bench",
            "preprocess",
            "--data-home",
            str(quick_config.data_home),
            "--survey",
            str(quick_survey),
            "-n",
            "60",
            "--repeat",
            "1",
        ]
    )
    assert status == 0
    printed = capsys.readouterr().out
    difference = float(printed.split("max |package - naive| = ")[1].split()[0])
    assert difference < 1e-6
    assert "naive SciPy loop" in printed and "streaming pass" in printed


def _preprocess(quick_config, quick_survey, out, *extra):
    return commands.main(
        [
            "preprocess",
            "--data-home",
            str(quick_config.data_home),
            "--survey",
            str(quick_survey),
            "--out",
            str(out),
            "--batch-size",
            "500",
            *extra,
        ]
    )


def test_interrupted_rerun_is_detected_never_mixed_and_rebuilt(
    quick_survey, quick_config, tmp_path, monkeypatch, capsys
):
    out = tmp_path / "out"
    assert _preprocess(quick_config, quick_survey, out, "--splits", "train", "validation") == 0
    assert store.folder_problems(out) == []
    first_validation = np.load(out / "validation_meta.npz")["labels"]
    manifest = files.read_json(out / store.MANIFEST)
    assert manifest["complete"] and sorted(manifest["splits"]) == ["train", "validation"]
    assert manifest["fingerprint"]["preprocessor"]["label_source"] == "catalog"
    # the second run, of other inputs (true labels), fails once train is written
    original = store._write_split

    def failing(preprocessor, survey, folder, split, *args):
        if split == "validation":
            raise RuntimeError("killed")
        return original(preprocessor, survey, folder, split, *args)

    monkeypatch.setattr(store, "_write_split", failing)
    with pytest.raises(RuntimeError, match="killed"):
        _preprocess(quick_config, quick_survey, out, "--label-source", "true")
    problems = store.folder_problems(out)
    assert any("did not finish" in problem for problem in problems)
    # the first run's validation arrays were deleted, not left beside the new train arrays
    assert not (out / "validation_X.npy").exists() and (out / "train_X.npy").exists()
    assert not (out / "preprocessor.json").exists()
    for split in ("train", "validation"):
        with pytest.raises(store.PreprocessedFolderError, match=f"{out}.*incomplete or mixed"):
            store.load_split(out, split)
    with pytest.raises(store.PreprocessedFolderError, match=str(out)):
        store.load_preprocessor(out)
    monkeypatch.setattr(store, "_write_split", original)
    capsys.readouterr()
    assert _preprocess(quick_config, quick_survey, out, "--label-source", "true") == 0
    printed = capsys.readouterr().out
    assert f"{out}: earlier run incomplete or mixed" in printed and "rebuilding" in printed
    assert store.folder_problems(out) == []
    manifest = files.read_json(out / store.MANIFEST)
    assert sorted(manifest["splits"]) == list(sorted(("train", "validation", "test")))
    assert manifest["fingerprint"]["preprocessor"]["label_source"] == "true"
    X, labels, meta = store.load_split(out, "validation")
    truth = tables.read_split(
        quick_survey, "validation", columns=["spec_id", *pp.label_columns("true")]
    )
    kept = truth.set_index("spec_id").loc[meta["spec_id"]]
    np.testing.assert_array_equal(labels, kept.to_numpy())
    assert not np.array_equal(labels, first_validation)
    assert X.shape == (len(labels), 4000) and store.load_preprocessor(out).label_source == "true"


def test_loader_refuses_a_folder_of_mixed_runs(quick_survey, quick_config, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    assert _preprocess(quick_config, quick_survey, first, "--splits", "validation") == 0
    assert (
        _preprocess(
            quick_config, quick_survey, second, "--splits", "validation", "--label-source", "true"
        )
        == 0
    )
    shutil.copy(second / "validation_meta.npz", first / "validation_meta.npz")
    assert store.folder_problems(second) == []
    with pytest.raises(
        store.PreprocessedFolderError, match=rf"{first}.*validation_meta\.npz is not the file"
    ):
        store.load_split(first, "validation")
    with pytest.raises(store.PreprocessedFolderError, match="did not preprocess the test split"):
        store.load_split(second, "test")
    (second / store.MANIFEST).unlink()  # a folder of an older version, or cut short at once
    with pytest.raises(store.PreprocessedFolderError, match=rf"{second}.*no readable run\.json"):
        store.load_split(second, "validation")
    # a folder of the same inputs keeps the splits a rerun was not asked to redo
    assert _preprocess(quick_config, quick_survey, first, "--splits", "test") == 0
    assert sorted(files.read_json(first / store.MANIFEST)["splits"]) == ["test"]
    assert _preprocess(quick_config, quick_survey, first, "--splits", "validation") == 0
    assert sorted(files.read_json(first / store.MANIFEST)["splits"]) == ["test", "validation"]
    assert (
        store.folder_problems(first, store.input_fingerprint(quick_survey, pp.Preprocessor())) == []
    )


def test_stale_scratch_of_killed_runs_is_removed(quick_survey, tmp_path):
    out = tmp_path / "X.npy"
    hour_ago = time.time() - 3600
    stale = [tmp_path / ".X.npy.k1llc8.raw", tmp_path / ".X.npy.q9z2p0.part.npy"]
    for path in stale:
        # what a killed run leaves: raw float32 rows, and a .npy cut short
        np.arange(4000 * 50, dtype="<f4").tofile(path)
        os.utime(path, (hour_ago, hour_ago))
    live = tmp_path / ".X.npy.n0wr1t.raw"  # newer than this process: another run's, in use
    np.zeros(10, "<f4").tofile(live)
    other = tmp_path / ".Y.npy.old123.raw"  # another output's scratch is not ours to remove
    np.zeros(10, "<f4").tofile(other)
    os.utime(other, (hour_ago, hour_ago))
    X, _, _ = pp.prepare_split(quick_survey, "validation", out=out)
    assert X.shape[1] == 4000
    assert not any(path.exists() for path in stale)
    assert live.exists() and other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, other.name, "X.npy"])
