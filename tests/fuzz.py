"""A corpus of bad or odd spectrum inputs, built at test time from the shared real files.

:func:`kinds` returns ``{name: builder}``; ``builder(folder)`` writes one input into ``folder`` (a
``pathlib.Path`` that exists) and returns its path. Nothing here is committed as a binary: every
input is derived from a real LAMOST DR10 star (:data:`BASE`) or a real SDSS file of
``../shared`` (see ``tests/conftest.py``), by cutting bytes, lying in headers, rewriting arrays
(through :func:`stellar_nb.data.spec_lite.write_spectrum`, the package's own writer), or by the file
system (FIFO, directory, ``/dev/zero``). :data:`GOOD` are two real stars that the shipped model
predicts without a flag; tests put them in the same batch as the corpus.

Used by ``tests/test_fuzz.py`` (``predict_files``) and by the dashboard's upload tests.
"""

import functools
import gzip
import io
import os
from pathlib import Path

import numpy as np
from astropy.io import fits as astro_fits

ROOT = Path(__file__).resolve().parents[1]
SDSS_DIR = ROOT.parent / "shared" / "fixtures" / "sdss"
LAMOST_DIR = ROOT.parent / "shared" / "data" / "lamost-dr10" / "spectra"
#: Real LAMOST F stars predicted without a flag by the shipped model (good files of a batch).
GOOD = (
    LAMOST_DIR / "spec-59549-HD015453N404207V01_sp07-012.fits.gz",
    LAMOST_DIR / "spec-59549-TD035052N235741K01_sp11-162.fits.gz",
)
#: The real LAMOST F7 star every array-level kind is derived from (unflagged as it is).
BASE = LAMOST_DIR / "spec-59549-TD035052N235741K01_sp11-206.fits.gz"
SDSS_STAR = SDSS_DIR / "spec-0266-51602-0031.fits"
SDSS_DR7 = SDSS_DIR / "spSpec-51909-0455-597.fit"

#: Odd but valid kinds: the right outcome is the base star's labels, without a flag (within
#: :data:`BENIGN_TOLERANCE`); e.g. float64 flux, a rewritten file, 10% of pixels non-finite.
BENIGN = frozenset({
    "rewritten_by_astropy", "two_files_concatenated", "trailing_garbage", "lamost_flux_float64",
    "lamost_flux_int16", "lamost_snr_missing", "inf_flux_tenth", "flux_times_1e25",
    "flux_times_1e-25", "ivar_1e30", "lamost_air_wavelengths", "header_bitflip_b",
})  # fmt: skip
#: Largest difference from the base star's labels allowed for a benign kind.
BENIGN_TOLERANCE = {"teff": 100.0, "feh": 0.2, "logg": 0.2}

__all__ = ["BASE", "BENIGN", "BENIGN_TOLERANCE", "GOOD", "available", "kinds"]


def available():
    """Whether the shared real files the corpus is built from are present."""
    return all(path.is_file() for path in (*GOOD, BASE, SDSS_STAR, SDSS_DR7))


@functools.cache
def _base_bytes():
    return gzip.decompress(BASE.read_bytes())


@functools.cache
def _base_spectrum():
    from stellar_nb.data import fits

    return fits.read_spectrum(BASE)


def _spectrum_file(name, change, **meta):
    """A builder: the base star's arrays changed by ``change`` and written as an SDSS spec file."""

    def build(folder):
        from stellar_nb.data import fits, spec_lite

        base = _base_spectrum()
        arrays = {
            "flux": base.flux.astype(np.float64),
            "loglam": base.loglam.copy(),
            "ivar": base.ivar.astype(np.float64),
            "and_mask": base.and_mask.copy(),
        }
        arrays = change(arrays, np.random.default_rng(len(name)))
        info = {"objclass": "STAR", "subclass": "F7", "z": base.meta["z"], "snr": None, **meta}
        spectrum = fits.Spectrum(meta={**base.meta, **info}, **arrays)
        return spec_lite.write_spectrum(folder / f"{name}.fits", spectrum)

    return build


def _bytes_file(name, make, suffix=".fits"):
    def build(folder):
        path = folder / f"{name}{suffix}"
        path.write_bytes(make())
        return path

    return build


