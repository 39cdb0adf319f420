"""The dashboard's three plotly figures; each function takes results and returns a figure.

- :func:`plot_overview`: the Kiel diagram of the test split (click a star to load it) beside the
  test-split residual distributions, with the current star on both;
- :func:`plot_spectrum`: the observed spectrum with the emulated one at the predicted labels, the
  Planck continuum and the main lines, above the flux residual, on one wavelength axis;
- :func:`plot_preprocessing`: one preprocessing step at a time, each on its own scale.

Each figure has the same traces in the same order whatever its input (empty traces where
something is unknown); the ``*_traces`` functions return the traces of the current star as dicts,
so the dashboard overwrites the data of the figures already on the page
(:meth:`stellar_nb.dashboard.plotly_view.PlotlyView.update`) instead of rebuilding them. Masked
pixels are NaN in every line, so they are drawn as gaps, not as lines down to zero.

Colours are colour-blind safe: the Kiel diagram's stars are coloured with Cividis and the current
star is told apart by shape and lightness (a white star outlined in black, a black ring); the
spectrum's lines use the Okabe-Ito palette (:data:`OKABE_ITO`).
"""

import numpy as np
import plotly.subplots

from stellar_nb import doppler, schema

__all__ = [
    "KIEL_POINTS",
    "LABEL_TITLES",
    "LINES",
    "OKABE_ITO",
    "PREPROCESSING_STEPS",
    "STEP_DESCRIPTIONS",
    "kiel_star_shapes",
    "line_labels",
    "overview_shapes",
    "plot_overview",
    "plot_preprocessing",
    "plot_spectrum",
    "preprocessing_traces",
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
#: What each step does, shown as the preprocessing figure's title.
STEP_DESCRIPTIONS = {
    "observed": "1. observed: the spectrum as the survey delivers it (masked pixels left out)",
    "resampled": "2. resampled onto the model's log-wavelength grid (still the observed frame)",
    "rest frame": "3. rest frame: shifted by the radial velocity onto the model's grid",
    "standardised": "4. standardised: mean 0, standard deviation 1, the network's input",
}
#: Axis titles of the labels (HTML, as plotly draws it).
LABEL_TITLES = {"teff": "T<sub>eff</sub> (K)", "feh": "[Fe/H] (dex)", "logg": "log g (dex)"}
#: The Okabe-Ito colour-blind-safe palette.
OKABE_ITO = {
    "black": "#000000", "orange": "#E69F00", "sky blue": "#56B4E9", "green": "#009E73",
    "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "purple": "#CC79A7",
}  # fmt: skip
#: Test stars drawn on the Kiel diagram at most (a fixed random subset beyond that): plotly draws
#: each as an SVG element, and 15,000 would take seconds per redraw.
KIEL_POINTS = 2000
#: Bins of each residual histogram, spanning the central 99% of the residuals.
RESIDUAL_BINS = 40
#: Line labels closer than this fraction of the wavelength range go on separate rows.
LABEL_SPACING = 0.045
FLUX_UNIT = "10<sup>-17</sup> erg s<sup>-1</sup> cm<sup>-2</sup> Å<sup>-1</sup>"
_AXIS = {"exponentformat": "none", "separatethousands": False, "tickformat": "~r"}
_LAYOUT = {"template": "plotly_white", "font": {"size": 13}, "hoverlabel": {"font": {"size": 13}}}
_EMPTY = np.array([], dtype=float)


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
        then one residual histogram (bars) per label; shapes: :func:`overview_shapes`. The Kiel
        axes span the test stars (fixed, so that moving the current star redraws nothing else).
    """
    shown = test
    if len(test) > max_points:
        rows = np.sort(np.random.default_rng(0).choice(len(test), max_points, replace=False))
        shown = test.iloc[rows]
    kiel_title = "Kiel diagram of the test split (click a star to load it)" if shown is test else (
        f"Kiel diagram: {len(shown):,} of {len(test):,} test stars (click one to load it)")  # fmt: skip
    figure = plotly.subplots.make_subplots(
        rows=3, cols=2, specs=[[{"rowspan": 3}, {}], [None, {}], [None, {}]], column_widths=[0.62, 0.38],
        horizontal_spacing=0.14, vertical_spacing=0.2,
        subplot_titles=[kiel_title, *(f"residual {LABEL_TITLES[label]}, test split" for label in schema.LABELS)],
    )  # fmt: skip
    figure.add_scatter(
        x=shown.catalog_teff.to_numpy(), y=shown.catalog_logg.to_numpy(), mode="markers", name="test stars",
        customdata=shown.spec_id.astype(str).to_numpy(),
        marker={"size": 5, "color": shown.catalog_feh.to_numpy(), "colorscale": "Cividis", "opacity": 0.7,
                "colorbar": {"title": {"text": "[Fe/H]"}, "thickness": 10, "x": 0.55, "len": 0.9}},
        hovertemplate="test star %{customdata}<br>T<sub>eff</sub> %{x:.0f} K<br>log g %{y:.2f} dex"
                      "<br>[Fe/H] %{marker.color:.2f} dex<extra>click to load</extra>", row=1, col=1,
    )  # fmt: skip
    for row, label in enumerate(schema.LABELS, start=1):
        centres, counts, width = residual_histogram(residuals[:, row - 1])
        unit = schema.LABEL_UNITS[label][1]
        figure.add_bar(
            x=centres, y=counts, width=width, name=f"{label} residuals", showlegend=False,
            marker={"color": "#BBBBBB"}, row=row, col=2,
            hovertemplate=f"residual %{{x:.3g}} {unit}<br>%{{y:.0f}} test stars<extra></extra>",
        )  # fmt: skip
        figure.update_xaxes(title_text=unit, title_standoff=2, row=row, col=2)
    figure.update_xaxes(**_AXIS)
    figure.update_yaxes(**_AXIS)
    figure.update_xaxes(
        title_text=LABEL_TITLES["teff"], range=_reversed_range(test.catalog_teff), row=1, col=1
    )
    figure.update_yaxes(
        title_text=LABEL_TITLES["logg"], range=_reversed_range(test.catalog_logg), row=1, col=1
    )
    figure.update_layout(
        **_LAYOUT, shapes=overview_shapes(analysis), clickmode="event", height=470,
        margin={"l": 60, "r": 20, "t": 40, "b": 40},
        legend={"orientation": "h", "x": 0, "y": 1.0, "yanchor": "bottom", "bgcolor": "rgba(255,255,255,0.8)"},
    )  # fmt: skip
    # the legend sits above the Kiel diagram, in the room of its title: move the title left
    figure.layout.annotations[0].update(x=0.0, xanchor="left", y=1.07)
    return figure


def _reversed_range(values, margin=0.05):
    low, high = float(np.min(values)), float(np.max(values))
    pad = margin * max(high - low, 1e-9)
    return [high + pad, low - pad]


def kiel_star_shapes(analysis=None):
    """The current star on the Kiel diagram as layout shapes (with legend entries): a ring at its
    catalogue labels, a star with ±1 sigma bars at its prediction.

    Shapes rather than traces: moving a shape redraws only the shapes, while a changed trace makes
    plotly recompute and redraw every test star (about 5x slower, ``stellar-nb bench dashboard``).
    """
    shapes = []
    if analysis is not None and analysis.catalogue is not None:
        teff, logg = analysis.catalogue[0], analysis.catalogue[2]
        shapes.append({
            "type": "circle", "name": "catalogue labels", "showlegend": True, **_pixels(teff, logg),
            "x0": -9, "x1": 9, "y0": -9, "y1": 9, "line": {"color": "black", "width": 2.5},
        })  # fmt: skip
    if analysis is not None:
        teff, logg = analysis.prediction[0], analysis.prediction[2]
        sigma_teff, sigma_logg = analysis.sigma[0], analysis.sigma[2]
        bar = {"type": "line", "xref": "x", "yref": "y", "line": {"color": "black", "width": 1.5},
               "legendgroup": "predicted"}  # fmt: skip
        shapes += [
            {**bar, "x0": teff - sigma_teff, "x1": teff + sigma_teff, "y0": logg, "y1": logg},
            {**bar, "x0": teff, "x1": teff, "y0": logg - sigma_logg, "y1": logg + sigma_logg},
            {"type": "path", "name": "predicted (±1 sigma)", "showlegend": True, "legendgroup": "predicted",
             **_pixels(teff, logg), "path": _STAR, "fillcolor": "white", "line": {"color": "black", "width": 2}},
        ]  # fmt: skip
    return shapes


#: A five-pointed star, 20 pixels across, as an SVG path around its centre (y up).
_STAR = (
    "M0,10 L2.4,3.2 L9.5,3.1 L3.8,-1.2 L5.9,-8.1 L0,-4 L-5.9,-8.1 L-3.8,-1.2 L-9.5,3.1 L-2.4,3.2 Z"
)


def _pixels(x, y):
    return {"xref": "x", "yref": "y", "xsizemode": "pixel", "ysizemode": "pixel",
            "xanchor": float(x), "yanchor": float(y)}  # fmt: skip


def overview_shapes(analysis=None):
    """Every shape of :func:`plot_overview` for ``analysis``: :func:`kiel_star_shapes`, then
    :func:`residual_shapes`."""
    return kiel_star_shapes(analysis) + residual_shapes(analysis)


def residual_shapes(analysis=None):
    """Lines at the current star's residuals on the three histograms of :func:`plot_overview`."""
    if analysis is None or analysis.residual is None:
        return []
    return [
        {"type": "line", "xref": f"x{axis}", "yref": f"y{axis} domain", "x0": value, "x1": value,
         "y0": 0, "y1": 1, "line": {"color": OKABE_ITO["vermillion"], "width": 3}}
        for axis, value in zip((2, 3, 4), analysis.residual, strict=True)
    ]  # fmt: skip


def line_labels(positions, spacing):
    """Row (0, 1, 2, ...) of each label at sorted ``positions`` so that no two on a row are closer
    than ``spacing``: each label takes the first row whose last label is far enough."""
    rows, last = [], []
    for position in positions:
        row = next((i for i, end in enumerate(last) if position - end >= spacing), len(last))
        if row == len(last):
            last.append(position)
        last[row] = position
        rows.append(row)
    return rows


def _line_markers(rv_kms, low, high):
    factor = doppler.wavelength_factor(rv_kms)
    shapes, labels = [], []
    for name, wavelengths in LINES.items():
        observed = [rest * factor for rest in wavelengths if low <= rest * factor <= high]
        for wavelength in observed:
            shapes.append({
                "type": "line", "x0": wavelength, "x1": wavelength, "xref": "x", "yref": "y domain", "y0": 0, "y1": 1,
                "line": {"color": "rgba(100,100,100,0.5)", "width": 1, "dash": "dot"},
            })  # fmt: skip
        if observed:
            labels.append((observed[0], name))
    labels.sort()
    rows = line_labels([x for x, _ in labels], LABEL_SPACING * (high - low))
    annotations = [
        {"x": x, "y": 1.0 - 0.075 * row, "xref": "x", "yref": "y domain", "text": name,
         "showarrow": False, "xanchor": "left", "yanchor": "top", "font": {"size": 12, "color": "#444"},
         "bgcolor": "rgba(255,255,255,0.7)"}
        for (x, name), row in zip(labels, rows, strict=True)
    ]  # fmt: skip
    return shapes, annotations


def plot_spectrum(analysis=None):
    """The observed spectrum, the emulated one at the predicted labels, and their difference.

    Two panels on one wavelength axis (zooming one zooms both):

    1. observed flux (masked pixels, ivar = 0 or a fatal and_mask bit, are gaps, marked by crosses
       along the bottom), the emulated spectrum at the prediction fitted to the observed one
       (:func:`stellar_nb.emulator.fit_to_observed`), the Planck continuum at the predicted Teff,
       and dotted markers at the main lines (Balmer series, Ca II H and K, G band, Mg b, Na D,
       Ca II triplet), shifted to the observed frame;
    2. observed minus emulated flux.

    Returns
    -------
    plotly.graph_objects.Figure
        Traces: observed, masked, emulated, Planck, residual.
    """
    figure = plotly.subplots.make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.72, 0.28], vertical_spacing=0.05
    )
    traces, decorations = spectrum_traces(analysis)
    for position, trace in enumerate(traces):
        figure.add_scatter(**trace, row=1 if position < 4 else 2, col=1)
    figure.update_xaxes(**{**_AXIS, "tickformat": "d"})
    figure.update_yaxes(**_AXIS)
    figure.update_layout(
        **_LAYOUT, **decorations, title={"text": "Observed and emulated spectrum"}, height=520,
        margin={"l": 70, "r": 20, "t": 50, "b": 50}, hovermode="x unified",
        legend={"orientation": "h", "x": 0, "y": 1.0, "yanchor": "bottom", "xanchor": "left"},
    )  # fmt: skip
    figure.update_yaxes(title_text=f"flux ({FLUX_UNIT})", title_font={"size": 11}, row=1, col=1)
    figure.update_yaxes(title_text="residual<br>(same unit)", title_font={"size": 11}, row=2, col=1)
    figure.update_xaxes(title_text="vacuum wavelength, observed frame (Å)", row=2, col=1)
    return figure


