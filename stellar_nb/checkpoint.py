"""Checkpoints of the training loop (:func:`stellar_nb.train.fit`): save after an epoch, resume.

A checkpoint folder holds the model of the last finished epoch with its optimiser state
(``epoch-NNNN.keras``), the best weights so far (``best.weights.h5``, written by the loop) and
``state.json``: history, best epoch, the run's fingerprint and the dropout layers' seed states.
"""

import json

import numpy as np

from stellar_nb import files

__all__ = ["load", "save"]


def _seed_states(network):
    # Keras saves neither the dropout layers' seed-generator states nor restores them on loading;
    # without them a resumed run would draw other dropout masks than the uninterrupted one.
    return {
        layer.name: np.asarray(layer.seed_generator.state.numpy()).tolist()
        for layer in network.layers
        if getattr(layer, "seed_generator", None) is not None
    }


def _restore_seed_states(network, states):
    for layer in network.layers:
        if layer.name in states and getattr(layer, "seed_generator", None) is not None:
            state = layer.seed_generator.state
            state.assign(np.asarray(states[layer.name], dtype=state.dtype))


def load(folder, fingerprint):
    """The network and state saved in ``folder``, or None when it holds no checkpoint.

    Raises
    ------
    ValueError
        If the checkpoint's fingerprint differs from ``fingerprint`` (another run's).
    """
    import keras

    state_path = folder / "state.json"
    if not state_path.is_file():
        return None
    state = files.read_json(state_path)
    if state.get("fingerprint") != json.loads(json.dumps(fingerprint)):
        raise ValueError(
            f"the checkpoint in {folder} belongs to a different run (data, architecture or settings "
            "differ); pass restart=True (--restart) to discard it"
        )
    network = keras.saving.load_model(folder / state["model_file"], safe_mode=True)
    _restore_seed_states(network, state.get("seed_states", {}))
    return network, state


def save(folder, network, state):
    """Checkpoint ``network`` (with optimiser and dropout-seed states) and ``state`` atomically.

    The previous epoch's model file is removed once the new state points at the new one.
    """
    model_file = f"epoch-{state['epoch']:04d}.keras"
    files.atomic_write(folder / model_file, network.save)
    previous = folder / "state.json"
    old = files.read_json(previous).get("model_file") if previous.is_file() else None
    files.write_json(
        previous, {**state, "model_file": model_file, "seed_states": _seed_states(network)}
    )
    if old and old != model_file:
        (folder / old).unlink(missing_ok=True)
