"""Tests of stellar_nb.data.download against a real HTTP server on loopback."""

import hashlib
import json
import subprocess
import sys
import time

import loopback
import numpy as np
import pytest

from stellar_nb.data import download


@pytest.fixture
def site(tmp_path):
    """Six files of 20-200 kB with known content, served on loopback."""
    root = tmp_path / "site"
    (root / "d").mkdir(parents=True)
    rng = np.random.default_rng(1)
    contents = {}
    for index in range(6):
        data = rng.integers(0, 256, size=20_000 * (index + 1), dtype=np.uint8).tobytes()
        (root / "d" / f"f{index}.bin").write_bytes(data)
        contents[f"d/f{index}.bin"] = data
    with loopback.LoopbackServer(root, slow_seconds=1.5) as server:
        yield server, contents


def remote(server, name, **kwargs):
    return download.RemoteFile(url=f"{server.url}/{name}", name=name, **kwargs)


def fetch(files, out, **kwargs):
    options = {"workers": 3, "retries": 2, "backoff": 0.01, "timeout": 5.0, "progress": False}
    options.update(kwargs)
    return download.download(files, out, **options)


def no_leftovers(out):
    return not [p for p in out.rglob("*") if p.name.endswith(".part")]


def test_parallel_download_manifest_and_cache(site, tmp_path):
    server, contents = site
    out = tmp_path / "out"
    files = [
        remote(server, name, sha256=hashlib.sha256(data).hexdigest())
        for name, data in contents.items()
    ]
    report = fetch(files, out, progress=True)
    assert report.ok and len(report.downloaded) == 6 and not report.cached
    for name, data in contents.items():
        assert (out / name).read_bytes() == data
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["d/f2.bin"] == {
        "url": f"{server.url}/d/f2.bin",
        "size": 60_000,
        "sha256": hashlib.sha256(contents["d/f2.bin"]).hexdigest(),
    }
    served = len(server.requests)
    again = fetch(files, out)
    assert again.ok and len(again.cached) == 6 and not again.downloaded
    assert len(server.requests) == served  # nothing fetched again
    assert "0 downloaded, 6 cached, 0 failed" in again.summary()


def test_http_404_fails_at_once_and_batch_goes_on(site, tmp_path):
    server, contents = site
    server.fail("/d/f1.bin", "404", times=5)
    report = fetch([remote(server, name) for name in contents], tmp_path / "out")
    assert set(report.failed) == {"d/f1.bin"}
    assert "HTTP 404" in report.failed["d/f1.bin"] and "d/f1.bin" in report.failed["d/f1.bin"]
    assert len(report.downloaded) == 5
    assert sum(path == "/d/f1.bin" for path, _ in server.requests) == 1
    assert not (tmp_path / "out" / "d" / "f1.bin").exists() and no_leftovers(tmp_path / "out")
    with pytest.raises(download.DownloadError, match=r"d/f1\.bin"):
        report.raise_for_failures()


def test_http_500_is_retried_then_succeeds(site, tmp_path):
    server, contents = site
    server.fail("/d/f0.bin", "500", times=2)
    report = fetch([remote(server, "d/f0.bin")], tmp_path / "out", retries=2)
    assert report.ok
    assert (tmp_path / "out" / "d" / "f0.bin").read_bytes() == contents["d/f0.bin"]
    assert sum(path == "/d/f0.bin" for path, _ in server.requests) == 3


def test_429_waits_as_long_as_retry_after_says(site, tmp_path, monkeypatch):
    server, contents = site
    waits = []
    monkeypatch.setattr(download, "_sleep", waits.append)
    server.fail("/d/f1.bin", "429", times=1)
    server.fail("/d/f2.bin", "503", times=1)  # no Retry-After: the (jittered) back-off
    report = fetch([remote(server, "d/f1.bin")], tmp_path / "out", workers=1)
    assert report.ok and waits == [float(loopback.RETRY_AFTER_SECONDS)]
    report = fetch([remote(server, "d/f2.bin")], tmp_path / "out", workers=1, backoff=0.5)
    assert report.ok and len(waits) == 2 and 0.5 <= waits[1] <= 0.625
    assert (tmp_path / "out" / "d" / "f1.bin").read_bytes() == contents["d/f1.bin"]


def test_retry_wait_is_bounded():
    assert download.retry_wait(0, 1.0, "120") == download.MAX_WAIT
    assert download.retry_wait(1, 1.0, "Wed, 21 Oct 2015 07:28:00 GMT") == 2.0
    assert download.retry_wait(3, 0.5, None) == 4.0
    assert download.retry_wait(20, 0.5) == download.MAX_WAIT


def test_http_500_gives_up_after_bounded_retries(site, tmp_path):
    server, _ = site
    server.fail("/d/f0.bin", "500", times=10)
    report = fetch([remote(server, "d/f0.bin")], tmp_path / "out", retries=1)
    assert (
        "HTTP 500" in report.failed["d/f0.bin"]
        and "gave up after 2 attempts" in report.failed["d/f0.bin"]
    )
    assert sum(path == "/d/f0.bin" for path, _ in server.requests) == 2
    assert no_leftovers(tmp_path / "out")


def test_timeout_is_retried(site, tmp_path):
    server, contents = site
    server.fail("/d/f3.bin", "timeout", times=1)
    failed = fetch([remote(server, "d/f3.bin")], tmp_path / "a", timeout=0.3, retries=0)
    assert "Timeout" in failed.failed["d/f3.bin"]
    server.fail("/d/f3.bin", "timeout", times=1)
    report = fetch([remote(server, "d/f3.bin")], tmp_path / "b", timeout=0.3, retries=1)
    assert report.ok and (tmp_path / "b" / "d" / "f3.bin").read_bytes() == contents["d/f3.bin"]


