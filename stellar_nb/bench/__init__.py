"""``stellar-nb bench NAME``: side-by-side speed and memory benchmarks.

Each benchmark is a module ``stellar_nb.bench.NAME`` with ``configure_parser(parser)`` and
``run(args) -> int``; it runs the compared implementations in one process, on the same inputs, and
prints both figures and their ratio. Benchmark modules import heavy libraries only inside ``run``.
"""

import importlib

__all__ = ["BENCHMARKS", "configure_parser", "run"]

#: name -> one-line help
BENCHMARKS = {
    "simulate": "simulated-survey generation: time, memory and disk for N spectra",
    "preprocess": "naive per-spectrum spline loop vs the package's batched preprocessing",
    "train": "epoch time of the paper model vs the GEMM-bound limit, TensorFlow and JAX",
    "inference": "numpy inference vs Keras predict on the test split",
    "dashboard": "dashboard page load, update time and kernel memory in Chromium; plotly.js bundles",
    "real-stars": "accuracy, bias, uncertainty coverage and trust flags on real LAMOST stars vs simulated",
    "library-cv": "real STELIB stars scored by models whose emulator was fitted without them",
}


def _module(name):
    try:
        return importlib.import_module(f"stellar_nb.bench.{name.replace('-', '_')}")
    except ModuleNotFoundError as error:
        if error.name == f"stellar_nb.bench.{name.replace('-', '_')}":
            return None
        raise


def configure_parser(parser):
    subparsers = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    for name, help_text in BENCHMARKS.items():
        module = _module(name)
        sub = subparsers.add_parser(
            name, help=help_text if module else f"{help_text} (not built yet)"
        )
        if module is not None:
            module.configure_parser(sub)


def run(args):
    module = _module(args.benchmark)
    if module is None:
        from stellar_nb.cli import NotBuiltError

        raise NotBuiltError(f"'stellar-nb bench {args.benchmark}' is not built yet")
    return module.run(args)
