"""The dashboard's widgets, wired to one update function, :meth:`Dashboard.show`.

Three ways in (a test star: random, from a region of the Kiel diagram, by id with Enter, or by a
click on the diagram; an uploaded FITS file; an SDSS download by plate-MJD-fiber) all end in
:meth:`Dashboard.show`, which runs :func:`stellar_nb.dashboard.analysis.analyse` and copies the new
figures' data into the three plotly views already on the page
(:class:`stellar_nb.dashboard.plotly_view.PlotlyView`): on the Kiel diagram only the current
star's shapes move. The results come with a "Download results" pair of links (CSV and JSON of
:func:`stellar_nb.dashboard.analysis.results_record`, as ``data:`` URIs, which work in Voila
without a server round trip). A spectrum the dashboard cannot analyse clears every panel and the
downloads, so that no result is read as the new file's, and puts a message naming the file and the
reason in the status line (with the name of the previous spectrum, whose results were cleared);
the next spectrum works as usual.
"""

import base64
import html
import json
import math
import time

import ipywidgets
import numpy as np

from stellar_nb import schema, trust
from stellar_nb.dashboard import analysis as analysis_module
from stellar_nb.dashboard import inputs, upload
from stellar_nb.dashboard.plotly_view import PlotlyView
from stellar_nb.plots import dashboard as figures

__all__ = ["FLAG_EXPLANATIONS", "NOTEBOOKS_URL", "PAPER_URL", "REGIONS", "Dashboard"]

NOTEBOOKS_URL = "https://github.com/stellar-nb/stellar_nb/tree/main/notebooks"
PAPER_URL = "https://arxiv.org/abs/2606.13868"
UNCERTAINTY_NOTE = (
    "± is one sigma: the spread of the predictions over noise realisations drawn from the "
    "spectrum's own inverse variance, added in quadrature to a per-label model error calibrated "
    "on simulated and on real LAMOST stars (68% of those lie within 1 sigma)."
)
PERCENTILE_NOTE = (
    "|residual| percentile: the share of test stars whose |predicted - catalogue| is at most "
    "this star's; 50% is a typical error, above 95% an unusually large one."
)
SPECTRUM_TITLE = "observed spectrum and the emulated one at the predicted labels"
HOW_TO = (
    "Pick a test star (random, from a region of the Kiel diagram, by id + Enter, or click one in "
    "the diagram), upload your own SDSS or LAMOST spectrum, or fetch one from SDSS by "
    "plate-MJD-fiber. The network predicts T<sub>eff</sub>, [Fe/H] and log g with uncertainties; "
    "the trust flags say when not to believe them."
)
#: What each trust flag means, shown beside it (keys: :data:`stellar_nb.trust.FLAG_NAMES`).
FLAG_EXPLANATIONS = {
    "low S/N": f"median signal-to-noise under {trust.LOW_SNR:g}: noise dominates the lines",
    "masked pixels": f"over {100 * trust.MAX_MASKED_FRACTION:.0f}% of the pixels are masked (no data)",
    "short coverage": f"good pixels cover under {100 * trust.MIN_COVERAGE:.0f}% of the model's wavelengths",
    "too little coverage": f"under {100 * trust.MIN_GOOD_COVERAGE:.0f}% covered: no labels should be given",
    "non-positive flux": f"over {100 * trust.MAX_NON_POSITIVE_FRACTION:.0f}% of the good pixels have flux ≤ 0",
    "outlier pixels": "pixels far from the median flux: cosmic rays or a damaged file",
    "not a star": "the survey pipeline classes it as a galaxy or a quasar",
    "non-FGK subclass": "a star type the model never saw (white dwarf, M, carbon, ...)",
    "labels at the training edge": "a label at the edge of the training range, where the network extrapolates",
    "misfit": "the emulated spectrum at the prediction does not match the observed one",
    "far from the training set": "the network's input is unlike every training spectrum",
}  # fmt: skip
#: Regions of the Kiel diagram for the random test star: name -> (column, low, high).
REGIONS = {
    "anywhere": None,
    "dwarfs (log g ≥ 4)": ("catalog_logg", 4.0, math.inf),
    "giants (log g < 3.5)": ("catalog_logg", -math.inf, 3.5),
    "hot (Teff ≥ 6,500 K)": ("catalog_teff", 6500.0, math.inf),
    "cool (Teff < 5,000 K)": ("catalog_teff", -math.inf, 5000.0),
    "metal-poor ([Fe/H] < -1)": ("catalog_feh", -math.inf, -1.0),
}
_ROW = {"align_items": "center", "flex_flow": "row wrap"}
_LINK = "color:#0072B2;text-decoration:underline"


