"""Tests of stellar_nb.data.paper_dataset against a Hugging Face stand-in on loopback."""

import json

import loopback
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from stellar_nb import schema
from stellar_nb.data import download, paper_dataset

REPO = paper_dataset.REPOSITORY


def shard(rng, n, start):
    """A benchmark-like table: scalars, list<float> spectra, labels (as the Hub stores them)."""
    pixels = 12
    columns = {
        "spec_id": pa.array(np.arange(start, start + n, dtype=np.int64)),
        "plate": pa.array(np.full(n, 266, np.int64)),
        "mjd": pa.array(np.full(n, 51602, np.int64)),
        "fiber": pa.array(np.arange(n, dtype=np.int64) % 640 + 1),
        "ra": pa.array(rng.uniform(0, 360, n)),
        "dec": pa.array(rng.uniform(-10, 60, n)),
        "snr": pa.array(rng.uniform(10, 121, n)),
        "rv_adop": pa.array(rng.normal(0, 100, n)),
    }
    for name in ("flux", "loglam", "ivar", "processed_flux"):
        values = rng.normal(size=(n, pixels)).astype(np.float32)
        if name == "loglam":
            values = np.tile(3.58 + 1e-4 * np.arange(pixels, dtype=np.float32), (n, 1))
        columns[name] = pa.array(list(values), type=pa.list_(pa.float32()))
    columns["mask"] = pa.array([np.zeros(pixels, np.int32)] * n, type=pa.list_(pa.int32()))
    for label, (low, high) in zip(
        schema.LABELS, ((4000, 9190), (-4.38, 0.74), (0.18, 4.93)), strict=True
    ):
        columns[f"catalog_{label}"] = pa.array(rng.uniform(low, high, n))
        columns[f"catalog_{label}_unc"] = pa.array(rng.uniform(0.01, 0.2, n))
    return pa.table(columns)


@pytest.fixture
def hub(tmp_path):
    """A dataset folder laid out as on the Hub: train in two shards (one with a 3,000-row group)."""
    folder = tmp_path / "hub"
    (folder / "data").mkdir(parents=True)
    rng = np.random.default_rng(7)
    pq.write_table(
        shard(rng, 3000, 0), folder / "data" / "train-00000-of-00002.parquet", row_group_size=3000
    )
    pq.write_table(shard(rng, 500, 3000), folder / "data" / "train-00001-of-00002.parquet")
    pq.write_table(shard(rng, 300, 10_000), folder / "data" / "validation-00000-of-00001.parquet")
    pq.write_table(
        shard(rng, 700, 20_000), folder / "data" / "test-00000-of-00001.parquet", row_group_size=100
    )
    (folder / "README.md").write_text("---\nlicense: mit\n---\n")
    with loopback.LoopbackServer(datasets={REPO: folder}) as server:
        yield server, folder


def test_split_names_recognised():
    assert paper_dataset._split_of("data/validation-00000-of-00001.parquet") == "validation"
    assert paper_dataset._split_of("val/part-0.parquet") == "validation"
    assert paper_dataset._split_of("train.parquet") == "train"
    assert paper_dataset._split_of("data/test_0.parquet") == "test"
    assert paper_dataset._split_of("data/training_notes.parquet") is None


def test_listing_has_checksums(hub):
    server, folder = hub
    listing = paper_dataset.list_paper_dataset_files(base_url=server.url)
    assert [len(listing[split]) for split in schema.SPLITS] == [2, 1, 1]
    test = listing["test"][0]
    assert test.url == f"{server.url}/datasets/{REPO}/resolve/main/data/test-00000-of-00001.parquet"
    assert test.size == (folder / "data" / "test-00000-of-00001.parquet").stat().st_size
    assert test.sha256 == download.sha256sum(folder / "data" / "test-00000-of-00001.parquet")


def test_fetch_and_load_paper_dataset(hub, tmp_path):
    server, folder = hub
    out = paper_dataset.fetch_paper_dataset(tmp_path / "bench", base_url=server.url, progress=False)
    assert out == tmp_path / "bench"
    metadata = pq.ParquetFile(out / "train.parquet").metadata
    assert metadata.num_rows == 3500
    assert max(metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)) <= 1024
    assert (out / "test.parquet").stat().st_ino == (
        out / "files/data/test-00000-of-00001.parquet"
    ).stat().st_ino
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest) == 4 and all(len(entry["sha256"]) == 64 for entry in manifest.values())
    scalars = paper_dataset.load_paper_dataset(
        "train", data_home=out, columns=["spec_id", "catalog_teff"]
    )
    assert list(scalars.columns) == ["spec_id", "catalog_teff"]
    np.testing.assert_array_equal(scalars["spec_id"], np.arange(3500))
    subset = paper_dataset.load_paper_dataset(
        "train", data_home=out, rows=[5, 3100], columns=["spec_id", "flux"]
    )
    original = pq.read_table(folder / "data" / "train-00001-of-00002.parquet").to_pandas()
    assert subset["spec_id"].tolist() == [5, 3100]
    np.testing.assert_array_equal(subset.loc[1, "flux"], original.loc[100, "flux"])
    validation = paper_dataset.load_paper_dataset("validation", data_home=out)
    assert len(validation) == 300 and validation["spec_id"].iloc[0] == 10_000
    served = len(server.requests)
    paper_dataset.fetch_paper_dataset(tmp_path / "bench", base_url=server.url, progress=False)
    assert [path for path, _ in server.requests[served:] if "/resolve/" in path] == []


