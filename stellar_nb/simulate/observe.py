"""SDSS observing effects for emulated rest-frame spectra: what turns a model into a DR12 spectrum.

Domain quirks modelled here (all wavelengths log10 of vacuum Angstrom, SDSS's 1e-4 step):

- Doppler shift: relativistic, 1 + z = sqrt((1 + beta) / (1 - beta)). Because the observed and the
  rest grids share the 1e-4 step, every pixel of a spectrum sees the same sub-pixel offset, so a
  four-tap cubic convolution (Keys, a = -0.5) with one set of weights per spectrum interpolates.
- Coverage: each plate's spectra start at 3.5749-3.5830 and end at 3.9560-3.9680, so the paper's
  grid (3.5754-3.9670) is usually longer than the data at one or both ends (it must be clamped).
- Noise: variance = gain * (object + sky) * throughput(lambda); the gain is set per spectrum so
  that the median S/N over good pixels equals the drawn S/N, and ``ivar`` is exactly 1/variance.
- ``and_mask`` (SPPIXMASK bits): BRIGHTSKY where, as in the spectro pipeline, the sky exceeds the
  object's flux + 10 sigma at a sky line (so faint stars lose more pixels than bright ones). Sky
  lines leave subtraction residuals (2 % of the line) that ``ivar`` does not describe, as in real
  data. MANYBADCOLUMNS | FULLREJECT on bad CCD columns (ivar = 0) and NEARBADPIXEL beside them.
"""

from pathlib import Path

import numpy as np

from stellar_nb import doppler, schema
from stellar_nb import emulator as emulator_module

__all__ = [
    "BRIGHTSKY",
    "FULLREJECT",
    "MANYBADCOLUMNS",
    "MAX_RV",
    "NEARBADPIXEL",
    "SKY_LINES",
    "broaden",
    "draw_observations",
    "observe_spectra",
    "reddening_curve",
    "write_fits",
]

MANYBADCOLUMNS, NEARBADPIXEL, FULLREJECT, BRIGHTSKY = 1 << 4, 1 << 16, 1 << 18, 1 << 23
#: Strong night-sky emission lines (vacuum Angstrom, peak relative to the sky continuum at R ~ 2000,
#: before the factor :data:`SKY_LINE_GAIN`): Hg, [O I], Na D, OH bands.
SKY_LINES = (
    (4047.7, 1.0), (4359.6, 2.0), (5462.3, 1.5), (5578.9, 12.0), (5891.6, 3.0), (5897.6, 3.0),
    (6302.0, 6.0), (6365.5, 2.0), (6865.0, 2.0), (7246.0, 2.5), (7278.4, 2.0), (7318.2, 3.0),
    (7342.0, 3.0), (7371.5, 2.5), (7716.1, 2.5), (7752.0, 3.0), (7796.6, 3.0), (7823.5, 3.0),
    (7856.1, 3.0), (7915.7, 3.5), (7966.4, 3.5), (8001.4, 3.0), (8026.2, 3.0), (8064.8, 3.5),
    (8290.1, 3.5), (8346.8, 4.5), (8401.6, 4.5), (8432.6, 4.0), (8467.6, 4.0), (8493.4, 4.0),
    (8507.3, 4.0), (8829.6, 5.0), (8888.2, 5.0), (8922.5, 5.0), (8945.7, 5.0), (8990.8, 5.0),
    (9004.0, 5.0), (9040.0, 4.0),
)  # fmt: skip
SKY_LINE_GAIN = 3.0
#: Largest |radial velocity| drawn (km/s): keeps every observed pixel inside the emulator's grid.
MAX_RV = 550.0
#: Plate coverage as pixel indices of the emulator grid (3.5740 + 1e-4 i).
START_PIXELS, END_PIXELS = (9, 90), (3700, 3940)
#: Scale of the flux-calibration distortion: Legendre coefficients of degree 1-3 (over the emulator
#: grid) of ln(observed / emulated). Real LAMOST DR10 spectra against the emulator at their LASP
#: labels give robust standard deviations of 0.19, 0.05 and 0.036 (reddening included) with
#: heavier tails; SDSS's spectrophotometry is better, so this errs on the wide side.
CALIBRATION_SIGMA = (0.15, 0.05, 0.035)
#: Interstellar reddening E(B-V) (mag): exponential, as for SEGUE's mostly high-latitude fields,
#: with the Gordon et al. (2023) average Milky Way law, R_V = 3.1.
REDDENING_MEAN = 0.05
MAX_REDDENING = 0.5
#: Largest extra line-spread broadening (Gaussian sigma, 1e-4 log10 pixels) on top of the
#: emulator's R ~ 2000: SDSS's resolving power runs from about 1500 to 2500 over the spectrum and
#: from fibre to fibre, LAMOST's is about 1800 at best and lower for many fibres. Fitting the
#: emulator to real LAMOST DR10 spectra (their LASP labels held fixed) prefers 1-2 pixels more.
MAX_LSF_BROADENING = 2.0
PLATE_STARS = 550
FIBERS = 640


