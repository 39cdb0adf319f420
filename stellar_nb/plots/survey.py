"""Figures of the simulated survey: emulator realism, real versus emulated spectra, label
distributions per split (the paper's Figure 1) and the Cramer-Rao floor per S/N bin.

Each function takes results and returns a :class:`plotly.graph_objects.Figure`.
"""

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from stellar_nb import schema

__all__ = [
    "plot_crb",
    "plot_label_distributions",
    "plot_library_comparison",
    "plot_observed_spectrum",
    "plot_realism",
    "plot_residual_rms",
]

_SPLIT_COLOURS = {"train": "#1f77b4", "validation": "#ff7f0e", "test": "#2ca02c"}


def _axis_title(label):
    name, unit = schema.LABEL_UNITS[label]
    return f"{name} [{unit}]"


def plot_realism(report):
    """Per-wavelength held-out error of the emulator (from :func:`stellar_nb.emulator_fit.fit_emulator`).

    Parameters
    ----------
    report : dict
        With ``loglam``, ``per_pixel_rms``, ``per_pixel_median_abs`` and ``median_rms``.
    """
    wavelength = 10.0 ** np.asarray(report["loglam"])
    figure = go.Figure()
    figure.add_scatter(
        x=wavelength, y=100 * np.asarray(report["per_pixel_rms"]), name="RMS over stars"
    )
    figure.add_scatter(
        x=wavelength,
        y=100 * np.asarray(report["per_pixel_median_abs"]),
        name="median |difference|",
    )
    figure.update_layout(
        title=f"Emulator vs left-out MILES stars: median per-star RMS {100 * report['median_rms']:.2f} %",
        xaxis_title="rest-frame vacuum wavelength [A]",
        yaxis_title="fractional difference [%]",
        template="plotly_white",
    )
    return figure


def plot_residual_rms(bank):
    """How far real library stars sit from the emulator, per wavelength: the residual bank's RMS.

    Parameters
    ----------
    bank : stellar_nb.simulate.residuals.ResidualBank
        Held-out residuals of MILES (blue) and STELIB (red) stars, detrended.
    """
    wavelength = 10.0 ** np.asarray(bank.loglam)
    figure = go.Figure()
    figure.add_scatter(x=wavelength, y=100 * bank.pixel_rms(), name="RMS over library stars")
    figure.update_layout(
        title="Real stars around the emulator: held-out residual RMS (the misfit flag's error model)",
        xaxis_title="rest-frame vacuum wavelength [A]",
        yaxis_title="RMS of ln(real / emulated) [%]",
        yaxis_range=[0, 20],
        template="plotly_white",
    )
    return figure


def plot_library_comparison(loglam, real, emulated, labels, names=None):
    """Real library spectra next to emulated ones at the same labels, one panel per star.

    Parameters
    ----------
    loglam : array_like
        (npix,) rest-frame log10 vacuum wavelength.
    real, emulated : array_like
        (n, npix) spectra; each is divided by its mean so they share a scale.
    labels : array_like
        (n, 3) teff, feh, logg.
    names : sequence of str, optional
        Star names for the panel titles.
    """
    real, emulated = np.atleast_2d(real), np.atleast_2d(emulated)
    labels = np.atleast_2d(labels)
    wavelength = 10.0 ** np.asarray(loglam)
    titles = [
        f"{names[i] + ': ' if names is not None else ''}Teff {t:.0f} K, [Fe/H] {f:+.2f}, log g {g:.2f}"
        for i, (t, f, g) in enumerate(labels)
    ]
    figure = make_subplots(rows=len(real), cols=1, shared_xaxes=True, subplot_titles=titles)
    for i in range(len(real)):
        for values, name, colour in (
            (real[i], "library", "black"),
            (emulated[i], "emulated", "red"),
        ):
            figure.add_scatter(
                x=wavelength,
                y=values / np.nanmean(values),
                name=name,
                line={"color": colour, "width": 1},
                showlegend=i == 0,
                row=i + 1,
                col=1,
            )
    figure.update_layout(height=260 * len(real), template="plotly_white")
    figure.update_xaxes(title_text="rest-frame vacuum wavelength [A]", row=len(real), col=1)
    return figure


