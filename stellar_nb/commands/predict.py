"""``stellar-nb predict``: labels and trust flags for spectrum files (:func:`stellar_nb.predict.predict_files`)."""

import sys
from pathlib import Path

from stellar_nb.commands import common

__all__ = ["add_dask_argument", "check_out", "configure_parser", "run"]


def configure_parser(parser):
    """Options of ``stellar-nb predict``."""
    parser.add_argument(
        "model", help=f"model directory, or '{common.PRETRAINED}' for the shipped model"
    )
    parser.add_argument(
        "files", nargs="+", help="spec-*.fits / spSpec-*.fit files or split .parquet tables"
    )
    parser.add_argument("--out", required=True, help="CSV table to write")
    parser.add_argument(
        "--uncertainty", action="store_true", help="add calibrated sigma columns (slower)"
    )
    parser.add_argument(
        "--draws", type=int, default=16, help="noise draws per spectrum for --uncertainty"
    )
    add_dask_argument(parser)


def add_dask_argument(parser):
    """Add ``--dask ADDRESS`` (``local:N`` or ``tcp://HOST:PORT``, :func:`stellar_nb.scale.cluster`).

    Parameters
    ----------
    parser : argparse.ArgumentParser
    """
    parser.add_argument(
        "--dask",
        default=None,
        metavar="ADDRESS",
        help="run on Dask: local:N (N worker processes here) or tcp://HOST:PORT (a running scheduler)",
    )


def check_out(out, inputs):
    """The ``--out`` path made safe to write, checked before any work.

    Refuses "", ".", a directory, a path naming one of ``inputs`` and a missing folder. A
    symbolic link is resolved: the table is written through it, onto its target.

    Raises
    ------
    ValueError
        For "", ".", a directory, or an input file.
    FileNotFoundError
        If the output's folder does not exist.
    """
    if str(out).strip() in ("", "."):
        raise ValueError(f"--out {str(out)!r} is not a file name; give a CSV path")
    out = Path(out)
    if out.is_dir():
        raise ValueError(f"--out {out} is a directory; give a CSV path inside it")
    target = out.resolve()
    for path in inputs:
        if Path(path).resolve() == target:
            raise ValueError(f"--out {out} is one of the inputs; it would be overwritten")
    if not target.parent.is_dir():
        raise FileNotFoundError(f"folder {out.parent} does not exist (for --out {out})")
    return target


def _write(target, table):
    import os

    from stellar_nb.files import atomic_write

    mode = target.stat().st_mode & 0o7777 if target.exists() else None
    atomic_write(target, lambda path: table.to_csv(path, index=False))
    if mode is not None:
        os.chmod(target, mode)


def run(args):
    """Run ``stellar-nb predict``; exit status 1 when some files failed (the table is still written).

    With ``--dask`` the partitions run on a Dask cluster and the table is the same.

    ``--out`` is checked before the model is loaded; an existing output is never replaced by a
    table without a single prediction (exit status 1, the old file left as it was).
    """
    import pandas as pd

    from stellar_nb import model_directory, scale
    from stellar_nb.predict import predict_files

    target = check_out(args.out, args.files)
    if args.dask is not None:
        scale.parse_address(args.dask)
    out = Path(args.out)
    model_dir = common.resolve_model_dir(args.model)
    model = model_directory.load(model_dir)
    options = {"uncertainty": args.uncertainty, "n_draws": args.draws, "seed": args.seed}
    if args.dask is None:
        table, failures = predict_files(model, args.files, progress=sys.stderr.isatty(), **options)
    else:
        with scale.cluster(args.dask) as client:
            table, failures = predict_files(
                model, args.files, client=client, progress=sys.stderr.isatty(), **options
            )
    for path, reason in failures:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    if failures:
        print(f"{len(failures)} of {len(args.files)} input(s) failed", file=sys.stderr)
    if len(failures) == len(table) and target.exists():
        print(f"every input failed: {out} left as it was, not replaced", file=sys.stderr)
        return 1
    _write(target, table)
    flags = table.get("flag", pd.Series(dtype=str)).fillna("")
    read = flags != "unreadable"
    stars = int((read & ~flags.str.contains("not a star")).sum())
    unusable = int(flags.str.contains("unusable").sum())
    flagged = int((read & (flags != "")).sum())
    print(
        f"{int(read.sum())} spectra ({stars} stars, {unusable} unusable, {flagged} with a trust flag)"
        f"{f', {len(failures)} unreadable' if failures else ''} -> {out}"
    )
    return 1 if failures else 0
