"""A spectral emulator: the rest-frame SDSS-resolution spectrum as a smooth function of the labels.

The model is Cannon-like: the natural log of the normalised flux in each pixel is a polynomial in
the scaled labels ``x = ((log10 Teff - 3.76) / 0.08, ([Fe/H] + 0.5) / 0.8, (log g - 3.2) / 1.3)``,

    ln f(lambda; labels) = sum_k C[k, lambda] * phi_k(x),

with ``phi_k`` all monomials up to a total degree chosen by held-out accuracy (see
:func:`stellar_nb.emulator_fit.fit_emulator` for how it is fitted, and which library covers which wavelengths).
Working in ln f makes the continuum shape (nearly Planck-like in ln f) and the line depths smooth
in the labels, and keeps the emulated flux positive. The flux is normalised to a mean of 1 over
4500-7000 A and keeps its continuum shape (SED).

Evaluating the emulator is one matrix product and an ``exp``: 50,000 spectra take about a second.
"""

import json
from pathlib import Path

import numpy as np
import scipy.interpolate
import scipy.spatial

from stellar_nb import doppler, files, schema

__all__ = [
    "DEFAULT_PATH",
    "LOGLAM_STEP",
    "Emulator",
    "calibrate",
    "cramer_rao_bound",
    "design_matrix",
    "fit_to_observed",
    "legendre_design",
    "load_emulator",
    "monomial_exponents",
    "scale_labels",
]

#: The shipped, fitted emulator (package data); refit with ``stellar-nb simulate --refit-emulator``.
DEFAULT_PATH = Path(__file__).resolve().parent / "resources" / "emulator.npz"
#: Label scaling: x = (transformed label - shift) / scale, transformed = (log10 Teff, [Fe/H], log g).
LABEL_SHIFT = np.array([3.76, -0.5, 3.2])
LABEL_SCALE = np.array([0.08, 0.8, 1.3])
#: Pixel step of the rest-frame grid in log10(Angstrom), as SDSS.
LOGLAM_STEP = 1e-4


def monomial_exponents(degree):
    """Exponents (n_terms, 3) of all monomials in three variables up to total ``degree``."""
    return np.array(
        [
            (a, b, c)
            for total in range(degree + 1)
            for a in range(total, -1, -1)
            for b in range(total - a, -1, -1)
            for c in [total - a - b]
        ],
        dtype=int,
    )


def scale_labels(labels):
    """Map labels (n, 3) [teff, feh, logg] to the emulator's scaled variables."""
    labels = np.atleast_2d(np.asarray(labels, dtype=float))
    if labels.shape[-1] != 3:
        raise ValueError(f"labels must have 3 columns (teff, feh, logg), got shape {labels.shape}")
    transformed = np.column_stack([np.log10(labels[:, 0]), labels[:, 1], labels[:, 2]])
    return (transformed - LABEL_SHIFT) / LABEL_SCALE


def design_matrix(labels, exponents, *, derivative=None):
    """Monomial features (n, n_terms) of the scaled labels, or their derivative along one variable."""
    x = scale_labels(labels)
    powers = x[:, None, :] ** np.maximum(exponents[None, :, :], 0)
    if derivative is None:
        return powers.prod(axis=2)
    exponent = exponents[:, derivative]
    reduced = x[:, None, :] ** np.maximum(exponents - np.eye(3, dtype=int)[derivative], 0)[None]
    return np.where(exponent > 0, exponent * reduced.prod(axis=2), 0.0)


