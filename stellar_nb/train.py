"""Train the residual multitask MLP (paper section 5): ``stellar-nb train`` and :func:`train`.

One run: preprocess the survey's train and validation splits (the label scaler is fitted on train),
add two noisy copies of each training spectrum, build and compile the model
(:mod:`stellar_nb.model`), then train epoch by epoch with :func:`fit`, the one training loop that
the tuner's trials, the baselines and the ablations go through too. Each epoch sees the training rows in an
order drawn from ``(seed, epoch)``, so a run is reproducible and a resumed run sees what the
uninterrupted one would have. After every epoch the model with its optimiser state, the best
weights so far and the history are checkpointed atomically in ``OUT/checkpoint/``; a killed run
started again with the same arguments continues from its last finished epoch. At the end the best
weights (lowest validation loss) are written as a model directory
(:mod:`stellar_nb.model_directory`).

The shipped pretrained model (``stellar_nb/resources/pretrained``, see its README) was made with::

    KERAS_BACKEND=jax stellar-nb train --variant paper --out stellar_nb/resources/pretrained
    stellar-nb evaluate stellar_nb/resources/pretrained --out stellar_nb/resources/pretrained/evaluation.json

(full mode: the default 50,000-star simulated survey, 30 epochs, seed 0; JAX only because it is
faster here, the saved model is backend-independent).
"""

import json
import shutil
import time
from pathlib import Path

import numpy as np

from stellar_nb import calibration, checkpoint, files, inference, model_directory, schema
from stellar_nb import model as model_module

__all__ = [
    "compile_network",
    "fit",
    "prepare_data",
    "targets",
    "total_steps",
    "train",
]

CHECKPOINT = "checkpoint"


def prepare_data(survey, *, seed=0, copies=2, label_source="catalog", input_variant="paper"):
    """Preprocessed, scaled training (augmented) and validation arrays of a survey folder.

    Parameters
    ----------
    survey : str or pathlib.Path
        Survey folder with ``train.parquet`` and ``validation.parquet``.
    seed : int
        Seed of the augmentation noise.
    copies : int
        Noisy copies added per training spectrum (the paper: 2).
    label_source : {"catalog", "true"}
        Train on catalogue labels (as the paper does) or, for the simulated survey, true labels.
    input_variant : {"paper", "continuum"}
        The network's input: :data:`stellar_nb.preprocess.INPUT_VARIANTS`.

    Returns
    -------
    dict
        ``train_spectra``, ``train_labels`` (scaled), ``validation_spectra``,
        ``validation_labels`` (scaled), ``validation_physical`` (physical units) and
        ``preprocessor`` (label scaler fitted on train). Unusable spectra are left out.
    """
    from stellar_nb import preprocess

    processor = preprocess.Preprocessor(
        label_source=label_source, continuum_degree=preprocess.input_variant(input_variant)
    )
    train_spectra, train_labels, _ = processor.transform_split(survey, "train")
    processor.fit_labels(train_labels)
    validation_spectra, validation_labels, _ = processor.transform_split(survey, "validation")
    augmented, augmented_labels = preprocess.augment(
        train_spectra, copies=copies, seed=seed, labels=train_labels
    )
    return {
        "train_spectra": augmented,
        "train_labels": processor.scale_labels(augmented_labels).astype(np.float32),
        "validation_spectra": validation_spectra,
        "validation_labels": processor.scale_labels(validation_labels).astype(np.float32),
        "validation_physical": validation_labels,
        "preprocessor": processor,
    }


def targets(labels, names=schema.LABELS):
    """Keras targets: one (n, 1) column of ``labels`` (n, 3; :data:`~stellar_nb.schema.LABELS`
    order) per output name in ``names``."""
    return {name: labels[:, schema.LABELS.index(name), None] for name in names}


def _fingerprint(survey, spec, training, config, n_rows):
    return {
        "survey": str(Path(survey).resolve()),
        "architecture": spec,
        "training": training,
        "seed": config.seed,
        "epochs": config.epochs,
        "batch_size": config.batch_size,
        "train_rows": int(n_rows),
    }


