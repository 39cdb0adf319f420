"""stellar_nb.preprocess on the quick simulated survey: streaming, the CLI and the benchmark."""

import numpy as np
import pytest

from stellar_nb import commands
from stellar_nb import preprocess as pp
from stellar_nb.data import tables


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