class Emulator:
    """Polynomial emulator of ln(normalised flux) on the rest-frame SDSS log-lambda grid.

    Parameters
    ----------
    coefficients : numpy.ndarray
        (n_terms, npix) coefficients of the monomials of :attr:`exponents` for each pixel.
    exponents : numpy.ndarray
        (n_terms, 3) integer exponents of the scaled labels.
    loglam : numpy.ndarray
        (npix,) rest-frame log10(vacuum Angstrom), step 1e-4.
    bounds : dict
        label -> (lo, hi), the box in which the emulator is trusted.
    support : numpy.ndarray
        (n_stars, 3) labels of the library stars it was fitted on; :meth:`in_bounds` also requires a
        nearby library star, so holes in the library (no metal-rich hot giants, ...) are excluded.
    support_radius : float
        Largest distance to the nearest library star, in units of (300 K, 0.4 dex, 0.5 dex).
    metadata : dict
        How it was fitted and its held-out accuracy.
    """

    support_units = np.array([300.0, 0.4, 0.5])

    def __init__(
        self, coefficients, exponents, loglam, bounds, support, support_radius=1.0, metadata=None
    ):
        self.coefficients = np.asarray(coefficients, dtype=np.float32)
        self.exponents = np.asarray(exponents, dtype=int)
        self.loglam = np.asarray(loglam, dtype=float)
        self.bounds = {label: (float(lo), float(hi)) for label, (lo, hi) in bounds.items()}
        self.support = np.asarray(support, dtype=float)
        self.support_radius = float(support_radius)
        self.metadata = dict(metadata or {})
        self._tree = None
        if self.coefficients.shape != (len(self.exponents), len(self.loglam)):
            raise ValueError(
                f"coefficients shape {self.coefficients.shape} does not match exponents and loglam"
            )

    def _check(self, labels):
        labels = np.atleast_2d(np.asarray(labels, dtype=float))
        if labels.ndim != 2 or labels.shape[1] != 3:
            raise ValueError(f"labels must be (n, 3) [teff, feh, logg], got shape {labels.shape}")
        if not np.all(np.isfinite(labels)) or np.any(labels[:, 0] <= 0):
            raise ValueError("labels must be finite with teff > 0")
        return labels

    def ln_flux(self, labels):
        """ln of the normalised flux, (n, npix) float32."""
        labels = self._check(labels)
        features = design_matrix(labels, self.exponents).astype(np.float32)
        return features @ self.coefficients

    def flux(self, labels):
        """Normalised rest-frame flux (n, npix) float32, continuum shape kept (mean 1 over 4500-7000 A)."""
        return np.exp(self.ln_flux(labels))

    def jacobian(self, labels):
        """d flux / d (teff [K], feh [dex], logg [dex]), shape (n, npix, 3), float64."""
        labels = self._check(labels)
        flux = self.flux(labels).astype(float)
        # chain rule: d x0 / d teff = 1 / (teff ln10 scale0); d x1, x2 / d label = 1 / scale
        dx = np.column_stack(
            [
                1.0 / (labels[:, 0] * np.log(10.0) * LABEL_SCALE[0]),
                np.full(len(labels), 1.0 / LABEL_SCALE[1]),
                np.full(len(labels), 1.0 / LABEL_SCALE[2]),
            ]
        )
        columns = [
            design_matrix(labels, self.exponents, derivative=i) @ self.coefficients.astype(float)
            for i in range(3)
        ]
        return flux[:, :, None] * np.stack(columns, axis=2) * dx[:, None, :]

    def in_bounds(self, labels):
        """Boolean (n,): inside :attr:`bounds` and within :attr:`support_radius` of a library star."""
        labels = self._check(labels)
        box = np.ones(len(labels), dtype=bool)
        for i, label in enumerate(schema.LABELS):
            lo, hi = self.bounds[label]
            box &= (labels[:, i] >= lo) & (labels[:, i] <= hi)
        if self._tree is None:
            self._tree = scipy.spatial.cKDTree(self.support / self.support_units)
        distance, _ = self._tree.query(labels / self.support_units)
        return box & (distance <= self.support_radius)

    def check_labels(self, labels, name="labels"):
        """Raise ``ValueError`` naming the first label row outside the emulator's support."""
        labels = self._check(labels)
        inside = self.in_bounds(labels)
        if not inside.all():
            row = int(np.flatnonzero(~inside)[0])
            raise ValueError(
                f"{name} row {row} {labels[row].tolist()} is outside the emulator's support "
                f"(bounds {self.bounds}, within {self.support_radius} x (300 K, 0.4, 0.5 dex) of a library star)"
            )
        return labels

    def save(self, path):
        """Write the emulator to ``path`` (.npz, float32 coefficients) atomically."""
        metadata = {**self.metadata, "bounds": self.bounds, "support_radius": self.support_radius}
        return files.atomic_write(
            path,
            lambda temporary: np.savez_compressed(
                temporary,
                coefficients=self.coefficients.astype(np.float32),
                exponents=self.exponents,
                loglam=self.loglam,
                support=self.support.astype(np.float32),
                metadata=np.array(json.dumps(metadata)),
            ),
        )


def load_emulator(path=None):
    """Load an emulator written by :meth:`Emulator.save`; by default the shipped one.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist (refit with ``stellar-nb simulate --refit-emulator``).
    """
    path = Path(path) if path is not None else DEFAULT_PATH
    if not path.is_file():
        raise FileNotFoundError(
            f"emulator file {path} not found; refit with 'stellar-nb simulate --refit-emulator'"
        )
    with np.load(path, allow_pickle=False) as data:
        metadata = json.loads(str(data["metadata"]))
        bounds = metadata.pop("bounds")
        radius = metadata.pop("support_radius")
        return Emulator(
            data["coefficients"],
            data["exponents"],
            data["loglam"],
            bounds,
            data["support"],
            radius,
            metadata,
        )


def legendre_design(loglam, degree):
    """Legendre polynomials (npix, degree + 1) of loglam mapped onto [-1, 1]."""
    loglam = np.asarray(loglam, dtype=float)
    lo, hi = loglam.min(), loglam.max()
    x = 2.0 * (loglam - lo) / max(hi - lo, 1e-12) - 1.0
    return np.polynomial.legendre.legvander(x, degree)


