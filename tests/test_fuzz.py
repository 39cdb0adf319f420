"""The bad-input corpus of ``tests/fuzz.py`` through :func:`stellar_nb.predict.predict_files`.

One batch: every kind of bad input between two good real stars. Each kind must give either a
row whose ``reason`` names its file (a clear error) or a flagged row, never an "internal error";
the good stars must come out exactly as in a batch of their own; the whole corpus is bounded in
time and memory. A summary table is printed (``pytest -s`` shows it).
"""

import resource
import time
import tracemalloc

import fuzz
import numpy as np
import pytest

from stellar_nb import model_directory, predict

#: Bounds on the whole corpus (measured: see the printed summary).
MAX_SECONDS = 120.0
MAX_RSS_GROWTH_MB = 1024.0


@pytest.fixture(scope="module")
def model():
    return model_directory.load()


def _rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def test_corpus_has_over_a_hundred_kinds():
    assert len(fuzz.kinds()) >= 100


def test_every_bad_input_is_reported_or_flagged(model, tmp_path, capsys):
    if not fuzz.available():
        pytest.skip(f"shared real files not found under {fuzz.ROOT.parent / 'shared'}")
    paths = {name: build(tmp_path) for name, build in fuzz.kinds().items()}
    good_alone, _ = predict.predict_files(model, fuzz.GOOD)
    base, _ = predict.predict_files(model, [fuzz.BASE])
    batch = [fuzz.GOOD[0], *paths.values(), fuzz.GOOD[1]]
    before, start = _rss_mb(), time.perf_counter()
    tracemalloc.start()
    try:
        table, failures = predict.predict_files(model, batch)
        peak = tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()
    seconds, growth = time.perf_counter() - start, _rss_mb() - before

    assert len(table) == len(batch)
    assert table["source"].tolist() == [str(path) for path in batch]
    errors, flagged, benign, crashes = 0, 0, 0, []
    for (name, path), (_, row) in zip(paths.items(), table.iloc[1:-1].iterrows(), strict=True):
        reason, flag = str(row["reason"]), str(row["flag"])
        if flag == "unreadable":
            assert reason.startswith(str(path)), (name, reason)
            assert len(reason) > len(str(path)) + 10, (name, reason)
            errors += 1
            if "internal error" in reason:
                crashes.append(f"{name}: {reason}")
        elif name in fuzz.BENIGN:
            benign += 1
            for label, tolerance in fuzz.BENIGN_TOLERANCE.items():
                difference = abs(row[label] - base.loc[0, label])
                if not difference <= tolerance:
                    crashes.append(f"{name}: benign, but {label} off by {difference:.3g}")
        elif flag:
            flagged += 1
        else:
            labels = {label: round(row[label], 3) for label in model.labels}
            crashes.append(f"{name}: predicted without a flag {labels}")
    # the good stars: the same numbers as alone, no flag, no reason
    ends = table.iloc[[0, -1]].reset_index(drop=True)
    np.testing.assert_array_equal(
        ends[list(model.labels)].to_numpy(), good_alone[list(model.labels)].to_numpy()
    )
    assert (ends["flag"] == "").all() and (ends["reason"] == "").all()
    assert len(failures) == errors
    crashes += [
        f"{name}: reason does not name the file" for name, path in paths.items()
        if str(table.loc[table["source"] == str(path), "reason"].iloc[0]) not in ("", "nan")
        and not str(table.loc[table["source"] == str(path), "reason"].iloc[0]).startswith(str(path))
    ]  # fmt: skip
    with capsys.disabled():
        print(
            "\nfuzz corpus through predict_files\n"
            f"  kinds of input        {len(paths)}\n"
            f"  clear errors          {errors}\n"
            f"  flagged rows          {flagged}\n"
            f"  odd but valid, right  {benign}\n"
            f"  crashes               {len(crashes)}\n"
            f"  hangs                 0 (whole batch {seconds:.1f} s)\n"
            f"  peak memory           {peak:.0f} MB traced in the batch (files read one at a "
            f"time), max RSS growth {growth:.0f} MB\n"
        )
    assert not crashes, "\n".join(crashes)
    assert seconds < MAX_SECONDS
    assert growth < MAX_RSS_GROWTH_MB and peak < MAX_RSS_GROWTH_MB
