"""``stellar-nb bench dashboard``: the dashboard's speed and memory in Chromium (:mod:`stellar_nb.bench.dashboard`)."""

import numpy as np

from stellar_nb.commands import common

__all__ = ["configure_parser", "run"]


def configure_parser(parser):
    """Options of ``stellar-nb bench dashboard``."""
    from stellar_nb.bench.dashboard import CHROMIUM

    parser.add_argument("--loads", type=int, default=3, help="page visits (default 3)")
    parser.add_argument(
        "--updates", type=int, default=5, help="test stars loaded, and files uploaded (default 5)"
    )
    parser.add_argument(
        "--visitors", type=int, default=10, help="visitors arriving together (default 10)"
    )
    parser.add_argument(
        "--visits", type=int, default=30, help="visits one after another, tab closed (default 30)"
    )
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

    for name in ("loads", "updates", "visitors", "visits"):
        if getattr(args, name) <= 0:
            raise ValueError(f"--{name} must be positive, got {getattr(args, name)}")
    config = common.config_from_args(args)
    survey = simulate.resolve_survey(args.survey, config)
    model_dir = common.resolve_model_dir(args.model)
    result = measure(
        config, survey, model_dir, loads=args.loads, updates=args.updates,
        visitors=args.visitors, visits=args.visits, chromium=args.chromium,
    )  # fmt: skip
    mb = ", ".join(f"{value:.0f}" for value in result["kernel_memory_mb"])
    after = ", ".join(f"{value:.0f}" for value in result["kernel_memory_after_mb"])
    lines = [
        f"dashboard on {survey} ({'quick' if config.quick else 'full'} mode), Chromium at {args.chromium}; preheated pool of {result['pool_size']}",
        f"page load to first prediction (warm pool):  {_summary(result['load_prediction'])}; goal < 2 s",
        f"page load to the plots drawn:               {_summary(result['load_plots'])}",
        f"{args.visitors} visitors together, each to its prediction: {_summary(result['visitors'])}; goal: each < 15 s",
        f"new test star to the plots redrawn:         {_summary(result['update'])}; goal: median < 0.3 s",
        f"  of which the kernel:                      {_summary(result['update_kernel'])}",
        f"upload to the plots redrawn:                {_summary(result['upload'])}; goal: median < 0.3 s",
        f"  of which the kernel:                      {_summary(result['upload_kernel'])}",
        f"kernel memory (after the updates): {mb} MB; goal < 250 MB",
        f"after {result['visits']} visits (tabs closed): server with its kernels {result['server_memory_mb']:.0f} MB; goal < 1.5 GB",
        f"  kernels left {result['kernels_after']} ({after} MB); kernel shutdowns {result['shutdowns']}, shutdown requests refused {result['shutdowns_refused']}",
    ]  # fmt: skip
    print("\n".join(lines))
    bundles = result["bundle_seconds"]
    print(
        f"plotly.js evaluation: full bundle {bundles['full']:.3f} s, basic bundle (shipped) "
        f"{bundles['basic']:.3f} s: {bundles['full'] / bundles['basic']:.1f}x faster"
    )
    return 0
