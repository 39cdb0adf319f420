"""Baselines and ablations of the paper (section 6, Tables 2-5), trained under one setting.

Every network here is trained by the shipped model's own loop, :func:`stellar_nb.train.fit` (same
preprocessed and augmented data, per-label Huber loss weighted by inverse label variance, AdamW with
warm-up and cosine decay, rows in a seeded order per epoch, best weights by validation loss), and
scored on the same test split, so that the tables compare architectures and nothing else:

- the paper's residual multitask MLP and its ablations (no skip connections; no skip and no
  LayerNorm; three single-task models), from :func:`stellar_nb.model.build_model`;
- a CNN after Fabbro et al. (2017, StarNet): two 1-D convolutions of 4 and 16 filters of width 8,
  max-pooling by 4, dense layers of 256 and 128 units, one linear output per label;
- a DNN after Li et al. (2017): one independent network per label, 4000-1000-500-100-30-1
  (about 13.7 million parameters in all, as the paper quotes). Li et al. pre-trained theirs as a
  stacked autoencoder; here it is trained end to end like the others, with ReLU activations;
- the linear baselines, ordinary least squares and ridge regression (:mod:`stellar_nb.baselines`).

Inference time is the paper's measure: the whole test split through Keras ``predict``, mean of
``repeats`` runs. This module imports Keras on import.
"""

import time

import keras
import numpy as np
import pandas as pd

from stellar_nb import baselines, model, schema, simulate, train

__all__ = ["NETWORKS", "build_cnn", "build_dnn", "compare", "relative_to"]


def build_cnn(input_size=schema.GRID_SIZE, *, labels=schema.LABELS, seed=0):
    """The CNN baseline after Fabbro et al. (2017, StarNet); outputs named after the labels."""
    initializer = keras.initializers.GlorotUniform(seed=seed)
    inputs = keras.Input(shape=(int(input_size),), name="spectrum")
    x = keras.layers.Reshape((int(input_size), 1))(inputs)
    x = keras.layers.Conv1D(4, 8, activation="relu", kernel_initializer=initializer)(x)
    x = keras.layers.Conv1D(16, 8, activation="relu", kernel_initializer=initializer)(x)
    x = keras.layers.MaxPooling1D(4)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(256, activation="relu", kernel_initializer=initializer)(x)
    x = keras.layers.Dense(128, activation="relu", kernel_initializer=initializer)(x)
    outputs = {
        label: keras.layers.Dense(1, kernel_initializer=initializer, name=label)(x)
        for label in labels
    }
    return keras.Model(inputs, outputs, name="cnn_starnet")


def build_dnn(
    input_size=schema.GRID_SIZE, *, labels=schema.LABELS, widths=(1000, 500, 100, 30), seed=0
):
    """The DNN baseline after Li et al. (2017): an independent fully connected network per label."""
    inputs = keras.Input(shape=(int(input_size),), name="spectrum")
    outputs = {}
    for number, label in enumerate(labels):
        x = inputs
        for layer, units in enumerate(widths):
            initializer = keras.initializers.GlorotUniform(seed=seed * 100 + number * 10 + layer)
            x = keras.layers.Dense(units, activation="relu", kernel_initializer=initializer)(x)
        initializer = keras.initializers.GlorotUniform(seed=seed * 100 + number * 10 + len(widths))
        outputs[label] = keras.layers.Dense(1, kernel_initializer=initializer, name=label)(x)
    return keras.Model(inputs, outputs, name="dnn_li2017")


def _variant(name):
    def build(input_size, seed):
        spec = model.architecture(name, input_size=input_size)
        return model.build_model(**spec, seed=seed)

    return build


#: Table name -> builder ``(input_size, seed) -> keras.Model``.
NETWORKS = {
    "residual MLP (paper)": _variant("paper"),
    "no skip": _variant("no_skip"),
    "no skip, no LayerNorm": _variant("no_skip_no_norm"),
    "single-task": _variant("single_task"),
    "CNN (Fabbro et al. 2017)": lambda input_size, seed: build_cnn(input_size, seed=seed),
    "DNN (Li et al. 2017)": lambda input_size, seed: build_dnn(input_size, seed=seed),
}


