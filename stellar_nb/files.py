"""File helpers shared by every stage: atomic writes, JSON and checksums.

Nothing the package writes is ever left half-written: :func:`atomic_path` (and its callback form
:func:`atomic_write`) writes to a temporary file in the destination's folder and renames it into
place, so a crash or an interrupt leaves either the old file or the new one.
"""

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["atomic_path", "atomic_write", "read_json", "sha256sum", "write_json"]


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
        os.chmod(temporary, 0o644)  # mkstemp makes 0600 files; data and models are shared
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


def sha256sum(path):
    """SHA-256 (hex) of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
