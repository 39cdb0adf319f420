"""The residual multitask MLP of the paper (section 4), its loss, optimiser and ablation variants.

The network maps one preprocessed spectrum (4000 standardised fluxes) to the three scaled labels:

- stem: ``Dense -> LayerNorm -> GELU`` (then dropout);
- ``B`` residual blocks, pre-norm: ``LN -> Dense -> GELU -> LN -> Dense -> Dropout``, added to a
  shortcut that is the identity when the width is unchanged and ``LN -> Dense`` when it changes
  (the separate LayerNorm on the projection is what makes the paper's count 542,771);
- a final LayerNorm, then one head per label (``Dense -> GELU`` layers with dropout, then a scalar).

GELU is the exact (erf) form, Keras 3's default. Every choice the tuner searches is an argument of
:func:`build_model`. Keras is imported inside the functions, so importing this module stays cheap;
the backend is Keras's (TensorFlow by default, JAX with ``KERAS_BACKEND=jax``).
"""

import inspect
import math

import numpy as np

from stellar_nb import schema

__all__ = [
    "HEAD_UNITS",
    "VARIANTS",
    "architecture",
    "build_model",
    "compile_model",
    "count_parameters",
    "learning_rate_at",
    "loss_weights",
    "training_settings",
]

#: Hidden widths of each label's head selected by the paper's search (:func:`build_model`'s default).
HEAD_UNITS = {"teff": (48, 32), "feh": (16,), "logg": (48,)}

#: Ablations of section 6: name -> changes to the architecture.
VARIANTS = {
    "paper": {},
    "no_skip": {"skip": False},
    "no_skip_no_norm": {"skip": False, "layer_norm": False},
    "single_task": {"single_task": True},
}


def _defaults(function, exclude=()):
    """Keyword defaults of ``function``'s signature: the one place each default is written."""
    return {
        name: parameter.default
        for name, parameter in inspect.signature(function).parameters.items()
        if parameter.default is not inspect.Parameter.empty and name not in exclude
    }


