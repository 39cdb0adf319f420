"""The saved model directory: its layout, writing it, checking it and reading it back.

A model directory (layout :data:`LAYOUT_VERSION`) holds:

- ``manifest.json``: layout version, package and library versions, SHA-256 of every other file;
- ``model.keras``: the Keras model (best weights, no optimiser), loaded in safe mode by
  :func:`load_keras_model`;
- ``weights.npz``: the same weights as numpy arrays, named ``LAYER/INDEX`` (:func:`export_weights`),
  for :class:`stellar_nb.inference.NumpyModel`;
- ``model.json``: architecture (the arguments of :func:`stellar_nb.model.build_model`), training
  settings and loss weights;
- ``preprocessor.json``: :meth:`stellar_nb.preprocess.Preprocessor.to_dict`, label scaler included;
- ``history.json`` and ``metrics.json`` (best epoch, validation MAE, uncertainty calibration).

Every file is written atomically and the manifest last, so a directory with a valid manifest is
complete. Reading needs numpy only; Keras is imported by :func:`write` and
:func:`load_keras_model` alone.
"""

import sys
from importlib import resources
from pathlib import Path

import numpy as np

from stellar_nb import files

__all__ = [
    "LAYOUT_VERSION",
    "MANIFEST",
    "RECORDS",
    "REQUIRED_FILES",
    "ModelDirectoryError",
    "export_weights",
    "load",
    "load_keras_model",
    "pretrained_dir",
    "read",
    "read_manifest",
    "read_record",
    "rewrite_json",
    "write",
]

#: Version of the saved model directory layout; loading refuses any other.
LAYOUT_VERSION = 1
#: The manifest's file name.
MANIFEST = "manifest.json"
#: Files every model directory holds besides the manifest.
REQUIRED_FILES = (
    "model.keras",
    "weights.npz",
    "model.json",
    "preprocessor.json",
    "history.json",
    "metrics.json",
)


class ModelDirectoryError(ValueError):
    """A model directory that is missing, incomplete, corrupt or of another layout version."""


def _read_json(path):
    try:
        return files.read_json(path)
    except (FileNotFoundError, ValueError) as error:
        raise ModelDirectoryError(str(error)) from None


def pretrained_dir():
    """Folder of the pretrained model shipped in the package (see its README)."""
    return Path(str(resources.files("stellar_nb") / "resources" / "pretrained"))


def export_weights(keras_model):
    """Return ``{"LAYER/INDEX": float32 array}`` for every weighted layer of a Keras model."""
    arrays = {}
    for layer in keras_model.layers:
        for index, value in enumerate(layer.get_weights()):
            arrays[f"{layer.name}/{index}"] = np.asarray(value, dtype=np.float32)
    return arrays


def _versions():
    import keras

    import stellar_nb

    backend = keras.backend.backend()
    versions = {
        "stellar_nb": stellar_nb.__version__,
        "keras": keras.__version__,
        "backend": backend,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
    }
    backend_module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}.get(backend)
    if backend_module:
        versions[backend_module] = __import__(backend_module).__version__
    return versions


def write(model_dir, network, description, preprocessor, history, metrics):
    """Write a model directory, manifest last.

    Parameters
    ----------
    model_dir : str or pathlib.Path
        Created if missing; files already there are replaced.
    network : keras.Model
        The trained network (no optimiser state needed).
    description : dict
        ``model.json``: ``architecture`` (its ``labels`` go into the manifest), training settings.
    preprocessor : stellar_nb.preprocess.Preprocessor
        Fitted on the training split.
    history, metrics : dict
        ``history.json`` and ``metrics.json``.

    Returns
    -------
    pathlib.Path
    """
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    files.atomic_write(model_dir / "model.keras", network.save)
    arrays = export_weights(network)
    files.atomic_write(model_dir / "weights.npz", lambda path: np.savez(path, **arrays))
    files.write_json(model_dir / "model.json", description)
    files.write_json(model_dir / "preprocessor.json", preprocessor.to_dict())
    files.write_json(model_dir / "history.json", history)
    files.write_json(model_dir / "metrics.json", metrics)
    manifest = {
        "layout_version": LAYOUT_VERSION,
        "versions": _versions(),
        "files": {name: files.sha256sum(model_dir / name) for name in REQUIRED_FILES},
        "labels": list(description["architecture"]["labels"]),
    }
    files.write_json(model_dir / MANIFEST, manifest)
    return model_dir


def rewrite_json(model_dir, name, data):
    """Replace one JSON file of a model directory (e.g. ``metrics.json``) and its manifest checksum."""
    model_dir = Path(model_dir)
    manifest = read_manifest(model_dir)
    files.write_json(model_dir / name, data)
    manifest["files"][name] = files.sha256sum(model_dir / name)
    files.write_json(model_dir / MANIFEST, manifest)
    return model_dir / name


