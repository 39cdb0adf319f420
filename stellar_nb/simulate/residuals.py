"""What the emulator misses: real library stars minus the emulator, held out, as structured noise.

A polynomial emulator gives the *mean* spectrum at given labels. Real stars scatter around it in a
structured way, line by line: abundance patterns, rotation, unresolved binaries, the libraries' own
label errors, telluric bands and flux-calibration ripples. A network trained only on the mean
learns to read label information from tiny features that real stars do not reproduce, and fails on
real spectra. The residual bank keeps those deviations so that the simulator can put them back.

- Each library star's residual is ``ln(real) - ln(emulated)`` with the emulator fitted **without
  that star** (``n_folds``-fold cross-validation), minus a degree-5 Legendre trend in loglam: the
  smooth part belongs to flux calibration and reddening, which :mod:`~stellar_nb.simulate.observe`
  draws on its own.
- MILES v9.1 gives the blue part (up to 7410 A air), STELIB v3.2 the red part, telluric bands
  included (its spectra are not corrected for them, nor are LAMOST's or SDSS's beyond the
  pipeline's correction). They are blended over :data:`~stellar_nb.emulator_fit.BLEND_WINDOW`.
- A simulated star takes the residual of one of the :data:`NEIGHBOURS` library stars nearest to its
  labels (in units of 300 K, 0.4 dex, 0.5 dex), so the structure matches its spectral type.

The bank itself (5 MB) does not ship: :func:`fit_residual_bank` makes it in seconds from the
library spectra. What ships is its per-pixel RMS, the emulator's error model
(``stellar_nb/resources/emulator_error.npz``, :func:`load_emulator_error`), which ``stellar-nb
simulate --refit-emulator`` rewrites with the emulator.

What it is used for, as measured on the 1,339 real LAMOST DR10 stars of 4000-9000 K against LASP
(issue 11 of the project): its per-pixel RMS (:meth:`ResidualBank.pixel_rms`) is the emulator's
error model in the misfit trust flag (:mod:`stellar_nb.trust`), where it matches what real spectra
show (1.3-2.8 % in the optical, 6 % below 4000 A). As structured training noise
(``stellar-nb simulate --residuals``) it made the paper model *worse* on those stars in each of
three trainings (Teff MAE 320-415 K against 242-264 K without), so the default survey leaves it out.
"""

import json
from pathlib import Path

import numpy as np
import scipy.spatial

from stellar_nb import emulator as emulator_module
from stellar_nb import files

__all__ = [
    "ERROR_PATH",
    "NEIGHBOURS",
    "EmulatorError",
    "ResidualBank",
    "fit_residual_bank",
    "load_emulator_error",
    "load_residual_bank",
]

#: The shipped error model of the emulator (the residual bank's per-pixel RMS).
ERROR_PATH = Path(__file__).resolve().parent.parent / "resources" / "emulator_error.npz"
#: A simulated star draws its residual from one of this many nearest library stars (per library).
NEIGHBOURS = 4
_TREND_DEGREE = 5
_UNITS = np.array([300.0, 0.4, 0.5])


def _detrend(loglam, residual):
    """Remove a degree-5 Legendre trend per row, fitted on the finite pixels; NaN stays NaN."""
    out = np.full_like(residual, np.nan)
    design = emulator_module.legendre_design(loglam, _TREND_DEGREE)
    for i, row in enumerate(residual):
        good = np.isfinite(row)
        if good.sum() > 10 * (_TREND_DEGREE + 1):
            coefficients, *_ = np.linalg.lstsq(design[good], row[good], rcond=None)
            out[i, good] = row[good] - design[good] @ coefficients
    return out


def _save_npz(path, metadata, **arrays):
    """Write ``arrays`` and the JSON ``metadata`` as a compressed ``.npz``, atomically."""
    return files.atomic_write(
        path,
        lambda temporary: np.savez_compressed(
            temporary, metadata=np.array(json.dumps(metadata)), **arrays
        ),
    )