def architecture(variant="paper", **changes):
    """Return a JSON-ready architecture: :func:`build_model`'s defaults (the paper's selected
    configuration), a named variant's changes to them, then ``changes``.

    Raises
    ------
    ValueError
        If ``variant`` is not one of :data:`VARIANTS`.
    TypeError
        If a change names no argument of :func:`build_model`.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; allowed: {', '.join(VARIANTS)}")
    defaults = _defaults(build_model, exclude=("seed",))
    unknown = set(changes) - set(defaults)
    if unknown:
        raise TypeError(
            f"unknown architecture argument(s) {sorted(unknown)}; allowed: {sorted(defaults)}"
        )
    spec = {**defaults, **VARIANTS[variant], **changes}
    spec["input_size"] = int(spec["input_size"])
    spec["block_units"] = [int(units) for units in spec["block_units"]]
    spec["labels"] = [str(label) for label in spec["labels"]]
    head_units = HEAD_UNITS if spec["head_units"] is None else spec["head_units"]
    spec["head_units"] = {label: [int(u) for u in head_units[label]] for label in spec["labels"]}
    return spec


def training_settings(**changes):
    """Return :func:`compile_model`'s settings (its defaults, the paper's) with ``changes`` applied.

    Raises
    ------
    TypeError
        If a change names no setting of :func:`compile_model`.
    """
    defaults = _defaults(compile_model)
    unknown = set(changes) - set(defaults)
    if unknown:
        raise TypeError(
            f"unknown training setting(s) {sorted(unknown)}; allowed: {sorted(defaults)}"
        )
    return {**defaults, **changes}


def _check(labels, head_units, block_units, dropouts):
    if not labels:
        raise ValueError("labels must name at least one label")
    unknown = [label for label in labels if label not in schema.LABELS]
    if unknown:
        raise ValueError(f"unknown label(s) {unknown}; allowed: {', '.join(schema.LABELS)}")
    missing = [label for label in labels if label not in head_units]
    if missing:
        raise ValueError(f"head_units has no entry for label(s) {missing}")
    widths = list(block_units) + [u for label in labels for u in head_units[label]]
    if any(int(units) <= 0 for units in widths):
        raise ValueError(
            f"layer widths must be positive, got blocks {block_units} and heads {head_units}"
        )
    for name, rate in dropouts.items():
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {rate}")


def build_model(
    input_size=schema.GRID_SIZE,
    *,
    stem_units=128,
    stem_dropout=0.0,
    block_units=(64,),
    block_dropout=0.4,
    head_units=None,
    head_dropout=0.0,
    labels=schema.LABELS,
    skip=True,
    layer_norm=True,
    single_task=False,
    seed=0,
):
    """Build the residual multitask MLP (uncompiled).

    Parameters
    ----------
    input_size : int
        Pixels per preprocessed spectrum.
    stem_units : int
        Width of the stem Dense layer (tuner: 64-128).
    stem_dropout : float
        Dropout after the stem (tuner: 0-0.5).
    block_units : sequence of int
        Width of each residual block; its length is ``B`` (tuner: 1-2 blocks of 32-64).
    block_dropout : float
        Dropout at the end of each block's main branch (tuner: 0-0.4).
    head_units : mapping of str to sequence of int, optional
        Hidden widths of each label's head; :data:`HEAD_UNITS` (the paper's) by default.
    head_dropout : float
        Dropout after each hidden head layer (tuner: 0-0.4).
    labels : sequence of str
        Labels predicted, one output each, named after the label.
    skip : bool
        Residual shortcuts (the ``no_skip`` ablation sets False).
    layer_norm : bool
        LayerNorm layers (the ``no_skip_no_norm`` ablation sets False).
    single_task : bool
        One independent stem and trunk per label instead of a shared one (the single-task ablation,
        trained as one model whose parameters do not interact).
    seed : int
        Seed of weight initialisation and dropout masks.

    Returns
    -------
    keras.Model
        Input ``spectrum`` of shape ``(input_size,)``; a dict of outputs ``{label: (n, 1)}``.

    Examples
    --------
    >>> model = build_model()  # doctest: +SKIP
    >>> count_parameters(model)  # doctest: +SKIP
    542771
    """
    import keras

    head_units = HEAD_UNITS if head_units is None else head_units
    labels = tuple(labels)
    _check(
        labels,
        head_units,
        block_units,
        {
            "stem_dropout": stem_dropout,
            "block_dropout": block_dropout,
            "head_dropout": head_dropout,
        },
    )
    counter = iter(range(1_000_000))

    def init():
        return keras.initializers.GlorotUniform(seed=seed * 1000 + next(counter))

    def dense(units, name):
        return keras.layers.Dense(int(units), kernel_initializer=init(), name=name)

    def norm(x, name):
        return keras.layers.LayerNormalization(name=name)(x) if layer_norm else x

    def dropout(x, rate, name):
        return (
            keras.layers.Dropout(rate, seed=seed * 1000 + next(counter), name=name)(x)
            if rate > 0
            else x
        )

    def gelu(x, name):
        return keras.layers.Activation("gelu", name=name)(x)

    def trunk(x, prefix):
        x = gelu(
            norm(dense(stem_units, f"{prefix}stem_dense")(x), f"{prefix}stem_norm"),
            f"{prefix}stem_gelu",
        )
        x = dropout(x, stem_dropout, f"{prefix}stem_dropout")
        width = int(stem_units)
        for b, units in enumerate(block_units, start=1):
            name = f"{prefix}block{b}"
            t = dense(units, f"{name}_dense1")(norm(x, f"{name}_norm1"))
            t = norm(gelu(t, f"{name}_gelu"), f"{name}_norm2")
            t = dropout(dense(units, f"{name}_dense2")(t), block_dropout, f"{name}_dropout")
            if skip:
                shortcut = x
                if int(units) != width:
                    shortcut = dense(units, f"{name}_shortcut_dense")(
                        norm(x, f"{name}_shortcut_norm")
                    )
                t = keras.layers.Add(name=f"{name}_add")([t, shortcut])
            x, width = t, int(units)
        return norm(x, f"{prefix}final_norm")

    def head(x, label):
        for position, units in enumerate(head_units[label], start=1):
            x = gelu(dense(units, f"{label}_dense{position}")(x), f"{label}_gelu{position}")
            x = dropout(x, head_dropout, f"{label}_dropout{position}")
        return dense(1, label)(x)

    inputs = keras.Input(shape=(int(input_size),), name="spectrum")
    if single_task:
        outputs = {label: head(trunk(inputs, f"{label}_"), label) for label in labels}
    else:
        shared = trunk(inputs, "")
        outputs = {label: head(shared, label) for label in labels}
    return keras.Model(inputs, outputs, name="residual_multitask_mlp")


def count_parameters(model):
    """Number of trainable parameters of a Keras model."""
    return int(sum(math.prod(weight.shape) for weight in model.trainable_weights))


def loss_weights(scaled_labels, labels=schema.LABELS):
    """Inverse variance of each scaled training label: the weight of its Huber loss.

    Parameters
    ----------
    scaled_labels : array_like, shape (n, len(labels))
        Training labels after the label scaler.
    labels : sequence of str
        Column names, in order.

    Returns
    -------
    dict
        ``{label: 1 / var}``.

    Raises
    ------
    ValueError
        If the shape does not match ``labels`` or a label has zero variance.
    """
    values = np.asarray(scaled_labels, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != len(labels):
        raise ValueError(f"scaled_labels must have shape (n, {len(labels)}), got {values.shape}")
    variance = values.var(axis=0)
    if np.any(variance <= 0):
        raise ValueError(
            f"a training label has zero variance: {dict(zip(labels, variance, strict=True))}"
        )
    return {label: float(1.0 / v) for label, v in zip(labels, variance, strict=True)}


def learning_rate_at(step, *, learning_rate, total_steps, warmup_fraction=0.05, floor=0.01):
    """The learning rate at ``step``: linear warm-up from 0, then cosine decay to ``floor * lr``.

    The same schedule as the Keras ``CosineDecay`` that :func:`compile_model` builds, in numpy,
    for plots.
    """
    step = np.asarray(step, dtype=np.float64)
    warmup = _warmup_steps(total_steps, warmup_fraction)
    decay = max(total_steps - warmup, 1)
    rising = learning_rate * step / max(warmup, 1)
    progress = np.clip((step - warmup) / decay, 0.0, 1.0)
    cosine = learning_rate * ((1 - floor) * 0.5 * (1 + np.cos(np.pi * progress)) + floor)
    return np.where(step < warmup, rising, cosine)


def _warmup_steps(total_steps, warmup_fraction):
    if total_steps <= 0:
        raise ValueError(f"total_steps must be positive, got {total_steps}")
    if not 0.0 <= warmup_fraction < 1.0:
        raise ValueError(f"warmup_fraction must be in [0, 1), got {warmup_fraction}")
    return round(warmup_fraction * total_steps)


def compile_model(
    model,
    *,
    weights,
    total_steps,
    learning_rate=7e-4,
    weight_decay=0.01,
    warmup_fraction=0.05,
    floor=0.01,
    huber_delta=1.0,
):
    """Compile ``model`` with the paper's loss and optimiser.

    Parameters
    ----------
    model : keras.Model
        From :func:`build_model`.
    weights : dict
        Loss weight per label (:func:`loss_weights`).
    total_steps : int
        Optimiser steps of the whole run (epochs x batches per epoch).
    learning_rate, weight_decay : float
        Peak learning rate and AdamW's decoupled weight decay.
    warmup_fraction : float
        Fraction of the steps spent warming up linearly from 0.
    floor : float
        Final learning rate as a fraction of the peak.
    huber_delta : float
        Huber loss threshold, in scaled label units.
    """
    import keras

    warmup = _warmup_steps(total_steps, warmup_fraction)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0,
        decay_steps=max(total_steps - warmup, 1),
        alpha=floor,
        warmup_target=learning_rate,
        warmup_steps=warmup,
    )
    names = list(model.output_names)
    missing = [name for name in names if name not in weights]
    if missing:
        raise ValueError(f"weights has no entry for output(s) {missing}")
    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate=schedule, weight_decay=weight_decay),
        loss={name: keras.losses.Huber(delta=huber_delta) for name in names},
        loss_weights={name: float(weights[name]) for name in names},
        metrics={name: [keras.metrics.MeanAbsoluteError(name="mae")] for name in names},
    )
    return model
