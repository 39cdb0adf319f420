import hashlib
import os
import tempfile
import time
from pathlib import Path

import pytest

from stellar_nb import files


def test_atomic_write_replaces_whole_files(tmp_path):
    target = tmp_path / "model.weights.h5"
    target.write_text("old")
    seen = []

    def write(temporary):
        seen.append(temporary)
        Path(temporary).write_text("new")

    assert files.atomic_write(target, write) == target
    assert target.read_text() == "new" and seen[0].endswith(".part.weights.h5")
    assert oct(target.stat().st_mode & 0o777) == "0o644"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.weights.h5"]


def test_failed_write_keeps_the_old_file_and_no_debris(tmp_path):
    target = tmp_path / "table.parquet"
    target.write_text("old")

    def write(temporary):
        Path(temporary).write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        files.atomic_write(target, write)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["table.parquet"]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        files.atomic_write(tmp_path / "missing" / "x.json", write)


def test_sha256sum_matches_hashlib(tmp_path):
    data = bytes(range(256)) * 10_000  # more than one 1 MiB block
    (tmp_path / "blob").write_bytes(data)
    assert files.sha256sum(tmp_path / "blob") == hashlib.sha256(data).hexdigest()


def test_atomic_path_renames_on_success_and_cleans_up_on_failure(tmp_path):
    target = tmp_path / "model.keras"
    target.write_text("old")
    with files.atomic_path(target) as temporary:
        assert temporary.parent == tmp_path and temporary.name.endswith(".part.keras")
        temporary.write_text("new")
        assert target.read_text() == "old"
    assert target.read_text() == "new"
    assert oct(target.stat().st_mode & 0o777) == "0o644"
    with pytest.raises(OSError, match="disk full"), files.atomic_path(target) as temporary:
        temporary.write_text("half")
        raise OSError("disk full")
    assert target.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["model.keras"]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        with files.atomic_path(tmp_path / "missing" / "x.json"):
            pass


def test_json_round_trip_and_errors_name_the_file(tmp_path):
    import numpy as np

    path = files.write_json(tmp_path / "a.json", {"b": np.float32(1.5), "a": (1, 2), "p": tmp_path})
    assert files.read_json(path) == {"a": [1, 2], "b": 1.5, "p": str(tmp_path)}
    assert path.read_text().startswith('{\n  "a"') and path.read_text().endswith("}\n")
    with pytest.raises(FileNotFoundError, match=r"missing file .*absent\.json"):
        files.read_json(tmp_path / "absent.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValueError, match=r"bad\.json is not valid JSON"):
        files.read_json(tmp_path / "bad.json")
    with pytest.raises(TypeError, match="cannot write object"):
        files.write_json(tmp_path / "c.json", {"x": object()})


@pytest.fixture
def umask_027():
    previous = os.umask(0o027)
    yield
    os.umask(previous)


def test_normal_modes_honour_the_umask(tmp_path, umask_027):
    assert files.umask() == 0o027
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    assert folder.stat().st_mode & 0o777 == 0o700
    assert files.give_normal_mode(folder).stat().st_mode & 0o777 == 0o750
    with files.atomic_path(tmp_path / "table.json") as temporary:
        temporary.write_text("{}")
    assert (tmp_path / "table.json").stat().st_mode & 0o777 == 0o640


def test_remove_stale_temporaries_keeps_what_is_in_use(tmp_path):
    hour_ago = time.time() - 3600
    stale_file = tmp_path / ".train_X.npy.a1b2c3.raw"
    stale_file.write_bytes(b"\0" * 4096)
    stale_folder = tmp_path / ".survey.x7y8z9.part"
    stale_folder.mkdir()
    (stale_folder / "train.parquet").write_bytes(b"PAR1" + b"\0" * 100)
    for path in (stale_folder / "train.parquet", stale_folder, stale_file):
        os.utime(path, (hour_ago, hour_ago))
    fresh = tmp_path / ".train_X.npy.d4e5f6.raw"  # newer than this process: in use
    fresh.write_bytes(b"\0" * 16)
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "keep.txt").write_text("keep")
    link = tmp_path / ".survey.l1nk00.part"
    link.symlink_to(target)
    os.utime(link, (hour_ago, hour_ago), follow_symlinks=False)
    removed = files.remove_stale_temporaries(tmp_path, [".train_X.npy.*.raw", ".survey.*.part"])
    assert removed == sorted([stale_file, stale_folder, link])
    assert not stale_file.exists() and not stale_folder.exists() and not link.is_symlink()
    assert fresh.exists() and (target / "keep.txt").read_text() == "keep"
    assert files.process_start_time() < time.time()
    assert files.remove_stale_temporaries(tmp_path, "*", older_than=0) == []
    assert files.remove_stale_temporaries(tmp_path / "missing", "*") == []
