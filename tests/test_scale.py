"""Tests of stellar_nb.scale: Dask on loopback gives the serial results; distributed tuning."""

import operator
import os
import pathlib
import socket
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from test_train import quick_model

from stellar_nb import commands, inference, predict, scale
from stellar_nb.data import tables


@pytest.fixture(scope="module")
def model_dir(quick_config, quick_survey):
    return quick_model(quick_config, quick_survey)


@pytest.fixture(scope="module")
def client():
    with scale.cluster("local:2") as client:
        yield client


@pytest.fixture(scope="module")
def inputs(quick_survey, sdss_fixtures, tmp_path_factory):
    """Real SDSS files, an unreadable one, and a split table of several row groups."""
    folder = tmp_path_factory.mktemp("scale_inputs")
    bad = folder / "not-a-spectrum.fits"
    bad.write_bytes(b"SIMPLE  = nonsense" * 10)
    frame = tables.read_split(quick_survey, "validation", rows=slice(0, 96))
    tables.write_split(frame, folder / "test.parquet", row_group_size=32)
    fits = sorted(str(path) for path in sdss_fixtures.glob("*.fit*"))
    return [*fits[:3], str(bad), str(folder / "test.parquet"), *fits[3:]]


@pytest.mark.parametrize(
    "address", ["local:0", "local:x", "2", "tcp://host", "http://host:8786", ""]
)
def test_parse_address_refuses_other_forms(address):
    with pytest.raises(ValueError, match="local:N"):
        scale.parse_address(address)


def test_parse_address():
    assert scale.parse_address(" local:3 ") == 3
    assert scale.parse_address("tcp://127.0.0.1:8786") == "tcp://127.0.0.1:8786"


def test_ordered_map_keeps_input_order_with_few_in_flight(client):
    results = scale.ordered_map(client, operator.mul, iter(range(40)), shared=3, in_flight=3)
    assert list(results) == [3 * n for n in range(40)]
    with pytest.raises(ValueError, match="in_flight"):
        next(scale.ordered_map(client, operator.mul, range(3), in_flight=0))


def test_partitions_group_files_and_row_groups(inputs):
    parts = predict.partitions(inputs, files_per_partition=2, rows_per_partition=50)
    fits = [path for path in inputs if not path.endswith(".parquet")]
    # files in pairs, interrupted by the table in ranges of 50 rows
    assert [len(part) for part in parts[:2]] == [2, 2]
    assert parts[1] == [(fits[2], None), (fits[3], None)]
    ranges = [rows for part in parts for _, rows in part if rows is not None]
    assert ranges == [slice(0, 50), slice(50, 96)]
    assert [path for part in parts for path, _ in part if not path.endswith(".parquet")] == fits


def test_dask_predict_equals_serial(model_dir, client, inputs):
    model = inference.NumpyModel.load(model_dir)
    sizes = {"files_per_partition": 2, "rows_per_partition": 50}
    serial, serial_failures = predict.predict_files(model, inputs, uncertainty=True, **sizes)
    dask, dask_failures = predict.predict_files(
        model, inputs, uncertainty=True, client=client, **sizes
    )
    pd.testing.assert_frame_equal(dask, serial, check_exact=True)
    assert dask_failures == serial_failures
    assert [path for path, _ in dask_failures] == [inputs[3]]
    assert len(serial) == len(inputs) - 1 + 96
    # the row-group ranges give the numbers of the whole table read at once
    whole, _ = predict.predict_files(model, [inputs[4]])
    np.testing.assert_allclose(
        serial.loc[serial["source"] == inputs[4], ["teff", "feh", "logg"]].to_numpy(),
        whole[["teff", "feh", "logg"]].to_numpy(),
        rtol=1e-6,
    )


def test_predict_command_with_dask(model_dir, inputs, tmp_path, capsys):
    table = inputs[4]
    serial, dask = tmp_path / "serial.csv", tmp_path / "dask.csv"
    assert commands.main(["predict", str(model_dir), str(table), "--out", str(serial)]) == 0
    status = commands.main(
        ["predict", str(model_dir), str(table), "--out", str(dask), "--dask", "local:2"]
    )
    assert status == 0
    pd.testing.assert_frame_equal(pd.read_csv(dask), pd.read_csv(serial))
    assert dask.read_bytes() == serial.read_bytes()
    assert "96 spectra (96 stars" in capsys.readouterr().out


def test_predict_command_refuses_a_bad_address_before_loading(tmp_path, capsys):
    out = tmp_path / "out.csv"
    status = commands.main(
        ["predict", "no-such-model", "x.fits", "--out", str(out), "--dask", "8786"]
    )
    assert status == 1 and "local:N" in capsys.readouterr().err and not out.exists()


