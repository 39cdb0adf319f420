"""Values out of FITS HDUs, shared by the spectrum readers of :mod:`stellar_nb.data.fits`.

Column names are matched without regard to case (SDSS-V writes them in upper case), byte strings
are decoded and stripped, and numpy scalars become Python ones.
"""

import numpy as np
from astropy.io import fits

_BLOCK = 2880
_CARD = 80

__all__ = [
    "LayoutError",
    "check_sizes",
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


def _header_end(data, start):
    """Offset just past the END card of the header at ``start``, or None if it has none."""
    for block in range(start, len(data), _BLOCK):
        for card in range(block, min(block + _BLOCK, len(data)), _CARD):
            if data[card : card + 8] == b"END     ":
                return block + _BLOCK
    return None


def check_sizes(data):
    """Check every HDU's claimed data size against the bytes the file holds, before any read.

    The size a header claims is ``|BITPIX| / 8 * GCOUNT * (PCOUNT + NAXIS1 * ... * NAXISn)``
    (FITS standard 4.4.1); a header lying about it (a table "of 4e9 rows" in a 100 kB file) would
    otherwise make astropy allocate that much. Bytes after the last HDU that do not start an
    ``XTENSION`` header are left alone (astropy ignores them too).

    Parameters
    ----------
    data : bytes
        The whole (decompressed) file.

    Raises
    ------
    LayoutError
        If a header has no END card, has an impossible BITPIX or NAXISn, or claims more data
        than the file holds after it.
    """
    offset, index = 0, 0
    while offset < len(data):
        keyword = b"SIMPLE  " if index == 0 else b"XTENSION"
        if data[offset : offset + 8] != keyword:
            if index == 0:
                raise LayoutError("not a FITS file: it does not start with SIMPLE")
            return
        end = _header_end(data, offset)
        if end is None:
            raise LayoutError(f"HDU {index} header has no END card (truncated or not FITS)")
        try:
            header = fits.Header.fromstring(data[offset:end].decode("ascii", "replace"))
            bitpix, naxis = int(header["BITPIX"]), int(header["NAXIS"])
            axes = [int(header.get(f"NAXIS{k}", 0)) for k in range(1, naxis + 1)]
            pcount, gcount = int(header.get("PCOUNT", 0)), int(header.get("GCOUNT", 1))
        except (KeyError, ValueError, TypeError, fits.VerifyError) as error:
            raise LayoutError(f"HDU {index} header is damaged ({error})") from None
        if bitpix not in (8, 16, 32, 64, -32, -64) or not 0 <= naxis <= 999:
            raise LayoutError(f"HDU {index} header has BITPIX = {bitpix}, NAXIS = {naxis}")
        if min(axes, default=0) < 0 or pcount < 0 or gcount < 0:
            raise LayoutError(f"HDU {index} header has negative sizes (NAXISn {axes})")
        size = (
            abs(bitpix) // 8 * gcount * (pcount + (int(np.prod(axes, dtype=object)) if axes else 0))
        )
        available = len(data) - end
        if size > available:
            raise LayoutError(
                f"HDU {index} header claims {size:,} bytes of data (NAXISn {axes}, PCOUNT "
                f"{pcount}) but the file holds {available:,} after it: truncated or a lying header"
            )
        offset = end + -(-size // _BLOCK) * _BLOCK
        index += 1
