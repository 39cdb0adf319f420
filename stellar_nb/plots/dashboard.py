"""The dashboard's two plotly figures; each function takes results and returns a figure.

- :func:`plot_overview`: the Kiel diagram of the test split (click a star to load it) beside the
  test-split residual distributions, with the current star on both;
- :func:`plot_spectrum`: the observed spectrum with the emulated one at the predicted labels,
  the flux residual, and each preprocessing step, all on one shared wavelength axis.

Each figure has the same traces in the same order whatever its input (empty traces where
something is unknown); the ``*_traces`` functions return the traces of the current star as dicts,
so the dashboard overwrites the data of the figures already on the page
(:meth:`stellar_nb.dashboard.plotly_view.PlotlyView.update`) instead of rebuilding them, which
would validate every array again.
"""

import numpy as np
import plotly.subplots

from stellar_nb import doppler, schema

__all__ = [
    "FIRST_STEP_TRACE",
    "KIEL_POINTS",
    "LINES",
    "PREPROCESSING_STEPS",
    "kiel_star_traces",
    "plot_overview",
    "plot_spectrum",
    "residual_histogram",
    "residual_shapes",
    "spectrum_traces",
]

#: Main stellar lines, vacuum wavelengths in Angstrom (SDSS wavelengths are vacuum).
LINES = {
    "Ca II K": (3934.78,),
    "Ca II H": (3969.59,),
    "H delta": (4102.89,),
    "G band": (4305.6,),
    "H gamma": (4341.69,),
    "H beta": (4862.68,),
    "Mg b": (5168.76, 5174.13, 5185.05),
    "Na D": (5891.58, 5897.56),
    "H alpha": (6564.61,),
    "Ca II triplet": (8500.36, 8544.44, 8664.52),
}
#: Steps of the preprocessing view, in the paper's order.
PREPROCESSING_STEPS = ("observed", "resampled", "rest frame", "standardised")
#: Position of the first preprocessing trace in :func:`plot_spectrum`.
FIRST_STEP_TRACE = 5
#: Test stars drawn on the Kiel diagram at most (a fixed random subset beyond that): plotly draws
#: each as an SVG element, and 15,000 would take seconds per redraw.
KIEL_POINTS = 2000
#: Bins of each residual histogram, spanning the central 99% of the residuals.
RESIDUAL_BINS = 40
_LAYOUT = {"template": "plotly_white", "margin": {"l": 60, "r": 20, "t": 50, "b": 40}}
_EMPTY = np.array([], dtype=float)


def _title(label):
    name, unit = schema.LABEL_UNITS[label]
    return f"{name} [{unit}]"


def residual_histogram(values, bins=RESIDUAL_BINS):
    """Bin centres, counts and width of a histogram over the central 99% of ``values`` (finite ones).

    Computed here and drawn as bars, so the browser receives 40 counts rather than every residual.
    """
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return _EMPTY, _EMPTY, 1.0
    low, high = np.percentile(values, [0.5, 99.5])
    if high <= low:
        low, high = low - 0.5, high + 0.5
    counts, edges = np.histogram(values, bins=bins, range=(low, high))
    return 0.5 * (edges[1:] + edges[:-1]), counts.astype(float), float(edges[1] - edges[0])


