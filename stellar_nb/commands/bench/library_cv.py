"""``stellar-nb bench library-cv``: real library stars scored by models whose emulator never saw them (:mod:`stellar_nb.bench.library_cv`)."""

from pathlib import Path

from stellar_nb.commands import common

__all__ = ["configure_parser", "run"]


def configure_parser(parser):
    """Options of ``stellar-nb bench library-cv``."""
    parser.add_argument("--folds", type=int, default=5, help="folds over the library stars")
    parser.add_argument("--n", type=int, default=None, help="spectra per fold's survey (20,000)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per fold's model (15)")
    parser.add_argument(
        "--input", default="paper", choices=("paper", "continuum"), help="network input"
    )
    parser.add_argument("--out", help="write the per-star table as CSV")


def run(args):
    """Cross-validate over the library stars and print the summary."""
    from stellar_nb.bench import real_stars
    from stellar_nb.bench.library_cv import cross_validate
    from stellar_nb.files import atomic_write

    config = common.config_from_args(args)
    n = args.n or (3000 if config.quick else 20_000)
    epochs = args.epochs or (3 if config.quick else 15)
    if args.folds < 2:
        raise ValueError(f"--folds must be at least 2, got {args.folds}")
    table = cross_validate(
        config, folds=args.folds, n=n, epochs=epochs, input_variant=args.input, seed=args.seed
    )
    summary = real_stars.summarise(table, "STELIB cv")
    print(real_stars.format_summary(summary))
    print(
        f"({len(table)} STELIB stars in {args.folds} folds; per fold {n} simulated spectra, "
        f"{epochs} epochs, input {args.input}; sigma = noise spread only)"
    )
    if args.out:
        atomic_write(Path(args.out), lambda path: table.to_csv(path, index=False))
    return 0
