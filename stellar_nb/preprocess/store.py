"""Preprocessed survey folders: written under a run manifest, loaded only when whole and consistent.

``stellar-nb preprocess`` (:func:`preprocess_survey`) writes ``{split}_X.npy``,
``{split}_meta.npz`` and ``preprocessor.json`` into a folder, and ``run.json`` beside them:

- the inputs' **fingerprint**: :func:`stellar_nb.data.tables.fingerprint` of the survey (SHA-256
  of ``survey.json`` and of every split's table: a regenerated or edited table has another), plus every
  preprocessor setting that changes the arrays (method, grid, bad-pixel bits, label source,
  input variant);
- the **config** of the run (splits asked for, batch size, threads), which does not change them;
- the **completion** of each split (rows, file sizes and hashes), and ``complete: true`` last.

The manifest is rewritten as incomplete *before* anything else is touched, so a run that is
killed at any point leaves a folder that :func:`load_split` refuses; the next run with other
inputs deletes the earlier run's arrays rather than mixing them with its own, and a folder of the
same inputs keeps the splits it was not asked to redo.

With a Dask client (``stellar-nb preprocess --dask ADDRESS``) each split is cut into ranges of
``batch_size`` rows, preprocessed on the workers (:func:`preprocess_batch`) and written here in
row order: the same arrays as the serial run, byte for byte.
"""

import hashlib
import json
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

from stellar_nb import files, schema
from stellar_nb.data import tables

__all__ = [
    "MANIFEST",
    "PreprocessedFolderError",
    "folder_problems",
    "input_fingerprint",
    "load_preprocessor",
    "load_split",
    "preprocess_batch",
    "preprocess_survey",
]

MANIFEST = "run.json"
_FORMAT = 1
_SETTINGS = ("method", "grid_size", "grid_start", "grid_stop", "fatal_bits", "label_source")


class PreprocessedFolderError(ValueError):
    """A preprocessed folder that is missing, partial, or mixes runs (the message names it)."""


def _outputs(split):
    return (f"{split}_X.npy", f"{split}_meta.npz")


def input_fingerprint(survey, preprocessor):
    """What the arrays of a run depend on: the survey's tables and the preprocessor's settings.

    Parameters
    ----------
    survey : str or pathlib.Path
        Survey folder (``{split}.parquet``, usually ``survey.json``).
    preprocessor : stellar_nb.preprocess.Preprocessor
        Its options (not its fitted scaler, which follows from the train table).

    Returns
    -------
    dict
        JSON-able; two runs with equal fingerprints write identical arrays.

    Raises
    ------
    FileNotFoundError
        If a split table is missing (the message names it).
    """
    state = preprocessor.to_dict()
    settings = {name: state[name] for name in _SETTINGS}
    settings["continuum_degree"] = int(preprocessor.continuum_degree)
    return {
        **tables.fingerprint(survey),
        "preprocessor": settings,
        "drop_flagged": True,
    }


def _digest(fingerprint):
    return hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()


def _read_manifest(folder):
    try:
        manifest = files.read_json(Path(folder) / MANIFEST)
    except (FileNotFoundError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) and manifest.get("format") == _FORMAT else None


def _split_problems(folder, split, record):
    """Why a split's files do not match their manifest record (empty when they do)."""
    problems = []
    X_name, meta_name = _outputs(split)
    try:
        for name in (X_name, meta_name):
            path = folder / name
            if not path.is_file():
                problems.append(f"{name} is missing")
            elif path.stat().st_size != record["files"][name]["bytes"]:
                problems.append(f"{name} is not the file this run wrote (size differs)")
        if not problems and (
            files.sha256sum(folder / meta_name) != record["files"][meta_name]["sha256"]
        ):
            problems.append(f"{meta_name} is not the file this run wrote (SHA-256 differs)")
    except (KeyError, TypeError):
        problems.append(f"{MANIFEST} has a malformed record of the {split} split")
    return problems


def folder_problems(folder, fingerprint=None):
    """Why ``folder`` is not a complete, consistent preprocessed run (empty list: it is).

    Parameters
    ----------
    folder : str or pathlib.Path
    fingerprint : dict, optional
        Also require these inputs (:func:`input_fingerprint`).

    Returns
    -------
    list of str
    """
    folder = Path(folder)
    manifest = _read_manifest(folder)
    if manifest is None:
        return [f"no readable {MANIFEST} (not written by stellar-nb preprocess, or interrupted)"]
    problems = []
    if not manifest.get("complete"):
        problems.append(f"{MANIFEST} says the run did not finish (killed or failed)")
    if fingerprint is not None and manifest.get("fingerprint_sha256") != _digest(fingerprint):
        problems.append("it was made from other inputs (survey tables or preprocessor settings)")
    for split, record in manifest.get("splits", {}).items():
        problems.extend(_split_problems(folder, split, record))
    preprocessor = folder / "preprocessor.json"
    if manifest.get("complete"):
        if not preprocessor.is_file():
            problems.append("preprocessor.json is missing")
        elif files.sha256sum(preprocessor) != manifest.get("preprocessor_sha256"):
            problems.append("preprocessor.json is not the file this run wrote")
    return problems