def _plates(n, rng):
    n_plates = -(-n // PLATE_STARS)
    plate_of = np.arange(n) // PLATE_STARS
    plates = rng.choice(np.arange(1000, 1000 + max(2500, 2 * n_plates)), n_plates, replace=False)
    plates = np.sort(plates)
    mjd = 52000 + np.sort(rng.integers(0, 3000, n_plates))
    start = rng.integers(START_PIXELS[0], START_PIXELS[1] + 1, n_plates)
    end = rng.integers(END_PIXELS[0], END_PIXELS[1] + 1, n_plates)
    centre_ra = rng.uniform(0.0, 360.0, n_plates)
    sin_dec = rng.uniform(np.sin(np.radians(-10.0)), np.sin(np.radians(70.0)), n_plates)
    fiber = np.concatenate(
        [rng.permutation(FIBERS)[: np.sum(plate_of == p)] + 1 for p in range(n_plates)]
    )
    radius, angle = 1.49 * np.sqrt(rng.random(n)), rng.uniform(0.0, 2.0 * np.pi, n)
    dec = np.degrees(np.arcsin(sin_dec))[plate_of] + radius * np.sin(angle)
    ra = (centre_ra[plate_of] + radius * np.cos(angle) / np.cos(np.radians(dec))) % 360.0
    # 0-3 bad CCD columns per plate, each hitting the fibres of one spectrograph half
    bad_column = np.full((n_plates, 3), -1)
    for p in range(n_plates):
        count = rng.integers(0, 4)
        bad_column[p, :count] = rng.integers(start[p] + 20, end[p] - 20, count)
    bad = np.where(rng.random((n, 3)) < 0.3, bad_column[plate_of], -1)
    plate, mjd = plates[plate_of].astype(np.int64), mjd[plate_of].astype(np.int64)
    spec_id = (plate << 50) | (fiber.astype(np.int64) << 38) | ((mjd - 50000) << 24) | (26 << 10)
    return {
        "plate": plate.astype(np.int32),
        "mjd": mjd.astype(np.int32),
        "fiber": fiber.astype(np.int32),
        "ra": ra,
        "dec": dec,
        "spec_id": spec_id,
        "start": start[plate_of],
        "end": end[plate_of],
        "bad": bad,
    }


def draw_observations(labels, rng):
    """Per-star observing conditions: plate, fiber, position, coverage, RV, S/N, flux scale, ...

    Radial velocities: disc N(-15, 45) km/s, halo N(0, 120) km/s, the halo being likely for
    [Fe/H] < -1; |RV| <= :data:`MAX_RV`. S/N: log-normal around 25, truncated to 10-121 (the
    paper's range). The flux scale (mean flux, 1e-17 erg/s/cm^2/A) grows with S/N, about 10-300.
    Calibration: Legendre coefficients of degree 1-3 of ln(distortion), Student-t (5 degrees of
    freedom) times :data:`CALIBRATION_SIGMA`. Reddening: E(B-V) exponential with mean
    :data:`REDDENING_MEAN`, truncated at :data:`MAX_REDDENING`. Resolution: an extra Gaussian
    line-spread broadening, uniform in 0 to :data:`MAX_LSF_BROADENING` pixels (sigma).

    Returns
    -------
    dict
        Arrays of length ``len(labels)``.
    """
    n = len(labels)
    halo = rng.random(n) < 1.0 / (1.0 + np.exp((labels[:, 1] + 1.0) / 0.3))
    rv = np.where(halo, rng.normal(0.0, 120.0, n), rng.normal(-15.0, 45.0, n))
    snr = np.exp(rng.normal(np.log(25.0), 0.6, n))
    while np.any(bad := (snr < 10.0) | (snr > 121.0)):
        snr[bad] = np.exp(rng.normal(np.log(25.0), 0.6, bad.sum()))
    scale = np.clip(9.0 * (snr / 10.0) ** 1.3 * np.exp(rng.normal(0.0, 0.25, n)), 10.0, 300.0)
    return {
        **_plates(n, rng),
        "rv": np.clip(rv, -MAX_RV, MAX_RV),
        "snr": snr,
        "scale": scale,
        "calibration": rng.standard_t(5, (n, 3)) * np.array(CALIBRATION_SIGMA),
        "ebv": np.minimum(rng.exponential(REDDENING_MEAN, n), MAX_REDDENING),
        "lsf": rng.uniform(0.0, MAX_LSF_BROADENING, n),
        "sky": rng.uniform(3.0, 10.0, n),
        "bad_width": rng.integers(1, 4, (n, 3)),
    }


def instrument(loglam):
    """Per pixel: relative sky continuum, sky-line strength and noise (inverse throughput) factor."""
    wavelength = 10.0**loglam
    continuum = 1.0 + 1.5 * np.clip((wavelength - 7000.0) / 2000.0, 0.0, None)
    lines = np.zeros_like(wavelength)
    for centre, strength in SKY_LINES:
        lines += (
            SKY_LINE_GAIN * strength * np.exp(-0.5 * ((np.log10(centre) - loglam) / 1.0e-4) ** 2)
        )
    throughput = 1.0 + 3.0 * np.exp(-(wavelength - 3750.0) / 200.0)
    throughput += 0.6 * np.exp(-(((wavelength - 5900.0) / 80.0) ** 2))  # dichroic
    throughput += 3.0 * np.clip((wavelength - 8500.0) / 800.0, 0.0, None) ** 2
    return continuum, lines, throughput


def broaden(spectra, sigma, levels=9):
    """Convolve each row of ``spectra`` with a Gaussian of its ``sigma`` (pixels).

    ``sigma`` is rounded to ``levels`` values over its range, so that rows of one level share
    one :func:`scipy.ndimage.gaussian_filter1d` call.
    """
    import scipy.ndimage

    sigma = np.asarray(sigma, dtype=float)
    out = np.array(spectra, dtype=np.float32, copy=True)
    if sigma.size == 0 or sigma.max() <= 0:
        return out
    step = max(sigma.max(), 1e-9) / (levels - 1)
    level = np.round(sigma / step).astype(int)
    for value in np.unique(level):
        rows = np.flatnonzero(level == value)
        if value > 0:
            out[rows] = scipy.ndimage.gaussian_filter1d(
                out[rows], value * step, axis=1, mode="nearest"
            )
    return out


def reddening_curve(loglam):
    """ln of the transmission for E(B-V) = 1 mag (G23 law, R_V = 3.1) at log10(vacuum Angstrom)."""
    from astropy import units as u
    from dust_extinction.parameter_averages import G23

    wavelength = 10.0 ** np.asarray(loglam, dtype=float) * u.AA
    return np.log(G23(Rv=3.1).extinguish(wavelength, Ebv=1.0)).astype(np.float32)


def _row_median(values, keep):
    """Median of each row over the pixels where ``keep`` is True (fast: one sort, no NaN loop)."""
    ordered = np.sort(np.where(keep, values, np.inf), axis=1)
    count = keep.sum(axis=1)
    rows = np.arange(len(values))
    return 0.5 * (ordered[rows, (count - 1) // 2] + ordered[rows, count // 2])


def _shift(rest, rv):
    """Rest-frame spectra (n, npix) seen at the observed pixels of the same grid."""
    npix = rest.shape[1]
    position = -doppler.loglam_shift(rv) / emulator_module.LOGLAM_STEP
    base = np.floor(position).astype(int)
    t = (position - base)[:, None].astype(np.float32)
    weights = (
        ((-0.5 * t + 1.0) * t - 0.5) * t,
        (1.5 * t - 2.5) * t * t + 1.0,
        ((-1.5 * t + 2.0) * t + 0.5) * t,
        (0.5 * t - 0.5) * t * t,
    )
    # spectra with the same integer shift share one slice of the edge-padded rest-frame array
    pad = int(np.abs(base).max()) + 2
    padded = np.pad(rest, ((0, 0), (pad, pad)), mode="edge")
    shifted = np.empty_like(rest)
    for offset in np.unique(base):
        rows = np.flatnonzero(base == offset)
        start = pad + offset - 1
        window = padded[rows, start : start + npix + 3]
        shifted[rows] = sum(w[rows] * window[:, m : m + npix] for m, w in enumerate(weights))
    return shifted


def observe_spectra(emulator, star, rng, bank=None):
    """Observed spectra of the stars in ``star`` (rows of :func:`draw_observations` plus ``labels``).

    With a :class:`~stellar_nb.simulate.residuals.ResidualBank` ``bank`` and ``star["residual"]``
    (its drawn indices), each rest-frame spectrum carries the held-out residual of a real library
    star of similar labels.

    Returns
    -------
    dict
        Flat per-pixel arrays ``flux``, ``loglam``, ``ivar`` (float32) and ``mask`` (int32), the
        row ``offsets`` into them (int64, n + 1) and the median ``snr`` over good pixels (float32).
    """
    loglam = emulator.loglam
    npix = len(loglam)
    x = (2.0 * (loglam - loglam[0]) / (loglam[-1] - loglam[0]) - 1.0).astype(np.float32)
    legendre = np.polynomial.legendre.legvander(x, 3)[:, 1:].astype(np.float32)
    ln_distortion = star["calibration"].astype(np.float32) @ legendre.T
    if "ebv" in star:
        ln_distortion += star["ebv"][:, None].astype(np.float32) * reddening_curve(loglam)
    distortion = np.exp(ln_distortion)
    rest = emulator.flux(star["labels"])
    if bank is not None and "residual" in star:
        rest *= np.exp(bank.residual(star["residual"]))
    if "lsf" in star:
        rest = broaden(rest, star["lsf"])
    model = _shift(rest, star["rv"])
    model *= distortion * star["scale"][:, None].astype(np.float32)
    continuum, lines, throughput = (v.astype(np.float32) for v in instrument(loglam))
    sky_level = star["sky"][:, None].astype(np.float32)
    columns = np.arange(npix)[None, :]
    covered = (columns >= star["start"][:, None]) & (columns <= star["end"][:, None])
    photons = model + sky_level * (continuum + lines)
    relative = model / np.sqrt(photons * throughput)
    gain = (_row_median(relative, covered) / star["snr"]).astype(np.float32) ** 2
    variance = gain[:, None] * photons * throughput
    flux = model + rng.standard_normal(model.shape, dtype=np.float32) * np.sqrt(variance)
    # the spectro pipeline's BRIGHTSKY rule: sky > flux + 10 sigma, and well above the local sky
    sky = sky_level * (continuum + lines)
    bright = (sky > model + 10.0 * np.sqrt(variance)) & (lines > 0.25 * continuum)
    residual = rng.standard_normal(model.shape, dtype=np.float32) * (0.02 * sky_level * lines)
    flux += residual
    ivar = 1.0 / variance
    mask = np.where(bright, BRIGHTSKY, 0).astype(np.int32) * np.ones((len(model), 1), np.int32)
    for k in range(star["bad"].shape[1]):
        first = star["bad"][:, k : k + 1]
        width = star["bad_width"][:, k : k + 1]
        dead = (first >= 0) & (columns >= first) & (columns < first + width)
        near = (first >= 0) & (columns >= first - 1) & (columns <= first + width) & ~dead
        ivar[dead] = 0.0
        flux[dead] = model[dead]  # SDSS interpolates over rejected pixels
        mask[dead] |= MANYBADCOLUMNS | FULLREJECT
        mask[near] |= NEARBADPIXEL
    snr = _row_median(model * np.sqrt(ivar), covered & (ivar > 0))
    return {
        "flux": flux[covered],
        "loglam": np.broadcast_to(loglam.astype(np.float32), covered.shape)[covered],
        "ivar": ivar[covered],
        "mask": mask[covered],
        "offsets": np.concatenate([[0], np.cumsum(covered.sum(axis=1))]).astype(np.int64),
        "snr": snr.astype(np.float32),
    }


def write_fits(folder, test_path, n_fits):
    """Write the first ``n_fits`` rows of ``test_path`` as DR12 ``spec-PLATE-MJD-FIBER.fits`` files.

    Uses :func:`stellar_nb.data.spec_lite.write_spectrum` (HDU1 COADD, HDU2 SPECOBJ); the true and
    catalogue labels go into HDU2 as TRUE_TEFF, ..., CATALOG_LOGG. Returns the written paths.
    """
    from stellar_nb.data import fits, spec_lite, tables

    folder = Path(folder)
    folder.mkdir(exist_ok=True)
    frame = tables.read_split(Path(test_path).parent, "test", rows=slice(0, n_fits))
    paths = []
    for row in frame.itertuples(index=False):
        shift = doppler.loglam_shift(row.rv_adop)
        labels = {
            f"{prefix}_{label}".upper(): float(getattr(row, f"{prefix}_{label}"))
            for prefix in ("true", "catalog")
            for label in schema.LABELS
        }
        meta = {
            "plate": int(row.plate),
            "mjd": int(row.mjd),
            "fiber": int(row.fiber),
            "ra": float(row.ra),
            "dec": float(row.dec),
            "objclass": "STAR",
            "subclass": "",
            "z": float(10.0**shift - 1.0),
            "snr": float(row.snr),
            "specobjid": str(row.spec_id),
            "specobj": labels,
        }
        spectrum = fits.Spectrum(
            flux=row.flux,
            loglam=row.loglam.astype(np.float64),
            ivar=row.ivar,
            and_mask=row.mask,
            meta=meta,
        )
        name = f"spec-{row.plate:04d}-{row.mjd:05d}-{row.fiber:04d}.fits"
        paths.append(spec_lite.write_spectrum(folder / name, spectrum))
    return paths
