"""Tests of stellar_nb.data.paper_dataset against a Hugging Face stand-in on loopback."""

import json
import time

import hub_fake
import loopback
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests
from huggingface_hub import constants as hub_constants

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


def write_hub(folder, rng, *, sizes=(3000, 500, 300, 700), space=""):
    """A dataset folder laid out as on the Hub: train in two shards (one with a 3,000-row group)."""
    (folder / "data").mkdir(parents=True)
    train, extra, validation, test = sizes
    pq.write_table(
        shard(rng, train, 0),
        folder / "data" / f"train-00000-of-00002{space}.parquet",
        row_group_size=3000,
    )
    pq.write_table(shard(rng, extra, train), folder / "data" / "train-00001-of-00002.parquet")
    pq.write_table(
        shard(rng, validation, 10_000), folder / "data" / "validation-00000-of-00001.parquet"
    )
    pq.write_table(
        shard(rng, test, 20_000),
        folder / "data" / "test-00000-of-00001.parquet",
        row_group_size=100,
    )
    (folder / "README.md").write_text("---\nlicense: mit\n---\n")
    return folder


@pytest.fixture
def no_token(monkeypatch):
    """No token from the environment (huggingface_hub reads HF_TOKEN at each call)."""
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)


@pytest.fixture
def hub(tmp_path, no_token):
    folder = write_hub(tmp_path / "hub", np.random.default_rng(7))
    with loopback.LoopbackServer(datasets={REPO: folder}) as server:
        yield server, folder


def commit(folder, name="main"):
    return hub_fake.commit_of(name, folder)


def cdn_path(path):
    return f"/lfs/{download.sha256sum(path)}"


def cdn_requests(server, path):
    return [span for requested, span in server.requests if requested == cdn_path(path)]


def fetch(server, out, **kwargs):
    return paper_dataset.fetch_paper_dataset(out, base_url=server.url, progress=False, **kwargs)


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
    local = folder / "data" / "test-00000-of-00001.parquet"
    assert test.path == "data/test-00000-of-00001.parquet"
    assert test.size == local.stat().st_size
    assert test.lfs.sha256 == download.sha256sum(local)


def test_fetch_and_load_paper_dataset(hub, tmp_path):
    server, folder = hub
    out = fetch(server, tmp_path / "bench")
    assert out == tmp_path / "bench"
    metadata = pq.ParquetFile(out / "train.parquet").metadata
    assert metadata.num_rows == 3500
    assert max(metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)) <= 1024
    assert (out / "test.parquet").stat().st_ino == (
        out / "files/data/test-00000-of-00001.parquet"
    ).stat().st_ino
    checked = json.loads((out / "checksums.json").read_text())
    assert sorted(checked) == sorted(
        p.relative_to(folder).as_posix() for p in folder.rglob("*.parquet")
    )
    for name, entry in checked.items():
        assert entry["digest"] == download.sha256sum(folder / name)
    # each LFS file: a HEAD on resolve at the pinned commit, then a GET on the CDN origin
    resolves = [p for p, _ in server.requests if "/resolve/" in p]
    assert len(resolves) == 4 and all(f"/resolve/{commit(folder)}/data/" in p for p in resolves)
    assert all(len(cdn_requests(server, p)) == 1 for p in folder.rglob("*.parquet"))
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
    fetch(server, out)
    assert [p for p, _ in server.requests[served:] if "/resolve/" in p or "/lfs/" in p] == []


def test_load_paper_dataset_from_data_home(hub, tmp_path, monkeypatch):
    server, _ = hub
    monkeypatch.setenv("STELLAR_NB_DATA", str(tmp_path / "home"))
    monkeypatch.setenv("STELLAR_NB_HF_URL", server.url)
    paper_dataset.fetch_paper_dataset(progress=False)
    assert (tmp_path / "home" / "benchmark" / "test.parquet").is_file()
    frame = paper_dataset.load_paper_dataset("test", rows=slice(0, 3))
    assert frame["spec_id"].tolist() == [20_000, 20_001, 20_002]
    assert (
        len(paper_dataset.load_paper_dataset("test", data_home=tmp_path / "home", columns=["snr"]))
        == 700
    )


def test_interrupted_transfer_resumes_with_a_range_request(hub, tmp_path, monkeypatch):
    server, folder = hub
    # huggingface_hub hands the body over in 10 MB chunks and resumes from the last whole one;
    # smaller chunks let a 0.2 MB shard show it
    monkeypatch.setattr(hub_constants, "DOWNLOAD_CHUNK_SIZE", 1024)
    shard_path = folder / "data" / "test-00000-of-00001.parquet"
    server.fail(cdn_path(shard_path), "truncate", times=1)
    out = fetch(server, tmp_path / "bench")
    first, second = cdn_requests(server, shard_path)
    resumed_at = int(second.removeprefix("bytes=").removesuffix("-"))
    assert first is None and 0 < resumed_at <= shard_path.stat().st_size // 2
    assert (out / "files/data/test-00000-of-00001.parquet").read_bytes() == shard_path.read_bytes()


