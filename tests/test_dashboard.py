"""Tests of the dashboard: the survey cache, one spectrum's analysis, figures, widgets, uploads, serving.

The model is the quick-mode model trained once per test session (``test_train.quick_model``), so
the dashboard is tested on a real :class:`stellar_nb.inference.NumpyModel`.
"""

import dataclasses
import html
import json
import os
import subprocess
import sys

import loopback
import numpy as np
import pytest

from stellar_nb import commands, inference, schema, trust
from stellar_nb.config import get_config
from stellar_nb.dashboard import analysis as analysis_module
from stellar_nb.dashboard import app as app_module
from stellar_nb.dashboard import inputs, plotly_view, serve, survey_cache
from stellar_nb.data import spec_lite, tables
from stellar_nb.plots import dashboard as figures

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model_dir(quick_config, quick_survey):
    from test_train import quick_model

    return quick_model(quick_config, quick_survey)


@pytest.fixture(scope="module")
def model(model_dir):
    return inference.NumpyModel.load(model_dir)


@pytest.fixture(scope="module")
def cache(quick_survey, model, quick_config):
    return survey_cache.build_survey_cache(
        quick_survey, model, quick_config.data_home / "dashboard"
    )


@pytest.fixture(scope="module")
def emulator():
    from stellar_nb import emulator as emulator_module

    return emulator_module.load_emulator()


@pytest.fixture()
def dashboard(quick_config, quick_survey, model_dir):
    return serve.build_app(quick_config, model_dir=model_dir, survey=quick_survey)


@pytest.fixture(scope="module")
def test_rows(quick_survey):
    return tables.read_split(quick_survey, "test", rows=slice(0, 6))


def _fits_bytes(tmp_path, spectrum, name="spec.fits"):
    path = spec_lite.write_spectrum(tmp_path / name, spectrum)
    return path.read_bytes()


def test_reference_holds_the_models_test_predictions(cache, model, quick_survey, quick_config):
    test = tables.read_split(quick_survey, "test")
    assert len(cache.test) == len(test) == quick_config.n_test
    X, flags = model.preprocess(
        list(test.loglam[:5]),
        list(test.flux[:5]),
        list(test.ivar[:5]),
        list(test["mask"][:5]),
        test.rv_adop[:5].to_numpy(),
    )
    assert not flags.any()
    expected = model.predict(X)
    predicted = cache.test[[f"pred_{label}" for label in schema.LABELS]].to_numpy()[:5]
    np.testing.assert_allclose(predicted, expected, rtol=1e-5)
    np.testing.assert_array_equal(cache.test.catalog_teff, test.catalog_teff)
    mae = np.mean(np.abs(cache.residuals), axis=0)
    assert mae[0] < 600 and mae[1] < 1.0 and mae[2] < 1.0  # a quick model: 4 epochs on 1,800 stars
    assert np.mean(cache.test.distance <= cache.distance_threshold) == pytest.approx(
        survey_cache.DISTANCE_QUANTILE, abs=0.01
    )
    train = tables.read_split(quick_survey, "train", columns=list(schema.CATALOG_COLUMNS))
    assert cache.label_ranges["teff"] == (train.catalog_teff.min(), train.catalog_teff.max())
    # read back from the cache: the same numbers, and the same star spectra
    again = survey_cache.build_survey_cache(
        quick_survey, model, quick_config.data_home / "dashboard"
    )
    np.testing.assert_array_equal(again.test.pred_teff, cache.test.pred_teff)
    star = again.star(3)
    np.testing.assert_array_equal(star.flux, test.flux[3])
    assert star.meta["spec_id"] == test.spec_id[3] and star.meta["rv_kms"] == test.rv_adop[3]


