"""``stellar-nb bench real-stars``: how a model does on real spectra, beside the simulated test split.

Real stars are the judge of the simulator and the model: a model that is excellent on simulated
spectra and wrong on real ones teaches something false. This benchmark scores one model on

- **LAMOST**: real LAMOST DR10 low-resolution spectra (``spec-*.fits.gz``) with the LASP labels in a
  ``labels.csv`` beside them (columns ``file, teff, logg, feh, snrg, subclass, ...``), given with
  ``--lamost DIR``. Only stars of :data:`TEFF_RANGE` (the paper's label range) are scored. LASP is
  another pipeline's estimate, not truth: against SSPP it scatters by about 100 K, 0.1-0.15 dex
  ([Fe/H]) and 0.15-0.2 dex (log g), so an error near those figures is as good as any model can show.
  The stars are split in two by a hash of their OBSID: ``LAMOST cal`` may calibrate the model's
  real-star sigma term (``--calibrate``), ``LAMOST val`` stays held out of it.
- **simulated**: the test split of the default simulated survey (true labels).

and prints, for each and per Teff/log g class and S/N bin: per-label MAE, median bias, robust
scatter (1.4826 x median absolute deviation), 1- and 2-sigma coverage of the per-star
uncertainties, the fraction of stars with a trust flag raised (:mod:`stellar_nb.trust`) and the MAE
of flagged and unflagged stars. ``--quick`` scores a fixed subset (every fourth LAMOST star, 500
simulated) in well under a minute.

The per-star table and the summary go to ``--out`` (JSON) for the notebooks to show.
"""

import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from stellar_nb import calibration, doppler, schema

__all__ = [
    "TEFF_RANGE",
    "group_of",
    "load_lamost",
    "score_spectra",
    "star_table",
    "summarise",
]

#: Stars scored: the paper's label range in Teff.
TEFF_RANGE = (4000.0, 9000.0)
#: S/N bins of the breakdown.
SNR_BINS = (10.0, 30.0, 60.0, 120.0, np.inf)
_ROBUST = 1.4826


def load_lamost(directory, *, every=1):
    """Read LAMOST spectra and their LASP labels from ``directory`` (``labels.csv`` + files).

    Parameters
    ----------
    directory : str or pathlib.Path
        Folder with ``labels.csv`` (``file`` relative to it; ``teff``, ``feh``, ``logg``).
    every : int
        Keep every ``every``-th row (a fixed subset for quick runs).

    Returns
    -------
    spectra : list of stellar_nb.data.fits.Spectrum
    labels : pandas.DataFrame
        The rows of ``labels.csv`` read, in the same order.

    Raises
    ------
    FileNotFoundError
        If ``directory`` has no ``labels.csv``.
    """
    from stellar_nb.data import fits

    directory = Path(directory)
    table_path = directory / "labels.csv"
    if not table_path.is_file():
        raise FileNotFoundError(f"{table_path}: no labels.csv in --lamost {directory}")
    labels = pd.read_csv(table_path).iloc[:: int(every)].reset_index(drop=True)
    missing = [c for c in ("file", *schema.LABELS) if c not in labels.columns]
    if missing:
        raise ValueError(f"{table_path}: missing columns {missing}")
    spectra = [fits.read_spectrum(directory / name) for name in labels["file"]]
    return spectra, labels


def group_of(labels):
    """Spectral class of each star from its reference labels: ``K/G/F/A`` + ``V`` (log g >= 3.5) or ``III``."""
    labels = np.asarray(labels, dtype=float)
    teff, logg = labels[:, 0], labels[:, 2]
    letter = np.select([teff < 5300, teff < 6000, teff < 7300], ["K", "G", "F"], "A")
    return np.char.add(letter, np.where(logg >= 3.5, "V", "III"))


def score_spectra(
    model, spectra, reference, *, emulator=None, emulator_error=None, n_draws=16, seed=0
):
    """Predict, attach uncertainties and trust flags, and compare with reference labels.

    Parameters
    ----------
    model : stellar_nb.inference.NumpyModel
    spectra : list of stellar_nb.data.fits.Spectrum
        ``meta["z"]`` gives the radial velocity (relativistic).
    reference : array_like
        (n, 3) reference labels (teff, feh, logg).
    emulator, emulator_error
        For the misfit flag (:func:`stellar_nb.trust.check`); the shipped ones by default.

    Returns
    -------
    pandas.DataFrame
        One row per star: ``ref_*``, ``pred_*``, ``sigma_*``, ``snr``, ``group``, the flag
        columns and ``flagged`` (any flag raised).
    """
    from stellar_nb import emulator as emulator_module
    from stellar_nb import inference, trust
    from stellar_nb.simulate import residuals

    emulator = emulator or emulator_module.load_emulator()
    emulator_error = emulator_error or residuals.load_emulator_error()

    arrays = [[getattr(s, key) for s in spectra] for key in ("loglam", "flux", "ivar", "and_mask")]
    rv = np.array([doppler.velocity_from_redshift(s.meta.get("z") or 0.0) for s in spectra])
    prediction, sigma = model.predict_with_uncertainty(*arrays, rv, n_draws=n_draws, seed=seed)
    rows = [
        {
            "loglam": s.loglam, "flux": s.flux, "ivar": s.ivar, "mask": s.and_mask,
            "snr": s.meta.get("snr"), "objclass": s.meta.get("objclass"),
            "subclass": s.meta.get("subclass"),
        }
        for s in spectra
    ]  # fmt: skip
    prediction = inference.in_schema_order(model, prediction)
    sigma = inference.in_schema_order(model, sigma)
    flags = trust.table(prediction, rows, rv, emulator=emulator, emulator_error=emulator_error)
    snr = [float(s.meta.get("snr") or 0.0) for s in spectra]
    return pd.concat([star_table(reference, prediction, sigma, snr), flags], axis=1)


