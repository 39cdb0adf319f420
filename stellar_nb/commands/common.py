"""What every subcommand shares: one parent parser for the common flags, and the flag helpers.

:func:`common_parser` is given to every (sub)subcommand as ``parents=[...]``, so ``--quick``,
``--seed``, ``--data-home`` and ``--verbose`` mean the same everywhere; :func:`config_from_args`
turns the first three into the :class:`~stellar_nb.config.Config` an entry point resolves first. :func:`add_survey_argument`
and :func:`add_model_argument` give the commands that take a survey folder or a model directory
one spelling for them (``--survey``, ``--model``).
"""

import argparse
import functools

__all__ = [
    "PRETRAINED",
    "add_model_argument",
    "add_survey_argument",
    "add_training_data_arguments",
    "common_parser",
    "config_from_args",
    "resolve_model_dir",
]

#: The word that names the shipped pretrained model where a command takes a model directory.
PRETRAINED = "pretrained"


@functools.cache
def common_parser():
    """Return the parent parser with ``--quick``, ``--seed``, ``--data-home`` and ``--verbose``.

    Returns
    -------
    argparse.ArgumentParser
        A parser without ``--help``, to be passed as ``parents=[common_parser()]``.
    """
    parser = argparse.ArgumentParser(add_help=False)
    group = parser.add_argument_group("common options")
    group.add_argument(
        "--quick", action="store_true", default=None, help="quick mode (also STELLAR_NB_QUICK=1)"
    )
    group.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    group.add_argument(
        "--data-home",
        default=None,
        help="data home (default $STELLAR_NB_DATA or ~/.cache/stellar_nb)",
    )
    group.add_argument(
        "--verbose",
        action="store_true",
        help="keep TensorFlow's start-up log lines (hidden by default)",
    )
    return parser


def add_survey_argument(parser, help="survey folder (default: the simulated survey)"):
    """Add ``--survey`` (a survey folder; unset means $STELLAR_NB_SURVEY_DIR or the simulated one).

    Parameters
    ----------
    parser : argparse.ArgumentParser
    help : str
        The option's help text.
    """
    parser.add_argument("--survey", default=None, help=help)


def add_model_argument(
    parser,
    help="model directory (default: $STELLAR_NB_MODEL_DIR, else the shipped pretrained model)",
    *,
    positional=False,
):
    """Add ``--model``, or an optional positional ``MODEL`` where the model is the command's subject.

    Unset means $STELLAR_NB_MODEL_DIR or the pretrained one (see :func:`resolve_model_dir`).

    Parameters
    ----------
    parser : argparse.ArgumentParser
    help : str
        The option's help text.
    positional : bool
        Add ``model`` as an optional positional argument instead of ``--model``.
    """
    if positional:
        parser.add_argument("model", nargs="?", default=None, help=help)
    else:
        parser.add_argument("--model", default=None, help=help)


def add_training_data_arguments(parser):
    """Add ``--label-source`` and ``--input``: what a network is trained on (train and tune).

    Parameters
    ----------
    parser : argparse.ArgumentParser
    """
    parser.add_argument(
        "--label-source",
        default="catalog",
        choices=("catalog", "true"),
        help="labels to train on (default: the SSPP-like catalogue)",
    )
    parser.add_argument(
        "--input",
        default="paper",
        choices=("paper", "continuum"),
        help="network input: the paper's standardised spectrum, or continuum-normalised first",
    )


def config_from_args(args, **overrides):
    """Build the :class:`~stellar_nb.config.Config` from the common flags.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed arguments with ``quick``, ``seed`` and ``data_home``.
    **overrides
        Further :class:`~stellar_nb.config.Config` fields, e.g. ``epochs=3``.

    Returns
    -------
    stellar_nb.config.Config
    """
    from stellar_nb.config import get_config

    return get_config(quick=args.quick, seed=args.seed, data_home=args.data_home, **overrides)


def resolve_model_dir(value=None):
    """Resolve a model argument: ``"pretrained"`` or None-with-no-environment mean the shipped model.

    Parameters
    ----------
    value : str or pathlib.Path, optional
        A model directory, :data:`PRETRAINED`, or None (then ``$STELLAR_NB_MODEL_DIR`` if set).

    Returns
    -------
    pathlib.Path or None
        The model directory, or None for the shipped pretrained model (what the library functions
        take as their default).
    """
    from stellar_nb import config

    return None if str(value) == PRETRAINED else config.model_dir(value)