def test_analyse_a_test_star(cache, model, emulator, test_rows):
    spectrum = inputs.spectrum_from_row(test_rows.iloc[2])
    analysis = analysis_module.analyse(spectrum, model, emulator, cache)
    row = test_rows.iloc[2]
    X, _ = model.preprocess([row.loglam], [row.flux], [row.ivar], [row["mask"]], [row.rv_adop])
    np.testing.assert_allclose(analysis.prediction, model.predict(X)[0], rtol=1e-5)
    sigma_model = np.array([model.sigma_model[label] for label in schema.LABELS])
    assert np.all(analysis.sigma >= sigma_model) and np.all(
        analysis.sigma < 10 * sigma_model + 1e-9
    )
    np.testing.assert_allclose(
        analysis.catalogue, [row.catalog_teff, row.catalog_feh, row.catalog_logg]
    )
    np.testing.assert_allclose(analysis.residual, analysis.prediction - analysis.catalogue)
    quantile = np.mean(np.abs(cache.residuals) <= np.abs(analysis.residual), axis=0)
    np.testing.assert_allclose(analysis.residual_quantile, quantile)
    # the preprocessing steps end in exactly what the network saw
    np.testing.assert_allclose(analysis.stages["standardised"], X[0], atol=2e-5)
    np.testing.assert_array_equal(analysis.stages["standardised"], X[0])  # float32, as fed
    # every stage is the model's own preprocessing, not a recomputation beside it
    stages = model.preprocessor.stages(row.loglam, row.flux, row.ivar, row["mask"], row.rv_adop)
    assert list(analysis.stages) == list(stages) == ["resampled", "rest frame", "standardised"]
    for name, values in stages.items():
        np.testing.assert_array_equal(analysis.stages[name], values)
    assert analysis.stages["standardised"].mean() == pytest.approx(0, abs=1e-6)
    assert analysis.stages["standardised"].std() == pytest.approx(1, abs=1e-6)
    # the emulated spectrum fits the observed one far better than a constant does
    good = ~analysis.bad_pixels & np.isfinite(analysis.model_flux)
    assert good.mean() > 0.9
    residual = analysis.flux_residual[good]
    assert np.std(residual) < 0.5 * np.std(analysis.spectrum.flux[good])
    assert np.all(analysis.planck > 0)
    assert [flag["name"] for flag in analysis.flags] == list(trust.FLAG_NAMES)


def test_uncertainty_is_the_inference_method(cache, model, emulator, test_rows):
    row = test_rows.iloc[0]
    arrays = ([row.loglam], [row.flux], [row.ivar], [row["mask"]], [row.rv_adop])
    analysis = analysis_module.analyse(
        inputs.spectrum_from_row(row), model, emulator, cache, seed=1
    )
    expected, expected_sigma = model.predict_with_uncertainty(
        *arrays, n_draws=analysis_module.N_DRAWS, seed=1
    )
    np.testing.assert_array_equal(
        analysis.prediction, inference.in_schema_order(model, expected[0])
    )
    np.testing.assert_array_equal(
        analysis.sigma, inference.in_schema_order(model, expected_sigma[0])
    )
    # the same seed gives the numbers of the dashboard's former batched copy of the method: the
    # observed spectrum and its noise draws (one (n_draws, pixels) normal block) in one batch
    rng = np.random.default_rng(1)
    ivar = np.asarray(row.ivar, dtype=np.float64)
    noise = np.where(ivar > 0, 1.0 / np.sqrt(np.where(ivar > 0, ivar, 1.0)), 0.0)
    flux = np.asarray(row.flux, dtype=np.float64)
    fluxes = [flux, *(flux + noise * rng.standard_normal((analysis_module.N_DRAWS, flux.size)))]
    count = len(fluxes)
    X, _ = model.preprocess(
        [row.loglam] * count,
        fluxes,
        [ivar] * count,
        [row["mask"]] * count,
        np.full(count, row.rv_adop),
    )
    batched = inference.in_schema_order(model, model.predict(X))
    model_term = np.array([model.sigma_model.get(label, 0.0) for label in schema.LABELS])
    former_sigma = np.sqrt(batched[1:].std(axis=0, ddof=1) ** 2 + model_term**2)
    np.testing.assert_allclose(analysis.prediction, batched[0], rtol=1e-6)
    np.testing.assert_allclose(analysis.sigma, former_sigma, rtol=1e-5)
    # another seed: another draw of the spread, of the same size
    other, other_sigma = model.predict_with_uncertainty(*arrays, n_draws=48, seed=2)
    np.testing.assert_allclose(
        analysis.prediction, inference.in_schema_order(model, other[0]), rtol=1e-5
    )
    np.testing.assert_allclose(
        analysis.sigma, inference.in_schema_order(model, other_sigma[0]), rtol=0.35
    )


def test_trust_flags(cache, model, emulator, test_rows):
    row = test_rows.iloc[1]

    def flags(spectrum, ref=cache):
        return {
            flag["name"]: flag["raised"]
            for flag in analysis_module.analyse(spectrum, model, emulator, ref).flags
        }

    spectrum = inputs.spectrum_from_row(row)
    plain = flags(spectrum)
    assert (
        not plain["not a star"]
        and not plain["masked pixels"]
        and not plain["labels at the training edge"]
        and not plain["misfit"]
    )
    assert plain["low S/N"] == (row.snr < trust.LOW_SNR)
    noisy = dataclasses.replace(spectrum, meta={**spectrum.meta, "snr": 4.0, "objclass": "UNKNOWN"})
    raised = flags(noisy)
    assert raised["low S/N"] and raised["not a star"]
    masked = dataclasses.replace(
        spectrum,
        ivar=np.where(np.arange(spectrum.ivar.size) % 3 == 0, 0, spectrum.ivar).astype(np.float32),
    )
    assert flags(masked)["masked pixels"]
    narrow = dataclasses.replace(cache, label_ranges={label: (0.0, 0.0) for label in schema.LABELS})
    assert flags(spectrum, narrow)["labels at the training edge"]
    rng = np.random.default_rng(0)
    flat = dataclasses.replace(
        spectrum, flux=(50 + rng.normal(0, 20, spectrum.flux.size)).astype(np.float32)
    )
    assert flags(flat)["far from the training set"]


