"""``stellar-nb tune``: Bayesian hyperparameter search with Keras Tuner (:func:`stellar_nb.tune.tune`)."""

import json

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


def run(args):
    """Run ``stellar-nb tune``; prints the best trial's hyperparameters."""
    from stellar_nb import simulate
    from stellar_nb.tune import tune

    overrides = {
        key: value
        for key, value in (("trials", args.trials), ("tune_epochs", args.epochs))
        if value is not None
    }
    config = common.config_from_args(args, **overrides)
    survey = simulate.resolve_survey(args.survey, config)
    result = tune(
        config,
        survey,
        project_name=args.project,
        overwrite=args.overwrite,
        label_source=args.label_source,
        input_variant=args.input,
    )
    print(f"{len(result['trials'])} trials; best validation loss {result['val_loss']:.4f}")
    print(json.dumps(result["hyperparameters"], indent=2))
    print(f"written: {result['path']}")
    return 0