def test_dask_preprocess_equals_serial(quick_survey, quick_config, tmp_path, capsys):
    from stellar_nb.preprocess import Preprocessor, store

    serial, dask = tmp_path / "serial", tmp_path / "dask"
    splits = ["validation", "test"]
    store.preprocess_survey(quick_survey, serial, Preprocessor(), splits=splits, batch_size=128)
    status = commands.main(
        [
            "preprocess",
            "--survey",
            str(quick_survey),
            "--data-home",
            str(quick_config.data_home),
            "--splits",
            *splits,
            "--batch-size",
            "128",
            "--out",
            str(dask),
            "--dask",
            "local:2",
        ]
    )
    assert status == 0 and "validation: 300 spectra" in capsys.readouterr().out
    for split in splits:
        assert (dask / f"{split}_X.npy").read_bytes() == (serial / f"{split}_X.npy").read_bytes()
        X, labels, meta = store.load_split(dask, split)
        _, labels_serial, meta_serial = store.load_split(serial, split)
        np.testing.assert_array_equal(labels, labels_serial)
        np.testing.assert_array_equal(meta["spec_id"], meta_serial["spec_id"])
        np.testing.assert_array_equal(meta["flag"], meta_serial["flag"])
        assert meta["spec_id"].dtype == meta_serial["spec_id"].dtype and len(X) > 250
    assert not store.folder_problems(dask)


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _tune_process(data_home, log, *options):
    """``stellar-nb tune`` in quick mode (4 trials of 1 epoch) as a process writing to ``log``."""
    command = [sys.executable, "-m", "stellar_nb.commands", "tune", "--quick"]
    command += ["--data-home", str(data_home), "--trials", "4", "--epochs", "1", *options]
    with open(log, "w") as stream:
        return subprocess.Popen(command, stdout=stream, stderr=subprocess.STDOUT, cwd=data_home)


def _ran_by(project_dir, tuner_id):
    """Trials of a tuner project folder that ``tuner_id`` began."""
    from stellar_nb import tune

    rows = tune.report(project_dir) if project_dir.is_dir() else []
    return [row["trial"] for row in rows if row["tuner_id"] == tuner_id]


def _wait_for(condition, seconds, what):
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        time.sleep(0.5)


@pytest.mark.parametrize(
    ("role", "oracle", "tuner_id", "message"),
    [
        ("boss", "127.0.0.1:8000", None, "one of"),
        ("chief", "127.0.0.1", None, "HOST:PORT"),
        ("worker", "127.0.0.1:8000", None, "tuner id"),
        ("worker", "127.0.0.1:8000", "chief-2", "must not contain"),
    ],
)
def test_distributed_environment_refuses_bad_settings(role, oracle, tuner_id, message):
    from stellar_nb import tune

    with pytest.raises(ValueError, match=message):
        with tune.distributed_environment(role, oracle, tuner_id):
            pass


def test_distributed_environment_is_restored(monkeypatch):
    from stellar_nb import tune

    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "1")
    monkeypatch.delenv("KERASTUNER_TUNER_ID", raising=False)
    with tune.distributed_environment("worker", "10.0.0.1:8000", "w1") as tuner_id:
        assert tuner_id == "w1" and os.environ["KERASTUNER_ORACLE_IP"] == "10.0.0.1"
        assert os.environ["KERASTUNER_ORACLE_PORT"] == "8000"
    assert os.environ["KERASTUNER_ORACLE_PORT"] == "1"
    assert "KERASTUNER_TUNER_ID" not in os.environ


@pytest.mark.slow
def test_distributed_search_survives_a_killed_worker(quick_config, quick_survey, tmp_path):
    """A chief and two workers run four trials; a worker killed mid-trial and restarted loses none."""
    from stellar_nb import tune

    data_home = quick_config.data_home
    oracle = f"127.0.0.1:{_free_port()}"
    project = "distributed_test"
    trials = pathlib.Path(quick_config.tuner_dir) / project
    worker = ["--oracle", oracle, "--project", project, "--distributed", "worker", "--tuner-id"]
    chief = _tune_process(data_home, tmp_path / "chief.log", *worker[:4], "--distributed", "chief")
    processes = [chief, _tune_process(data_home, tmp_path / "w1.log", *worker, "w1")]
    try:
        _wait_for(lambda: _ran_by(trials, "w1"), 600, "worker w1 to begin a trial")
        processes[1].kill()
        processes[1].wait()
        killed = _ran_by(trials, "w1")
        processes += [
            _tune_process(data_home, tmp_path / f"{name}-again.log", *worker, name)
            for name in ("w1", "w2")
        ]
        assert chief.wait(timeout=900) == 0, (tmp_path / "chief.log").read_text()
        for process, name in zip(processes[2:], ("w1", "w2"), strict=True):
            assert process.wait(timeout=120) == 0, (tmp_path / f"{name}-again.log").read_text()
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    rows = tune.report(trials)
    assert len(rows) == 4 and {row["status"] for row in rows} == {"COMPLETED"}
    assert {row["tuner_id"] for row in rows} == {"w1", "w2"}
    # the trial the killed worker was running was handed back to it and finished
    assert [row["tuner_id"] for row in rows if row["trial"] in killed] == ["w1"] * len(killed)
    output = (tmp_path / "chief.log").read_text()
    assert "4 trials; best validation loss" in output and "trials per worker: w1" in output
