"""Plot functions, one module per stage. Each takes results and returns a plotly figure; none
shows it or changes global styles. Every figure function is named ``plot_<what>``.

- :mod:`~stellar_nb.plots.survey`: the simulated survey (notebook 01);
- :mod:`~stellar_nb.plots.preprocess`: the preprocessing steps (notebook 02);
- :mod:`~stellar_nb.plots.training`: the architecture, learning rate and history (notebook 03);
- :mod:`~stellar_nb.plots.tuning`: tuner trials (notebook 04);
- :mod:`~stellar_nb.plots.evaluation`: predictions against truth and the noise floor (05, 06);
- :mod:`~stellar_nb.plots.dashboard`: the dashboard's figures.

Names load on first use (:mod:`~stellar_nb.plots.training` imports the model code).
"""

from stellar_nb import lazy

_MODULES = {
    "survey": (
        "plot_crb",
        "plot_label_distributions",
        "plot_library_comparison",
        "plot_observed_spectrum",
        "plot_realism",
        "plot_residual_rms",
    ),
    "preprocess": (
        "plot_augmentation",
        "plot_bad_pixels",
        "plot_clamped_ends",
        "plot_label_scaling",
        "plot_method_difference",
        "plot_normalised",
        "plot_raw_spectra",
        "plot_rest_frame",
        "plot_speed",
    ),
    "training": ("plot_architecture", "plot_history", "plot_learning_rate"),
    "tuning": ("plot_trial_history", "plot_trial_parallel_coordinates"),
    "evaluation": ("plot_error_vs_floor", "plot_kde_scatter"),
}

__getattr__, __dir__ = lazy.attach(
    __name__, {name: module for module, names in _MODULES.items() for name in names}
)

__all__ = sorted(name for names in _MODULES.values() for name in names)