def _with_gaps(values, bad_pixels):
    return np.where(bad_pixels, np.nan, np.asarray(values, dtype=float))


def spectrum_traces(analysis=None):
    """The traces of :func:`plot_spectrum` as dicts, and its line markers (shapes, annotations)."""
    if analysis is None:
        wavelength = flux = masked_x = masked_y = model = planck = residual = _EMPTY
        teff, shapes, annotations = None, [], []
    else:
        spectrum, bad = analysis.spectrum, analysis.bad_pixels
        wavelength = 10.0**spectrum.loglam
        flux = _with_gaps(spectrum.flux, bad)
        masked_x = wavelength[bad]
        floor = np.nanmin(flux) if np.isfinite(flux).any() else 0.0
        masked_y = np.full(masked_x.size, floor)
        model, planck = _with_gaps(analysis.model_flux, bad), analysis.planck
        residual, teff = analysis.flux_residual, analysis.prediction[0]
        shapes, annotations = _line_markers(analysis.rv_kms, wavelength[0], wavelength[-1])
    hover = "%{y:.3g}"
    planck_name = "Planck continuum" if teff is None else f"Planck continuum, {teff:,.0f} K"
    traces = [
        {"x": wavelength, "y": flux, "name": "observed", "hovertemplate": hover,
         "line": {"width": 1, "color": OKABE_ITO["black"]}},
        {"x": masked_x, "y": masked_y, "name": "masked pixels (gaps)", "mode": "markers", "hoverinfo": "skip",
         "marker": {"color": OKABE_ITO["orange"], "size": 6, "symbol": "line-ns", "line": {"width": 1.5, "color": OKABE_ITO["orange"]}}},
        {"x": wavelength, "y": model, "name": "emulated at the prediction", "hovertemplate": hover,
         "line": {"width": 1.2, "color": OKABE_ITO["vermillion"]}},
        {"x": wavelength, "y": planck, "name": planck_name, "hovertemplate": hover,
         "line": {"width": 1.5, "color": OKABE_ITO["blue"], "dash": "dash"}},
        {"x": wavelength, "y": residual, "name": "observed - emulated", "hovertemplate": hover,
         "line": {"width": 1, "color": "#777777"}},
    ]  # fmt: skip
    return traces, {"shapes": shapes, "annotations": annotations}


