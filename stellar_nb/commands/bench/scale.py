"""``stellar-nb bench scale``: ``predict`` serial vs 1 and 2 Dask workers; a streaming run (:mod:`stellar_nb.bench.scale`)."""

import tempfile

from stellar_nb.commands import common

__all__ = ["configure_parser", "run"]


def configure_parser(parser):
    """Options of ``stellar-nb bench scale``."""
    common.add_model_argument(parser)
    common.add_survey_argument(parser)
    parser.add_argument(
        "--files", type=int, default=None, help="spectrum files to predict (default 600, quick 200)"
    )
    parser.add_argument(
        "--rows",
        type=int,
        default=None,
        help="spectra of the streaming run (default 200,000, quick 20,000; 0 skips it)",
    )
    parser.add_argument(
        "--folder", default=None, help="scratch folder for the inputs (default: a temporary one)"
    )


def run(args):
    """Run both measurements and print their tables."""
    from stellar_nb import simulate
    from stellar_nb.bench import scale

    config = common.config_from_args(args)
    n_files = args.files if args.files is not None else (200 if config.quick else 600)
    rows = args.rows if args.rows is not None else (20_000 if config.quick else 200_000)
    if n_files < 1 or rows < 0:
        raise ValueError("--files must be positive and --rows non-negative")
    survey = simulate.resolve_survey(args.survey, config)
    model_dir = common.resolve_model_dir(args.model)
    with tempfile.TemporaryDirectory(dir=args.folder, prefix="bench-scale-") as folder:
        results = scale.throughput(model_dir, survey, folder, n_files)
        print(f"predict over {results[0]['spectra']} spec-lite files")
        print(
            f"{'run':<10} {'seconds':>8} {'spectra/s':>10} {'speedup':>8}  identical  worker peak MiB"
        )
        for row in results:
            name = "serial" if row["workers"] == 0 else f"{row['workers']} worker(s)"
            peaks = ", ".join(f"{peak:.0f}" for peak in row["worker_peak_mib"]) or "-"
            print(
                f"{name:<10} {row['seconds']:>8.2f} {row['rate']:>10.1f} {row['speedup']:>7.2f}x"
                f"  {row['identical']!s:<9}  {peaks}"
            )
        if rows:
            stream = scale.streaming(model_dir, survey, folder, rows)
            peaks = ", ".join(f"{peak:.0f}" for peak in stream["worker_peak_mib"])
            print(
                f"streaming: {stream['rows']:,} spectra ({stream['input_gib']:.1f} GiB Parquet) on 2 "
                f"workers in {stream['seconds']:.1f} s ({stream['rate']:,.0f}/s); worker peak "
                f"{peaks} MiB; this process {stream['client_start_mib']:.0f} -> "
                f"{stream['client_peak_mib']:.0f} MiB (result table {stream['table_mib']:.0f} MiB)"
            )
    return 0
