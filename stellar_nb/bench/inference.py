"""``stellar-nb bench inference``: numpy inference vs Keras ``predict``, same model, same inputs.

Both run in this process on the same ``rows`` standardised spectra (random: the speed of a dense
network does not depend on the values), each timed as the mean of ``repeats`` runs after one
warm-up run, as the paper times inference (whole 15,000-spectrum test set, mean of 10 runs). The
model is a model directory (the shipped pretrained one by default); the largest difference
between the two predictions is printed too.
"""

import time

import numpy as np

__all__ = ["compare"]


def _mean_seconds(function, repeats):
    function()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - start)
    return float(np.mean(seconds))


def compare(model_dir=None, rows=15_000, repeats=10, batch_size=8192, seed=0):
    """Time numpy and Keras inference on the same inputs.

    Returns
    -------
    dict
        ``numpy_seconds``, ``keras_seconds``, ``rows``, ``backend``, ``max_difference``
        (scaled units).
    """
    import keras

    from stellar_nb import inference, model_directory

    model_dir = model_dir or model_directory.pretrained_dir()
    numpy_model = inference.NumpyModel.load(model_dir)
    network = model_directory.load_keras_model(model_dir)
    spectra = np.random.default_rng(seed).standard_normal(
        (rows, numpy_model.input_size), dtype=np.float32
    )
    numpy_seconds = _mean_seconds(
        lambda: numpy_model.forward(spectra, batch_size=batch_size), repeats
    )
    keras_seconds = _mean_seconds(
        lambda: network.predict(spectra, batch_size=batch_size, verbose=0), repeats
    )
    outputs = network.predict(spectra, batch_size=batch_size, verbose=0)
    expected = np.concatenate([outputs[label] for label in numpy_model.labels], axis=1)
    difference = float(np.max(np.abs(numpy_model.forward(spectra) - expected)))
    return {
        "numpy_seconds": numpy_seconds,
        "keras_seconds": keras_seconds,
        "rows": rows,
        "backend": keras.backend.backend(),
        "max_difference": difference,
    }
