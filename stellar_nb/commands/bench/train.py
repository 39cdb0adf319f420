"""``stellar-nb bench train``: epoch time of the paper model next to its GEMM-bound limit (:mod:`stellar_nb.bench.train`).

The backend the training commands use by default (:func:`stellar_nb.config.keras_backend`) is
marked ``(default)``.
"""

from stellar_nb import schema

__all__ = ["configure_parser", "run"]


def configure_parser(parser):
    """Options of ``stellar-nb bench train``."""
    parser.add_argument(
        "--rows",
        type=int,
        default=90_000,
        help="training rows (default 90,000: the augmented train split)",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=3,
        help="epochs per backend, the first one reported apart (default 3)",
    )
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument(
        "--backends",
        nargs="+",
        default=["tensorflow", "jax"],
        choices=["tensorflow", "jax", "torch"],
    )


def run(args):
    """Run the benchmark and print one line per backend."""
    from stellar_nb import config
    from stellar_nb.bench.train import backend_epoch_times, forward_flops, gemm_throughput

    if args.epochs < 2 or args.rows < args.batch_size:
        raise ValueError("--epochs must be at least 2 and --rows at least --batch-size")
    flops = forward_flops()
    throughput = gemm_throughput()
    bound = 3.0 * flops * args.rows / throughput
    print(
        f"paper model: {flops / 1e6:.3f} MFLOP per spectrum forward; numpy float32 GEMM {throughput / 1e9:.0f} GFLOP/s"
    )
    print(f"GEMM-bound epoch on {args.rows:,} x {schema.GRID_SIZE} inputs: {bound:.2f} s")
    default = config.keras_backend()
    succeeded = 0
    for backend in args.backends:
        result = backend_epoch_times(backend, args.rows, args.epochs, args.batch_size)
        mark = " (default)" if backend == default else ""
        if "error" in result:
            print(f"{backend:>10}: failed: {result['error']}{mark}")
            continue
        succeeded += 1
        print(
            f"{backend:>10}: {result['later']:.2f} s/epoch (first epoch +{result['first_extra']:.1f} s), {100 * bound / result['later']:.0f}% of the GEMM bound{mark}"
        )
    print(f"train, tune and reproduce use {default} (KERAS_BACKEND overrides)")
    return 0 if succeeded else 1
