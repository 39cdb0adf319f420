"""``stellar-nb predict``: Teff, [Fe/H] and log g for SDSS spectrum files or a Parquet split.

Inputs are per-object SDSS spectra (``spec-*.fits``, DR7 ``spSpec-*.fit``) or split tables
(``train.parquet``, ``validation.parquet``, ``test.parquet``). A spectrum is shifted to its rest
frame with the pipeline redshift ``Z`` of its spAll row (``rv_adop`` for a split), converted to a
radial velocity with the relativistic Doppler formula
(:func:`stellar_nb.doppler.velocity_from_redshift`). Objects the pipeline did not classify as
``STAR`` are predicted but flagged: the model has only seen stars; the other trust flags of
:mod:`stellar_nb.trust` (white dwarfs and other foreign subclasses, misfit against the emulated
spectrum, short coverage, ...) are columns of the table too. A file that cannot be read is
reported (a row with its ``reason``) and the others go on. Inference is the numpy forward pass (:class:`stellar_nb.inference.NumpyModel`):
no TensorFlow.
"""

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from stellar_nb import doppler, inference, schema

__all__ = ["partitions", "predict_files", "predict_partition"]


def _fits_rows(path):
    from stellar_nb.data import fits

    spectrum = fits.read_spectrum(path)
    meta = spectrum.meta
    row = {
        "source": str(path),
        "spec_id": Path(path).name,
        "objclass": meta.get("objclass"),
        "subclass": meta.get("subclass") or "",
        "snr": meta.get("snr"),
        "rv_kms": float(doppler.velocity_from_redshift(meta.get("z") or 0.0)),
        "loglam": spectrum.loglam,
        "flux": spectrum.flux,
        "ivar": spectrum.ivar,
        "mask": spectrum.and_mask,
    }
    return [row]


def _parquet_rows(path, rows=None):
    from stellar_nb.data import tables

    path = Path(path)
    if path.stem not in schema.SPLITS:
        raise ValueError(
            f"{path}: a Parquet input must be a split table named {', '.join(s + '.parquet' for s in schema.SPLITS)}"
        )
    frame = tables.read_split(path.parent, path.stem, rows=rows)
    rows = []
    for record in frame.to_dict("records"):
        rows.append(
            {
                "source": str(path),
                "spec_id": record.get("spec_id"),
                "objclass": "STAR",
                "subclass": "",
                "snr": record.get("snr"),
                "rv_kms": float(record.get("rv_adop", 0.0)),
                "loglam": record["loglam"],
                "flux": record["flux"],
                "ivar": record["ivar"],
                "mask": record.get("mask"),
                **{
                    column: record[column]
                    for column in (*schema.CATALOG_COLUMNS, *schema.TRUE_COLUMNS)
                    if column in record
                },
            }
        )
    return rows


def _read(path, rows=None):
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise FileNotFoundError(f"{path}: no such file")
    if path.suffix == ".parquet":
        return _parquet_rows(path, rows)
    return _fits_rows(path)


def _named(path, message):
    """``message`` beginning with the file's name (readers mostly name it already)."""
    message = " ".join(str(message).split()) or "no message"
    return message if message.startswith(str(path)) else f"{path}: {message}"


def _failure_row(model, path, reason):
    return {
        "source": str(path),
        "spec_id": Path(path).name,
        **dict.fromkeys(model.labels, np.nan),
        "flag": "unreadable",
        "reason": reason,
    }


def _row_slices(path, rows_per_piece):
    """Row ranges of ``rows_per_piece`` rows of a Parquet table (only their row groups are read).

    ``[None]`` (the whole file) when its footer cannot be read: the reader then reports it.
    """
    import pyarrow.parquet

    if not Path(path).is_file():  # a FIFO would block: the reader reports what it is
        return [None]
    try:
        rows = pyarrow.parquet.ParquetFile(path).metadata.num_rows
    except Exception:  # whatever is wrong with the file, the reader reports it
        return [None]
    starts = range(0, rows, rows_per_piece)
    return [slice(begin, min(begin + rows_per_piece, rows)) for begin in starts] or [None]


