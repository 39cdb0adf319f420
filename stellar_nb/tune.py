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
"""

import json
from pathlib import Path

import keras_tuner

from stellar_nb import files, model, schema

__all__ = [
    "HEAD_TEMPLATES",
    "StellarHyperModel",
    "hyperparameters_to_arguments",
    "make_tuner",
    "tune",
]

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
            model, data, epochs=epochs, batch_size=batch_size, seed=self.seed, callbacks=callbacks
        )
        return state["best_val_loss"]


def make_tuner(
    hypermodel, *, directory, project_name="residual_mlp", max_trials=100, seed=0, overwrite=False
):
    """Keras Tuner's Bayesian optimisation on the validation loss.

    With ``overwrite=False`` a search already in ``directory/project_name`` resumes.
    """
    return keras_tuner.BayesianOptimization(
        hypermodel,
        objective="val_loss",
        max_trials=int(max_trials),
        seed=int(seed),
        directory=str(directory),
        project_name=project_name,
        overwrite=overwrite,
    )


def tune(config=None, survey=None, *, project_name="residual_mlp", overwrite=False):
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
        Start afresh instead of resuming an earlier search.

    Returns
    -------
    dict
        ``hyperparameters`` (the best trial's values), ``architecture`` and ``training`` (the
        arguments they map to), ``val_loss``, ``trials`` (each trial's values and score) and
        ``path`` of ``best.json`` written beside the trials.
    """
    from stellar_nb import simulate, train
    from stellar_nb.config import get_config

    config = config or get_config()
    survey = simulate.resolve_survey(survey, config)
    data = train.prepare_data(survey, seed=config.seed)
    steps = train.total_steps(
        len(data["train_spectra"]), epochs=config.tune_epochs, batch_size=config.batch_size
    )
    hypermodel = StellarHyperModel(
        model.loss_weights(data["train_labels"]),
        steps,
        data["train_spectra"].shape[1],
        config.seed,
    )
    tuner = make_tuner(
        hypermodel,
        directory=config.tuner_dir,
        project_name=project_name,
        max_trials=config.trials,
        seed=config.seed,
        overwrite=overwrite,
    )
    tuner.search(data, epochs=config.tune_epochs, batch_size=config.batch_size)
    return _summarise(tuner)


def _summarise(tuner):
    trials = [
        {"trial": t.trial_id, "values": t.hyperparameters.values, "val_loss": t.score}
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
