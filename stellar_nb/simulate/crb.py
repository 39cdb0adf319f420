"""The Cramer-Rao floor of a survey: the best precision any unbiased estimator could reach per S/N bin.

:func:`crb_summary` reads a few stars of each S/N bin from a split and evaluates
:func:`stellar_nb.emulator.cramer_rao_bound` at their true labels (``stellar-nb simulate`` prints
it; notebook 01 plots it with :func:`stellar_nb.plots.survey`).
"""

import itertools

import numpy as np

from stellar_nb import emulator as emulator_module
from stellar_nb import schema
from stellar_nb.simulate.survey import CHUNK

__all__ = ["crb_summary"]


def crb_summary(
    directory,
    split="test",
    *,
    bins=(10, 15, 20, 30, 50, 80, 125),
    per_bin=40,
    emulator=None,
    seed=0,
):
    """Cramer-Rao bound per S/N bin from survey rows (median sigma of up to ``per_bin`` stars per bin).

    Only the first row groups of the split are read (rows are in random order), so this is cheap.

    Returns
    -------
    pandas.DataFrame
        Columns ``snr_lo``, ``snr_hi``, ``n``, ``crb_teff``, ``crb_feh``, ``crb_logg``.
    """
    import pandas as pd

    from stellar_nb.data import tables

    emulator = emulator or emulator_module.load_emulator()
    snr = tables.read_split(directory, split, columns=["snr"])["snr"].to_numpy()
    head = np.arange(min(len(snr), 8 * CHUNK))
    rng = np.random.default_rng(seed)
    records, chosen = [], []
    for lo, hi in itertools.pairwise(bins):
        members = head[(snr[head] >= lo) & (snr[head] < hi)]
        chosen.append(np.sort(rng.permutation(members)[:per_bin]))
    rows = np.concatenate(chosen)
    frame = tables.read_split(
        directory,
        split,
        rows=rows,
        columns=["loglam", "flux", "ivar", "rv_adop", "snr", *schema.TRUE_COLUMNS],
    )
    sigma = emulator_module.cramer_rao_bound(
        emulator,
        frame[list(schema.TRUE_COLUMNS)].to_numpy(),
        frame["loglam"],
        frame["ivar"],
        frame["rv_adop"].to_numpy(),
        frame["flux"],
    )
    for lo, hi in itertools.pairwise(bins):
        inside = ((frame["snr"] >= lo) & (frame["snr"] < hi)).to_numpy()
        median = np.median(sigma[inside], axis=0) if inside.any() else np.full(3, np.nan)
        records.append(
            {
                "snr_lo": lo,
                "snr_hi": hi,
                "n": int(inside.sum()),
                **{f"crb_{label}": median[i] for i, label in enumerate(schema.LABELS)},
            }
        )
    return pd.DataFrame(records)
