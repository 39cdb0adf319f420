"""Tests of ``stellar-nb fetch`` through the real CLI entry point, against loopback servers."""

import subprocess
import sys

import loopback
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from stellar_nb import commands, schema
from stellar_nb.data import download, paper_dataset, sdss, tables


@pytest.fixture
def site(tmp_path):
    return loopback.synthetic_site(tmp_path / "site", n=12, seed=11)


def fetch_sdss(server, tmp_path, *extra):
    return commands.main(
        ["fetch", "sdss", "--n", "12", "--out", str(tmp_path / "out"), "--data-home", str(tmp_path / "home"),
         "--skyserver-url", server.skyserver_url, "--sas-url", server.sas_url, "--no-progress", "--page-size", "5", *extra]
    )  # fmt: skip


def test_fetch_sdss_end_to_end(site, tmp_path, capsys):
    with loopback.LoopbackServer(site.root, catalogue=site.catalogue) as server:
        assert fetch_sdss(server, tmp_path) == 0
    out = tmp_path / "out"
    output = capsys.readouterr().out
    assert "catalogue: 12 stars" in output and "12 downloaded, 0 cached, 0 failed" in output
    assert len(pd.read_csv(out / "catalogue.csv")) == 12
    counts = [len(tables.read_split(out, split, columns=["spec_id"])) for split in schema.SPLITS]
    assert counts == [8, 1, 3]  # 12 x (30, 5, 15)/50, remainder to train
    assert pd.read_csv(out / "rejected.csv").empty
    train = tables.read_split(out, "train", rows=[0])
    assert len(train.loc[0, "flux"]) == 3840


def test_fetch_sdss_reports_failures_and_resumes(site, tmp_path, capsys):
    frame = sdss.clean_catalogue(
        site.catalogue.rename(columns=str.lower).rename(columns=sdss.COLUMNS)
    )
    path = sdss.spectrum_path(frame.iloc[4])
    with loopback.LoopbackServer(site.root, catalogue=site.catalogue) as server:
        server.fail(path, "404", times=1)
        assert fetch_sdss(server, tmp_path) == 1
        captured = capsys.readouterr()
        assert "1 failed" in captured.out and path in captured.out
        assert "rerun the same command to resume" in captured.err
        assert "1 spectra rejected" in captured.err and "not downloaded" in captured.err
        assert fetch_sdss(server, tmp_path) == 0
        second = capsys.readouterr().out
    assert "1 downloaded, 11 cached, 0 failed" in second
    assert (
        sum(len(tables.read_split(tmp_path / "out", s, columns=["snr"])) for s in schema.SPLITS)
        == 12
    )


def test_fetch_sdss_skyserver_down(site, tmp_path, capsys):
    with loopback.LoopbackServer(site.root, catalogue=site.catalogue) as server:
        server.fail("/dr12/SkyserverWS/SearchTools/SqlSearch", "500", times=10)
        assert fetch_sdss(server, tmp_path, "--retries", "0") == 1
    assert "SkyServer query to" in capsys.readouterr().err


def test_fetch_sdss_bad_n(tmp_path, capsys):
    assert (
        commands.main(
            ["fetch", "sdss", "--n", "0", "--out", str(tmp_path), "--data-home", str(tmp_path)]
        )
        == 1
    )
    assert "--n must be positive" in capsys.readouterr().err


def hub_folder(tmp_path):
    folder = tmp_path / "hub"
    folder.mkdir()
    for index, split in enumerate(schema.SPLITS):
        columns = {
            name: np.arange(3, dtype=np.int64) + 10 * index
            for name in ("spec_id", "plate", "mjd", "fiber")
        }
        columns |= {
            name: np.ones(3) for name in ("ra", "dec", "snr", "rv_adop", *schema.CATALOG_COLUMNS)
        }
        columns |= {name: pa.array([np.ones(4, np.float32)] * 3) for name in schema.ARRAY_COLUMNS}
        pq.write_table(pa.table(columns), folder / f"{split}-00000-of-00001.parquet")
    return folder


def test_fetch_paper_dataset(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    folder = hub_folder(tmp_path)
    with loopback.LoopbackServer(datasets={paper_dataset.REPOSITORY: folder}) as server:
        argv = ["fetch", "paper-dataset", "--hf-url", server.url, "--no-progress"]
        argv += ["--data-home", str(tmp_path)]
        assert commands.main([*argv, "--out", str(tmp_path / "bench")]) == 0
        assert "paper data set splits in" in capsys.readouterr().out
        frame = paper_dataset.load_paper_dataset("test", data_home=tmp_path / "bench")
        assert frame["spec_id"].tolist() == [20, 21, 22]
        train = folder / "train-00000-of-00001.parquet"
        server.fail(f"/lfs/{download.sha256sum(train)}", "corrupt", times=10)
        assert commands.main([*argv, "--out", str(tmp_path / "again"), "--retries", "0"]) == 1
    error = capsys.readouterr().err
    assert "train-00000-of-00001.parquet: checksum mismatch" in error
    assert "rerun the same command to resume" in error


def test_fetch_help_lists_sources():
    result = subprocess.run(
        [sys.executable, "-m", "stellar_nb.commands", "fetch", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert "sdss" in result.stdout and "paper-dataset" in result.stdout
    with pytest.raises(SystemExit) as exit_info:
        commands.main(["fetch"])
    assert exit_info.value.code == 2
