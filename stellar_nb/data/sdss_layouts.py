"""Readers of SDSS per-object spectrum layouts, recognised by :func:`stellar_nb.data.fits.read_spectrum`.

- ``spec-PLATE-MJD-FIBER.fits`` of DR8 and later, ``lite`` or full: HDU1 ``COADD`` holds the
  coadded spectrum (``flux``, ``loglam``, ``ivar``, ``and_mask``, ...), HDU2 the spAll row
  (``SPECOBJ`` in SDSS-I/II, ``SPALL`` in BOSS and SDSS-V). SDSS-V files write the column names
  in upper case and identify the object by FIELD/MJD/CATALOGID rather than PLATE/FIBERID.
- DR7 ``spSpec-MJD-PLATE-FIBER.fit``: a 5 x N image in HDU0 (flux, continuum-subtracted flux,
  sigma, mask, sky), wavelengths from ``COEFF0 + COEFF1 * i``; the class is the integer
  ``SPEC_CLN``.

Each reader takes the open HDU list and returns ``flux, loglam, ivar, and_mask, meta`` for
:func:`stellar_nb.data.fits.read_spectrum` to validate. The object's coordinates are
``PLUG_RA``/``PLUG_DEC``: the header's ``RA``/``DEC`` is the plate centre.
"""

import numpy as np

from stellar_nb.data import hdu

__all__ = ["SPEC_CLN", "is_spspec", "read_spec", "read_spspec"]

#: DR7 ``SPEC_CLN`` codes -> DR8 ``CLASS`` names.
SPEC_CLN = {1: "STAR", 2: "GALAXY", 3: "QSO", 4: "QSO", 6: "STAR", 7: "GALAXY"}


def is_spspec(header):
    """Whether a primary header is that of a DR7 ``spSpec`` file (a 5 x N image)."""
    if header.get("NAXIS") == 2 and header.get("NAXIS2") == 5 and "COEFF0" in header:
        return "SPEC_CLN" in header or "FIBERID" in header
    return False


def read_spec(hdul):
    """A DR8+ ``spec`` file (SDSS-I/II, BOSS or SDSS-V): arrays from COADD, the rest from HDU2."""
    table = hdu.coadd_table(hdul)
    flux, loglam, ivar = (hdu.column(table, key) for key in ("flux", "loglam", "ivar"))
    and_mask = hdu.column(table, "and_mask")
    if and_mask is None:
        and_mask = np.zeros(len(flux), dtype=np.int32)
    header = hdul[0].header
    specobj = hdu.row_dict(hdul[2]) if len(hdul) > 2 else {}
    meta = {
        "layout": "spec-sdssv" if "CATALOGID" in specobj else "spec",
        "plate": hdu.integer(
            hdu.first(header.get("PLATEID"), specobj.get("PLATE"), specobj.get("FIELD"))
        ),
        "mjd": hdu.integer(hdu.first(header.get("MJD"), specobj.get("MJD"))),
        "fiber": hdu.integer(hdu.first(header.get("FIBERID"), specobj.get("FIBERID"))),
        "objclass": hdu.first(str(specobj.get("CLASS", "")).upper()) or None,
        "subclass": str(specobj.get("SUBCLASS", "")),
        "snr": specobj.get("SN_MEDIAN_ALL"),
        "ra": hdu.first(specobj.get("PLUG_RA"), header.get("PLUG_RA")),
        "dec": hdu.first(specobj.get("PLUG_DEC"), header.get("PLUG_DEC")),
        "z": specobj.get("Z"),
        "specobjid": hdu.integer(specobj.get("SPECOBJID")),
        "run2d": hdu.first(str(header.get("RUN2D", "")).strip(), specobj.get("RUN2D")),
        "specobj": specobj,
    }
    if "CATALOGID" in specobj:
        meta["catalogid"] = hdu.integer(specobj["CATALOGID"])
        meta["field"] = hdu.integer(specobj.get("FIELD"))
    return flux, loglam, ivar, and_mask, meta


def read_spspec(hdul):
    """A DR7 ``spSpec`` file: rows of the HDU0 image; ivar from sigma (0 where sigma is 0)."""
    header = hdul[0].header
    image = np.asarray(hdul[0].data, dtype=np.float64)
    sigma = image[2]
    ivar = np.zeros_like(sigma)
    np.divide(1.0, sigma**2, out=ivar, where=sigma > 0)
    loglam = header["COEFF0"] + header["COEFF1"] * np.arange(image.shape[1])
    meta = {
        "layout": "spSpec",
        "plate": hdu.integer(header.get("PLATEID")),
        "mjd": hdu.integer(header.get("MJD")),
        "fiber": hdu.integer(header.get("FIBERID")),
        "objclass": SPEC_CLN.get(hdu.integer(header.get("SPEC_CLN"))),
        "subclass": "",
        "snr": None,
        "ra": header.get("RAOBJ"),
        "dec": header.get("DECOBJ"),
        "z": header.get("Z"),
        "specobjid": None,
        "run2d": None,
        "specobj": {},
    }
    return image[0], loglam, ivar, image[3].astype(np.int64), meta
