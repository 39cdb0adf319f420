"""Bayesian hyperparameter search with Keras Tuner (section 5 of the paper).

This module imports Keras Tuner (and so Keras and its backend) on import; the command line imports
it only for ``stellar-nb tune``.

The search space is the paper's: stem 64-128 units; 1-2 residual blocks of 32-64 units; each head a
template from a single 16-unit layer up to 48-32-16; dropout of the stem 0-0.5, trunk 0-0.4 and
heads 0-0.4; learning rate log-uniform in [1e-4, 5e-3]; weight decay log-uniform in [1e-5, 1e-2].
The objective is the validation loss. The paper ran 100 trials; quick mode runs a handful.

:class:`StellarHyperModel` only maps ``hp.*`` onto the arguments of
:func:`stellar_nb.model.build_model` and :func:`stellar_nb.model.compile_model`; its ``fit`` is the
shipped model's training loop, :func:`stellar_nb.train.fit` (seeded row order, best epoch kept), so
a trial's score is what :func:`stellar_nb.train.train` would reach with its settings. The tuner keeps its
trials under ``config.tuner_dir``; a search that is interrupted resumes where it stopped when run
again (Keras Tuner reloads finished trials from its directory), unless ``overwrite=True``.

Each project folder holds :data:`FINGERPRINT`, the fingerprint of the data and settings the search
ran on (:func:`data_fingerprint`): a rerun on other data, another label source, input variant,
epochs or search space is refused instead of returning the old search's results, or starts afresh
with ``overwrite=True``. Trials are seeded: the oracle's draws, the weight initialisation and the
row order all follow ``seed``, so two searches with the same seed try the same first trials.

A search can be spread over processes and machines with Keras Tuner's own distributed mode
(``tune(distributed="chief" | "worker", oracle="HOST:PORT")``): the chief runs the oracle as a
gRPC service at ``HOST:PORT`` and the workers, sharing its project folder, ask it for trials and
train them. Each worker writes :data:`TRIAL_TUNER` (its tuner id) into the folder of every trial
it runs, so :func:`report` tells which worker ran which trial. A worker that is killed and started
again with the same tuner id is handed back the trial it was running; a chief that is started
again reloads the oracle from the folder, like a single-process search.
"""

import contextlib
import json
import os
import shutil
from pathlib import Path

import keras
import keras_tuner

from stellar_nb import files, model, schema
from stellar_nb.data import tables

__all__ = [
    "FINGERPRINT",
    "HEAD_TEMPLATES",
    "ROLES",
    "TRIAL_TUNER",
    "StellarHyperModel",
    "data_fingerprint",
    "distributed_environment",
    "hyperparameters_to_arguments",
    "make_tuner",
    "report",
    "search_space",
    "tune",
]

#: File in a tuner project folder recording what the search ran on.
FINGERPRINT = "stellar_nb_fingerprint.json"

#: File in each trial folder naming the tuner (worker) that ran the trial.
TRIAL_TUNER = "stellar_nb_tuner.json"

#: Roles of a process in a distributed search.
ROLES = ("chief", "worker")

#: Tuner id of the chief: Keras Tuner recognises the chief by "chief" in its id.
_CHIEF_ID = "chief"

#: Head topologies the search chooses from, by name (hidden widths, input to output).
HEAD_TEMPLATES = {
    "16": (16,),
    "32": (32,),
    "48": (48,),
    "32-16": (32, 16),
    "48-32": (48, 32),
    "48-32-16": (48, 32, 16),
}


def hyperparameters_to_arguments(hp):
    """Declare the search space on ``hp`` and return ``(architecture, training)`` for one trial.

    Parameters
    ----------
    hp : keras_tuner.HyperParameters

    Returns
    -------
    architecture : dict
        Keyword arguments of :func:`stellar_nb.model.build_model`.
    training : dict
        ``learning_rate`` and ``weight_decay`` for :func:`stellar_nb.model.compile_model`.
    """
    n_blocks = hp.Int("blocks", 1, 2)
    architecture = {
        "stem_units": hp.Int("stem_units", 64, 128, step=16),
        "stem_dropout": hp.Float("stem_dropout", 0.0, 0.5, step=0.1),
        "block_units": tuple(
            hp.Int(f"block{b}_units", 32, 64, step=16) for b in range(1, n_blocks + 1)
        ),
        "block_dropout": hp.Float("block_dropout", 0.0, 0.4, step=0.1),
        "head_units": {
            label: HEAD_TEMPLATES[hp.Choice(f"{label}_head", list(HEAD_TEMPLATES))]
            for label in schema.LABELS
        },
        "head_dropout": hp.Float("head_dropout", 0.0, 0.4, step=0.1),
    }
    training = {
        "learning_rate": hp.Float("learning_rate", 1e-4, 5e-3, sampling="log"),
        "weight_decay": hp.Float("weight_decay", 1e-5, 1e-2, sampling="log"),
    }
    return architecture, training