def read_manifest(model_dir, *, verify=True):
    """Read and check a model directory's manifest.

    Parameters
    ----------
    model_dir : str or pathlib.Path
    verify : bool
        Check every listed file's SHA-256.

    Raises
    ------
    ModelDirectoryError
        If the folder or a file is missing, a file is corrupt, or the layout version differs.
    """
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelDirectoryError(f"model directory {model_dir} does not exist")
    manifest = _read_json(model_dir / MANIFEST)
    version = manifest.get("layout_version")
    if version != LAYOUT_VERSION:
        raise ModelDirectoryError(
            f"{model_dir / MANIFEST}: model layout version {version!r}, but this stellar_nb "
            f"reads layout {LAYOUT_VERSION}; retrain it with 'stellar-nb train' or use the "
            f"stellar_nb version named in the manifest ({manifest.get('versions', {}).get('stellar_nb')})"
        )
    listed = manifest.get("files", {})
    for name in REQUIRED_FILES:
        path = model_dir / name
        if not path.is_file():
            raise ModelDirectoryError(f"missing file {path}")
        if verify and name in listed and files.sha256sum(path) != listed[name]:
            raise ModelDirectoryError(f"{path} is corrupt: its SHA-256 differs from the manifest")
    return manifest


def read(model_dir, *, verify=True):
    """Read a checked model directory without Keras.

    Returns
    -------
    dict
        ``description`` (``model.json``), ``weights`` (``{"LAYER/INDEX": array}``),
        ``preprocessor`` (a fitted :class:`stellar_nb.preprocess.Preprocessor`), ``metrics``.

    Raises
    ------
    ModelDirectoryError
        If a file is missing or corrupt, or the layout version differs; the message names the file.
    """
    from stellar_nb import preprocess

    model_dir = Path(model_dir)
    read_manifest(model_dir, verify=verify)
    description = _read_json(model_dir / "model.json")
    metrics = _read_json(model_dir / "metrics.json")
    try:
        with np.load(model_dir / "weights.npz") as archive:
            weights = {name: archive[name] for name in archive.files}
    except (OSError, ValueError) as error:
        raise ModelDirectoryError(
            f"{model_dir / 'weights.npz'} is not a readable numpy archive: {error}"
        ) from None
    state = _read_json(model_dir / "preprocessor.json")
    try:
        processor = preprocess.Preprocessor.from_dict(state)
    except (KeyError, TypeError, ValueError) as error:
        raise ModelDirectoryError(
            f"{model_dir / 'preprocessor.json'} does not describe a preprocessor: {error}"
        ) from None
    return {
        "description": description,
        "weights": weights,
        "preprocessor": processor,
        "metrics": metrics,
    }


#: The JSON records a model directory may hold besides its weights, by name.
RECORDS = ("history", "metrics", "evaluation", "real_stars")


def read_record(name, model_dir=None):
    """One JSON record of a model directory (the shipped model by default), as a dict.

    Parameters
    ----------
    name : {"history", "metrics", "evaluation", "real_stars"}
        ``history`` (per-epoch losses) and ``metrics`` are written by training; ``evaluation``
        by ``stellar-nb evaluate --out``; ``real_stars`` by ``stellar-nb bench real-stars --out``.
    model_dir : str or pathlib.Path, optional
        A model directory; default the shipped pretrained model.

    Raises
    ------
    ValueError
        If ``name`` is not one of :data:`RECORDS`.
    ModelDirectoryError
        If the record is missing or not valid JSON; the message names the file.
    """
    if name not in RECORDS:
        raise ValueError(f"unknown model record {name!r}; allowed: {', '.join(RECORDS)}")
    folder = pretrained_dir() if model_dir is None else Path(model_dir)
    return _read_json(folder / f"{name}.json")


def load(model_dir=None, *, verify=True):
    """A model directory as a :class:`stellar_nb.inference.NumpyModel`; the shipped one by default.

    Entry points resolve ``model_dir`` with :func:`stellar_nb.config.model_dir` first.

    Raises
    ------
    ModelDirectoryError
        If the directory is missing, incomplete, corrupt or of another layout version.
    """
    from stellar_nb import inference

    return inference.NumpyModel.load(
        pretrained_dir() if model_dir is None else model_dir, verify=verify
    )


def load_keras_model(model_dir):
    """Load a model directory's Keras model in safe mode, after checking its manifest.

    Raises
    ------
    ModelDirectoryError
        If the directory is incomplete, corrupt or of another layout version.
    """
    import keras

    model_dir = Path(model_dir)
    read_manifest(model_dir)
    try:
        return keras.saving.load_model(model_dir / "model.keras", safe_mode=True, compile=False)
    except (OSError, ValueError, KeyError) as error:
        raise ModelDirectoryError(
            f"{model_dir / 'model.keras'} could not be loaded: {error}"
        ) from None
