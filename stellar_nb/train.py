"""Train the residual multitask MLP (paper section 5): ``stellar-nb train`` and :func:`train`.

One run: preprocess the survey's train and validation splits (the label scaler is fitted on train),
add two noisy copies of each training spectrum, build and compile the model
(:mod:`stellar_nb.model`), then train epoch by epoch. Each epoch sees the training rows in an
order drawn from ``(seed, epoch)``, so a run is reproducible and a resumed run sees what the
uninterrupted one would have. After every epoch the model with its optimiser state, the best
weights so far and the history are checkpointed atomically in ``OUT/checkpoint/``; a killed run
started again with the same arguments continues from its last finished epoch. At the end the best
weights (lowest validation loss) are written as a model directory (:mod:`stellar_nb.inference`).

The shipped pretrained model (``stellar_nb/resources/pretrained``, see its README) was made with::

    KERAS_BACKEND=jax stellar-nb train --config paper --out stellar_nb/resources/pretrained
    stellar-nb evaluate stellar_nb/resources/pretrained --out stellar_nb/resources/pretrained/evaluation.json

(full mode: the default 50,000-star simulated survey, 30 epochs, seed 0; JAX only because it is
faster here, the saved model is backend-independent).
"""

import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from stellar_nb import inference, schema
from stellar_nb import model as model_module
from stellar_nb.files import atomic_write, sha256sum

__all__ = [
    "configure_parser",
    "load_keras_model",
    "prepare_data",
    "run",
    "save_model_dir",
    "targets",
    "train",
]

CHECKPOINT = "checkpoint"


