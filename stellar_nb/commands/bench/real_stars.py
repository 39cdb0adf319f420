"""``stellar-nb bench real-stars``: one model on real LAMOST stars beside the simulated test split (:mod:`stellar_nb.bench.real_stars`)."""

import json
import time
from pathlib import Path

from stellar_nb.commands import common

__all__ = ["configure_parser", "run"]


def configure_parser(parser):
    """Options of ``stellar-nb bench real-stars``."""
    common.add_model_argument(parser, positional=True)
    parser.add_argument(
        "--lamost", help="folder of LAMOST spec-*.fits.gz files with labels.csv (real stars)"
    )
    common.add_survey_argument(
        parser, help="survey whose test split is scored (default: the simulated one)"
    )
    parser.add_argument("--no-simulated", action="store_true", help="skip the simulated test split")
    parser.add_argument(
        "--calibrate",
        action="store_true",
        help="fit the model's real-star sigma term on the LAMOST calibration half (even CRC-32 "
        "of OBSID; written into the model directory), then score; the other half stays held out",
    )
    parser.add_argument("--out", help="write the summary and per-star tables as JSON")


def run(args):
    """Score the model (after calibrating it, with ``--calibrate``) and print the summary."""
    from stellar_nb import inference, model_directory, simulate
    from stellar_nb.bench.real_stars import calibrate, evaluate, format_summary
    from stellar_nb.files import atomic_write

    config = common.config_from_args(args)
    model_dir = common.resolve_model_dir(args.model) or model_directory.pretrained_dir()
    survey = None if args.no_simulated else simulate.resolve_survey(args.survey, config)
    model = inference.NumpyModel.load(model_dir)
    start = time.perf_counter()
    if args.calibrate:
        if args.lamost is None:
            raise ValueError("--calibrate needs --lamost DIR (the real stars to calibrate on)")
        _, stars = evaluate(model, lamost=args.lamost, quick=False, simulated=False, seed=args.seed)
        systematic = calibrate(model_dir, stars["LAMOST cal"])
        print(
            "sigma_systematic written to "
            f"{model_dir / 'metrics.json'}: "
            + ", ".join(f"{label} {value:.4g}" for label, value in systematic.items())
        )
        model = inference.NumpyModel.load(model_dir)
    summary, stars = evaluate(
        model,
        lamost=args.lamost,
        quick=config.quick,
        simulated=not args.no_simulated,
        seed=args.seed,
        survey=survey,
        config=config,
    )
    model_name = args.model or common.PRETRAINED
    print(format_summary(summary))
    print(f"({time.perf_counter() - start:.1f} s; model {model_name}; quick={config.quick})")
    if args.out:
        payload = {
            "model": str(model_name),
            "quick": config.quick,
            "summary": summary.to_dict("records"),
            "stars": {name: table.to_dict("list") for name, table in stars.items()},
        }
        atomic_write(
            Path(args.out),
            lambda path: Path(path).write_text(json.dumps(payload, default=float)),
        )
    return 0
