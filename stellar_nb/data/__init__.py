"""Data sources behind one schema (:mod:`stellar_nb.schema`).

- survey tables, one Parquet file per split: :func:`read_split`, :func:`iter_split`,
  :func:`write_split`, :func:`split_path` (:mod:`~stellar_nb.data.tables`);
- SDSS and LAMOST spectrum files: :func:`read_spectrum`, :func:`write_spectrum`,
  :class:`Spectrum` (:mod:`~stellar_nb.data.fits`, with the layouts in
  :mod:`~stellar_nb.data.sdss_layouts` and :mod:`~stellar_nb.data.lamost`), and
  :func:`to_specutils` / :func:`from_specutils` (:mod:`~stellar_nb.data.convert`);
- real SDSS DR12 stars with SSPP labels: :func:`query_sspp`, :func:`download_spectra`,
  :func:`build_splits` (:mod:`~stellar_nb.data.splits`, downloads through
  :mod:`~stellar_nb.data.download`);
- the paper's public data set on Hugging Face: :func:`fetch_paper_dataset`,
  :func:`load_paper_dataset` (:mod:`~stellar_nb.data.paper_dataset`).

Names load on first use, so ``from stellar_nb.data import tables`` does not import astropy.
"""

from stellar_nb import lazy

__getattr__, __dir__ = lazy.attach(
    __name__,
    {
        "DownloadError": "download",
        "Spectrum": "fits",
        "SpectrumQualityWarning": "fits",
        "SpectrumReadError": "fits",
        "build_splits": "splits",
        "download_spectra": "sdss",
        "fetch_paper_dataset": "paper_dataset",
        "from_specutils": "convert",
        "iter_split": "tables",
        "load_paper_dataset": "paper_dataset",
        "query_sspp": "sdss",
        "read_spectrum": "fits",
        "read_split": "tables",
        "split_path": "tables",
        "to_specutils": "convert",
        "write_spectrum": "spec_lite",
        "write_split": "tables",
    },
)

__all__ = [
    "DownloadError",
    "Spectrum",
    "SpectrumQualityWarning",
    "SpectrumReadError",
    "build_splits",
    "download_spectra",
    "fetch_paper_dataset",
    "from_specutils",
    "iter_split",
    "load_paper_dataset",
    "query_sspp",
    "read_spectrum",
    "read_split",
    "split_path",
    "to_specutils",
    "write_spectrum",
    "write_split",
]
