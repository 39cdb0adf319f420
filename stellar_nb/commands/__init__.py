"""The ``stellar-nb`` command line: a layer on top of the library, which never sees argparse.

Each subcommand lives in the module named in :data:`COMMANDS`, which provides
``configure_parser(parser)`` and ``run(args) -> int`` (a command with sub-subcommands, such as
``fetch`` and ``bench``, sets ``HAS_SUBCOMMANDS = True`` and gives each leaf the common flags). A module is imported only when its
subcommand runs, so ``stellar-nb --help`` stays fast and never imports TensorFlow. The flags every
subcommand shares come from one parent parser (:func:`stellar_nb.commands.common.common_parser`).
Each ``run`` resolves its settings first (the configuration, the survey folder with
:func:`stellar_nb.simulate.resolve_survey`, the model directory with
:func:`stellar_nb.config.model_dir`) and then calls library functions with explicit arguments.
"""

import argparse
import importlib
import logging
import os
import sys

from stellar_nb.commands import common

__all__ = ["COMMANDS", "build_parser", "main"]

#: subcommand -> one-line help; its code is the module ``stellar_nb.commands.<subcommand>``
COMMANDS = {
    "simulate": "generate the simulated SDSS DR12 survey (offline default data)",
    "fetch": "download SDSS DR12 spectra with SSPP labels, or the paper's benchmark",
    "preprocess": "resample, shift to rest frame and standardise a survey split",
    "train": "train the residual multitask MLP",
    "tune": "Bayesian hyperparameter search with Keras Tuner",
    "evaluate": "test-set metrics next to the Cramer-Rao floor",
    "reproduce": "the paper end to end: search, retrain, evaluate, baselines, report",
    "predict": "predict Teff, [Fe/H], log g for FITS files or a Parquet split",
    "bench": "side-by-side speed and memory benchmarks",
    "dashboard": "serve the Voila dashboard on http://localhost:8866",
}


def _module(name):
    return importlib.import_module(f"stellar_nb.commands.{name}")


def build_parser(command=None):
    """Return the argument parser; only ``command``'s module is imported to configure it.

    Parameters
    ----------
    command : str, optional
        The subcommand whose options are added (the others are listed with their help only).

    Returns
    -------
    argparse.ArgumentParser
    """
    parser = argparse.ArgumentParser(
        prog="stellar-nb",
        description="Stellar parameters from SDSS spectra: simulate, fetch, preprocess, train, "
        "tune, evaluate, predict, benchmark and serve the dashboard.",
    )
    parser.add_argument("--version", action="version", version=_version())
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, help_text in COMMANDS.items():
        if name != command:
            subparsers.add_parser(name, help=help_text, description=help_text)
            continue
        module = _module(name)
        # the common flags go on the leaves: a command with sub-subcommands adds them there
        nested = getattr(module, "HAS_SUBCOMMANDS", False)
        sub = subparsers.add_parser(
            name,
            help=help_text,
            description=help_text,
            parents=[] if nested else [common.common_parser()],
        )
        module.configure_parser(sub)
    return parser


def _version():
    from stellar_nb import __version__

    return f"stellar-nb {__version__}"


def _quiet_tensorflow():
    """Keep TensorFlow's start-up lines (oneDNN, cpu_feature_guard, absl) out of a command's output.

    TensorFlow's C++ logging reads ``TF_CPP_MIN_LOG_LEVEL`` once, when it is imported, so this
    runs after parsing (no parser imports TensorFlow) and before the command's module does. Level 2
    keeps errors; a level the user set is kept. ``--verbose`` skips this.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


def main(argv=None):
    """Entry point of ``stellar-nb``.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        The exit status: 0 on success, 1 when the command reports an error (printed as
        ``stellar-nb COMMAND: error: ...``), 2 for a usage error.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    try:
        parser = build_parser(command if command in COMMANDS else None)
        args = parser.parse_args(argv)
        if not args.verbose:
            _quiet_tensorflow()
        return int(_module(args.command).run(args) or 0)
    except (ValueError, FileNotFoundError, FileExistsError, PermissionError) as error:
        print(f"stellar-nb {command}: error: {error}", file=sys.stderr)
        return 1
