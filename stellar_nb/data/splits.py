"""Survey splits from downloaded SDSS spectra: the tables every notebook and model reads.

:func:`build_splits` reads each spectrum of a catalogue (:func:`stellar_nb.data.sdss.query_sspp`)
downloaded by :func:`stellar_nb.data.sdss.download_spectra`, rejects the unreadable and the
unusable with the reason, and writes the train/validation/test Parquet tables of the package's
one schema (:mod:`stellar_nb.data.tables`), as the simulator does.
"""

import dataclasses
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import tqdm.auto

from stellar_nb import schema
from stellar_nb.data import fits, sdss, tables

__all__ = ["BuildReport", "build_splits"]


@dataclasses.dataclass
class BuildReport:
    """What :func:`build_splits` wrote and rejected.

    Attributes
    ----------
    counts : dict
        Rows written per split.
    rejected : dict
        ``spec_id -> reason`` (the reason names the file).
    notes : dict
        ``spec_id -> note`` for spectra kept despite a quality warning (e.g. NaN pixels masked).
    """

    counts: dict
    rejected: dict
    notes: dict


def _inspect(path, row):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", fits.SpectrumQualityWarning)
        spectrum = fits.read_spectrum(path)
    messages = [
        str(w.message) for w in caught if issubclass(w.category, fits.SpectrumQualityWarning)
    ]
    meta = spectrum.meta
    if (meta["plate"], meta["mjd"], meta["fiber"]) != (row["plate"], row["mjd"], row["fiber"]):
        raise ValueError(
            f"{path}: file holds plate-mjd-fiber {meta['plate']}-{meta['mjd']}-{meta['fiber']}, "
            f"catalogue says {row['plate']}-{row['mjd']}-{row['fiber']}"
        )
    if meta["objclass"] not in (None, "STAR"):
        raise ValueError(f"{path}: CLASS {meta['objclass']} ({meta['subclass']}): not a star")
    if not np.any(spectrum.ivar > 0):
        raise ValueError(f"{path}: no pixel has ivar > 0")
    return spectrum, "; ".join(messages)


def build_splits(
    catalogue, spectra_dir, out_dir, *, sizes=(30_000, 5_000, 15_000), seed=0, progress=True
):
    """Write train/validation/test Parquet tables from a catalogue and its downloaded spectra.

    Every row whose file is missing, unreadable, of another object, not a star or without a
    valid pixel is rejected and reported (never fatal). The usable rows are shuffled with
    ``numpy.random.default_rng(seed)`` and cut into ``sizes``; if fewer rows are usable, the sizes
    shrink in proportion (with a warning).

    Returns
    -------
    BuildReport
    """
    if len(sizes) != len(schema.SPLITS) or min(sizes) < 0:
        raise ValueError(
            f"sizes must be three non-negative counts (train, validation, test), got {sizes}"
        )
    catalogue = sdss.clean_catalogue(catalogue, source="build_splits catalogue")
    spectra_dir, out_dir = Path(spectra_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rejected, notes, usable = {}, {}, []
    rows = list(catalogue.iterrows())
    for position, row in tqdm.auto.tqdm(
        rows, desc="checking spectra", unit="file", disable=not progress
    ):
        path = spectra_dir / sdss.spectrum_path(row)
        try:
            if not path.is_file():
                raise ValueError(f"{path}: not downloaded")
            _, note = _inspect(path, row)
        except ValueError as error:
            rejected[int(row["spec_id"])] = str(error)
            continue
        if note:
            notes[int(row["spec_id"])] = note
        usable.append(position)
    total = sum(sizes)
    if len(usable) < total:
        scaled = [int(len(usable) * size / total) for size in sizes] if total else [0, 0, 0]
        warnings.warn(
            f"only {len(usable)} usable spectra for splits of {tuple(sizes)}; writing {tuple(scaled)}",
            UserWarning,
            stacklevel=2,
        )
        sizes = scaled
    order = np.random.default_rng(seed).permutation(np.asarray(usable, dtype=np.int64))
    bounds = np.cumsum([0, *sizes])
    counts = {}
    for split, start, stop in zip(schema.SPLITS, bounds[:-1], bounds[1:], strict=True):
        records = []
        for position in order[start:stop]:
            row = catalogue.iloc[int(position)]
            spectrum, _ = _inspect(spectra_dir / sdss.spectrum_path(row), row)
            record = {column: row[column] for column in schema.SCALAR_COLUMNS}
            record.update(
                flux=spectrum.flux,
                loglam=spectrum.loglam,
                ivar=spectrum.ivar,
                mask=spectrum.and_mask,
            )
            record.update(
                {
                    column: float(row[column])
                    for column in (*schema.CATALOG_COLUMNS, *schema.UNCERTAINTY_COLUMNS)
                }
            )
            records.append(record)
        frame = pd.DataFrame.from_records(
            records,
            columns=[
                *schema.SCALAR_COLUMNS,
                *schema.ARRAY_COLUMNS,
                *schema.CATALOG_COLUMNS,
                *schema.UNCERTAINTY_COLUMNS,
            ],
        )
        for column in ("spec_id", "plate", "mjd", "fiber"):
            frame[column] = frame[column].astype(np.int64)
        tables.write_split(frame, tables.split_path(out_dir, split))
        counts[split] = len(frame)
    if rejected:
        shown = "; ".join(list(rejected.values())[:3])
        warnings.warn(
            f"{len(rejected)} spectra rejected (see BuildReport.rejected), e.g. {shown}",
            UserWarning,
            stacklevel=2,
        )
    return BuildReport(counts=counts, rejected=rejected, notes=notes)
