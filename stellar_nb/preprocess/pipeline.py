"""One preprocessing entry point: :class:`Preprocessor`, and streaming a survey split through it.

Training, evaluation, ``stellar-nb predict`` and the dashboard all call the same
:class:`Preprocessor`, so a spectrum is treated identically everywhere; its options and fitted
label scaler are saved with each model (:meth:`Preprocessor.to_dict`).
"""

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from stellar_nb import files, schema
from stellar_nb.preprocess import spectra
from stellar_nb.preprocess.labels import LabelScaler

__all__ = [
    "DEFAULT_SCALARS",
    "INPUT_VARIANTS",
    "Preprocessor",
    "input_variant",
    "label_columns",
    "prepare_split",
]

#: Named network inputs -> continuum degree: "paper" (standardised rest-frame flux, the paper's)
#: and "continuum" (divided by a degree-6 Legendre continuum first; beyond the paper).
INPUT_VARIANTS = {"paper": 0, "continuum": 6}


def input_variant(name):
    """The continuum degree of a named input variant (:data:`INPUT_VARIANTS`)."""
    if name not in INPUT_VARIANTS:
        raise ValueError(f"input variant must be one of {sorted(INPUT_VARIANTS)}, got {name!r}")
    return INPUT_VARIANTS[name]


#: Scalar columns returned by :func:`prepare_split` by default (those present in the table).
DEFAULT_SCALARS = ("spec_id", "snr", "rv_adop", *schema.UNCERTAINTY_COLUMNS, *schema.TRUE_COLUMNS)
_SPECTRUM_COLUMNS = ("loglam", "flux", "ivar", "mask", "rv_adop")
_LABEL_SOURCES = ("catalog", "true")


def label_columns(label_source="catalog"):
    """Label column names: ``catalog_*`` (SSPP, the paper's targets) or ``true_*`` (simulation)."""
    if label_source not in _LABEL_SOURCES:
        raise ValueError(f"label_source must be one of {_LABEL_SOURCES}, got {label_source!r}")
    return [f"{label_source}_{label}" for label in schema.LABELS]


def _frame_arrays(frame):
    missing = [name for name in ("loglam", "flux") if name not in frame.columns]
    if missing:
        raise ValueError(f"the table lacks the columns {missing}")
    get = lambda name: list(frame[name]) if name in frame.columns else None  # noqa: E731
    rv = frame["rv_adop"].to_numpy(dtype=float) if "rv_adop" in frame.columns else 0.0
    return get("loglam"), get("flux"), get("ivar"), get("mask"), rv