class StellarHyperModel(keras_tuner.HyperModel):
    """Keras Tuner hypermodel of the residual multitask MLP.

    Parameters
    ----------
    weights : dict
        Loss weight per label (:func:`stellar_nb.model.loss_weights`).
    total_steps : int
        Optimiser steps of one trial (epochs x batches per epoch), for the learning-rate schedule.
    input_size : int
        Pixels per preprocessed spectrum.
    seed : int
        Weight-initialisation seed, the same in every trial.
    """

    def __init__(self, weights, total_steps, input_size=schema.GRID_SIZE, seed=0):
        super().__init__(name="residual_multitask_mlp")
        self.weights, self.total_steps = dict(weights), int(total_steps)
        self.input_size, self.seed = int(input_size), int(seed)

    def build(self, hp):
        """Build and compile the trial's network."""
        architecture, training = hyperparameters_to_arguments(hp)
        network = model.build_model(self.input_size, seed=self.seed, **architecture)
        return model.compile_model(
            network, weights=self.weights, total_steps=self.total_steps, **training
        )

    def fit(self, hp, model, data, *, epochs, batch_size, callbacks=()):
        """Train one trial with :func:`stellar_nb.train.fit`; return its best validation loss.

        Parameters
        ----------
        hp : keras_tuner.HyperParameters
        model : keras.Model
            From :meth:`build`.
        data : dict
            Scaled training and validation arrays (:func:`stellar_nb.train.prepare_data`).
        epochs, batch_size : int
        callbacks : sequence of keras.callbacks.Callback
            The tuner's own, which record each epoch of the trial.

        Returns
        -------
        float
            The trial's objective.
        """
        from stellar_nb import train

        _, state = train.fit(
            model,
            data,
            epochs=epochs,
            batch_size=batch_size,
            seed=self.seed,
            callbacks=[EpochEvents(callback) for callback in callbacks],
        )
        return state["best_val_loss"]


