"""``stellar-nb preprocess``: preprocess the splits of a survey into ``.npy``/``.npz`` files."""

import resource
from pathlib import Path

from stellar_nb import schema
from stellar_nb.commands import common
from stellar_nb.commands.predict import add_dask_argument

__all__ = ["configure_parser", "run"]


def configure_parser(parser):
    """Options of ``stellar-nb preprocess``."""
    common.add_survey_argument(
        parser,
        help="survey folder (default: the simulated survey of this mode and seed, generated if missing)",
    )
    parser.add_argument(
        "--splits",
        nargs="+",
        choices=schema.SPLITS,
        default=list(schema.SPLITS),
        help="splits to preprocess (default: all)",
    )
    parser.add_argument(
        "--method",
        choices=("paper", "single"),
        default="paper",
        help="two interpolations as in the paper (default) or one",
    )
    parser.add_argument(
        "--label-source",
        choices=("catalog", "true"),
        default="catalog",
        help="labels to store (default: the SSPP-like catalogue)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=1024,
        help="spectra per streamed chunk (default 1024: one Parquet row group of the simulated survey; peak memory grows with it)",
    )
    parser.add_argument("--threads", type=int, default=1, help="worker threads (default 1)")
    parser.add_argument(
        "--out", default=None, help="output folder (default DATA_HOME/preprocessed/SURVEY-METHOD)"
    )
    add_dask_argument(parser)


def _peak_memory_mb():
    """Peak resident memory of this process so far, in MiB (Linux ``ru_maxrss``)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run(args):
    """Write ``{split}_X.npy`` (float32 spectra), ``{split}_meta.npz`` (labels, spec_id, flag),
    ``preprocessor.json`` (options and the label scaler fitted on train) and, last, the run
    manifest ``run.json`` into the output folder
    (:func:`~stellar_nb.preprocess.store.preprocess_survey`); with ``--dask`` the batches run on a
    Dask cluster and the files are the same.
    """
    from stellar_nb import scale, simulate
    from stellar_nb.preprocess import Preprocessor, store

    if args.dask is not None:
        scale.parse_address(args.dask)
    config = common.config_from_args(args)
    survey = simulate.resolve_survey(args.survey, config)
    out = Path(args.out) if args.out else config.preprocessed_dir / f"{survey.name}-{args.method}"
    problems = store.folder_problems(out) if (out / store.MANIFEST).exists() else []
    if problems:
        print(f"{out}: earlier run incomplete or mixed ({'; '.join(problems)}); rebuilding")

    def progress(split, rows, seconds):
        print(
            f"{split}: {rows} spectra in {seconds:.1f} s ({rows / max(seconds, 1e-9):,.0f}/s), peak memory {_peak_memory_mb():,.0f} MiB -> {out / f'{split}_X.npy'}"
        )

    options = {
        "splits": args.splits,
        "batch_size": args.batch_size,
        "threads": args.threads,
        "progress": progress,
    }
    preprocessor = Preprocessor(method=args.method, label_source=args.label_source)
    if args.dask is None:
        store.preprocess_survey(survey, out, preprocessor, **options)
    else:
        with scale.cluster(args.dask) as client:
            store.preprocess_survey(survey, out, preprocessor, client=client, **options)
    print(f"preprocessor options and label scaler: {out / 'preprocessor.json'}")
    print(f"run manifest (inputs' fingerprint, completion): {out / store.MANIFEST}")
    return 0
