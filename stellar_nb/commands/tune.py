"""``stellar-nb tune``: Bayesian hyperparameter search with Keras Tuner (:func:`stellar_nb.tune.tune`).

``--distributed chief --oracle HOST:PORT`` serves the search's oracle and
``--distributed worker --oracle HOST:PORT --tuner-id NAME`` trains trials for it (Keras Tuner's
distributed mode; every process must see the same ``--data-home`` and ``--project``).
``--report`` lists the trials of a project folder and which worker ran each, without searching.
Trials train on :func:`stellar_nb.config.keras_backend` (``$KERAS_BACKEND``, else JAX where
installed, else TensorFlow).
"""

import collections
import json
from pathlib import Path

from stellar_nb.commands import common

__all__ = ["configure_parser", "run"]


def configure_parser(parser):
    """Options of ``stellar-nb tune``."""
    common.add_survey_argument(parser)
    common.add_training_data_arguments(parser)
    parser.add_argument(
        "--trials", type=int, default=None, help="number of trials (default: 100, quick 3)"
    )
    parser.add_argument(
        "--epochs", type=int, default=None, help="epochs per trial (default: 10, quick 2)"
    )
    parser.add_argument("--project", default="residual_mlp", help="tuner project name")
    parser.add_argument("--overwrite", action="store_true", help="start afresh instead of resuming")
    parser.add_argument(
        "--distributed",
        choices=("chief", "worker"),
        default=None,
        help="one process of a distributed search: the chief serves the oracle, workers train",
    )
    parser.add_argument(
        "--oracle", default=None, metavar="HOST:PORT", help="address of the chief's oracle"
    )
    parser.add_argument(
        "--tuner-id", default=None, metavar="NAME", help="this worker's name (unique per worker)"
    )
    parser.add_argument(
        "--report",
        action="store_true",
        help="list the project's trials and the worker that ran each; no search",
    )


def _print_trials(trials):
    for trial in trials:
        score = "" if trial["val_loss"] is None else f"{trial['val_loss']:.4f}"
        worker = trial["tuner_id"] or "-"
        print(f"trial {trial['trial']}  {trial['status']:<9} {worker:<12} {score}")
    counts = collections.Counter(trial["tuner_id"] or "-" for trial in trials)
    print("trials per worker: " + ", ".join(f"{name} {n}" for name, n in sorted(counts.items())))


def run(args):
    """Run ``stellar-nb tune``; prints the best trial's hyperparameters (or a worker's trials)."""
    from stellar_nb import config as config_module

    config_module.use_keras_backend()  # before Keras is imported: JAX where installed
    from stellar_nb import tune

    overrides = {
        key: value
        for key, value in (("trials", args.trials), ("tune_epochs", args.epochs))
        if value is not None
    }
    config = common.config_from_args(args, **overrides)
    if args.report:
        _print_trials(tune.report(Path(config.tuner_dir) / args.project))
        return 0
    if (args.oracle or args.tuner_id) and args.distributed is None:
        raise ValueError("--oracle and --tuner-id go with --distributed chief|worker")
    if args.distributed is not None and args.oracle is None:
        raise ValueError(f"--distributed {args.distributed} needs --oracle HOST:PORT")
    from stellar_nb import simulate

    survey = simulate.resolve_survey(args.survey, config)
    result = tune.tune(
        config,
        survey,
        project_name=args.project,
        overwrite=args.overwrite,
        label_source=args.label_source,
        input_variant=args.input,
        distributed=args.distributed,
        oracle=args.oracle,
        tuner_id=args.tuner_id,
    )
    if args.distributed == "worker":
        print(f"worker {result['tuner_id']} ran {len(result['trials'])} trial(s)")
        return 0
    if args.distributed == "chief":
        _print_trials(tune.report(result["path"].parent))
    print(f"{len(result['trials'])} trials; best validation loss {result['val_loss']:.4f}")
    print(json.dumps(result["hyperparameters"], indent=2))
    print(f"written: {result['path']}")
    return 0
