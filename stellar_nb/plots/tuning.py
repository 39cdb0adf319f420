"""Tuning figures: the validation loss of each Keras Tuner trial, and which settings scored best."""

import numpy as np
import plotly.graph_objects as go

__all__ = ["plot_trial_history", "plot_trial_parallel_coordinates"]


def plot_trial_history(trials):
    """Validation loss of each trial in the order run, with the running best.

    Parameters
    ----------
    trials : sequence of dict
        Each with ``trial`` (its id, ordered as run) and ``val_loss`` (as in
        :func:`stellar_nb.tune.tune`'s result).
    """
    ordered = sorted(trials, key=lambda trial: str(trial["trial"]))
    loss = np.array([trial["val_loss"] for trial in ordered], dtype=float)
    steps = np.arange(1, len(loss) + 1)
    figure = go.Figure(
        [
            go.Scatter(x=steps, y=loss, mode="markers", name="trial"),
            go.Scatter(x=steps, y=np.minimum.accumulate(loss), mode="lines", name="best so far"),
        ]
    )
    figure.update_layout(
        title="Bayesian optimisation: validation loss per trial",
        xaxis_title="trial",
        yaxis_title="validation loss",
        height=350,
    )
    return figure


def plot_trial_parallel_coordinates(
    trials, names=("stem_units", "block_dropout", "learning_rate", "weight_decay")
):
    """Parallel coordinates of the numeric hyperparameters ``names``, coloured by validation loss.

    Learning rate and weight decay are drawn as log10.
    """
    loss = np.array([trial["val_loss"] for trial in trials], dtype=float)
    dimensions = []
    for name in names:
        values = np.array([trial["values"][name] for trial in trials], dtype=float)
        if name in ("learning_rate", "weight_decay"):
            values, name = np.log10(values), f"log10 {name}"
        dimensions.append({"label": name, "values": values})
    dimensions.append({"label": "validation loss", "values": loss})
    figure = go.Figure(
        go.Parcoords(
            line={"color": loss, "colorscale": "Viridis_r", "showscale": True},
            dimensions=dimensions,
        )
    )
    figure.update_layout(title="Which settings scored best (dark = lower loss)", height=380)
    return figure