def plot_overview(test, residuals, analysis=None, max_points=KIEL_POINTS):
    """Kiel diagram of the test split beside its residual distributions, with the current star.

    Parameters
    ----------
    test : pandas.DataFrame
        ``catalog_teff``, ``catalog_feh``, ``catalog_logg`` and ``spec_id`` per test star.
    residuals : numpy.ndarray
        (n, 3) test-split residuals, predicted minus catalogue, in :data:`~stellar_nb.schema.LABELS` order.
    analysis : stellar_nb.dashboard.analysis.Analysis, optional
        The current star: its prediction with error bars, its catalogue labels and residuals.
    max_points : int
        Test stars drawn at most; a larger split shows a fixed random subset of this size (the
        residual histograms always use every star).

    Returns
    -------
    plotly.graph_objects.Figure
        Traces: test stars (log g against Teff coloured by [Fe/H]; ``customdata`` = spec_id),
        this star's catalogue labels, its prediction, then one residual histogram (bars) per label.
    """
    shown = test
    if len(test) > max_points:
        rows = np.sort(np.random.default_rng(0).choice(len(test), max_points, replace=False))
        shown = test.iloc[rows]
    kiel_title = "Kiel diagram of the test split (click a star)" if shown is test else (
        f"Kiel diagram: {len(shown):,} of {len(test):,} test stars (click one)")  # fmt: skip
    figure = plotly.subplots.make_subplots(
        rows=3, cols=2, specs=[[{"rowspan": 3}, {}], [None, {}], [None, {}]], column_widths=[0.64, 0.36],
        horizontal_spacing=0.16, vertical_spacing=0.16,
        subplot_titles=[kiel_title, *(f"residual {_title(label)}" for label in schema.LABELS)],
    )  # fmt: skip
    figure.add_scatter(
        x=shown.catalog_teff.to_numpy(), y=shown.catalog_logg.to_numpy(), mode="markers", name="test stars",
        customdata=shown.spec_id.astype(str).to_numpy(),
        marker={"size": 4, "color": shown.catalog_feh.to_numpy(), "colorscale": "Viridis", "opacity": 0.6,
                "colorbar": {"title": "[Fe/H]", "thickness": 10, "x": 0.57, "len": 0.9}},
        hovertemplate="spec_id %{customdata}<br>Teff %{x:.0f} K<br>log g %{y:.2f}<extra></extra>", row=1, col=1,
    )  # fmt: skip
    for trace in kiel_star_traces(analysis):
        figure.add_scatter(**trace, row=1, col=1)
    for row, label in enumerate(schema.LABELS, start=1):
        centres, counts, width = residual_histogram(residuals[:, row - 1])
        figure.add_bar(
            x=centres,
            y=counts,
            width=width,
            name=f"{label} residuals",
            marker={"color": "lightsteelblue"},
            showlegend=False,
            row=row,
            col=2,
        )
    figure.update_xaxes(title_text=_title("teff"), autorange="reversed", row=1, col=1)
    figure.update_yaxes(title_text=_title("logg"), autorange="reversed", row=1, col=1)
    figure.update_layout(
        **_LAYOUT,
        shapes=residual_shapes(analysis),
        clickmode="event",
        height=400,
        legend={"orientation": "h", "y": -0.12, "x": 0},
    )
    return figure


def kiel_star_traces(analysis=None):
    """The current star's two Kiel-diagram traces (catalogue labels, prediction), as dicts."""
    catalogue = (_EMPTY, _EMPTY) if analysis is None or analysis.catalogue is None else (
        [analysis.catalogue[0]], [analysis.catalogue[2]])  # fmt: skip
    if analysis is None:
        predicted, errors = (_EMPTY, _EMPTY), (_EMPTY, _EMPTY)
    else:
        predicted = ([analysis.prediction[0]], [analysis.prediction[2]])
        errors = ([analysis.sigma[0]], [analysis.sigma[2]])
    return [
        {"x": catalogue[0], "y": catalogue[1], "mode": "markers", "name": "catalogue",
         "marker": {"symbol": "circle-open", "size": 14, "color": "black", "line": {"width": 2}}},
        {"x": predicted[0], "y": predicted[1], "mode": "markers", "name": "predicted",
         "error_x": {"array": errors[0]}, "error_y": {"array": errors[1]},
         "marker": {"symbol": "star", "size": 16, "color": "red", "line": {"width": 1, "color": "black"}}},
    ]  # fmt: skip


def residual_shapes(analysis=None):
    """Red lines at the current star's residuals on the three histograms of :func:`plot_overview`."""
    if analysis is None or analysis.residual is None:
        return []
    return [
        {"type": "line", "xref": f"x{axis}", "yref": f"y{axis} domain", "x0": value, "x1": value,
         "y0": 0, "y1": 1, "line": {"color": "red", "width": 2}}
        for axis, value in zip((2, 3, 4), analysis.residual, strict=True)
    ]  # fmt: skip


def _line_markers(rv_kms, low, high):
    factor = doppler.wavelength_factor(rv_kms)
    shapes, annotations = [], []
    for name, wavelengths in LINES.items():
        for index, rest in enumerate(wavelengths):
            observed = rest * factor
            if not low <= observed <= high:
                continue
            shapes.append({
                "type": "line", "x0": observed, "x1": observed, "xref": "x", "yref": "y domain", "y0": 0, "y1": 1,
                "line": {"color": "rgba(120,120,120,0.6)", "width": 1, "dash": "dot"},
            })  # fmt: skip
            if index == 0:
                annotations.append({
                    "x": observed, "y": 1.0, "xref": "x", "yref": "y domain", "text": name, "showarrow": False,
                    "textangle": -90, "xanchor": "right", "yanchor": "top", "font": {"size": 10},
                })  # fmt: skip
    return shapes, annotations


