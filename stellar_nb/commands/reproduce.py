"""``stellar-nb reproduce``: the paper end to end, resumable (:func:`stellar_nb.reproduce.reproduce`).

Survey, search, retraining of the best trial, evaluation, baselines and ablations, then a report
(``RUN/report.html`` and ``RUN/report.json``) with the paper's Tables 1-5 beside ours. Run again
after a kill, it continues where it stopped. It trains on :func:`stellar_nb.config.keras_backend`
(``$KERAS_BACKEND``, else JAX where installed, else TensorFlow). ``--quick`` takes minutes; the
full run about two hours (see the README).
"""

import shlex

from stellar_nb.commands import common

__all__ = ["configure_parser", "run"]


def configure_parser(parser):
    """Options of ``stellar-nb reproduce``."""
    common.add_survey_argument(
        parser, help="survey folder (default: the simulated survey; or SDSS/benchmark data)"
    )
    parser.add_argument(
        "--out",
        default=None,
        metavar="RUN_DIR",
        help="run folder (default DATA_HOME/reproduction/MODE-seedSEED)",
    )
    parser.add_argument(
        "--trials", type=int, default=None, help="search trials (default: 100, quick 3)"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="discard the run folder's results and start afresh"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar or estimate")


def _command(args, config):
    words = ["stellar-nb", "reproduce", *(["--quick"] if config.quick else [])]
    words += ["--seed", str(config.seed)]
    for option, value in (
        ("--survey", args.survey),
        ("--out", args.out),
        ("--trials", args.trials),
    ):
        if value is not None:
            words += [option, str(value)]
    return shlex.join(words)


def run(args):
    """Run ``stellar-nb reproduce``; prints the time per stage, the tables and the report's path."""
    from stellar_nb import config as config_module

    config_module.use_keras_backend()  # before Keras is imported: JAX where installed
    import pandas as pd

    from stellar_nb import reproduce

    overrides = {"trials": args.trials} if args.trials else {}
    config = common.config_from_args(args, **overrides)
    run_dir = reproduce.reproduce(
        config,
        args.survey,
        args.out,
        overwrite=args.overwrite,
        progress=not args.no_progress,
        command=_command(args, config),
    )
    tables = reproduce.load_results(run_dir)
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        for name, title in reproduce.TABLES.items():
            if name != "trials":
                print(f"\n{title}\n{tables[name].to_string(float_format=reproduce.format_number)}")
    print(f"\nreport: {run_dir / 'report.html'} (tables in {run_dir / 'report.json'})")
    return 0
