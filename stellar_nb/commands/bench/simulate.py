"""``stellar-nb bench simulate``: time, memory and disk of the survey generation (:mod:`stellar_nb.bench.simulate`)."""

__all__ = ["configure_parser", "run"]


def configure_parser(parser):
    """Options of ``stellar-nb bench simulate``."""
    parser.add_argument("--n", type=int, default=50_000, help="number of spectra (default 50,000)")
    parser.add_argument("--out", default=None, help="keep the survey in this folder")


def run(args):
    """Print the figures of :func:`measure` next to the goals."""
    from stellar_nb.bench.simulate import measure

    figures = measure(args.n, args.seed, args.out)
    n = figures["n"]
    print(f"simulated survey of {n} spectra")
    print(
        f"  generation   {figures['seconds']:8.1f} s  ({n / figures['seconds']:,.0f} spectra/s; "
        f"{figures['wall_seconds']:.1f} s with imports; goal < 60 s for 50,000)"
    )
    print(
        f"  emulator     {figures['emulator_seconds']:8.1f} s  "
        f"({100 * figures['emulator_seconds'] / figures['seconds']:.0f} % of the generation)"
    )
    print(f"  peak memory  {figures['peak_rss_mb']:8.0f} MB (child process; goal < 4 GB)")
    print(
        f"  disk         {figures['disk_mb']:8.0f} MB ({figures['bytes_per_pixel']:.2f} bytes per "
        "pixel for flux + loglam + ivar + mask; goal < 2 GB)"
    )
    return 0
