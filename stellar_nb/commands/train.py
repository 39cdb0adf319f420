"""``stellar-nb train``: train the residual multitask MLP (:func:`stellar_nb.train.train`).

It trains on :func:`stellar_nb.config.keras_backend` (``$KERAS_BACKEND``, else JAX where installed,
else TensorFlow).
"""

from stellar_nb.commands import common

__all__ = ["configure_parser", "run"]


def configure_parser(parser):
    """Options of ``stellar-nb train``."""
    from stellar_nb import model

    parser.add_argument(
        "--variant",
        default="paper",
        choices=sorted(model.VARIANTS),
        help="architecture: the paper's selected model or an ablation (default paper)",
    )
    common.add_survey_argument(parser)
    parser.add_argument(
        "--out", default=None, help="model directory (default DATA_HOME/models/VARIANT)"
    )
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default 30, quick 4)")
    common.add_training_data_arguments(parser)
    parser.add_argument(
        "--restart", action="store_true", help="discard an interrupted run's checkpoint"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args):
    """Run ``stellar-nb train``; prints where the model went and its validation MAE."""
    from stellar_nb import config as config_module

    config_module.use_keras_backend()  # before Keras is imported: JAX where installed
    from stellar_nb import files, simulate
    from stellar_nb.train import train

    overrides = {"epochs": args.epochs} if args.epochs else {}
    config = common.config_from_args(args, **overrides)
    survey = simulate.resolve_survey(args.survey, config)
    out = train(
        config,
        survey,
        args.out,
        variant=args.variant,
        restart=args.restart,
        progress=not args.no_progress,
        label_source=args.label_source,
        input_variant=args.input,
    )
    metrics = files.read_json(out / "metrics.json")
    mae = ", ".join(f"{label} {value:.4g}" for label, value in metrics["validation_mae"].items())
    print(f"model written to {out}; best epoch {metrics['best_epoch']}; validation MAE {mae}")
    return 0