def test_corrupted_file_is_caught_by_its_checksum_and_a_rerun_resumes(hub, tmp_path):
    server, folder = hub
    bad = folder / "data" / "validation-00000-of-00001.parquet"
    server.fail(cdn_path(bad), "corrupt", times=2)
    with pytest.raises(download.DownloadError) as caught:
        fetch(server, tmp_path / "bench", retries=1)
    message = str(caught.value)
    assert (
        f"{REPO}@main (commit {commit(folder)}): data/validation-00000-of-00001.parquet" in message
    )
    assert "checksum mismatch" in message and download.sha256sum(bad) in message
    assert "after 2 downloads" in message and len(cdn_requests(server, bad)) == 2
    out = tmp_path / "bench"
    assert not (out / "files/data/validation-00000-of-00001.parquet").exists()
    assert not (out / "train.parquet").exists()
    assert sorted(json.loads((out / "checksums.json").read_text())) == [
        "data/test-00000-of-00001.parquet",
        "data/train-00000-of-00002.parquet",
        "data/train-00001-of-00002.parquet",
    ]
    served = len(server.requests)
    fetch(server, out)  # the fault is spent: only the missing file is fetched
    assert [p for p, _ in server.requests[served:] if p.startswith("/lfs/")] == [cdn_path(bad)]
    assert len(paper_dataset.load_paper_dataset("validation", data_home=out)) == 300


def test_corrupted_once_is_downloaded_again(hub, tmp_path):
    server, folder = hub
    bad = folder / "data" / "test-00000-of-00001.parquet"
    server.fail(cdn_path(bad), "corrupt", times=1)
    out = fetch(server, tmp_path / "bench", retries=1)
    assert len(cdn_requests(server, bad)) == 2
    assert (out / "files/data/test-00000-of-00001.parquet").read_bytes() == bad.read_bytes()


def test_gated_dataset_needs_hf_token(tmp_path, no_token, monkeypatch):
    folder = write_hub(tmp_path / "hub", np.random.default_rng(1), sizes=(20, 5, 5, 5))
    gated = hub_fake.HubRepo({"main": folder}, token="hf_loopback_secret")
    with loopback.LoopbackServer(datasets={REPO: gated}) as server:
        with pytest.raises(
            download.DownloadError, match=rf"{REPO}@main \(commit .*gated.*set HF_TOKEN"
        ):
            fetch(server, tmp_path / "bench")
        monkeypatch.setenv("HF_TOKEN", "hf_wrong")
        with pytest.raises(download.DownloadError, match="gated"):
            fetch(server, tmp_path / "bench")
        monkeypatch.setenv("HF_TOKEN", "hf_loopback_secret")
        out = fetch(server, tmp_path / "bench")
    assert len(paper_dataset.load_paper_dataset("train", data_home=out)) == 25


def test_rate_limit_is_waited_out(hub, tmp_path):
    server, folder = hub
    shard_path = folder / "data" / "train-00001-of-00002.parquet"
    tree = f"/api/datasets/{REPO}/tree/{commit(folder)}"
    server.fail(tree, "429", times=1)
    server.fail(cdn_path(shard_path), "429", times=1)
    start = time.monotonic()
    out = fetch(server, tmp_path / "bench", workers=1)
    assert time.monotonic() - start >= 2 * loopback.RETRY_AFTER_SECONDS
    assert sum(p == tree for p, _ in server.requests) == 2
    assert len(cdn_requests(server, shard_path)) == 2
    assert pq.ParquetFile(out / "train.parquet").metadata.num_rows == 3500


@pytest.fixture
def two_revisions(tmp_path, no_token):
    """``main`` and ``refs/convert/parquet`` with different files (one name with a space)."""
    main = write_hub(tmp_path / "main", np.random.default_rng(2), sizes=(20, 5, 5, 5))
    converted = write_hub(
        tmp_path / "converted", np.random.default_rng(3), sizes=(40, 10, 6, 7), space=" x"
    )
    revisions = {"main": main, "refs/convert/parquet": converted}
    with loopback.LoopbackServer(datasets={REPO: revisions}) as server:
        yield server, converted


def test_revision_with_a_slash_and_a_path_with_a_space(two_revisions, tmp_path):
    server, converted = two_revisions
    out = fetch(server, tmp_path / "bench", revision="refs/convert/parquet")
    assert [len(paper_dataset.load_paper_dataset(s, data_home=out)) for s in schema.SPLITS] == [
        50,
        6,
        7,
    ]
    assert (out / "files/data/train-00000-of-00002 x.parquet").is_file()
    assert f"/api/datasets/{REPO}/revision/refs%2Fconvert%2Fparquet" in [
        p for p, _ in server.requests
    ]
    assert (
        f"/datasets/{REPO}/resolve/{commit(converted, 'refs/convert/parquet')}/data/train-00000-of-00002%20x.parquet"
        in [p for p, _ in server.requests]
    )