def test_read_upload_turns_bad_files_into_messages(tmp_path, test_rows):
    spectrum = inputs.spectrum_from_row(test_rows.iloc[0])
    content = _fits_bytes(tmp_path, spectrum)
    parsed = inputs.read_upload(content, "good.fits")
    np.testing.assert_array_equal(parsed.flux, spectrum.flux)
    assert parsed.meta["plate"] == spectrum.meta["plate"] and parsed.meta["path"] == "good.fits"
    cases = {
        "notes.txt": (b"hello, not a spectrum\n", "not a FITS file"),
        "truncated.fits": (content[: len(content) // 2], "truncated"),
        "big.fits": (b"SIMPLE  =" + bytes(inputs.MAX_UPLOAD_BYTES), "over the 20 MB upload limit"),
    }
    from astropy.io import fits as astropy_fits

    empty = tmp_path / "empty.fits"
    astropy_fits.HDUList(
        [
            astropy_fits.PrimaryHDU(),
            astropy_fits.BinTableHDU.from_columns(
                [astropy_fits.Column(name="x", format="E", array=np.zeros(3))]
            ),
        ]
    ).writeto(empty)
    cases["empty.fits"] = (empty.read_bytes(), "empty.fits")
    dead = _fits_bytes(
        tmp_path, dataclasses.replace(spectrum, ivar=np.zeros_like(spectrum.ivar)), "dead.fits"
    )
    cases["dead.fits"] = (dead, "every pixel is masked")
    for name, (data, message) in cases.items():
        with pytest.raises(inputs.DashboardInputError, match=message) as error:
            inputs.read_upload(data, name)
        assert name in str(error.value)


def test_figures_have_fixed_traces(cache, model, emulator, test_rows):
    analysis = analysis_module.analyse(
        inputs.spectrum_from_row(test_rows.iloc[0]), model, emulator, cache
    )
    spectrum = figures.plot_spectrum(analysis)
    names = [trace.name for trace in spectrum.data]
    assert names[:3] == ["observed", "masked pixels (gaps)", "emulated at the prediction"]
    bad = analysis.bad_pixels
    assert bad.any()  # the simulated survey masks pixels: they must be gaps, not zeros
    observed = np.asarray(spectrum.data[0].y, dtype=float)
    assert np.isnan(observed[bad]).all()
    np.testing.assert_allclose(observed[~bad], analysis.spectrum.flux[~bad])
    assert np.isnan(np.asarray(spectrum.data[2].y, dtype=float)[bad]).all()
    assert spectrum.data[1].x.size == bad.sum()
    np.testing.assert_allclose(spectrum.data[4].y, analysis.flux_residual)
    assert spectrum.data[4].yaxis == "y2"  # the residual has its own panel
    assert "Å" in spectrum.layout.xaxis2.title.text and "Å" in spectrum.layout.yaxis.title.text
    texts = {annotation.text for annotation in spectrum.layout.annotations}
    assert {"H alpha", "H beta", "Ca II K", "Mg b", "Na D", "G band"} <= texts
    low, high = 10 ** analysis.spectrum.loglam[[0, -1]]
    assert all(low <= shape.x0 <= high for shape in spectrum.layout.shapes)
    # labels on one row are at least LABEL_SPACING of the range apart: none overlap
    by_row = {}
    for annotation in spectrum.layout.annotations:
        by_row.setdefault(annotation.y, []).append(annotation.x)
    assert len(by_row) >= 2  # Ca II K and H are too close for one row
    for positions in by_row.values():
        assert np.all(np.diff(sorted(positions)) >= figures.LABEL_SPACING * (high - low))
    assert len(figures.plot_spectrum().data) == len(spectrum.data)
    for step in figures.PREPROCESSING_STEPS:
        panel = figures.plot_preprocessing(analysis, step)
        assert [trace.visible for trace in panel.data] == [
            name == step for name in figures.PREPROCESSING_STEPS
        ]
        assert panel.layout.title.text == figures.STEP_DESCRIPTIONS[step]
    panel = figures.plot_preprocessing(analysis, "standardised")
    np.testing.assert_allclose(panel.data[-1].y, analysis.stages["standardised"])
    np.testing.assert_allclose(panel.data[2].y, analysis.stages["rest frame"])
    with pytest.raises(ValueError, match="unknown step"):
        figures.plot_preprocessing(analysis, "smoothed")
    overview = figures.plot_overview(cache.test, cache.residuals, analysis)
    assert overview.data[0].x.size == len(cache.test)
    ring, bar_teff, bar_logg, star = overview.layout.shapes[:4]
    assert (ring.xanchor, ring.yanchor) == pytest.approx(
        (analysis.catalogue[0], analysis.catalogue[2])
    )
    assert (star.xanchor, star.yanchor) == pytest.approx(
        (analysis.prediction[0], analysis.prediction[2])
    )
    assert star.showlegend and star.name.startswith("predicted")
    assert bar_teff.x1 - bar_teff.x0 == pytest.approx(2 * analysis.sigma[0])
    assert bar_logg.y1 - bar_logg.y0 == pytest.approx(2 * analysis.sigma[2])
    high, low = overview.layout.xaxis.range  # reversed, spanning every test star
    assert high > cache.test.catalog_teff.max() and low < cache.test.catalog_teff.min()
    assert overview.layout.xaxis.title.text == "T<sub>eff</sub> (K)"
    assert overview.data[0].marker.colorscale[0][1].lower() == "#00224e"  # Cividis
    assert [trace.type for trace in overview.data] == ["scatter", "bar", "bar", "bar"]
    centres, counts, _ = figures.residual_histogram(cache.residuals[:, 1])
    np.testing.assert_allclose(overview.data[2].x, centres)
    np.testing.assert_array_equal(overview.data[2].y, counts)
    assert counts.sum() >= 0.98 * len(cache.test)  # the central 99% and the edges
    for figure in (overview, spectrum, panel):
        assert {trace.type for trace in figure.data} <= set(plotly_view.TRACE_TYPES)
    subset = figures.plot_overview(cache.test, cache.residuals, analysis, max_points=50)
    assert subset.data[0].x.size == 50 and "50 of" in subset.layout.annotations[0].text
    chosen = cache.test.set_index(cache.test.spec_id.astype(str)).loc[
        list(subset.data[0].customdata)
    ]
    np.testing.assert_allclose(subset.data[0].x, chosen.catalog_teff)
    residual_lines = overview.layout.shapes[4:]
    assert [shape.x0 for shape in residual_lines] == pytest.approx(list(analysis.residual))
    assert [shape.xref for shape in residual_lines] == ["x2", "x3", "x4"]
    uploaded = dataclasses.replace(analysis, catalogue=None)  # no catalogue: no ring, no lines
    assert [shape["type"] for shape in figures.overview_shapes(uploaded)] == [
        "line",
        "line",
        "path",
    ]
    assert figures.overview_shapes(None) == []


def test_line_labels_take_the_first_free_row():
    assert figures.line_labels([0.0, 1.0, 5.0, 5.5, 5.8, 9.0], spacing=2.0) == [0, 1, 0, 1, 2, 0]
    assert figures.line_labels([], spacing=1.0) == []


def test_dashboard_updates_every_panel(dashboard, cache, model, emulator):
    assert dashboard.analysis is not None and "stellar-ok" in dashboard.status.value
    spec_id = str(cache.test.spec_id.iloc[7])
    assert dashboard.load_test_star(spec_id)
    expected = analysis_module.analyse(cache.star(7), model, emulator, cache)
    np.testing.assert_allclose(dashboard.analysis.prediction, expected.prediction)
    good = ~expected.bad_pixels
    np.testing.assert_allclose(dashboard.spectrum.data[0]["y"][good], cache.star(7).flux[good])
    np.testing.assert_allclose(dashboard.preprocessing.data[0]["y"][good], cache.star(7).flux[good])
    np.testing.assert_allclose(dashboard.preprocessing.data[2]["y"], expected.stages["rest frame"])
    shapes = dashboard.overview.plot_layout["shapes"]
    assert shapes == figures.overview_shapes(dashboard.analysis)
    assert shapes[3]["xanchor"] == pytest.approx(expected.prediction[0])
    assert len(dashboard.overview.data[0]["x"]) == len(cache.test)  # the test stars stay
    assert shapes[-3]["x0"] == pytest.approx(expected.residual[0])
    assert len(dashboard.overview.plot_layout["annotations"]) == 4  # subplot titles stay
    assert f"data-value='{expected.prediction[0]:.6g}'" in dashboard.results.value
    assert "T<sub>eff</sub> (K)" in dashboard.results.value
    assert "|residual| percentile" in dashboard.results.value
    assert spec_id in dashboard.status.value and dashboard.last_update_seconds > 0
    assert "Trust flags" in dashboard.flags.value
    for name, meaning in app_module.FLAG_EXPLANATIONS.items():
        assert html.escape(meaning) in dashboard.flags.value, name
    dashboard.step.value = "standardised"
    assert [trace["visible"] for trace in dashboard.preprocessing.data] == [False] * 3 + [True]
    assert dashboard.preprocessing.plot_layout["title"]["text"].startswith("4. standardised")
    assert dashboard.load_test_star(cache.test.spec_id.iloc[8])
    assert dashboard.preprocessing.data[3]["visible"] is True  # the choice stays


def test_flag_explanations_cover_every_flag():
    assert tuple(app_module.FLAG_EXPLANATIONS) == trust.FLAG_NAMES
    assert all(len(text) > 20 for text in app_module.FLAG_EXPLANATIONS.values())


def test_random_star_regions_and_enter(dashboard, cache):
    test = cache.test.set_index(cache.test.spec_id.astype(str))
    for region, bounds in app_module.REGIONS.items():
        spec_id = dashboard.random_star(region)
        if bounds is not None:
            column, low, high = bounds
            assert low <= test.loc[spec_id, column] < high, region
    with pytest.raises(ValueError, match="unknown region"):
        dashboard.random_star("the moon")
    assert dashboard.load_random_star("giants (log g < 3.5)")
    shown = str(dashboard.analysis.spectrum.meta["spec_id"])
    assert dashboard.star_id.value == shown and test.loc[shown, "catalog_logg"] < 3.5
    # the id box submits on Enter (continuous_update=False: the value arrives once, then)
    other = str(cache.test.spec_id.iloc[3])
    dashboard.star_id.value = other
    assert str(dashboard.analysis.spectrum.meta["spec_id"]) == other
    assert "showing test star " + other in dashboard.status.value
    dashboard.star_id.value = ""  # an emptied box loads nothing
    assert str(dashboard.analysis.spectrum.meta["spec_id"]) == other


def test_downloads_hold_the_results(dashboard, cache, tmp_path):
    import base64
    import csv
    import io
    import re

    analysis = dashboard.analysis
    links = dict(
        re.findall(
            r"download='([^']+)' href='data:[^;]+;base64,([^']+)'", dashboard.downloads.value
        )
    )
    spec_id = analysis.spectrum.meta["spec_id"]
    csv_text = base64.b64decode(links[f"test_star_{spec_id}-labels.csv"]).decode()
    record = json.loads(base64.b64decode(links[f"test_star_{spec_id}-labels.json"]))
    assert record == analysis_module.results_record(analysis)
    (row,) = csv.DictReader(io.StringIO(csv_text))
    for i, label in enumerate(schema.LABELS):
        assert float(row[label]) == pytest.approx(analysis.prediction[i])
        assert float(row[f"{label}_sigma"]) == pytest.approx(analysis.sigma[i])
        assert record["labels"][label]["catalogue"] == pytest.approx(analysis.catalogue[i])
        assert 0 <= record["labels"][label]["abs_residual_percentile"] <= 100
    for flag in analysis.flags:
        assert row[f"flag: {flag['name']}"] == str(int(flag["raised"]))
    assert [flag["name"] for flag in record["flags"]] == [f["name"] for f in analysis.flags]
    # an upload is not a test star: the id box empties, the downloads carry no catalogue
    content = _fits_bytes(tmp_path, cache.star(4), "star.fits")
    dashboard.star_id.value = str(cache.test.spec_id.iloc[5])
    assert dashboard.load_upload("star.fits", content, len(content))
    assert dashboard.star_id.value == "" and "star-labels.csv" in dashboard.downloads.value
    assert not dashboard.load_upload("notes.txt", b"hello", 5)
    assert dashboard.downloads.value == ""  # nothing to take away from a failed file


def test_dashboard_survives_bad_input(dashboard, cache, tmp_path):
    before = dashboard.analysis
    assert not dashboard.load_test_star("12345")
    assert "no test star" in dashboard.status.value and "stellar-error" in dashboard.status.value
    assert not dashboard.load_upload("notes.txt", b"hello", 5)
    assert "notes.txt: not a FITS file" in dashboard.status.value
    assert not dashboard.load_upload("huge.fits", None, 30 * 2**20)
    assert "30.0 MB is over the 20 MB upload limit" in dashboard.status.value
    assert not dashboard.load_sdss("not-an-id")
    assert "plate-MJD-fiber" in dashboard.status.value
    # the first error cleared the previous star's results, and every message says so
    assert dashboard.analysis is None and dashboard.previous == before.source
    assert f"previous spectrum: {before.source}, cleared" in dashboard.status.value
    spectrum = cache.star(4)
    content = _fits_bytes(tmp_path, spectrum, "star.fits")
    dashboard.upload._handle(
        None, {"event": "file", "name": "star.fits", "size": len(content)}, [memoryview(content)]
    )
    assert "showing star.fits" in dashboard.status.value and dashboard.previous is None
    np.testing.assert_allclose(dashboard.analysis.catalogue[0], cache.test.catalog_teff.iloc[4])
    assert dashboard.analysis.rv_kms == pytest.approx(cache.test.rv_adop.iloc[4])


def test_kiel_click_loads_the_star(dashboard, cache):
    clicked = dashboard.overview.data[0]["customdata"][11]
    assert clicked == str(cache.test.spec_id.iloc[11])  # all 900 quick-mode stars are drawn
    dashboard.overview._handle(None, {"event": "click", "trace": 0, "point": 11}, [])
    assert str(dashboard.analysis.spectrum.meta["spec_id"]) == clicked
    assert dashboard.star_id.value == clicked
    before = dashboard.analysis
    # a click on a histogram bar, or beyond the stars, loads nothing
    dashboard.overview._handle(None, {"event": "click", "trace": 2, "point": 0}, [])
    dashboard.overview._handle(None, {"event": "click", "trace": 0, "point": 10**6}, [])
    assert dashboard.analysis is before


def test_fetch_by_plate_mjd_fiber_from_a_loopback_sas(
    dashboard, quick_survey, tmp_path, model, emulator, cache, monkeypatch
):
    frame = tables.read_split(quick_survey, "test", rows=slice(0, 3))
    site = loopback.site_from_split(frame, tmp_path / "site")
    with loopback.LoopbackServer(site.root, catalogue=site.catalogue) as server:
        monkeypatch.setenv("STELLAR_NB_SKYSERVER_URL", server.skyserver_url)
        dashboard.sas_url = server.sas_url
        row = frame.iloc[1]
        assert dashboard.load_sdss(f"{row.plate}-{row.mjd}-{row.fiber}")
        assert dashboard.load_sdss(f" {row.plate}-{row.mjd}-{row.fiber} ")
        expected = analysis_module.analyse(inputs.spectrum_from_row(row), model, emulator, cache)
        np.testing.assert_allclose(dashboard.analysis.prediction, expected.prediction, rtol=1e-4)
        name = f"spec-{row.plate:04d}-{row.mjd:05d}-{row.fiber:04d}.fits"
        assert dashboard.analysis.source == name
        assert not dashboard.load_sdss("1-51000-1")
        assert "not found: DR12 has no spectrum" in dashboard.status.value
        assert f"previous spectrum: {name}" in dashboard.status.value
        # one SkyServer lookup per fetch (three fetches), one SAS request per found spectrum
        sql = [path for path, _ in server.requests if path.endswith("/SqlSearch")]
        sas = [path for path, _ in server.requests if path.endswith(name)]
        assert (len(sql), len(sas)) == (3, 2)
    dashboard.sas_url = "http://127.0.0.1:9"  # nothing listens on the discard port
    assert not dashboard.load_sdss(f"{row.plate}-{row.mjd}-{row.fiber}")
    assert "cannot download" in dashboard.status.value and "offline?" in dashboard.status.value


def test_fetch_spectrum_finds_boss_spectra_by_their_run2d(tmp_path):
    site = loopback.synthetic_site(tmp_path / "site", n=2, seed=5, run2d="v5_7_0")
    row = site.catalogue.iloc[1]
    with loopback.LoopbackServer(site.root, catalogue=site.catalogue) as server:
        spectrum = inputs.fetch_spectrum(
            row.plate, row.mjd, row.fiberID,
            base_url=server.sas_url, skyserver_url=server.skyserver_url,
        )  # fmt: skip
        fetched = [path for path, _ in server.requests if path.endswith(".fits")]
        server.fail(fetched[0], "404")
        with pytest.raises(
            inputs.DashboardInputError, match=r"though DR12 lists it \(run2d v5_7_0\)"
        ):
            inputs.fetch_spectrum(
                row.plate, row.mjd, row.fiberID,
                base_url=server.sas_url, skyserver_url=server.skyserver_url,
            )  # fmt: skip
    assert fetched == [
        f"/boss/spectro/redux/v5_7_0/spectra/lite/{row.plate:04d}/"
        f"spec-{row.plate:04d}-{row.mjd:05d}-{row.fiberID:04d}.fits"
    ]
    assert (spectrum.meta["plate"], spectrum.meta["fiber"]) == (row.plate, row.fiberID)


def test_dashboard_kernel_skips_heavy_imports(quick_config, quick_survey, model_dir):
    # No deep-learning framework (numpy inference), and not nbformat/jsonschema, whose import
    # (through plotly's FigureWidget) takes seconds.
    heavy = ("tensorflow", "keras", "jax", "torch", "nbformat", "jsonschema")
    code = (
        "import sys, json; from stellar_nb import dashboard; app = dashboard.build_app(); "
        f"print(json.dumps([m for m in sys.modules if m.split('.')[0] in {heavy!r}]))"
    )
    env = dict(
        os.environ,
        STELLAR_NB_DATA=str(quick_config.data_home),
        STELLAR_NB_QUICK="1",
        STELLAR_NB_MODEL_DIR=str(model_dir),
        STELLAR_NB_SURVEY_DIR=str(quick_survey),
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def test_notebook_is_the_three_cells():
    notebook = json.loads((serve.notebook_path()).read_text())
    assert notebook["metadata"]["title"] == serve.TITLE  # the page's title
    assert [cell["cell_type"] for cell in notebook["cells"]] == ["code"] * 3
    assert tuple("".join(cell["source"]) for cell in notebook["cells"]) == serve.CELLS
    assert all(not cell["outputs"] for cell in notebook["cells"])


def test_notebook_copy_outside_a_checkout(tmp_path, monkeypatch):
    monkeypatch.setattr(serve, "__file__", str(tmp_path / "a" / "b" / "serve.py"))
    path = serve.notebook_path(tmp_path)
    notebook = json.loads(path.read_text())
    assert tuple("".join(cell["source"]) for cell in notebook["cells"]) == serve.CELLS
    assert notebook["metadata"]["title"] == serve.TITLE


def test_command_line_and_voila_settings():
    args = commands.build_parser("dashboard").parse_args(
        ["dashboard", "--quick", "--port", "9999", "--model", "m"]
    )
    assert args.port == 9999 and args.quick and args.model == "m" and args.ip == "localhost"
    command = serve.voila_command("nb.ipynb", port=9999, ip="127.0.0.1")
    assert command[1:4] == ["-m", "voila", "nb.ipynb"] and "--port=9999" in command
    assert f"--Voila.config_file_paths={serve.VOILA_CONFIG_DIR}" in command
    voila = json.loads((serve.VOILA_CONFIG_DIR / "voila.json").read_text())
    server = json.loads((serve.VOILA_CONFIG_DIR / "jupyter_server_config.json").read_text())
    for settings in (voila["Voila"], server["ServerApp"]):
        assert (
            settings["tornado_settings"]["websocket_max_message_size"]
            > inputs.MAX_UPLOAD_BYTES * 1.1
        )
    # Only the widget extensions the page needs: jupyterlab-plotly alone would add 4.8 MB of JS.
    for settings in (voila, server):
        allowed = settings["VoilaConfiguration"]["extension_allowlist"]
        assert "anywidget" in allowed and "@jupyter-widgets/jupyterlab-manager" in allowed
        assert "jupyterlab-plotly" not in allowed
    assert app_module.Dashboard.show.__doc__
    # Kernels are freed: the preheated page never sets Voila's _xsrf cookie, so its shutdown
    # request on tab close was refused (403) until the standalone server stopped checking it;
    # kernels whose tab vanished without a word are culled when idle and disconnected.
    assert voila["Voila"]["tornado_settings"]["disable_check_xsrf"] is True
    assert (
        "disable_check_xsrf" not in server["ServerApp"]["tornado_settings"]
    )  # JupyterLab keeps it
    for settings in (voila, server):
        culling = settings["MappingKernelManager"]
        assert culling["cull_idle_timeout"] == 60 * serve.CULL_IDLE_MINUTES
        assert (
            0 < culling["cull_interval"] <= culling["cull_idle_timeout"]
            and not culling["cull_connected"]
        )
    assert (
        voila["VoilaConfiguration"]["preheat_kernel"]
        and voila["VoilaConfiguration"]["default_pool_size"] >= 4
    )
    assert voila["VoilaKernelManager"]["fill_delay"] <= 1
    assert (
        serve.voila_environment(get_config(quick=True), "survey")["ARROW_DEFAULT_MEMORY_POOL"]
        == "system"
    )


def _analyse_error(spectrum, model, emulator, cache):
    with pytest.raises(inputs.DashboardInputError) as error:
        analysis_module.analyse(spectrum, model, emulator, cache)
    return str(error.value)


def test_messages_name_the_file_and_the_reason(cache, model, emulator, test_rows):
    star = inputs.spectrum_from_row(test_rows.iloc[0])
    size = star.flux.size

    def changed(name, **changes):
        meta = {**star.meta, "path": name, **changes.pop("meta", {})}
        return dataclasses.replace(star, meta=meta, **changes)

    galaxy = changed("g.fits", meta={"objclass": "GALAXY", "z": 0.12, "rv_kms": None})
    assert _analyse_error(galaxy, model, emulator, cache) == (
        "g.fits: its header says CLASS = GALAXY at z = 0.12: not a star (a galaxy); "
        "stellar_nb analyses stars"
    )
    quasar = changed("q.fits", meta={"objclass": "QSO", "z": 2.5})
    assert "q.fits: its header says CLASS = QSO at z = 2.5: not a star (a quasar)" in (
        _analyse_error(quasar, model, emulator, cache)
    )
    constant = changed("c.fits", flux=np.full(size, 7.0, np.float32))
    assert _analyse_error(constant, model, emulator, cache).startswith(
        "c.fits: the flux is constant (every"
    ) and " 7): nothing to measure" in _analyse_error(constant, model, emulator, cache)
    fast = changed("rv.fits", meta={"rv_kms": 5000.0})
    message = _analyse_error(fast, model, emulator, cache)
    assert message.startswith("rv.fits: its radial velocity, 5,000 km/s, is beyond the ±2,998 km/s")
    redshifted = changed("z.fits", meta={"rv_kms": None, "plate": -1, "z": 0.12})
    message = _analyse_error(redshifted, model, emulator, cache)
    assert "Z = 0.12 means a radial velocity of 33,830 km/s" in message
    unknown = changed("nan.fits", meta={"rv_kms": float("nan")})
    assert "nan.fits: its radial velocity is not a number" in _analyse_error(
        unknown, model, emulator, cache
    )
    tenth = size // 10
    short = changed(
        "short.fits", flux=star.flux[:tenth], loglam=star.loglam[:tenth],
        ivar=star.ivar[:tenth], and_mask=star.and_mask[:tenth],
    )  # fmt: skip
    message = _analyse_error(short, model, emulator, cache)
    assert message.startswith("short.fits: its usable pixels (") and "% of the model's" in message
    coverage = float(message.split("cover only ")[1].split("%")[0])
    assert 5 <= coverage <= 15  # a tenth of the pixels: about a tenth of the grid
    dead = changed("dead.fits", and_mask=np.full(size, 1 << 24, np.int32))  # NODATA
    assert _analyse_error(dead, model, emulator, cache).startswith(
        "dead.fits: every pixel is masked"
    )
    for message in (_analyse_error(s, model, emulator, cache) for s in (galaxy, fast, short)):
        assert "rv_kms must" not in message and "rows [" not in message


def test_an_error_clears_the_previous_results(dashboard, tmp_path):
    before = dashboard.analysis.source
    assert "data-value" in dashboard.results.value and len(dashboard.spectrum.data[0]["x"]) > 0
    spectrum = dashboard.survey_cache.star(2)
    constant = dataclasses.replace(spectrum, flux=np.full(spectrum.flux.size, 3.0, np.float32))
    content = _fits_bytes(tmp_path, constant, "flat.fits")
    assert not dashboard.load_upload("flat.fits", content, len(content))
    status = dashboard.status.value
    assert "flat.fits: the flux is constant" in status and "stellar-error" in status
    assert f"previous spectrum: {before}, cleared" in status
    assert dashboard.analysis is None and "data-value" not in dashboard.results.value
    assert f"previous spectrum: {before}" in dashboard.results.value and dashboard.flags.value == ""
    assert all(len(trace["y"]) == 0 for trace in dashboard.spectrum.data)  # every trace emptied
    assert dashboard.overview.plot_layout["shapes"] == []
    assert len(dashboard.overview.data[0]["x"]) == len(dashboard.survey_cache.test)  # stars stay
    assert before in dashboard.spectrum.plot_layout["title"]["text"]
    assert dashboard.load_test_star(dashboard.survey_cache.test.spec_id.iloc[2])
    assert dashboard.previous is None and "data-value" in dashboard.results.value


def test_gzipped_uploads_work(dashboard, sdss_fixtures, lamost_dir):
    import gzip

    from stellar_nb.dashboard import upload

    assert {".fits.gz", ".gz", "application/gzip"} <= set(upload.ACCEPT)
    assert ",".join(upload.ACCEPT) in upload._ESM
    sdss = (sdss_fixtures / "spec-0266-51602-0031.fits").read_bytes()
    plain = inputs.read_upload(sdss, "spec-0266-51602-0031.fits")
    zipped = gzip.compress(sdss)
    dashboard.upload._handle(
        None, {"event": "file", "name": "spec-0266-51602-0031.fits.gz", "size": len(zipped)},
        [memoryview(zipped)],
    )  # fmt: skip
    assert "showing spec-0266-51602-0031.fits.gz" in dashboard.status.value
    np.testing.assert_array_equal(dashboard.analysis.spectrum.flux, plain.flux)
    assert dashboard.analysis.spectrum.meta["plate"] == 266
    lamost = sorted((lamost_dir / "spectra").glob("*.fits.gz"))[0]
    content = lamost.read_bytes()
    assert content[:2] == b"\x1f\x8b"
    assert dashboard.load_upload(lamost.name, content, len(content))
    assert dashboard.analysis.source == lamost.name
    assert 3000 < dashboard.analysis.prediction[0] < 10000
