"""The Voila dashboard: load a spectrum, see its predicted labels, residuals and trust flags.

Layers, each usable on its own:

- :mod:`~stellar_nb.dashboard.inputs`: where spectra come from (uploads, SDSS downloads, test
  stars), every failure a readable :class:`~stellar_nb.dashboard.inputs.DashboardInputError`;
- :mod:`~stellar_nb.dashboard.survey_cache`: the test split's predictions and the training set's
  description, cached per model and survey;
- :mod:`~stellar_nb.dashboard.messages`: why a spectrum is refused, in the user's terms;
- :mod:`~stellar_nb.dashboard.analysis`: one spectrum's analysis (the model's preprocessing
  stages, prediction with uncertainties, emulated spectrum, trust flags);
- :mod:`stellar_nb.plots.dashboard`: the plotly figures;
- :mod:`~stellar_nb.dashboard.app`: widgets wired to one update function;
- :mod:`~stellar_nb.dashboard.upload`: a size-checked file upload;
- :mod:`~stellar_nb.dashboard.plotly_view`: a light plotly widget sharing one plotly.js per page;
- :mod:`~stellar_nb.dashboard.serve`: :func:`build_app` (the notebook's call) and the Voila
  command behind ``stellar-nb dashboard`` (:mod:`stellar_nb.commands.dashboard`, on
  http://localhost:8866).

The kernel never imports TensorFlow: predictions come from :class:`stellar_nb.inference.NumpyModel`.
"""

from stellar_nb.dashboard.serve import build_app

__all__ = ["build_app"]
