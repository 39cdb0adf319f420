"""Survey generation: labels, catalogue errors, the split and atomic, streamed Parquet output.

The Parquet tables follow :mod:`stellar_nb.schema` and are written in row groups of
:data:`CHUNK` rows, so 50,000 spectra never sit in memory at once. Every random number comes from
a generator seeded by (seed, stage, split, chunk), so the same seed gives byte-identical files.
"""

import concurrent.futures
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from stellar_nb import emulator as emulator_module
from stellar_nb import files, schema
from stellar_nb.simulate import observe, residuals

__all__ = [
    "LABEL_RANGES",
    "SPLIT_FRACTIONS",
    "check_label_ranges",
    "is_complete",
    "resolve_survey",
    "sample_labels",
    "simulate_survey",
    "split_sizes",
]

#: The paper's split: 30,000 / 5,000 / 15,000 of 50,000.
SPLIT_FRACTIONS = (0.6, 0.1, 0.3)
#: Rows per Parquet row group (and per generation chunk).
CHUNK = 1024
MANIFEST = schema.SURVEY_MANIFEST


def split_sizes(n, fractions=SPLIT_FRACTIONS):
    """Split ``n`` into train / validation / test sizes (60 / 10 / 30 %).

    Raises
    ------
    ValueError
        If ``n`` is not a positive integer (at least 3).
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 3:
        raise ValueError(f"n must be an integer >= 3 (one spectrum per split at least), got {n!r}")
    n_train = round(n * fractions[0])
    n_validation = max(round(n * fractions[1]), 1)
    return n_train, n_validation, int(n) - n_train - n_validation


#: Survey label ranges (SEGUE/SSPP-like); [Fe/H]'s lower end is the emulator's (MILES's) lowest.
LABEL_RANGES = {"teff": (4000.0, 9200.0), "feh": (-4.0, 0.7), "logg": (0.2, 5.0)}


def check_label_ranges(label_ranges, emulator):
    """Merge ``label_ranges`` into :data:`LABEL_RANGES`, clipped to the emulator where not given.

    Raises
    ------
    ValueError
        If a label is unknown, a range is empty, or a requested range leaves the emulator's bounds.
    """
    ranges = {}
    for label, (lo, hi) in LABEL_RANGES.items():
        ranges[label] = (max(lo, emulator.bounds[label][0]), min(hi, emulator.bounds[label][1]))
    for label, value in (label_ranges or {}).items():
        if label not in ranges:
            raise ValueError(
                f"unknown label {label!r} in label_ranges; allowed: {', '.join(schema.LABELS)}"
            )
        lo, hi = (float(v) for v in value)
        bound = emulator.bounds[label]
        if not lo < hi:
            raise ValueError(f"label range {label} = ({lo}, {hi}) is empty")
        if lo < bound[0] or hi > bound[1]:
            raise ValueError(
                f"label range {label} = ({lo}, {hi}) is outside the emulator's bounds {bound}"
            )
        ranges[label] = (lo, hi)
    return ranges


def sample_labels(n, rng, emulator, label_ranges=None):
    """Draw ``n`` (teff, feh, logg) from a SEGUE/SSPP-like mixture inside the emulator's support.

    Components (weights): F/G turn-off and dwarfs (0.42), K dwarfs (0.12), subgiants (0.10), red
    giant branch with metal-poor stars hotter at a given log g (0.22), blue horizontal branch
    (0.05), A-type and blue-straggler dwarfs (0.05), extremely metal-poor turn-off stars (0.04).
    Metallicity is a thin/thick-disc + halo mixture. Draws outside ``label_ranges`` (default
    :data:`LABEL_RANGES`: Teff 4000-9200 K, log g 0.2-5.0, [Fe/H] from the emulator's lower bound
    to +0.7) or outside the emulator's support are redrawn.

    Raises
    ------
    ValueError
        If ``label_ranges`` leaves the emulator's bounds (see :func:`check_label_ranges`), or
        rejects nearly every draw.
    """
    ranges = check_label_ranges(label_ranges, emulator)
    labels = np.empty((0, 3))
    attempts = 0
    while len(labels) < n:
        m = max(2 * (n - len(labels)), 256)
        component = rng.choice(7, size=m, p=[0.42, 0.12, 0.10, 0.22, 0.05, 0.05, 0.04])
        halo = rng.random(m) < 0.45
        feh = np.where(halo, rng.normal(-1.5, 0.55, m), rng.normal(-0.45, 0.35, m))
        teff = rng.normal(6000, 450, m)
        logg = rng.normal(4.2, 0.25, m)
        k = component == 1
        teff[k], logg[k] = rng.normal(4700, 350, k.sum()), rng.normal(4.6, 0.15, k.sum())
        k = component == 2
        teff[k], logg[k] = rng.normal(5500, 350, k.sum()), rng.normal(3.7, 0.2, k.sum())
        k = component == 3
        logg[k] = rng.uniform(0.4, 3.6, k.sum())
        teff[k] = 3950 + 330 * (logg[k] - 0.5) - 160 * feh[k] + rng.normal(0, 120, k.sum())
        k = component == 4
        teff[k], logg[k], feh[k] = (
            rng.uniform(7300, 9200, k.sum()),
            rng.normal(3.3, 0.3, k.sum()),
            rng.normal(-1.8, 0.4, k.sum()),
        )
        k = component == 5
        teff[k], logg[k], feh[k] = (
            rng.uniform(6800, 9200, k.sum()),
            rng.normal(4.0, 0.25, k.sum()),
            rng.normal(-0.7, 0.6, k.sum()),
        )
        k = component == 6
        feh[k] = rng.uniform(-3.5, -2.3, k.sum())
        draw = np.column_stack([teff, feh, logg])
        ok = np.ones(m, dtype=bool)
        for values, label in zip((teff, feh, logg), schema.LABELS, strict=True):
            ok &= (values >= ranges[label][0]) & (values <= ranges[label][1])
        attempts += m
        if attempts > 200 * n + 100_000:
            raise ValueError(f"label ranges {ranges} leave (almost) no star the emulator supports")
        draw = draw[ok]
        labels = np.vstack([labels, draw[emulator.in_bounds(draw)]])
    return labels[:n]


def _catalogue(labels, snr, rng):
    """SSPP-like catalogue labels and quoted uncertainties (internal errors, larger at low S/N)."""
    hot = np.where(labels[:, 0] > 7500, 1.3, 1.0)
    uncertainty = np.column_stack(
        [
            np.hypot(55.0, 1400.0 / snr),
            hot * np.hypot(0.08, 1.5 / snr),
            hot * np.hypot(0.15, 2.0 / snr),
        ]
    )
    return labels + rng.normal(size=labels.shape) * uncertainty, uncertainty


def _draw_survey(n, seed, emulator, label_ranges=None, bank=None):
    """All per-star scalars: labels, observing conditions, plates, split assignment."""
    rng = np.random.default_rng([seed, 0])
    labels = sample_labels(n, rng, emulator, label_ranges)
    star = observe.draw_observations(labels, rng)
    star["catalog"], star["uncertainty"] = _catalogue(labels, star["snr"], rng)
    star["labels"] = labels
    star["order"] = rng.permutation(n)
    if bank is not None:
        star["residual"] = bank.draw(labels, rng)
    return star


def _table(star, rows, emulator, rng, bank):
    pixels = observe.observe_spectra(
        emulator, {key: value[rows] for key, value in star.items() if key != "order"}, rng, bank
    )
    columns = {
        "spec_id": pa.array(star["spec_id"][rows]),
        "plate": pa.array(star["plate"][rows]),
        "mjd": pa.array(star["mjd"][rows]),
        "fiber": pa.array(star["fiber"][rows]),
        "ra": pa.array(star["ra"][rows]),
        "dec": pa.array(star["dec"][rows]),
        "snr": pa.array(pixels["snr"]),
        "rv_adop": pa.array(star["rv"][rows]),
    }
    offsets = pa.array(pixels["offsets"])
    for name in schema.ARRAY_COLUMNS:
        columns[name] = pa.LargeListArray.from_arrays(offsets, pa.array(pixels[name]))
    for i, label in enumerate(schema.LABELS):
        columns[f"catalog_{label}"] = pa.array(star["catalog"][rows, i])
    for i, label in enumerate(schema.LABELS):
        columns[f"catalog_{label}_unc"] = pa.array(star["uncertainty"][rows, i])
    for i, label in enumerate(schema.LABELS):
        columns[f"true_{label}"] = pa.array(star["labels"][rows, i])
    return pa.Table.from_pydict(columns)


def _write_split(path, star, rows, emulator, seed, split_index, bank):
    """Write one split chunk by chunk; the next chunk is generated while the last is compressed."""
    writer, pending = None, None
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        try:
            for chunk_index, start in enumerate(range(0, len(rows), CHUNK)):
                rng = np.random.default_rng([seed, 1, split_index, chunk_index])
                table = _table(star, rows[start : start + CHUNK], emulator, rng, bank)
                if writer is None:
                    writer = pq.ParquetWriter(
                        path,
                        table.schema,
                        compression="zstd",
                        use_dictionary=False,
                        write_statistics=[
                            n for n in table.column_names if n not in schema.ARRAY_COLUMNS
                        ],
                        use_byte_stream_split=["flux", "ivar"],
                    )
                if pending is not None:
                    pending.result()
                pending = pool.submit(writer.write_table, table, row_group_size=CHUNK)
            if pending is not None:
                pending.result()
        finally:
            if pending is not None:
                concurrent.futures.wait([pending])  # never close under a running write
            if writer is not None:
                writer.close()


def _check_out_dir(out_dir):
    out_dir = Path(out_dir)
    parent = out_dir.parent
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"--out {out_dir} exists and is not a folder")
    if not parent.is_dir():
        raise FileNotFoundError(f"folder {parent} (parent of --out {out_dir}) does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(f"folder {parent} (parent of --out {out_dir}) is not writable")
    return out_dir


def _remove_stale_staging(out_dir):
    """Remove killed runs' staging: old ``.NAME.*.part`` folders, and ``.NAME.old`` (debris)."""
    files.remove_stale_temporaries(out_dir.parent, f".{out_dir.name}.*.part")
    old = out_dir.with_name(f".{out_dir.name}.old")
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old, ignore_errors=True)