def test_load_paper_dataset_from_data_home(hub, tmp_path, monkeypatch):
    server, _ = hub
    monkeypatch.setenv("STELLAR_NB_DATA", str(tmp_path / "home"))
    paper_dataset.fetch_paper_dataset(base_url=server.url, progress=False)
    assert (tmp_path / "home" / "benchmark" / "test.parquet").is_file()
    frame = paper_dataset.load_paper_dataset("test", rows=slice(0, 3))
    assert frame["spec_id"].tolist() == [20_000, 20_001, 20_002]
    assert (
        len(paper_dataset.load_paper_dataset("test", data_home=tmp_path / "home", columns=["snr"]))
        == 700
    )


def test_corrupted_download_raises_and_leaves_nothing(hub, tmp_path):
    server, _ = hub
    path = f"/datasets/{REPO}/resolve/main/data/validation-00000-of-00001.parquet"
    server.fail(path, "truncate", times=10)
    with pytest.raises(download.DownloadError, match=r"validation-00000-of-00001\.parquet"):
        paper_dataset.fetch_paper_dataset(
            tmp_path / "bench", base_url=server.url, retries=1, progress=False
        )
    leftovers = [p.name for p in (tmp_path / "bench").rglob("*") if p.is_file()]
    assert not any(name.endswith(".part") or name.startswith("validation") for name in leftovers)
    assert not (tmp_path / "bench" / "train.parquet").exists()


def test_listing_errors(hub, tmp_path):
    server, folder = hub
    with pytest.raises(ValueError, match=r"cannot list .*HTTP 404"):
        paper_dataset.list_paper_dataset_files(base_url=server.url, repository="someone/else")
    (folder / "data" / "validation-00000-of-00001.parquet").unlink()
    with pytest.raises(ValueError, match=r"no Parquet file for split\(s\) \['validation'\]"):
        paper_dataset.list_paper_dataset_files(base_url=server.url)


def test_load_paper_dataset_missing_or_bad_split(tmp_path):
    with pytest.raises(FileNotFoundError, match="stellar-nb fetch paper-dataset"):
        paper_dataset.load_paper_dataset("train", data_home=tmp_path)
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        paper_dataset.load_paper_dataset("dev", data_home=tmp_path)


def test_schema_warning_for_unexpected_files(tmp_path):
    folder = tmp_path / "hub"
    folder.mkdir()
    for split in schema.SPLITS:
        pq.write_table(pa.table({"spec_id": [1, 2]}), folder / f"{split}.parquet")
    with loopback.LoopbackServer(datasets={REPO: folder}) as server:
        with pytest.warns(UserWarning, match="lacks columns") as caught:
            paper_dataset.fetch_paper_dataset(
                tmp_path / "bench", base_url=server.url, progress=False
            )
    assert len(caught) == 3
    assert pd.read_parquet(tmp_path / "bench" / "train.parquet")["spec_id"].tolist() == [1, 2]


@pytest.mark.network
def test_real_hub_listing():
    listing = paper_dataset.list_paper_dataset_files()
    assert all(listing[split] for split in schema.SPLITS)
    assert all(remote.sha256 for files in listing.values() for remote in files)


def test_refetch_keeps_assembled_splits(hub, tmp_path):
    server, _ = hub
    out = paper_dataset.fetch_paper_dataset(tmp_path / "bench", base_url=server.url, progress=False)
    before = (out / "train.parquet").stat().st_mtime_ns
    paper_dataset.fetch_paper_dataset(out, base_url=server.url, progress=False)
    assert (out / "train.parquet").stat().st_mtime_ns == before


def test_paged_listing_is_followed(hub):
    server, _ = hub
    server.tree_page = 2
    listing = paper_dataset.list_paper_dataset_files(base_url=server.url)
    assert [len(listing[split]) for split in schema.SPLITS] == [2, 1, 1]
    assert sum("/tree/" in path for path, _ in server.requests) == 3  # 5 entries, 2 per page
