"""The dashboard's widgets, wired to one update function, :meth:`Dashboard.show`.

Three ways in (a test star by id or by a click on the Kiel diagram, an uploaded FITS file, an SDSS
download by plate-MJD-fiber) all end in :meth:`Dashboard.show`, which runs
:func:`stellar_nb.dashboard.analysis.analyse` and copies the new figures' data into the two plotly
views already on the page (:class:`stellar_nb.dashboard.plotly_view.PlotlyView`). A spectrum the
dashboard cannot analyse clears every panel, so that no result is read as the new file's, and puts
a message naming the file and the reason in the status line (with the name of the previous
spectrum, whose results were cleared); the next spectrum works as usual.
"""

import html
import time

import ipywidgets
import numpy as np

from stellar_nb import schema
from stellar_nb.dashboard import analysis as analysis_module
from stellar_nb.dashboard import inputs, upload
from stellar_nb.dashboard.plotly_view import PlotlyView
from stellar_nb.plots import dashboard as figures

__all__ = ["Dashboard"]

UNCERTAINTY_NOTE = (
    "Uncertainties: spread of the predictions over noise realisations drawn from the spectrum's "
    "own inverse variance, added in quadrature to a per-label model error: one part calibrated on "
    "the simulated validation split, one on real LAMOST stars (68% of those within 1 sigma)."
)
SPECTRUM_TITLE = "observed spectrum, emulated spectrum at the predicted labels, preprocessing"


def _format(value, sigma, label):
    digits = 0 if label == "teff" else 2
    return f"{value:.{digits}f} &plusmn; {sigma:.{digits}f}"