def prepare_split(
    directory,
    split,
    *,
    method="paper",
    grid=None,
    fatal_bits=spectra.FATAL_AND_MASK,
    columns=DEFAULT_SCALARS,
    label_source="catalog",
    batch_size=1024,
    drop_flagged=True,
    out=None,
    threads=1,
    continuum_degree=0,
):
    """Preprocess a survey split in chunks: bounded memory for any number of spectra.

    Parameters
    ----------
    directory : str or pathlib.Path
        Survey folder with ``{split}.parquet``.
    split : {"train", "validation", "test"}
    method, grid, fatal_bits
        As for :func:`~stellar_nb.preprocess.spectra.preprocess_spectra`.
    columns : sequence of str
        Scalar columns to return (those absent from the table are skipped).
    label_source : {"catalog", "true"}
        Which labels to return (physical units).
    batch_size : int
        Spectra per chunk read from the Parquet file.
    drop_flagged : bool
        Leave unusable spectra out (the default); otherwise keep them as zero rows.
    out : str or pathlib.Path, optional
        Write ``X`` to this ``.npy`` file (atomically) and return it memory-mapped, so ``X`` need
        not fit in memory either. Scratch files of earlier, killed writes of it (``.NAME.*.raw``,
        ``.NAME.*.part*``) are removed first (:func:`~stellar_nb.files.remove_stale_temporaries`).
    threads : int
        Worker threads per batch (see :func:`~stellar_nb.preprocess.spectra.preprocess_spectra`).
    continuum_degree : int
        0 for the paper's input; otherwise the "continuum" variant
        (:func:`~stellar_nb.preprocess.spectra.continuum_normalise`).

    Returns
    -------
    X : numpy.ndarray
        Float32 (n, grid size) standardised spectra.
    labels : numpy.ndarray
        Float64 (n, 3) labels in physical units, order ``LABELS``.
    scalars : pandas.DataFrame
        The requested scalar columns plus ``flag`` (0: good), one row per row of ``X``.
    """
    from stellar_nb.data import tables

    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    grid = spectra.check_grid(grid, uniform=True)
    targets = label_columns(label_source)
    header = tables.read_split(directory, split, columns=["spec_id"])
    total = len(header)
    available = set(tables._open(directory, split).schema_arrow.names)
    missing = [name for name in targets if name not in available]
    if missing:
        raise ValueError(f"the {split} split has no label columns {missing}")
    keep = [name for name in columns if name in available]
    wanted = list(
        dict.fromkeys([*keep, *targets, *(c for c in _SPECTRUM_COLUMNS if c in available)])
    )
    # the output goes to a raw temporary file, not a memory map, so that written pages do not
    # count against the process; the .npy is assembled once the row count is known
    X = np.empty((total, grid.size), dtype=np.float32) if out is None else None
    if out is not None:
        name = Path(out).name
        files.remove_stale_temporaries(Path(out).parent, [f".{name}.*.raw", f".{name}.*.part*"])
    labels, frames, count = [], [], 0
    with (
        open(os.devnull, "wb")
        if out is None
        else tempfile.TemporaryFile(
            prefix=f".{Path(out).name}.", suffix=".raw", dir=Path(out).parent
        )
    ) as stream:
        for begin in range(0, total, int(batch_size)):
            # row-group-aligned reads of one batch at a time bound the memory
            chosen, batch_labels, scalars = preprocess_rows(
                directory,
                split,
                slice(begin, begin + int(batch_size)),
                columns=keep,
                targets=targets,
                drop_flagged=drop_flagged,
                read_columns=wanted,
                method=method,
                grid=grid,
                fatal_bits=fatal_bits,
                threads=threads,
                continuum_degree=continuum_degree,
            )
            if X is None:
                chosen.astype("<f4", copy=False).tofile(stream)
            else:
                X[count : count + len(chosen)] = chosen
            count += len(chosen)
            labels.append(batch_labels)
            frames.append(scalars)
        if out is not None:
            X = assemble_npy(stream, Path(out), (count, grid.size))
    X = X[:count] if out is None and count < total else X
    import pandas as pd

    scalars = (
        pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=[*keep, "flag"])
    )
    labels = np.concatenate(labels) if labels else np.empty((0, len(targets)))
    return X, labels, scalars


def preprocess_rows(
    directory,
    split,
    rows,
    *,
    columns,
    targets,
    drop_flagged=True,
    read_columns=None,
    **options,
):
    """Preprocess one range of a split's rows: one batch of :func:`prepare_split`, or of a Dask
    worker (:func:`stellar_nb.preprocess.store.preprocess_batch`).

    Parameters
    ----------
    directory : str or pathlib.Path
        Survey folder with ``{split}.parquet``.
    split : str
    rows : slice
        The rows (only the row groups holding them are read).
    columns : sequence of str
        Scalar columns to return.
    targets : sequence of str
        Label columns (:func:`label_columns`).
    drop_flagged : bool
        Leave unusable spectra out; otherwise keep them as zero rows.
    read_columns : sequence of str, optional
        Columns to read (default: all).
    **options
        ``method``, ``grid``, ``fatal_bits``, ``threads``, ``continuum_degree`` of
        :func:`~stellar_nb.preprocess.spectra.preprocess_spectra`.

    Returns
    -------
    X : numpy.ndarray
        The kept rows' preprocessed spectra.
    labels : numpy.ndarray
        Their labels in physical units.
    scalars : pandas.DataFrame
        Their ``columns`` plus ``flag``.
    """
    from stellar_nb.data import tables

    frame = tables.read_split(directory, split, columns=read_columns, rows=rows)
    block, flags = spectra.preprocess_spectra(*_frame_arrays(frame), **options)
    kept = flags == 0 if drop_flagged else np.ones(flags.size, bool)
    scalars = frame.loc[kept, list(columns)].reset_index(drop=True)
    scalars["flag"] = flags[kept]
    return block[kept], frame.loc[kept, list(targets)].to_numpy(dtype=float), scalars


