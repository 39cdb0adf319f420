"""``stellar-nb bench dashboard``: the dashboard's speed and memory in Chromium (:mod:`stellar_nb.bench.dashboard`)."""

import numpy as np

from stellar_nb.commands import common

__all__ = ["configure_parser", "run"]


def configure_parser(parser):
    """Options of ``stellar-nb bench dashboard``."""
    from stellar_nb.bench.dashboard import CHROMIUM

    parser.add_argument("--loads", type=int, default=3, help="page visits (default 3)")
    parser.add_argument("--updates", type=int, default=5, help="test stars loaded (default 5)")
    common.add_model_argument(parser, help="model (default: the pretrained one)")
    common.add_survey_argument(parser, help="survey (default: the simulated one)")
    parser.add_argument("--chromium", default=str(CHROMIUM), help=f"browser (default {CHROMIUM})")


def _summary(values, unit="s"):
    values = np.asarray(values, dtype=float)
    digits = 3 if unit == "s" else 0
    return f"median {np.median(values):.{digits}f} {unit} (range {values.min():.{digits}f}-{values.max():.{digits}f}, n={values.size})"


def run(args):
    """Prepare the data, run :func:`measure` and print each figure beside its goal."""
    from stellar_nb import simulate
    from stellar_nb.bench.dashboard import measure

    if args.loads <= 0 or args.updates <= 0:
        raise ValueError("--loads and --updates must be positive")
    config = common.config_from_args(args)
    survey = simulate.resolve_survey(args.survey, config)
    model_dir = common.resolve_model_dir(args.model)
    result = measure(
        config, survey, model_dir, loads=args.loads, updates=args.updates, chromium=args.chromium,
    )  # fmt: skip
    print(f"dashboard on {survey} ({'quick' if config.quick else 'full'} mode), Chromium at {args.chromium}")  # fmt: skip
    print(f"page load to first prediction (preheated kernel): {_summary(result['load_prediction'])}; goal < 3 s")  # fmt: skip
    print(f"page load to both plots drawn:                    {_summary(result['load_plots'])}")
    print(f"new spectrum to both plots redrawn:               {_summary(result['update'])}; goal < 0.3 s")  # fmt: skip
    print(f"  of which the kernel (analysis, figure updates): {_summary(result['update_kernel'])}")
    print(f"kernel memory: {', '.join(f'{value:.0f} MB' for value in result['kernel_memory_mb'])}; goal < 300 MB")  # fmt: skip
    bundles = result["bundle_seconds"]
    print(
        f"plotly.js evaluation: full bundle {bundles['full']:.3f} s, basic bundle (shipped) "
        f"{bundles['basic']:.3f} s: {bundles['full'] / bundles['basic']:.1f}x faster"
    )
    return 0