def partitions(paths, *, files_per_partition=16, rows_per_partition=1024):
    """Cut the inputs of :func:`predict_files` into partitions, in input order.

    A partition is a list of pieces ``(path, rows)``: up to ``files_per_partition`` spectrum
    files (``rows`` None), or one range of ``rows_per_partition`` rows of a Parquet table
    (``rows`` a slice; only the row groups holding it are read, so align it with the row groups
    to read each once). The serial and the Dask paths run the same pieces, so they compute the
    same numbers.

    Parameters
    ----------
    paths : sequence of str or pathlib.Path
    files_per_partition, rows_per_partition : int
        Positive.

    Returns
    -------
    list of list of (str, slice or None)

    Raises
    ------
    ValueError
        If a size is not positive.

    Examples
    --------
    >>> partitions(["a.fits", "b.fits", "c.fits"], files_per_partition=2)
    [[('a.fits', None), ('b.fits', None)], [('c.fits', None)]]
    """
    for name, value in (
        ("files_per_partition", files_per_partition),
        ("rows_per_partition", rows_per_partition),
    ):
        if int(value) < 1:
            raise ValueError(f"{name} must be a positive integer, got {value}")
    result, files = [], []
    for path in map(str, paths):
        if Path(path).suffix != ".parquet":
            files.append((path, None))
            if len(files) == int(files_per_partition):
                result.append(files)
                files = []
            continue
        if files:
            result.append(files)
            files = []
        result.extend([(path, rows)] for rows in _row_slices(path, int(rows_per_partition)))
    if files:
        result.append(files)
    return result


def _load_checks():
    from stellar_nb import emulator
    from stellar_nb.simulate import residuals

    return {
        "emulator": emulator.load_emulator(),
        "emulator_error": residuals.load_emulator_error(),
    }