class EpochEvents(keras.callbacks.Callback):
    """Pass only a callback's training and epoch events on, not its per-step ones.

    Keras Tuner's ``TunerCallback`` defines per-step hooks that do nothing here (no tuner of this
    module overrides ``on_batch_begin``/``on_batch_end``), yet a callback with such hooks makes
    Keras wait for every step to finish and, on JAX, copy the whole model state back after it:
    5-10% of an epoch of the paper model on this 2-core machine.

    Parameters
    ----------
    callback : keras.callbacks.Callback
    """

    def __init__(self, callback):
        super().__init__()
        self.callback = callback

    def set_model(self, model):
        super().set_model(model)
        self.callback.set_model(model)

    def set_params(self, params):
        super().set_params(params)
        self.callback.set_params(params)

    def on_train_begin(self, logs=None):
        self.callback.on_train_begin(logs)

    def on_train_end(self, logs=None):
        self.callback.on_train_end(logs)

    def on_epoch_begin(self, epoch, logs=None):
        self.callback.on_epoch_begin(epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self.callback.on_epoch_end(epoch, logs)


def search_space():
    """The search space as JSON: every hyperparameter's configuration, conditional ones included.

    Returns
    -------
    list of dict
        :meth:`keras_tuner.engine.hyperparameters.HyperParameter.get_config` of each parameter,
        declared with the most blocks so that every block's range is part of the space.
    """
    hp = keras_tuner.HyperParameters()
    hp.Int("blocks", 1, 2)
    hp.values["blocks"] = hp.space[0].max_value
    hyperparameters_to_arguments(hp)
    return [parameter.get_config() for parameter in hp.space]


def data_fingerprint(
    survey, *, seed, label_source="catalog", input_variant="paper", epochs=None, batch_size=None
):
    """What a search depends on: the survey's data, the labels and inputs, the space and seed.

    Parameters
    ----------
    survey : str or pathlib.Path
        Survey folder; its ``survey.json`` (when present) and the SHA-256 and size of the
        ``train.parquet`` and ``validation.parquet`` the search reads are recorded.
    seed : int
        Seed of the augmentation, the oracle and the weight initialisation.
    label_source, input_variant : str
        As for :func:`stellar_nb.train.prepare_data`.
    epochs, batch_size : int, optional
        Of each trial (they change every trial's score).

    Returns
    -------
    dict
        JSON-ready; equal dicts mean the same search.

    Raises
    ------
    FileNotFoundError
        If the survey folder lacks a split the search reads.
    """
    fingerprint = {
        "survey": tables.fingerprint(survey, ("train", "validation")),
        "seed": int(seed),
        "label_source": label_source,
        "input_variant": input_variant,
        "epochs": epochs,
        "batch_size": batch_size,
        "space": search_space(),
    }
    return json.loads(json.dumps(fingerprint, default=str))


def _check_fingerprint(project, fingerprint, overwrite):
    """Refuse a project folder that holds a search on other data (unless ``overwrite``)."""
    if (
        overwrite
        or not project.is_dir()
        or not any(entry.name != FINGERPRINT for entry in project.iterdir())
    ):
        return
    stored_path = project / FINGERPRINT
    keys = files.fingerprint_difference(stored_path, fingerprint)
    if keys is None:
        return
    if not stored_path.is_file():
        what = "a search without a data fingerprint (from an older stellar_nb or another tool)"
    else:
        what = f"a search on other data or settings (differing: {', '.join(keys)})"
    raise ValueError(
        f"the tuner folder {project} holds {what}; pass overwrite=True "
        "(stellar-nb tune --overwrite) to discard it and start afresh, or choose another "
        "project name (--project)"
    )


class _BayesianOptimization(keras_tuner.BayesianOptimization):
    """Keras Tuner's Bayesian optimisation that records which tuner ran each trial."""

    def on_trial_begin(self, trial):
        """Write :data:`TRIAL_TUNER` (this tuner's id) into the trial's folder."""
        super().on_trial_begin(trial)
        record = {"trial": trial.trial_id, "tuner_id": self.tuner_id}
        files.write_json(Path(self.get_trial_dir(trial.trial_id)) / TRIAL_TUNER, record)


def _oracle_address(oracle):
    host, _, port = str(oracle).rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--oracle {oracle!r}: give HOST:PORT, e.g. 127.0.0.1:8000")
    return host, port


@contextlib.contextmanager
def distributed_environment(role, oracle, tuner_id=None):
    """Set Keras Tuner's ``KERASTUNER_*`` variables for a distributed search, restored on exit.

    Keras Tuner reads its role from the environment when a tuner is made and when it searches;
    this sets ``KERASTUNER_TUNER_ID``, ``KERASTUNER_ORACLE_IP`` and ``KERASTUNER_ORACLE_PORT``
    for that time only.

    Parameters
    ----------
    role : {"chief", "worker"}
        The chief serves the oracle at ``oracle``; a worker asks it for trials.
    oracle : str
        ``HOST:PORT`` of the chief's oracle service.
    tuner_id : str, optional
        A worker's name (required for a worker, unique per worker, and the same when a killed
        worker is started again); the chief's is "chief".

    Yields
    ------
    str
        The tuner id.

    Raises
    ------
    ValueError
        For another role, an address that is not ``HOST:PORT``, a worker without a tuner id, or
        a worker id containing "chief" (Keras Tuner would take it for the chief).
    """
    if role not in ROLES:
        raise ValueError(f"distributed role must be one of {ROLES}, got {role!r}")
    host, port = _oracle_address(oracle)
    if role == "worker" and not (tuner_id and str(tuner_id).strip()):
        raise ValueError("a distributed worker needs a tuner id (--tuner-id NAME)")
    if role == "worker" and _CHIEF_ID in str(tuner_id):
        raise ValueError(f"worker tuner id {tuner_id!r} must not contain {_CHIEF_ID!r}")
    tuner_id = _CHIEF_ID if role == "chief" else str(tuner_id).strip()
    settings = {
        "KERASTUNER_TUNER_ID": tuner_id,
        "KERASTUNER_ORACLE_IP": host,
        "KERASTUNER_ORACLE_PORT": port,
    }
    saved = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        yield tuner_id
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def report(project_dir):
    """Every trial of a search folder: its values, status, score and the tuner that ran it.

    Parameters
    ----------
    project_dir : str or pathlib.Path
        A tuner project folder (``config.tuner_dir / project_name``).

    Returns
    -------
    list of dict
        ``trial``, ``status``, ``val_loss`` (None unless completed), ``tuner_id`` (None for a
        trial run before :data:`TRIAL_TUNER` was recorded) and ``values``, in trial order.

    Raises
    ------
    FileNotFoundError
        If ``project_dir`` is not a folder.
    """
    project_dir = Path(project_dir)
    if not project_dir.is_dir():
        raise FileNotFoundError(f"no tuner project folder {project_dir}")
    rows = []
    for folder in sorted(project_dir.glob("trial_*")):
        if not (folder / "trial.json").is_file():
            continue
        trial = files.read_json(folder / "trial.json")
        tuner = folder / TRIAL_TUNER
        rows.append(
            {
                "trial": trial["trial_id"],
                "status": trial["status"],
                "val_loss": trial["score"] if trial["status"] == "COMPLETED" else None,
                "tuner_id": files.read_json(tuner)["tuner_id"] if tuner.is_file() else None,
                "values": trial["hyperparameters"]["values"],
            }
        )
    return rows


def make_tuner(
    hypermodel,
    *,
    directory,
    project_name="residual_mlp",
    max_trials=100,
    seed=0,
    overwrite=False,
    fingerprint=None,
):
    """Keras Tuner's Bayesian optimisation on the validation loss.

    With ``overwrite=False`` a search already in ``directory/project_name`` resumes.

    Parameters
    ----------
    hypermodel : StellarHyperModel
    directory : str or pathlib.Path
        Folder of the tuner projects.
    project_name : str
        Subfolder holding this search's trials.
    max_trials : int
        Trials in all, those reloaded included.
    seed : int
        Seed of the oracle (non-negative): the same seed draws the same trials.
    overwrite : bool
        Discard a search already in the project folder.
    fingerprint : dict, optional
        :func:`data_fingerprint` of the search, stored as :data:`FINGERPRINT` in the project
        folder; a folder holding another fingerprint is refused unless ``overwrite``.

    Returns
    -------
    keras_tuner.BayesianOptimization

    Raises
    ------
    ValueError
        If ``seed`` is negative, or the project folder holds a search with another fingerprint
        (the message names the folder and offers ``overwrite``).
    """
    if int(seed) < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    project = Path(directory) / project_name
    if fingerprint is not None:
        fingerprint = json.loads(json.dumps(fingerprint, default=str))
        _check_fingerprint(project, fingerprint, overwrite)
        if overwrite and project.exists():
            shutil.rmtree(project)
    tuner = _BayesianOptimization(
        hypermodel,
        objective="val_loss",
        max_trials=int(max_trials),
        # Keras Tuner reads a seed of 0 as "none" and draws a random one: shift by one
        seed=int(seed) + 1,
        directory=str(directory),
        project_name=project_name,
        overwrite=overwrite,
    )
    if fingerprint is not None:
        project.mkdir(parents=True, exist_ok=True)
        files.write_json(project / FINGERPRINT, fingerprint)
    return tuner


def tune(
    config=None,
    survey=None,
    *,
    project_name="residual_mlp",
    overwrite=False,
    label_source="catalog",
    input_variant="paper",
    distributed=None,
    oracle=None,
    tuner_id=None,
):
    """Run the search and return the best trial's settings.

    Parameters
    ----------
    config : stellar_nb.config.Config, optional
        ``trials``, ``tune_epochs``, ``batch_size``, ``seed`` and ``tuner_dir``.
    survey : str or pathlib.Path, optional
        Survey folder (:func:`stellar_nb.simulate.resolve_survey`).
    project_name : str
        Subfolder of ``config.tuner_dir`` holding the trials.
    overwrite : bool
        Start afresh instead of resuming an earlier search (or refusing one on other data).
    label_source, input_variant : str
        As for :func:`stellar_nb.train.prepare_data`.
    distributed : {None, "chief", "worker"}
        One process of a distributed search (:func:`distributed_environment`): the chief serves
        the oracle and returns once every trial is done; a worker trains the trials it is given.
        All of them must see the same ``config.tuner_dir`` and ``project_name``.
    oracle : str, optional
        ``HOST:PORT`` of the chief's oracle (with ``distributed``).
    tuner_id : str, optional
        The worker's name (with ``distributed="worker"``).

    Returns
    -------
    dict
        For a single process or the chief: ``hyperparameters`` (the best trial's values),
        ``architecture`` and ``training`` (the arguments they map to), ``val_loss``, ``trials``
        (each trial's values, score and ``tuner_id``) and ``path`` of ``best.json`` written
        beside the trials. For a worker: ``tuner_id`` and ``trials``, those it ran
        (:func:`report`).

    Raises
    ------
    ValueError
        If ``config.tuner_dir / project_name`` holds a search on other data or settings and
        ``overwrite`` is false (the message names the folder); for a bad ``distributed``,
        ``oracle`` or ``tuner_id``; for ``overwrite`` on a worker.
    """
    from stellar_nb import simulate, train
    from stellar_nb.config import get_config

    config = config or get_config()
    survey = simulate.resolve_survey(survey, config)
    fingerprint = data_fingerprint(
        survey,
        seed=config.seed,
        label_source=label_source,
        input_variant=input_variant,
        epochs=config.tune_epochs,
        batch_size=config.batch_size,
    )
    if distributed is None:
        role = contextlib.nullcontext()
    else:
        if distributed == "worker" and overwrite:
            raise ValueError("only the chief may overwrite a distributed search (--overwrite)")
        role = distributed_environment(distributed, oracle, tuner_id)
    # refuse a mismatched folder before the (long) preprocessing, not after it
    _check_fingerprint(Path(config.tuner_dir) / project_name, fingerprint, overwrite)
    if distributed == "chief":
        # the chief only serves the oracle: it builds the hypermodel to declare the search
        # space, which does not depend on the loss weights or the schedule's length
        data = None
        hypermodel = StellarHyperModel(dict.fromkeys(schema.LABELS, 1.0), 1, seed=config.seed)
    else:
        data = train.prepare_data(
            survey, seed=config.seed, label_source=label_source, input_variant=input_variant
        )
        steps = train.total_steps(
            len(data["train_spectra"]), epochs=config.tune_epochs, batch_size=config.batch_size
        )
        hypermodel = StellarHyperModel(
            model.loss_weights(data["train_labels"]),
            steps,
            data["train_spectra"].shape[1],
            config.seed,
        )
    with role:
        tuner = make_tuner(
            hypermodel,
            directory=config.tuner_dir,
            project_name=project_name,
            max_trials=config.trials,
            seed=config.seed,
            overwrite=overwrite,
            fingerprint=fingerprint,
        )
        tuner.search(data, epochs=config.tune_epochs, batch_size=config.batch_size)
    if distributed == "worker":
        ran = [row for row in report(tuner.project_dir) if row["tuner_id"] == tuner.tuner_id]
        return {"tuner_id": tuner.tuner_id, "trials": ran}
    return _summarise(tuner)


def _summarise(tuner):
    tuner_ids = {row["trial"]: row["tuner_id"] for row in report(tuner.project_dir)}
    trials = [
        {
            "trial": t.trial_id,
            "values": t.hyperparameters.values,
            "val_loss": t.score,
            "tuner_id": tuner_ids.get(t.trial_id),
        }
        for t in tuner.oracle.trials.values()
        if t.status == keras_tuner.engine.trial.TrialStatus.COMPLETED
    ]
    best = tuner.get_best_hyperparameters(1)[0]
    architecture, training = hyperparameters_to_arguments(best)
    result = {
        "hyperparameters": best.values,
        "architecture": {**architecture, "block_units": list(architecture["block_units"])},
        "training": training,
        "val_loss": min(t["val_loss"] for t in trials),
        "trials": sorted(trials, key=lambda t: t["val_loss"]),
    }
    path = Path(tuner.project_dir) / "best.json"
    text = json.dumps(result, indent=2, default=str)
    files.atomic_write(path, lambda temporary: Path(temporary).write_text(text))
    return {**result, "path": path}
