"""Figures of the preprocessing stage (notebook 02): each takes arrays and returns a plotly figure."""

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from stellar_nb import schema

__all__ = [
    "LINES",
    "plot_augmentation",
    "plot_bad_pixels",
    "plot_clamped_ends",
    "plot_label_scaling",
    "plot_method_difference",
    "plot_normalised",
    "plot_raw_spectra",
    "plot_rest_frame",
    "plot_speed",
]

#: Vacuum rest wavelengths (Angstrom) of the lines used for zooms.
LINES = {
    "Ca II K": 3934.78,
    "Ca II H": 3969.59,
    "H-delta": 4102.89,
    "H-beta": 4862.68,
    "Mg b": 5174.1,
    "H-alpha": 6564.61,
}
_ZOOMS = {"H-alpha": (6500.0, 6630.0), "Ca II H & K": (3900.0, 4000.0), "H-beta": (4820.0, 4905.0)}
_WAVELENGTH = "vacuum wavelength [A]"


def _layout(figure, title, y_title, x_title=_WAVELENGTH):
    figure.update_layout(
        title=title,
        xaxis_title=x_title,
        yaxis_title=y_title,
        template="plotly_white",
        legend={"orientation": "h", "y": -0.2},
    )
    return figure


def plot_raw_spectra(loglam_list, flux_list, names):
    """Raw spectra in flux units (the paper's Figure 2): levels set by distance, not physics."""
    figure = go.Figure()
    for loglam, flux, name in zip(loglam_list, flux_list, names, strict=True):
        figure.add_scatter(
            x=10.0 ** np.asarray(loglam, float), y=flux, name=name, mode="lines", line={"width": 1}
        )
    return _layout(
        figure,
        "Raw spectra: absolute flux levels differ by an order of magnitude",
        "flux [1e-17 erg/s/cm^2/A]",
    )


def plot_rest_frame(grid, observed, rest, rv_kms):
    """Observed vs rest-frame spectrum on the grid, with a dropdown of zooms on H-alpha, Ca II H & K, H-beta."""
    wavelength = 10.0**grid
    figure = go.Figure()
    figure.add_scatter(
        x=wavelength, y=observed, name=f"observed frame (rv = {rv_kms:+.0f} km/s)", mode="lines"
    )
    figure.add_scatter(
        x=wavelength, y=rest, name="rest frame (paper: shift, re-interpolate)", mode="lines"
    )
    for name, centre in LINES.items():
        figure.add_vline(
            x=centre,
            line={"dash": "dot", "color": "grey", "width": 1},
            annotation_text=name,
            annotation_position="top",
        )
    buttons = []
    for name, (low, high) in _ZOOMS.items():
        inside = (wavelength > low) & (wavelength < high)
        values = np.concatenate([observed[inside], rest[inside]])
        margin = 0.1 * np.ptp(values) + 1e-9
        buttons.append(
            {
                "label": name,
                "method": "relayout",
                "args": [
                    {
                        "xaxis.range": [low, high],
                        "yaxis.range": [values.min() - margin, values.max() + margin],
                    }
                ],
            }
        )
    buttons.append(
        {
            "label": "whole grid",
            "method": "relayout",
            "args": [{"xaxis.autorange": True, "yaxis.autorange": True}],
        }
    )
    figure.update_layout(
        updatemenus=[{"buttons": buttons, "direction": "down", "x": 1.0, "y": 1.15}]
    )
    figure.update_xaxes(range=list(_ZOOMS["H-alpha"]))
    first = buttons[0]["args"][0]
    figure.update_yaxes(range=first["yaxis.range"])
    return _layout(
        figure,
        "Rest-frame shift: lines move onto their laboratory wavelengths",
        "standardised flux",
    )


def plot_clamped_ends(loglam, flux, grid, resampled):
    """A spectrum's own coverage vs the common grid: outside it, the nearest available flux."""
    wavelength = 10.0 ** np.asarray(loglam, float)
    figure = go.Figure()
    figure.add_scatter(
        x=wavelength, y=flux, name="observed pixels", mode="lines", line={"width": 1}
    )
    figure.add_scatter(
        x=10.0**grid,
        y=resampled,
        name="resampled onto the grid (clamped)",
        mode="lines",
        line={"width": 1},
    )
    for low, high in ((10.0 ** grid[0], wavelength[0]), (wavelength[-1], 10.0 ** grid[-1])):
        if high > low:
            figure.add_vrect(x0=low, x1=high, fillcolor="orange", opacity=0.15, line_width=0)
    return _layout(figure, "Clamped ends: the grid reaches past the spectrum (shaded)", "flux")


def plot_normalised(grid, spectra, planck, teff):
    """Standardised spectra with Planck continua at their Teff (the paper's Figure 3); a slider picks the star."""
    wavelength = 10.0**grid
    figure = go.Figure()
    for index, value in enumerate(teff):
        visible = index == 0
        figure.add_scatter(
            x=wavelength,
            y=spectra[index],
            name=f"star {index}: Teff {value:.0f} K",
            mode="lines",
            line={"width": 1},
            visible=visible,
        )
        figure.add_scatter(
            x=wavelength,
            y=planck[index],
            name=f"Planck {value:.0f} K (standardised)",
            mode="lines",
            line={"color": "red"},
            visible=visible,
        )
    steps = []
    for index, value in enumerate(teff):
        visible = [False] * (2 * len(teff))
        visible[2 * index] = visible[2 * index + 1] = True
        steps.append(
            {"label": f"{value:.0f} K", "method": "update", "args": [{"visible": visible}]}
        )
    figure.update_layout(
        sliders=[
            {"active": 0, "currentvalue": {"prefix": "Teff: "}, "steps": steps, "pad": {"t": 50}}
        ]
    )
    return _layout(
        figure,
        "Standardised spectra and Planck continua: the shape survives standardisation",
        "standardised flux",
    )