def _format(value, sigma, label):
    digits = 0 if label == "teff" else 2
    return f"{value:,.{digits}f} &plusmn; {sigma:,.{digits}f}"


def _download_link(name, media_type, text, label):
    data = base64.b64encode(text.encode()).decode()
    return (
        f"<a class='stellar-download' style='{_LINK}' download='{html.escape(name)}' "
        f"href='data:{media_type};base64,{data}'>{label}</a>"
    )


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
    seed : int, optional
        Seed of the random test-star picks.

    Attributes
    ----------
    analysis : stellar_nb.dashboard.analysis.Analysis or None
        The spectrum on screen; None after an error cleared the panels.
    previous : str or None
        Name of the spectrum whose results the last error cleared.
    last_update_seconds : float
        Time :meth:`show` took for the last spectrum (analysis and figure updates).
    """

    def __init__(
        self, model, emulator, survey_cache, survey, *, sas_url=None, first=None, seed=None
    ):
        self.model, self.emulator, self.survey_cache = model, emulator, survey_cache
        self.survey, self.sas_url = survey, sas_url
        self.analysis, self.last_update_seconds = None, float("nan")
        self.previous = None
        self._rng = np.random.default_rng(seed)
        self._setting_id = False
        self._test_positions = {
            str(spec_id): i for i, spec_id in enumerate(survey_cache.test.spec_id)
        }
        self._build_widgets()
        self.load_test_star(self.first_star() if first is None else first)

    def _build_widgets(self):
        self.region = ipywidgets.Dropdown(
            options=list(REGIONS), value="anywhere", description="Region", layout={"width": "260px"}
        )
        self.random_button = ipywidgets.Button(
            description="Random test star", button_style="primary", layout={"width": "150px"}
        )
        self.random_button.add_class("stellar-random")
        self.random_button.on_click(lambda _: self.load_random_star(self.region.value))
        self.star_id = ipywidgets.Text(
            placeholder="spec_id of a test star", description="Test star id",
            continuous_update=False, layout={"width": "330px"}, style={"description_width": "85px"},
        )  # fmt: skip
        # continuous_update=False: the value arrives on Enter (or on leaving the box)
        self.star_id.observe(self._star_id_entered, names="value")
        self.star_button = ipywidgets.Button(description="Load", layout={"width": "70px"})
        self.star_button.on_click(lambda _: self.load_test_star(self.star_id.value))
        self.star_button.add_class("stellar-load")
        self.upload = upload.SpectrumUpload(
            max_bytes=inputs.MAX_UPLOAD_BYTES,
            label="Your own spectrum (.fits or .fits.gz):",
            description=f"SDSS or LAMOST FITS, up to {inputs.MAX_UPLOAD_BYTES // 2**20} MB",
        )
        self.upload.on_file(self.load_upload)
        self.sdss_id = ipywidgets.Text(
            placeholder="plate-MJD-fiber, e.g. 2264-53440-630", description="SDSS id",
            layout={"width": "330px"}, style={"description_width": "85px"},
        )  # fmt: skip
        self.sdss_button = ipywidgets.Button(description="Fetch", layout={"width": "70px"})
        self.sdss_button.on_click(lambda _: self.load_sdss(self.sdss_id.value))
        self.sdss_button.add_class("stellar-fetch")
        self.status = ipywidgets.HTML(layout={"min_height": "2em"})
        self.results = ipywidgets.HTML()
        self.downloads = ipywidgets.HTML()
        self.flags = ipywidgets.HTML()
        self.step = ipywidgets.ToggleButtons(
            options=figures.PREPROCESSING_STEPS, value=figures.PREPROCESSING_STEPS[0],
            description="Step", style={"button_width": "110px"},
        )  # fmt: skip
        self.step.observe(self._show_step, names="value")
        self.overview = PlotlyView(
            figures.plot_overview(
                self.survey_cache.test, self.survey_cache.residuals, self.analysis
            )
        )
        self.overview.on_click(self._kiel_click)
        self.spectrum = PlotlyView(figures.plot_spectrum(self.analysis))
        self.preprocessing = PlotlyView(figures.plot_preprocessing(self.analysis, self.step.value))
        header = ipywidgets.HTML(
            "<h2 style='margin:0.2em 0'>Stellar parameters from an SDSS spectrum</h2>"
            f"<div class='stellar-help' style='max-width:75em'>{HOW_TO} "
            f"Learn how it works in the <a href='{NOTEBOOKS_URL}' target='_blank' style='{_LINK}'>notebooks</a> "
            f"and the <a href='{PAPER_URL}' target='_blank' style='{_LINK}'>paper (arXiv:2606.13868)</a>.</div>"
        )
        controls = ipywidgets.VBox([
            ipywidgets.HBox([self.region, self.random_button], layout=_ROW),
            ipywidgets.HBox([self.star_id, self.star_button], layout=_ROW),
            self.upload, ipywidgets.HBox([self.sdss_id, self.sdss_button], layout=_ROW),
            self.status, self.results, self.downloads, self.flags,
        ], layout={"width": "min(560px, 100%)", "flex": "0 0 auto"})  # fmt: skip
        preprocessing = ipywidgets.VBox(
            [ipywidgets.HTML("<b>The model's preprocessing, one step at a time:</b>"), self.step,
             self.preprocessing],
        )  # fmt: skip
        self.widget = ipywidgets.VBox(
            [
                header,
                ipywidgets.HBox(
                    [controls, ipywidgets.VBox([self.overview], layout={"flex": "1 1 0%", "min_width": "420px"})],
                    layout={"flex_flow": "row wrap", "width": "100%"},
                ),
                self.spectrum,
                preprocessing,
            ],
            layout={"width": "100%"},
        )  # fmt: skip
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
        if "spec_id" not in spectrum.meta:  # not a test star: the id box must not name one
            self._set_star_id("")
        self._draw(analysis, f"{analysis.source}: {SPECTRUM_TITLE}")
        self.results.value = self._results_html(analysis)
        self.downloads.value = self._downloads_html(analysis)
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
        traces, decorations = figures.spectrum_traces(analysis)
        self.spectrum.update(traces, {**decorations, "title": {"text": title}})
        self.preprocessing.update(*figures.preprocessing_traces(analysis, self.step.value))
        self.overview.update(layout={"shapes": figures.overview_shapes(analysis)})

    def _fail(self, text):
        """Show ``text`` as an error and clear the previous spectrum's results; return False."""
        if self.analysis is not None:
            self.previous = self.analysis.source
        self.analysis = None
        cleared = f"previous spectrum: {self.previous}, cleared" if self.previous else ""
        self._draw(None, f"no spectrum ({cleared})" if cleared else "no spectrum")
        note = f"<div class='stellar-cleared' style='color:#555'>No results ({html.escape(cleared or 'nothing shown')}).</div>"
        self.results.value, self.flags.value, self.downloads.value = note, "", ""
        self._message(f"{text} ({cleared})" if cleared else text, error=True)
        return False

    def load_test_star(self, spec_id):
        """Show the test star with this ``spec_id`` (a string or an int)."""
        key = str(spec_id).strip()
        if key not in self._test_positions:
            return self._fail(
                f"no test star with spec_id {key!r}: press 'Random test star' or click one on "
                "the Kiel diagram"
            )
        self._set_star_id(key)
        return self.show(self.survey_cache.star(self._test_positions[key]))

    def random_star(self, region="anywhere"):
        """spec_id of a random test star in ``region`` (a key of :data:`REGIONS`), or None if
        the region holds none.

        Raises
        ------
        ValueError
            If ``region`` is not a key of :data:`REGIONS`.
        """
        if region not in REGIONS:
            raise ValueError(f"unknown region {region!r}; allowed: {list(REGIONS)}")
        test = self.survey_cache.test
        chosen = np.ones(len(test), dtype=bool)
        if REGIONS[region] is not None:
            column, low, high = REGIONS[region]
            values = test[column].to_numpy()
            chosen = (values >= low) & (values < high)
        candidates = np.flatnonzero(chosen)
        if candidates.size == 0:
            return None
        return str(test.spec_id.iloc[int(self._rng.choice(candidates))])

    def load_random_star(self, region="anywhere"):
        """Show a random test star of ``region`` (see :meth:`random_star`)."""
        spec_id = self.random_star(region)
        if spec_id is None:
            return self._fail(f"no test star lies in the region {region!r}")
        return self.load_test_star(spec_id)

    def _set_star_id(self, value):
        self._setting_id = True
        try:
            self.star_id.value = value
        finally:
            self._setting_id = False

    def _star_id_entered(self, change):
        if not self._setting_id and change["new"].strip():
            self.load_test_star(change["new"])

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

    def _show_step(self, change):
        self.preprocessing.update(*figures.preprocessing_traces(self.analysis, change["new"]))

    def _results_html(self, analysis):
        rows = []
        for i, label in enumerate(schema.LABELS):
            cells = [
                figures.LABEL_TITLES[label],
                _format(analysis.prediction[i], analysis.sigma[i], label),
            ]
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
        header = (
            "<tr><th></th><th>predicted</th><th>catalogue</th><th>residual</th>"
            f"<th title='{html.escape(PERCENTILE_NOTE)}'>|residual| percentile (?)</th></tr>"
        )
        notes = f"{UNCERTAINTY_NOTE} {PERCENTILE_NOTE}"
        return (
            f"<table class='stellar-prediction' style='border-spacing:8px 2px'>{header}{''.join(rows)}</table>"
            f"<div class='stellar-notes' style='font-size:12px;color:#444;max-width:540px'>{html.escape(notes)}</div>"
        )

    def _downloads_html(self, analysis):
        stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in analysis.source)
        stem = stem.removesuffix(".gz").removesuffix(".fits") or "spectrum"
        record = json.dumps(analysis_module.results_record(analysis), indent=2)
        links = [
            _download_link(
                f"{stem}-labels.csv", "text/csv", analysis_module.results_csv(analysis), "CSV"
            ),
            _download_link(f"{stem}-labels.json", "application/json", record, "JSON"),
        ]
        return f"<div class='stellar-downloads'><b>Download results</b> (labels, sigmas, flags): {' · '.join(links)}</div>"

    def _flags_html(self, analysis):
        items = []
        for flag in analysis.flags:
            mark, colour = ("&#9888;", "#b00020") if flag["raised"] else ("&#10003;", "#1b5e20")
            meaning = FLAG_EXPLANATIONS.get(flag["name"], "")
            items.append(
                f"<li class='stellar-flag' data-raised='{str(flag['raised']).lower()}' style='color:{colour}' "
                f"title='{html.escape(meaning)}'>{mark} <b>{html.escape(flag['name'])}</b>: "
                f"{html.escape(flag['detail'])} <span style='color:#555'>({html.escape(meaning)})</span></li>"
            )
        raised = sum(flag["raised"] for flag in analysis.flags)
        return f"<b>Trust flags ({raised} raised; &#9888; = do not trust the labels for this reason)</b><ul style='margin:2px 0;padding-left:18px'>{''.join(items)}</ul>"

    def first_star(self):
        """spec_id of the test star shown first: the one closest to the median S/N."""
        snr = self.survey_cache.test.snr.to_numpy()
        return str(
            self.survey_cache.test.spec_id.iloc[int(np.argmin(np.abs(snr - np.median(snr))))]
        )