def plot_observed_spectrum(loglam, flux, ivar, mask, model=None, title=None):
    """An observed spectrum with its 1-sigma noise, masked pixels marked and an optional model.

    Parameters
    ----------
    loglam, flux, ivar, mask : array_like
        Observed log10 vacuum wavelength, flux (1e-17 erg/s/cm^2/A), inverse variance, and_mask.
    model : array_like, optional
        Model flux on the same pixels (e.g. :func:`stellar_nb.emulator.fit_to_observed`).
    title : str, optional
    """
    wavelength = 10.0 ** np.asarray(loglam, dtype=float)
    flux, ivar, mask = np.asarray(flux), np.asarray(ivar), np.asarray(mask)
    sigma = np.where(ivar > 0, 1.0 / np.sqrt(np.where(ivar > 0, ivar, 1.0)), np.nan)
    figure = go.Figure()
    figure.add_scatter(
        x=wavelength, y=sigma, name="1-sigma noise", line={"color": "lightgray", "width": 1}
    )
    figure.add_scatter(x=wavelength, y=flux, name="flux", line={"color": "black", "width": 1})
    if model is not None:
        figure.add_scatter(x=wavelength, y=model, name="model", line={"color": "red", "width": 1})
    flagged = mask != 0
    figure.add_scatter(
        x=wavelength[flagged],
        y=flux[flagged],
        mode="markers",
        name="and_mask set",
        marker={"color": "orange", "size": 4},
    )
    figure.update_layout(
        title=title,
        xaxis_title="observed vacuum wavelength [A]",
        yaxis_title="flux [1e-17 erg/s/cm^2/A]",
        template="plotly_white",
    )
    return figure


def plot_label_distributions(frames, prefix="catalog_"):
    """Histograms of the three labels for each split (the paper's Figure 1).

    Parameters
    ----------
    frames : dict
        split name -> DataFrame with columns ``{prefix}teff``, ``{prefix}feh``, ``{prefix}logg``.
    prefix : str
        ``"catalog_"`` (the labels a model is trained on) or ``"true_"``.
    """
    figure = make_subplots(rows=1, cols=3, subplot_titles=[_axis_title(x) for x in schema.LABELS])
    for split, frame in frames.items():
        for column, label in enumerate(schema.LABELS, start=1):
            figure.add_histogram(
                x=frame[f"{prefix}{label}"],
                name=split,
                histnorm="probability density",
                opacity=0.55,
                marker_color=_SPLIT_COLOURS.get(split),
                showlegend=column == 1,
                legendgroup=split,
                row=1,
                col=column,
            )
    figure.update_layout(barmode="overlay", template="plotly_white", height=360)
    return figure


def plot_crb(summary):
    """Cramer-Rao bound per S/N bin (from :func:`stellar_nb.simulate.crb_summary`), log axes."""
    centre = np.sqrt(summary["snr_lo"].to_numpy() * summary["snr_hi"].to_numpy())
    figure = make_subplots(rows=1, cols=3, subplot_titles=[_axis_title(x) for x in schema.LABELS])
    for column, label in enumerate(schema.LABELS, start=1):
        figure.add_scatter(
            x=centre,
            y=summary[f"crb_{label}"],
            mode="lines+markers",
            name=f"CRB {label}",
            showlegend=False,
            row=1,
            col=column,
        )
        figure.update_xaxes(type="log", title_text="S/N", row=1, col=column)
        figure.update_yaxes(type="log", row=1, col=column)
    figure.update_layout(
        title="Cramer-Rao floor (median sigma per S/N bin)", template="plotly_white", height=360
    )
    return figure