def _lamost_file(name, change, suffix=".fits"):
    """A builder: the base LAMOST file opened with astropy, changed in place, written again."""

    def build(folder):
        with astro_fits.open(io.BytesIO(_base_bytes())) as hdul:
            hdul = astro_fits.HDUList([item.copy() for item in hdul])
        hdul = change(hdul) or hdul
        buffer = io.BytesIO()
        hdul.writeto(buffer, output_verify="silentfix")
        path = folder / f"{name}{suffix}"
        data = buffer.getvalue()
        path.write_bytes(gzip.compress(data) if suffix.endswith(".gz") else data)
        return path

    return build


def _set_card(data, key, value, occurrence=0):
    """``data`` with the value of header card ``key`` (its ``occurrence``-th) replaced, bytes-wise."""
    data = bytearray(data)
    found = -1
    for start in range(0, len(data) - 80, 80):
        if data[start : start + 10] == f"{key:<8}= ".encode():
            found += 1
            if found == occurrence:
                data[start + 10 : start + 80] = f"{value:>20}".ljust(70).encode()
                return bytes(data)
    raise KeyError(key)


def _flip(data, offsets):
    data = bytearray(data)
    for offset in offsets:
        data[offset % len(data)] ^= 0xFF
    return bytes(data)


def _replace_column(hdul, name, array, fmt):
    coadd = hdul[1]
    columns = [
        astro_fits.Column(name=c.name, format=fmt if c.name == name else c.format,
                          array=array if c.name == name else coadd.data[c.name])
        for c in coadd.columns
    ]  # fmt: skip
    hdul[1] = astro_fits.BinTableHDU.from_columns(columns, header=coadd.header, name="COADD")


