"""``stellar-nb simulate``: write a simulated survey, or refit and validate the emulator."""

import time
from pathlib import Path

from stellar_nb import emulator as emulator_module
from stellar_nb import schema
from stellar_nb.commands import common
from stellar_nb.simulate import LABEL_RANGES, crb_summary, simulate_survey, split_sizes

__all__ = ["configure_parser", "run"]


def configure_parser(parser):
    """Options of ``stellar-nb simulate``."""
    parser.add_argument(
        "--n",
        type=int,
        default=None,
        help="number of spectra (default: the mode's 50,000 or 3,000)",
    )
    parser.add_argument(
        "--out", default=None, help="output folder (default: the data home's default survey)"
    )
    parser.add_argument(
        "--fits",
        type=int,
        default=0,
        metavar="N",
        help="also write N test spectra as spec-PLATE-MJD-FIBER.fits",
    )
    for label, (lo, hi) in LABEL_RANGES.items():
        parser.add_argument(
            f"--{label}",
            nargs=2,
            type=float,
            metavar=("LO", "HI"),
            default=None,
            help=f"narrow the {label} range (default {lo:g} {hi:g}, within the emulator's bounds)",
        )
    parser.add_argument(
        "--no-report", action="store_true", help="skip the Cramer-Rao report per S/N bin"
    )
    parser.add_argument(
        "--residuals",
        action="store_true",
        help="put held-out library residuals on the emulated spectra (an experiment: it made "
        "real-star accuracy worse)",
    )
    parser.add_argument(
        "--refit-emulator",
        action="store_true",
        help="refit the emulator on MILES + STELIB and save it, with its error model "
        "(emulator_error.npz beside it)",
    )
    parser.add_argument(
        "--validate-emulator",
        action="store_true",
        help="print the held-out realism of a refit emulator",
    )
    parser.add_argument(
        "--emulator", default=None, help="emulator file to use or write (default: the shipped one)"
    )
    parser.add_argument(
        "--plot",
        default="emulator_realism.html",
        help="per-wavelength realism plot (--validate-emulator)",
    )


def run(args):
    """Run ``stellar-nb simulate``; returns the exit status."""
    if args.refit_emulator or args.validate_emulator:
        return _emulator_command(args)
    config = common.config_from_args(args)
    emulator = emulator_module.load_emulator(args.emulator)
    n = config.n_total if args.n is None else args.n
    sizes = (
        (config.n_train, config.n_validation, config.n_test)
        if n == config.n_total
        else split_sizes(n)
    )
    out = Path(args.out) if args.out else config.survey_dir
    if args.out is None:
        out.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    label_ranges = {
        label: tuple(getattr(args, label))
        for label in schema.LABELS
        if getattr(args, label, None) is not None
    }
    simulate_survey(
        n,
        args.seed,
        out,
        n_fits=args.fits,
        sizes=sizes,
        emulator=emulator,
        label_ranges=label_ranges or None,
        residual_bank="fit" if args.residuals else None,
    )
    elapsed = time.perf_counter() - started
    size = sum(path.stat().st_size for path in out.rglob("*") if path.is_file())
    print(
        f"wrote {n} spectra ({', '.join(f'{s} {k}' for k, s in zip(schema.SPLITS, sizes, strict=True))}) to {out}"
    )
    print(f"in {elapsed:.1f} s, {size / 1e6:.1f} MB on disk")
    if not args.no_report:
        summary = crb_summary(out, emulator=emulator)
        print("Cramer-Rao bound (median over stars) per S/N bin, test split:")
        print(summary.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    return 0


def _emulator_command(args):
    from stellar_nb import emulator_fit
    from stellar_nb.plots import survey as survey_plots
    from stellar_nb.simulate import residuals

    emulator, report = emulator_fit.fit_emulator()
    for degree, value in report["by_degree"].items():
        print(f"degree {degree}: held-out median RMS {100 * value:.2f} %")
    print(
        f"held-out realism (chosen degree {report['degree']}): median over {len(report['per_star'])} left-out MILES "
        f"stars of the RMS fractional difference, 3800-7400 A: {100 * report['median_rms']:.2f} % (goal <= 3 %)"
    )
    if args.validate_emulator:
        figure = survey_plots.plot_realism(report)
        figure.write_html(args.plot, include_plotlyjs=True)
        print(f"per-wavelength plot: {args.plot}")
    if args.refit_emulator:
        path = emulator.save(args.emulator or emulator_module.DEFAULT_PATH)
        print(f"emulator written to {path} ({path.stat().st_size / 1e6:.2f} MB)")
        error_path = (
            Path(args.emulator).with_name("emulator_error.npz")
            if args.emulator
            else residuals.ERROR_PATH
        )
        bank = residuals.fit_residual_bank(degree=emulator.metadata["degree"])
        written = residuals.EmulatorError.from_bank(bank).save(error_path)
        print(f"emulator error model (held-out library residual RMS) written to {written}")
    return 0
