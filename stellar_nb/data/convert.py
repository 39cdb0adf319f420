"""Conversion of :class:`stellar_nb.data.fits.Spectrum` to and from ``specutils.Spectrum``.

specutils is imported only inside the functions: reading and writing files never needs it.
"""

import numpy as np
from astropy import units as u

from stellar_nb.data import fits

__all__ = ["from_specutils", "to_specutils"]


def to_specutils(spectrum):
    """Return a :class:`specutils.Spectrum` with wavelength, flux, inverse variance and mask.

    The mask is True (bad) where ``ivar == 0``; ``and_mask`` and ``meta`` go to ``.meta``.
    """
    import specutils
    from astropy.nddata import InverseVariance

    return specutils.Spectrum(
        flux=np.asarray(spectrum.flux, dtype=np.float64) * fits.FLUX_UNIT,
        spectral_axis=spectrum.wavelength * u.AA,
        uncertainty=InverseVariance(
            np.asarray(spectrum.ivar, dtype=np.float64) * fits.FLUX_UNIT**-2
        ),
        mask=np.asarray(spectrum.ivar) <= 0,
        meta={
            **spectrum.meta,
            "and_mask": np.asarray(spectrum.and_mask),
            "air_or_vacuum": "vacuum",
        },
    )


def from_specutils(spectrum1d):
    """Build a :class:`stellar_nb.data.fits.Spectrum` from a ``specutils.Spectrum``.

    The spectral axis is taken as vacuum wavelength and converted to log10 Angstrom; flux is
    converted to :data:`stellar_nb.data.fits.FLUX_UNIT`; masked pixels, and pixels without
    uncertainty, get ``ivar = 0`` unless an uncertainty is given.

    Raises
    ------
    ValueError
        If the flux is not a spectral flux density or the spectrum is not one-dimensional.
    """
    from astropy.nddata import InverseVariance

    if spectrum1d.flux.ndim != 1:
        raise ValueError(
            f"from_specutils needs a 1-D spectrum, got flux of shape {spectrum1d.flux.shape}"
        )
    wavelength = spectrum1d.spectral_axis.to(u.AA, equivalencies=u.spectral())
    try:
        flux = spectrum1d.flux.to(fits.FLUX_UNIT, equivalencies=u.spectral_density(wavelength))
    except u.UnitConversionError as error:
        raise ValueError(
            f"flux unit {spectrum1d.flux.unit} is not a flux density: {error}"
        ) from None
    if spectrum1d.uncertainty is not None:
        inverse = spectrum1d.uncertainty.represent_as(InverseVariance)
        scale = (1.0 * spectrum1d.flux.unit).to_value(
            fits.FLUX_UNIT, equivalencies=u.spectral_density(wavelength)
        )
        ivar = np.asarray(inverse.array, dtype=np.float64) / np.asarray(scale) ** 2
    else:
        ivar = np.ones(flux.shape)
    if spectrum1d.mask is not None:
        ivar = np.where(np.asarray(spectrum1d.mask, dtype=bool), 0.0, ivar)
    meta = dict(spectrum1d.meta or {})
    and_mask = np.asarray(meta.pop("and_mask", np.zeros(flux.shape, dtype=np.int32)))
    meta.pop("air_or_vacuum", None)
    meta.setdefault("path", "<specutils>")
    return fits.checked_spectrum(
        flux.value, np.log10(wavelength.value), ivar, and_mask, meta, meta["path"]
    )
