"""Evaluation figures: predicted against true labels coloured by point density (the paper's
Figure 5), and each model's error next to the Cramer-Rao floor."""

import numpy as np
import plotly.graph_objects as go
import plotly.subplots
from scipy import stats

from stellar_nb import schema

__all__ = ["kde_density", "plot_error_vs_floor", "plot_kde_scatter"]


def kde_density(x, y, *, max_fit_points=2000, seed=0):
    """Gaussian-KDE density of the points ``(x, y)``, evaluated at each point.

    The kernel is fitted on at most ``max_fit_points`` points (a seeded subsample), in coordinates
    scaled to unit standard deviation, so 15,000 points take a fraction of a second.

    Returns
    -------
    numpy.ndarray
        Density per point, normalised to a maximum of 1.
    """
    points = np.vstack([np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)])
    if points.shape[1] < 3:
        raise ValueError(f"need at least 3 points for a density, got {points.shape[1]}")
    scale = points.std(axis=1, keepdims=True)
    scale[scale == 0] = 1.0
    points = points / scale
    rng = np.random.default_rng(seed)
    fit = points
    if points.shape[1] > max_fit_points:
        fit = points[:, rng.choice(points.shape[1], max_fit_points, replace=False)]
    try:
        density = stats.gaussian_kde(fit)(points)
    except np.linalg.LinAlgError:
        # Collinear points (e.g. a constant offset) have a singular covariance: use the density
        # along the line instead.
        density = stats.gaussian_kde(fit.sum(axis=0))(points.sum(axis=0))
    return density / density.max()


def plot_kde_scatter(true, predicted, *, labels=schema.LABELS, title=None, max_points=15_000):
    """Predicted against true labels, one panel per label, coloured by KDE point density.

    Parameters
    ----------
    true, predicted : array_like, shape (n, len(labels))
        Labels in physical units.
    labels : sequence of str
        Label names, in column order.
    title : str, optional
        Figure title.
    max_points : int
        Points drawn per panel (a seeded subsample beyond that; the MAE uses all points).
    """
    true, predicted = np.asarray(true, dtype=float), np.asarray(predicted, dtype=float)
    if true.shape != predicted.shape or true.ndim != 2 or true.shape[1] != len(labels):
        raise ValueError(
            f"true and predicted must both have shape (n, {len(labels)}), got {true.shape} and {predicted.shape}"
        )
    names = [f"{schema.LABEL_UNITS[label][0]} [{schema.LABEL_UNITS[label][1]}]" for label in labels]
    figure = plotly.subplots.make_subplots(rows=1, cols=len(labels), subplot_titles=names)
    keep = np.arange(len(true))
    if len(keep) > max_points:
        keep = np.sort(np.random.default_rng(0).choice(len(keep), max_points, replace=False))
    for column, label in enumerate(labels):
        x, y = true[keep, column], predicted[keep, column]
        order = np.argsort(density := kde_density(x, y))
        mae = np.mean(np.abs(predicted[:, column] - true[:, column]))
        figure.add_trace(
            go.Scattergl(
                x=x[order],
                y=y[order],
                mode="markers",
                marker={"color": density[order], "colorscale": "Viridis", "size": 3},
                name=f"{label} (MAE {mae:.3g})",
                hovertemplate="true %{x:.3g}<br>predicted %{y:.3g}<extra></extra>",
            ),
            row=1,
            col=column + 1,
        )
        low, high = np.nanmin([x.min(), y.min()]), np.nanmax([x.max(), y.max()])
        figure.add_trace(
            go.Scatter(
                x=[low, high],
                y=[low, high],
                mode="lines",
                showlegend=False,
                line={"color": "red", "dash": "dash"},
                hoverinfo="skip",
            ),
            row=1,
            col=column + 1,
        )
        figure.layout.annotations[column].text = f"{names[column]}<br>MAE {mae:.3g}"
        figure.update_xaxes(title_text="true", row=1, col=column + 1)
        figure.update_yaxes(title_text="predicted", row=1, col=column + 1)
    figure.update_layout(title=title, height=380, showlegend=False, margin={"t": 90})
    return figure


def plot_error_vs_floor(
    errors, floor, *, labels=schema.LABELS, title="Mean absolute error and the Cramer-Rao floor"
):
    """Bar chart of each model's MAE per label, with the Cramer-Rao floor as a line.

    Parameters
    ----------
    errors : mapping of str to sequence of float
        Model name -> MAE per label (physical units).
    floor : sequence of float
        The floor per label (e.g. the mean absolute error an unbiased estimator at the
        Cramer-Rao bound would make, sqrt(2/pi) x sigma, averaged over the test stars).
    """
    figure = plotly.subplots.make_subplots(
        rows=1,
        cols=len(labels),
        subplot_titles=[
            f"{schema.LABEL_UNITS[label][0]} [{schema.LABEL_UNITS[label][1]}]" for label in labels
        ],
    )
    for column, label in enumerate(labels):
        names = list(errors)
        figure.add_trace(
            go.Bar(
                x=names, y=[errors[name][column] for name in names], name=label, showlegend=False
            ),
            row=1,
            col=column + 1,
        )
        figure.add_hline(
            y=float(floor[column]),
            line_dash="dash",
            line_color="red",
            annotation_text="Cramer-Rao floor",
            row=1,
            col=column + 1,
        )
    figure.update_layout(title=title, height=360)
    return figure