def _observed_model(emulator, labels, loglam, rv_kms, jacobian=False):
    """Emulated flux (and Jacobian) shifted to the observed frame and interpolated at loglam."""
    labels = np.asarray(labels, dtype=float).reshape(1, 3)
    rest = np.asarray(loglam, dtype=float) - doppler.loglam_shift(rv_kms)
    values = emulator.flux(labels)[0].astype(float)[:, None]
    if jacobian:
        values = np.column_stack([values, emulator.jacobian(labels)[0]])
    inside = (rest >= emulator.loglam[0]) & (rest <= emulator.loglam[-1])
    out = np.full((len(rest), values.shape[1]), np.nan)
    out[inside] = scipy.interpolate.CubicSpline(emulator.loglam, values, axis=0)(rest[inside])
    return out


def calibrate(model, loglam, flux, ivar, degree=3):
    """Weighted least-squares fit of flux ~ model * polynomial(loglam); returns the polynomial (npix,)."""
    flux, ivar = np.asarray(flux, dtype=float), np.asarray(ivar, dtype=float)
    good = np.isfinite(model) & np.isfinite(flux) & (ivar > 0)
    if good.sum() <= degree + 1:
        raise ValueError(
            f"only {good.sum()} usable pixels (finite flux, ivar > 0) to fit a degree-{degree} calibration"
        )
    design = legendre_design(loglam, degree)
    weight = np.sqrt(ivar[good])
    a = model[good, None] * design[good] * weight[:, None]
    coefficients, *_ = np.linalg.lstsq(a, flux[good] * weight, rcond=None)
    return design @ coefficients


def fit_to_observed(emulator, labels, loglam, flux, ivar, rv_kms, *, degree=3):
    """The emulated spectrum at ``labels`` as it would be observed: Doppler-shifted, scaled, calibrated.

    The rest-frame emulated flux is shifted by the relativistic Doppler factor of ``rv_kms``,
    interpolated (cubic spline) at the observed ``loglam`` and multiplied by the degree-``degree``
    Legendre polynomial in loglam that best fits ``flux`` by least squares weighted by ``ivar``
    (this absorbs the flux scale and smooth flux-calibration errors, not the line pattern).

    Parameters
    ----------
    emulator : Emulator
    labels : array_like
        (3,) teff [K], feh [dex], logg [dex].
    loglam, flux, ivar : array_like
        The observed spectrum: log10(vacuum Angstrom), flux and inverse variance per pixel
        (ivar = 0 marks a dead pixel and is ignored).
    rv_kms : float
        Radial velocity in km/s.
    degree : int
        Degree of the calibration polynomial.

    Returns
    -------
    numpy.ndarray
        (npix,) model flux in the units of ``flux``; NaN where the emulator does not cover.
    """
    model = _observed_model(emulator, labels, loglam, rv_kms)[:, 0]
    return model * calibrate(model, loglam, flux, ivar, degree)


def cramer_rao_bound(emulator, labels, loglam, ivar, rv_kms=0.0, flux=None, *, degree=3):
    """Cramer-Rao lower bound on (teff, feh, logg) for spectra described by the emulator.

    The Fisher matrix is ``J^T diag(ivar) J`` over the pixels, with ``J`` the derivative of the
    observed model with respect to the three labels **and** the ``degree + 1`` coefficients of the
    smooth calibration polynomial (flux scale and calibration are unknown to any estimator, so they
    are marginalised: the bound is the labels' block of the inverse Fisher matrix).

    Parameters
    ----------
    emulator : Emulator
    labels : array_like
        (n, 3) true labels.
    loglam, ivar : sequence of array_like
        Per spectrum, observed log10 wavelengths and inverse variances (rows may differ in length).
    rv_kms : float or array_like
        Radial velocity per spectrum (km/s).
    flux : sequence of array_like, optional
        Observed fluxes: the flux scale and calibration are then fitted with :func:`calibrate`;
        without it, ``ivar`` is taken to be in units of the normalised emulated flux.
    degree : int
        Degree of the calibration polynomial.

    Returns
    -------
    numpy.ndarray
        (n, 3) one-sigma bounds in K, dex, dex.
    """
    labels = np.atleast_2d(np.asarray(labels, dtype=float))
    rv = np.broadcast_to(np.asarray(rv_kms, dtype=float), (len(labels),))
    sigma = np.empty((len(labels), 3))
    for i in range(len(labels)):
        grid = np.asarray(loglam[i], dtype=float)
        weight = np.asarray(ivar[i], dtype=float)
        model = _observed_model(emulator, labels[i], grid, rv[i], jacobian=True)
        scale = (
            np.ones(len(grid))
            if flux is None
            else calibrate(model[:, 0], grid, flux[i], weight, degree)
        )
        good = np.all(np.isfinite(model), axis=1) & (weight > 0)
        nuisance = legendre_design(grid, degree) * model[:, :1]
        derivative = np.column_stack([model[:, 1:] * scale[:, None], nuisance])[good]
        fisher = derivative.T @ (derivative * weight[good, None])
        covariance = np.linalg.pinv(fisher)
        sigma[i] = np.sqrt(np.clip(np.diag(covariance)[:3], 0.0, None))
    return sigma
