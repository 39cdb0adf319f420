import ast
import pathlib
import subprocess
import sys

import pytest

import stellar_nb
from stellar_nb import commands
from stellar_nb.commands import bench, fetch

PACKAGE = pathlib.Path(stellar_nb.__file__).parent


def test_help_lists_every_subcommand(capsys):
    try:
        commands.main(["--help"])
    except SystemExit as stop:
        assert stop.code == 0
    out = capsys.readouterr().out
    for name in (
        "simulate",
        "fetch",
        "preprocess",
        "train",
        "tune",
        "evaluate",
        "predict",
        "bench",
        "dashboard",
    ):
        assert name in out


def test_import_is_light():
    code = "import sys, stellar_nb, stellar_nb.commands, stellar_nb.data.tables; print(sorted(m for m in ('tensorflow', 'keras', 'jax') if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-m", "stellar_nb.commands", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "COMMAND" in out
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def _leaf_arguments():
    """(command line, parsed defaults) of every subcommand and sub-subcommand."""
    leaves = []
    for name in commands.COMMANDS:
        if name == "fetch":
            nested = [[name, source] for source in ("sdss", "paper-dataset")]
        elif name == "bench":
            nested = [[name, benchmark] for benchmark in bench.BENCHMARKS]
        else:
            nested = [[name]]
        leaves.extend(nested)
    return leaves


@pytest.mark.parametrize("words", _leaf_arguments(), ids=" ".join)
def test_every_subcommand_takes_the_common_flags(words):
    positional = {"predict": ["m", "a.fits", "--out", "t.csv"]}.get(words[0], [])
    parser = commands.build_parser(words[0])
    args = parser.parse_args(
        [*words, *positional, "--quick", "--seed", "7", "--data-home", "/tmp/home"]
    )
    assert (args.quick, args.seed, args.data_home) == (True, 7, "/tmp/home")
    args = parser.parse_args([*words, *positional])
    assert (args.quick, args.seed, args.data_home) == (None, 0, None)


def test_one_name_per_idea_across_flags():
    options = {}
    for words in _leaf_arguments():
        parser = commands.build_parser(words[0])
        sub = parser._subparsers._group_actions[0].choices[words[0]]
        if len(words) > 1:
            sub = sub._subparsers._group_actions[0].choices[words[1]]
        options[" ".join(words)] = {
            option for action in sub._actions for option in action.option_strings
        }
    every = set().union(*options.values())
    for old in ("--data", "--survey-dir", "--model-dir", "--labels", "--config"):
        assert old not in every
    for name in ("train", "tune", "evaluate", "preprocess", "dashboard", "bench real-stars"):
        assert "--survey" in options[name]
    for name in ("dashboard", "bench inference", "bench dashboard"):
        assert "--model" in options[name]
    assert {"--variant", "--label-source"} <= options["train"]
    assert fetch.HAS_SUBCOMMANDS and bench.HAS_SUBCOMMANDS


def test_only_the_command_package_imports_argparse():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.is_relative_to(PACKAGE / "commands"):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if "argparse" in names or "stellar_nb.commands" in names:
                offenders.append(str(path.relative_to(PACKAGE)))
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "stellar_nb.commands"
            ):
                offenders.append(str(path.relative_to(PACKAGE)))
    assert offenders == []


def test_command_errors_print_the_command_and_exit_1(tmp_path, capsys):
    missing = tmp_path / "no-such-survey"
    assert (
        commands.main(["preprocess", "--survey", str(missing), "--data-home", str(tmp_path)]) == 1
    )
    error = capsys.readouterr().err
    assert error.startswith("stellar-nb preprocess: error:") and str(missing) in error


#: Lines TensorFlow prints on import (C++ logging: oneDNN, cpu_feature_guard, absl's preamble).
TENSORFLOW_NOISE = ("oneDNN", "cpu_feature_guard", "absl::InitializeLog", "TF_ENABLE_ONEDNN_OPTS")
#: Runs ``stellar-nb`` in a fresh interpreter, then reports whether TensorFlow was loaded and what
#: TF_CPP_MIN_LOG_LEVEL the command left in the environment.
CLI_THEN_REPORT = (
    "import os, sys\n"
    "from stellar_nb.commands import main\n"
    "status = main(sys.argv[1:])\n"
    "print('tensorflow' in sys.modules, os.environ.get('TF_CPP_MIN_LOG_LEVEL'))\n"
    "sys.exit(status)\n"
)


def test_no_parser_imports_tensorflow():
    code = (
        "import sys\n"
        "from stellar_nb import commands\n"
        "for name in commands.COMMANDS: commands.build_parser(name)\n"
        "print(sorted(m for m in ('tensorflow', 'keras', 'keras_tuner') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.slow
@pytest.mark.parametrize("verbose", [False, True], ids=["quiet", "verbose"])
def test_tensorflow_start_up_lines_only_with_verbose(verbose, tmp_path, monkeypatch):
    # tune imports Keras Tuner, hence TensorFlow, then stops on the missing survey: a quick way to
    # load TensorFlow through a real command
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    # tune trains on JAX where it is installed (config.keras_backend); these lines are TensorFlow's
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    missing = tmp_path / "no-such-survey"
    argv = ["tune", "--survey", str(missing), "--data-home", str(tmp_path)]
    done = subprocess.run(
        [sys.executable, "-c", CLI_THEN_REPORT, *argv, *(["--verbose"] if verbose else [])],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    loaded, level = done.stdout.split()
    assert loaded == "True"
    # --verbose leaves the level to TensorFlow's side (jax, where installed, sets 1 on import)
    assert level != "2" if verbose else level == "2"
    lines = done.stderr.splitlines()
    assert lines[-1].startswith("stellar-nb tune: error:") and str(missing) in lines[-1]
    if not verbose:  # with --verbose, TensorFlow's own level applies (checked above)
        noise = [line for line in lines if any(word in line for word in TENSORFLOW_NOISE)]
        assert noise == [] and len(lines) == 1, done.stderr