def assemble_npy(raw, out, shape):
    """Write ``out`` (.npy, float32 ``shape``) from the raw rows in the open file ``raw``, atomically."""
    raw.flush()
    raw.seek(0)
    with files.atomic_path(out) as partial, open(partial, "wb") as target:
        header = {"descr": "<f4", "fortran_order": False, "shape": tuple(int(n) for n in shape)}
        np.lib.format.write_array_header_1_0(target, header)
        shutil.copyfileobj(raw, target, 16 * 2**20)
    return np.load(out, mmap_mode="r")


class Preprocessor:
    """The preprocessing options and fitted label scaler: the package's one entry point.

    Parameters
    ----------
    method : {"paper", "single"}
        Two interpolations in the paper's order, or one (see :mod:`~stellar_nb.preprocess.spectra`).
    grid_size : int
        Points of the common grid (the paper: 4000).
    grid_start, grid_stop : float
        Ends of the grid in log10(lambda / Angstrom) (the paper: 3.5754, 3.9670).
    fatal_bits : int
        SDSS ``and_mask`` bits that make a pixel bad.
    label_source : {"catalog", "true"}
        Labels used for training (the paper: the SSPP catalogue).
    continuum_degree : int
        0 (the paper): standardise the rest-frame spectrum as it is. Otherwise the named
        "continuum" variant: divide by a fitted Legendre continuum of this degree first, which
        removes flux-calibration errors and reddening
        (:func:`~stellar_nb.preprocess.spectra.continuum_normalise`).

    Attributes
    ----------
    label_scaler_ : LabelScaler
        Set by :meth:`fit_labels` or :meth:`fit_split` (training labels only).

    Notes
    -----
    :meth:`transform` learns nothing from spectra, so there is no ``fit(X)``; the one fitted part
    is the label scaler, which follows the scikit-learn contract on labels.

    Examples
    --------
    >>> import numpy as np
    >>> loglam = 3.58 + 1e-4 * np.arange(3800)
    >>> flux = 50.0 + np.sin(loglam * 200.0)
    >>> Preprocessor().transform_spectrum(loglam, flux, rv_kms=20.0).shape
    (4000,)
    """

    def __init__(
        self,
        method="paper",
        grid_size=schema.GRID_SIZE,
        grid_start=schema.GRID_LOGLAM_MIN,
        grid_stop=schema.GRID_LOGLAM_MAX,
        fatal_bits=spectra.FATAL_AND_MASK,
        label_source="catalog",
        continuum_degree=0,
    ):
        if method not in ("paper", "single"):
            raise ValueError(f"method must be 'paper' or 'single', got {method!r}")
        if int(grid_size) < 4:
            raise ValueError(f"grid_size must be at least 4, got {grid_size}")
        if not grid_start < grid_stop:
            raise ValueError(f"grid_start ({grid_start}) must be below grid_stop ({grid_stop})")
        label_columns(label_source)
        if int(continuum_degree) < 0:
            raise ValueError(f"continuum_degree must be 0 or positive, got {continuum_degree}")
        self.continuum_degree = int(continuum_degree)
        self.method = method
        self.grid_size = int(grid_size)
        self.grid_start = float(grid_start)
        self.grid_stop = float(grid_stop)
        self.fatal_bits = int(fatal_bits)
        self.label_source = label_source

    @property
    def grid(self):
        """The common log10-wavelength grid."""
        return schema.grid_loglam(self.grid_size, self.grid_start, self.grid_stop)

    def fit_labels(self, labels):
        """Fit the label scaler on training labels (n, 3) in physical units; returns ``self``."""
        self.label_scaler_ = LabelScaler().fit(labels)
        return self

    def fit_split(self, directory, split="train"):
        """Fit the label scaler on a split's labels (reads only the label columns)."""
        from stellar_nb.data import tables

        frame = tables.read_split(directory, split, columns=label_columns(self.label_source))
        return self.fit_labels(frame.to_numpy(dtype=float))

    def _scaler(self):
        if not hasattr(self, "label_scaler_"):
            raise ValueError(
                "this Preprocessor has no fitted label scaler: call fit_labels(train_labels) first"
            )
        return self.label_scaler_

    def scale_labels(self, labels):
        """Labels in physical units -> scaled (the network's targets)."""
        return self._scaler().transform(labels)

    def unscale_labels(self, scaled):
        """Scaled labels (network outputs) -> physical units (K, dex, dex)."""
        return self._scaler().inverse_transform(scaled)

    def transform(
        self, loglam_list, flux_list, ivar_list=None, mask_list=None, rv_kms=0.0, *, on_bad="flag"
    ):
        """Preprocess a batch of spectra; returns ``(X float32 (n, grid_size), flags)``."""
        return spectra.preprocess_spectra(
            loglam_list,
            flux_list,
            ivar_list,
            mask_list,
            rv_kms,
            method=self.method,
            grid=self.grid,
            fatal_bits=self.fatal_bits,
            on_bad=on_bad,
            continuum_degree=self.continuum_degree,
        )

    def transform_frame(self, frame, *, on_bad="flag"):
        """Preprocess the rows of a split table (columns ``loglam``, ``flux``, ``ivar``, ``mask``, ``rv_adop``)."""
        return self.transform(*_frame_arrays(frame), on_bad=on_bad)

    def transform_spectrum(self, loglam, flux, ivar=None, mask=None, rv_kms=0.0):
        """Preprocess one spectrum (the dashboard's call); raises ``ValueError`` if it is unusable."""
        X, _ = self.transform(
            [loglam],
            [flux],
            None if ivar is None else [ivar],
            None if mask is None else [mask],
            [rv_kms],
            on_bad="raise",
        )
        return X[0]

    def stages(self, loglam, flux, ivar=None, mask=None, rv_kms=0.0):
        """One spectrum's preprocessing step by step, ending in exactly :meth:`transform_spectrum`.

        Returns
        -------
        dict
            Name -> 1-D array on :attr:`grid` (the ``stages`` of
            :func:`~stellar_nb.preprocess.spectra.preprocess_spectra`); ``"standardised"`` is
            the float32 network input, bit-identical to :meth:`transform`'s row.

        Raises
        ------
        ValueError
            If the spectrum is unusable: "cannot be preprocessed (PROBLEMS)", the problems named
            by :func:`~stellar_nb.preprocess.spectra.describe_flags`.
        """
        stages = {}
        _, flags = spectra.preprocess_spectra(
            [loglam],
            [flux],
            None if ivar is None else [ivar],
            None if mask is None else [mask],
            [rv_kms],
            method=self.method,
            grid=self.grid,
            fatal_bits=self.fatal_bits,
            continuum_degree=self.continuum_degree,
            stages=stages,
        )
        if flags[0]:
            problems = ", ".join(spectra.describe_flags(flags[0]))
            raise ValueError(f"cannot be preprocessed ({problems})")
        return {name: values[0] for name, values in stages.items()}

    def transform_split(self, directory, split, **options):
        """:func:`prepare_split` with this preprocessor's options; returns ``(X, labels, scalars)``.

        ``options`` go to :func:`prepare_split` (``label_source`` overrides this preprocessor's).
        """
        options = {"label_source": self.label_source, **options}
        return prepare_split(
            directory,
            split,
            method=self.method,
            grid=self.grid,
            fatal_bits=self.fatal_bits,
            continuum_degree=self.continuum_degree,
            **options,
        )

    def to_dict(self):
        """JSON-able options and fitted state."""
        state = {
            "method": self.method,
            "grid_size": self.grid_size,
            "grid_start": self.grid_start,
            "grid_stop": self.grid_stop,
            "fatal_bits": self.fatal_bits,
            "label_source": self.label_source,
        }
        if self.continuum_degree:
            state["continuum_degree"] = self.continuum_degree
        if hasattr(self, "label_scaler_"):
            state["label_scaler"] = self.label_scaler_.to_dict()
        return state

    @classmethod
    def from_dict(cls, state):
        """Rebuild a preprocessor saved with :meth:`to_dict`."""
        state = dict(state)
        scaler = state.pop("label_scaler", None)
        preprocessor = cls(**state)
        if scaler is not None:
            preprocessor.label_scaler_ = LabelScaler.from_dict(scaler)
        return preprocessor

    def save(self, path):
        """Write :meth:`to_dict` as JSON, atomically."""
        return files.write_json(path, self.to_dict())

    @classmethod
    def load(cls, path):
        """Read a preprocessor written by :meth:`save`."""
        return cls.from_dict(files.read_json(path))

    def __repr__(self):
        fitted = ", fitted" if hasattr(self, "label_scaler_") else ""
        return f"Preprocessor(method={self.method!r}, grid_size={self.grid_size}{fitted})"
