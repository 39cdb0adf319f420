"""``stellar-nb evaluate``: test-set metrics next to the Cramer-Rao floor (:mod:`stellar_nb.evaluate`)."""

import json
from pathlib import Path

from stellar_nb.commands import common

__all__ = ["configure_parser", "run"]


def configure_parser(parser):
    """Options of ``stellar-nb evaluate``."""
    common.add_model_argument(parser, positional=True)
    common.add_survey_argument(parser)
    parser.add_argument("--out", default=None, help="write the figures as JSON here")
    parser.add_argument(
        "--crb-stars", type=int, default=1000, help="test stars for the Cramer-Rao floor"
    )
    parser.add_argument(
        "--calibration-stars", type=int, default=1000, help="test stars for the sigma calibration"
    )
    parser.add_argument("--no-ridge", action="store_true", help="skip the ridge baseline")


def run(args):
    """Run ``stellar-nb evaluate`` and print the table."""
    import pandas as pd

    from stellar_nb import config, files, simulate
    from stellar_nb.evaluate import evaluate, summary_table

    settings = common.config_from_args(args)
    survey = simulate.resolve_survey(args.survey, settings)
    result = evaluate(
        config.model_dir(args.model),
        survey,
        config=settings,
        crb_stars=args.crb_stars,
        calibration_stars=args.calibration_stars,
        ridge=not args.no_ridge,
        seed=args.seed,
    )
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(summary_table(result).to_string(float_format=lambda value: f"{value:.4g}"))
    if args.out:
        files.write_json(Path(args.out), result)
        print(f"figures written to {args.out}")
    else:
        print(json.dumps({"n_test": result["n_test"], "reference": result["reference"]}))
    return 0
