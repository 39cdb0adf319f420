"""``stellar-nb fetch``: get real data, either SDSS DR12 stars with SSPP labels or the paper's data set.

``stellar-nb fetch sdss --n 50000 --out DIR`` queries SkyServer, downloads the spectra to
``DIR/spectra`` (resumable: rerun after an interruption), writes ``DIR/catalogue.csv``, the split
tables ``DIR/{train,validation,test}.parquet`` and ``DIR/rejected.csv``.
``stellar-nb fetch paper-dataset --out DIR`` downloads the paper's Parquet splits from Hugging Face
through ``huggingface_hub`` (:mod:`stellar_nb.data.paper_dataset`; the paper calls it its
benchmark); a gated or private copy needs ``$HF_TOKEN``.

Exit status: 0 when everything worked, 1 when some files failed (the rest is written; rerun to
resume) or nothing could be fetched.
"""

import sys
import warnings
from pathlib import Path

import pandas as pd

from stellar_nb.commands import common

__all__ = ["HAS_SUBCOMMANDS", "configure_parser", "run"]

#: The common flags go on ``sdss`` and ``paper-dataset``, not on ``fetch`` itself.
HAS_SUBCOMMANDS = True


def configure_parser(parser):
    """Add the ``sdss`` and ``paper-dataset`` sub-subcommands to ``parser``."""
    sources = parser.add_subparsers(dest="source", metavar="SOURCE", required=True)
    sdss = sources.add_parser(
        "sdss",
        help="SDSS DR12 stars with SSPP labels (SkyServer + SAS)",
        parents=[common.common_parser()],
    )
    sdss.add_argument(
        "--n", type=int, default=None, help="stars to query (default: the split sizes' sum, 50,000)"
    )
    sdss.add_argument("--out", default=None, help="output folder (default DATA_HOME/sdss_dr12)")
    sdss.add_argument("--page-size", type=int, default=10_000, help="rows per SkyServer request")
    sdss.add_argument(
        "--min-snr", type=float, default=10.0, help="lowest SSPP S/N kept (default 10)"
    )
    sdss.add_argument("--workers", type=int, default=8, help="parallel downloads (default 8)")
    sdss.add_argument(
        "--skyserver-url", default=None, help="SqlSearch endpoint ($STELLAR_NB_SKYSERVER_URL)"
    )
    sdss.add_argument("--sas-url", default=None, help="SAS base URL ($STELLAR_NB_SAS_URL)")
    sdss.add_argument(
        "--retries", type=int, default=3, help="further attempts per request (default 3)"
    )
    sdss.add_argument("--no-progress", action="store_true", help="no progress bars")
    paper = sources.add_parser(
        "paper-dataset",
        help="the paper's Parquet splits from Hugging Face",
        parents=[common.common_parser()],
    )
    paper.add_argument("--out", default=None, help="output folder (default DATA_HOME/benchmark)")
    paper.add_argument(
        "--hf-url",
        default=None,
        help="Hugging Face Hub base URL ($STELLAR_NB_HF_URL, else $HF_ENDPOINT); token: $HF_TOKEN",
    )
    paper.add_argument(
        "--revision", default="main", help="dataset revision (branch, tag, ref or commit)"
    )
    paper.add_argument("--workers", type=int, default=3, help="parallel downloads (default 3)")
    paper.add_argument(
        "--retries",
        type=int,
        default=1,
        help="further downloads of a file that fails its checksum (default 1; network errors "
        "are retried by huggingface_hub)",
    )
    paper.add_argument("--no-progress", action="store_true", help="no progress bars")


def _run_sdss(args, configuration):
    from stellar_nb.data import sdss, splits

    out = Path(args.out) if args.out else configuration.downloads_dir
    out.mkdir(parents=True, exist_ok=True)
    sizes = (configuration.n_train, configuration.n_validation, configuration.n_test)
    n = args.n if args.n is not None else sum(sizes)
    if n < 1:
        raise ValueError(f"--n must be positive, got {n}")
    if n < sum(sizes):
        validation, test = (int(n * size / sum(sizes)) for size in sizes[1:])
        sizes = (n - validation - test, validation, test)
    catalogue = sdss.query_sspp(
        n,
        base_url=args.skyserver_url,
        page_size=args.page_size,
        min_snr=args.min_snr,
        retries=args.retries,
    )
    catalogue.to_csv(out / "catalogue.csv", index=False)
    print(f"catalogue: {len(catalogue)} stars -> {out / 'catalogue.csv'}")
    report = sdss.download_spectra(
        catalogue,
        out / "spectra",
        base_url=args.sas_url,
        workers=args.workers,
        retries=args.retries,
        progress=not args.no_progress,
    )
    print(report.summary())
    built = splits.build_splits(
        catalogue,
        out / "spectra",
        out,
        sizes=sizes,
        seed=configuration.seed,
        progress=not args.no_progress,
    )
    rejected = pd.DataFrame(
        {"spec_id": list(built.rejected), "reason": list(built.rejected.values())}
    )
    rejected.to_csv(out / "rejected.csv", index=False)
    print(
        f"splits in {out}: {built.counts}; {len(built.rejected)} rejected (see {out / 'rejected.csv'})"
    )
    if not report.ok:
        print(
            f"{len(report.failed)} download(s) failed; rerun the same command to resume",
            file=sys.stderr,
        )
    return 0 if report.ok and sum(built.counts.values()) else 1


def _run_paper_dataset(args, configuration):
    from stellar_nb.data import download, paper_dataset

    out = Path(args.out) if args.out else configuration.paper_dataset_dir
    try:
        folder = paper_dataset.fetch_paper_dataset(
            out,
            base_url=args.hf_url,
            revision=args.revision,
            workers=args.workers,
            retries=args.retries,
            progress=not args.no_progress,
        )
    except download.DownloadError as error:
        print(
            f"stellar-nb fetch paper-dataset: {error}\nrerun the same command to resume",
            file=sys.stderr,
        )
        return 1
    print(f"paper data set splits in {folder}")
    return 0


def run(args):
    """Run ``stellar-nb fetch SOURCE``; returns the exit status.

    Data warnings (rows dropped, spectra rejected) are printed to stderr, not raised.
    """
    from stellar_nb.data import sdss

    configuration = common.config_from_args(args)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        try:
            if args.source == "sdss":
                status = _run_sdss(args, configuration)
            else:
                status = _run_paper_dataset(args, configuration)
        except sdss.SkyServerError as error:
            print(f"stellar-nb fetch {args.source}: {error}", file=sys.stderr)
            status = 1
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
    return status