def plot_method_difference(grid, paper, single):
    """The paper's two interpolations vs one: the spectra and their difference."""
    wavelength = 10.0**grid
    figure = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.65, 0.35], vertical_spacing=0.05
    )
    figure.add_scatter(
        x=wavelength,
        y=paper,
        name="paper: resample, then shift and re-interpolate",
        mode="lines",
        line={"width": 1},
        row=1,
        col=1,
    )
    figure.add_scatter(
        x=wavelength,
        y=single,
        name="single: shift the pixels, interpolate once",
        mode="lines",
        line={"width": 1},
        row=1,
        col=1,
    )
    figure.add_scatter(
        x=wavelength,
        y=paper - single,
        name="paper - single",
        mode="lines",
        line={"width": 1, "color": "black"},
        row=2,
        col=1,
    )
    figure.update_yaxes(title_text="standardised flux", row=1, col=1)
    figure.update_yaxes(title_text="difference", row=2, col=1)
    figure.update_xaxes(title_text=_WAVELENGTH, row=2, col=1)
    rms = float(np.sqrt(np.mean((paper - single) ** 2)))
    figure.update_layout(
        title=f"Two interpolations vs one: RMS difference {rms:.4f} (units of the spectrum's std)",
        template="plotly_white",
        legend={"orientation": "h", "y": -0.25},
    )
    return figure


def plot_bad_pixels(loglam, flux, bad, grid, treated, untreated):
    """Raw pixels with bad ones marked, and the preprocessed spectrum with and without the treatment."""
    wavelength = 10.0 ** np.asarray(loglam, float)
    figure = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.06,
        subplot_titles=("raw flux, bad pixels marked", "preprocessed"),
    )
    figure.add_scatter(
        x=wavelength, y=flux, name="raw flux", mode="lines", line={"width": 1}, row=1, col=1
    )
    figure.add_scatter(
        x=wavelength[bad],
        y=np.asarray(flux)[bad],
        name="bad (ivar = 0 or fatal and_mask)",
        mode="markers",
        marker={"color": "red", "size": 5},
        row=1,
        col=1,
    )
    figure.add_scatter(
        x=10.0**grid,
        y=untreated,
        name="bad pixels used as they are",
        mode="lines",
        line={"width": 1, "color": "grey"},
        row=2,
        col=1,
    )
    figure.add_scatter(
        x=10.0**grid,
        y=treated,
        name="bad pixels interpolated (package)",
        mode="lines",
        line={"width": 1},
        row=2,
        col=1,
    )
    figure.update_xaxes(title_text=_WAVELENGTH, row=2, col=1)
    figure.update_layout(
        title="Bad pixels: spikes ring through the spline and shrink every other feature",
        template="plotly_white",
        legend={"orientation": "h", "y": -0.2},
    )
    return figure


def plot_label_scaling(labels, scaled):
    """Histograms of each label in physical units and after RobustScaler (median 0, IQR 1)."""
    figure = make_subplots(rows=2, cols=3, vertical_spacing=0.18)
    for column, label in enumerate(schema.LABELS):
        name, unit = schema.LABEL_UNITS[label]
        figure.add_histogram(
            x=labels[:, column], name=f"{name} [{unit}]", nbinsx=40, row=1, col=column + 1
        )
        figure.add_histogram(
            x=scaled[:, column], name=f"{name} scaled", nbinsx=40, row=2, col=column + 1
        )
        figure.update_xaxes(title_text=f"{name} [{unit}]", row=1, col=column + 1)
        figure.update_xaxes(title_text=f"{name}, scaled", row=2, col=column + 1)
    figure.update_layout(
        title="Labels before and after RobustScaler (fitted on train)",
        template="plotly_white",
        showlegend=False,
        bargap=0.05,
    )
    return figure


def plot_augmentation(grid, original, copies, window=(5100.0, 5300.0)):
    """A training spectrum and its noisy copies, zoomed on ``window`` (Angstrom)."""
    wavelength = 10.0**grid
    inside = (wavelength > window[0]) & (wavelength < window[1])
    figure = go.Figure()
    for index, copy in enumerate(copies):
        level = float(np.std(copy - original) / np.std(original))
        figure.add_scatter(
            x=wavelength[inside],
            y=copy[inside],
            name=f"copy {index + 1}: noise {100 * level:.1f}% of std",
            mode="lines",
            line={"width": 1},
        )
    figure.add_scatter(
        x=wavelength[inside],
        y=original[inside],
        name="original",
        mode="lines",
        line={"width": 2, "color": "black"},
    )
    return _layout(
        figure, "Augmentation: two noisy copies per training spectrum", "standardised flux"
    )


def plot_speed(result):
    """Throughput of the naive loop and the package (from :func:`stellar_nb.preprocess.naive.compare_speed`)."""
    names = ["naive SciPy loop", "package, 1 thread", f"package, {result['threads']} threads"]
    values = [result["naive_per_s"], result["one_thread_per_s"], result["threads_per_s"]]
    figure = go.Figure(
        go.Bar(
            x=names, y=values, text=[f"{value:,.0f}/s" for value in values], textposition="outside"
        )
    )
    return _layout(
        figure,
        f"Preprocessing throughput on {result['count']} spectra (max difference {result['max_difference']:.1e})",
        "spectra per second",
        x_title="",
    )