def plot_spectrum(analysis=None, steps=PREPROCESSING_STEPS):
    """The observed spectrum, the emulated one at the predicted labels, the residual, the preprocessing.

    Three panels on one wavelength axis (zooming one zooms all):

    1. observed flux, masked pixels (ivar = 0 or a fatal and_mask bit), the emulated spectrum at the
       prediction fitted to the observed one (:func:`stellar_nb.emulator.fit_to_observed`), the
       Planck continuum at the predicted Teff, and dotted markers at the main lines (Balmer
       series, Ca II H and K, G band, Mg b, Na D, Ca II triplet), shifted to the observed frame;
    2. observed minus emulated flux;
    3. the preprocessing steps ``steps`` (of :data:`PREPROCESSING_STEPS`): the observed, resampled
       and rest-frame fluxes on the left axis, the standardised spectrum the network sees (mean 0,
       std 1) on the right axis.

    Returns
    -------
    plotly.graph_objects.Figure
        Traces: observed, masked, emulated, Planck, residual, then one per preprocessing step.

    Raises
    ------
    ValueError
        If ``steps`` names an unknown step.
    """
    figure = plotly.subplots.make_subplots(
        rows=3, cols=1, shared_xaxes=True, row_heights=[0.5, 0.17, 0.33], vertical_spacing=0.035,
        specs=[[{}], [{}], [{"secondary_y": True}]],
    )  # fmt: skip
    traces, decorations = spectrum_traces(analysis, steps)
    for position, trace in enumerate(traces):
        row = 1 if position < 4 else 2 if position == 4 else 3
        secondary = position - FIRST_STEP_TRACE == PREPROCESSING_STEPS.index("standardised")
        figure.add_scatter(
            **trace, row=row, col=1, **({"secondary_y": secondary} if row == 3 else {})
        )
    figure.update_layout(
        **_LAYOUT, **decorations, title="Observed spectrum, emulated spectrum at the predicted labels, preprocessing",
        height=620, legend={"orientation": "h", "y": -0.08, "x": 0},
    )  # fmt: skip
    figure.update_yaxes(title_text="flux [1e-17 erg/s/cm2/A]", row=1, col=1)
    figure.update_yaxes(title_text="residual", row=2, col=1)
    figure.update_yaxes(title_text="flux", row=3, col=1, secondary_y=False)
    figure.update_yaxes(title_text="standardised", row=3, col=1, secondary_y=True, showgrid=False)
    figure.update_xaxes(
        title_text="vacuum wavelength [A] (preprocessing: rest frame grid)", row=3, col=1
    )
    return figure


def spectrum_traces(analysis=None, steps=PREPROCESSING_STEPS):
    """The traces of :func:`plot_spectrum` as dicts, and its line markers (shapes, annotations)."""
    unknown = set(steps) - set(PREPROCESSING_STEPS)
    if unknown:
        raise ValueError(f"unknown steps {sorted(unknown)}; allowed: {PREPROCESSING_STEPS}")
    if analysis is None:
        wavelength = flux = masked_x = masked_y = model = planck = residual = grid = _EMPTY
        teff, shapes, annotations, stages = None, [], [], {}
    else:
        spectrum = analysis.spectrum
        wavelength = 10.0**spectrum.loglam
        flux = np.asarray(spectrum.flux, dtype=float)
        masked_x, masked_y = wavelength[analysis.bad_pixels], flux[analysis.bad_pixels]
        model, planck, residual = analysis.model_flux, analysis.planck, analysis.flux_residual
        teff, grid, stages = analysis.prediction[0], 10.0**analysis.grid, analysis.stages
        shapes, annotations = _line_markers(analysis.rv_kms, wavelength[0], wavelength[-1])
    line = {"width": 1}
    planck_name = "Planck continuum" if teff is None else f"Planck continuum, {teff:.0f} K"
    traces = [
        {"x": wavelength, "y": flux, "name": "observed", "line": {**line, "color": "black"}},
        {"x": masked_x, "y": masked_y, "name": "masked pixels", "mode": "markers", "marker": {"color": "orange", "size": 4, "symbol": "x"}},
        {"x": wavelength, "y": model, "name": "emulated at prediction", "line": {**line, "color": "red"}},
        {"x": wavelength, "y": planck, "name": planck_name, "line": {**line, "color": "royalblue", "dash": "dash"}},
        {"x": wavelength, "y": residual, "name": "observed - emulated", "line": {**line, "color": "gray"}, "showlegend": False},
    ]  # fmt: skip
    colours = {
        "observed": "lightgray",
        "resampled": "black",
        "rest frame": "seagreen",
        "standardised": "purple",
    }
    for step in PREPROCESSING_STEPS:
        x, y = (wavelength, flux) if step == "observed" else (grid, stages.get(step, _EMPTY))
        traces.append(
            {
                "x": x,
                "y": y,
                "name": f"step: {step}",
                "visible": step in steps,
                "line": {**line, "color": colours[step]},
            }
        )
    return traces, {"shapes": shapes, "annotations": annotations}
