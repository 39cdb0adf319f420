"""The preprocessing figures: each returns a plotly figure holding the data it was given."""

import numpy as np
import plotly.graph_objects as go

from stellar_nb import preprocess as pp
from stellar_nb import schema
from stellar_nb.plots import preprocess as plots

GRID = schema.grid_loglam()
RNG = np.random.default_rng(0)
LOGLAM = 3.58 + 1e-4 * np.arange(3800)
FLUX = 50 + RNG.normal(size=3800)


def test_raw_and_clamped_figures():
    figure = plots.plot_raw_spectra([LOGLAM, LOGLAM], [FLUX, 2 * FLUX], ["a", "b"])
    assert isinstance(figure, go.Figure) and len(figure.data) == 2
    np.testing.assert_allclose(figure.data[1].y, 2 * FLUX)
    np.testing.assert_allclose(figure.data[0].x[0], 10**3.58)
    resampled = pp.resample([LOGLAM], [FLUX])[0]
    figure = plots.plot_clamped_ends(LOGLAM, FLUX, GRID, resampled)
    assert len(figure.layout.shapes) == 2  # both ends fall short of the grid
    np.testing.assert_allclose(figure.data[1].y, resampled)


def test_rest_frame_figure_has_zoom_menu():
    observed = pp.standardise(pp.resample([LOGLAM], [FLUX]))[0]
    figure = plots.plot_rest_frame(GRID, observed, observed[::-1], 120.0)
    labels = [button.label for button in figure.layout.updatemenus[0].buttons]
    assert labels == ["H-alpha", "Ca II H & K", "H-beta", "whole grid"]
    assert tuple(figure.layout.xaxis.range) == (6500.0, 6630.0)
    assert "+120" in figure.data[0].name


def test_normalised_figure_slider_toggles_one_star():
    teff = np.array([4500.0, 6000.0, 8000.0])
    planck = pp.planck_continuum(teff)
    figure = plots.plot_normalised(GRID, planck + 0.1, planck, teff)
    assert len(figure.data) == 6
    steps = figure.layout.sliders[0].steps
    assert [step.label for step in steps] == ["4500 K", "6000 K", "8000 K"]
    assert steps[1].args[0]["visible"] == [False, False, True, True, False, False]
    np.testing.assert_allclose(figure.data[5].y, planck[2])


def test_method_bad_pixel_label_augmentation_figures():
    a, b = RNG.normal(size=(2, 4000))
    figure = plots.plot_method_difference(GRID, a, b)
    np.testing.assert_allclose(figure.data[2].y, a - b)
    assert f"{np.sqrt(np.mean((a - b) ** 2)):.4f}" in figure.layout.title.text
    bad = np.zeros(3800, bool)
    bad[[5, 100]] = True
    figure = plots.plot_bad_pixels(LOGLAM, FLUX, bad, GRID, a, b)
    np.testing.assert_allclose(figure.data[1].y, FLUX[[5, 100]])
    labels = RNG.normal([6000, -1, 3], [500, 0.5, 1], size=(50, 3))
    figure = plots.plot_label_scaling(labels, pp.LabelScaler().fit(labels).transform(labels))
    assert len(figure.data) == 6
    original = pp.standardise(RNG.normal(size=(1, 4000)))[0]
    copies = pp.augment(original[None, :], seed=1)[1:]
    figure = plots.plot_augmentation(GRID, original, copies)
    assert len(figure.data) == 3 and "noise" in figure.data[0].name


def test_speed_figure():
    result = {
        "count": 10,
        "naive_per_s": 100.0,
        "one_thread_per_s": 600.0,
        "threads_per_s": 900.0,
        "threads": 2,
        "max_difference": 2e-7,
    }
    figure = plots.plot_speed(result)
    np.testing.assert_allclose(figure.data[0].y, [100, 600, 900])
    assert "2.0e-07" in figure.layout.title.text