def simulate_survey(
    n,
    seed,
    out_dir,
    *,
    n_fits=0,
    sizes=None,
    emulator=None,
    label_ranges=None,
    residual_bank=None,
):
    """Generate a simulated survey: ``out_dir/{train,validation,test}.parquet`` and ``survey.json``.

    Parameters
    ----------
    n : int
        Number of spectra over the three splits.
    seed : int
        Seed of everything; the same seed gives byte-identical Parquet files.
    out_dir : str or pathlib.Path
        Destination folder; its parent must exist. Everything is written into a temporary sibling
        folder that replaces ``out_dir`` only once complete, so nothing partial is left. Staging
        folders of earlier, killed runs (``.NAME.*.part`` older than this process,
        ``.NAME.old``) are removed first; the finished folder has the usual modes (0777 less the
        umask, not :func:`tempfile.mkdtemp`'s 0700).
    n_fits : int
        Also write this many test-split spectra as SDSS ``spec-PLATE-MJD-FIBER.fits`` files in
        ``out_dir/fits`` (DR12 data model, :func:`stellar_nb.data.spec_lite.write_spectrum`).
    sizes : tuple of int, optional
        (train, validation, test) sizes summing to ``n``; default 60 / 10 / 30 %.
    emulator : stellar_nb.emulator.Emulator, optional
        Default: the shipped one.
    label_ranges : dict, optional
        label -> (lo, hi) to narrow :data:`LABEL_RANGES`; must lie inside the emulator's bounds.
    residual_bank : stellar_nb.simulate.residuals.ResidualBank, "fit" or None
        Held-out library residuals put on each emulated spectrum
        (:mod:`stellar_nb.simulate.residuals`; "fit" makes them from the library spectra, which
        needs ``sdss-mangadap``). ``None`` (the default) gives the emulator's mean
        spectra: models trained with the residuals did worse on real LAMOST stars (see the
        module docstring of :mod:`stellar_nb.simulate.residuals`).

    Returns
    -------
    pathlib.Path
        ``out_dir``.

    Raises
    ------
    ValueError
        Bad ``n``, ``seed``, ``sizes``, ``n_fits`` or ``label_ranges`` (nothing is written).
    FileNotFoundError, PermissionError, FileExistsError
        If ``out_dir``'s parent does not exist or is not writable, or ``out_dir`` is a file.
    """
    sizes = tuple(int(s) for s in sizes) if sizes is not None else split_sizes(n)
    if len(sizes) != 3 or min(sizes) < 1 or sum(sizes) != n:
        raise ValueError(f"sizes {sizes} must be three positive integers summing to n = {n}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if not isinstance(n_fits, (int, np.integer)) or not 0 <= n_fits <= sizes[2]:
        raise ValueError(f"n_fits must be between 0 and the test size {sizes[2]}, got {n_fits!r}")
    out_dir = _check_out_dir(out_dir)
    emulator = emulator or emulator_module.load_emulator()
    check_label_ranges(label_ranges, emulator)
    if isinstance(residual_bank, str):
        if residual_bank != "fit":
            raise ValueError(
                f"residual_bank must be a ResidualBank, 'fit' or None, got {residual_bank!r}"
            )
        residual_bank = residuals.fit_residual_bank(degree=emulator.metadata.get("degree", 4))
    star = _draw_survey(n, int(seed), emulator, label_ranges, residual_bank)
    bounds = np.cumsum((0, *sizes))
    _remove_stale_staging(out_dir)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".part", dir=out_dir.parent))
    try:
        files.give_normal_mode(staging)
        for index, split in enumerate(schema.SPLITS):
            rows = star["order"][bounds[index] : bounds[index + 1]]
            _write_split(
                staging / f"{split}.parquet", star, rows, emulator, int(seed), index, residual_bank
            )
        if n_fits:
            observe.write_fits(staging / "fits", staging / "test.parquet", n_fits)
        manifest = {
            "n": int(n),
            "seed": int(seed),
            "sizes": dict(zip(schema.SPLITS, sizes, strict=True)),
            "emulator": emulator.metadata,
            "residual_bank": None if residual_bank is None else residual_bank.metadata,
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            out_dir.rename(old)
            staging.rename(out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


def is_complete(directory, n=None, seed=None, sizes=None):
    """Whether ``directory`` holds a complete survey (optionally of these n, seed and sizes)."""
    directory = Path(directory)
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    if not all((directory / f"{split}.parquet").is_file() for split in schema.SPLITS):
        return False
    wanted = {
        "n": n,
        "seed": seed,
        "sizes": dict(zip(schema.SPLITS, sizes, strict=True)) if sizes else None,
    }
    return all(value is None or manifest.get(key) == value for key, value in wanted.items())


def resolve_survey(survey=None, config=None):
    """Return the survey folder to use: ``survey``, else ``$STELLAR_NB_SURVEY_DIR``, else the default.

    The default is the simulated survey of ``config`` (its ``survey_dir``, split sizes and
    ``seed``), generated on first use and reused afterwards.

    Parameters
    ----------
    survey : str or pathlib.Path, optional
        An explicit survey folder; it must exist.
    config : stellar_nb.config.Config, optional
        Used for the default survey; default :func:`~stellar_nb.config.get_config`.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    FileNotFoundError
        If the explicit (or environment) folder does not exist.
    """
    from stellar_nb.config import get_config, survey_from_environment

    survey = survey or survey_from_environment()
    if survey:
        survey = Path(survey).expanduser()
        if not survey.is_dir():
            raise FileNotFoundError(f"survey folder {survey} does not exist")
        return survey
    config = config or get_config()
    sizes = (config.n_train, config.n_validation, config.n_test)
    if is_complete(config.survey_dir, config.n_total, config.seed, sizes):
        return config.survey_dir
    config.survey_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        return simulate_survey(config.n_total, config.seed, config.survey_dir, sizes=sizes)
    except OSError:
        # another process (a parallel test run, a second notebook) may have finished it first
        if is_complete(config.survey_dir, config.n_total, config.seed, sizes):
            return config.survey_dir
        raise