def total_steps(rows, *, epochs, batch_size):
    """Optimiser steps of a run: ``epochs`` times the batches of ``rows`` training rows."""
    return int(epochs) * -(-int(rows) // int(batch_size))


def compile_network(network, data, *, epochs, batch_size, **training):
    """Compile ``network`` for :func:`fit` on ``data``: the paper's loss and optimiser.

    The loss weights are the inverse variances of ``data["train_labels"]``
    (:func:`stellar_nb.model.loss_weights`) and the learning-rate schedule spans ``epochs`` epochs of
    ``batch_size`` rows; ``training`` changes :func:`stellar_nb.model.compile_model`'s defaults.

    Returns
    -------
    keras.Model
        ``network``, compiled.
    """
    return model_module.compile_model(
        network,
        weights=model_module.loss_weights(data["train_labels"]),
        total_steps=total_steps(len(data["train_spectra"]), epochs=epochs, batch_size=batch_size),
        **training,
    )


def fit(
    network,
    data,
    *,
    epochs,
    batch_size,
    seed=0,
    checkpoint_dir=None,
    fingerprint=None,
    callbacks=(),
    progress=False,
):
    """The one training loop: every network the project compares is trained by it.

    Each epoch sees the training rows in an order drawn from ``(seed, epoch)``, so a run is
    reproducible without global seeding and a resumed run sees what the uninterrupted one would have.
    The weights with the lowest validation loss are kept and loaded at the end.

    Parameters
    ----------
    network : keras.Model
        Compiled (:func:`compile_network`), with one output per label it predicts.
    data : dict
        ``train_spectra``, ``train_labels``, ``validation_spectra``, ``validation_labels`` (scaled,
        :data:`~stellar_nb.schema.LABELS` order), as from :func:`prepare_data`.
    epochs, batch_size : int
        Length of the run and rows per optimiser step.
    seed : int
        Seed of the epochs' row orders.
    checkpoint_dir : pathlib.Path, optional
        Folder for a checkpoint after every epoch (model with optimiser state, best weights,
        history); a checkpoint already there with the same ``fingerprint`` is resumed, and then
        ``network`` is replaced by the checkpoint's.
    fingerprint : dict, optional
        JSON-able description of the run, stored with the checkpoint and compared on resuming.
    callbacks : sequence of keras.callbacks.Callback
        Passed to every epoch's ``network.fit`` (the tuner reports its trials through them).
    progress : bool
        Show a progress bar (one step per epoch) on stderr.

    Returns
    -------
    network : keras.Model
        With the best weights loaded.
    state : dict
        ``history`` (per-epoch logs), ``best_val_loss``, ``best_epoch``, ``epoch`` (finished) and
        ``seconds`` per epoch.

    Raises
    ------
    ValueError
        If the checkpoint in ``checkpoint_dir`` belongs to another run.
    """
    import tqdm

    spectra, labels = data["train_spectra"], data["train_labels"]
    names = list(network.output_names)
    loaded = None if checkpoint_dir is None else checkpoint.load(checkpoint_dir, fingerprint)
    if loaded is None:
        state = {
            "epoch": 0,
            "history": {},
            "best_val_loss": None,
            "best_epoch": None,
            "seconds": [],
        }
    else:
        network, state = loaded
    validation = (data["validation_spectra"], targets(data["validation_labels"], names))
    best_path = None if checkpoint_dir is None else checkpoint_dir / "best.weights.h5"
    best = None
    bar = tqdm.tqdm(
        total=epochs, initial=state["epoch"], desc="train", unit="epoch", disable=not progress
    )
    # every epoch's row order is gathered into this one buffer: a fresh copy per epoch (1.4 GB for
    # the full survey's 90,000 augmented spectra) is paid again in page faults every epoch
    shuffled = np.empty_like(spectra)
    for epoch in range(state["epoch"], epochs):
        order = np.random.default_rng([seed, epoch]).permutation(len(spectra))
        started = time.perf_counter()
        np.take(spectra, order, axis=0, out=shuffled, mode="clip")  # "clip": no hidden copy
        history = network.fit(
            shuffled,
            targets(labels[order], names),
            batch_size=batch_size,
            epochs=epoch + 1,
            initial_epoch=epoch,
            shuffle=False,
            verbose=0,
            validation_data=validation,
            callbacks=list(callbacks),
        ).history
        state["seconds"].append(time.perf_counter() - started)
        for key, values in history.items():
            state["history"].setdefault(key, []).append(float(values[-1]))
        val_loss = state["history"]["val_loss"][-1]
        if state["best_val_loss"] is None or val_loss < state["best_val_loss"]:
            if best_path is None:
                best = network.get_weights()
            else:
                files.atomic_write(best_path, network.save_weights)
            state["best_val_loss"], state["best_epoch"] = val_loss, epoch + 1
        state["epoch"] = epoch + 1
        if checkpoint_dir is not None:
            state["fingerprint"] = fingerprint
            checkpoint.save(checkpoint_dir, network, state)
        bar.update(1)
        bar.set_postfix(loss=f"{state['history']['loss'][-1]:.4f}", val_loss=f"{val_loss:.4f}")
    bar.close()
    if best_path is not None:
        network.load_weights(best_path)
    elif best is not None:
        network.set_weights(best)
    return network, state


def train(
    config=None,
    survey=None,
    out_dir=None,
    *,
    variant="paper",
    architecture=None,
    training=None,
    restart=False,
    progress=True,
    label_source="catalog",
    calibration_stars=1000,
    input_variant="paper",
):
    """Train a model with :func:`fit` and write its model directory.

    Parameters
    ----------
    config : stellar_nb.config.Config, optional
        Seed, epochs and batch size; :func:`~stellar_nb.config.get_config` by default.
    survey : str or pathlib.Path, optional
        Survey folder (:func:`stellar_nb.simulate.resolve_survey`).
    out_dir : str or pathlib.Path, optional
        Model directory to write; ``config.models_dir / variant`` by default.
    variant : str
        Architecture: one of :data:`stellar_nb.model.VARIANTS`.
    architecture, training : dict, optional
        Changes to the variant's architecture and to :func:`stellar_nb.model.compile_model`'s
        defaults (the paper's settings).
    restart : bool
        Discard a checkpoint left by an earlier, interrupted run instead of resuming it.
    progress : bool
        Show a progress bar (one step per epoch) on stderr.
    label_source : {"catalog", "true"}
        Labels to train on.
    calibration_stars : int
        Validation stars used to fit the uncertainty calibration.
    input_variant : {"paper", "continuum"}
        The network's input (:data:`stellar_nb.preprocess.INPUT_VARIANTS`).

    Returns
    -------
    pathlib.Path
        The model directory.
    """
    import keras

    from stellar_nb import simulate
    from stellar_nb.config import get_config

    config = config or get_config()
    survey = simulate.resolve_survey(survey, config)
    out_dir = Path(out_dir) if out_dir is not None else config.models_dir / variant
    spec = model_module.architecture(variant, **(architecture or {}))
    settings = model_module.training_settings(**(training or {}))

    data = prepare_data(
        survey, seed=config.seed, label_source=label_source, input_variant=input_variant
    )
    folder = out_dir / CHECKPOINT
    if restart and folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fingerprint = _fingerprint(survey, spec, settings, config, len(data["train_spectra"]))
    fingerprint["input_variant"] = input_variant

    network = model_module.build_model(**spec, seed=config.seed)
    compile_network(network, data, epochs=config.epochs, batch_size=config.batch_size, **settings)
    network, state = fit(
        network,
        data,
        epochs=config.epochs,
        batch_size=config.batch_size,
        seed=config.seed,
        checkpoint_dir=folder,
        fingerprint=fingerprint,
        progress=progress,
    )
    final = model_module.build_model(**spec, seed=config.seed)  # the weights without the optimiser
    final.set_weights(network.get_weights())
    numpy_model = inference.NumpyModel(
        spec, model_directory.export_weights(final), data["preprocessor"]
    )
    metrics = _metrics(numpy_model, data, state, survey, config, calibration_stars, label_source)
    description = {
        "architecture": spec,
        "training": settings,
        "loss_weights": model_module.loss_weights(data["train_labels"]),
        "variant": variant,
        "config": {
            "seed": config.seed,
            "epochs": config.epochs,
            "batch_size": config.batch_size,
            "quick": config.quick,
            "label_source": label_source,
            "data_dir": str(survey),
        },
    }
    simulated = Path(survey) / schema.SURVEY_MANIFEST  # the simulated survey's own description
    if simulated.is_file():
        description["config"]["survey"] = json.loads(simulated.read_text())
    model_directory.write(
        out_dir, final, description, data["preprocessor"], state["history"], metrics
    )
    shutil.rmtree(folder, ignore_errors=True)
    keras.backend.clear_session()
    return out_dir


def _metrics(numpy_model, data, state, survey, config, calibration_stars, label_source):
    predicted = numpy_model.predict(data["validation_spectra"])
    mae = np.mean(np.abs(predicted - data["validation_physical"]), axis=0)
    metrics = {
        "best_epoch": state["best_epoch"],
        "best_val_loss": state["best_val_loss"],
        "epochs": state["epoch"],
        "seconds_per_epoch": state["seconds"],
        "train_rows": len(data["train_spectra"]),
        "validation_mae": dict(zip(schema.LABELS, mae.tolist(), strict=True)),
        "validation_mae_reference": label_source,
    }
    metrics["calibration"] = calibration.fit_sigma_model(
        numpy_model, survey, stars=calibration_stars, seed=config.seed
    )
    return metrics