def _predict_piece(model, checks, path, rows, options):
    """The table of one piece and its failure reason (None when it was read)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            table = _predict_rows(model, _read(path, rows), checks=checks, **options)
        except (ValueError, OSError, KeyError, MemoryError, EOFError) as error:
            # ValueError covers SpectrumReadError and the readers' other complaints
            reason = _named(path, error)
            return pd.DataFrame([_failure_row(model, path, reason)]), reason
        except Exception as error:  # a bug must still not cost the other files
            reason = _named(path, f"internal error {type(error).__name__}: {error}")
            return pd.DataFrame([_failure_row(model, path, reason)]), reason
    notes = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    table["reason"] = _named(path, "; ".join(dict.fromkeys(notes))) if notes else ""
    return table, None


def predict_partition(shared, partition, **options):
    """Predict one partition of :func:`partitions` (what a Dask worker runs).

    Parameters
    ----------
    shared : tuple
        ``(model, checks)``: the :class:`~stellar_nb.inference.NumpyModel` and the trust checks'
        emulator and its error model, sent to each worker once.
    partition : list of (str, slice or None)
    **options
        ``uncertainty``, ``n_draws``, ``seed`` as for :func:`predict_files`.

    Returns
    -------
    list of (pandas.DataFrame, str or None)
        Each piece's table and failure reason.

    Notes
    -----
    Runs with one BLAS thread, whatever the process's setting, so that its numbers do not
    depend on where it runs.
    """
    from threadpoolctl import threadpool_limits

    model, checks = shared
    # one BLAS thread, as on a single-threaded Dask worker: a matrix product's last bits depend
    # on how many threads share it, and the serial and Dask tables must be the same
    with threadpool_limits(limits=1, user_api="blas"):
        return [_predict_piece(model, checks, path, rows, options) for path, rows in partition]


def predict_files(
    model,
    paths,
    *,
    uncertainty=False,
    n_draws=16,
    seed=0,
    client=None,
    progress=False,
    files_per_partition=16,
    rows_per_partition=1024,
):
    """Predict labels for spectrum files and split tables; a file that fails costs only itself.

    Every file is read and predicted on its own (a Parquet table in ranges of its row groups,
    :func:`partitions`): one that cannot be read (not FITS, truncated, a header lying about its
    size, a gzip bomb, a FIFO, a directory, out of memory, ...) gets a row with
    ``flag = "unreadable"``, NaN labels and the error in ``reason``, and the run goes on; the
    other files' rows are the same as in a batch without it. With a Dask ``client`` the
    partitions run on its workers (:func:`stellar_nb.scale.ordered_map`) and the table is the
    same, row for row and number for number.

    Parameters
    ----------
    model : stellar_nb.inference.NumpyModel
    paths : sequence of str or pathlib.Path
        FITS spectra (SDSS, LAMOST) and/or Parquet split tables.
    uncertainty : bool
        Add ``sigma_<label>`` columns (:meth:`~stellar_nb.inference.NumpyModel.predict_with_uncertainty`).
    n_draws : int
        Noise draws per spectrum for the uncertainty.
    seed : int
        Seed of the noise draws (each piece draws from its own generator of this seed).
    client : distributed.Client, optional
        Run the partitions on this cluster (:func:`stellar_nb.scale.cluster`); serial if None.
    progress : bool
        Show a progress bar over the partitions (tqdm).
    files_per_partition, rows_per_partition : int
        Partition sizes (:func:`partitions`).

    Returns
    -------
    table : pandas.DataFrame
        One row per spectrum, and one per file that failed, in input order: ``source``,
        ``spec_id``, ``objclass``, ``subclass``, ``snr``, ``rv_kms``, the labels, their sigmas if
        asked, the trust flags of :func:`stellar_nb.trust.table` (``flag_*`` columns and the
        ``misfit`` statistic), ``flag`` (the raised flags' names, "; "-separated, "unusable:
        REASONS" with NaN labels, or "unreadable"; empty when the prediction can be trusted),
        ``reason`` (the error of a failed file, the reader's data-quality warnings of a read one,
        else empty; it names the file) and any label columns of a split.
    failures : list of (str, str)
        ``(path, reason)`` for each file that could not be read or preprocessed.
    """
    import functools

    from tqdm.auto import tqdm

    from stellar_nb import trust

    parts = partitions(
        paths, files_per_partition=files_per_partition, rows_per_partition=rows_per_partition
    )
    options = {"uncertainty": uncertainty, "n_draws": n_draws, "seed": seed}
    shared = (model, _load_checks())
    if client is None:
        results = (predict_partition(shared, part, **options) for part in parts)
    else:
        from stellar_nb import scale

        function = functools.partial(predict_partition, **options)
        results = scale.ordered_map(client, function, parts, shared=shared)
    tables, failures = [], []
    for result in tqdm(results, total=len(parts), unit="partition", disable=not progress):
        for table, reason in result:
            tables.append(table)
            if reason is not None:
                failures.append((table["source"].iloc[0], reason))
    flag_columns = [trust.column_name(name) for name in trust.TABLE_FLAG_NAMES]
    columns = ["source", "spec_id", *model.labels, *flag_columns, "flag", "reason"]
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=columns)
    for column in columns:
        if column not in table:
            table[column] = pd.Series(np.nan, index=table.index, dtype=object)
    for column in flag_columns:
        table[column] = table[column].astype("boolean")
    leading = [c for c in table.columns if c not in ("flag", "reason")]
    return table[[*leading, "flag", "reason"]], failures


def _predict_rows(model, rows, *, uncertainty, n_draws, seed, checks):
    from stellar_nb import preprocess, trust

    arrays = [[row.pop(key) for row in rows] for key in ("loglam", "flux", "ivar", "mask")]
    velocity = np.array([row["rv_kms"] for row in rows])
    spectra, flags = model.preprocess(*arrays, velocity)
    usable = flags[:, None] == 0
    prediction = np.where(usable, model.predict(spectra), np.nan)
    sigma = None
    if uncertainty:
        sigma = model.sigma(*arrays, velocity, n_draws=n_draws, seed=seed)
        sigma = np.where(usable, sigma, np.nan)
    labels = inference.in_schema_order(model, prediction)
    observed = [
        {**row, "loglam": loglam, "flux": flux, "ivar": ivar, "mask": mask}
        for row, loglam, flux, ivar, mask in zip(rows, *arrays, strict=True)
    ]
    trusted = trust.table(labels, observed, velocity, **checks)
    withheld = np.zeros(len(rows), dtype=bool)
    for name in trust.WITHHOLDING_FLAGS:
        withheld |= trusted[trust.column_name(name)].to_numpy(dtype=bool)
    prediction = np.where(withheld[:, None], np.nan, prediction)
    if sigma is not None:
        sigma = np.where(withheld[:, None], np.nan, sigma)
    table = pd.DataFrame(rows)
    for k, label in enumerate(model.labels):
        table[label] = prediction[:, k]
        if sigma is not None:
            table[f"sigma_{label}"] = sigma[:, k]
    table = pd.concat([table, trusted.drop(columns=["flags", "flagged"])], axis=1)
    table["flag"] = [
        "; ".join(
            [*(["unusable: " + ", ".join(preprocess.describe_flags(flag))] if flag else []), names]
        ).strip("; ")
        for flag, names in zip(flags, trusted["flags"], strict=True)
    ]
    return table
