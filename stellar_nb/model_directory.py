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
import zipfile
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
        If the folder or a file is missing, a required file is not listed in the manifest (always
        checked) or is corrupt, the manifest is malformed, or the layout version differs.
    """
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelDirectoryError(f"model directory {model_dir} does not exist")
    manifest = _read_json(model_dir / MANIFEST)
    if not isinstance(manifest, dict):
        raise ModelDirectoryError(
            f"{model_dir / MANIFEST} must hold a JSON object, not {type(manifest).__name__}"
        )
    version = manifest.get("layout_version")
    if version != LAYOUT_VERSION:
        versions = manifest.get("versions")
        made_by = versions.get("stellar_nb") if isinstance(versions, dict) else None
        raise ModelDirectoryError(
            f"{model_dir / MANIFEST}: model layout version {version!r}, but this stellar_nb "
            f"reads layout {LAYOUT_VERSION}; retrain it with 'stellar-nb train' or use the "
            f"stellar_nb version named in the manifest ({made_by})"
        )
    listed = manifest.get("files")
    if not isinstance(listed, dict) or not all(isinstance(value, str) for value in listed.values()):
        raise ModelDirectoryError(
            f"{model_dir / MANIFEST}: 'files' must map each file name to its SHA-256"
        )
    for name in REQUIRED_FILES:
        path = model_dir / name
        if not path.is_file():
            raise ModelDirectoryError(f"missing file {path}")
        _check_listed(model_dir, name, listed, verify)
    return manifest


def _check_listed(model_dir, name, listed, verify):
    # A file the manifest does not vouch for is refused, never read unchecked: a stray or swapped
    # weights.npz would otherwise give confident nonsense.
    path = model_dir / name
    if name not in listed:
        raise ModelDirectoryError(
            f"{path} is not listed in {model_dir / MANIFEST}; the loader reads only files whose "
            "SHA-256 the manifest records (rewrite the directory with stellar_nb.model_directory.write)"
        )
    if verify and files.sha256sum(path) != listed[name]:
        raise ModelDirectoryError(f"{path} is corrupt: its SHA-256 differs from the manifest")


def _fail(path, problem):
    raise ModelDirectoryError(f"{path}: {problem}")


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
        If a file is missing, not listed in the manifest or corrupt, the layout version differs,
        or a part is malformed: ``model.json`` without a valid ``architecture``, weights with
        missing, unexpected or wrongly shaped arrays (checked against the architecture here, not
        at prediction time), a ``preprocessor.json`` that does not rebuild a fitted preprocessor
        of the architecture's input size. The message names the file and what is wrong.
    """
    from stellar_nb import calibration, inference

    model_dir = Path(model_dir)
    manifest = read_manifest(model_dir, verify=verify)
    description = _read_json(model_dir / "model.json")
    if not isinstance(description, dict) or "architecture" not in description:
        _fail(model_dir / "model.json", "has no 'architecture' (the network's description)")
    architecture = description["architecture"]
    try:
        inference.check_architecture(architecture)
    except ValueError as error:
        _fail(model_dir / "model.json", f"malformed 'architecture': {error}")
    if manifest.get("labels", architecture["labels"]) != list(architecture["labels"]):
        _fail(
            model_dir / "model.json",
            f"labels {architecture['labels']} differ from {model_dir / MANIFEST}'s "
            f"{manifest.get('labels')}",
        )
    try:
        with np.load(model_dir / "weights.npz") as archive:
            weights = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        _fail(model_dir / "weights.npz", f"not a readable numpy archive: {error}")
    problems = inference.weight_problems(architecture, weights)
    if problems:
        _fail(
            model_dir / "weights.npz",
            "does not match model.json's architecture: " + "; ".join(problems),
        )
    processor = _read_preprocessor(model_dir / "preprocessor.json", architecture)
    metrics = _read_json(model_dir / "metrics.json")
    try:
        calibration.model_term(metrics)
    except (AttributeError, TypeError, ValueError) as error:
        _fail(model_dir / "metrics.json", f"malformed calibration terms: {error}")
    return {
        "description": description,
        "weights": weights,
        "preprocessor": processor,
        "metrics": metrics,
    }


def _read_preprocessor(path, architecture):
    from stellar_nb import preprocess

    state = _read_json(path)
    try:
        processor = preprocess.Preprocessor.from_dict(state)
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        _fail(path, f"does not describe a preprocessor: {error!r}")
    if processor.grid_size != architecture["input_size"]:
        _fail(
            path,
            f"makes {processor.grid_size}-pixel inputs, but the architecture takes "
            f"{architecture['input_size']}",
        )
    scaler = getattr(processor, "label_scaler_", None)
    if scaler is None or not hasattr(scaler, "center_"):
        _fail(path, "has no fitted 'label_scaler', so labels cannot be reported in physical units")
    absent = sorted(set(architecture["labels"]) - set(scaler.label_names))
    if absent:
        _fail(path, f"its label scaler lacks {absent}")
    if not (
        np.all(np.isfinite(scaler.center_))
        and np.all(np.isfinite(scaler.scale_) & (scaler.scale_ > 0))
    ):
        _fail(path, "its label scaler's center and scale must be finite, scale positive")
    return processor


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
        If the record is missing, not valid JSON or (when the manifest lists it, as it always
        lists history and metrics) its SHA-256 differs; the message names the file.
    """
    if name not in RECORDS:
        raise ValueError(f"unknown model record {name!r}; allowed: {', '.join(RECORDS)}")
    folder = pretrained_dir() if model_dir is None else Path(model_dir)
    file_name = f"{name}.json"
    listed = read_manifest(folder, verify=False).get("files", {})
    # evaluation and real_stars are reports written later by --out; they are checked when the
    # manifest lists them and read as reports otherwise (they never change a prediction)
    if file_name in REQUIRED_FILES or file_name in listed:
        _check_listed(folder, file_name, listed, verify=True)
    return _read_json(folder / file_name)


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