def _require_complete(folder, split=None):
    folder = Path(folder)
    problems = folder_problems(folder)
    manifest = _read_manifest(folder)
    if not problems and split is not None and split not in manifest["splits"]:
        problems = [f"the run did not preprocess the {split} split"]
    if problems:
        raise PreprocessedFolderError(
            f"preprocessed folder {folder} is incomplete or mixed: {'; '.join(problems)}; "
            f"run `stellar-nb preprocess --out {folder}` again to rebuild it"
        )
    return manifest


def load_split(folder, split, mmap_mode="r"):
    """Load one split of a complete preprocessed folder.

    Parameters
    ----------
    folder : str or pathlib.Path
    split : {"train", "validation", "test"}
    mmap_mode : {"r", None}
        Memory-map ``X`` (default) or read it into memory.

    Returns
    -------
    X : numpy.ndarray
        Float32 (n, grid size).
    labels : numpy.ndarray
        (n, 3) in physical units.
    meta : dict
        ``spec_id`` and ``flag`` arrays.

    Raises
    ------
    PreprocessedFolderError
        If the folder's manifest is missing or partial, it lacks ``split``, or its files are not
        the ones the run recorded (the message names the folder and what is wrong).
    """
    if split not in schema.SPLITS:
        raise ValueError(f"split must be one of {schema.SPLITS}, got {split!r}")
    folder = Path(folder)
    manifest = _require_complete(folder, split)
    X_name, meta_name = _outputs(split)
    X = np.load(folder / X_name, mmap_mode=mmap_mode)
    with np.load(folder / meta_name) as meta:
        labels, spec_id, flag = meta["labels"], meta["spec_id"], meta["flag"]
    if not len(X) == len(labels) == manifest["splits"][split]["rows"]:
        raise PreprocessedFolderError(
            f"preprocessed folder {folder}: {X_name} has {len(X)} rows, {meta_name} "
            f"{len(labels)}, the manifest {manifest['splits'][split]['rows']}"
        )
    return X, labels, {"spec_id": spec_id, "flag": flag}


def load_preprocessor(folder):
    """The fitted :class:`~stellar_nb.preprocess.Preprocessor` of a complete preprocessed folder."""
    from stellar_nb.preprocess.pipeline import Preprocessor

    _require_complete(folder)
    return Preprocessor.load(Path(folder) / "preprocessor.json")


def _write_split(preprocessor, survey, out, split, batch_size, threads, client=None):
    X_name, meta_name = _outputs(split)
    if client is None:
        X, labels, scalars = preprocessor.transform_split(
            survey, split, batch_size=batch_size, threads=threads, out=out / X_name
        )
        rows = int(X.shape[0])
        del X
        spec_id, flag = scalars["spec_id"].to_numpy(), scalars["flag"].to_numpy()
    else:
        rows, labels, spec_id, flag = _transform_on_cluster(
            client, preprocessor, survey, split, int(batch_size), out / X_name
        )
    with files.atomic_path(out / meta_name) as temporary:
        np.savez(temporary, labels=labels, spec_id=spec_id, flag=flag)
    return {
        "rows": rows,
        "files": {
            X_name: {"bytes": (out / X_name).stat().st_size},
            meta_name: {
                "bytes": (out / meta_name).stat().st_size,
                "sha256": files.sha256sum(out / meta_name),
            },
        },
    }


def preprocess_batch(preprocessor, task):
    """Preprocess one range of a split's rows (what a Dask worker runs).

    Parameters
    ----------
    preprocessor : stellar_nb.preprocess.Preprocessor
        Sent to each worker once.
    task : tuple
        ``(survey, split, rows)``: the survey folder, the split and a slice of its rows.

    Returns
    -------
    X : numpy.ndarray
        Float32 rows of the usable spectra.
    labels : numpy.ndarray
        Their labels in physical units.
    spec_id, flag : numpy.ndarray
        Their ids and preprocessing flags (0).
    """
    from stellar_nb.preprocess import pipeline

    survey, split, rows = task
    X, labels, scalars = pipeline.preprocess_rows(
        survey,
        split,
        rows,
        columns=["spec_id"],
        targets=pipeline.label_columns(preprocessor.label_source),
        method=preprocessor.method,
        grid=preprocessor.grid,
        fatal_bits=preprocessor.fatal_bits,
        continuum_degree=preprocessor.continuum_degree,
    )
    return (
        X.astype("<f4", copy=False),
        labels,
        scalars["spec_id"].to_numpy(),
        scalars["flag"].to_numpy(),
    )


