"""The data schema shared by every source: the simulated survey, SDSS DR12 and the paper's benchmark.

One table per split (``train``, ``validation``, ``test``), one row per spectrum, stored as Parquet.
The columns follow the paper's public benchmark (Hugging Face
``BrunoBarreto/sdss_dr12_stars_regression``); the simulated survey adds the true labels.
"""

import numpy as np

__all__ = [
    "ARRAY_COLUMNS",
    "CATALOG_COLUMNS",
    "C_KM_S",
    "GRID_LOGLAM_MAX",
    "GRID_LOGLAM_MIN",
    "GRID_SIZE",
    "LABELS",
    "LABEL_UNITS",
    "SCALAR_COLUMNS",
    "SPLITS",
    "SURVEY_MANIFEST",
    "TRUE_COLUMNS",
    "UNCERTAINTY_COLUMNS",
    "grid_loglam",
]

#: The three labels, in the order every array in the package uses.
LABELS = ("teff", "feh", "logg")
#: Display names and units, for plots and tables.
LABEL_UNITS = {"teff": ("T_eff", "K"), "feh": ("[Fe/H]", "dex"), "logg": ("log g", "dex")}

SPLITS = ("train", "validation", "test")
#: File in a survey folder describing how it was made (the simulator writes it).
SURVEY_MANIFEST = "survey.json"

#: Scalar metadata columns.
SCALAR_COLUMNS = ("spec_id", "plate", "mjd", "fiber", "ra", "dec", "snr", "rv_adop")
#: Per-pixel arrays on the spectrum's own log-lambda sampling (``mask`` is SDSS ``and_mask``).
ARRAY_COLUMNS = ("flux", "loglam", "ivar", "mask")
#: Catalogue (SSPP adopted) labels and their quoted uncertainties.
CATALOG_COLUMNS = tuple(f"catalog_{label}" for label in LABELS)
UNCERTAINTY_COLUMNS = tuple(f"catalog_{label}_unc" for label in LABELS)
#: True labels: present only in the simulated survey.
TRUE_COLUMNS = tuple(f"true_{label}" for label in LABELS)

#: The paper's common grid: 4000 points uniform in log10(lambda / Angstrom), vacuum.
GRID_LOGLAM_MIN = 3.5754
GRID_LOGLAM_MAX = 3.9670
GRID_SIZE = 4000

#: Speed of light in km/s (CODATA, exact).
C_KM_S = 299_792.458


def grid_loglam(size=GRID_SIZE, start=GRID_LOGLAM_MIN, stop=GRID_LOGLAM_MAX):
    """Return the common log10-wavelength grid (float64, vacuum Angstrom)."""
    return np.linspace(start, stop, size)
