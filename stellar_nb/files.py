"""File helpers shared by every stage: atomic writes, JSON and checksums.

Nothing the package writes is ever left half-written: :func:`atomic_path` (and its callback form
:func:`atomic_write`) writes to a temporary file in the destination's folder and renames it into
place, so a crash or an interrupt leaves either the old file or the new one. A kill (which no
``except`` sees) can still leave such a temporary behind; :func:`remove_stale_temporaries` removes
those of earlier runs at the start of the next, and :func:`give_normal_mode` gives folders made by
:func:`tempfile.mkdtemp` (mode 0700) the modes a plain ``mkdir`` would.
"""

import contextlib
import hashlib
import json
import os
import shutil
import stat
import tempfile
import time
from pathlib import Path

import numpy as np

__all__ = [
    "atomic_path",
    "atomic_write",
    "fingerprint_difference",
    "give_normal_mode",
    "process_start_time",
    "read_json",
    "remove_stale_temporaries",
    "sha256sum",
    "umask",
    "write_json",
]

_IMPORTED_AT = time.time()


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; on a clean exit it is renamed onto ``path``.

    The temporary file sits in the same folder (so the rename is atomic) and ends in the same
    suffixes as ``path`` (Keras insists on ``.keras`` and ``.weights.h5``). It is removed if the
    block raises.

    Parameters
    ----------
    path : str or pathlib.Path
        Destination; its folder must exist.

    Yields
    ------
    pathlib.Path
        Where to write the complete file.

    Raises
    ------
    FileNotFoundError
        If the destination folder does not exist.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "notes.txt"
    >>> with atomic_path(target) as temporary:
    ...     _ = temporary.write_text("done")
    >>> target.read_text()
    'done'
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"folder {path.parent} does not exist")
    suffix = ".part" + "".join(path.suffixes)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(handle)
    temporary = Path(temporary)
    try:
        yield temporary
        give_normal_mode(temporary)  # mkstemp makes 0600 files; data and models are shared
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def atomic_write(path, write):
    """Call ``write(temporary_path)``, then rename the result onto ``path`` (see :func:`atomic_path`).

    Parameters
    ----------
    path : str or pathlib.Path
        Destination; its folder must exist.
    write : callable
        Writes the complete file at the path it is given (a ``str``).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    FileNotFoundError
        If the destination folder does not exist.
    """
    with atomic_path(path) as temporary:
        write(str(temporary))
    return Path(path)


def write_json(path, data):
    """Write ``data`` as indented, key-sorted JSON, atomically (numpy values and paths allowed)."""
    text = json.dumps(data, indent=2, sort_keys=True, default=_json_default)
    with atomic_path(path) as temporary:
        temporary.write_text(text + "\n")
    return Path(path)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray | tuple):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def read_json(path):
    """Read a JSON file.

    Raises
    ------
    FileNotFoundError
        If the file is missing (the message says "missing file PATH").
    ValueError
        If it is not valid JSON (the message names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"missing file {path}")
    try:
        return json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from None


def fingerprint_difference(path, expected):
    """Compare the fingerprint (a JSON dict) stored at ``path`` with ``expected``.

    Returns
    -------
    None or list of str
        None when they are equal; else the keys whose values differ, sorted (every key of
        ``expected`` when nothing is stored at ``path``: check ``path.is_file()`` to tell).
    """
    path = Path(path)
    stored = read_json(path) if path.is_file() else {}
    if stored == expected:
        return None
    return sorted(k for k in {*stored, *expected} if stored.get(k) != expected.get(k))


def sha256sum(path):
    """SHA-256 (hex) of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def umask():
    """This process's file-mode creation mask (read without changing it where Linux allows)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere the only way to read it is to set it
    os.umask(mask)
    return mask


def give_normal_mode(path):
    """Give ``path`` the mode a plain ``open``/``mkdir`` would: 0666 or 0777 less the umask.

    :func:`tempfile.mkstemp` and :func:`tempfile.mkdtemp` make private files (0600) and folders
    (0700); anything renamed into place from them gets the usual modes here (0644 and 0755 under
    the common umask 022). A folder's contents are not changed.

    Returns
    -------
    pathlib.Path
    """
    path = Path(path)
    full = 0o777 if path.is_dir() else 0o666
    os.chmod(path, full & ~umask())
    return path


def process_start_time():
    """When this process started (seconds since the epoch).

    A temporary file older than this cannot belong to a write of this process, and a run that
    started later cannot have made it either.
    """
    try:
        import psutil

        return psutil.Process().create_time()
    except (ImportError, OSError):
        return _IMPORTED_AT


def remove_stale_temporaries(folder, patterns, older_than=None):
    """Remove temporaries of earlier, killed runs: entries of ``folder`` matching ``patterns``.

    Only entries last modified before ``older_than`` go, so the temporaries of a write in
    progress (this process's, or a run started since) are left alone. Folders (staging folders)
    are removed with their contents; links are never followed.

    Parameters
    ----------
    folder : str or pathlib.Path
        Where to look (not recursively); a missing folder has nothing stale.
    patterns : str or sequence of str
        Glob patterns of temporary names, e.g. ``".train_X.npy.*.raw"``.
    older_than : float, optional
        Seconds since the epoch; default :func:`process_start_time`.

    Returns
    -------
    list of pathlib.Path
        What was removed, sorted.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / ".x.npy.abc.part.npy").write_text("half")
    >>> [p.name for p in remove_stale_temporaries(folder, ".x.npy.*.part*", older_than=2e9)]
    ['.x.npy.abc.part.npy']
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    cutoff = process_start_time() if older_than is None else float(older_than)
    patterns = [patterns] if isinstance(patterns, str) else list(patterns)
    removed = set()
    for pattern in patterns:
        for path in folder.glob(pattern):
            try:
                info = path.lstat()
            except FileNotFoundError:
                continue  # removed meanwhile by its own run
            if info.st_mtime >= cutoff:
                continue
            if stat.S_ISDIR(info.st_mode):
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.add(path)
    return sorted(removed)