def star_table(reference, prediction, sigma, snr):
    """Per-star columns ``ref_*``, ``pred_*``, ``sigma_*`` (:data:`~stellar_nb.schema.LABELS`
    order), ``snr`` and ``group`` (:func:`group_of` the reference labels), as :func:`summarise` reads."""
    reference = np.asarray(reference, dtype=float)
    return pd.DataFrame(
        {
            **{f"ref_{label}": reference[:, k] for k, label in enumerate(schema.LABELS)},
            **{f"pred_{label}": prediction[:, k] for k, label in enumerate(schema.LABELS)},
            **{f"sigma_{label}": sigma[:, k] for k, label in enumerate(schema.LABELS)},
            "snr": snr,
            "group": group_of(reference),
        }
    )


def _metrics(frame):
    row = {"n": len(frame)}
    flagged = frame["flagged"].to_numpy(bool)
    row["flagged"] = float(np.mean(flagged)) if len(frame) else np.nan
    for label in schema.LABELS:
        error = (frame[f"pred_{label}"] - frame[f"ref_{label}"]).to_numpy(float)
        sigma = frame[f"sigma_{label}"].to_numpy(float)
        ok = np.isfinite(error)
        e, s = error[ok], sigma[ok]
        row[f"{label}_mae"] = float(np.mean(np.abs(e))) if e.size else np.nan
        row[f"{label}_bias"] = float(np.median(e)) if e.size else np.nan
        row[f"{label}_scatter"] = (
            float(_ROBUST * np.median(np.abs(e - np.median(e)))) if e.size else np.nan
        )
        row[f"{label}_cover1"] = float(np.mean(np.abs(e) <= s)) if e.size else np.nan
        row[f"{label}_cover2"] = float(np.mean(np.abs(e) <= 2 * s)) if e.size else np.nan
        f = flagged[ok]
        row[f"{label}_mae_flagged"] = float(np.mean(np.abs(e[f]))) if f.any() else np.nan
        row[f"{label}_mae_unflagged"] = float(np.mean(np.abs(e[~f]))) if (~f).any() else np.nan
    return row


def summarise(table, name):
    """Summary rows of one scored set: ``all``, each class, each S/N bin (at least 5 stars)."""
    snr_bin = pd.cut(table["snr"], SNR_BINS, right=False)
    groups = [("all", table)]
    groups += [(f"class {g}", part) for g, part in table.groupby("group") if len(part) >= 5]
    groups += [
        (f"S/N {interval.left:g}-{interval.right:g}", part)
        for interval, part in table.groupby(snr_bin, observed=True)
        if len(part) >= 5
    ]
    return pd.DataFrame([{"set": name, "group": g, **_metrics(part)} for g, part in groups])


def _simulated(model, survey, count, seed, emulator, emulator_error):
    from stellar_nb.data import fits, tables

    frame = tables.read_split(survey, "test", rows=slice(0, count))
    spectra = [
        fits.Spectrum(
            flux=row.flux,
            loglam=row.loglam.astype(np.float64),
            ivar=row.ivar,
            and_mask=row.mask,
            meta={
                "z": float(doppler.wavelength_factor(row.rv_adop) - 1.0),
                "snr": float(row.snr),
                "objclass": "STAR",
                "subclass": "",
            },
        )
        for row in frame.itertuples(index=False)
    ]
    reference = frame[list(schema.TRUE_COLUMNS)].to_numpy(float)
    return score_spectra(
        model, spectra, reference, emulator=emulator, emulator_error=emulator_error, seed=seed
    )


