"""``stellar-nb bench inference``: numpy inference vs Keras ``predict`` (:mod:`stellar_nb.bench.inference`)."""

from stellar_nb import schema
from stellar_nb.commands import common

__all__ = ["configure_parser", "run"]


def configure_parser(parser):
    """Options of ``stellar-nb bench inference``."""
    common.add_model_argument(parser)
    parser.add_argument(
        "--rows",
        type=int,
        default=15_000,
        help=f"spectra of {schema.GRID_SIZE} pixels (default 15,000)",
    )
    parser.add_argument("--repeats", type=int, default=10, help="timed runs, averaged (default 10)")
    parser.add_argument("--batch-size", type=int, default=8192)


def run(args):
    """Run the benchmark and print both rates and their ratio."""
    if args.rows <= 0 or args.repeats <= 0:
        raise ValueError("--rows and --repeats must be positive")
    from stellar_nb.bench.inference import compare

    model_dir = common.resolve_model_dir(args.model)
    result = compare(model_dir, args.rows, args.repeats, args.batch_size, seed=args.seed)
    rows = result["rows"]
    print(
        f"numpy : {result['numpy_seconds']:.3f} s for {rows:,} spectra ({rows / result['numpy_seconds']:,.0f}/s)"
    )
    print(
        f"keras ({result['backend']}): {result['keras_seconds']:.3f} s ({rows / result['keras_seconds']:,.0f}/s)"
    )
    print(
        f"numpy / keras speed: {result['keras_seconds'] / result['numpy_seconds']:.2f}x; "
        f"largest difference {result['max_difference']:.2e} (scaled units)"
    )
    return 0