def _array_kinds():
    def set_flux(function):
        return lambda a, rng: {**a, "flux": function(a["flux"], rng)}

    def keep(fraction):
        def change(a, rng):
            n = max(int(fraction * a["flux"].size), 2)
            return {key: value[:n] for key, value in a.items()}

        return change

    def pixels(n):
        return lambda a, rng: {key: value[1000 : 1000 + n] for key, value in a.items()}

    def spike(value, count=1):
        def change(flux, rng):
            flux = flux.copy()
            flux[rng.choice(flux.size, count, replace=False)] = value
            return flux

        return change

    def mask_fraction(fraction):
        def change(a, rng):
            ivar = a["ivar"].copy()
            ivar[rng.random(ivar.size) < fraction] = 0.0
            return {**a, "ivar": ivar}

        return change

    def shift_loglam(delta):
        return lambda a, rng: {**a, "loglam": a["loglam"] + delta}

    def nan_fraction(value, fraction):
        def change(flux, rng):
            flux = flux.copy()
            flux[rng.random(flux.size) < fraction] = value
            return flux

        return change

    noise = {
        "white_noise": lambda f, rng: rng.standard_normal(f.size),
        "white_noise_positive": lambda f, rng: 1.0 + rng.random(f.size),
        "white_noise_scaled": lambda f, rng: np.median(f) * (1 + rng.standard_normal(f.size)),
        "negative_flux": lambda f, rng: -f,
        "negative_offset": lambda f, rng: f - 2 * np.max(f),
        "constant_flux": lambda f, rng: np.full(f.size, 5.0),
        "zero_flux": lambda f, rng: np.zeros(f.size),
        "single_1e30_pixel": spike(1e30),
        "single_minus_1e30_pixel": spike(-1e30),
        "ten_1e30_pixels": spike(1e30, 10),
        "single_1e6_spike": spike(1e6 * 1.0),
        "hundred_spikes": spike(1e4, 100),
        "nan_flux_all": lambda f, rng: np.full(f.size, np.nan),
        "inf_flux_all": lambda f, rng: np.full(f.size, np.inf),
        "nan_flux_half": nan_fraction(np.nan, 0.5),
        "inf_flux_tenth": nan_fraction(np.inf, 0.1),
        "flux_times_1e-25": lambda f, rng: f * 1e-25,
        "flux_times_1e25": lambda f, rng: f * 1e25,
        "step_function": lambda f, rng: np.where(np.arange(f.size) < f.size // 2, 1.0, 10.0),
        "sawtooth": lambda f, rng: (np.arange(f.size) % 50).astype(float) + 1,
        "sine": lambda f, rng: 2 + np.sin(np.arange(f.size) / 20.0),
        "reversed_flux": lambda f, rng: f[::-1].copy(),
        "shuffled_flux": lambda f, rng: rng.permutation(f),
        "alternating_sign": lambda f, rng: f * (-1.0) ** np.arange(f.size),
    }
    builders = {name: set_flux(change) for name, change in noise.items()}
    builders.update({
        "ten_pixels": pixels(10),
        "three_pixels": pixels(3),
        "hundred_pixels": pixels(100),
        "coverage_10pct": keep(0.1),
        "coverage_30pct": keep(0.3),
        "coverage_45pct": keep(0.45),
        "masked_50pct": mask_fraction(0.5),
        "masked_95pct": mask_fraction(0.95),
        "all_ivar_zero": lambda a, rng: {**a, "ivar": np.zeros(a["ivar"].size)},
        "ivar_negative": lambda a, rng: {**a, "ivar": -a["ivar"]},
        "ivar_nan": lambda a, rng: {**a, "ivar": np.full(a["ivar"].size, np.nan)},
        "ivar_1e30": lambda a, rng: {**a, "ivar": np.full(a["ivar"].size, 1e30)},
        "and_mask_all_nodata": lambda a, rng: {**a, "and_mask": np.full(a["flux"].size, 1 << 24)},
        "loglam_in_angstrom": lambda a, rng: {**a, "loglam": 10 ** a["loglam"]},
        "loglam_natural_log": lambda a, rng: {**a, "loglam": a["loglam"] * np.log(10)},
        "wavelength_in_nm": shift_loglam(-1.0),
        "wavelength_infrared": shift_loglam(0.6),
        "wavelength_ultraviolet": shift_loglam(-0.35),
        "loglam_reversed": lambda a, rng: {**a, "loglam": a["loglam"][::-1].copy()},
        "loglam_constant": lambda a, rng: {**a, "loglam": np.full(a["loglam"].size, 3.7)},
        "loglam_duplicate_pixel": lambda a, rng: {**a, "loglam": np.where(np.arange(a["loglam"].size) == 5, a["loglam"][4], a["loglam"])},
        "loglam_step_1e-2": lambda a, rng: {**a, "loglam": 3.55 + 1e-2 * np.arange(a["loglam"].size) / 10},
    })  # fmt: skip
    kinds = {name: _spectrum_file(name, change) for name, change in builders.items()}
    identity = lambda a, rng: a  # noqa: E731
    kinds.update({
        "class_galaxy": _spectrum_file("class_galaxy", identity, objclass="GALAXY"),
        "class_qso": _spectrum_file("class_qso", identity, objclass="QSO"),
        "subclass_white_dwarf": _spectrum_file("subclass_white_dwarf", identity, subclass="WD"),
        "subclass_m_dwarf": _spectrum_file("subclass_m_dwarf", identity, subclass="M5"),
        "redshift_0.12": _spectrum_file("redshift_0.12", identity, z=0.12),
        "redshift_minus_2": _spectrum_file("redshift_minus_2", identity, z=-2.0),
        "redshift_nan": _spectrum_file("redshift_nan", identity, z=float("nan")),
        "snr_zero_noise": _spectrum_file(
            "snr_zero_noise", lambda a, rng: {**a, "ivar": a["ivar"] * 1e-6}
        ),
    })  # fmt: skip
    return kinds


def _lamost_kinds():
    def rows(n):
        def change(hdul):
            coadd = hdul[1]
            hdul[1] = astro_fits.BinTableHDU.from_columns(
                coadd.columns, header=coadd.header, nrows=n, fill=n == 0
            )
            if n > 1:
                for name in coadd.columns.names:
                    hdul[1].data[name][1:] = coadd.data[name][0]

        return change

    def column(name, transform, fmt=None):
        def change(hdul):
            value = transform(np.asarray(hdul[1].data[name]))
            code = {"f": "E", "d": "D", "h": "I", "i": "J"}.get(value.dtype.char, "E")
            _replace_column(hdul, name, value, fmt or f"{value.shape[-1]}{code}")

        return change

    def drop(name):
        def change(hdul):
            coadd = hdul[1]
            hdul[1] = astro_fits.BinTableHDU.from_columns(
                [c for c in coadd.columns if c.name != name], header=coadd.header, name="COADD"
            )

        return change

    def header(**cards):
        def change(hdul):
            for key, value in cards.items():
                hdul[0].header[key] = value

        return change

    changes = {
        "lamost_zero_rows": rows(0),
        "lamost_two_rows": rows(2),
        "lamost_no_flux": drop("FLUX"),
        "lamost_no_ivar": drop("IVAR"),
        "lamost_no_wavelength": drop("WAVELENGTH"),
        "lamost_wavelength_negative": column("WAVELENGTH", lambda w: -w),
        "lamost_wavelength_zero": column("WAVELENGTH", lambda w: w * 0),
        "lamost_wavelength_in_log": column("WAVELENGTH", np.log10),
        "lamost_wavelength_in_meters": column("WAVELENGTH", lambda w: w * 1e-10),
        "lamost_flux_int16": column("FLUX", lambda f: f.astype(np.int16)),
        "lamost_flux_float64": column("FLUX", lambda f: f.astype(np.float64)),
        "lamost_flux_as_text": column("FLUX", lambda f: np.array([b"not a number"]), fmt="12A"),
        "lamost_flux_short": column("FLUX", lambda f: f[:, :100]),
        "lamost_flux_nan": column("FLUX", lambda f: f * np.nan),
        "lamost_flux_negative": column("FLUX", lambda f: -f),
        "lamost_air_wavelengths": header(VACUUM=False),
        "lamost_class_galaxy": header(CLASS="GALAXY", Z=0.12),
        "lamost_class_qso": header(CLASS="QSO", Z=1.5),
        "lamost_z_huge": header(Z=5.0),
        "lamost_snr_missing": header(SNRG=-9999.0),
        "lamost_no_tables": lambda hdul: astro_fits.HDUList([hdul[0]]),
        "lamost_image_instead": lambda hdul: astro_fits.HDUList(
            [hdul[0], astro_fits.ImageHDU(np.ones((3, 3900), dtype=np.float32), name="COADD")]
        ),
    }
    kinds = {name: _lamost_file(name, change) for name, change in changes.items()}
    kinds["lamost_gzipped_flux_nan"] = _lamost_file(
        "lamost_gzipped_flux_nan", changes["lamost_flux_nan"], suffix=".fits.gz"
    )
    return kinds


def _byte_kinds():
    def sdss():
        return SDSS_STAR.read_bytes()

    def written():
        buffer = io.BytesIO()
        with astro_fits.open(io.BytesIO(_base_bytes())) as hdul:
            hdul.writeto(buffer, output_verify="silentfix")
        return buffer.getvalue()

    base = _base_bytes
    makers = {
        "zero_bytes": lambda: b"",
        "one_byte": lambda: b"S",
        "text_file": lambda: b"this is not a spectrum\n" * 100,
        "csv_file": lambda: b"wavelength,flux\n4000,1\n4001,2\n",
        "html_error_page": lambda: b"<html><body>404 Not Found</body></html>",
        "random_bytes": lambda: np.random.default_rng(1).bytes(20000),
        "random_2880_blocks": lambda: b"SIMPLE  =                    T" + b" " * 2850 + np.random.default_rng(2).bytes(5760),
        "fits_header_only": lambda: base()[:2880],
        "truncated_100_bytes": lambda: base()[:100],
        "truncated_10pct": lambda: base()[: len(base()) // 10],
        "truncated_50pct": lambda: base()[: len(base()) // 2],
        "truncated_90pct": lambda: base()[: len(base()) * 9 // 10],
        "truncated_last_byte": lambda: base()[:-1],
        "sdss_truncated_half": lambda: sdss()[: len(sdss()) // 2],
        "sdss_truncated_header": lambda: sdss()[:4000],
        "no_end_card": lambda: base().replace(b"END" + b" " * 77, b" " * 80, 1),
        "simple_flipped": lambda: _flip(base(), [0, 1, 2]),
        "header_bitflip_a": lambda: _flip(base(), [100, 333, 901]),
        "header_bitflip_b": lambda: _flip(base(), [2880 + 10, 2880 + 95]),
        "header_bitflip_c": lambda: _flip(base(), range(2880 * 2, 2880 * 2 + 400, 37)),
        "data_garbage_block": lambda: _flip(base(), range(len(base()) // 2, len(base()) // 2 + 4000)),
        "naxis2_4e9_rows": lambda: _set_card(base(), "NAXIS2", 4_000_000_000, occurrence=1),
        "naxis2_zero_rows": lambda: _set_card(base(), "NAXIS2", 0, occurrence=1),
        "naxis1_huge": lambda: _set_card(base(), "NAXIS1", 2_000_000_000, occurrence=1),
        "naxis_negative": lambda: _set_card(base(), "NAXIS2", -5, occurrence=1),
        "pcount_huge": lambda: _set_card(base(), "PCOUNT", 10**12),
        "bitpix_wrong": lambda: _set_card(base(), "BITPIX", 17, occurrence=1),
        "tfields_lie": lambda: _set_card(base(), "TFIELDS", 99),
        "sdss_naxis2_4e9_rows": lambda: _set_card(sdss(), "NAXIS2", 4_000_000_000),
        "sdss_naxis2_lie_small": lambda: _set_card(sdss(), "NAXIS2", 10),
        "dr7_image_huge_claim": lambda: _set_card(SDSS_DR7.read_bytes(), "NAXIS1", 1_000_000_000),
        "dr7_three_rows": lambda: _set_card(SDSS_DR7.read_bytes(), "NAXIS2", 3),
        "rewritten_by_astropy": written,
        "two_files_concatenated": lambda: base() + base(),
        "trailing_garbage": lambda: base() + b"garbage" * 1000,
    }  # fmt: skip
    kinds = {name: _bytes_file(name, make) for name, make in makers.items()}
    gzipped = {
        "gzip_bomb": lambda: gzip.compress(b"\0" * (200 << 20), compresslevel=9),
        "gzip_bomb_fits_header": lambda: gzip.compress(base()[:2880] + b"\0" * (200 << 20), 9),
        "gzip_truncated": lambda: gzip.compress(base())[:5000],
        "gzip_truncated_end": lambda: gzip.compress(base())[:-8],
        "gzip_crc_wrong": lambda: _flip(gzip.compress(base()), [-6]),
        "gzip_of_text": lambda: gzip.compress(b"hello, not a spectrum"),
        "gzip_of_nothing": lambda: gzip.compress(b""),
        "gzip_twice": lambda: gzip.compress(gzip.compress(base())),
        "gzip_magic_only": lambda: b"\x1f\x8b",
        "gzip_header_garbage": lambda: b"\x1f\x8b" + np.random.default_rng(3).bytes(3000),
        "gzip_naxis2_4e9_rows": lambda: gzip.compress(
            _set_card(base(), "NAXIS2", 4_000_000_000, 1)
        ),
    }
    kinds.update({name: _bytes_file(name, make, ".fits.gz") for name, make in gzipped.items()})
    return kinds


def _system_kinds():
    def fifo(folder):
        path = folder / "fifo.fits"
        os.mkfifo(path)
        return path

    def directory(folder):
        path = folder / "directory.fits"
        path.mkdir()
        return path

    def dev_zero(folder):
        path = folder / "dev_zero.fits"
        path.symlink_to("/dev/zero")
        return path

    def dangling(folder):
        path = folder / "dangling_link.fits"
        path.symlink_to(folder / "nowhere.fits")
        return path

    def link_to_fifo(folder):
        target = folder / "fifo_target"
        os.mkfifo(target)
        path = folder / "link_to_fifo.fits"
        path.symlink_to(target)
        return path

    def missing(folder):
        return folder / "missing.fits"

    def parquet_garbage(folder):
        path = folder / "test.parquet"
        path.write_bytes(b"PAR1 this is not parquet")
        return path

    def parquet_misnamed(folder):
        path = folder / "stars.parquet"
        path.write_bytes(_base_bytes())
        return path

    def fits_named_txt(folder):
        path = folder / "spectrum.txt"
        path.write_bytes(b"\x00" * 100)
        return path

    def over_byte_ceiling(folder):
        path = folder / "sparse_huge.fits"
        with open(path, "wb") as handle:
            handle.write(_base_bytes())
            handle.truncate(1 << 30)  # sparse: 1 GiB claimed on disk, nothing written
        return path

    return {
        "fifo": fifo,
        "directory": directory,
        "dev_zero": dev_zero,
        "dangling_symlink": dangling,
        "symlink_to_fifo": link_to_fifo,
        "missing_file": missing,
        "parquet_garbage": parquet_garbage,
        "parquet_misnamed": parquet_misnamed,
        "zeros_named_txt": fits_named_txt,
        "sparse_1gib_file": over_byte_ceiling,
    }


@functools.cache
def kinds():
    """All kinds of bad or odd input: ``{name: builder(folder) -> path}`` (over 100 of them).

    Each builder writes into ``folder`` a file named after the kind (``NAME.fits``,
    ``NAME.fits.gz``, ...; a few file-system kinds use other names) and returns its path. They
    need the shared real files (:func:`available`).
    """
    return {**_byte_kinds(), **_lamost_kinds(), **_array_kinds(), **_system_kinds()}
