"""Read and write survey splits: one Parquet file per split, in the schema of :mod:`stellar_nb.schema`.

Per-pixel arrays (``flux``, ``loglam``, ``ivar``, ``mask``, ``processed_flux``) are Parquet list
columns; in memory they become object columns of numpy arrays, one per row. Reading can select
columns and rows, and :func:`iter_split` streams a split in batches, so 50,000 full spectra never
need to sit in memory at once.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from stellar_nb import files, schema

__all__ = ["fingerprint", "iter_split", "read_split", "split_path", "write_split"]

#: Columns holding one array per row.
LIST_COLUMNS = (*schema.ARRAY_COLUMNS, "processed_flux")


def split_path(survey, split):
    """Return the Parquet path of ``split`` in the survey folder ``survey``.

    Raises
    ------
    ValueError
        If ``split`` is not one of :data:`stellar_nb.schema.SPLITS`.
    """
    if split not in schema.SPLITS:
        raise ValueError(f"unknown split {split!r}; allowed: {', '.join(schema.SPLITS)}")
    return Path(survey) / f"{split}.parquet"


def fingerprint(survey, splits=schema.SPLITS):
    """What a survey's tables are: the SHA-256 of its manifest and the size and SHA-256 of each split.

    Content hashes, so a copied survey keeps its fingerprint and a regenerated or edited one does
    not. Runs that depend on a survey (preprocessing, tuning) store this to detect other data.

    Parameters
    ----------
    survey : str or pathlib.Path
        Survey folder.
    splits : sequence of str
        The splits the run reads.

    Returns
    -------
    dict
        ``{"manifest_sha256": str or None, "tables": {split: {"bytes", "sha256"}}}``.

    Raises
    ------
    FileNotFoundError
        If a split's table is missing (the message names the folder and file).
    """
    survey = Path(survey)
    found = {}
    for split in splits:
        path = split_path(survey, split)
        if not path.is_file():
            raise FileNotFoundError(f"survey folder {survey} has no {path.name}")
        found[split] = {"bytes": path.stat().st_size, "sha256": files.sha256sum(path)}
    manifest = survey / schema.SURVEY_MANIFEST
    return {
        "manifest_sha256": files.sha256sum(manifest) if manifest.is_file() else None,
        "tables": found,
    }


def _to_arrow(frame):
    arrays, names = [], []
    for name in frame.columns:
        values = frame[name]
        if name in LIST_COLUMNS:
            rows = [np.asarray(row) for row in values]
            dtype = rows[0].dtype if rows else np.dtype("float32")
            offsets = np.zeros(len(rows) + 1, dtype=np.int64)
            np.cumsum([len(row) for row in rows], out=offsets[1:])
            flat = np.concatenate(rows) if rows else np.array([], dtype=dtype)
            arrays.append(pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(flat)))
        else:
            arrays.append(pa.array(values.to_numpy()))
        names.append(name)
    return pa.Table.from_arrays(arrays, names=names)


def write_split(frame, path, *, row_group_size=1024):
    """Write a split table atomically (temporary file in the same folder, then rename).

    Parameters
    ----------
    frame : pandas.DataFrame
        Scalars as ordinary columns; per-pixel arrays as object columns of 1-D numpy arrays.
    path : str or pathlib.Path
        Destination ``.parquet`` file; its folder must exist.
    row_group_size : int
        Rows per Parquet row group: the unit of streaming in :func:`iter_split`.
    """
    table = _to_arrow(frame)
    return files.atomic_write(
        path,
        lambda temporary: pq.write_table(
            table,
            temporary,
            compression="zstd",
            row_group_size=row_group_size,
            use_byte_stream_split=[n for n in table.column_names if n in LIST_COLUMNS] or False,
        ),
    )


def _to_pandas(table):
    columns = {}
    for name in table.column_names:
        column = table.column(name).combine_chunks()
        if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
            offsets = column.offsets.to_numpy()
            flat = column.values.to_numpy(zero_copy_only=False)
            rows = np.empty(len(column), dtype=object)
            for i in range(len(column)):
                rows[i] = flat[offsets[i] : offsets[i + 1]]
            columns[name] = rows
        else:
            columns[name] = column.to_numpy(zero_copy_only=False)
    return pd.DataFrame(columns)


def _open(survey, split):
    path = split_path(survey, split)
    if not path.is_file():
        raise FileNotFoundError(f"no {split} split at {path}")
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise ValueError(f"{path} is not a readable Parquet file: {error}") from None


def _check_columns(parquet, columns):
    if columns is None:
        return None
    missing = sorted(set(columns) - set(parquet.schema_arrow.names))
    if missing:
        raise ValueError(f"columns {missing} not in the table; it has {parquet.schema_arrow.names}")
    return list(columns)


def read_split(survey, split, *, columns=None, rows=None):
    """Read a split (or some of its columns and rows) into a DataFrame.

    Parameters
    ----------
    survey : str or pathlib.Path
        Survey folder holding ``train.parquet``, ``validation.parquet``, ``test.parquet``.
    split : {"train", "validation", "test"}
    columns : sequence of str, optional
        Columns to read; all by default. Reading only scalars is cheap.
    rows : slice or sequence of int, optional
        Rows to keep (positions in the file); only the row groups holding them are read.
    """
    parquet = _open(survey, split)
    columns = _check_columns(parquet, columns)
    if rows is None:
        return _to_pandas(parquet.read(columns=columns))
    n_rows = parquet.metadata.num_rows
    positions = (
        np.arange(n_rows)[rows] if isinstance(rows, slice) else np.asarray(rows, dtype=np.int64)
    )
    if positions.size and (positions.min() < 0 or positions.max() >= n_rows):
        raise ValueError(f"rows out of range for the {split} split of {n_rows} rows")
    starts = np.cumsum(
        [0] + [parquet.metadata.row_group(i).num_rows for i in range(parquet.num_row_groups)]
    )
    groups = sorted(set(np.searchsorted(starts, positions, side="right") - 1))
    table = (
        parquet.read_row_groups(groups, columns=columns)
        if groups
        else parquet.schema_arrow.empty_table()
    )
    local = (
        np.concatenate([np.arange(starts[g], starts[g + 1]) for g in groups])
        if groups
        else np.array([], int)
    )
    index = np.searchsorted(local, positions)
    return _to_pandas(table.take(pa.array(index))).reset_index(drop=True)


def iter_split(survey, split, *, columns=None, batch_size=2048):
    """Yield a split of the survey folder ``survey`` as DataFrames of at most ``batch_size`` rows, in file order."""
    parquet = _open(survey, split)
    columns = _check_columns(parquet, columns)
    for batch in parquet.iter_batches(batch_size=batch_size, columns=columns):
        yield _to_pandas(pa.Table.from_batches([batch]))
