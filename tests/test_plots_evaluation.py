import numpy as np
import pytest

from stellar_nb.plots import evaluation


def test_kde_density_is_highest_in_the_cluster():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 0.1, 500), [5.0]])
    y = np.concatenate([rng.normal(0, 0.1, 500), [5.0]])
    density = evaluation.kde_density(x, y, max_fit_points=200)
    assert density.max() == pytest.approx(1.0)
    assert density[-1] < 0.05 < 0.3 < np.median(density[:-1])


def test_kde_scatter_panels_hold_the_points_and_the_mae():
    rng = np.random.default_rng(1)
    true = np.column_stack(
        [rng.uniform(4000, 9000, 400), rng.uniform(-3, 0.5, 400), rng.uniform(1, 5, 400)]
    )
    predicted = true + np.array([50.0, 0.1, -0.2])
    figure = evaluation.plot_kde_scatter(true, predicted)
    scatters = [trace for trace in figure.data if trace.mode == "markers"]
    assert len(scatters) == 3 and all(len(trace.x) == 400 for trace in scatters)
    np.testing.assert_allclose(np.sort(scatters[0].y) - np.sort(scatters[0].x), 50.0)
    texts = [annotation.text for annotation in figure.layout.annotations]
    assert "MAE 50" in texts[0] and "MAE 0.1" in texts[1] and "MAE 0.2" in texts[2]
    with pytest.raises(ValueError, match=r"shape \(n, 3\)"):
        evaluation.plot_kde_scatter(true[:, :2], predicted[:, :2])


def test_kde_density_of_collinear_points():
    x = np.linspace(0, 1, 50)
    density = evaluation.kde_density(x, 2 * x + 1)
    assert density.shape == (50,) and np.all(density > 0) and density.max() == pytest.approx(1.0)


def test_error_vs_floor_draws_bars_and_floor():
    figure = evaluation.plot_error_vs_floor(
        {"MLP": [60, 0.1, 0.13], "Ridge": [150, 0.3, 0.4]}, [40, 0.05, 0.08]
    )
    assert [list(trace.y) for trace in figure.data] == [[60, 150], [0.1, 0.3], [0.13, 0.4]]
    assert [shape.y0 for shape in figure.layout.shapes] == [40, 0.05, 0.08]


def test_tuning_figures_follow_the_trials():
    from stellar_nb.plots import tuning

    trials = [
        {
            "trial": f"{i:02d}",
            "val_loss": loss,
            "values": {
                "stem_units": 64 + 16 * i,
                "block_dropout": 0.1,
                "learning_rate": 1e-3,
                "weight_decay": 1e-4,
            },
        }
        for i, loss in enumerate([0.5, 0.3, 0.4])
    ]
    history = tuning.plot_trial_history(trials)
    assert list(history.data[0].y) == [0.5, 0.3, 0.4] and list(history.data[1].y) == [0.5, 0.3, 0.3]
    parallel = tuning.plot_trial_parallel_coordinates(trials)
    dimensions = parallel.data[0].dimensions
    assert list(dimensions[0]["values"]) == [64, 80, 96]
    assert (
        list(dimensions[2]["values"]) == [-3, -3, -3]
        and dimensions[-1]["label"] == "validation loss"
    )