def test_listing_over_two_pages_keeps_the_revision(two_revisions):
    server, _ = two_revisions
    server.tree_page = 4  # 5 files and the data/ folder: two pages
    listing = paper_dataset.list_paper_dataset_files(
        base_url=server.url, revision="refs/convert/parquet"
    )
    assert [remote.path for remote in listing["train"]] == [
        "data/train-00000-of-00002 x.parquet",
        "data/train-00001-of-00002.parquet",
    ]
    assert [len(listing[split]) for split in schema.SPLITS] == [2, 1, 1]
    assert sum("/tree/refs%2Fconvert%2Fparquet" in p for p, _ in server.requests) == 2


def test_hub_stand_in_refuses_what_the_hub_refuses(two_revisions):
    server, converted = two_revisions
    unquoted = requests.get(f"{server.url}/api/datasets/{REPO}/revision/refs/convert/parquet")
    assert unquoted.status_code == 404
    assert unquoted.headers["X-Error-Code"] == "RevisionNotFound"
    quoted = requests.get(f"{server.url}/api/datasets/{REPO}/revision/refs%2Fconvert%2Fparquet")
    assert quoted.json()["sha"] == commit(converted, "refs/convert/parquet")
    path = "data/test-00000-of-00001.parquet"
    head = requests.head(
        f"{server.url}/datasets/{REPO}/resolve/{quoted.json()['sha']}/{path}",
        allow_redirects=False,
    )
    assert head.status_code == 302 and head.headers["X-Linked-Size"] == str(
        (converted / path).stat().st_size
    )
    assert head.headers["X-Linked-Etag"] == f'"{download.sha256sum(converted / path)}"'
    location = head.headers["Location"]
    assert location.startswith(server.cdn_url) and server.cdn_url != server.url
    assert requests.get(location, headers={"Authorization": "Bearer x"}).status_code == 400
    assert requests.get(location.split("?")[0]).status_code == 403
    assert requests.get(location).content == (converted / path).read_bytes()


def test_hub_errors_name_repository_and_revision(hub, tmp_path):
    server, folder = hub
    with pytest.raises(
        download.DownloadError, match=rf"{REPO}@v9: dataset {REPO} has no such revision"
    ):
        fetch(server, tmp_path / "bench", revision="v9")
    with pytest.raises(
        download.DownloadError, match=r"someone/else@main: dataset someone/else not found"
    ):
        paper_dataset.list_paper_dataset_files(base_url=server.url, repository="someone/else")
    (folder / "data" / "validation-00000-of-00001.parquet").unlink()
    with pytest.raises(ValueError, match=r"no Parquet file for split\(s\) \['validation'\]"):
        paper_dataset.list_paper_dataset_files(base_url=server.url)
    with pytest.raises(ValueError, match="workers must be >= 1"):
        fetch(server, tmp_path / "bench", workers=0)


def test_offline_mode_is_reported(hub, tmp_path, monkeypatch):
    server, _ = hub
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)  # what HF_HUB_OFFLINE=1 sets
    with pytest.raises(download.DownloadError, match=rf"{REPO}@main: HF_HUB_OFFLINE is set"):
        fetch(server, tmp_path / "bench")
    assert server.requests == []


def test_load_paper_dataset_missing_or_bad_split(tmp_path):
    with pytest.raises(FileNotFoundError, match="stellar-nb fetch paper-dataset"):
        paper_dataset.load_paper_dataset("train", data_home=tmp_path)
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        paper_dataset.load_paper_dataset("dev", data_home=tmp_path)


def test_schema_warning_for_unexpected_files(tmp_path, no_token):
    folder = tmp_path / "hub"
    folder.mkdir()
    for split in schema.SPLITS:
        pq.write_table(pa.table({"spec_id": [1, 2]}), folder / f"{split}.parquet")
    with loopback.LoopbackServer(datasets={REPO: folder}) as server:
        with pytest.warns(UserWarning, match="lacks columns") as caught:
            fetch(server, tmp_path / "bench")
    assert len(caught) == 3
    assert pd.read_parquet(tmp_path / "bench" / "train.parquet")["spec_id"].tolist() == [1, 2]


@pytest.mark.network
def test_real_hub_listing():
    listing = paper_dataset.list_paper_dataset_files()
    assert all(listing[split] for split in schema.SPLITS)
    assert all(remote.lfs.sha256 for files in listing.values() for remote in files)


def test_refetch_keeps_assembled_splits(hub, tmp_path):
    server, _ = hub
    out = fetch(server, tmp_path / "bench")
    before = (out / "train.parquet").stat().st_mtime_ns
    fetch(server, out)
    assert (out / "train.parquet").stat().st_mtime_ns == before