def plot_preprocessing(analysis=None, step="observed"):
    """One preprocessing step of :data:`PREPROCESSING_STEPS`, on its own scale.

    Returns
    -------
    plotly.graph_objects.Figure
        One trace per step, only ``step`` visible; the title says what the step does.

    Raises
    ------
    ValueError
        If ``step`` is not one of :data:`PREPROCESSING_STEPS`.
    """
    traces, layout = preprocessing_traces(analysis, step)
    figure = plotly.subplots.make_subplots(rows=1, cols=1)
    for trace in traces:
        figure.add_scatter(**trace)
    figure.update_xaxes(**{**_AXIS, "tickformat": "d"}, title_text="vacuum wavelength (Å)")
    figure.update_yaxes(**_AXIS)
    figure.update_layout(
        **_LAYOUT,
        **layout,
        height=300,
        showlegend=False,
        margin={"l": 70, "r": 20, "t": 40, "b": 50},
    )
    return figure


def preprocessing_traces(analysis=None, step="observed"):
    """The traces of :func:`plot_preprocessing` as dicts, and its title and y-axis title."""
    if step not in PREPROCESSING_STEPS:
        raise ValueError(f"unknown step {step!r}; allowed: {PREPROCESSING_STEPS}")
    if analysis is None:
        wavelength = flux = grid = _EMPTY
        stages = {}
    else:
        wavelength = 10.0**analysis.spectrum.loglam
        flux = _with_gaps(analysis.spectrum.flux, analysis.bad_pixels)
        grid, stages = 10.0**analysis.grid, analysis.stages
    colours = dict(zip(PREPROCESSING_STEPS, ("black", "blue", "green", "vermillion"), strict=True))
    traces = []
    for name in PREPROCESSING_STEPS:
        x, y = (wavelength, flux) if name == "observed" else (grid, stages.get(name, _EMPTY))
        traces.append({
            "x": x, "y": y, "name": f"step: {name}", "visible": name == step,
            "hovertemplate": "%{x:,.1f} Å: %{y:.3g}<extra></extra>",
            "line": {"width": 1, "color": OKABE_ITO[colours[name]]},
        })  # fmt: skip
    units = {"observed": f"flux ({FLUX_UNIT})", "resampled": f"flux ({FLUX_UNIT})",
             "rest frame": f"flux ({FLUX_UNIT})", "standardised": "standardised flux"}  # fmt: skip
    return traces, {
        "title": {"text": STEP_DESCRIPTIONS[step], "font": {"size": 14}},
        "yaxis": {"title": {"text": units[step], "font": {"size": 11}}},
    }