def prepare_data(data_dir, *, seed=0, copies=2, label_source="catalog", input_variant="paper"):
    """Preprocessed, scaled training (augmented) and validation arrays of a survey folder.

    Parameters
    ----------
    data_dir : str or pathlib.Path
        Folder with ``train.parquet`` and ``validation.parquet``.
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
    train_spectra, train_labels, _ = processor.transform_split(data_dir, "train")
    processor.fit(train_labels)
    validation_spectra, validation_labels, _ = processor.transform_split(data_dir, "validation")
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


def _fingerprint(data_dir, spec, training, config, n_rows):
    return {
        "data_dir": str(Path(data_dir).resolve()),
        "architecture": spec,
        "training": training,
        "seed": config.seed,
        "epochs": config.epochs,
        "batch_size": config.batch_size,
        "train_rows": int(n_rows),
    }


def _versions():
    import keras

    import stellar_nb

    backend = keras.backend.backend()
    versions = {
        "stellar_nb": stellar_nb.__version__,
        "keras": keras.__version__,
        "backend": backend,
    }
    versions["numpy"] = np.__version__
    versions["python"] = sys.version.split()[0]
    backend_module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}.get(backend)
    if backend_module:
        versions[backend_module] = __import__(backend_module).__version__
    return versions


def _seed_states(network):
    # Keras saves neither the dropout layers' seed-generator states nor restores them on loading;
    # without them a resumed run would draw other dropout masks than the uninterrupted one.
    return {
        layer.name: np.asarray(layer.seed_generator.state.numpy()).tolist()
        for layer in network.layers
        if getattr(layer, "seed_generator", None) is not None
    }


def _restore_seed_states(network, states):
    for layer in network.layers:
        if layer.name in states and getattr(layer, "seed_generator", None) is not None:
            state = layer.seed_generator.state
            state.assign(np.asarray(states[layer.name], dtype=state.dtype))


def _load_checkpoint(folder, fingerprint):
    import keras

    state_path = folder / "state.json"
    if not state_path.is_file():
        return None
    state = inference.read_json(state_path)
    if state.get("fingerprint") != json.loads(json.dumps(fingerprint)):
        raise ValueError(
            f"the checkpoint in {folder} belongs to a different run (data, architecture or settings "
            "differ); pass restart=True (--restart) to discard it"
        )
    network = keras.saving.load_model(folder / state["model_file"], safe_mode=True)
    _restore_seed_states(network, state.get("seed_states", {}))
    return network, state


def _save_checkpoint(folder, network, state):
    model_file = f"epoch-{state['epoch']:04d}.keras"
    atomic_write(folder / model_file, network.save)
    previous = folder / "state.json"
    old = inference.read_json(previous).get("model_file") if previous.is_file() else None
    inference.write_json(previous, {**state, "model_file": model_file})
    if old and old != model_file:
        (folder / old).unlink(missing_ok=True)


def train(
    config=None,
    data_dir=None,
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
    """Train a model and write its model directory.

    Parameters
    ----------
    config : stellar_nb.config.Config, optional
        Seed, epochs and batch size; :func:`~stellar_nb.config.get_config` by default.
    data_dir : str or pathlib.Path, optional
        Survey folder; the default simulated survey of ``config`` by default.
    out_dir : str or pathlib.Path, optional
        Model directory to write; ``config.models_dir / variant`` by default.
    variant : str
        Architecture: one of :data:`stellar_nb.model.VARIANTS`.
    architecture, training : dict, optional
        Changes to the variant's architecture and to :data:`stellar_nb.model.PAPER_TRAINING`.
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
    import tqdm

    from stellar_nb.config import get_config

    config = config or get_config()
    if data_dir is None:
        from stellar_nb import simulate

        data_dir = simulate.default_survey(config)
    out_dir = Path(out_dir) if out_dir is not None else config.models_dir / variant
    spec = model_module.architecture(variant, **(architecture or {}))
    settings = {**model_module.PAPER_TRAINING, **(training or {})}
    unknown = set(settings) - set(model_module.PAPER_TRAINING)
    if unknown:
        raise TypeError(
            f"unknown training setting(s) {sorted(unknown)}; allowed: {sorted(model_module.PAPER_TRAINING)}"
        )

    data = prepare_data(
        data_dir, seed=config.seed, label_source=label_source, input_variant=input_variant
    )
    spectra, labels = data["train_spectra"], data["train_labels"]
    weights = model_module.loss_weights(labels)
    names = spec["labels"]
    steps_per_epoch = -(-len(spectra) // config.batch_size)
    folder = out_dir / CHECKPOINT
    if restart and folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fingerprint = _fingerprint(data_dir, spec, settings, config, len(spectra))
    fingerprint["input_variant"] = input_variant

    loaded = _load_checkpoint(folder, fingerprint)
    if loaded is None:
        network = model_module.build_model(**spec, seed=config.seed)
        model_module.compile_model(
            network, weights=weights, total_steps=config.epochs * steps_per_epoch, **settings
        )
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
    best_path = folder / "best.weights.h5"
    bar = tqdm.tqdm(
        total=config.epochs,
        initial=state["epoch"],
        desc="train",
        unit="epoch",
        disable=not progress,
    )
    for epoch in range(state["epoch"], config.epochs):
        order = np.random.default_rng([config.seed, epoch]).permutation(len(spectra))
        started = time.perf_counter()
        history = network.fit(
            spectra[order],
            targets(labels[order], names),
            batch_size=config.batch_size,
            epochs=epoch + 1,
            initial_epoch=epoch,
            shuffle=False,
            verbose=0,
            validation_data=validation,
        ).history
        state["seconds"].append(time.perf_counter() - started)
        for key, values in history.items():
            state["history"].setdefault(key, []).append(float(values[-1]))
        val_loss = state["history"]["val_loss"][-1]
        if state["best_val_loss"] is None or val_loss < state["best_val_loss"]:
            atomic_write(best_path, network.save_weights)
            state["best_val_loss"], state["best_epoch"] = val_loss, epoch + 1
        state["epoch"] = epoch + 1
        state["fingerprint"] = fingerprint
        state["seed_states"] = _seed_states(network)
        _save_checkpoint(folder, network, state)
        bar.update(1)
        bar.set_postfix(loss=f"{state['history']['loss'][-1]:.4f}", val_loss=f"{val_loss:.4f}")
    bar.close()

    network.load_weights(best_path)
    final = model_module.build_model(**spec, seed=config.seed)
    final.set_weights(network.get_weights())
    numpy_model = inference.NumpyModel(spec, inference.export_weights(final), data["preprocessor"])
    metrics = _metrics(numpy_model, data, state, data_dir, config, calibration_stars, label_source)
    description = {
        "architecture": spec,
        "training": settings,
        "loss_weights": weights,
        "variant": variant,
        "config": {
            "seed": config.seed,
            "epochs": config.epochs,
            "batch_size": config.batch_size,
            "quick": config.quick,
            "label_source": label_source,
            "data_dir": str(data_dir),
        },
    }
    survey = Path(data_dir) / "survey.json"  # the simulated survey's own description
    if survey.is_file():
        description["config"]["survey"] = json.loads(survey.read_text())
    save_model_dir(out_dir, final, description, data["preprocessor"], state["history"], metrics)
    shutil.rmtree(folder, ignore_errors=True)
    keras.backend.clear_session()
    return out_dir


def _metrics(numpy_model, data, state, data_dir, config, calibration_stars, label_source):
    from stellar_nb.data import tables

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
    table = tables.read_split(data_dir, "validation", rows=slice(0, calibration_stars))
    reference = "true" if "true_teff" in table else "catalog"
    truth = table[[f"{reference}_{label}" for label in schema.LABELS]].to_numpy(dtype=np.float64)
    arrays = [list(table[column]) for column in ("loglam", "flux", "ivar", "mask")]
    velocity = table["rv_adop"].to_numpy(dtype=np.float64)
    spectra, flags = numpy_model.preprocess(*arrays, velocity)
    good = flags == 0  # unusable spectra take no part in the calibration
    residuals = (numpy_model.predict(spectra) - truth)[good]
    noise = numpy_model.noise_sigma(*arrays, velocity, n_draws=16, seed=config.seed)[good]
    sigma_model = inference.calibrate_sigma(residuals, noise)
    metrics["calibration"] = {
        "sigma_model": dict(zip(schema.LABELS, sigma_model.tolist(), strict=True)),
        "median_noise_sigma": dict(
            zip(schema.LABELS, np.median(noise, axis=0).tolist(), strict=True)
        ),
        "reference": reference,
        "stars": int(good.sum()),
        "n_draws": 16,
    }
    return metrics


def save_model_dir(out_dir, network, description, preprocessor, history, metrics):
    """Write a model directory (layout :data:`stellar_nb.inference.LAYOUT_VERSION`), manifest last."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(out_dir / "model.keras", network.save)
    arrays = inference.export_weights(network)
    atomic_write(out_dir / "weights.npz", lambda path: np.savez(path, **arrays))
    inference.write_json(out_dir / "model.json", description)
    inference.write_json(out_dir / "preprocessor.json", preprocessor.to_dict())
    inference.write_json(out_dir / "history.json", history)
    inference.write_json(out_dir / "metrics.json", metrics)
    files = {name: sha256sum(out_dir / name) for name in inference.REQUIRED_FILES}
    manifest = {
        "layout_version": inference.LAYOUT_VERSION,
        "versions": _versions(),
        "files": files,
        "labels": list(description["architecture"]["labels"]),
    }
    inference.write_json(out_dir / inference.MANIFEST, manifest)
    return out_dir


def load_keras_model(model_dir):
    """Load a model directory's Keras model in safe mode, after checking its manifest.

    Raises
    ------
    stellar_nb.inference.ModelDirectoryError
        If the directory is incomplete, corrupt or of another layout version.
    """
    import keras

    model_dir = Path(model_dir)
    inference.read_manifest(model_dir)
    try:
        return keras.saving.load_model(model_dir / "model.keras", safe_mode=True, compile=False)
    except (OSError, ValueError, KeyError) as error:
        raise inference.ModelDirectoryError(
            f"{model_dir / 'model.keras'} could not be loaded: {error}"
        ) from None


def configure_parser(parser):
    """Options of ``stellar-nb train``."""
    from stellar_nb.cli import add_common_arguments

    parser.add_argument(
        "--config",
        default="paper",
        choices=sorted(model_module.VARIANTS),
        help="architecture: the paper's selected model or an ablation (default paper)",
    )
    parser.add_argument(
        "--data", default=None, help="survey folder (default: the simulated survey)"
    )
    parser.add_argument(
        "--out", default=None, help="model directory (default DATA_HOME/models/CONFIG)"
    )
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default 30, quick 4)")
    parser.add_argument(
        "--labels", default="catalog", choices=("catalog", "true"), help="labels to train on"
    )
    parser.add_argument(
        "--restart", action="store_true", help="discard an interrupted run's checkpoint"
    )
    parser.add_argument(
        "--input",
        default="paper",
        choices=("paper", "continuum"),
        help="network input: the paper's standardised spectrum, or continuum-normalised first",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_common_arguments(parser)


def run(args):
    """Run ``stellar-nb train``."""
    from stellar_nb.cli import config_from_args

    overrides = {"epochs": args.epochs} if args.epochs else {}
    config = config_from_args(args, **overrides)
    out = train(
        config,
        args.data,
        args.out,
        variant=args.config,
        restart=args.restart,
        progress=not args.no_progress,
        label_source=args.labels,
        input_variant=args.input,
    )
    metrics = inference.read_json(out / "metrics.json")
    mae = ", ".join(f"{label} {value:.4g}" for label, value in metrics["validation_mae"].items())
    print(f"model written to {out}; best epoch {metrics['best_epoch']}; validation MAE {mae}")
    return 0