def _transform_on_cluster(client, preprocessor, survey, split, batch_size, X_path):
    """:meth:`~stellar_nb.preprocess.Preprocessor.transform_split` with the batches on Dask."""
    from stellar_nb import scale
    from stellar_nb.preprocess import pipeline

    total = len(tables.read_split(survey, split, columns=["spec_id"]))
    tasks = [
        (str(survey), split, slice(begin, min(begin + batch_size, total)))
        for begin in range(0, total, batch_size)
    ]
    labels, spec_ids, flags, rows = [], [], [], 0
    # rows go to a raw scratch file in order; the .npy is written once their number is known
    with tempfile.TemporaryFile(prefix=f".{X_path.name}.", suffix=".raw", dir=X_path.parent) as raw:
        for X, label, spec_id, flag in scale.ordered_map(
            client, preprocess_batch, tasks, shared=preprocessor
        ):
            X.tofile(raw)
            rows += len(X)
            labels.append(label)
            spec_ids.append(spec_id)
            flags.append(flag)
        pipeline.assemble_npy(raw, X_path, (rows, preprocessor.grid.size))
    if not labels:
        return 0, np.empty((0, 3)), np.empty(0), np.empty(0, dtype=int)
    return rows, np.concatenate(labels), np.concatenate(spec_ids), np.concatenate(flags)


def preprocess_survey(
    survey,
    out,
    preprocessor,
    *,
    splits=schema.SPLITS,
    batch_size=1024,
    threads=1,
    progress=None,
    client=None,
):
    """Preprocess survey splits into ``out`` under a run manifest (see the module docstring).

    Parameters
    ----------
    survey : str or pathlib.Path
        Survey folder.
    out : str or pathlib.Path
        Output folder (made if missing). Splits of an earlier complete run of the same inputs
        that are not in ``splits`` are kept; everything of other inputs or of a partial run is
        deleted first. Temporaries of earlier killed runs are removed.
    preprocessor : stellar_nb.preprocess.Preprocessor
        Options; its label scaler is (re)fitted on the train split.
    splits : sequence of str
    batch_size, threads : int
        As for :func:`~stellar_nb.preprocess.pipeline.prepare_split` (they do not change the
        arrays).
    progress : callable, optional
        Called as ``progress(split, rows, seconds)`` after each split.
    client : distributed.Client, optional
        Preprocess the batches on this Dask cluster (:func:`stellar_nb.scale.cluster`); the
        arrays are the serial run's.

    Returns
    -------
    dict
        The final manifest.
    """
    splits = list(dict.fromkeys(splits))
    unknown = [split for split in splits if split not in schema.SPLITS]
    if unknown:
        raise ValueError(f"splits must be among {schema.SPLITS}, got {unknown}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names = [name for split in schema.SPLITS for name in _outputs(split)]
    names += ["preprocessor.json", MANIFEST]
    files.remove_stale_temporaries(out, [f".{name}.*" for name in names])
    preprocessor.fit_split(survey, "train")
    fingerprint = input_fingerprint(survey, preprocessor)
    previous = _read_manifest(out)
    kept = {}
    if previous is not None and previous.get("fingerprint_sha256") == _digest(fingerprint):
        kept = {
            split: record
            for split, record in previous.get("splits", {}).items()
            if split not in splits and not _split_problems(out, split, record)
        }
    manifest = {
        "format": _FORMAT,
        "run_id": uuid.uuid4().hex,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "fingerprint": fingerprint,
        "fingerprint_sha256": _digest(fingerprint),
        "config": {"splits": splits, "batch_size": int(batch_size), "threads": int(threads)},
        "complete": False,
        "splits": kept,
    }
    # mark the folder incomplete before touching anything, then delete what is not kept
    files.write_json(out / MANIFEST, manifest)
    for split in schema.SPLITS:
        if split not in kept:
            for name in _outputs(split):
                (out / name).unlink(missing_ok=True)
    (out / "preprocessor.json").unlink(missing_ok=True)
    for split in splits:
        start = time.perf_counter()
        manifest["splits"][split] = _write_split(
            preprocessor, survey, out, split, batch_size, threads, client
        )
        files.write_json(out / MANIFEST, manifest)
        if progress is not None:
            progress(split, manifest["splits"][split]["rows"], time.perf_counter() - start)
    preprocessor.save(out / "preprocessor.json")
    manifest["preprocessor_sha256"] = files.sha256sum(out / "preprocessor.json")
    manifest["complete"] = True
    files.write_json(out / MANIFEST, manifest)
    return manifest
