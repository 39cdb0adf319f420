"""``stellar-nb bench NAME``: side-by-side speed, memory and accuracy benchmarks.

Each benchmark's command is a module ``stellar_nb.commands.bench.NAME`` with
``configure_parser(parser)`` and ``run(args) -> int``; its measurements live in
``stellar_nb.bench.NAME``, which runs the compared implementations in one process, on the same
inputs. A benchmark's modules are imported only when it runs. Every benchmark takes the common
flags (``--quick``, ``--seed``, ``--data-home``).
"""

import importlib

from stellar_nb.commands import common

__all__ = ["BENCHMARKS", "HAS_SUBCOMMANDS", "configure_parser", "run"]

#: The common flags go on each benchmark, not on ``bench`` itself.
HAS_SUBCOMMANDS = True

#: name -> one-line help
BENCHMARKS = {
    "simulate": "simulated-survey generation: time, memory and disk for N spectra",
    "preprocess": "naive per-spectrum spline loop vs the package's batched preprocessing",
    "train": "epoch time of the paper model vs the GEMM-bound limit, TensorFlow and JAX",
    "inference": "numpy inference vs Keras predict on the test split",
    "dashboard": "dashboard page load, update time and kernel memory in Chromium; plotly.js bundles",
    "real-stars": "accuracy, bias, uncertainty coverage and trust flags on real LAMOST stars vs simulated",
    "library-cv": "real STELIB stars scored by models whose emulator was fitted without them",
    "scale": "predict serial vs 1 and 2 Dask workers, peak memory per worker; a 200,000-spectrum stream",
}


def _module(name):
    return importlib.import_module(f"stellar_nb.commands.bench.{name.replace('-', '_')}")


def configure_parser(parser):
    """Add one sub-subcommand per benchmark, each with the common flags."""
    subparsers = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    for name, help_text in BENCHMARKS.items():
        sub = subparsers.add_parser(
            name, help=help_text, description=help_text, parents=[common.common_parser()]
        )
        _module(name).configure_parser(sub)


def run(args):
    """Run the chosen benchmark; returns its exit status."""
    return _module(args.benchmark).run(args)
