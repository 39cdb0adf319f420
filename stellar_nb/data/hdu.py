"""Values out of FITS HDUs, shared by the spectrum readers of :mod:`stellar_nb.data.fits`.

Column names are matched without regard to case (SDSS-V writes them in upper case), byte strings
are decoded and stripped, and numpy scalars become Python ones.
"""

import numpy as np
from astropy.io import fits

__all__ = [
    "LayoutError",
    "coadd_table",
    "column",
    "column_names",
    "first",
    "integer",
    "row_dict",
    "scalar",
]


class LayoutError(ValueError):
    """A file whose layout a reader recognised but cannot read.

    :func:`stellar_nb.data.fits.read_spectrum` turns it into a ``SpectrumReadError``.
    """


def scalar(value):
    """A header or table value as a plain Python value: bytes decoded, strings stripped."""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, np.generic):
        return value.item()
    return value


def row_dict(hdu):
    """The scalar cells of a binary table's first row, keyed by upper-case column name."""
    if not isinstance(hdu, fits.BinTableHDU) or hdu.data is None or len(hdu.data) == 0:
        return {}
    row = hdu.data[0]
    return {
        name.upper(): scalar(row[name]) for name in hdu.columns.names if np.ndim(row[name]) == 0
    }


def column(table, name):
    """Column ``name`` (lower case) of a binary table as an array, or None if it has none."""
    lookup = {column_name.lower(): column_name for column_name in table.columns.names}
    return None if name not in lookup else np.asarray(table.data[lookup[name]])


def first(*values):
    """The first of ``values`` that is neither None nor an empty string, else None."""
    return next((value for value in values if value is not None and value != ""), None)


def integer(value):
    """``value`` as an int, or None if it is not one."""
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def column_names(hdu):
    """Lower-case column names of ``hdu`` (empty for an image)."""
    return {name.lower() for name in getattr(hdu, "columns", fits.ColDefs([])).names}


def coadd_table(hdul):
    """The table holding the coadded spectrum: ``COADD`` by name, else one with its columns."""
    for hdu in hdul[1:]:
        if isinstance(hdu, fits.BinTableHDU) and hdu.name.upper() == "COADD":
            return hdu
    for hdu in hdul[1:]:
        names = column_names(hdu)
        if {"flux", "ivar"} <= names and names & {"loglam", "wavelength"}:
            return hdu
    return None
