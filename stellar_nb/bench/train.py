"""``stellar-nb bench train``: epoch time of the paper model next to its GEMM-bound limit.

The limit is measured in the same run: the paper model's dense layers cost ``2 * sum(kernel
sizes)`` FLOPs per spectrum forward, a training step about three times that (forward, gradient
with respect to activations, gradient with respect to weights), so an epoch over ``rows`` spectra
cannot take less than ``3 * forward FLOPs * rows / R`` seconds, where ``R`` is numpy's float32
matrix-product throughput on the dominant shape (rows x 4000 @ 4000 x 128). Each Keras backend
trains in its own subprocess (the backend is fixed when Keras is first imported) on the same
random inputs; the first epoch, which includes tracing and compilation, is reported separately.
"""

import itertools
import json
import os
import subprocess
import sys
import time

import numpy as np

from stellar_nb import schema

__all__ = ["backend_epoch_times", "epoch_times", "forward_flops", "gemm_throughput"]


def forward_flops(architecture=None):
    """FLOPs of one spectrum through the dense layers of a model (2 per multiply-add).

    LayerNorm, GELU and additions are O(width) and left out: the stem's 4000 x 128 product is
    94% of the total.
    """
    from stellar_nb import model

    spec = architecture or model.architecture()
    trunk, width = [int(spec["input_size"]) * spec["stem_units"]], int(spec["stem_units"])
    for units in spec["block_units"]:
        trunk += [width * units, units * units] + (
            [width * units] if spec["skip"] and units != width else []
        )
        width = int(units)
    heads = []
    for label in spec["labels"]:
        widths = [width, *spec["head_units"][label], 1]
        heads += [a * b for a, b in itertools.pairwise(widths)]
    trunks = len(spec["labels"]) if spec.get("single_task") else 1
    return 2 * (trunks * sum(trunk) + sum(heads))


def gemm_throughput(rows=15_000, inner=schema.GRID_SIZE, outer=128, repeats=5, seed=0):
    """Best float32 matrix-product throughput of numpy (FLOP/s) over ``repeats`` runs."""
    rng = np.random.default_rng(seed)
    left = rng.standard_normal((rows, inner), dtype=np.float32)
    right = rng.standard_normal((inner, outer), dtype=np.float32)
    left @ right  # warm-up: thread pool start, page faults
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        left @ right
        best = min(best, time.perf_counter() - start)
    return 2.0 * rows * inner * outer / best


_WORKER = """
import json, sys, time
import numpy as np
from stellar_nb.bench.train import epoch_times
print("RESULT " + json.dumps(epoch_times(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))))
"""


def epoch_times(rows, epochs, batch_size=256, seed=0):
    """Train the paper model on ``rows`` random spectra; seconds of each epoch (this process's backend)."""
    import keras

    from stellar_nb import model

    rng = np.random.default_rng(seed)
    spectra = rng.standard_normal((rows, schema.GRID_SIZE), dtype=np.float32)
    targets = {label: rng.standard_normal((rows, 1), dtype=np.float32) for label in schema.LABELS}
    network = model.build_model(seed=seed)
    steps = -(-rows // batch_size)
    model.compile_model(
        network, weights=dict.fromkeys(schema.LABELS, 1.0), total_steps=epochs * steps
    )

    class Timer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.start)

    timer = Timer()
    network.fit(
        spectra, targets, batch_size=batch_size, epochs=epochs, verbose=0, callbacks=[timer]
    )
    return {"backend": keras.backend.backend(), "seconds": timer.seconds}


def backend_epoch_times(backend, rows, epochs, batch_size=256):
    """Run :func:`epoch_times` in a child process with ``KERAS_BACKEND=backend``.

    Parameters
    ----------
    backend : {"tensorflow", "jax", "torch"}
    rows, epochs, batch_size : int
        As for :func:`epoch_times`.

    Returns
    -------
    dict
        ``backend``, ``seconds`` (each epoch's), ``later`` (median of the epochs after the first)
        and ``first_extra`` (the first epoch's tracing and compilation on top of that); or
        ``backend`` and ``error`` (the child's last stderr line) when it failed.
    """
    environment = {**os.environ, "KERAS_BACKEND": backend}
    command = [sys.executable, "-c", _WORKER, str(rows), str(epochs), str(batch_size)]
    done = subprocess.run(command, capture_output=True, text=True, env=environment)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        return {"backend": backend, "error": done.stderr.strip().splitlines()[-1:]}
    seconds = json.loads(lines[-1][len("RESULT ") :])["seconds"]
    later = float(np.median(seconds[1:]))
    return {
        "backend": backend,
        "seconds": seconds,
        "later": later,
        "first_extra": seconds[0] - later,
    }