def evaluate(model, *, lamost=None, quick=False, simulated=True, seed=0, survey=None, config=None):
    """Score ``model`` on LAMOST (if a folder is given) and the simulated test split.

    Parameters
    ----------
    model : stellar_nb.inference.NumpyModel
    lamost : str or pathlib.Path, optional
        Folder of LAMOST spectra with ``labels.csv``.
    quick : bool
        Score a fixed subset (every fourth LAMOST star, 500 simulated).
    simulated : bool
        Also score the test split of ``survey``.
    seed : int
        Seed of the noise draws.
    survey : str or pathlib.Path, optional
        Survey folder; default :func:`stellar_nb.simulate.resolve_survey` of ``config``.
    config : stellar_nb.config.Config, optional
        Used for the default survey.

    Returns
    -------
    summary : pandas.DataFrame
        :func:`summarise` rows of each set.
    stars : dict
        set name -> per-star table (:func:`score_spectra`).
    """
    from stellar_nb import emulator as emulator_module
    from stellar_nb import simulate
    from stellar_nb.simulate import residuals

    emulator = emulator_module.load_emulator()
    emulator_error = residuals.load_emulator_error()
    stars = {}
    if lamost is not None:
        spectra, labels = load_lamost(lamost, every=4 if quick else 1)
        reference = labels[list(schema.LABELS)].to_numpy(float)
        inside = (reference[:, 0] >= TEFF_RANGE[0]) & (reference[:, 0] <= TEFF_RANGE[1])
        spectra = [s for s, keep in zip(spectra, inside, strict=True) if keep]
        table = score_spectra(
            model,
            spectra,
            reference[inside],
            emulator=emulator,
            emulator_error=emulator_error,
            seed=seed,
        )
        table.insert(0, "file", labels["file"][inside].to_numpy())
        half = _calibration_half(labels[inside])
        stars["LAMOST cal"] = table[half].reset_index(drop=True)
        stars["LAMOST val"] = table[~half].reset_index(drop=True)
    if simulated:
        survey = simulate.resolve_survey(survey, config)
        stars["simulated"] = _simulated(
            model, survey, 500 if quick else 3000, seed, emulator, emulator_error
        )
    summary = pd.concat([summarise(table, name) for name, table in stars.items()])
    return summary.reset_index(drop=True), stars


def _calibration_half(labels):
    """The stars that may calibrate the systematic sigma term: even CRC-32 of the OBSID (or row).

    A hash, not the OBSID's parity: every LAMOST DR10 OBSID in the shared set is even.
    """
    keys = labels["obsid"] if "obsid" in labels.columns else range(len(labels))
    return np.array([zlib.crc32(str(key).encode()) % 2 == 0 for key in keys])


def calibrate(model_dir, table):
    """Fit ``sigma_systematic`` on scored real stars (:func:`score_spectra`) into ``model_dir``."""
    from stellar_nb import inference

    model = inference.NumpyModel.load(model_dir)
    term = np.array([model.sigma_model.get(label, 0.0) for label in schema.LABELS])
    sigma = table[[f"sigma_{label}" for label in schema.LABELS]].to_numpy(float)
    noise = np.sqrt(np.clip(sigma**2 - term**2, 0.0, None))
    residuals = table[[f"pred_{label}" for label in schema.LABELS]].to_numpy(float) - table[
        [f"ref_{label}" for label in schema.LABELS]
    ].to_numpy(float)
    return calibration.calibrate_systematic(
        model_dir,
        residuals,
        noise,
        source=f"LAMOST DR10 LRS stars of {TEFF_RANGE[0]:g}-{TEFF_RANGE[1]:g} K with even CRC-32 of OBSID, "
        "against LASP labels (stellar-nb bench real-stars --calibrate)",
    )


def format_summary(summary):
    """The summary as a fixed-width text table (MAE / bias / scatter / 1-sigma / 2-sigma coverage)."""
    lines = []
    header = (
        f"{'set':10s} {'group':12s} {'n':>5s} {'flag':>5s}  "
        + "  ".join(f"{schema.LABEL_UNITS[l][0]:>36s}" for l in schema.LABELS)  # noqa: E741
    )
    lines.append(header)
    lines.append(
        " " * 35
        + "  ".join(
            f"{'MAE':>7s}{'bias':>7s}{'scat':>7s}{'1sig':>5s}{'2sig':>5s}{'flg/ok':>5s}"
            for _ in schema.LABELS
        )
    )
    for row in summary.to_dict("records"):
        cells = []
        for label in schema.LABELS:
            digits = 0 if label == "teff" else 3
            unflagged = row[f"{label}_mae_unflagged"]
            ratio = row[f"{label}_mae_flagged"] / unflagged if unflagged else np.nan
            cells.append(
                f"{row[f'{label}_mae']:7.{digits}f}{row[f'{label}_bias']:7.{digits}f}"
                f"{row[f'{label}_scatter']:7.{digits}f}{100 * row[f'{label}_cover1']:5.0f}"
                f"{100 * row[f'{label}_cover2']:5.0f}{ratio:5.1f}x"
            )
        lines.append(
            f"{row['set']:10s} {row['group']:12s} {row['n']:5d} {100 * row['flagged']:4.0f}%  "
            + "  ".join(cells)
        )
    return "\n".join(lines)