class Dashboard:
    """The dashboard: build it with the model, emulator and survey cache, then display :attr:`widget`.

    Parameters
    ----------
    model : stellar_nb.inference.NumpyModel
    emulator : stellar_nb.emulator.Emulator
    survey_cache : stellar_nb.dashboard.survey_cache.SurveyCache
    survey : str or pathlib.Path
        Folder of the split whose ``test`` stars can be picked.
    sas_url : str, optional
        SDSS SAS base URL for plate-MJD-fiber downloads.
    first : str or int, optional
        spec_id of the test star shown first; by default the one nearest the median S/N.

    Attributes
    ----------
    analysis : stellar_nb.dashboard.analysis.Analysis or None
        The spectrum on screen; None after an error cleared the panels.
    previous : str or None
        Name of the spectrum whose results the last error cleared.
    last_update_seconds : float
        Time :meth:`show` took for the last spectrum (analysis and figure updates).
    """

    def __init__(self, model, emulator, survey_cache, survey, *, sas_url=None, first=None):
        self.model, self.emulator, self.survey_cache = model, emulator, survey_cache
        self.survey, self.sas_url = survey, sas_url
        self.analysis, self.last_update_seconds = None, float("nan")
        self.previous = None
        self._test_positions = {
            str(spec_id): i for i, spec_id in enumerate(survey_cache.test.spec_id)
        }
        self._build_widgets()
        self.load_test_star(self.first_star() if first is None else first)

    def _build_widgets(self):
        self.star_id = ipywidgets.Text(
            placeholder="spec_id of a test star", description="Test star", layout={"width": "300px"}
        )
        self.star_button = ipywidgets.Button(description="Load", layout={"width": "70px"})
        self.star_button.on_click(lambda _: self.load_test_star(self.star_id.value))
        self.star_button.add_class("stellar-load")
        self.star_id.continuous_update = False
        self.upload = upload.SpectrumUpload(
            max_bytes=inputs.MAX_UPLOAD_BYTES,
            description=f"SDSS or LAMOST FITS, up to {inputs.MAX_UPLOAD_BYTES // 2**20} MB",
        )
        self.upload.on_file(self.load_upload)
        self.sdss_id = ipywidgets.Text(
            placeholder="plate-MJD-fiber, e.g. 2264-53440-630",
            description="SDSS",
            layout={"width": "300px"},
        )
        self.sdss_button = ipywidgets.Button(description="Fetch", layout={"width": "70px"})
        self.sdss_button.on_click(lambda _: self.load_sdss(self.sdss_id.value))
        self.sdss_button.add_class("stellar-fetch")
        self.status = ipywidgets.HTML(layout={"min_height": "2em"})
        self.results = ipywidgets.HTML()
        self.flags = ipywidgets.HTML()
        self.steps = [
            ipywidgets.Checkbox(
                value=True, description=step, indent=False, layout={"width": "120px"}
            )
            for step in figures.PREPROCESSING_STEPS
        ]
        for checkbox in self.steps:
            checkbox.observe(self._toggle_step, names="value")
        self.overview = PlotlyView(
            figures.plot_overview(
                self.survey_cache.test, self.survey_cache.residuals, self.analysis
            )
        )
        self.overview.on_click(self._kiel_click)
        self.spectrum = PlotlyView(figures.plot_spectrum(self.analysis))
        controls = ipywidgets.VBox([
            ipywidgets.HTML("<h3 style='margin:0'>stellar_nb: Teff, [Fe/H], log g from an SDSS spectrum</h3>"),
            ipywidgets.HBox([self.star_id, self.star_button]), self.upload,
            ipywidgets.HBox([self.sdss_id, self.sdss_button]), self.status, self.results, self.flags,
        ], layout={"width": "520px"})  # fmt: skip
        self.widget = ipywidgets.VBox(
            [
                ipywidgets.HBox(
                    [
                        controls,
                        ipywidgets.VBox(
                            [self.overview], layout={"flex": "1 1 0%", "min_width": "0"}
                        ),
                    ]
                ),
                ipywidgets.HBox(
                    [ipywidgets.HTML("<b>Preprocessing steps shown:</b>"), *self.steps]
                ),
                self.spectrum,
            ],
            layout={"max_width": "1280px"},
        )
        self.widget.add_class("stellar-dashboard")

    def _message(self, text, error=False):
        colour = "#b00020" if error else "#1b5e20"
        kind = "stellar-error" if error else "stellar-ok"
        self.status.value = (
            f"<div class='stellar-status {kind}' style='color:{colour}'>{html.escape(text)}</div>"
        )

    def show(self, spectrum):
        """Analyse ``spectrum`` and update every panel; on failure clear them and say why.

        Returns
        -------
        bool
            Whether the spectrum is now shown.
        """
        start = time.perf_counter()
        source = spectrum.meta.get("path", "spectrum")
        try:
            analysis = analysis_module.analyse(
                spectrum, self.model, self.emulator, self.survey_cache
            )
        except inputs.DashboardInputError as error:
            return self._fail(str(error))
        except (ValueError, ArithmeticError) as error:
            return self._fail(f"{source}: cannot be analysed ({type(error).__name__}: {error})")
        self.analysis, self.previous = analysis, None
        self._draw(analysis, f"{analysis.source}: {SPECTRUM_TITLE}")
        self.results.value = self._results_html(analysis)
        self.flags.value = self._flags_html(analysis)
        self.last_update_seconds = time.perf_counter() - start
        raised = [flag["name"] for flag in analysis.flags if flag["raised"]]
        warning = f"; {len(raised)} trust flags raised: {', '.join(raised)}" if raised else ""
        self._message(
            f"showing {analysis.source} (updated in {1000 * self.last_update_seconds:.0f} ms)"
            + warning
        )
        return True

    def _draw(self, analysis, title):
        traces, decorations = figures.spectrum_traces(analysis, self._visible_steps())
        self.spectrum.update(traces, {**decorations, "title": {"text": title}})
        self.overview.update(
            figures.kiel_star_traces(analysis),
            {"shapes": figures.residual_shapes(analysis)},
            first=1,
        )

    def _fail(self, text):
        """Show ``text`` as an error and clear the previous spectrum's results; return False."""
        if self.analysis is not None:
            self.previous = self.analysis.source
        self.analysis = None
        cleared = f"previous spectrum: {self.previous}, cleared" if self.previous else ""
        self._draw(None, f"no spectrum ({cleared})" if cleared else "no spectrum")
        note = f"<div class='stellar-cleared' style='color:#555'>No results ({html.escape(cleared or 'nothing shown')}).</div>"
        self.results.value, self.flags.value = note, ""
        self._message(f"{text} ({cleared})" if cleared else text, error=True)
        return False

    def load_test_star(self, spec_id):
        """Show the test star with this ``spec_id`` (a string or an int)."""
        key = str(spec_id).strip()
        if key not in self._test_positions:
            return self._fail(f"no test star with spec_id {key!r}: pick one on the Kiel diagram")
        self.star_id.value = key
        return self.show(self.survey_cache.star(self._test_positions[key]))

    def load_upload(self, name, content, size):
        """Show an uploaded file; ``content`` None means the browser refused it as too large."""
        if content is None:
            return self._fail(
                f"{name}: {size / 2**20:.1f} MB is over the {inputs.MAX_UPLOAD_BYTES // 2**20} MB upload limit; not uploaded"
            )
        try:
            spectrum = inputs.read_upload(content, name)
        except inputs.DashboardInputError as error:
            return self._fail(str(error))
        return self.show(spectrum)

    def load_sdss(self, text):
        """Download and show ``plate-MJD-fiber`` from the SDSS Science Archive Server."""
        parts = str(text).replace(" ", "").split("-")
        if len(parts) != 3 or not all(part.isdigit() for part in parts):
            return self._fail(f"{text!r}: type plate-MJD-fiber, e.g. 2264-53440-630")
        try:
            spectrum = inputs.fetch_spectrum(*(int(part) for part in parts), base_url=self.sas_url)
        except inputs.DashboardInputError as error:
            return self._fail(str(error))
        return self.show(spectrum)

    def _kiel_click(self, trace, point):
        spec_ids = self.overview.data[0]["customdata"]  # the stars drawn, maybe a subset
        if trace == 0 and 0 <= point < len(spec_ids):
            self.load_test_star(spec_ids[point])

    def _visible_steps(self):
        return tuple(checkbox.description for checkbox in self.steps if checkbox.value)

    def _toggle_step(self, _change):
        visible = self._visible_steps()
        self.spectrum.update(
            [{"visible": step in visible} for step in figures.PREPROCESSING_STEPS],
            first=figures.FIRST_STEP_TRACE,
        )

    def _results_html(self, analysis):
        rows = []
        for i, label in enumerate(schema.LABELS):
            name, unit = schema.LABEL_UNITS[label]
            cells = [f"{name} [{unit}]", _format(analysis.prediction[i], analysis.sigma[i], label)]
            if analysis.catalogue is not None:
                cells += [_format(analysis.catalogue[i], analysis.catalogue_unc[i], label),
                          f"{analysis.residual[i]:+.{0 if label == 'teff' else 2}f}",
                          f"{100 * analysis.residual_quantile[i]:.0f}%"]  # fmt: skip
            else:
                cells += ["unknown", "", ""]
            rows.append(
                f"<tr class='stellar-label-{label}' data-value='{analysis.prediction[i]:.6g}'>"
                + "".join(f"<td>{c}</td>" for c in cells)
                + "</tr>"
            )
        header = "<tr><th></th><th>predicted</th><th>catalogue</th><th>residual</th><th>|residual| percentile</th></tr>"
        return (
            f"<table class='stellar-prediction' style='border-spacing:8px 2px'>{header}{''.join(rows)}</table>"
            f"<div style='font-size:11px;color:#555;max-width:500px'>{html.escape(UNCERTAINTY_NOTE)}</div>"
        )

    def _flags_html(self, analysis):
        items = []
        for flag in analysis.flags:
            mark, colour = ("&#9888;", "#b00020") if flag["raised"] else ("&#10003;", "#1b5e20")
            items.append(
                f"<li class='stellar-flag' data-raised='{str(flag['raised']).lower()}' style='color:{colour}'>"
                f"{mark} {html.escape(flag['name'])}: {html.escape(flag['detail'])}</li>"
            )
        raised = sum(flag["raised"] for flag in analysis.flags)
        return f"<b>Trust flags ({raised} raised)</b><ul style='margin:2px 0;padding-left:18px'>{''.join(items)}</ul>"

    def first_star(self):
        """spec_id of the test star shown first: the one closest to the median S/N."""
        snr = self.survey_cache.test.snr.to_numpy()
        return str(
            self.survey_cache.test.spec_id.iloc[int(np.argmin(np.abs(snr - np.median(snr))))]
        )
