"""The paper's own numbers (Barreto & Eisencraft, arXiv:2606.13868), for side-by-side reports.

Copied from the paper's text as kept in ``../shared/reference/paper-2606.13868.md``. That copy
lost the bodies of Tables 1-5 (only their captions survive), so a cell holds a number only where
the text states it: the abstract and section 6 give the proposed model's test MAE, its range-
normalised errors and the test ranges, its parameter count (542,771) and the DNN's
("approximately 13.7 million"). Every other cell is NaN; :data:`CLAIMS` keeps what the text says
about each table in words. Fill the NaN cells from the arXiv HTML tables when a copy is at hand.

The row names are those of :func:`stellar_nb.comparison.compare`'s table.
"""

import math

import pandas as pd

from stellar_nb import schema

__all__ = [
    "ARXIV",
    "CLAIMS",
    "MAE_PERCENT_OF_RANGE",
    "PARAMETERS",
    "SPLITS",
    "TEST_MAE",
    "TEST_RANGE",
    "table",
]

#: The paper's arXiv identifier.
ARXIV = "2606.13868"

#: Split sizes (section 3): train, validation, test.
SPLITS = {"train": 30_000, "validation": 5_000, "test": 15_000}

#: Test-set MAE of the proposed model (abstract; Tables 2 and 3), physical units.
TEST_MAE = {"teff": 59.76, "feh": 0.103, "logg": 0.130}

#: Empirical test-set range of each label (section 6, "approximately"), physical units.
TEST_RANGE = {"teff": 5441.0, "feh": 4.97, "logg": 4.81}

#: The proposed model's test MAE as a percentage of the test range (section 6).
MAE_PERCENT_OF_RANGE = {"teff": 1.10, "feh": 2.07, "logg": 2.70}

#: Trainable parameters stated in the text (section 6; the DNN's is "approximately").
PARAMETERS = {"residual MLP (paper)": 542_771, "DNN (Li et al. 2017)": 13_700_000}

#: What the text says about each table, in words.
CLAIMS = {
    1: "ranges of the catalogue labels in the train, validation and test splits; the test "
    "ranges are about 5441 K, 4.97 dex and 4.81 dex",
    2: "the proposed network reduces the linear baselines' (OLS, ridge) errors by more than 50% "
    "on all three labels",
    3: "the DNN needs about 13.7 million parameters (one network per label); the proposed "
    "model has 542,771",
    4: "relative to the DNN (= 1.00): the DNN is slightly better on Teff, the proposed model "
    "comparable on all three labels with far fewer parameters and a shorter inference time "
    "(15,000 test spectra, mean of 10 runs); the CNN is worse on all three labels",
    5: "relative to the proposed model (= 1.00): no skip connections degrades every label; no "
    "skip and no LayerNorm degrades further, mostly Teff and log g; single-task models reach "
    "similar accuracy with nearly three times the parameters and a longer inference time",
}

_NAN = math.nan
_MAES = [f"mae_{label}" for label in schema.LABELS]


def _rows(rows, columns):
    frame = pd.DataFrame(
        [[values.get(column, _NAN) for column in columns] for values in rows.values()],
        index=list(rows),
        columns=columns,
        dtype=float,
    )
    frame.index.name = "model"
    return frame


def table(number):
    """The paper's Table ``number`` (1-5) as far as its text gives it; NaN where it does not.

    Parameters
    ----------
    number : {1, 2, 3, 4, 5}

    Returns
    -------
    pandas.DataFrame
        Table 1: one row per split, ``<label>_range`` columns (physical units). Tables 2 and 3:
        one row per model, ``mae_<label>`` (physical units), and for Table 3 ``parameters`` and
        ``inference_s``. Tables 4 and 5: the same columns relative to the DNN and to the proposed
        model (whose row is 1 by definition).

    Raises
    ------
    ValueError
        If ``number`` is not 1 to 5.
    """
    mlp, dnn, cnn = "residual MLP (paper)", "DNN (Li et al. 2017)", "CNN (Fabbro et al. 2017)"
    relative = [*_MAES, "parameters", "inference_s"]
    if number == 1:
        frame = pd.DataFrame(
            {f"{label}_range": [_NAN, _NAN, TEST_RANGE[label]] for label in schema.LABELS},
            index=list(SPLITS),
            dtype=float,
        )
        frame.index.name = "split"
        return frame
    if number == 2:
        return _rows({"OLS": {}, "Ridge": {}, mlp: _mae(TEST_MAE)}, _MAES)
    if number == 3:
        return _rows(
            {
                mlp: {**_mae(TEST_MAE), "parameters": PARAMETERS[mlp]},
                cnn: {},
                dnn: {"parameters": PARAMETERS[dnn]},
            },
            relative,
        )
    if number == 4:
        return _rows(
            {
                mlp: {"parameters": PARAMETERS[mlp] / PARAMETERS[dnn]},
                cnn: {},
                dnn: dict.fromkeys(relative, 1.0),
            },
            relative,
        )
    if number == 5:
        names = [mlp, "no skip", "no skip, no LayerNorm", "single-task"]
        return _rows(
            {name: dict.fromkeys(relative, 1.0) if name == mlp else {} for name in names}, relative
        )
    raise ValueError(f"the paper has Tables 1 to 5, not {number!r}")


def _mae(values):
    return {f"mae_{label}": value for label, value in values.items()}
