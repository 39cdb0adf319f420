"""``stellar-nb bench simulate``: time, peak memory and disk of generating the simulated survey.

The survey is generated in a fresh child process, so its peak resident memory (``ru_maxrss`` of
the child) is the generation's own, imports included. Beside the whole generation, the emulator
alone is timed on the same number of labels, to show what share of the time is the model and what
is the observing effects and the Parquet compression. The goals (issue 3): 50,000 spectra in under
60 s on 2 cores, under 4 GB of memory, under 2 GB on disk.
"""

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

__all__ = ["measure"]

_CHILD = """
import json, sys, time
from stellar_nb import simulate
n, seed, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
start = time.perf_counter()
simulate.simulate_survey(n, seed, out)
print(json.dumps({"seconds": time.perf_counter() - start}))
"""


def measure(n=50_000, seed=0, out=None):
    """Generate an ``n``-spectrum survey in a child process and measure it.

    Parameters
    ----------
    n : int
        Number of spectra.
    seed : int
        Survey seed.
    out : str or pathlib.Path, optional
        Output folder (kept); by default a temporary folder, removed afterwards.

    Returns
    -------
    dict
        ``n``, ``seconds`` (generation, in the child), ``wall_seconds`` (child with imports),
        ``peak_rss_mb``, ``disk_mb``, ``bytes_per_pixel``, ``emulator_seconds``.
    """
    from stellar_nb import emulator, simulate

    simulate.split_sizes(n)  # validates n before anything is started
    with tempfile.TemporaryDirectory(prefix="stellar_nb-bench-") as scratch:
        target = Path(out) if out is not None else Path(scratch) / "survey"
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-c", _CHILD, str(n), str(seed), str(target)],
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - started
        if result.returncode != 0:
            raise RuntimeError(f"survey generation failed:\n{result.stderr.strip()}")
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        seconds = json.loads(result.stdout.strip().splitlines()[-1])["seconds"]
        disk = sum(path.stat().st_size for path in target.rglob("*") if path.is_file())
        from stellar_nb.data import tables

        pixels = 0
        for split in ("train", "validation", "test"):
            for frame in tables.iter_split(target, split, columns=["loglam"], batch_size=8192):
                pixels += int(sum(len(row) for row in frame["loglam"]))
    model = emulator.load_emulator()
    labels = np.tile([[5800.0, -0.5, 4.2], [4600.0, -1.2, 2.2]], (512, 1))
    start = time.perf_counter()
    for _ in range(-(-n // len(labels))):
        model.flux(labels)
    emulator_seconds = time.perf_counter() - start
    return {
        "n": n,
        "seconds": seconds,
        "wall_seconds": wall,
        "peak_rss_mb": peak_kb / 1024.0,
        "disk_mb": disk / 1e6,
        "bytes_per_pixel": disk / max(pixels, 1),
        "emulator_seconds": emulator_seconds,
    }
