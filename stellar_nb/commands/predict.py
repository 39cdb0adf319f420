"""``stellar-nb predict``: labels and trust flags for spectrum files (:func:`stellar_nb.predict.predict_files`)."""

import sys
from pathlib import Path

from stellar_nb.commands import common

__all__ = ["configure_parser", "run"]


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


def run(args):
    """Run ``stellar-nb predict``; exit status 1 when some files failed (the table is still written)."""
    import pandas as pd

    from stellar_nb import model_directory
    from stellar_nb.files import atomic_write
    from stellar_nb.predict import predict_files

    model_dir = common.resolve_model_dir(args.model)
    out = Path(args.out)
    if not out.parent.is_dir():
        raise FileNotFoundError(f"folder {out.parent} does not exist (for --out {out})")
    model = model_directory.load(model_dir)
    table, failures = predict_files(
        model, args.files, uncertainty=args.uncertainty, n_draws=args.draws, seed=args.seed
    )
    atomic_write(out, lambda path: table.to_csv(path, index=False))
    flags = table.get("flag", pd.Series(dtype=str)).fillna("")
    stars = int((~flags.str.contains("not a star")).sum())
    unusable = int(flags.str.contains("unusable").sum())
    flagged = int((flags != "").sum())
    print(
        f"{len(table)} spectra ({stars} stars, {unusable} unusable, {flagged} with a trust flag) -> {out}"
    )
    for path, reason in failures:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    if failures:
        print(f"{len(failures)} of {len(args.files)} input(s) failed", file=sys.stderr)
    return 1 if failures else 0