def test_truncated_body_resumes_with_range(site, tmp_path):
    server, contents = site
    server.fail("/d/f5.bin", "truncate", times=1)
    report = fetch([remote(server, "d/f5.bin", size=120_000)], tmp_path / "out")
    assert report.ok
    assert (tmp_path / "out" / "d" / "f5.bin").read_bytes() == contents["d/f5.bin"]
    ranges = [header for path, header in server.requests if path == "/d/f5.bin"]
    assert ranges[0] is None and len(ranges) == 2
    offset = int(ranges[1].removeprefix("bytes=").rstrip("-"))
    assert 0 < offset <= 60_000  # only the bytes received before the cut are kept


def test_resume_after_killed_download(site, tmp_path):
    server, contents = site
    out = tmp_path / "out"
    (out / "d").mkdir(parents=True)
    (out / "d" / "f4.bin.part").write_bytes(contents["d/f4.bin"][:33_333])  # left by a killed run
    digest = hashlib.sha256(contents["d/f4.bin"]).hexdigest()
    report = fetch([remote(server, "d/f4.bin", sha256=digest)], out)
    assert report.ok and (out / "d" / "f4.bin").read_bytes() == contents["d/f4.bin"]
    assert server.requests == [("/d/f4.bin", "bytes=33333-")]
    assert no_leftovers(out)


def test_checksum_mismatch_fails_and_leaves_nothing(site, tmp_path):
    server, _ = site
    report = fetch([remote(server, "d/f0.bin", sha256="0" * 64)], tmp_path / "out", retries=1)
    assert "checksum mismatch" in report.failed["d/f0.bin"]
    assert not (tmp_path / "out" / "d" / "f0.bin").exists() and no_leftovers(tmp_path / "out")
    manifest = tmp_path / "out" / "manifest.json"
    assert not manifest.exists() or "d/f0.bin" not in json.loads(manifest.read_text())


def test_corrupted_transfer_is_detected_and_retried(site, tmp_path):
    server, contents = site
    server.fail("/d/f2.bin", "corrupt", times=1)
    digest = hashlib.sha256(contents["d/f2.bin"]).hexdigest()
    report = fetch([remote(server, "d/f2.bin", sha256=digest)], tmp_path / "out")
    assert report.ok and (tmp_path / "out" / "d" / "f2.bin").read_bytes() == contents["d/f2.bin"]


def test_content_check_rejects_html_page(site, tmp_path):
    server, _ = site
    server.fail("/d/f0.bin", "html", times=1)

    def check(path):
        if path.read_bytes().startswith(b"<html"):
            raise ValueError(f"{path.name} is an HTML page")

    report = fetch(
        [remote(server, "d/f0.bin"), remote(server, "d/f1.bin")], tmp_path / "out", check=check
    )
    assert "bad content" in report.failed["d/f0.bin"] and "HTML page" in report.failed["d/f0.bin"]
    assert report.downloaded == [tmp_path / "out" / "d" / "f1.bin"]
    assert not (tmp_path / "out" / "d" / "f0.bin").exists() and no_leftovers(tmp_path / "out")


def test_damaged_cache_entry_is_fetched_again(site, tmp_path):
    server, contents = site
    out = tmp_path / "out"
    fetch([remote(server, "d/f1.bin")], out)
    (out / "d" / "f1.bin").write_bytes(b"short")
    report = fetch([remote(server, "d/f1.bin")], out)
    assert (
        len(report.downloaded) == 1 and (out / "d" / "f1.bin").read_bytes() == contents["d/f1.bin"]
    )


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="relative path"):
        download.RemoteFile(url="http://x/y", name="../escape")
    with pytest.raises(ValueError, match="workers"):
        download.download([], tmp_path, workers=0)
    with pytest.raises(ValueError, match="retries"):
        download.download([], tmp_path, retries=-1)


def test_resume_after_killing_the_downloading_process(site, tmp_path):
    """A download process killed mid-file leaves a .part that the next run resumes."""
    server, contents = site
    server.slow_seconds = 30.0
    server.fail("/d/f5.bin", "stall", times=1)
    out = tmp_path / "out"
    code = (
        "from stellar_nb.data import download; "
        f"download.download([download.RemoteFile(url={server.url + '/d/f5.bin'!r}, name='d/f5.bin')], "
        f"{str(out)!r}, timeout=60, progress=False)"
    )
    process = subprocess.Popen([sys.executable, "-c", code])
    partial = out / "d" / "f5.bin.part"
    deadline = time.monotonic() + 30
    while not (partial.exists() and partial.stat().st_size > 0) and time.monotonic() < deadline:
        time.sleep(0.05)
    process.kill()
    process.wait(timeout=10)
    kept = partial.stat().st_size
    assert 0 < kept <= 60_000 and not (out / "d" / "f5.bin").exists()
    report = fetch([remote(server, "d/f5.bin")], out)
    assert report.ok and (out / "d" / "f5.bin").read_bytes() == contents["d/f5.bin"]
    assert server.requests[-1] == ("/d/f5.bin", f"bytes={kept}-")


def test_requests_carry_the_user_agent(site, tmp_path):
    server, _ = site
    report = fetch([remote(server, "d/f0.bin")], tmp_path / "out")
    assert report.ok and server.user_agents == [download.USER_AGENT]