def fit_residual_bank(n_folds=5, seed=0, degree=4, red_degree=2):
    """Held-out residuals of MILES (blue) and STELIB (red) stars against the emulator's model.

    Uses the same library selection, normalisation and polynomial degrees as
    :func:`stellar_nb.emulator_fit.fit_emulator`. Needs ``sdss-mangadap``.

    Returns
    -------
    ResidualBank
    """
    from stellar_nb import emulator_fit, libraries

    grid = libraries.library_grid()
    wavelength = 10.0**grid
    miles_loglam, ln_miles, miles_table = emulator_fit.miles_ln_flux()
    features = emulator_module.design_matrix(
        miles_table, emulator_module.monomial_exponents(degree)
    )
    predicted = emulator_fit.held_out_predictions(
        emulator_fit.ridge, features, ln_miles, n_folds, seed
    )
    blue = np.full((len(miles_table), len(grid)), np.nan)
    blue[:, : ln_miles.shape[1]] = _detrend(miles_loglam, ln_miles - predicted)

    stelib_loglam, stelib_flux, stelib_labels = libraries.load_stelib()
    stelib_flux, stelib_table = emulator_fit.select_stars(stelib_flux, stelib_labels)
    bridged = emulator_fit.stelib_ln_flux(stelib_loglam, stelib_flux)
    usable = np.isfinite(bridged).any(axis=1)
    bridged, stelib_flux, stelib_table = bridged[usable], stelib_flux[usable], stelib_table[usable]
    # the raw ln flux, telluric bands left in, on the same offset as the bridged fit targets
    raw = np.log(np.where(stelib_flux > 0, stelib_flux, np.nan))
    blend = (wavelength >= emulator_fit.BLEND_WINDOW[0]) & (
        wavelength <= emulator_fit.BLEND_WINDOW[1]
    )
    raw -= np.nanmean(raw[:, blend], axis=1, keepdims=True)
    red_features = emulator_module.design_matrix(
        stelib_table, emulator_module.monomial_exponents(red_degree)
    )
    red_predicted = emulator_fit.held_out_predictions(
        emulator_fit.masked_fit, red_features, bridged, n_folds, seed
    )
    red_part = wavelength >= emulator_fit.BLEND_WINDOW[0]
    red = np.full((len(stelib_table), len(grid)), np.nan)
    red[:, red_part] = _detrend(grid[red_part], (raw - red_predicted)[:, red_part])
    return ResidualBank(
        grid,
        blue,
        miles_table,
        red,
        stelib_table,
        {"n_folds": n_folds, "seed": seed, "degree": degree, "red_degree": red_degree},
    )