def _row(name, predicted_scaled, preprocessor, truth, parameters, seconds):
    predicted = preprocessor.unscale_labels(predicted_scaled)
    mae = np.mean(np.abs(predicted - truth), axis=0)
    return {"model": name, "parameters": parameters, "inference_s": seconds} | {
        f"mae_{label}": float(value) for label, value in zip(schema.LABELS, mae, strict=True)
    }


def _timed_predict(network, spectra, repeats):
    network.predict(spectra[:256], verbose=0)  # build the predict function before timing
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        raw = network.predict(spectra, batch_size=1024, verbose=0)
        times.append(time.perf_counter() - started)
    return np.column_stack([np.asarray(raw[label]).ravel() for label in schema.LABELS]), float(
        np.mean(times)
    )


def compare(config, survey=None, *, networks=None, linear=True, repeats=10, label_source="catalog"):
    """Train each network (and fit the linear baselines) and score them on the test split.

    Parameters
    ----------
    config : stellar_nb.config.Config
        Seed, epochs and batch size (the same for every network; the seed fixes the initial
        weights and the rows' order in every epoch).
    survey : str or pathlib.Path, optional
        Survey folder (:func:`stellar_nb.simulate.resolve_survey`).
    networks : sequence of str, optional
        Keys of :data:`NETWORKS`; all by default.
    linear : bool
        Also fit OLS and ridge regression.
    repeats : int
        Runs averaged for the inference time.
    label_source : {"catalog", "true"}
        Labels to train on and score against (``true`` exists for the simulated survey only).

    Returns
    -------
    pandas.DataFrame
        One row per model: ``parameters``, ``inference_s`` and ``mae_teff``, ``mae_feh``,
        ``mae_logg`` in physical units.
    """
    names = list(NETWORKS) if networks is None else list(networks)
    unknown = [name for name in names if name not in NETWORKS]
    if unknown:
        raise ValueError(f"unknown network(s) {unknown}; allowed: {list(NETWORKS)}")
    survey = simulate.resolve_survey(survey, config)
    data = train.prepare_data(survey, seed=config.seed, label_source=label_source)
    preprocessor = data["preprocessor"]
    # The preprocessor returns the labels it was fitted on (label_source), in physical units.
    test_spectra, truth, _ = preprocessor.transform_split(survey, "test")
    truth = np.asarray(truth, dtype=np.float64)
    rows = []
    for name in names:
        network = NETWORKS[name](test_spectra.shape[1], config.seed)
        train.compile_network(network, data, epochs=config.epochs, batch_size=config.batch_size)
        network, _ = train.fit(
            network, data, epochs=config.epochs, batch_size=config.batch_size, seed=config.seed
        )
        predicted, seconds = _timed_predict(network, test_spectra, repeats)
        rows.append(
            _row(name, predicted, preprocessor, truth, model.count_parameters(network), seconds)
        )
        keras.backend.clear_session()
    if linear:
        fits = {
            "OLS": baselines.fit_ols(data["train_spectra"], data["train_labels"]),
            "Ridge": baselines.fit_ridge(
                data["train_spectra"],
                data["train_labels"],
                data["validation_spectra"],
                data["validation_labels"],
            ),
        }
        for name, fitted in fits.items():
            started = time.perf_counter()
            predicted = fitted.predict(test_spectra)
            seconds = time.perf_counter() - started
            rows.append(
                _row(
                    name,
                    predicted,
                    preprocessor,
                    truth,
                    fitted.coef_.size + fitted.intercept_.size,
                    seconds,
                )
            )
    return pd.DataFrame(rows).set_index("model")


def relative_to(table, reference):
    """Each row of :func:`compare`'s table divided by the row ``reference`` (the paper's Tables 4, 5).

    Values below 1 are better than the reference.
    """
    if reference not in table.index:
        raise ValueError(f"no row {reference!r}; rows: {list(table.index)}")
    return table.div(table.loc[reference], axis=1)