class ResidualBank:
    """Held-out library residuals (ln flux, detrended) and the labels of their stars.

    Parameters
    ----------
    loglam : numpy.ndarray
        (npix,) the emulator's rest-frame grid.
    blue, red : numpy.ndarray
        (n_miles, npix) and (n_stelib, npix) residuals; NaN where a library does not cover.
    blue_labels, red_labels : numpy.ndarray
        (n, 3) teff, feh, logg of those stars.
    metadata : dict
    """

    def __init__(self, loglam, blue, blue_labels, red, red_labels, metadata=None):
        self.loglam = np.asarray(loglam, dtype=float)
        self.blue = np.asarray(blue, dtype=np.float32)
        self.red = np.asarray(red, dtype=np.float32)
        self.blue_labels = np.asarray(blue_labels, dtype=float)
        self.red_labels = np.asarray(red_labels, dtype=float)
        self.metadata = dict(metadata or {})
        from stellar_nb import emulator_fit

        wavelength = 10.0**self.loglam
        lo, hi = emulator_fit.BLEND_WINDOW
        self._red_weight = np.clip((wavelength - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)
        self._trees = [
            scipy.spatial.cKDTree(t / _UNITS) for t in (self.blue_labels, self.red_labels)
        ]

    def draw(self, labels, rng):
        """Indices (n, 2) of a blue and a red library star near each row of ``labels``."""
        labels = np.atleast_2d(np.asarray(labels, dtype=float))
        choice = rng.integers(0, NEIGHBOURS, (len(labels), 2))
        columns = []
        for k, tree in enumerate(self._trees):
            _, nearest = tree.query(labels / _UNITS, k=min(NEIGHBOURS, tree.n))
            nearest = nearest.reshape(len(labels), -1)
            columns.append(nearest[np.arange(len(labels)), choice[:, k] % nearest.shape[1]])
        return np.column_stack(columns)

    def residual(self, indices):
        """ln-flux residuals (n, npix) float32 of the drawn ``indices`` (from :meth:`draw`)."""
        indices = np.atleast_2d(indices)
        blue = np.nan_to_num(self.blue[indices[:, 0]])
        red = np.nan_to_num(self.red[indices[:, 1]])
        return blue * (1.0 - self._red_weight) + red * self._red_weight

    def pixel_rms(self):
        """The emulator's per-pixel error (npix,): RMS of the held-out residuals, blended like them."""
        if not hasattr(self, "_pixel_rms"):

            def rms(values):
                finite = np.isfinite(values)
                total = np.where(finite, values, 0.0) ** 2
                return np.sqrt(total.sum(axis=0) / np.maximum(finite.sum(axis=0), 1))

            weight = self._red_weight
            self._pixel_rms = rms(self.blue) * (1 - weight) + rms(self.red) * weight
        return self._pixel_rms

    def save(self, path):
        """Write the bank as float16 ``.npz``, atomically."""
        return _save_npz(
            path,
            self.metadata,
            loglam=self.loglam,
            blue=self.blue.astype(np.float16),
            red=self.red.astype(np.float16),
            blue_labels=self.blue_labels,
            red_labels=self.red_labels,
        )


def load_residual_bank(path):
    """Load a bank written by :meth:`ResidualBank.save`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"residual bank {path} not found; make one with fit_residual_bank()"
        )
    with np.load(path, allow_pickle=False) as data:
        return ResidualBank(
            data["loglam"],
            data["blue"],
            data["blue_labels"],
            data["red"],
            data["red_labels"],
            json.loads(str(data["metadata"])),
        )


class EmulatorError:
    """The emulator's per-pixel error: the RMS of held-out real library stars around it.

    Has the two members of :class:`ResidualBank` that :mod:`stellar_nb.trust` uses: ``loglam``
    and :meth:`pixel_rms`.
    """

    def __init__(self, loglam, rms, metadata=None):
        self.loglam = np.asarray(loglam, dtype=float)
        self._rms = np.asarray(rms, dtype=float)
        self.metadata = dict(metadata or {})

    @classmethod
    def from_bank(cls, bank):
        """The error model of a :class:`ResidualBank`."""
        return cls(bank.loglam, bank.pixel_rms(), bank.metadata)

    def pixel_rms(self):
        """(npix,) RMS of ln(real / emulated) on :attr:`loglam`."""
        return self._rms

    def save(self, path):
        """Write ``loglam``, ``rms`` and the metadata as ``.npz``, atomically."""
        return _save_npz(path, self.metadata, loglam=self.loglam, rms=self._rms.astype(np.float32))


def load_emulator_error(path=None):
    """Load an :class:`EmulatorError` (by default the shipped one, :data:`ERROR_PATH`)."""
    path = Path(path) if path is not None else ERROR_PATH
    if not path.is_file():
        raise FileNotFoundError(
            f"emulator error model {path} not found; rebuild with 'stellar-nb simulate --refit-emulator'"
        )
    with np.load(path, allow_pickle=False) as data:
        return EmulatorError(data["loglam"], data["rms"], json.loads(str(data["metadata"])))
